/*
 * The state interface's calls that choose their backend here (see
 * ngx_http_hris_state_if.h for the map of every operation), and the
 * embedded backend of the gate's token: the shared zone's refresh token,
 * the configured access token used first, and the exchange's answer kept
 * (the Redis backend of the same is ngx_http_hris_fleet.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_state_if.h"


#define NGX_HTTP_HRIS_TOKEN_POLL  20   /* ms between looks at the zone */
#define NGX_HTTP_HRIS_FLEET_POLL  50   /* ms between looks at Redis's lock */


static ngx_int_t ngx_http_hris_state_token_zone(ngx_http_hris_gate_t *g);
static void ngx_http_hris_state_reconfigured(ngx_http_hris_gate_t *g);
static ngx_int_t ngx_http_hris_state_refresh(ngx_http_hris_gate_t *g);
static ngx_int_t ngx_http_hris_state_commit_zone(ngx_http_hris_gate_t *g,
    ngx_str_t *token, time_t until, ngx_str_t *refresh);
static ngx_int_t ngx_http_hris_state_full(ngx_http_hris_gate_t *g,
    const char *what);


ngx_int_t
ngx_http_hris_state_token_get(ngx_http_hris_gate_t *g)
{
    if (g->hmcf->redis) {
        return ngx_http_hris_fleet_token(g);
    }

    return ngx_http_hris_state_token_zone(g);
}


ngx_msec_t
ngx_http_hris_state_token_poll(ngx_http_hris_main_conf_t *hmcf)
{
    return hmcf->redis ? NGX_HTTP_HRIS_FLEET_POLL : NGX_HTTP_HRIS_TOKEN_POLL;
}


ngx_int_t
ngx_http_hris_state_token_commit(ngx_http_hris_gate_t *g, ngx_str_t *token,
    time_t until, ngx_str_t *refresh)
{
    if (g->hmcf->redis) {
        return ngx_http_hris_fleet_commit(g, token, until, refresh);
    }

    return ngx_http_hris_state_commit_zone(g, token, until, refresh);
}


ngx_int_t
ngx_http_hris_state_token_refused(ngx_http_hris_gate_t *g)
{
    ngx_http_request_t  *r = g->request;

    if (g->hmcf->redis) {
        /* re-read first: another gateway may have won the race */
        return ngx_http_hris_fleet_refused(g);
    }

    /* of the workers that see the refusal, one tells */
    if (ngx_http_hris_refresh_set(g->hmcf, &g->account->id, NULL, 1)
        == NGX_DONE)
    {
        ngx_http_hris_account_event(g->hmcf, &g->account->tenant,
                                    &g->account->id,
                                    &g->account->table->name,
                                    "integrated_account.needs_reauth",
                                    "refresh_refused", r->connection->log);
    }

    ngx_http_hris_state_save(g->hmcf, r->pool, r->connection->log);
    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "hris: integrated account \"%V\" needs re-authorization "
                  "(refresh refused)", &g->account->id);

    return NGX_ABORT;
}


void
ngx_http_hris_state_token_release(ngx_http_hris_gate_t *g)
{
    if (g->hmcf->redis) {
        ngx_http_hris_fleet_release(g);
        return;
    }

    ngx_http_hris_token_fail(g->hmcf, &g->account->id);
}


void
ngx_http_hris_state_token_drop(ngx_http_hris_gate_t *g)
{
    if (g->hmcf->redis) {
        ngx_http_hris_fleet_drop(g);
        return;
    }

    ngx_http_hris_token_drop(g->hmcf, &g->account->id, &g->token);
}


void
ngx_http_hris_state_token_echo(ngx_http_hris_gate_t *g, ngx_str_t *token,
    time_t until)
{
    if (g->hmcf->redis) {
        /* it goes into headers of other gateways' calls */
        if (ngx_http_hris_value_safe(token->data, token->len)) {
            ngx_http_hris_fleet_echo(g, token, until);
        }

        return;
    }

    (void) ngx_http_hris_token_set(g->hmcf, &g->account->id, token, until);
}


ngx_int_t
ngx_http_hris_state_rate_reserve(ngx_http_hris_gate_t *g, ngx_msec_t *wait)
{
    if (g->hmcf->redis) {
        return ngx_http_hris_fleet_rate(g);
    }

    return ngx_http_hris_state_rate_zone(g, wait);
}


ngx_int_t
ngx_http_hris_state_rate_zone(ngx_http_hris_gate_t *g, ngx_msec_t *wait)
{
    ngx_int_t  rc;

    rc = ngx_http_hris_rate_reserve(g->hmcf, &g->account->id,
                                    g->account->rate_calls,
                                    g->account->rate_window,
                                    g->hlcf->upstream.retry_after_max, wait);

    if (rc == NGX_OK || rc == NGX_BUSY) {
        return rc;
    }

    g->final = ngx_http_hris_state_full(g, "its rate-limit window");

    return NGX_DONE;
}


/* The embedded backend: the account's token in the shared zone. */

static ngx_int_t
ngx_http_hris_state_token_zone(ngx_http_hris_gate_t *g)
{
    ngx_int_t  rc;

    ngx_http_hris_state_reconfigured(g);

    rc = ngx_http_hris_token_get(g->hmcf, &g->account->id, g->request->pool,
                                 0, &g->token);

    switch (rc) {

    case NGX_OK:
        return NGX_OK;

    case NGX_AGAIN:
        /* another worker is exchanging */
        return NGX_BUSY;

    case NGX_DECLINED:
        /* this worker exchanges, with the refresh token the zone keeps */
        return g->account->auth->token->has_refresh
               ? ngx_http_hris_state_refresh(g) : NGX_DECLINED;

    case NGX_ABORT:
        /* refused for good: nothing retries it in a loop */
        return NGX_ABORT;

    default:
        g->final = ngx_http_hris_state_full(g, "its access token");
        return NGX_DONE;
    }
}


/*
 * Once per worker and account: an accounts file reloaded with a new
 * refresh token lifts the mark the zone holds for the old one (the fleet's
 * script does the same in Redis), and the account is told reactivated.
 */

static void
ngx_http_hris_state_reconfigured(ngx_http_hris_gate_t *g)
{
    ngx_http_hris_account_t  *acc = g->account;

    if (acc->base_checked || acc->runtime
        || !acc->auth->token->has_refresh)
    {
        return;
    }

    acc->base_checked = 1;

    if (ngx_http_hris_token_reconfigured(g->hmcf, &acc->id,
                                         acc->refresh_base))
    {
        ngx_http_hris_account_event(g->hmcf, &acc->tenant, &acc->id,
                                    &acc->table->name,
                                    "integrated_account.reactivated", NULL,
                                    g->request->connection->log);
    }
}


/*
 * OAuth2: the refresh token to use, from the shared zone. The first time
 * (after a start, or new credentials) the configured access token is used
 * while it is good, without a call. NGX_OK: g->token is ready. NGX_DONE:
 * answered. NGX_ABORT: needs re-authorization. NGX_DECLINED: refresh now,
 * with g->refresh.
 */

static ngx_int_t
ngx_http_hris_state_refresh(ngx_http_hris_gate_t *g)
{
    time_t                    skew;
    ngx_str_t                 initial, seed;
    ngx_uint_t                fresh;
    ngx_http_hris_account_t  *acc = g->account;

    if (ngx_http_hris_secret_value(g->request, &acc->refresh_initial,
                                   &initial) != NGX_OK)
    {
        ngx_http_hris_token_fail(g->hmcf, &acc->id);
        g->final = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }

    if (ngx_http_hris_refresh_get(g->hmcf, &acc->id, acc->refresh_base,
                                  &initial, g->request->pool, &g->refresh,
                                  &fresh) != NGX_OK)
    {
        ngx_http_hris_token_fail(g->hmcf, &acc->id);
        g->final = ngx_http_hris_state_full(g, "its refresh token");
        return NGX_DONE;
    }

    if (!fresh) {
        return NGX_DECLINED;
    }

    if (acc->state_reauth) {
        (void) ngx_http_hris_refresh_set(g->hmcf, &acc->id, NULL, 1);
        return NGX_ABORT;
    }

    skew = ngx_min(NGX_HTTP_HRIS_TOKEN_SKEW,
                   (acc->seed_expires - ngx_time()) / 2);

    if (acc->seed_token.len == 0 || acc->seed_expires - skew <= ngx_time()
        || ngx_http_hris_secret_value(g->request, &acc->seed_token, &seed)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_hris_token_set(g->hmcf, &acc->id, &seed,
                                acc->seed_expires - skew)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    g->token = seed;

    return NGX_OK;
}


/* The exchange's answer in the shared zone, for every worker. */

static ngx_int_t
ngx_http_hris_state_commit_zone(ngx_http_hris_gate_t *g, ngx_str_t *token,
    time_t until, ngx_str_t *refresh)
{
    ngx_int_t                    rc;
    ngx_http_request_t          *r = g->request;
    ngx_http_hris_token_spec_t  *ts = g->account->auth->token;

    /*
     * The rotated refresh token first: the provider has retired the one
     * before, so this one is all the account has; an access token can
     * always be had again. Losing it is said loudly (never the token).
     */
    if (ts->has_refresh
        && ngx_http_hris_refresh_set(g->hmcf, &g->account->id, refresh, 0)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "hris: integrated account \"%V\": the provider "
                      "rotated its refresh token and the shared memory "
                      "zone has no room to keep the new one: raise "
                      "\"hris_zone_size\"; the account will need to be "
                      "connected again", &g->account->id);

        g->final = ngx_http_hris_send_error(r,
                       NGX_HTTP_INTERNAL_SERVER_ERROR, NULL,
                       "the gateway's shared memory zone is full: the "
                       "provider's new refresh token for this account "
                       "could not be kept; the operator must raise "
                       "\"hris_zone_size\"");
        return NGX_DONE;
    }

    rc = ngx_http_hris_token_set(g->hmcf, &g->account->id, token, until);

    /* whether the access token could be kept or not */
    if (ts->has_refresh) {
        ngx_http_hris_state_save(g->hmcf, r->pool, r->connection->log);
    }

    if (rc == NGX_DECLINED) {
        g->final = ngx_http_hris_send_error(r, NGX_HTTP_BAD_GATEWAY,
                       json_pack("{s:s%}", "provider",
                                 g->account->table->name.data,
                                 g->account->table->name.len),
                       "the provider's access token is %uz bytes long, "
                       "more than the %uz the gateway keeps", token->len,
                       ngx_http_hris_token_max());
        return NGX_DONE;
    }

    if (rc != NGX_OK) {
        g->final = ngx_http_hris_state_full(g, "its access token");
        return NGX_DONE;
    }

    g->token = *token;

    return NGX_OK;
}


/*
 * The shared zone is full of state that must be kept (the error log says
 * so too): only a bigger zone helps.
 */

static ngx_int_t
ngx_http_hris_state_full(ngx_http_hris_gate_t *g, const char *what)
{
    ngx_log_error(NGX_LOG_ERR, g->request->connection->log, 0,
                  "hris: no room in the shared memory zone for %s of "
                  "integrated account \"%V\": raise \"hris_zone_size\"",
                  what, &g->account->id);

    return ngx_http_hris_send_error(g->request,
               NGX_HTTP_INTERNAL_SERVER_ERROR, NULL,
               "the gateway's shared memory zone is full: no room for %s "
               "of this account; the operator must raise \"hris_zone_size\"",
               what);
}


ngx_int_t
ngx_http_hris_state_link_claim(ngx_http_request_t *r, u_char *hash,
    time_t expires, ngx_http_hris_fleet_link_pt handler, void *data)
{
    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    if (hmcf->redis) {
        return ngx_http_hris_fleet_link_claim(r, hash, expires, handler,
                                              data);
    }

    return ngx_http_hris_link_claim(hmcf, hash, expires);
}


ngx_int_t
ngx_http_hris_state_link_check(ngx_http_request_t *r, u_char *hash,
    time_t expires, ngx_http_handler_pt resume)
{
    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    /* embedded: the zone, which the caller reads next, is the whole truth */
    if (hmcf->redis == NULL) {
        return NGX_OK;
    }

    return ngx_http_hris_fleet_link_check(r, hash, expires, resume);
}


void
ngx_http_hris_state_link_release(ngx_http_hris_main_conf_t *hmcf,
    u_char *hash)
{
    ngx_http_hris_link_release(hmcf, hash);

    if (hmcf->redis) {
        ngx_http_hris_fleet_link_release(hmcf, hash);
    }
}


ngx_int_t
ngx_http_hris_state_cooldown_set(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id, u_char *creds, time_t until, ngx_uint_t status)
{
    ngx_int_t  rc;

    /* what the zone says (NGX_OK, or any other success it tells) */
    rc = ngx_http_hris_creds_refuse(hmcf, id, creds, until, status);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (hmcf->redis) {
        ngx_http_hris_fleet_cooldown_publish(hmcf, id, creds, until, status);
    }

    return rc;
}


ngx_int_t
ngx_http_hris_state_idem_begin(ngx_http_request_t *r, ngx_str_t *tenant,
    ngx_str_t *account, ngx_str_t *key, ngx_str_t *body,
    ngx_http_hris_idem_kept_t *kept, ngx_http_hris_idem_begun_pt handler,
    void *data)
{
    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    if (hmcf->redis) {
        return ngx_http_hris_idem_begin_fleet(r, tenant, account, key, body,
                                              kept, handler, data);
    }

    return ngx_http_hris_idem_begin(r, tenant, account, key, body, kept);
}

/*
 * The gate every upstream data call passes: first the account's token
 * (for tables whose auth exchanges credentials for one), then the
 * gateway's own rate limit for the account. Either may make the request
 * wait, always on nginx timers:
 *
 *  - one worker exchanges credentials while the others look again for
 *    its result (single flight across workers, and gateways with Redis);
 *  - a call over the account's rate limit waits for its slot, or, when
 *    that is further away than hris_retry_after_max, the client gets 429
 *    with Retry-After at once.
 *
 * Before both: credentials the provider refused are not sent again for
 * hris_credentials_cooldown (unless they change), so that a client that
 * retries in a loop cannot get the customer's key locked by the provider.
 *
 * The state (tokens, refresh tokens, windows) is asked of the state
 * interface (ngx_http_hris_state_if.h), whichever store keeps it; the
 * gate alone decides what to do with the answer and waits on its timer.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_state_if.h"


static ngx_int_t ngx_http_hris_gate_refused_check(ngx_http_hris_gate_t *g);
static ngx_int_t ngx_http_hris_creds_hash(ngx_http_hris_account_t *acc,
    u_char *out);
static ngx_int_t ngx_http_hris_gate_token(ngx_http_hris_gate_t *g);
static ngx_int_t ngx_http_hris_gate_token_got(ngx_http_hris_gate_t *g,
    ngx_int_t rc);
static ngx_int_t ngx_http_hris_gate_rate(ngx_http_hris_gate_t *g);
static ngx_int_t ngx_http_hris_gate_rate_got(ngx_http_hris_gate_t *g,
    ngx_int_t rc, ngx_msec_t wait);
static ngx_int_t ngx_http_hris_gate_rate_busy(ngx_http_hris_gate_t *g,
    ngx_msec_t wait);
static ngx_int_t ngx_http_hris_gate_reauth(ngx_http_hris_gate_t *g);
static ngx_int_t ngx_http_hris_gate_exchange(ngx_http_hris_gate_t *g);
static void ngx_http_hris_gate_exchanged(ngx_http_hris_call_t *call);
static ngx_int_t ngx_http_hris_gate_store(ngx_http_hris_gate_t *g,
    ngx_http_hris_call_t *call);
static void ngx_http_hris_gate_timer(ngx_event_t *ev);
static void ngx_http_hris_gate_continue(ngx_http_hris_gate_t *g,
    ngx_int_t rc);
static void ngx_http_hris_gate_resume(ngx_http_hris_gate_t *g, ngx_int_t rc);
static void ngx_http_hris_gate_cleanup(void *data);
static ngx_int_t ngx_http_hris_form(ngx_pool_t *pool, ngx_array_t *params,
    ngx_http_hris_tpl_vars_t *vars, ngx_str_t *out);


ngx_int_t
ngx_http_hris_gate_init(ngx_http_hris_gate_t *g, ngx_http_request_t *r,
    ngx_http_hris_account_t *account)
{
    ngx_pool_cleanup_t  *cln;

    g->request = r;
    g->account = account;
    g->hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);
    g->hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hris_module);

    g->timer.handler = ngx_http_hris_gate_timer;
    g->timer.data = r->connection;
    g->timer.log = r->connection->log;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_hris_gate_cleanup;
    cln->data = g;

    return NGX_OK;
}


/*
 * NGX_OK: call now. NGX_AGAIN: g->handler(g) runs later, with g->rc NGX_OK
 * (call now) or NGX_DONE (an error was answered; finalize with g->final).
 * NGX_DONE: an error was answered; finalize with g->final.
 */

ngx_int_t
ngx_http_hris_gate_pass(ngx_http_hris_gate_t *g)
{
    ngx_int_t  rc;

    g->waited = 0;

    rc = ngx_http_hris_gate_refused_check(g);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_hris_gate_token(g);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_hris_gate_rate(g);
}


/*
 * Credentials the provider refused (gate_credentials_refused()) are not
 * sent again for hris_credentials_cooldown: the client gets its 401 at
 * once. The mark holds a hash of the credentials it was made for, so new
 * ones (administration API, connect flow, accounts file) lift it.
 */

static ngx_int_t
ngx_http_hris_gate_refused_check(ngx_http_hris_gate_t *g)
{
    time_t       until;
    ngx_tm_t     tm;
    ngx_uint_t   status;
    u_char       refused[16], creds[16];
    u_char       when[sizeof("2026-01-01T00:00:00Z")];

    if (g->account->auth->type == NGX_HTTP_HRIS_AUTH_NONE
        || ngx_http_hris_creds_refused(g->hmcf, &g->account->id, refused,
                                       &until, &status)
           != NGX_OK)
    {
        return NGX_OK;
    }

    if (ngx_http_hris_creds_hash(g->account, creds) != NGX_OK) {
        g->final = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }

    if (ngx_memcmp(creds, refused, sizeof(creds)) != 0) {
        /* new credentials (the accounts file, reloaded): tried again */
        if (ngx_http_hris_creds_clear(g->hmcf, &g->account->id, refused)) {
            ngx_http_hris_account_event(g->hmcf, &g->account->tenant,
                                        &g->account->id,
                                        &g->account->table->name,
                                        "integrated_account.reactivated",
                                        NULL, g->request->connection->log);
        }

        return NGX_OK;
    }

    ngx_gmtime(until, &tm);
    ngx_sprintf(when, "%4d-%02d-%02dT%02d:%02d:%02dZ%Z", tm.ngx_tm_year,
                tm.ngx_tm_mon, tm.ngx_tm_mday, tm.ngx_tm_hour, tm.ngx_tm_min,
                tm.ngx_tm_sec);

    g->final = ngx_http_hris_send_error(g->request, NGX_HTTP_UNAUTHORIZED,
                   json_pack("{s:s%, s:s%, s:b, s:i, s:I, s:s}",
                             "integrated_account_id", g->account->id.data,
                             g->account->id.len,
                             "provider", g->account->table->name.data,
                             g->account->table->name.len,
                             "credentials_rejected", 1,
                             "upstream_status", (int) status,
                             "retry_after",
                             (json_int_t) ngx_max(until - ngx_time(), 1),
                             "retry_at", (char *) when),
                   "the provider refused the integrated account's "
                   "credentials (upstream %ui), so the gateway does not send "
                   "them again before %s (hris_credentials_cooldown) unless "
                   "they change: check or renew them", status, when);

    return NGX_DONE;
}


/*
 * The provider refused the account's own credentials with this status
 * (a caller that reads such a refusal from a body may say so too).
 */

void
ngx_http_hris_gate_credentials_refused(ngx_http_hris_gate_t *g,
    ngx_uint_t status)
{
    time_t     cooldown = g->hmcf->credentials_cooldown;
    u_char     creds[16];
    ngx_int_t  rc;

    if (cooldown == 0
        || ngx_http_hris_creds_hash(g->account, creds) != NGX_OK)
    {
        return;
    }

    rc = ngx_http_hris_state_cooldown_set(g->hmcf, &g->account->id, creds,
                                          ngx_time() + cooldown, status);
    if (rc == NGX_ERROR) {
        return;
    }

    /* the first refusal since the account was (re)connected: told once */
    if (rc == NGX_DONE) {
        ngx_http_hris_account_event(g->hmcf, &g->account->tenant,
                                    &g->account->id, &g->account->table->name,
                                    "integrated_account.needs_reauth",
                                    "credentials_rejected",
                                    g->request->connection->log);
    }

    ngx_log_error(NGX_LOG_WARN, g->request->connection->log, 0,
                  "hris: the provider refused the credentials of integrated "
                  "account \"%V\" (upstream %ui): they are not sent again "
                  "for %T s (hris_credentials_cooldown) unless they change",
                  &g->account->id, status, cooldown);
}


/* A digest of the account's credentials as configured (sealed or not). */

static ngx_int_t
ngx_http_hris_creds_hash(ngx_http_hris_account_t *acc, u_char *out)
{
    int            ok;
    size_t         len;
    ngx_uint_t     i;
    EVP_MD_CTX    *md;
    ngx_keyval_t  *kv;
    unsigned int   n;
    u_char         digest[EVP_MAX_MD_SIZE];

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return NGX_ERROR;
    }

    ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    kv = acc->credentials.elts;

    for (i = 0; ok && i < acc->credentials.nelts; i++) {
        len = kv[i].key.len;
        ok = EVP_DigestUpdate(md, &len, sizeof(len))
             && EVP_DigestUpdate(md, kv[i].key.data, kv[i].key.len);

        len = kv[i].value.len;
        ok = ok && EVP_DigestUpdate(md, &len, sizeof(len))
             && EVP_DigestUpdate(md, kv[i].value.data, kv[i].value.len);
    }

    ok = ok && EVP_DigestFinal_ex(md, digest, &n);
    EVP_MD_CTX_free(md);

    if (!ok) {
        return NGX_ERROR;
    }

    ngx_memcpy(out, digest, 16);

    return NGX_OK;
}


/*
 * The account's token from the state interface (ngx_http_hris_state_if.h),
 * whichever store keeps it.
 */

static ngx_int_t
ngx_http_hris_gate_token(ngx_http_hris_gate_t *g)
{
    ngx_int_t  rc;

    if (g->account->auth->type != NGX_HTTP_HRIS_AUTH_TOKEN) {
        return NGX_OK;
    }

    g->stage = NGX_HTTP_HRIS_GATE_TOKEN;

    rc = ngx_http_hris_state_token_get(g);

    /* the store answers later: ngx_http_hris_gate_token_ready() */
    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    return ngx_http_hris_gate_token_got(g, rc);
}


/* What the state said of the token; returns as gate_pass() does. */

static ngx_int_t
ngx_http_hris_gate_token_got(ngx_http_hris_gate_t *g, ngx_int_t rc)
{
    ngx_msec_t  poll;

    switch (rc) {

    case NGX_OK:
        return NGX_OK;

    case NGX_DECLINED:
        return ngx_http_hris_gate_exchange(g);

    case NGX_BUSY:
        /* another worker or gateway is exchanging: look again shortly */
        if (g->waited >= g->hlcf->upstream.timeout) {
            g->final = ngx_http_hris_send_error(g->request,
                           NGX_HTTP_GATEWAY_TIME_OUT, NULL,
                           "waited %M ms for the account's access token, "
                           "which another worker or gateway is renewing "
                           "(hris_timeout)", g->waited);
            return NGX_DONE;
        }

        poll = ngx_http_hris_state_token_poll(g->hmcf);
        g->waited += poll;
        ngx_add_timer(&g->timer, poll);
        return NGX_AGAIN;

    case NGX_ABORT:
        g->final = ngx_http_hris_gate_reauth(g);
        return NGX_DONE;

    case NGX_DONE:
    case NGX_AGAIN:                     /* the store answers later */
        return rc;

    default:
        g->final = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }
}


/* The store's answer about the token came: the gate goes on. */

void
ngx_http_hris_gate_token_ready(ngx_http_hris_gate_t *g, ngx_int_t rc)
{
    rc = ngx_http_hris_gate_token_got(g, rc);

    if (rc == NGX_OK) {
        rc = ngx_http_hris_gate_rate(g);
    }

    ngx_http_hris_gate_continue(g, rc);
}


static ngx_int_t
ngx_http_hris_gate_rate(ngx_http_hris_gate_t *g)
{
    ngx_int_t   rc;
    ngx_msec_t  wait;

    if (g->account->rate_calls == 0) {
        return NGX_OK;
    }

    wait = 0;

    rc = ngx_http_hris_state_rate_reserve(g, &wait);

    /* the store answers later: ngx_http_hris_gate_rate_ready() */
    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    return ngx_http_hris_gate_rate_got(g, rc, wait);
}


/* What the state said of the rate limit; returns as gate_pass() does. */

static ngx_int_t
ngx_http_hris_gate_rate_got(ngx_http_hris_gate_t *g, ngx_int_t rc,
    ngx_msec_t wait)
{
    switch (rc) {

    case NGX_OK:
        if (wait == 0) {
            return NGX_OK;
        }

        /* the slot is this call's once the timer fires */
        g->stage = NGX_HTTP_HRIS_GATE_RATE;
        ngx_add_timer(&g->timer, wait);
        return NGX_AGAIN;

    case NGX_DECLINED:
        if (g->waited + wait > g->hlcf->upstream.retry_after_max) {
            return ngx_http_hris_gate_rate_busy(g, wait);
        }

        /* the timer asks the store again */
        g->stage = NGX_HTTP_HRIS_GATE_RATE_AGAIN;
        g->waited += wait;
        ngx_add_timer(&g->timer, wait);
        return NGX_AGAIN;

    case NGX_BUSY:
        return ngx_http_hris_gate_rate_busy(g, wait);

    case NGX_DONE:
        return NGX_DONE;

    default:
        g->final = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }
}


/* The store's answer about the rate limit came: the gate goes on. */

void
ngx_http_hris_gate_rate_ready(ngx_http_hris_gate_t *g, ngx_int_t rc,
    ngx_msec_t wait)
{
    ngx_http_hris_gate_continue(g, ngx_http_hris_gate_rate_got(g, rc, wait));
}


/* the next slot is further away than hris_retry_after_max: 429 */

static ngx_int_t
ngx_http_hris_gate_rate_busy(ngx_http_hris_gate_t *g, ngx_msec_t wait)
{
    ngx_table_elt_t  *h;

    {
        h = ngx_list_push(&g->request->headers_out.headers);
        if (h == NULL) {
            g->final = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return NGX_DONE;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Retry-After");
        h->value.data = ngx_pnalloc(g->request->pool, NGX_TIME_T_LEN);
        if (h->value.data == NULL) {
            g->final = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return NGX_DONE;
        }
        h->value.len = ngx_sprintf(h->value.data, "%M", (wait + 999) / 1000)
                       - h->value.data;

        g->final = ngx_http_hris_send_error(g->request,
                       NGX_HTTP_TOO_MANY_REQUESTS,
                       json_pack("{s:i,s:i}", "rate_limit_calls",
                                 (int) g->account->rate_calls,
                                 "rate_limit_window_ms",
                                 (int) g->account->rate_window),
                       "the provider allows %ui calls per %M ms for this "
                       "account and they are used up; retry after %V "
                       "seconds", g->account->rate_calls,
                       g->account->rate_window, &h->value);
        return NGX_DONE;
    }
}


static ngx_int_t
ngx_http_hris_gate_reauth(ngx_http_hris_gate_t *g)
{
    return ngx_http_hris_send_error(g->request, NGX_HTTP_UNAUTHORIZED,
               json_pack("{s:s%,s:b}", "integrated_account_id",
                         g->account->id.data, g->account->id.len,
                         "needs_reauth", 1),
               "integrated account \"%V\" needs re-authorization: the "
               "provider refused its refresh token; connect the account "
               "again", &g->account->id);
}


/* This worker exchanges the credentials; the others wait for it. */

static ngx_int_t
ngx_http_hris_gate_exchange(ngx_http_hris_gate_t *g)
{
    ngx_http_request_t          *r = g->request;
    ngx_http_hris_call_t        *call;
    ngx_http_hris_tpl_vars_t     vars;
    ngx_http_hris_token_spec_t  *ts = g->account->auth->token;

    ngx_http_hris_gate_vars(g, &vars);

    call = (vars.credentials == NULL)
           ? NULL
           : ngx_http_hris_token_call(r, &g->hlcf->upstream, ts, &vars);
    if (call == NULL) {
        goto failed;
    }

    /*
     * exchanging the account's own credentials again does no harm; a
     * refresh grant may rotate the refresh token, and a second one would
     * spend the token the first answer replaced (invalid_grant)
     */
    call->idempotent = ts->has_refresh ? 0 : 1;
    call->handler = ngx_http_hris_gate_exchanged;
    call->data = g;

    if (ngx_http_hris_call_start(call) != NGX_OK) {
        goto failed;
    }

    g->exchanging = 1;

    return NGX_AGAIN;

failed:

    ngx_http_hris_state_token_release(g);
    g->final = NGX_HTTP_INTERNAL_SERVER_ERROR;

    return NGX_DONE;
}


/*
 * The call that exchanges credentials for a token as the table's token
 * spec says, not started yet: the gate's exchange, and the connect form's
 * check of credentials an end user typed (ngx_http_hris_connect_verify.c).
 */

ngx_http_hris_call_t *
ngx_http_hris_token_call(ngx_http_request_t *r,
    ngx_http_hris_upstream_conf_t *conf, ngx_http_hris_token_spec_t *ts,
    ngx_http_hris_tpl_vars_t *vars)
{
    u_char                 *p;
    json_t                 *body;
    char                   *text;
    ngx_str_t               url, q, name;
    ngx_uint_t              i;
    ngx_http_hris_call_t   *call;
    ngx_http_hris_param_t  *qp;

    call = ngx_http_hris_call_create(r, conf);
    if (call == NULL
        || ngx_http_hris_tpl_render(r->pool, ts->url, vars, 0, &url)
           != NGX_OK)
    {
        return NULL;
    }

    /* the URL, then the query parameters the table adds */
    qp = ts->query.elts;
    call->url = url;

    for (i = 0; i < ts->query.nelts; i++) {
        if (ngx_http_hris_tpl_render(r->pool, qp[i].value, vars, 1, &q)
            != NGX_OK)
        {
            return NULL;
        }

        p = ngx_pnalloc(r->pool, call->url.len + qp[i].name.len + q.len + 3);
        if (p == NULL) {
            return NULL;
        }

        call->url.len = ngx_sprintf(p, "%V%c%V=%V%Z", &call->url,
                                    ngx_strlchr(call->url.data,
                                                call->url.data
                                                + call->url.len, '?')
                                    ? '&' : '?',
                                    &qp[i].name, &q) - p - 1;
        call->url.data = p;
    }

    call->method = ts->method;

    if (ts->form.nelts) {
        if (ngx_http_hris_form(r->pool, &ts->form, vars, &call->body)
            != NGX_OK)
        {
            return NULL;
        }
        ngx_str_set(&name, "Content-Type");
        ngx_str_set(&q, "application/x-www-form-urlencoded");
        if (ngx_http_hris_call_header(call, &name, &q) != NGX_OK) {
            return NULL;
        }

    } else if (ts->body) {
        body = ngx_http_hris_body_render(r->pool, ts->body, vars);
        text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        if (text == NULL) {
            return NULL;
        }

        call->body.len = ngx_strlen(text);
        call->body.data = ngx_pnalloc(r->pool, call->body.len);
        if (call->body.data == NULL) {
            free(text);
            return NULL;
        }
        ngx_memcpy(call->body.data, text, call->body.len);
        free(text);

        ngx_str_set(&name, "Content-Type");
        ngx_str_set(&q, "application/json");
        if (ngx_http_hris_call_header(call, &name, &q) != NGX_OK) {
            return NULL;
        }
    }

    ngx_str_set(&name, "Accept");
    ngx_str_set(&q, "application/json");

    if (ngx_http_hris_call_header(call, &name, &q) != NGX_OK
        || (ts->basic_user
            && ngx_http_hris_basic(call, ts->basic_user, ts->basic_pass,
                                   vars) != NGX_OK))
    {
        return NULL;
    }

    return call;
}


static void
ngx_http_hris_gate_exchanged(ngx_http_hris_call_t *call)
{
    ngx_int_t              rc;
    ngx_http_hris_gate_t  *g = call->data;

    g->exchanging = 0;

    rc = ngx_http_hris_gate_store(g, call);

    ngx_http_hris_metrics_token(g->request, call, rc);

    /* the store answers later: ngx_http_hris_gate_token_ready() */
    if (rc == NGX_AGAIN) {
        return;
    }

    /* an error answered by gate_store() usually returns NGX_OK */
    if (rc != NGX_OK || g->request->header_sent) {
        ngx_http_hris_state_token_release(g);
        g->final = rc;
        ngx_http_hris_gate_resume(g, NGX_DONE);
        return;
    }

    rc = ngx_http_hris_gate_rate(g);

    if (rc != NGX_AGAIN) {
        ngx_http_hris_gate_resume(g, rc);
    }
}


/* The exchange's answer: the token stored for every worker, or an error. */

static ngx_int_t
ngx_http_hris_gate_store(ngx_http_hris_gate_t *g, ngx_http_hris_call_t *call)
{
    json_t                      *body, *v, *want;
    size_t                       i;
    time_t                       ttl;
    ngx_int_t                    rc;
    ngx_str_t                    token, refresh;
    ngx_uint_t                   reauth;
    ngx_http_request_t          *r = g->request;
    ngx_http_hris_token_spec_t  *ts = g->account->auth->token;

    if (call->result == NGX_HTTP_HRIS_CALL_OK
        && (call->status == 400 || call->status == 401
            || call->status == 403))
    {
        /* a refused grant (invalid_grant): only a new authorization helps */
        if (ts->has_reauth) {
            body = json_loadb((char *) call->resp, call->resp_len, 0, NULL);
            v = ngx_http_hris_path_get(&ts->reauth, body, NULL);
            reauth = 0;

            json_array_foreach(ts->reauth_values, i, want) {
                if (v && json_equal(v, want)) {
                    reauth = 1;
                }
            }

            json_decref(body);

            if (reauth) {
                /* Redis: another gateway may have won the race */
                rc = ngx_http_hris_state_token_refused(g);

                return (rc == NGX_AGAIN) ? NGX_AGAIN
                                         : ngx_http_hris_gate_reauth(g);
            }
        }

        /* the exchange only checks credentials: a 401 or 403 is theirs */
        if (call->status != 400) {
            ngx_http_hris_gate_credentials_refused(g, call->status);
        }

        return ngx_http_hris_send_error(r, NGX_HTTP_UNAUTHORIZED,
                   json_pack("{s:s%,s:i}", "provider",
                             g->account->table->name.data,
                             g->account->table->name.len,
                             "upstream_status", (int) call->status),
                   "the provider refused to exchange the integrated "
                   "account's credentials for a token (upstream %ui): "
                   "check them", call->status);
    }

    if (call->result != NGX_HTTP_HRIS_CALL_OK
        || call->status < 200 || call->status > 299)
    {
        return ngx_http_hris_call_status_error(r, call, g->account->table);
    }

    body = json_loadb((char *) call->resp, call->resp_len, 0, NULL);
    v = ngx_http_hris_path_get(&ts->token, body, NULL);

    /* it goes into a header: a line break in it would add headers */
    if (!json_is_string(v) || json_string_length(v) == 0
        || !ngx_http_hris_value_safe((u_char *) json_string_value(v),
                                     json_string_length(v)))
    {
        json_decref(body);
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_GATEWAY, NULL,
                   "the provider's token answer has no usable token (a "
                   "string without control characters) where the mapping "
                   "table says (%V)", &g->account->table->file);
    }

    token.len = json_string_length(v);
    token.data = ngx_pnalloc(r->pool, token.len + 1);
    if (token.data == NULL) {
        json_decref(body);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_memcpy(token.data, json_string_value(v), token.len + 1);

    ttl = ts->ttl;
    if (ts->has_expires_in) {
        v = ngx_http_hris_path_get(&ts->expires_in, body, NULL);
        if (json_is_integer(v) && json_integer_value(v) > 0) {
            ttl = (time_t) json_integer_value(v);
        }
    }

    /* a rotated refresh token; an answer without one keeps the old */
    ngx_str_null(&refresh);

    if (ts->has_refresh) {
        v = ngx_http_hris_path_get(&ts->refresh, body, NULL);
        if (json_is_string(v) && json_string_length(v)) {
            refresh.len = json_string_length(v);
            refresh.data = ngx_pnalloc(r->pool, refresh.len);
            if (refresh.data == NULL) {
                json_decref(body);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
            ngx_memcpy(refresh.data, json_string_value(v), refresh.len);
        }
    }

    json_decref(body);

    /* stored as "good until": renewed a little before the provider's end */
    rc = ngx_http_hris_state_token_commit(g, &token,
             ngx_time() + ttl - ngx_min(NGX_HTTP_HRIS_TOKEN_SKEW, ttl / 2),
             &refresh);

    return (rc == NGX_DONE) ? g->final : rc;
}


static void
ngx_http_hris_gate_timer(ngx_event_t *ev)
{
    ngx_int_t              rc;
    ngx_http_hris_gate_t  *g;

    g = (ngx_http_hris_gate_t *)
            ((u_char *) ev - offsetof(ngx_http_hris_gate_t, timer));

    if (g->stage == NGX_HTTP_HRIS_GATE_TOKEN) {
        rc = ngx_http_hris_gate_token(g);
        if (rc == NGX_OK) {
            rc = ngx_http_hris_gate_rate(g);
        }

    } else if (g->stage == NGX_HTTP_HRIS_GATE_RATE_AGAIN) {
        rc = ngx_http_hris_gate_rate(g);

    } else {
        rc = NGX_OK;                    /* the rate-limit slot is ours */
    }

    ngx_http_hris_gate_continue(g, rc);
}


/* A stage went on later (a timer, the store's answer): resume the gate. */

static void
ngx_http_hris_gate_continue(ngx_http_hris_gate_t *g, ngx_int_t rc)
{
    ngx_connection_t  *c = g->request->connection;

    if (rc != NGX_AGAIN) {
        ngx_http_hris_gate_resume(g, rc);
    }

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_hris_gate_resume(ngx_http_hris_gate_t *g, ngx_int_t rc)
{
    g->rc = rc;
    g->handler(g);
}


/*
 * Every answer of the provider passes here: credentials it refused, and
 * token echo (a provider that hands back a newer token in a header).
 */

void
ngx_http_hris_gate_answered(ngx_http_hris_gate_t *g,
    ngx_http_hris_call_t *call)
{
    ngx_str_t                    v;
    ngx_uint_t                   i;
    ngx_keyval_t                *kv;
    ngx_http_hris_token_spec_t  *ts = g->account->auth->token;

    /*
     * A 401 to static credentials: nothing renews them (a token's 401 is
     * the token's, renewed by the caller)
     */
    if (call->result == NGX_HTTP_HRIS_CALL_OK
        && call->status == NGX_HTTP_UNAUTHORIZED
        && g->account->auth->type != NGX_HTTP_HRIS_AUTH_TOKEN
        && g->account->auth->type != NGX_HTTP_HRIS_AUTH_NONE)
    {
        ngx_http_hris_gate_credentials_refused(g, call->status);
    }

    if (ts == NULL || ts->echo_header.len == 0
        || call->status < 200 || call->status > 299)
    {
        return;
    }

    kv = call->headers_out.elts;

    for (i = 0; kv && i < call->headers_out.nelts; i++) {
        if (kv[i].key.len != ts->echo_header.len
            || ngx_strncasecmp(kv[i].key.data, ts->echo_header.data,
                               ts->echo_header.len) != 0)
        {
            continue;
        }

        v = kv[i].value;
        if (v.len > 7 && ngx_strncasecmp(v.data, (u_char *) "Bearer ", 7)
                         == 0)
        {
            v.data += 7;
            v.len -= 7;
        }

        if (v.len == 0
            || (v.len == g->token.len
                && ngx_memcmp(v.data, g->token.data, v.len) == 0))
        {
            return;
        }

        ngx_http_hris_state_token_echo(g, &v, ngx_time() + ts->ttl);

        return;
    }
}


/* Whether an answer's status means the provider refused the token. */

ngx_uint_t
ngx_http_hris_token_refused(ngx_http_hris_auth_t *auth, ngx_uint_t status)
{
    ngx_uint_t   i, *s;

    if (auth->type != NGX_HTTP_HRIS_AUTH_TOKEN) {
        return 0;
    }

    s = auth->token->renew_on.elts;

    for (i = 0; i < auth->token->renew_on.nelts; i++) {
        if (s[i] == status) {
            return 1;
        }
    }

    return 0;
}


/* The provider refused the token: forget it so the next pass renews it. */

void
ngx_http_hris_gate_refused(ngx_http_hris_gate_t *g)
{
    if (g->token.len) {
        ngx_http_hris_state_token_drop(g);
        g->token.len = 0;
    }
}


void
ngx_http_hris_gate_vars(ngx_http_hris_gate_t *g,
    ngx_http_hris_tpl_vars_t *vars)
{
    vars->context = &g->account->context;
    vars->credentials = ngx_http_hris_credentials(g->request, g->account);
    vars->base_url = g->account->base_url;
    vars->token_url = g->account->token_url;
    vars->token = g->token;
    vars->refresh_token = g->refresh;
}


static void
ngx_http_hris_gate_cleanup(void *data)
{
    ngx_http_hris_gate_t  *g = data;

    if (g->timer.timer_set) {
        ngx_del_timer(&g->timer);
    }

    /* the request died mid-exchange: let another take over at once */
    if (g->exchanging) {
        ngx_http_hris_state_token_release(g);
        g->exchanging = 0;
    }
}


/* name=value&... with templates rendered and escaped */

static ngx_int_t
ngx_http_hris_form(ngx_pool_t *pool, ngx_array_t *params,
    ngx_http_hris_tpl_vars_t *vars, ngx_str_t *out)
{
    u_char                 *p;
    size_t                  len;
    ngx_str_t              *values;
    ngx_uint_t              i;
    ngx_http_hris_param_t  *fp;

    fp = params->elts;
    values = ngx_palloc(pool, params->nelts * sizeof(ngx_str_t));
    if (values == NULL) {
        return NGX_ERROR;
    }

    len = 0;

    for (i = 0; i < params->nelts; i++) {
        if (ngx_http_hris_tpl_render(pool, fp[i].value, vars, 1, &values[i])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
        len += fp[i].name.len + values[i].len + 2;
    }

    p = ngx_pnalloc(pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    for (i = 0; i < params->nelts; i++) {
        if (i) {
            *p++ = '&';
        }
        p = ngx_sprintf(p, "%V=%V", &fp[i].name, &values[i]);
    }

    out->len = p - out->data;

    return NGX_OK;
}


/* Injects the table's headers and the account's credentials. */

ngx_int_t
ngx_http_hris_apply_auth(ngx_http_hris_call_t *call,
    ngx_http_hris_account_t *account, ngx_http_hris_tpl_vars_t *vars)
{
    u_char                 *p;
    ngx_str_t               token, value, name;
    ngx_uint_t              i;
    ngx_pool_t             *pool = call->request->pool;
    ngx_http_hris_param_t  *hp;
    ngx_http_hris_table_t  *t = account->table;
    ngx_http_hris_auth_t   *a = account->auth;

    vars->context = &account->context;
    vars->base_url = account->base_url;
    vars->token_url = account->token_url;

    /* sealed values are opened here, for this call only */
    vars->credentials = ngx_http_hris_credentials(call->request, account);
    if (vars->credentials == NULL) {
        return NGX_ERROR;
    }

    hp = t->headers.elts;
    for (i = 0; i < t->headers.nelts; i++) {
        if (ngx_http_hris_tpl_render(pool, hp[i].value, vars, 0, &value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* an optional header (an unset context key) is not sent at all */
        if (value.len
            && ngx_http_hris_call_header(call, &hp[i].name, &value) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    switch (a->type) {

    case NGX_HTTP_HRIS_AUTH_BASIC:
        return ngx_http_hris_basic(call, a->user, a->pass, vars);

    case NGX_HTTP_HRIS_AUTH_BEARER:
        if (ngx_http_hris_tpl_render(pool, a->bearer, vars, 0, &token)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        value.len = sizeof("Bearer ") - 1 + token.len;
        value.data = ngx_pnalloc(pool, value.len);
        if (value.data == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(value.data, "Bearer ", sizeof("Bearer ") - 1);
        ngx_memcpy(p, token.data, token.len);

        ngx_str_set(&name, "Authorization");
        return ngx_http_hris_call_header(call, &name, &value);

    case NGX_HTTP_HRIS_AUTH_TOKEN:
        if (ngx_http_hris_tpl_render(pool, a->token->value, vars, 0, &value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_hris_call_header(call, &a->token->header, &value);

    case NGX_HTTP_HRIS_AUTH_HEADER:
        hp = a->headers.elts;
        for (i = 0; i < a->headers.nelts; i++) {
            if (ngx_http_hris_tpl_render(pool, hp[i].value, vars, 0, &value)
                != NGX_OK
                || ngx_http_hris_call_header(call, &hp[i].name, &value)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
        return NGX_OK;

    default:
        /* none; body credentials go in with the body */
        return NGX_OK;
    }
}


/* Authorization: Basic base64(user:password) */

ngx_int_t
ngx_http_hris_basic(ngx_http_hris_call_t *call, ngx_http_hris_tpl_t *user,
    ngx_http_hris_tpl_t *pass, ngx_http_hris_tpl_vars_t *vars)
{
    u_char      *p;
    ngx_str_t    u, pw, plain, value, enc, name;
    ngx_pool_t  *pool = call->request->pool;

    if (ngx_http_hris_tpl_render(pool, user, vars, 0, &u) != NGX_OK
        || ngx_http_hris_tpl_render(pool, pass, vars, 0, &pw) != NGX_OK)
    {
        return NGX_ERROR;
    }

    plain.len = u.len + 1 + pw.len;
    plain.data = ngx_pnalloc(pool, plain.len);
    value.data = ngx_pnalloc(pool, sizeof("Basic ") - 1
                                   + ngx_base64_encoded_length(plain.len));
    if (plain.data == NULL || value.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(plain.data, u.data, u.len);
    *p++ = ':';
    ngx_memcpy(p, pw.data, pw.len);

    p = ngx_cpymem(value.data, "Basic ", sizeof("Basic ") - 1);
    enc.data = p;
    ngx_encode_base64(&enc, &plain);
    value.len = sizeof("Basic ") - 1 + enc.len;

    ngx_str_set(&name, "Authorization");

    return ngx_http_hris_call_header(call, &name, &value);
}

/*
 * Provider webhooks in: "location /webhooks/ { hris_webhooks; }" takes
 * POST /webhooks/{integrated_account_id} (and .../{token} for a table
 * whose token is in the path), verifies it as the account's mapping table
 * says (ngx_http_hris_webhooks.h), and emits one record.* event per
 * record the body names. The answer is sent at once: nothing here calls
 * the provider (a provider allows a few seconds, and retries otherwise).
 *
 * A caller that cannot prove it is the account's provider learns nothing:
 * an unknown account, an account whose provider has no "webhooks" section
 * or lacks the credential, a wrong signature or token and a stale
 * timestamp all get the same 401; the error log says which it was.
 *
 * The same delivery twice (providers retry when an answer is slow or
 * lost) is answered 200 and emits nothing: a digest of the account and the
 * provider's event id (or the body) is remembered for a day in a zone of
 * this file's ("hris_webhooks_in", a fixed size: the oldest digests of a set
 * give way, so a flood can only make a duplicate pass, never block), or
 * with hris_redis in Redis (SET NX EX), so that a fleet emits it once.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_metrics.h"
#include "ngx_http_hris_events.h"
#include "ngx_http_hris_redis.h"
#include "ngx_http_hris_webhooks_in.h"


#define NGX_HTTP_HRIS_WH_BODY_MAX     (1024 * 1024)
#define NGX_HTTP_HRIS_WH_EVENTS_MAX   1000
#define NGX_HTTP_HRIS_WH_FIELDS_MAX   200
#define NGX_HTTP_HRIS_WH_KEEP         86400
#define NGX_HTTP_HRIS_WH_ZONE_SIZE    (1024 * 1024)
#define NGX_HTTP_HRIS_WH_WAYS         8


typedef struct {
    u_char                       digest[16];
    time_t                       expires;
} ngx_http_hris_wh_seen_t;


typedef struct {
    ngx_uint_t                   nsets;
    ngx_http_hris_wh_seen_t      seen[1];     /* nsets * WAYS */
} ngx_http_hris_wh_sh_t;


typedef struct {
    ngx_str_t                    id;
    ngx_str_t                    token;       /* in the path, or empty */
    ngx_log_handler_pt           log_handler; /* nginx's, while quiet */
    ngx_http_hris_account_t     *account;
    json_t                      *body;        /* parsed, owned by the pool */
    json_t                      *list;        /* its events, or NULL: one */
    u_char                       digest[32];  /* of the delivery */
} ngx_http_hris_wh_ctx_t;


static ngx_int_t ngx_http_hris_wh_zone_init(ngx_shm_zone_t *zone,
    void *data);
static ngx_int_t ngx_http_hris_wh_log_quiet(ngx_http_request_t *r,
    ngx_http_hris_wh_ctx_t *ctx);
static void ngx_http_hris_wh_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_hris_wh_receive(ngx_http_request_t *r,
    ngx_http_hris_wh_ctx_t *ctx, ngx_str_t *body);
static ngx_int_t ngx_http_hris_wh_refuse(ngx_http_request_t *r,
    ngx_str_t *id, const char *why);
static ngx_int_t ngx_http_hris_wh_digest(ngx_http_hris_wh_ctx_t *ctx,
    ngx_str_t *text);
static ngx_int_t ngx_http_hris_wh_fleet_seen(ngx_http_request_t *r,
    ngx_http_hris_wh_ctx_t *ctx);
static void ngx_http_hris_wh_fleet_reply(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data);
static ngx_int_t ngx_http_hris_wh_events(ngx_http_request_t *r,
    ngx_http_hris_wh_ctx_t *ctx, ngx_int_t seen);
static ngx_uint_t ngx_http_hris_wh_emit(ngx_http_request_t *r,
    ngx_http_hris_account_t *acc, json_t *event);
static json_t *ngx_http_hris_wh_changed(ngx_http_hris_webhooks_t *wh,
    json_t *v);
static ngx_int_t ngx_http_hris_wh_text(json_t *v, char *buf, size_t size);


static ngx_str_t  ngx_http_hris_wh_zone_name = ngx_string("hris_webhooks_in");
static ngx_shm_zone_t  *ngx_http_hris_wh_zone;


/* "hris_webhooks_in": the zone of deliveries seen (module.c sets the rest) */

ngx_int_t
ngx_http_hris_webhooks_conf(ngx_conf_t *cf)
{
    ngx_http_hris_wh_zone = ngx_shared_memory_add(cf,
                                &ngx_http_hris_wh_zone_name,
                                NGX_HTTP_HRIS_WH_ZONE_SIZE,
                                &ngx_http_hris_module);
    if (ngx_http_hris_wh_zone == NULL) {
        return NGX_ERROR;
    }

    ngx_http_hris_wh_zone->init = ngx_http_hris_wh_zone_init;

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_wh_zone_init(ngx_shm_zone_t *zone, void *data)
{
    size_t                  size;
    ngx_uint_t              nsets;
    ngx_slab_pool_t        *shpool;
    ngx_http_hris_wh_sh_t  *sh;

    /* a reload keeps what was seen */
    if (data) {
        zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (zone->shm.exists) {
        zone->data = shpool->data;
        return NGX_OK;
    }

    /* half the zone: the slab allocator's pages take their share */
    nsets = zone->shm.size / 2
            / (NGX_HTTP_HRIS_WH_WAYS * sizeof(ngx_http_hris_wh_seen_t));
    size = sizeof(ngx_http_hris_wh_sh_t)
           + nsets * NGX_HTTP_HRIS_WH_WAYS * sizeof(ngx_http_hris_wh_seen_t);

    sh = ngx_slab_calloc(shpool, size);
    if (sh == NULL) {
        return NGX_ERROR;
    }

    sh->nsets = nsets;
    shpool->data = sh;
    zone->data = sh;

    return NGX_OK;
}


/*
 * NGX_OK: first seen (now remembered); NGX_DECLINED: seen within a day.
 * The digest picks a set; a full set forgets its oldest entry.
 */

static ngx_int_t
ngx_http_hris_wh_seen(u_char *digest)
{
    time_t                    now;
    uint32_t                  h;
    ngx_int_t                 rc;
    ngx_uint_t                i;
    ngx_slab_pool_t          *shpool;
    ngx_http_hris_wh_sh_t    *sh;
    ngx_http_hris_wh_seen_t  *set, *old;

    shpool = (ngx_slab_pool_t *) ngx_http_hris_wh_zone->shm.addr;
    sh = ngx_http_hris_wh_zone->data;
    now = ngx_time();

    ngx_memcpy(&h, digest, sizeof(h));
    set = &sh->seen[(h % sh->nsets) * NGX_HTTP_HRIS_WH_WAYS];
    old = set;
    rc = NGX_OK;

    ngx_shmtx_lock(&shpool->mutex);

    for (i = 0; i < NGX_HTTP_HRIS_WH_WAYS; i++) {
        if (set[i].expires > now
            && ngx_memcmp(set[i].digest, digest, 16) == 0)
        {
            rc = NGX_DECLINED;
            break;
        }

        if (set[i].expires < old->expires) {
            old = &set[i];
        }
    }

    if (rc == NGX_OK) {
        ngx_memcpy(old->digest, digest, 16);
        old->expires = now + NGX_HTTP_HRIS_WH_KEEP;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    return rc;
}


ngx_int_t
ngx_http_hris_webhooks_handler(ngx_http_request_t *r)
{
    u_char                  *slash;
    ngx_int_t                rc;
    ngx_str_t                rest;
    ngx_http_hris_wh_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_hris_wh_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_hris_module);

    if (ngx_http_hris_wh_log_quiet(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->method != NGX_HTTP_POST) {
        ngx_http_hris_metrics_webhook_in(NGX_HTTP_NOT_ALLOWED);
        return ngx_http_hris_send_error(r, NGX_HTTP_NOT_ALLOWED, NULL,
                   "method %V is not allowed: a provider POSTs its webhooks "
                   "to {location}/{integrated_account_id}", &r->method_name);
    }

    ngx_http_hris_subpath(r, &rest);

    slash = ngx_strlchr(rest.data, rest.data + rest.len, '/');

    ctx->id.data = rest.data;
    ctx->id.len = (slash ? slash : rest.data + rest.len) - rest.data;

    if (slash) {
        ctx->token.data = slash + 1;
        ctx->token.len = rest.data + rest.len - (slash + 1);
    }

    if (ctx->id.len == 0
        || (ctx->token.len
            && ngx_strlchr(ctx->token.data, ctx->token.data + ctx->token.len,
                           '/')))
    {
        ngx_http_hris_metrics_webhook_in(NGX_HTTP_NOT_FOUND);
        return ngx_http_hris_send_error(r, NGX_HTTP_NOT_FOUND, NULL,
                   "unknown path \"%V\": a provider POSTs its webhooks to "
                   "{location}/{integrated_account_id}", &r->uri);
    }

    if (r->headers_in.content_length_n > NGX_HTTP_HRIS_WH_BODY_MAX) {
        ngx_http_hris_metrics_webhook_in(
            NGX_HTTP_REQUEST_ENTITY_TOO_LARGE);
        return ngx_http_hris_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                   NULL, "a webhook body may hold %d bytes at most",
                   NGX_HTTP_HRIS_WH_BODY_MAX);
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_hris_wh_body);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_hris_wh_body(ngx_http_request_t *r)
{
    ngx_int_t                rc;
    ngx_str_t                body;
    ngx_http_hris_wh_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hris_module);

    /* a body in a temp file is answered 413 there (never read blocking) */
    rc = ngx_http_hris_request_body(r, &body);
    if (rc != NGX_OK || r->header_sent) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (body.len > NGX_HTTP_HRIS_WH_BODY_MAX) {
        ngx_http_hris_metrics_webhook_in(
            NGX_HTTP_REQUEST_ENTITY_TOO_LARGE);
        rc = ngx_http_hris_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                 NULL, "a webhook body may hold %d bytes at most",
                 NGX_HTTP_HRIS_WH_BODY_MAX);
        ngx_http_finalize_request(r, rc);
        return;
    }

    rc = ngx_http_hris_wh_receive(r, ctx, &body);

    /* NGX_DONE: Redis answers first; the reply's handler finalizes */
    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


static ngx_int_t
ngx_http_hris_wh_receive(ngx_http_request_t *r, ngx_http_hris_wh_ctx_t *ctx,
    ngx_str_t *body)
{
    json_t                      *js, *list;
    ngx_str_t                    secret;
    ngx_uint_t                   k;
    const char                  *why;
    json_error_t                 jerr;
    ngx_keyval_t                *kv;
    ngx_array_t                 *creds;
    ngx_http_hris_account_t     *acc;
    ngx_http_hris_webhooks_t    *wh;
    ngx_http_hris_main_conf_t   *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    acc = ngx_http_hris_account_get(r, hmcf, &ctx->id);
    if (acc == NULL) {
        return ngx_http_hris_wh_refuse(r, &ctx->id, "no such account");
    }

    wh = acc->table->webhooks;
    if (wh == NULL) {
        return ngx_http_hris_wh_refuse(r, &ctx->id, "its mapping table has "
                                       "no \"webhooks\" section");
    }

    creds = ngx_http_hris_credentials(r, acc);
    if (creds == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_null(&secret);
    kv = creds->elts;

    for (k = 0; k < creds->nelts; k++) {
        if (ngx_http_hris_str_eq(&kv[k].key, &wh->credential)) {
            secret = kv[k].value;
        }
    }

    if (secret.len == 0) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "hris: a webhook for integrated account \"%V\" cannot "
                      "be verified: give the account the credential \"%V\"",
                      &ctx->id, &wh->credential);
        return ngx_http_hris_wh_refuse(r, &ctx->id, "the account lacks the "
                                       "credential");
    }

    why = ngx_http_hris_webhooks_verify(r, wh, &ctx->token, &secret, body);
    if (why) {
        return ngx_http_hris_wh_refuse(r, &ctx->id, why);
    }

    js = json_loadb((char *) body->data, body->len, 0, &jerr);
    if (js == NULL || ngx_http_hris_json_cleanup(r->pool, js) != NGX_OK) {
        json_decref(js);
        ngx_http_hris_metrics_webhook_in(NGX_HTTP_BAD_REQUEST);
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "the webhook body is not JSON: %s", jerr.text);
    }

    list = wh->events ? ngx_http_hris_path_get(wh->events, js, NULL) : NULL;

    if (wh->events && (!json_is_array(list)
                       || json_array_size(list)
                          > NGX_HTTP_HRIS_WH_EVENTS_MAX))
    {
        ngx_http_hris_metrics_webhook_in(NGX_HTTP_BAD_REQUEST);
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "the webhook body must hold an array of at most %d "
                   "events where the provider's mapping table says",
                   NGX_HTTP_HRIS_WH_EVENTS_MAX);
    }

    ctx->account = acc;
    ctx->body = js;
    ctx->list = list;

    if (ngx_http_hris_wh_digest(ctx, body) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (hmcf->redis) {
        return ngx_http_hris_wh_fleet_seen(r, ctx);
    }

    return ngx_http_hris_wh_events(r, ctx, ngx_http_hris_wh_seen(ctx->digest));
}


/* seen: NGX_OK for a new delivery, NGX_DECLINED for one seen already */

static ngx_int_t
ngx_http_hris_wh_events(ngx_http_request_t *r, ngx_http_hris_wh_ctx_t *ctx,
    ngx_int_t seen)
{
    json_t      *one;
    size_t       i;
    ngx_uint_t   received, ignored;

    if (seen == NGX_DECLINED) {
        ngx_http_hris_metrics_webhook_in(NGX_HTTP_OK);
        return ngx_http_hris_send_json(r, NGX_HTTP_OK,
                   json_pack("{s:{s:i,s:b}}", "result", "received", 0,
                             "duplicate", 1), NULL);
    }

    received = 0;
    ignored = 0;

    if (ctx->list == NULL) {
        received = ngx_http_hris_wh_emit(r, ctx->account, ctx->body);
        ignored = !received;

    } else {
        json_array_foreach(ctx->list, i, one) {
            if (ngx_http_hris_wh_emit(r, ctx->account, one)) {
                received++;

            } else {
                ignored++;
            }
        }
    }

    ngx_http_hris_metrics_webhook_in(NGX_HTTP_OK);
    return ngx_http_hris_send_json(r, NGX_HTTP_OK,
               json_pack("{s:{s:I,s:I}}", "result",
                         "received", (json_int_t) received,
                         "ignored", (json_int_t) ignored), NULL);
}


/*
 * With hris_redis: SET hris:{acct:<id>}:webhook:<digest> NX EX, so that of
 * the gateways a provider's retries reach, one emits. Redis down: the
 * zone decides (each gateway then drops its own duplicates).
 */

static ngx_int_t
ngx_http_hris_wh_fleet_seen(ngx_http_request_t *r,
    ngx_http_hris_wh_ctx_t *ctx)
{
    u_char                      *p;
    ngx_str_t                    argv[6];
    ngx_http_hris_redis_t       *rd;
    ngx_http_hris_main_conf_t   *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);
    rd = ((ngx_http_hris_redis_conf_t *) hmcf->redis)->client;

    argv[1].len = sizeof("hris:{acct:}:webhook:") - 1 + ctx->account->id.len
                  + 32;
    argv[1].data = ngx_pnalloc(r->pool, argv[1].len);
    if (argv[1].data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the hash tag keeps the account's keys in one slot */
    p = ngx_sprintf(argv[1].data, "hris:{acct:%V}:webhook:",
                    &ctx->account->id);
    ngx_hex_dump(p, ctx->digest, 16);

    ngx_str_set(&argv[0], "SET");
    ngx_str_set(&argv[2], "1");
    ngx_str_set(&argv[3], "NX");
    ngx_str_set(&argv[4], "EX");
    ngx_str_set(&argv[5], "86400");

    if (rd == NULL
        || ngx_http_hris_redis_command(rd, r->pool, 6, argv,
                                       ngx_http_hris_wh_fleet_reply, r)
           == NULL)
    {
        return ngx_http_hris_wh_events(r, ctx,
                                       ngx_http_hris_wh_seen(ctx->digest));
    }

    return NGX_DONE;
}


static void
ngx_http_hris_wh_fleet_reply(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
    ngx_http_request_t  *r = data;

    ngx_int_t                seen;
    ngx_connection_t        *c;
    ngx_http_hris_wh_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hris_module);
    c = r->connection;

    if (status == NGX_HTTP_HRIS_REDIS_REPLY
        && reply->type == NGX_HTTP_HRIS_REDIS_NIL)
    {
        seen = NGX_DECLINED;

    } else if (status == NGX_HTTP_HRIS_REDIS_REPLY
               && reply->type == NGX_HTTP_HRIS_REDIS_STRING)
    {
        seen = NGX_OK;

    } else {
        ngx_log_error(NGX_LOG_WARN, c->log, 0, "hris: Redis did not say "
                      "whether a webhook for integrated account \"%V\" was "
                      "delivered before: this gateway's memory decides",
                      &ctx->account->id);
        seen = ngx_http_hris_wh_seen(ctx->digest);
    }

    ngx_http_finalize_request(r, ngx_http_hris_wh_events(r, ctx, seen));
    ngx_http_run_posted_requests(c);
}


/*
 * While a webhook request runs, its log lines say the client but not the
 * request line: a table's token may be in the path or the query (nginx's
 * own handler comes back with the request's pool cleanup).
 */

static u_char *
ngx_http_hris_wh_log_handler(ngx_log_t *log, u_char *buf, size_t len)
{
    ngx_http_log_ctx_t  *ctx = log->data;

    if (ctx == NULL || ctx->connection == NULL) {
        return buf;
    }

    return ngx_snprintf(buf, len, ", client: %V, a webhook",
                        &ctx->connection->addr_text);
}


static void
ngx_http_hris_wh_log_restore(void *data)
{
    ngx_http_request_t  *r = data;
    ngx_http_hris_wh_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hris_module);

    if (ctx && r->connection->log->handler == ngx_http_hris_wh_log_handler) {
        r->connection->log->handler = ctx->log_handler;
    }
}


static ngx_int_t
ngx_http_hris_wh_log_quiet(ngx_http_request_t *r, ngx_http_hris_wh_ctx_t *ctx)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    ctx->log_handler = r->connection->log->handler;
    r->connection->log->handler = ngx_http_hris_wh_log_handler;

    cln->handler = ngx_http_hris_wh_log_restore;
    cln->data = r;

    return NGX_OK;
}


/* One answer for every request that does not prove its provider. */

static ngx_int_t
ngx_http_hris_wh_refuse(ngx_http_request_t *r, ngx_str_t *id,
    const char *why)
{
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "hris: a webhook for integrated account \"%V\" was "
                  "refused: %s", id, why);

    ngx_http_hris_metrics_webhook_in(NGX_HTTP_UNAUTHORIZED);
    return ngx_http_hris_send_error(r, NGX_HTTP_UNAUTHORIZED, NULL,
               "the webhook was not verified: give the provider this URL "
               "with the integrated account's id, and the account the "
               "provider's signing secret or token (the gateway's error log "
               "says what failed)");
}


/*
 * What makes a delivery the same: the account and the provider's event id
 * (of a single event), or the account and the raw body.
 */

static ngx_int_t
ngx_http_hris_wh_digest(ngx_http_hris_wh_ctx_t *ctx, ngx_str_t *text)
{
    char                       id[256];
    unsigned int               len;
    EVP_MD_CTX                *md;
    ngx_uint_t                 ok;
    ngx_http_hris_account_t   *acc = ctx->account;
    ngx_http_hris_webhooks_t  *wh = acc->table->webhooks;

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return NGX_ERROR;
    }

    ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1
         && EVP_DigestUpdate(md, acc->id.data, acc->id.len + 1) == 1;

    if (wh->event_id && ctx->list == NULL
        && ngx_http_hris_wh_text(ngx_http_hris_path_get(wh->event_id,
                                                        ctx->body, NULL),
                                 id, sizeof(id))
           == NGX_OK)
    {
        ok = ok && EVP_DigestUpdate(md, "event\0", 6) == 1
             && EVP_DigestUpdate(md, id, ngx_strlen(id)) == 1;

    } else {
        ok = ok && EVP_DigestUpdate(md, "body\0", 5) == 1
             && EVP_DigestUpdate(md, text->data, text->len) == 1;
    }

    ok = ok && EVP_DigestFinal_ex(md, ctx->digest, &len) == 1;

    EVP_MD_CTX_free(md);

    return ok ? NGX_OK : NGX_ERROR;
}


/* One provider event: 1 when it became a record.* event. */

static ngx_uint_t
ngx_http_hris_wh_emit(ngx_http_request_t *r, ngx_http_hris_account_t *acc,
    json_t *event)
{
    char                       name[128], id[256];
    json_t                    *data, *changed;
    ngx_uint_t                 i;
    ngx_http_hris_wh_event_t  *ev;
    ngx_http_hris_webhooks_t  *wh = acc->table->webhooks;

    if (ngx_http_hris_wh_text(ngx_http_hris_path_get(&wh->event, event,
                                                     NULL),
                              name, sizeof(name))
        != NGX_OK)
    {
        return 0;
    }

    ev = wh->map.elts;

    for (i = 0; i < wh->map.nelts; i++) {
        if (ngx_strcmp(ev[i].name.data, name) == 0) {
            break;
        }
    }

    /* an event the table does not map (a sickness, a logbook entry) */
    if (i == wh->map.nelts) {
        return 0;
    }

    ev = &ev[i];

    if (ngx_http_hris_wh_text(ngx_http_hris_path_get(ev->id, event, NULL),
                              id, sizeof(id))
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "hris: a webhook event \"%s\" for integrated account "
                      "\"%V\" names no record id where the table says: "
                      "ignored", name, &acc->id);
        return 0;
    }

    data = json_pack("{s:s%,s:s%,s:s,s:s}",
                     "integrated_account_id", acc->id.data, acc->id.len,
                     "provider", acc->table->name.data, acc->table->name.len,
                     "resource", ev->resource.data, "id", id);
    if (data == NULL) {
        return 0;
    }

    changed = ev->changed ? ngx_http_hris_wh_changed(wh,
                                ngx_http_hris_path_get(ev->changed, event,
                                                       NULL))
                          : NULL;

    if (changed && json_object_set_new(data, "changed_fields", changed)
                   != 0)
    {
        json_decref(data);
        return 0;
    }

#if (NGX_DEBUG)
    if (r->connection->log->log_level & NGX_LOG_DEBUG_HTTP) {
        char  *text = json_dumps(data, JSON_COMPACT|JSON_SORT_KEYS);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "hris webhook %s: %s", ev->type, text ? text : "");
        free(text);
    }
#endif

    ngx_http_hris_event_emit(ngx_http_get_module_main_conf(r,
                                 ngx_http_hris_module),
                             &acc->tenant, ev->type, data,
                             r->connection->log);
    return 1;
}


/*
 * The changed fields: an array of names (or one name), each the unified
 * name when the table's "fields" maps it, else the provider's as sent.
 */

static json_t *
ngx_http_hris_wh_changed(ngx_http_hris_webhooks_t *wh, json_t *v)
{
    size_t   i;
    json_t  *out, *one, *name;

    if (v == NULL || !(json_is_array(v) || json_is_string(v))) {
        return NULL;
    }

    out = json_array();

    for (i = 0; out && i < NGX_HTTP_HRIS_WH_FIELDS_MAX; i++) {
        one = json_is_array(v) ? json_array_get(v, i) : (i ? NULL : v);
        if (one == NULL) {
            break;
        }

        if (!json_is_string(one)) {
            continue;
        }

        name = wh->fields ? json_object_get(wh->fields,
                                            json_string_value(one))
                          : NULL;

        if (json_array_append(out, name ? name : one) != 0) {
            json_decref(out);
            return NULL;
        }
    }

    return out;
}


/* A string or an integer, as text (ids and event names come as either). */

static ngx_int_t
ngx_http_hris_wh_text(json_t *v, char *buf, size_t size)
{
    if (json_is_integer(v)) {
        ngx_snprintf((u_char *) buf, size, "%L%Z",
                     (int64_t) json_integer_value(v));
        return NGX_OK;
    }

    if (!json_is_string(v) || json_string_length(v) == 0
        || json_string_length(v) >= size
        || ngx_strlen(json_string_value(v)) != json_string_length(v))
    {
        return NGX_ERROR;
    }

    ngx_memcpy(buf, json_string_value(v), json_string_length(v) + 1);

    return NGX_OK;
}

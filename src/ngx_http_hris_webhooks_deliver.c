/*
 * Webhook deliveries (CONTRACT section 8): a timer in each worker claims
 * due events from the zone (ngx_http_hris_wh_claim(): one worker per
 * event, under the zone's lock, with a lease that outlives the attempt;
 * with hris_redis, ngx_http_hris_webhooks_queue.c claims the fleet's
 * queue and hands its deliveries to ngx_http_hris_wh_deliver_start())
 * and posts them with the worker's curl multi handle, as calls of no
 * client request: each has a pool of its own, destroyed when it ends.
 * At most conf->concurrency deliveries run in a worker at a time.
 *
 * Standard Webhooks: "webhook-id" (the event's id), "webhook-timestamp"
 * (Unix seconds) and "webhook-signature: v1,<base64 HMAC-SHA256>" keyed
 * with the base64-decoded part of the secret after "whsec_", over
 * "<id>.<timestamp>.<body>".
 *
 * The URL is checked again before each attempt (hris_allowed_urls may
 * have changed), and unless it is under a prefix of hris_allowed_urls,
 * each address curl is about to connect to must be public: a name that
 * resolves to loopback or a private network is refused at that moment.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>

#include "ngx_http_hris_webhooks.h"
#include "ngx_http_hris_metrics.h"


#define NGX_HTTP_HRIS_WH_TICK  1000         /* ms between claims */


typedef struct {
    ngx_event_t                  timer;
    ngx_http_hris_wh_conf_t     *conf;
    ngx_uint_t                   inflight;
} ngx_http_hris_wh_worker_t;


typedef struct {
    ngx_pool_t                  *pool;
    ngx_http_hris_wh_claim_t    *claim;
    ngx_http_hris_wh_conf_t     *conf;
    ngx_uint_t                   listed;   /* any address: the operator's */
    ngx_uint_t                   refused;  /* an address was not public */
} ngx_http_hris_wh_delivery_t;


static void ngx_http_hris_wh_tick(ngx_event_t *ev);
static ngx_int_t ngx_http_hris_wh_send(ngx_http_hris_wh_delivery_t *d);
static ngx_int_t ngx_http_hris_wh_sign(ngx_pool_t *pool,
    ngx_http_hris_wh_claim_t *c, ngx_str_t *ts, ngx_str_t *sig);
static ngx_int_t ngx_http_hris_wh_header(ngx_http_hris_call_t *call,
    char *name, ngx_str_t *value);
static curl_socket_t ngx_http_hris_wh_open_socket(void *data,
    curlsocktype purpose, struct curl_sockaddr *addr);
static void ngx_http_hris_wh_done(ngx_http_hris_call_t *call);
static void ngx_http_hris_wh_end(ngx_http_hris_wh_delivery_t *d,
    ngx_uint_t status, time_t retry_after);


static ngx_http_hris_wh_worker_t  ngx_http_hris_wh_worker;


ngx_int_t
ngx_http_hris_wh_deliver_init_process(ngx_cycle_t *cycle,
    ngx_http_hris_wh_conf_t *conf)
{
    ngx_http_hris_wh_worker_t  *w = &ngx_http_hris_wh_worker;

    w->conf = conf;
    w->timer.handler = ngx_http_hris_wh_tick;
    w->timer.data = w;
    w->timer.log = cycle->log;

    /* a worker that is told to quit does not wait for this timer */
    w->timer.cancelable = 1;

    /* the workers' ticks spread over the second */
    ngx_add_timer(&w->timer, ngx_random() % NGX_HTTP_HRIS_WH_TICK + 1);

    return NGX_OK;
}


static void
ngx_http_hris_wh_tick(ngx_event_t *ev)
{
    ngx_pool_t                   *pool;
    ngx_http_hris_wh_claim_t     *c;
    ngx_http_hris_wh_worker_t    *w = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    /* a change whose write was skipped (a writer busy or gone) */
    ngx_http_hris_wh_spool_save(w->conf, ev->log);

    while (w->inflight < w->conf->concurrency) {
        pool = ngx_create_pool(4096, ngx_cycle->log);
        if (pool == NULL) {
            break;
        }

        if (ngx_http_hris_wh_claim(w->conf, pool, 1, &c) == 0
            || ngx_http_hris_wh_deliver_start(pool, c) != NGX_OK)
        {
            ngx_destroy_pool(pool);
            break;
        }
    }

    ngx_add_timer(ev, NGX_HTTP_HRIS_WH_TICK);
}


/* how many more deliveries this worker may start now */

ngx_uint_t
ngx_http_hris_wh_deliver_room(void)
{
    ngx_http_hris_wh_worker_t  *w = &ngx_http_hris_wh_worker;

    if (w->conf == NULL || w->inflight >= w->conf->concurrency) {
        return 0;
    }

    return w->conf->concurrency - w->inflight;
}


/*
 * An attempt at a claimed delivery (the zone's or the fleet's queue),
 * in the claim's pool, which it owns from now on unless NGX_ERROR.
 */

ngx_int_t
ngx_http_hris_wh_deliver_start(ngx_pool_t *pool, ngx_http_hris_wh_claim_t *c)
{
    ngx_http_hris_wh_worker_t    *w = &ngx_http_hris_wh_worker;
    ngx_http_hris_wh_delivery_t  *d;

    d = ngx_pcalloc(pool, sizeof(ngx_http_hris_wh_delivery_t));
    if (d == NULL) {
        return NGX_ERROR;
    }

    d->pool = pool;
    d->claim = c;
    d->conf = w->conf;
    w->inflight++;

    if (ngx_http_hris_wh_send(d) != NGX_OK) {
        ngx_http_hris_wh_end(d, 0, -1);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_wh_send(ngx_http_hris_wh_delivery_t *d)
{
    ngx_int_t                  rc;
    ngx_str_t                  ts, sig, id;
    ngx_http_hris_call_t      *call;
    ngx_http_hris_wh_claim_t  *c = d->claim;

    rc = ngx_http_hris_wh_url_check(d->conf->hmcf, &c->url);
    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0, "hris: webhook %*s "
                      "of tenant \"%V\": its URL is no longer allowed "
                      "(\"hris_allowed_urls\"): not sent",
                      (size_t) NGX_HTTP_HRIS_WH_ID_LEN, c->sub, &c->tenant);
        return NGX_ERROR;
    }

    d->listed = ngx_http_hris_url_listed(d->conf->hmcf, &c->url);

    if (ngx_http_hris_wh_sign(d->pool, c, &ts, &sig) != NGX_OK) {
        return NGX_ERROR;
    }

    call = ngx_http_hris_call_create_bg(d->pool, ngx_cycle->log,
                                        &d->conf->upstream);
    if (call == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&call->method, "POST");
    call->url = c->url;
    call->body = c->body;
    call->retry = 0;
    call->idempotent = 1;       /* receivers deduplicate on webhook-id */
    call->handler = ngx_http_hris_wh_done;
    call->data = d;

    id.data = c->evt;
    id.len = NGX_HTTP_HRIS_EVT_ID_LEN;

    if (ngx_http_hris_wh_header(call, "Content-Type",
                                &(ngx_str_t) ngx_string("application/json"))
        != NGX_OK
        || ngx_http_hris_wh_header(call, "webhook-id", &id) != NGX_OK
        || ngx_http_hris_wh_header(call, "webhook-timestamp", &ts) != NGX_OK
        || ngx_http_hris_wh_header(call, "webhook-signature", &sig)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    curl_easy_setopt(call->easy, CURLOPT_OPENSOCKETFUNCTION,
                     ngx_http_hris_wh_open_socket);
    curl_easy_setopt(call->easy, CURLOPT_OPENSOCKETDATA, d);

    return ngx_http_hris_call_start(call);
}


static ngx_int_t
ngx_http_hris_wh_header(ngx_http_hris_call_t *call, char *name,
    ngx_str_t *value)
{
    ngx_str_t  n;

    n.data = (u_char *) name;
    n.len = ngx_strlen(name);

    return ngx_http_hris_call_header(call, &n, value);
}


/* webhook-timestamp and webhook-signature for this attempt */

static ngx_int_t
ngx_http_hris_wh_sign(ngx_pool_t *pool, ngx_http_hris_wh_claim_t *c,
    ngx_str_t *ts, ngx_str_t *sig)
{
    u_char        *p;
    ngx_str_t      key, enc, mac_s;
    unsigned int   mac_len;
    u_char         mac[EVP_MAX_MD_SIZE];
    u_char         buf[NGX_HTTP_HRIS_WH_SECRET_MAX];
    size_t         len;
    u_char        *msg;

    ts->data = ngx_pnalloc(pool, NGX_TIME_T_LEN);
    if (ts->data == NULL) {
        return NGX_ERROR;
    }

    ts->len = ngx_sprintf(ts->data, "%T", ngx_time()) - ts->data;

    if (c->secret.len <= sizeof("whsec_") - 1) {
        return NGX_ERROR;
    }

    enc.data = c->secret.data + sizeof("whsec_") - 1;
    enc.len = c->secret.len - (sizeof("whsec_") - 1);
    key.data = buf;

    if (ngx_base64_decoded_length(enc.len) > sizeof(buf)
        || ngx_decode_base64(&key, &enc) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* "<id>.<timestamp>.<body>" */
    len = NGX_HTTP_HRIS_EVT_ID_LEN + 1 + ts->len + 1 + c->body.len;
    msg = ngx_pnalloc(pool, len);
    if (msg == NULL) {
        OPENSSL_cleanse(buf, sizeof(buf));
        return NGX_ERROR;
    }

    p = ngx_cpymem(msg, c->evt, NGX_HTTP_HRIS_EVT_ID_LEN);
    *p++ = '.';
    p = ngx_cpymem(p, ts->data, ts->len);
    *p++ = '.';
    ngx_memcpy(p, c->body.data, c->body.len);

    p = HMAC(EVP_sha256(), key.data, (int) key.len, msg, len, mac, &mac_len);

    OPENSSL_cleanse(buf, sizeof(buf));

    if (p == NULL) {
        return NGX_ERROR;
    }

    sig->data = ngx_pnalloc(pool, sizeof("v1,") - 1
                                  + ngx_base64_encoded_length(mac_len));
    if (sig->data == NULL) {
        return NGX_ERROR;
    }

    mac_s.data = mac;
    mac_s.len = mac_len;
    enc.data = ngx_cpymem(sig->data, "v1,", sizeof("v1,") - 1);
    ngx_encode_base64(&enc, &mac_s);

    sig->len = sizeof("v1,") - 1 + enc.len;

    return NGX_OK;
}


/*
 * curl is about to connect to one of the name's addresses: a tenant's URL
 * reaches loopback, private and link-local networks only when the
 * operator listed it.
 */

static curl_socket_t
ngx_http_hris_wh_open_socket(void *data, curlsocktype purpose,
    struct curl_sockaddr *addr)
{
    ngx_http_hris_wh_delivery_t  *d = data;

    if (!d->listed && !ngx_http_hris_wh_addr_public(&addr->addr)) {
        d->refused = 1;
        return CURL_SOCKET_BAD;
    }

    return socket(addr->family, addr->socktype, addr->protocol);
}


static void
ngx_http_hris_wh_done(ngx_http_hris_call_t *call)
{
    ngx_uint_t                    status;
    ngx_http_hris_wh_delivery_t  *d = call->data;

    status = (call->result == NGX_HTTP_HRIS_CALL_OK
              || call->result == NGX_HTTP_HRIS_CALL_TOO_LARGE)
             ? call->status : 0;

    if (d->refused) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0, "hris: webhook %*s "
                      "of tenant \"%V\": its host resolves to a loopback, "
                      "private or link-local address, which only "
                      "\"hris_allowed_urls\" allows: not sent",
                      (size_t) NGX_HTTP_HRIS_WH_ID_LEN, d->claim->sub,
                      &d->claim->tenant);
    }

    ngx_http_hris_wh_end(d, status, call->retry_after);
}


/* an attempt ended: its outcome into the zone, its memory freed */

static void
ngx_http_hris_wh_end(ngx_http_hris_wh_delivery_t *d, ngx_uint_t status,
    time_t retry_after)
{
    ngx_http_hris_wh_claim_t  *c = d->claim;

    ngx_http_hris_metrics_delivery(status);

    if (status >= 200 && status < 300) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0, "hris: event %*s "
                      "delivered to webhook %*s of tenant \"%V\" (%ui, "
                      "attempt %ui)", (size_t) NGX_HTTP_HRIS_EVT_ID_LEN,
                      c->evt, (size_t) NGX_HTTP_HRIS_WH_ID_LEN, c->sub,
                      &c->tenant, status, c->attempts + 1);
    }

    if (c->fleet) {
        ngx_http_hris_wh_queue_settle(d->conf, c, status, retry_after,
                                      ngx_cycle->log);

    } else {
        ngx_http_hris_wh_settle(d->conf, c, status, retry_after,
                                ngx_cycle->log);
    }

    ngx_http_hris_wh_worker.inflight--;

    /* ends the call too (its cleanup is the pool's) */
    ngx_destroy_pool(d->pool);
}

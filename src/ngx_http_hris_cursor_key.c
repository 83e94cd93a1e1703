/*
 * The key that seals cursors and connect links (ngx_http_hris_cursor.c).
 *
 *  - hris_cursor_secret set: derived from it, the same on every start;
 *  - otherwise, one gateway: made by the master at start;
 *  - otherwise, with hris_redis: the fleet's key, kept in Redis at
 *    hris:{global}:cursor_key. Each worker offers the master's key with
 *    SET NX and adopts whatever the key then holds, so the first gateway
 *    to ask sets it for all, and a cursor or a link issued by one gateway
 *    opens at every other (CONTRACT.md §9). hmcf->cursor_key_ready says
 *    whether the worker has it; ngx_http_hris_module.c sets it at start.
 *
 * Until a worker knows the fleet's key, what needs it waits a little (the
 * first answer from Redis normally comes within a millisecond of the
 * worker's start) or gets 503 naming the store: never a cursor sealed
 * with a key of its own. Once known, the key stays in the worker; on each
 * reconnection it is offered again, so a Redis that lost its data gets it
 * back, and a worker that finds another key there (a Redis emptied, then
 * seeded by a new gateway first) logs it and adopts it, so the fleet
 * converges on one key.
 *
 * The key never appears in a log line.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_redis.h"


#define NGX_HTTP_HRIS_KEY_PENDING      0   /* first answer not in yet */
#define NGX_HTTP_HRIS_KEY_READY        1
#define NGX_HTTP_HRIS_KEY_UNAVAILABLE  2   /* the store did not give it */

#define NGX_HTTP_HRIS_KEY_RETRY_MIN    100
#define NGX_HTTP_HRIS_KEY_RETRY_MAX    5000


typedef struct {
    ngx_http_hris_main_conf_t   *hmcf;
    ngx_http_hris_redis_t       *rd;
    ngx_uint_t                   state;
    ngx_http_hris_redis_cmd_t   *cmd;       /* in flight */
    ngx_queue_t                  waiters;
    ngx_event_t                  retry;
    ngx_msec_t                   backoff;
    ngx_log_t                   *log;
} ngx_http_hris_key_fetch_t;


typedef struct {
    ngx_queue_t                  queue;
    ngx_http_request_t          *request;
    ngx_http_handler_pt          resume;
    ngx_event_t                  ev;        /* its time limit, or a wake-up */
    ngx_uint_t                   queued;
} ngx_http_hris_key_waiter_t;


static void ngx_http_hris_cursor_key_send(ngx_http_hris_key_fetch_t *kf);
static void ngx_http_hris_cursor_key_reply(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data);
static void ngx_http_hris_cursor_key_failed(ngx_http_hris_key_fetch_t *kf,
    ngx_uint_t retry);
static void ngx_http_hris_cursor_key_on_connect(void *data);
static void ngx_http_hris_cursor_key_retry(ngx_event_t *ev);
static void ngx_http_hris_cursor_key_wake(ngx_http_hris_key_fetch_t *kf);
static void ngx_http_hris_cursor_key_waited(ngx_event_t *ev);
static void ngx_http_hris_cursor_key_waiter_cleanup(void *data);
static ngx_int_t ngx_http_hris_cursor_key_unavailable(ngx_http_request_t *r);


static ngx_str_t  ngx_http_hris_cursor_key_name =
    ngx_string("hris:{global}:cursor_key");

/* offer ARGV[1], keep what is there: one round trip, atomic */
static ngx_http_hris_redis_script_t  ngx_http_hris_cursor_key_script;
static char  ngx_http_hris_cursor_key_lua[] =
    "redis.call('SET', KEYS[1], ARGV[1], 'NX')\n"
    "return redis.call('GET', KEYS[1])\n";


/* In a worker: with hris_redis and no secret, ask the store. */

ngx_int_t
ngx_http_hris_cursor_key_init_process(ngx_cycle_t *cycle,
    ngx_http_hris_main_conf_t *hmcf)
{
    ngx_http_hris_key_fetch_t   *kf;
    ngx_http_hris_redis_conf_t  *rcf = hmcf->redis;

    if (hmcf->cursor_key_ready || rcf == NULL || rcf->client == NULL) {
        return NGX_OK;
    }

    kf = ngx_pcalloc(cycle->pool, sizeof(ngx_http_hris_key_fetch_t));
    if (kf == NULL) {
        return NGX_ERROR;
    }

    kf->hmcf = hmcf;
    kf->rd = rcf->client;
    kf->log = cycle->log;
    kf->state = NGX_HTTP_HRIS_KEY_PENDING;
    kf->backoff = NGX_HTTP_HRIS_KEY_RETRY_MIN;
    ngx_queue_init(&kf->waiters);

    kf->retry.handler = ngx_http_hris_cursor_key_retry;
    kf->retry.data = kf;
    kf->retry.log = cycle->log;
    kf->retry.cancelable = 1;

    if (ngx_http_hris_cursor_key_script.text.len == 0) {
        ngx_http_hris_redis_script_init(&ngx_http_hris_cursor_key_script,
                                        ngx_http_hris_cursor_key_lua);
    }

    hmcf->cursor_fetch = kf;

    ngx_http_hris_redis_on_connect(kf->rd,
                                   ngx_http_hris_cursor_key_on_connect, kf);

    /* queued while the client connects */
    ngx_http_hris_cursor_key_send(kf);

    return NGX_OK;
}


static void
ngx_http_hris_cursor_key_send(ngx_http_hris_key_fetch_t *kf)
{
    ngx_str_t  argv[2];
    u_char     hex[64];

    if (kf->cmd) {
        return;
    }

    /* before adoption the master's random key, after it the fleet's */
    ngx_hex_dump(hex, kf->hmcf->cursor_key, sizeof(kf->hmcf->cursor_key));

    argv[0] = ngx_http_hris_cursor_key_name;
    argv[1].data = hex;
    argv[1].len = sizeof(hex);

    kf->cmd = ngx_http_hris_redis_eval(kf->rd, NULL,
                                       &ngx_http_hris_cursor_key_script, 1, 2,
                                       argv, ngx_http_hris_cursor_key_reply,
                                       kf);
    if (kf->cmd == NULL) {
        ngx_http_hris_cursor_key_failed(kf, 1);
    }
}


static void
ngx_http_hris_cursor_key_reply(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
    ngx_http_hris_key_fetch_t  *kf = data;

    u_char      *p;
    ngx_int_t    n;
    ngx_uint_t   i;
    u_char       key[32];

    kf->cmd = NULL;

    /* unreachable: the next connection sends it again (on_connect) */
    if (status != NGX_HTTP_HRIS_REDIS_REPLY) {
        ngx_http_hris_cursor_key_failed(kf, 0);
        return;
    }

    if (reply->type == NGX_HTTP_HRIS_REDIS_ERROR) {
        /* e.g. READONLY from a replica, OOM */
        ngx_log_error(NGX_LOG_ERR, kf->log, 0, "hris_redis: %V could not "
                      "give the cursor key (%V): %V",
                      ngx_http_hris_redis_name(kf->rd),
                      &ngx_http_hris_cursor_key_name, &reply->str);
        ngx_http_hris_cursor_key_failed(kf, 1);
        return;
    }

    n = NGX_ERROR;

    if (reply->type == NGX_HTTP_HRIS_REDIS_BULK && reply->str.len == 64) {
        p = reply->str.data;
        for (i = 0; i < sizeof(key); i++) {
            n = ngx_hextoi(p + 2 * i, 2);
            if (n == NGX_ERROR) {
                break;
            }
            key[i] = (u_char) n;
        }
    }

    if (n == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, kf->log, 0, "hris_redis: %V holds at "
                      "%V something other than 64 hex digits: delete it, "
                      "and the gateways set a new key",
                      ngx_http_hris_redis_name(kf->rd),
                      &ngx_http_hris_cursor_key_name);
        ngx_http_hris_cursor_key_failed(kf, 1);
        return;
    }

    kf->backoff = NGX_HTTP_HRIS_KEY_RETRY_MIN;

    if (kf->hmcf->cursor_key_ready) {
        if (ngx_memcmp(key, kf->hmcf->cursor_key, sizeof(key)) == 0) {
            return;
        }

        ngx_log_error(NGX_LOG_WARN, kf->log, 0, "hris_redis: %V holds "
                      "another cursor key than this worker's (did Redis "
                      "lose its data?): adopting it; cursors and connect "
                      "links this gateway issued before no longer open",
                      ngx_http_hris_redis_name(kf->rd));
    }

    ngx_memcpy(kf->hmcf->cursor_key, key, sizeof(key));
    ngx_explicit_memzero(key, sizeof(key));

    if (!kf->hmcf->cursor_key_ready) {
        ngx_log_error(NGX_LOG_INFO, kf->log, 0, "hris_redis: the key that "
                      "seals cursors and connect links is the fleet's, "
                      "from %V", ngx_http_hris_redis_name(kf->rd));
    }

    kf->hmcf->cursor_key_ready = 1;
    kf->state = NGX_HTTP_HRIS_KEY_READY;

    ngx_http_hris_cursor_key_wake(kf);
}


/*
 * The store did not give the key: requests waiting for the first answer
 * get their 503 now. retry: Redis answered, but not with the key; try
 * again on a timer (when unreachable, the next connection tries again).
 */

static void
ngx_http_hris_cursor_key_failed(ngx_http_hris_key_fetch_t *kf,
    ngx_uint_t retry)
{
    if (kf->state == NGX_HTTP_HRIS_KEY_PENDING) {
        kf->state = NGX_HTTP_HRIS_KEY_UNAVAILABLE;
        ngx_http_hris_cursor_key_wake(kf);
    }

    if (!retry || kf->retry.timer_set || ngx_exiting) {
        return;
    }

    ngx_add_timer(&kf->retry, kf->backoff / 2
                              + (ngx_msec_t) ngx_random() % (kf->backoff / 2));
    kf->backoff = ngx_min(kf->backoff * 2, NGX_HTTP_HRIS_KEY_RETRY_MAX);
}


static void
ngx_http_hris_cursor_key_on_connect(void *data)
{
    ngx_http_hris_key_fetch_t  *kf = data;

    ngx_http_hris_cursor_key_send(kf);
}


static void
ngx_http_hris_cursor_key_retry(ngx_event_t *ev)
{
    ngx_http_hris_key_fetch_t  *kf = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_http_hris_cursor_key_send(kf);
}


/* -- requests that need the key ------------------------------------------ */


/*
 * NGX_OK: the key is known, go on. Otherwise an answer for the content
 * handler to return: NGX_DONE when the request waits for the store's
 * first answer (resume() then runs it again, as the content handler runs),
 * or the rc of a 503 sent (r->header_sent is then set). Without resume,
 * no waiting: 503 at once.
 */

ngx_int_t
ngx_http_hris_cursor_key_wait(ngx_http_request_t *r,
    ngx_http_handler_pt resume)
{
    ngx_pool_cleanup_t          *cln;
    ngx_http_hris_main_conf_t   *hmcf;
    ngx_http_hris_key_fetch_t   *kf;
    ngx_http_hris_key_waiter_t  *w;
    ngx_http_hris_redis_conf_t  *rcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    if (hmcf->cursor_key_ready) {
        return NGX_OK;
    }

    kf = hmcf->cursor_fetch;

    if (kf == NULL || kf->state != NGX_HTTP_HRIS_KEY_PENDING
        || resume == NULL)
    {
        return ngx_http_hris_cursor_key_unavailable(r);
    }

    w = ngx_pcalloc(r->pool, sizeof(ngx_http_hris_key_waiter_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (w == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    w->request = r;
    w->resume = resume;
    w->ev.handler = ngx_http_hris_cursor_key_waited;
    w->ev.data = w;
    w->ev.log = r->connection->log;

    cln->handler = ngx_http_hris_cursor_key_waiter_cleanup;
    cln->data = w;

    /* no longer than one connection attempt and one command */
    rcf = hmcf->redis;
    ngx_add_timer(&w->ev, rcf->connect_timeout + rcf->timeout);

    ngx_queue_insert_tail(&kf->waiters, &w->queue);
    w->queued = 1;

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_hris_cursor_key_wake(ngx_http_hris_key_fetch_t *kf)
{
    ngx_queue_t                 *q;
    ngx_http_hris_key_waiter_t  *w;

    while (!ngx_queue_empty(&kf->waiters)) {
        q = ngx_queue_head(&kf->waiters);
        ngx_queue_remove(q);

        w = ngx_queue_data(q, ngx_http_hris_key_waiter_t, queue);
        w->queued = 0;

        if (w->ev.timer_set) {
            ngx_del_timer(&w->ev);
        }

        ngx_post_event(&w->ev, &ngx_posted_events);
    }
}


/* Woken (the store answered) or out of time. */

static void
ngx_http_hris_cursor_key_waited(ngx_event_t *ev)
{
    ngx_int_t                    rc;
    ngx_connection_t            *c;
    ngx_http_request_t          *r;
    ngx_http_hris_main_conf_t   *hmcf;
    ngx_http_hris_key_waiter_t  *w = ev->data;

    if (w->queued) {
        ngx_queue_remove(&w->queue);
        w->queued = 0;
    }

    r = w->request;
    c = r->connection;
    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    rc = hmcf->cursor_key_ready ? w->resume(r)
                                : ngx_http_hris_cursor_key_unavailable(r);

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_hris_cursor_key_waiter_cleanup(void *data)
{
    ngx_http_hris_key_waiter_t  *w = data;

    if (w->queued) {
        ngx_queue_remove(&w->queue);
        w->queued = 0;
    }

    if (w->ev.timer_set) {
        ngx_del_timer(&w->ev);
    }

    if (w->ev.posted) {
        ngx_delete_posted_event(&w->ev);
    }
}


static ngx_int_t
ngx_http_hris_cursor_key_unavailable(ngx_http_request_t *r)
{
    ngx_str_t                    retry = ngx_string("1");
    ngx_http_hris_main_conf_t   *hmcf;
    ngx_http_hris_redis_conf_t  *rcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);
    rcf = hmcf->redis;

    if (ngx_http_hris_header_out(r, "Retry-After", &retry) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_hris_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
               json_pack("{s:s}", "store", "redis"),
               "the state store (hris_redis %V) cannot be used now: "
               "cursors and connect links are sealed with the key the "
               "gateways share through it, which this one does not have "
               "yet; retry shortly",
               &rcf->name);
}

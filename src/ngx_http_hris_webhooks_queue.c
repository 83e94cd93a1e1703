/*
 * The fleet's queue of webhook deliveries (hris_redis): any gateway
 * delivers any event, one gateway at a time attempts a given delivery,
 * and a gateway that dies or is scaled away leaves its events to the
 * others.
 *
 *     hris:{webhooks}:q          sorted set: delivery id -> when it is due
 *                                (ms since the epoch, Redis's clock)
 *     hris:{webhooks}:d          hash: delivery id -> {"evt", "sub",
 *                                "tenant", "body", "created", "attempts"}
 *     hris:{webhooks}:t:TENANT   set: the tenant's delivery ids (its cap)
 *
 * A delivery's id is its subscription's id then its event's. Every step
 * is one script, so that the steps of two gateways never interleave:
 *
 *   push   (emit) the delivery, due now, unless the tenant holds
 *          NGX_HTTP_HRIS_WH_TENANT_QUEUE undelivered ones already;
 *   claim  up to N due deliveries: each is due again only when its lease
 *          ends (hris_webhook_timeout + 10 s), so that a gateway that
 *          died with it leaves it to the others, and no other gateway
 *          takes it meanwhile; the lease's end is the claim's token;
 *   done   (delivered, given up, 410) out of the three keys;
 *   retry  due again after the next delay, one attempt more, if the
 *          lease is still this claim's.
 *
 * Each worker claims every NGX_HTTP_HRIS_WH_QUEUE_POLL ms, and at once
 * after one of its emits was queued, while its zone holds any
 * subscription. The subscription's URL and secret
 * come from the gateway's zone (the fleet's subscriptions are mirrored
 * there by ngx_http_hris_webhooks_fleet.c); a delivery whose subscription
 * the zone does not hold yet is left for a second later, and one whose
 * subscription Redis no longer holds is dropped.
 *
 * Redis unreachable: an emit falls back to the gateway's zone (logged),
 * which this gateway delivers as without hris_redis; a claimed delivery
 * whose outcome cannot be written is due again when its lease ends
 * (at least once: receivers deduplicate on webhook-id).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_webhooks.h"
#include "ngx_http_hris_redis.h"


#define NGX_HTTP_HRIS_WH_QUEUE_POLL    300     /* ms between claims */
#define NGX_HTTP_HRIS_WH_QUEUE_CLAIM   16      /* deliveries per claim */
#define NGX_HTTP_HRIS_WH_QUEUE_LEASE   10000   /* ms beyond the timeout */
#define NGX_HTTP_HRIS_WH_QUEUE_AGAIN   1000    /* ms: not mirrored yet */

#define NGX_HTTP_HRIS_WH_QID_LEN                                             \
    (NGX_HTTP_HRIS_WH_ID_LEN + NGX_HTTP_HRIS_EVT_ID_LEN)


typedef struct {
    ngx_http_hris_wh_conf_t     *conf;
    ngx_event_t                  timer;
    ngx_queue_t                  pushes;      /* on their way to Redis */
    unsigned                     busy:1;      /* a claim is on its way */
} ngx_http_hris_wh_queue_t;


/* an emit on its way to Redis: what the zone takes if Redis cannot */
typedef struct {
    ngx_queue_t                  queue;
    ngx_http_hris_wh_conf_t     *conf;
    u_char                       evt[NGX_HTTP_HRIS_EVT_ID_LEN];
    u_char                       sub[NGX_HTTP_HRIS_WH_ID_LEN];
    char                         type[40];
    ngx_str_t                    tenant;
    ngx_str_t                    body;
    time_t                       created;
} ngx_http_hris_wh_push_t;


static void ngx_http_hris_wh_queue_tick(ngx_event_t *ev);
static void ngx_http_hris_wh_queue_claim(ngx_http_hris_wh_queue_t *wq);
static void ngx_http_hris_wh_queue_pushed(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);
static void ngx_http_hris_wh_queue_fallback(ngx_http_hris_wh_push_t *p,
    ngx_log_t *log);
static void ngx_http_hris_wh_queue_claimed(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);
static void ngx_http_hris_wh_queue_take(ngx_http_hris_wh_queue_t *wq,
    ngx_str_t *id, ngx_str_t *value, ngx_uint_t held, ngx_str_t *lease);
static ngx_int_t ngx_http_hris_wh_queue_parse(ngx_pool_t *pool,
    ngx_str_t *value, ngx_http_hris_wh_claim_t *c);
static ngx_int_t ngx_http_hris_wh_queue_done(ngx_http_hris_wh_conf_t *conf,
    u_char *sub, u_char *evt, ngx_str_t *tenant);
static ngx_int_t ngx_http_hris_wh_queue_retry(ngx_http_hris_wh_conf_t *conf,
    ngx_http_hris_wh_claim_t *c, uint64_t delay, ngx_uint_t attempts);
static char *ngx_http_hris_wh_queue_json(ngx_http_hris_wh_claim_t *c,
    ngx_uint_t attempts);
static void ngx_http_hris_wh_queue_written(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);


static ngx_str_t  ngx_http_hris_wh_queue_q = ngx_string("hris:{webhooks}:q");
static ngx_str_t  ngx_http_hris_wh_queue_d = ngx_string("hris:{webhooks}:d");
static ngx_str_t  ngx_http_hris_wh_queue_subs =
    ngx_string("hris:{webhooks}:subs");

#define NGX_HTTP_HRIS_WH_QUEUE_T  "hris:{webhooks}:t:"


/* Redis's clock, in ms; the writes after TIME replicate as effects */
#define NGX_HTTP_HRIS_WH_QUEUE_NOW                                           \
    "if redis.replicate_commands then redis.replicate_commands() end\n"      \
    "local t = redis.call('TIME')\n"                                         \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

/* KEYS: q, d, t. ARGV: id, JSON, cap. 1: queued; 0: held; -1: full */
static ngx_http_hris_redis_script_t  ngx_http_hris_wh_queue_push_script;
static char  ngx_http_hris_wh_queue_push_lua[] =
    NGX_HTTP_HRIS_WH_QUEUE_NOW
    "if redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[3]) then\n"
    "  return -1\n"
    "end\n"
    "if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then\n"
    "  return 0\n"
    "end\n"
    "redis.call('SADD', KEYS[3], ARGV[1])\n"
    "redis.call('ZADD', KEYS[1], string.format('%d', now), ARGV[1])\n"
    "return 1\n";

/*
 * KEYS: q, d, subs. ARGV: lease (ms), max, the length of a subscription's
 * id (the head of a delivery's). Returns id, JSON, whether
 * Redis holds its subscription (1/0), for each delivery claimed; then the
 * lease's end.
 */
static ngx_http_hris_redis_script_t  ngx_http_hris_wh_queue_claim_script;
static char  ngx_http_hris_wh_queue_claim_lua[] =
    NGX_HTTP_HRIS_WH_QUEUE_NOW
    "local lease = string.format('%d', now + tonumber(ARGV[1]))\n"
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf',\n"
    "                       string.format('%d', now), 'LIMIT', 0,\n"
    "                       tonumber(ARGV[2]))\n"
    "local out = {}\n"
    "for _, id in ipairs(ids) do\n"
    "  local v = redis.call('HGET', KEYS[2], id)\n"
    "  if v then\n"
    "    redis.call('ZADD', KEYS[1], lease, id)\n"
    "    out[#out + 1] = id\n"
    "    out[#out + 1] = v\n"
    "    out[#out + 1] = redis.call('HEXISTS', KEYS[3],\n"
    "                               string.sub(id, 1, tonumber(ARGV[3])))\n"
    "  else\n"
    "    redis.call('ZREM', KEYS[1], id)\n"
    "  end\n"
    "end\n"
    "out[#out + 1] = lease\n"
    "return out\n";

/* KEYS: q, d, t. ARGV: id */
static ngx_http_hris_redis_script_t  ngx_http_hris_wh_queue_done_script;
static char  ngx_http_hris_wh_queue_done_lua[] =
    "redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "redis.call('SREM', KEYS[3], ARGV[1])\n"
    "return redis.call('HDEL', KEYS[2], ARGV[1])\n";

/*
 * KEYS: q, d. ARGV: id, lease, delay (ms), JSON or "". 0: the lease is
 * no longer this claim's (another gateway has the delivery), or it is
 * gone.
 */
static ngx_http_hris_redis_script_t  ngx_http_hris_wh_queue_retry_script;
static char  ngx_http_hris_wh_queue_retry_lua[] =
    NGX_HTTP_HRIS_WH_QUEUE_NOW
    "local s = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
    "if not s or tonumber(s) ~= tonumber(ARGV[2])\n"
    "   or redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then\n"
    "  return 0\n"
    "end\n"
    "if ARGV[4] ~= '' then\n"
    "  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])\n"
    "end\n"
    "redis.call('ZADD', KEYS[1],\n"
    "           string.format('%d', now + tonumber(ARGV[3])), ARGV[1])\n"
    "return 1\n";


static ngx_http_hris_wh_queue_t  ngx_http_hris_wh_queue;


static ngx_http_hris_redis_t *
ngx_http_hris_wh_queue_client(ngx_http_hris_wh_conf_t *conf)
{
    ngx_http_hris_redis_conf_t  *rcf = conf->hmcf->redis;

    return rcf ? rcf->client : NULL;
}


ngx_int_t
ngx_http_hris_wh_queue_init_process(ngx_cycle_t *cycle,
    ngx_http_hris_wh_conf_t *conf)
{
    ngx_http_hris_wh_queue_t  *wq = &ngx_http_hris_wh_queue;

    if (conf->hmcf->redis == NULL) {
        return NGX_OK;
    }

    ngx_http_hris_redis_script_init(&ngx_http_hris_wh_queue_push_script,
                                    ngx_http_hris_wh_queue_push_lua);
    ngx_http_hris_redis_script_init(&ngx_http_hris_wh_queue_claim_script,
                                    ngx_http_hris_wh_queue_claim_lua);
    ngx_http_hris_redis_script_init(&ngx_http_hris_wh_queue_done_script,
                                    ngx_http_hris_wh_queue_done_lua);
    ngx_http_hris_redis_script_init(&ngx_http_hris_wh_queue_retry_script,
                                    ngx_http_hris_wh_queue_retry_lua);

    wq->conf = conf;
    ngx_queue_init(&wq->pushes);
    wq->timer.handler = ngx_http_hris_wh_queue_tick;
    wq->timer.data = wq;
    wq->timer.log = cycle->log;
    wq->timer.cancelable = 1;     /* a graceful quit does not wait for it */

    /* the workers' claims spread over the interval */
    ngx_add_timer(&wq->timer,
                  ngx_random() % NGX_HTTP_HRIS_WH_QUEUE_POLL + 1);

    return NGX_OK;
}


/* emits go to the fleet's queue */

ngx_uint_t
ngx_http_hris_wh_queue_on(ngx_http_hris_wh_conf_t *conf)
{
    return ngx_http_hris_wh_queue.conf == conf
           && ngx_http_hris_wh_queue_client(conf) != NULL;
}


/* -- emit ---------------------------------------------------------------- */


/* One delivery into the fleet's queue; into the zone if Redis cannot. */

void
ngx_http_hris_wh_queue_push(ngx_http_hris_wh_conf_t *conf, u_char *evt,
    const char *type, u_char *sub, ngx_str_t *tenant, ngx_str_t *body,
    ngx_log_t *log)
{
    u_char                   *q;
    char                     *json;
    ngx_str_t                 argv[6];
    ngx_http_hris_wh_push_t  *p;
    ngx_http_hris_wh_claim_t  c;
    u_char                    id[NGX_HTTP_HRIS_WH_QID_LEN];
    u_char                    cap[NGX_INT_T_LEN];

    p = ngx_alloc(sizeof(ngx_http_hris_wh_push_t) + tenant->len + body->len
                  + sizeof(NGX_HTTP_HRIS_WH_QUEUE_T) - 1, log);
    if (p == NULL) {
        return;
    }

    p->conf = conf;
    ngx_memcpy(p->evt, evt, NGX_HTTP_HRIS_EVT_ID_LEN);
    ngx_memcpy(p->sub, sub, NGX_HTTP_HRIS_WH_ID_LEN);
    ngx_cpystrn((u_char *) p->type, (u_char *) type, sizeof(p->type));
    p->created = ngx_time();

    /* the tenant's set's key, whose tail is the tenant */
    q = (u_char *) p + sizeof(ngx_http_hris_wh_push_t);
    argv[2].data = q;
    q = ngx_cpymem(q, NGX_HTTP_HRIS_WH_QUEUE_T,
                   sizeof(NGX_HTTP_HRIS_WH_QUEUE_T) - 1);
    p->tenant.data = q;
    p->tenant.len = tenant->len;
    q = ngx_cpymem(q, tenant->data, tenant->len);
    argv[2].len = q - argv[2].data;
    p->body.data = q;
    p->body.len = body->len;
    ngx_memcpy(q, body->data, body->len);

    ngx_memzero(&c, sizeof(ngx_http_hris_wh_claim_t));
    ngx_memcpy(c.evt, evt, NGX_HTTP_HRIS_EVT_ID_LEN);
    ngx_memcpy(c.sub, sub, NGX_HTTP_HRIS_WH_ID_LEN);
    c.tenant = p->tenant;
    c.body = p->body;
    c.created = p->created;

    json = ngx_http_hris_wh_queue_json(&c, 0);
    if (json == NULL) {
        ngx_queue_insert_tail(&ngx_http_hris_wh_queue.pushes, &p->queue);
        ngx_http_hris_wh_queue_fallback(p, log);
        return;
    }

    argv[0] = ngx_http_hris_wh_queue_q;
    argv[1] = ngx_http_hris_wh_queue_d;
    ngx_memcpy(id, sub, NGX_HTTP_HRIS_WH_ID_LEN);
    ngx_memcpy(id + NGX_HTTP_HRIS_WH_ID_LEN, evt, NGX_HTTP_HRIS_EVT_ID_LEN);
    argv[3].data = id;
    argv[3].len = NGX_HTTP_HRIS_WH_QID_LEN;
    argv[4].data = (u_char *) json;
    argv[4].len = ngx_strlen(json);
    argv[5].data = cap;
    argv[5].len = ngx_sprintf(cap, "%d", NGX_HTTP_HRIS_WH_TENANT_QUEUE)
                  - cap;

    ngx_queue_insert_tail(&ngx_http_hris_wh_queue.pushes, &p->queue);

    /* the command holds its own copy of the arguments */
    if (ngx_http_hris_redis_eval(ngx_http_hris_wh_queue_client(conf), NULL,
                                 &ngx_http_hris_wh_queue_push_script, 3, 6,
                                 argv, ngx_http_hris_wh_queue_pushed, p)
        == NULL)
    {
        ngx_http_hris_wh_queue_fallback(p, log);
    }

    free(json);
}


static void
ngx_http_hris_wh_queue_pushed(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
    ngx_http_hris_wh_push_t  *p = data;

    ngx_http_hris_wh_conf_t  *conf = p->conf;

    if (status != NGX_HTTP_HRIS_REDIS_REPLY
        || reply->type != NGX_HTTP_HRIS_REDIS_INTEGER)
    {
        if (status == NGX_HTTP_HRIS_REDIS_REPLY) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0, "hris: the state "
                          "store refused a webhook delivery: %V",
                          &reply->str);
        }

        ngx_http_hris_wh_queue_fallback(p, ngx_cycle->log);
        return;
    }

    if (reply->integer < 0) {
        ngx_shmtx_lock(&conf->shpool->mutex);
        conf->sh->dropped++;
        ngx_shmtx_unlock(&conf->shpool->mutex);

        ngx_http_hris_wh_full(p->evt, p->type, 1, &p->tenant, 1,
                              ngx_cycle->log);

    } else if (reply->integer > 0 && !ngx_http_hris_wh_queue.busy) {
        /* this worker is likely to have room: no wait for the next poll */
        ngx_http_hris_wh_queue_claim(&ngx_http_hris_wh_queue);
    }

    ngx_queue_remove(&p->queue);
    ngx_free(p);
}


/*
 * Redis cannot take the delivery: this gateway's zone does, and this
 * gateway delivers it as without hris_redis.
 */

static void
ngx_http_hris_wh_queue_fallback(ngx_http_hris_wh_push_t *p, ngx_log_t *log)
{
    ngx_http_hris_redis_conf_t  *rcf = p->conf->hmcf->redis;

    if (ngx_http_hris_wh_dlv_queue(p->conf, p->evt, p->sub, &p->tenant,
                                   &p->body, p->created, log)
        == NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, log, 0, "hris: event %*s for webhook "
                      "%*s of tenant \"%V\" queued on this gateway only: "
                      "the state store (hris_redis %V) cannot be used now",
                      (size_t) NGX_HTTP_HRIS_EVT_ID_LEN, p->evt,
                      (size_t) NGX_HTTP_HRIS_WH_ID_LEN, p->sub, &p->tenant,
                      &rcf->name);
    }

    ngx_queue_remove(&p->queue);
    ngx_free(p);
}


/*
 * The worker exits: emits whose reply will never come are kept in the
 * zone (and its spool) rather than lost; one Redis took already is then
 * delivered twice, which at least once allows.
 */

void
ngx_http_hris_wh_queue_exit_process(ngx_http_hris_wh_conf_t *conf)
{
    ngx_queue_t              *q;
    ngx_http_hris_wh_push_t  *p;
    ngx_http_hris_wh_queue_t *wq = &ngx_http_hris_wh_queue;

    if (wq->conf != conf) {
        return;
    }

    while (!ngx_queue_empty(&wq->pushes)) {
        q = ngx_queue_head(&wq->pushes);
        p = ngx_queue_data(q, ngx_http_hris_wh_push_t, queue);

        /*
         * the Redis client's exit (the gateway module's, before ours)
         * dropped its commands without calling their handlers
         */
        ngx_http_hris_wh_queue_fallback(p, ngx_cycle->log);
    }

    wq->conf = NULL;
}


/* -- claim --------------------------------------------------------------- */


static void
ngx_http_hris_wh_queue_tick(ngx_event_t *ev)
{
    ngx_http_hris_wh_queue_t  *wq = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_add_timer(ev, NGX_HTTP_HRIS_WH_QUEUE_POLL);

    if (!wq->busy) {
        ngx_http_hris_wh_queue_claim(wq);
    }
}


static void
ngx_http_hris_wh_queue_claim(ngx_http_hris_wh_queue_t *wq)
{
    ngx_str_t    argv[6];
    ngx_uint_t   room;
    u_char       lease[NGX_INT_T_LEN], max[NGX_INT_T_LEN];
    u_char       idlen[NGX_INT_T_LEN];

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    room = ngx_http_hris_wh_deliver_room();

    /*
     * A gateway that mirrors no subscription has nothing to deliver
     * (a delivery's URL and secret are its subscription's): a fleet
     * without webhooks sends Redis nothing.
     */
    if (room == 0 || !ngx_http_hris_wh_sub_any(wq->conf)) {
        return;
    }

    argv[0] = ngx_http_hris_wh_queue_q;
    argv[1] = ngx_http_hris_wh_queue_d;
    argv[2] = ngx_http_hris_wh_queue_subs;
    argv[3].data = lease;
    argv[3].len = ngx_sprintf(lease, "%M",
                              wq->conf->timeout
                              + NGX_HTTP_HRIS_WH_QUEUE_LEASE)
                  - lease;
    argv[4].data = max;
    argv[4].len = ngx_sprintf(max, "%ui",
                              ngx_min(room, NGX_HTTP_HRIS_WH_QUEUE_CLAIM))
                  - max;
    argv[5].data = idlen;
    argv[5].len = ngx_sprintf(idlen, "%d", NGX_HTTP_HRIS_WH_ID_LEN) - idlen;

    if (ngx_http_hris_redis_eval(ngx_http_hris_wh_queue_client(wq->conf),
                                 NULL, &ngx_http_hris_wh_queue_claim_script,
                                 3, 6, argv, ngx_http_hris_wh_queue_claimed,
                                 wq)
        != NULL)
    {
        wq->busy = 1;
    }
}


static void
ngx_http_hris_wh_queue_claimed(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
    ngx_http_hris_wh_queue_t  *wq = data;

    ngx_uint_t                    i;
    ngx_http_hris_redis_reply_t  *e;

    wq->busy = 0;

    if (status != NGX_HTTP_HRIS_REDIS_REPLY) {
        return;         /* the client logs it; the next poll tries again */
    }

    if (reply->type != NGX_HTTP_HRIS_REDIS_ARRAY || reply->nelts == 0) {
        if (reply->type == NGX_HTTP_HRIS_REDIS_ERROR) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0, "hris: the state "
                          "store refused to hand out webhook deliveries: %V",
                          &reply->str);
        }

        return;
    }

    e = reply->elts;

    for (i = 0; i + 3 < reply->nelts; i += 3) {
        ngx_http_hris_wh_queue_take(wq, &e[i].str, &e[i + 1].str,
                                    e[i + 2].type
                                    == NGX_HTTP_HRIS_REDIS_INTEGER
                                    && e[i + 2].integer == 1,
                                    &e[reply->nelts - 1].str);
    }
}


/* one claimed delivery: sent, or left for later, or dropped */

static void
ngx_http_hris_wh_queue_take(ngx_http_hris_wh_queue_t *wq, ngx_str_t *id,
    ngx_str_t *value, ngx_uint_t held, ngx_str_t *lease)
{
    ngx_int_t                  rc;
    ngx_str_t                  tenant;
    ngx_pool_t                *pool;
    ngx_http_hris_wh_claim_t  *c;

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return;         /* the lease ends, and it is due again */
    }

    c = ngx_pcalloc(pool, sizeof(ngx_http_hris_wh_claim_t));
    if (c == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    c->fleet = 1;
    c->lease.data = ngx_pstrdup(pool, lease);
    c->lease.len = lease->len;

    if (c->lease.data == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    rc = ngx_http_hris_wh_queue_parse(pool, value, c);

    if (rc == NGX_OK
        && (id->len != NGX_HTTP_HRIS_WH_QID_LEN
            || ngx_memcmp(id->data, c->sub, NGX_HTTP_HRIS_WH_ID_LEN) != 0
            || ngx_memcmp(id->data + NGX_HTTP_HRIS_WH_ID_LEN, c->evt,
                          NGX_HTTP_HRIS_EVT_ID_LEN) != 0))
    {
        rc = NGX_DECLINED;
    }

    if (rc == NGX_DECLINED) {
        /* not one of ours: dropped, or it would come back forever */
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0, "hris: webhook "
                      "delivery \"%V\" in the state store is not one: "
                      "dropped", id);

        if (id->len == NGX_HTTP_HRIS_WH_QID_LEN) {
            ngx_str_null(&tenant);
            (void) ngx_http_hris_wh_queue_done(wq->conf, id->data,
                                               id->data
                                               + NGX_HTTP_HRIS_WH_ID_LEN,
                                               &tenant);
        }

        ngx_destroy_pool(pool);
        return;
    }

    if (rc == NGX_OK) {
        rc = ngx_http_hris_wh_claim_sub(wq->conf, pool, c);
    }

    if (rc == NGX_DECLINED) {
        if (held) {
            /* made on another gateway, not mirrored here yet */
            (void) ngx_http_hris_wh_queue_retry(wq->conf, c,
                                                NGX_HTTP_HRIS_WH_QUEUE_AGAIN,
                                                c->attempts);
        } else {
            /* the subscription ended */
            tenant = c->tenant;
            (void) ngx_http_hris_wh_queue_done(wq->conf, c->sub, c->evt,
                                               &tenant);
        }
    }

    if (rc != NGX_OK || ngx_http_hris_wh_deliver_start(pool, c) != NGX_OK) {
        ngx_destroy_pool(pool);
    }
}


/* NGX_DECLINED: not a delivery; NGX_ERROR: no memory */

static ngx_int_t
ngx_http_hris_wh_queue_parse(ngx_pool_t *pool, ngx_str_t *value,
    ngx_http_hris_wh_claim_t *c)
{
    json_t     *o, *n;
    ngx_int_t   rc;
    ngx_str_t   evt, sub, tenant, body;

    o = json_loadb((char *) value->data, value->len, 0, NULL);

    if (!json_is_object(o)
        || !ngx_http_hris_wh_json_str(o, "evt", &evt)
        || !ngx_http_hris_wh_json_str(o, "sub", &sub)
        || !ngx_http_hris_wh_json_str(o, "tenant", &tenant)
        || !ngx_http_hris_wh_json_str(o, "body", &body)
        || evt.len != NGX_HTTP_HRIS_EVT_ID_LEN
        || sub.len != NGX_HTTP_HRIS_WH_ID_LEN
        || body.len > NGX_HTTP_HRIS_WH_BODY_MAX)
    {
        json_decref(o);
        return NGX_DECLINED;
    }

    ngx_memcpy(c->evt, evt.data, NGX_HTTP_HRIS_EVT_ID_LEN);
    ngx_memcpy(c->sub, sub.data, NGX_HTTP_HRIS_WH_ID_LEN);

    c->tenant.data = ngx_pstrdup(pool, &tenant);
    c->tenant.len = tenant.len;
    c->body.data = ngx_pstrdup(pool, &body);
    c->body.len = body.len;

    n = json_object_get(o, "attempts");
    c->attempts = json_is_integer(n) && json_integer_value(n) > 0
                  ? (ngx_uint_t) json_integer_value(n) : 0;

    n = json_object_get(o, "created");
    c->created = json_is_integer(n) ? (time_t) json_integer_value(n)
                                    : ngx_time();

    rc = (c->tenant.data && c->body.data) ? NGX_OK : NGX_ERROR;

    json_decref(o);

    return rc;
}


/* -- settle -------------------------------------------------------------- */


/* An attempt's outcome into the fleet's queue. */

void
ngx_http_hris_wh_queue_settle(ngx_http_hris_wh_conf_t *conf,
    ngx_http_hris_wh_claim_t *c, ngx_uint_t status, time_t retry_after,
    ngx_log_t *log)
{
    uint64_t                     delay;
    ngx_str_t                    id;
    ngx_http_hris_wh_outcome_e   outcome;

    outcome = ngx_http_hris_wh_outcome(conf, c->attempts, status,
                                       retry_after, &delay);

    if (outcome == NGX_HTTP_HRIS_WH_RETRY) {
        (void) ngx_http_hris_wh_queue_retry(conf, c, delay, c->attempts + 1);

    } else {
        (void) ngx_http_hris_wh_queue_done(conf, c->sub, c->evt, &c->tenant);
    }

    ngx_http_hris_wh_settled(c, outcome, status, delay, log);

    if (outcome == NGX_HTTP_HRIS_WH_GONE) {
        /* here at once; for the fleet (and in Redis) by its mirror */
        id.data = c->sub;
        id.len = NGX_HTTP_HRIS_WH_ID_LEN;

        if (ngx_http_hris_wh_sub_delete(conf, &c->tenant, &id) == NGX_OK) {
            ngx_http_hris_wh_spool_save(conf, log);
        }

        ngx_http_hris_wh_fleet_gone(conf, c->sub, &c->tenant);
    }
}


static ngx_int_t
ngx_http_hris_wh_queue_done(ngx_http_hris_wh_conf_t *conf, u_char *sub,
    u_char *evt, ngx_str_t *tenant)
{
    u_char     *p;
    ngx_int_t   rc;
    ngx_str_t   argv[4];
    u_char      id[NGX_HTTP_HRIS_WH_QID_LEN];

    p = ngx_alloc(sizeof(NGX_HTTP_HRIS_WH_QUEUE_T) - 1 + tenant->len,
                  ngx_cycle->log);
    if (p == NULL) {
        return NGX_ERROR;
    }

    argv[0] = ngx_http_hris_wh_queue_q;
    argv[1] = ngx_http_hris_wh_queue_d;
    argv[2].data = p;
    argv[2].len = ngx_cpymem(ngx_cpymem(p, NGX_HTTP_HRIS_WH_QUEUE_T,
                                        sizeof(NGX_HTTP_HRIS_WH_QUEUE_T) - 1),
                             tenant->data, tenant->len)
                  - p;
    ngx_memcpy(id, sub, NGX_HTTP_HRIS_WH_ID_LEN);
    ngx_memcpy(id + NGX_HTTP_HRIS_WH_ID_LEN, evt, NGX_HTTP_HRIS_EVT_ID_LEN);
    argv[3].data = id;
    argv[3].len = NGX_HTTP_HRIS_WH_QID_LEN;

    rc = ngx_http_hris_redis_eval(ngx_http_hris_wh_queue_client(conf), NULL,
                                  &ngx_http_hris_wh_queue_done_script, 3, 4,
                                  argv, ngx_http_hris_wh_queue_written, NULL)
         ? NGX_OK : NGX_ERROR;

    ngx_free(p);

    return rc;
}


/* due again after delay ms, with attempts made, if the lease is ours */

static ngx_int_t
ngx_http_hris_wh_queue_retry(ngx_http_hris_wh_conf_t *conf,
    ngx_http_hris_wh_claim_t *c, uint64_t delay, ngx_uint_t attempts)
{
    char       *json;
    ngx_int_t   rc;
    ngx_str_t   argv[6];
    u_char      id[NGX_HTTP_HRIS_WH_QID_LEN];
    u_char      ms[NGX_INT64_LEN];

    json = NULL;

    if (attempts != c->attempts) {
        json = ngx_http_hris_wh_queue_json(c, attempts);
        if (json == NULL) {
            return NGX_ERROR;
        }
    }

    ngx_memcpy(id, c->sub, NGX_HTTP_HRIS_WH_ID_LEN);
    ngx_memcpy(id + NGX_HTTP_HRIS_WH_ID_LEN, c->evt,
               NGX_HTTP_HRIS_EVT_ID_LEN);

    argv[0] = ngx_http_hris_wh_queue_q;
    argv[1] = ngx_http_hris_wh_queue_d;
    argv[2].data = id;
    argv[2].len = NGX_HTTP_HRIS_WH_QID_LEN;
    argv[3] = c->lease;
    argv[4].data = ms;
    argv[4].len = ngx_sprintf(ms, "%uL", delay) - ms;
    argv[5].data = (u_char *) (json ? json : "");
    argv[5].len = json ? ngx_strlen(json) : 0;

    rc = ngx_http_hris_redis_eval(ngx_http_hris_wh_queue_client(conf), NULL,
                                  &ngx_http_hris_wh_queue_retry_script, 2, 6,
                                  argv, ngx_http_hris_wh_queue_written, NULL)
         ? NGX_OK : NGX_ERROR;

    free(json);

    return rc;
}


/* the delivery as the fleet's queue holds it (free() it) */

static char *
ngx_http_hris_wh_queue_json(ngx_http_hris_wh_claim_t *c, ngx_uint_t attempts)
{
    char    *text;
    json_t  *o;

    o = json_pack("{s:s#,s:s#,s:s#,s:s#,s:I,s:I}",
                  "evt", c->evt, (int) NGX_HTTP_HRIS_EVT_ID_LEN,
                  "sub", c->sub, (int) NGX_HTTP_HRIS_WH_ID_LEN,
                  "tenant", c->tenant.data, (int) c->tenant.len,
                  "body", c->body.data, (int) c->body.len,
                  "created", (json_int_t) c->created,
                  "attempts", (json_int_t) attempts);

    text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);

    return text;
}


static void
ngx_http_hris_wh_queue_written(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
    if (status == NGX_HTTP_HRIS_REDIS_REPLY
        && reply->type != NGX_HTTP_HRIS_REDIS_ERROR)
    {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0, "hris: a webhook "
                  "delivery's outcome was not written to the state store "
                  "(%s): it is due again when its lease ends",
                  status == NGX_HTTP_HRIS_REDIS_REPLY ? (char *) reply->str.data
                                                      : "unreachable");
}

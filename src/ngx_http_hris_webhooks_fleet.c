/*
 * Webhook subscriptions shared by a fleet (hris_redis): a subscription
 * made through one gateway receives the events every gateway emits.
 *
 *     hris:{webhooks}:subs   hash: id -> {"tenant", "url", "events",
 *                            "secret" (sealed with hris_secrets_key when
 *                            set), "created"}
 *     hris:{webhooks}:gen    a counter, raised by each change
 *
 * A create or delete is made in Redis first, by a script that checks the
 * tenant's cap or ownership and raises the counter in one step, and the
 * administration API answers only once Redis answered (503 naming the
 * store when it cannot). Each worker looks at the counter twice a second
 * and, when it moved, mirrors the hash into its gateway's zone: emitting
 * and delivering stay as without Redis, so an event is queued and
 * delivered by the gateway that emitted it, to every subscription of the
 * fleet. A 410 ends the subscription in Redis too.
 *
 * Limits: subscriptions in a gateway's zone that Redis does not hold (made
 * before hris_redis was set) are dropped at the first mirror of a fleet
 * that has any; with Redis unreachable, the last mirror keeps delivering.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_webhooks.h"
#include "ngx_http_hris_redis.h"
#include "ngx_http_hris_fleet_mirror.h"


/* s: a subscription this young is kept by the mirror (see _held) */
#define NGX_HTTP_HRIS_WH_FLEET_FRESH  2


typedef struct {
    ngx_http_hris_wh_conf_t       *conf;
    ngx_log_t                     *log;
    ngx_http_hris_fleet_mirror_t   mirror;     /* the subscriptions' hash */
} ngx_http_hris_wh_fleet_t;


/* a create or delete waiting for Redis */
typedef struct {
    ngx_http_request_t          *request;
    ngx_http_hris_wh_conf_t     *conf;
    ngx_str_t                    tenant;
    ngx_str_t                    id;
    ngx_str_t                    url;
    ngx_str_t                    events;
    ngx_str_t                    secret;
    time_t                       created;
} ngx_http_hris_wh_fleet_op_t;


static ngx_int_t ngx_http_hris_wh_fleet_mirror(
    ngx_http_hris_fleet_mirror_t *m, ngx_http_hris_redis_reply_t *reply);
static ngx_uint_t ngx_http_hris_wh_fleet_held(u_char *id, time_t created,
    void *data);
static void ngx_http_hris_wh_fleet_created(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);
static void ngx_http_hris_wh_fleet_deleted(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);
static ngx_int_t ngx_http_hris_wh_fleet_unreachable(ngx_http_request_t *r);
static void ngx_http_hris_wh_fleet_ignore(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);


static ngx_str_t  ngx_http_hris_wh_fleet_subs =
    ngx_string("hris:{webhooks}:subs");
static ngx_str_t  ngx_http_hris_wh_fleet_gen =
    ngx_string("hris:{webhooks}:gen");

/* KEYS: subs, gen. ARGV: id, tenant, JSON, cap. -1: the tenant is full */
static ngx_http_hris_redis_script_t  ngx_http_hris_wh_fleet_add_script;
static char  ngx_http_hris_wh_fleet_add_lua[] =
    "local n = 0\n"
    "for _, v in ipairs(redis.call('HVALS', KEYS[1])) do\n"
    "  local ok, s = pcall(cjson.decode, v)\n"
    "  if ok and type(s) == 'table' and s.tenant == ARGV[2] then\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "if n >= tonumber(ARGV[4]) then return -1 end\n"
    "if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[3]) == 0 then\n"
    "  return -1\n"
    "end\n"
    "return redis.call('INCR', KEYS[2])\n";

/* KEYS: subs, gen. ARGV: id, tenant. 0: no such subscription of it */
static ngx_http_hris_redis_script_t  ngx_http_hris_wh_fleet_del_script;
static char  ngx_http_hris_wh_fleet_del_lua[] =
    "local v = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if not v then return 0 end\n"
    "local ok, s = pcall(cjson.decode, v)\n"
    "if not ok or type(s) ~= 'table' or s.tenant ~= ARGV[2] then\n"
    "  return 0\n"
    "end\n"
    "redis.call('HDEL', KEYS[1], ARGV[1])\n"
    "return redis.call('INCR', KEYS[2])\n";

static ngx_http_hris_wh_fleet_t  *ngx_http_hris_wh_fleet;


static ngx_http_hris_redis_t *
ngx_http_hris_wh_fleet_client(ngx_http_hris_wh_conf_t *conf)
{
    ngx_http_hris_redis_conf_t  *rcf = conf->hmcf->redis;

    return rcf ? rcf->client : NULL;
}


/* the gateway keeps its subscriptions in Redis */

ngx_uint_t
ngx_http_hris_wh_fleet_on(ngx_http_hris_wh_conf_t *conf)
{
    return ngx_http_hris_wh_fleet != NULL
           && ngx_http_hris_wh_fleet_client(conf) != NULL;
}


ngx_int_t
ngx_http_hris_wh_fleet_init_process(ngx_cycle_t *cycle,
    ngx_http_hris_wh_conf_t *conf)
{
    ngx_http_hris_wh_fleet_t  *wf;

    if (conf->hmcf->redis == NULL) {
        return NGX_OK;
    }

    wf = ngx_pcalloc(cycle->pool, sizeof(ngx_http_hris_wh_fleet_t));
    if (wf == NULL) {
        return NGX_ERROR;
    }

    wf->conf = conf;
    wf->log = cycle->log;

    wf->mirror.hmcf = conf->hmcf;
    wf->mirror.counter = ngx_http_hris_wh_fleet_gen;
    wf->mirror.hash = ngx_http_hris_wh_fleet_subs;
    wf->mirror.merge = ngx_http_hris_wh_fleet_mirror;
    wf->mirror.data = wf;

    ngx_http_hris_redis_script_init(&ngx_http_hris_wh_fleet_add_script,
                                    ngx_http_hris_wh_fleet_add_lua);
    ngx_http_hris_redis_script_init(&ngx_http_hris_wh_fleet_del_script,
                                    ngx_http_hris_wh_fleet_del_lua);

    ngx_http_hris_wh_fleet = wf;

    ngx_http_hris_fleet_mirror_start(&wf->mirror, cycle);

    return NGX_OK;
}


/*
 * POST: the subscription into Redis; the answer is sent when Redis
 * answered (NGX_DONE), by ngx_http_hris_wh_stored().
 */

ngx_int_t
ngx_http_hris_wh_fleet_create(ngx_http_request_t *r,
    ngx_http_hris_wh_conf_t *conf, ngx_str_t *tenant, u_char *id,
    ngx_str_t *url, ngx_str_t *events, ngx_str_t *secret)
{
    char                         *dump;
    u_char                       *p;
    json_t                       *one;
    ngx_str_t                     argv[6], sealed;
    ngx_http_hris_wh_fleet_op_t  *op;

    op = ngx_pcalloc(r->pool, sizeof(ngx_http_hris_wh_fleet_op_t));
    p = ngx_pnalloc(r->pool, NGX_HTTP_HRIS_WH_ID_LEN + NGX_INT_T_LEN);
    if (op == NULL || p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    op->request = r;
    op->conf = conf;
    op->tenant = *tenant;
    op->id.data = ngx_cpymem(p, id, NGX_HTTP_HRIS_WH_ID_LEN)
                  - NGX_HTTP_HRIS_WH_ID_LEN;
    op->id.len = NGX_HTTP_HRIS_WH_ID_LEN;
    op->url = *url;
    op->events = *events;
    op->secret = *secret;
    op->created = ngx_time();

    sealed = *secret;

    if (conf->hmcf->has_secrets_key
        && ngx_http_hris_secret_seal(r->pool, conf->hmcf->secrets_key,
                                     secret, &sealed) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    one = json_pack("{s:s%,s:s%,s:s%,s:s%,s:I}",
                    "tenant", tenant->data, tenant->len,
                    "url", url->data, url->len,
                    "events", events->data, events->len,
                    "secret", sealed.data, sealed.len,
                    "created", (json_int_t) op->created);
    dump = one ? json_dumps(one, JSON_COMPACT) : NULL;
    json_decref(one);

    if (dump == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    argv[0] = ngx_http_hris_wh_fleet_subs;
    argv[1] = ngx_http_hris_wh_fleet_gen;
    argv[2] = op->id;
    argv[3] = *tenant;
    argv[4].data = (u_char *) dump;
    argv[4].len = ngx_strlen(dump);
    argv[5].data = p + NGX_HTTP_HRIS_WH_ID_LEN;
    argv[5].len = ngx_sprintf(argv[5].data, "%d",
                              NGX_HTTP_HRIS_WH_TENANT_SUBS) - argv[5].data;

    /* the command holds its own copy of the arguments */
    if (ngx_http_hris_redis_eval(ngx_http_hris_wh_fleet_client(conf), r->pool,
                                 &ngx_http_hris_wh_fleet_add_script, 2, 6,
                                 argv, ngx_http_hris_wh_fleet_created, op)
        == NULL)
    {
        free(dump);
        return ngx_http_hris_wh_fleet_unreachable(r);
    }

    free(dump);

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_hris_wh_fleet_created(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
    ngx_http_hris_wh_fleet_op_t  *op = data;

    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = op->request;
    c = r->connection;

    if (status != NGX_HTTP_HRIS_REDIS_REPLY
        || reply->type != NGX_HTTP_HRIS_REDIS_INTEGER)
    {
        if (status == NGX_HTTP_HRIS_REDIS_REPLY) {
            ngx_log_error(NGX_LOG_ERR, c->log, 0, "hris: the state store "
                          "refused a webhook subscription: %V", &reply->str);
        }

        rc = ngx_http_hris_wh_fleet_unreachable(r);

    } else {
        rc = ngx_http_hris_wh_stored(r, op->conf, &op->tenant, op->id.data,
                                     &op->url, &op->events, &op->secret,
                                     reply->integer < 0 ? NGX_DECLINED
                                                        : NGX_OK);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* DELETE: out of Redis first (NGX_DONE), then out of this zone */

ngx_int_t
ngx_http_hris_wh_fleet_delete(ngx_http_request_t *r,
    ngx_http_hris_wh_conf_t *conf, ngx_str_t *tenant, ngx_str_t *id)
{
    ngx_str_t                     argv[4];
    ngx_http_hris_wh_fleet_op_t  *op;

    op = ngx_pcalloc(r->pool, sizeof(ngx_http_hris_wh_fleet_op_t));
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    op->request = r;
    op->conf = conf;
    op->tenant = *tenant;
    op->id = *id;

    argv[0] = ngx_http_hris_wh_fleet_subs;
    argv[1] = ngx_http_hris_wh_fleet_gen;
    argv[2] = *id;
    argv[3] = *tenant;

    if (ngx_http_hris_redis_eval(ngx_http_hris_wh_fleet_client(conf), r->pool,
                                 &ngx_http_hris_wh_fleet_del_script, 2, 4,
                                 argv, ngx_http_hris_wh_fleet_deleted, op)
        == NULL)
    {
        return ngx_http_hris_wh_fleet_unreachable(r);
    }

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_hris_wh_fleet_deleted(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
    ngx_http_hris_wh_fleet_op_t  *op = data;

    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = op->request;
    c = r->connection;

    if (status != NGX_HTTP_HRIS_REDIS_REPLY
        || reply->type != NGX_HTTP_HRIS_REDIS_INTEGER)
    {
        rc = ngx_http_hris_wh_fleet_unreachable(r);

    } else {
        /* gone from Redis: from this zone now, from the others by a poll */
        (void) ngx_http_hris_wh_sub_delete(op->conf, &op->tenant, &op->id);

        rc = ngx_http_hris_wh_removed(r, op->conf, &op->id,
                                      reply->integer > 0 ? NGX_OK
                                                         : NGX_DECLINED);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_hris_wh_fleet_unreachable(ngx_http_request_t *r)
{
    ngx_str_t                    retry = ngx_string("1");
    ngx_http_hris_redis_conf_t  *rcf;

    rcf = ngx_http_hris_wh_conf()->hmcf->redis;

    if (ngx_http_hris_header_out(r, "Retry-After", &retry) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_hris_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
               json_pack("{s:s}", "store", "redis"),
               "the state store (hris_redis %V) cannot be used now and "
               "the fleet's webhook subscriptions are kept there; retry "
               "shortly", &rcf->name);
}


/* A 410 ended a subscription here: end it for the fleet. */

void
ngx_http_hris_wh_fleet_gone(ngx_http_hris_wh_conf_t *conf, u_char *id,
    ngx_str_t *tenant)
{
    ngx_str_t  argv[4];

    if (!ngx_http_hris_wh_fleet_on(conf)) {
        return;
    }

    argv[0] = ngx_http_hris_wh_fleet_subs;
    argv[1] = ngx_http_hris_wh_fleet_gen;
    argv[2].data = id;
    argv[2].len = NGX_HTTP_HRIS_WH_ID_LEN;
    argv[3] = *tenant;

    if (ngx_http_hris_redis_eval(ngx_http_hris_wh_fleet_client(conf), NULL,
                                 &ngx_http_hris_wh_fleet_del_script, 2, 4,
                                 argv, ngx_http_hris_wh_fleet_ignore, NULL)
        == NULL)
    {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0, "hris: webhook %*s "
                      "ended on this gateway only: the state store "
                      "(hris_redis) cannot be used now",
                      (size_t) NGX_HTTP_HRIS_WH_ID_LEN, id);
    }
}


/*
 * A string member of o, borrowed: 1, or 0 when it is not a string (the
 * subscriptions' JSON here, the deliveries' in webhooks_queue.c).
 */

ngx_uint_t
ngx_http_hris_wh_json_str(json_t *o, const char *key, ngx_str_t *out)
{
    json_t  *v = json_object_get(o, key);

    if (!json_is_string(v)) {
        return 0;
    }

    out->data = (u_char *) json_string_value(v);
    out->len = json_string_length(v);

    return 1;
}


/* The fleet's subscriptions into this gateway's zone, and only them. */

static ngx_int_t
ngx_http_hris_wh_fleet_mirror(ngx_http_hris_fleet_mirror_t *m,
    ngx_http_hris_redis_reply_t *reply)
{
    json_t                    *o, *created;
    ngx_int_t                  rc;
    ngx_str_t                 *id, *val, tenant, url, events, sealed, secret;
    ngx_uint_t                 i, added, removed;
    ngx_pool_t                *pool;
    ngx_http_hris_wh_fleet_t  *wf = m->data;

    pool = ngx_create_pool(4096, wf->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    added = 0;
    rc = NGX_OK;

    for (i = 0; i + 1 < reply->nelts; i += 2) {
        id = &reply->elts[i].str;
        val = &reply->elts[i + 1].str;

        if (id->len != NGX_HTTP_HRIS_WH_ID_LEN) {
            continue;
        }

        o = json_loadb((char *) val->data, val->len, 0, NULL);

        if (!json_is_object(o)
            || !ngx_http_hris_wh_json_str(o, "tenant", &tenant)
            || !ngx_http_hris_wh_json_str(o, "url", &url)
            || !ngx_http_hris_wh_json_str(o, "events", &events)
            || !ngx_http_hris_wh_json_str(o, "secret", &sealed)
            || ngx_http_hris_secret_unseal(pool, wf->conf->hmcf, &sealed,
                                           &secret) != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, wf->log, 0, "hris: webhook \"%V\" "
                          "in the state store cannot be used here (another "
                          "hris_secrets_key?)", id);
            json_decref(o);
            continue;
        }

        created = json_object_get(o, "created");

        /* NGX_DECLINED: held already (or the tenant is full here) */
        switch (ngx_http_hris_wh_sub_add(wf->conf, &tenant, id->data, &url,
                                         &events, &secret,
                                         json_is_integer(created)
                                         ? (time_t) json_integer_value(created)
                                         : ngx_time(), wf->log))
        {
        case NGX_OK:
            added++;
            break;

        case NGX_ERROR:
            rc = NGX_ERROR;     /* no room: the next poll tries again */
            break;
        }

        if (secret.data != sealed.data) {
            ngx_explicit_memzero(secret.data, secret.len);
        }

        json_decref(o);
    }

    removed = ngx_http_hris_wh_sub_keep(wf->conf,
                                        ngx_http_hris_wh_fleet_held, reply);

    ngx_destroy_pool(pool);

    if (added || removed) {
        ngx_log_error(NGX_LOG_INFO, wf->log, 0, "hris: the fleet's webhook "
                      "subscriptions mirrored: %ui new, %ui ended",
                      added, removed);
        ngx_http_hris_wh_spool_save(wf->conf, wf->log);
    }

    return rc;
}


/*
 * Whether Redis's hash (an HGETALL reply) holds the id; the lock is held.
 * A subscription made in the last seconds is kept whatever the reply says:
 * the reply may have been read before this gateway stored it in Redis
 * (another worker's poll), and events emitted meanwhile must reach it;
 * the hash is then read again at the next poll, changed or not.
 */

static ngx_uint_t
ngx_http_hris_wh_fleet_held(u_char *id, time_t created, void *data)
{
    ngx_http_hris_redis_reply_t  *reply = data;

    ngx_uint_t  i;


    for (i = 0; i + 1 < reply->nelts; i += 2) {
        if (reply->elts[i].str.len == NGX_HTTP_HRIS_WH_ID_LEN
            && ngx_memcmp(reply->elts[i].str.data, id,
                          NGX_HTTP_HRIS_WH_ID_LEN) == 0)
        {
            return 1;
        }
    }

    if (created + NGX_HTTP_HRIS_WH_FLEET_FRESH > ngx_time()) {
        ngx_http_hris_wh_fleet->mirror.again = 1;
        return 1;
    }

    return 0;
}


static void
ngx_http_hris_wh_fleet_ignore(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
}

/*
 * A Redis hash mirrored into each worker (see ngx_http_hris_fleet_mirror.h).
 * Reading the counter is one small command per worker and half second;
 * the hash is read only when it moved, so a fleet at rest costs nothing
 * else, and a request never waits for any of it.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_hris_fleet_mirror.h"


#define NGX_HTTP_HRIS_MIRROR_POLL       500     /* ms */
#define NGX_HTTP_HRIS_MIRROR_SINCE_MAX  256     /* fields: more, all */


static void ngx_http_hris_fleet_mirror_poll(ngx_event_t *ev);
static void ngx_http_hris_fleet_mirror_counter(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);
static void ngx_http_hris_fleet_mirror_hash(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);
static ngx_http_hris_redis_t *ngx_http_hris_fleet_mirror_client(
    ngx_http_hris_fleet_mirror_t *m);


/*
 * KEYS: hash, log. ARGV: the counter seen, the most fields to read.
 * Fields changed since, with their values; the whole hash when there
 * are more, or no log (written by a build that kept none).
 */
static ngx_http_hris_redis_script_t  ngx_http_hris_fleet_mirror_since_script;
static char  ngx_http_hris_fleet_mirror_since_lua[] =
    "if redis.call('EXISTS', KEYS[2]) == 0 then\n"
    "  return redis.call('HGETALL', KEYS[1])\n"
    "end\n"
    "local max = tonumber(ARGV[2])\n"
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1],\n"
    "                       '+inf', 'LIMIT', 0, max + 1)\n"
    "if #ids > max then\n"
    "  return redis.call('HGETALL', KEYS[1])\n"
    "end\n"
    "local out = {}\n"
    "if #ids == 0 then\n"
    "  return out\n"
    "end\n"
    "local vals = redis.call('HMGET', KEYS[1], unpack(ids))\n"
    "for i, id in ipairs(ids) do\n"
    "  if vals[i] then\n"
    "    out[#out + 1] = id\n"
    "    out[#out + 1] = vals[i]\n"
    "  end\n"
    "end\n"
    "return out\n";


void
ngx_http_hris_fleet_mirror_start(ngx_http_hris_fleet_mirror_t *m,
    ngx_cycle_t *cycle)
{
    m->log = cycle->log;
    m->seen = -1;

    if (m->log_key.len) {
        ngx_http_hris_redis_script_init(
            &ngx_http_hris_fleet_mirror_since_script,
            ngx_http_hris_fleet_mirror_since_lua);
    }

    m->timer.handler = ngx_http_hris_fleet_mirror_poll;
    m->timer.data = m;
    m->timer.log = cycle->log;
    m->timer.cancelable = 1;      /* a graceful quit does not wait for it */

    ngx_add_timer(&m->timer, 1);
}


static ngx_http_hris_redis_t *
ngx_http_hris_fleet_mirror_client(ngx_http_hris_fleet_mirror_t *m)
{
    ngx_http_hris_redis_conf_t  *rcf = m->hmcf->redis;

    return rcf ? rcf->client : NULL;
}


static void
ngx_http_hris_fleet_mirror_poll(ngx_event_t *ev)
{
    ngx_str_t                      argv[2];
    ngx_http_hris_redis_t         *rd;
    ngx_http_hris_fleet_mirror_t  *m = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    rd = ngx_http_hris_fleet_mirror_client(m);
    if (rd == NULL) {
        return;         /* not a worker that talks to Redis */
    }

    ngx_add_timer(&m->timer, NGX_HTTP_HRIS_MIRROR_POLL);

    if (m->busy) {
        return;
    }

    ngx_str_set(&argv[0], "GET");
    argv[1] = m->counter;

    if (ngx_http_hris_redis_command(rd, NULL, 2, argv,
                                    ngx_http_hris_fleet_mirror_counter, m)
        != NULL)
    {
        m->busy = 1;
    }
}


static void
ngx_http_hris_fleet_mirror_counter(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
    ngx_http_hris_fleet_mirror_t  *m = data;

    u_char                      seen[NGX_INT64_LEN], max[NGX_INT_T_LEN];
    ngx_str_t                   argv[4];
    ngx_int_t                   n;
    ngx_http_hris_redis_t      *rd;
    ngx_http_hris_redis_cmd_t  *cmd;

    m->busy = 0;

    if (status != NGX_HTTP_HRIS_REDIS_REPLY) {
        return;
    }

    if (reply->type == NGX_HTTP_HRIS_REDIS_NIL) {
        n = 0;

    } else if (reply->type == NGX_HTTP_HRIS_REDIS_BULK) {
        n = ngx_atoi(reply->str.data, reply->str.len);
        if (n == NGX_ERROR) {
            return;
        }

    } else {
        return;
    }

    /* 0: the hash never changed (or Redis came back empty) */
    if ((n == m->seen && !m->again) || n == 0) {
        m->seen = n;
        return;
    }

    rd = ngx_http_hris_fleet_mirror_client(m);
    if (rd == NULL) {
        return;
    }

    m->want = n;

    /* the changes since the counter seen, when they can be told apart */
    m->since = (m->log_key.len && m->seen > 0 && n > m->seen && !m->again);

    if (m->since) {
        argv[0] = m->hash;
        argv[1] = m->log_key;
        argv[2].data = seen;
        argv[2].len = ngx_sprintf(seen, "%L", m->seen) - seen;
        argv[3].data = max;
        argv[3].len = ngx_sprintf(max, "%d", NGX_HTTP_HRIS_MIRROR_SINCE_MAX)
                      - max;

        cmd = ngx_http_hris_redis_eval(rd, NULL,
                                  &ngx_http_hris_fleet_mirror_since_script,
                                  2, 4, argv,
                                  ngx_http_hris_fleet_mirror_hash, m);

    } else {
        ngx_str_set(&argv[0], "HGETALL");
        argv[1] = m->hash;

        cmd = ngx_http_hris_redis_command(rd, NULL, 2, argv,
                                          ngx_http_hris_fleet_mirror_hash, m);
    }

    if (cmd != NULL) {
        m->busy = 1;
    }
}


static void
ngx_http_hris_fleet_mirror_hash(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
    ngx_http_hris_fleet_mirror_t  *m = data;

    m->busy = 0;

    if (status != NGX_HTTP_HRIS_REDIS_REPLY
        || reply->type != NGX_HTTP_HRIS_REDIS_ARRAY)
    {
        return;
    }

    m->again = 0;

    ngx_log_debug4(NGX_LOG_DEBUG_EVENT, m->log, 0,
                   "hris: fleet mirror of %V, counter %L: %ui fields read%s",
                   &m->hash, m->want, reply->nelts / 2,
                   m->since ? " (changes since)" : " (all)");

    if (m->merge(m, reply) == NGX_OK) {
        m->seen = m->want;
    }
}

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


#define NGX_HTTP_HRIS_MIRROR_POLL  500     /* ms */


static void ngx_http_hris_fleet_mirror_poll(ngx_event_t *ev);
static void ngx_http_hris_fleet_mirror_counter(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);
static void ngx_http_hris_fleet_mirror_hash(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);
static ngx_http_hris_redis_t *ngx_http_hris_fleet_mirror_client(
    ngx_http_hris_fleet_mirror_t *m);


void
ngx_http_hris_fleet_mirror_start(ngx_http_hris_fleet_mirror_t *m,
    ngx_cycle_t *cycle)
{
    m->log = cycle->log;
    m->seen = -1;

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

    ngx_str_t              argv[2];
    ngx_int_t              n;
    ngx_http_hris_redis_t *rd;

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

    ngx_str_set(&argv[0], "HGETALL");
    argv[1] = m->hash;

    if (ngx_http_hris_redis_command(rd, NULL, 2, argv,
                                    ngx_http_hris_fleet_mirror_hash, m)
        != NULL)
    {
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

    if (m->merge(m, reply) == NGX_OK) {
        m->seen = m->want;
    }
}

/*
 * A Redis hash mirrored into a gateway (hris_redis): every change to the
 * hash raises a counter; each worker reads the counter every half second
 * and, when it moved, reads the hash and hands it to its merge function.
 * Run-time accounts and webhook subscriptions travel this way.
 *
 * Without a log, the whole hash is read each time (HGETALL). With one (a
 * sorted set of the hash's fields, each scored by the counter's value at
 * its latest change), only the fields changed since the counter last
 * seen are (HMGET), the whole hash at the start, when the counter went
 * back (Redis lost its data) or when more than
 * NGX_HTTP_HRIS_MIRROR_SINCE_MAX changed: the merge then gets the
 * changed fields only, and must not take a field absent for a deleted
 * one.
 */

#ifndef _NGX_HTTP_HRIS_FLEET_MIRROR_H_INCLUDED_
#define _NGX_HTTP_HRIS_FLEET_MIRROR_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_redis.h"


typedef struct ngx_http_hris_fleet_mirror_s  ngx_http_hris_fleet_mirror_t;

/*
 * an array of field, value, field, value... (HGETALL's); NGX_OK: merged,
 * the counter is seen
 */
typedef ngx_int_t (*ngx_http_hris_fleet_merge_pt)(
    ngx_http_hris_fleet_mirror_t *m, ngx_http_hris_redis_reply_t *reply);

struct ngx_http_hris_fleet_mirror_s {
    ngx_http_hris_main_conf_t     *hmcf;
    ngx_str_t                      counter;   /* its key */
    ngx_str_t                      hash;      /* its key */
    ngx_str_t                      log_key;   /* its key, or empty */
    ngx_http_hris_fleet_merge_pt   merge;
    void                          *data;      /* the merge's */
    ngx_log_t                     *log;

    ngx_event_t                    timer;
    int64_t                        seen;      /* the counter merged */
    int64_t                        want;      /* the counter fetched */
    unsigned                       busy:1;
    unsigned                       since:1;   /* the fetch under way
                                                 reads the changes only */
    unsigned                       again:1;   /* read the hash at the next
                                                 poll, moved or not */
};


/* in a worker: the first poll at once (the client is made by then) */
void ngx_http_hris_fleet_mirror_start(ngx_http_hris_fleet_mirror_t *m,
    ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_HRIS_FLEET_MIRROR_H_INCLUDED_ */

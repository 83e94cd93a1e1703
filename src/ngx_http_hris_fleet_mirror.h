/*
 * A Redis hash mirrored into a gateway (hris_redis): every change to the
 * hash raises a counter; each worker reads the counter every half second
 * and, when it moved, reads the whole hash and hands it to its merge
 * function. Run-time accounts and webhook subscriptions travel this way.
 */

#ifndef _NGX_HTTP_HRIS_FLEET_MIRROR_H_INCLUDED_
#define _NGX_HTTP_HRIS_FLEET_MIRROR_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_redis.h"


typedef struct ngx_http_hris_fleet_mirror_s  ngx_http_hris_fleet_mirror_t;

/* an HGETALL reply (an array); NGX_OK: merged, the counter is seen */
typedef ngx_int_t (*ngx_http_hris_fleet_merge_pt)(
    ngx_http_hris_fleet_mirror_t *m, ngx_http_hris_redis_reply_t *reply);

struct ngx_http_hris_fleet_mirror_s {
    ngx_http_hris_main_conf_t     *hmcf;
    ngx_str_t                      counter;   /* its key */
    ngx_str_t                      hash;      /* its key */
    ngx_http_hris_fleet_merge_pt   merge;
    void                          *data;      /* the merge's */
    ngx_log_t                     *log;

    ngx_event_t                    timer;
    int64_t                        seen;      /* the counter merged */
    int64_t                        want;      /* the counter fetched */
    unsigned                       busy:1;
    unsigned                       again:1;   /* read the hash at the next
                                                 poll, moved or not */
};


/* in a worker: the first poll at once (the client is made by then) */
void ngx_http_hris_fleet_mirror_start(ngx_http_hris_fleet_mirror_t *m,
    ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_HRIS_FLEET_MIRROR_H_INCLUDED_ */

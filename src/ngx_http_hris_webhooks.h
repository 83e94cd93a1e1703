/*
 * Webhooks out (CONTRACT section 8): the module's internals shared by
 *
 *   ngx_http_hris_webhooks_conf.c    the directives and the zone (a
 *                                    module of its own), helpers
 *   ngx_http_hris_events.c           what the zone holds: subscriptions,
 *                                    the queue of deliveries, emit, claim
 *                                    and settle
 *   ngx_http_hris_events_spool.c     the zone's spool file in the state
 *                                    directory (webhooks.json)
 *   ngx_http_hris_webhooks_admin.c   /admin/webhooks: subscriptions
 *   ngx_http_hris_webhooks_deliver.c the workers' delivery timer
 *   ngx_http_hris_webhooks_fleet.c   with hris_redis: the fleet's
 *                                    subscriptions, mirrored into the zone
 *   ngx_http_hris_webhooks_queue.c   with hris_redis: the fleet's queue
 *                                    of deliveries
 *
 * An event is fanned out when it is emitted: one delivery per matching
 * subscription, each with its own attempts and schedule, so that a slow
 * or gone receiver never holds back another one's events, and a 410 or
 * a deletion drops exactly that subscription's deliveries.
 */

#ifndef _NGX_HTTP_HRIS_WEBHOOKS_H_INCLUDED_
#define _NGX_HTTP_HRIS_WEBHOOKS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_upstream.h"
#include "ngx_http_hris_file.h"


#define NGX_HTTP_HRIS_WH_ID_LEN        27   /* "wh_" + 24 */
#define NGX_HTTP_HRIS_EVT_ID_LEN       28   /* "evt_" + 24 */
#define NGX_HTTP_HRIS_WH_SECRET_MAX    64
#define NGX_HTTP_HRIS_WH_URL_MAX       2048
#define NGX_HTTP_HRIS_WH_TENANT_SUBS   16   /* subscriptions per tenant */
#define NGX_HTTP_HRIS_WH_TENANT_QUEUE  1000 /* undelivered, per tenant */
#define NGX_HTTP_HRIS_WH_BODY_MAX      16384
#define NGX_HTTP_HRIS_WH_DELAYS_MAX    16
#define NGX_HTTP_HRIS_WH_RA_MAX        86400 /* s: Retry-After honoured */
#define NGX_HTTP_HRIS_WH_TENANT_FLOOR  (64 * 1024) /* tenant share, least */


/* a subscription, in the zone */
typedef struct {
    ngx_queue_t                  queue;
    u_char                       id[NGX_HTTP_HRIS_WH_ID_LEN];
    u_char                       secret[NGX_HTTP_HRIS_WH_SECRET_MAX];
    size_t                       secret_len;
    ngx_str_t                    tenant;      /* in the zone */
    ngx_str_t                    url;         /* in the zone */
    ngx_str_t                    events;      /* JSON array text */
    time_t                       created;
} ngx_http_hris_wh_sub_t;


/* one event for one subscription, in the zone */
typedef struct {
    ngx_queue_t                  queue;
    u_char                       evt[NGX_HTTP_HRIS_EVT_ID_LEN];
    u_char                       sub[NGX_HTTP_HRIS_WH_ID_LEN];
    ngx_str_t                    tenant;      /* in the zone */
    ngx_str_t                    body;        /* what is signed and sent */
    time_t                       created;
    uint64_t                     due;         /* ms since the epoch */
    ngx_uint_t                   attempts;
    ngx_pid_t                    lease_pid;   /* a worker sends it */
    uint64_t                     lease_until; /* ms */
} ngx_http_hris_wh_dlv_t;


typedef struct {
    uint32_t                     magic;
    uint32_t                     layout;
    ngx_queue_t                  subs;
    ngx_queue_t                  dlvs;        /* oldest first */
    ngx_uint_t                   ndlvs;
    ngx_uint_t                   dropped;     /* queue full: not queued */
    ngx_http_hris_file_mark_t    mark;        /* changes, in the spool */
} ngx_http_hris_wh_sh_t;


typedef struct {
    ngx_http_hris_wh_sh_t       *sh;
    ngx_slab_pool_t             *shpool;
    size_t                       size;        /* hris_webhook_zone_size */
    size_t                       tenant_size; /* a tenant's share of it */
    ngx_msec_t                   timeout;     /* hris_webhook_timeout */
    ngx_array_t                 *delays;      /* ngx_msec_t: retry delays */
    ngx_uint_t                   concurrency; /* deliveries per worker */
    ngx_http_hris_upstream_conf_t  upstream;
    ngx_str_t                    file;        /* the spool, or empty */
    json_t                      *initial;     /* the file, as read */
    ngx_http_hris_file_t         out;         /* the spool's writer */
    ngx_uint_t                   serial;      /* the file's, as read */
    ngx_http_hris_main_conf_t   *hmcf;
    ngx_uint_t                   enabled;     /* the gateway is configured */
} ngx_http_hris_wh_conf_t;


/* what a worker took to send (in its delivery's pool) */
typedef struct {
    u_char                       evt[NGX_HTTP_HRIS_EVT_ID_LEN];
    u_char                       sub[NGX_HTTP_HRIS_WH_ID_LEN];
    ngx_str_t                    tenant;
    ngx_str_t                    url;
    ngx_str_t                    secret;
    ngx_str_t                    body;
    ngx_uint_t                   attempts;    /* before this one */
    time_t                       created;
    ngx_uint_t                   fleet;       /* from the fleet's queue */
    ngx_str_t                    lease;       /* fleet: its lease's end */
} ngx_http_hris_wh_claim_t;


/* what came of an attempt */
typedef enum {
    NGX_HTTP_HRIS_WH_DELIVERED = 0,
    NGX_HTTP_HRIS_WH_GONE,                    /* 410: the subscription ends */
    NGX_HTTP_HRIS_WH_GIVEN_UP,                /* past the last retry */
    NGX_HTTP_HRIS_WH_RETRY
} ngx_http_hris_wh_outcome_e;


extern ngx_module_t  ngx_http_hris_events_module;


/* ngx_http_hris_webhooks_conf.c */
ngx_http_hris_wh_conf_t *ngx_http_hris_wh_conf(void);
uint64_t ngx_http_hris_wh_now(void);
void ngx_http_hris_wh_random_id(u_char *out, const char *prefix,
    size_t len);
ngx_uint_t ngx_http_hris_wh_type_known(const char *type, size_t len);

/* ngx_http_hris_events.c */
ngx_int_t ngx_http_hris_wh_sub_add(ngx_http_hris_wh_conf_t *conf,
    ngx_str_t *tenant, u_char *id, ngx_str_t *url, ngx_str_t *events,
    ngx_str_t *secret, time_t created, ngx_log_t *log);
ngx_int_t ngx_http_hris_wh_sub_delete(ngx_http_hris_wh_conf_t *conf,
    ngx_str_t *tenant, ngx_str_t *id);
ngx_uint_t ngx_http_hris_wh_sub_any(ngx_http_hris_wh_conf_t *conf);
json_t *ngx_http_hris_wh_sub_list(ngx_http_hris_wh_conf_t *conf,
    ngx_str_t *tenant);
ngx_uint_t ngx_http_hris_wh_sub_keep(ngx_http_hris_wh_conf_t *conf,
    ngx_uint_t (*keep)(u_char *id, time_t created, void *data),
    void *data);
ngx_uint_t ngx_http_hris_wh_claim(ngx_http_hris_wh_conf_t *conf,
    ngx_pool_t *pool, ngx_uint_t max, ngx_http_hris_wh_claim_t **out);
void ngx_http_hris_wh_settle(ngx_http_hris_wh_conf_t *conf,
    ngx_http_hris_wh_claim_t *c, ngx_uint_t status, time_t retry_after,
    ngx_log_t *log);
ngx_int_t ngx_http_hris_wh_seed(ngx_http_hris_wh_conf_t *conf,
    ngx_log_t *log);
ngx_int_t ngx_http_hris_wh_dlv_queue(ngx_http_hris_wh_conf_t *conf,
    u_char *evt, u_char *sub, ngx_str_t *tenant, ngx_str_t *body,
    time_t created, ngx_log_t *log);
ngx_int_t ngx_http_hris_wh_claim_sub(ngx_http_hris_wh_conf_t *conf,
    ngx_pool_t *pool, ngx_http_hris_wh_claim_t *c);
ngx_http_hris_wh_outcome_e ngx_http_hris_wh_outcome(
    ngx_http_hris_wh_conf_t *conf, ngx_uint_t attempts, ngx_uint_t status,
    time_t retry_after, uint64_t *delay);
void ngx_http_hris_wh_settled(ngx_http_hris_wh_claim_t *c,
    ngx_http_hris_wh_outcome_e outcome, ngx_uint_t status, uint64_t delay,
    ngx_log_t *log);
void ngx_http_hris_wh_full(u_char *evt, const char *type, ngx_uint_t n,
    ngx_str_t *tenant, ngx_uint_t full, ngx_log_t *log);

/* ngx_http_hris_events_spool.c */
ngx_int_t ngx_http_hris_wh_spool_read(ngx_conf_t *cf,
    ngx_http_hris_wh_conf_t *conf);
void ngx_http_hris_wh_spool_save(ngx_http_hris_wh_conf_t *conf,
    ngx_log_t *log);
void ngx_http_hris_wh_spool_exit(ngx_http_hris_wh_conf_t *conf,
    ngx_log_t *log);

/* ngx_http_hris_webhooks_admin.c */
ngx_int_t ngx_http_hris_wh_url_check(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *url);
ngx_uint_t ngx_http_hris_wh_addr_public(struct sockaddr *sa);
ngx_int_t ngx_http_hris_wh_stored(ngx_http_request_t *r,
    ngx_http_hris_wh_conf_t *conf, ngx_str_t *tenant, u_char *id,
    ngx_str_t *url, ngx_str_t *types, ngx_str_t *secret, ngx_int_t rc);
ngx_int_t ngx_http_hris_wh_removed(ngx_http_request_t *r,
    ngx_http_hris_wh_conf_t *conf, ngx_str_t *id, ngx_int_t rc);

/* ngx_http_hris_webhooks_fleet.c: subscriptions in hris_redis */
ngx_int_t ngx_http_hris_wh_fleet_init_process(ngx_cycle_t *cycle,
    ngx_http_hris_wh_conf_t *conf);
ngx_uint_t ngx_http_hris_wh_fleet_on(ngx_http_hris_wh_conf_t *conf);
ngx_int_t ngx_http_hris_wh_fleet_create(ngx_http_request_t *r,
    ngx_http_hris_wh_conf_t *conf, ngx_str_t *tenant, u_char *id,
    ngx_str_t *url, ngx_str_t *events, ngx_str_t *secret);
ngx_int_t ngx_http_hris_wh_fleet_delete(ngx_http_request_t *r,
    ngx_http_hris_wh_conf_t *conf, ngx_str_t *tenant, ngx_str_t *id);
void ngx_http_hris_wh_fleet_gone(ngx_http_hris_wh_conf_t *conf, u_char *id,
    ngx_str_t *tenant);

/* ngx_http_hris_webhooks_deliver.c */
ngx_int_t ngx_http_hris_wh_deliver_init_process(ngx_cycle_t *cycle,
    ngx_http_hris_wh_conf_t *conf);
ngx_uint_t ngx_http_hris_wh_deliver_room(void);
ngx_int_t ngx_http_hris_wh_deliver_start(ngx_pool_t *pool,
    ngx_http_hris_wh_claim_t *c);

/* ngx_http_hris_webhooks_queue.c: the queue in hris_redis */
ngx_int_t ngx_http_hris_wh_queue_init_process(ngx_cycle_t *cycle,
    ngx_http_hris_wh_conf_t *conf);
ngx_uint_t ngx_http_hris_wh_queue_on(ngx_http_hris_wh_conf_t *conf);
void ngx_http_hris_wh_queue_exit_process(ngx_http_hris_wh_conf_t *conf);
void ngx_http_hris_wh_queue_push(ngx_http_hris_wh_conf_t *conf,
    u_char *evt, const char *type, u_char *sub, ngx_str_t *tenant,
    ngx_str_t *body, ngx_log_t *log);
void ngx_http_hris_wh_queue_settle(ngx_http_hris_wh_conf_t *conf,
    ngx_http_hris_wh_claim_t *c, ngx_uint_t status, time_t retry_after,
    ngx_log_t *log);


/* A string member of o, borrowed: 1, or 0 when it is not a string. */
ngx_uint_t ngx_http_hris_wh_json_str(json_t *o, const char *key,
    ngx_str_t *out);


#endif /* _NGX_HTTP_HRIS_WEBHOOKS_H_INCLUDED_ */

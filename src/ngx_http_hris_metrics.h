/*
 * What a request did, for metrics (ngx_http_hris_metrics.c), the log
 * variables (ngx_http_hris_variables.c) and trace context
 * (ngx_http_hris_trace.c). One record per request of the module's
 * locations, the request context of ngx_http_hris_metrics_module (the
 * main module's context slot belongs to the APIs' own contexts).
 */

#ifndef _NGX_HTTP_HRIS_METRICS_H_INCLUDED_
#define _NGX_HTTP_HRIS_METRICS_H_INCLUDED_


#include "ngx_http_hris.h"


#define NGX_HTTP_HRIS_RESOURCE_NONE     -1
#define NGX_HTTP_HRIS_RESOURCE_UNKNOWN  -2

/* W3C trace context: "00-" trace id "-" parent id "-" flags */
#define NGX_HTTP_HRIS_TRACEPARENT_LEN   55
#define NGX_HTTP_HRIS_TRACESTATE_MAX    512


/* one try of an upstream call, as $upstream_status and _time show it */
typedef struct {
    ngx_uint_t                   status;
    ngx_msec_t                   ms;
} ngx_http_hris_try_t;


typedef struct {
    u_char                       trace_id[32];
    u_char                       flags[2];
    ngx_str_t                    state;       /* tracestate, or empty */
    unsigned                     parsed:1;
    unsigned                     valid:1;
} ngx_http_hris_trace_t;


typedef struct {
    ngx_uint_t                   api;         /* NGX_HTTP_HRIS_API_* */
    ngx_int_t                    provider;    /* index in tables, or -1 */
    ngx_int_t                    resource;    /* schema index, or _NONE,
                                                 _UNKNOWN */
    ngx_str_t                    account;
    ngx_array_t                  tries;       /* ngx_http_hris_try_t */
    ngx_uint_t                   retries;
    ngx_str_t                    error;       /* the envelope's message */
    ngx_http_hris_trace_t        trace;
} ngx_http_hris_req_t;


extern ngx_module_t  ngx_http_hris_metrics_module;


/* state stores, and what became of a Redis command, for the metrics */
#define NGX_HTTP_HRIS_STORE_FILE         0
#define NGX_HTTP_HRIS_STORE_REDIS        1

#define NGX_HTTP_HRIS_REDIS_CMD_OK           0
#define NGX_HTTP_HRIS_REDIS_CMD_ERROR        1
#define NGX_HTTP_HRIS_REDIS_CMD_UNREACHABLE  2


/* ngx_http_hris_metrics.c */
ngx_int_t ngx_http_hris_metrics_provider(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *name);
void ngx_http_hris_metrics_count_try(ngx_http_hris_req_t *req,
    ngx_uint_t status, uint64_t us, ngx_uint_t retrying);

/* counters of no request: nothing happens where metrics are off */
void ngx_http_hris_metrics_state_error(ngx_uint_t store);
void ngx_http_hris_metrics_redis(ngx_uint_t result);
void ngx_http_hris_metrics_event(const char *type);
void ngx_http_hris_metrics_delivery(ngx_uint_t status);
void ngx_http_hris_metrics_webhook_in(ngx_uint_t status);

/* ngx_http_hris_trace.c */
ngx_uint_t ngx_http_hris_trace_parse(ngx_http_request_t *r,
    ngx_http_hris_trace_t *t);

/* ngx_http_hris_variables.c */
ngx_int_t ngx_http_hris_variables_add(ngx_conf_t *cf);


#endif /* _NGX_HTTP_HRIS_METRICS_H_INCLUDED_ */

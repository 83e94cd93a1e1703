/*
 * Asynchronous upstream calls: libcurl's multi-socket API driven by nginx's
 * event loop and timers, one multi handle per worker. A call belongs to a
 * request (its memory is the request pool's); its handler runs once, with
 * the final outcome, outside any curl callback.
 */

#ifndef _NGX_HTTP_HRIS_UPSTREAM_H_INCLUDED_
#define _NGX_HTTP_HRIS_UPSTREAM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <curl/curl.h>

#include "ngx_http_hris_parse.h"


typedef struct ngx_http_hris_call_s  ngx_http_hris_call_t;

typedef void (*ngx_http_hris_call_handler_pt)(ngx_http_hris_call_t *call);


typedef enum {
    NGX_HTTP_HRIS_CALL_OK = 0,         /* an HTTP answer, any status */
    NGX_HTTP_HRIS_CALL_TIMEOUT,        /* no answer in time */
    NGX_HTTP_HRIS_CALL_UNREACHABLE,    /* name resolution or connect failed */
    NGX_HTTP_HRIS_CALL_BROKEN,         /* reset, cut short, no answer */
    NGX_HTTP_HRIS_CALL_TOO_LARGE,      /* over hris_max_response_size */
    NGX_HTTP_HRIS_CALL_RATE_LIMITED,   /* Retry-After over the cap */
    NGX_HTTP_HRIS_CALL_ERROR           /* internal failure */
} ngx_http_hris_call_result_e;


typedef struct {
    ngx_msec_t                     connect_timeout;
    ngx_msec_t                     timeout;
    ngx_uint_t                     retries;
    ngx_msec_t                     backoff;
    ngx_msec_t                     retry_after_max;
    size_t                         max_response;
    ngx_flag_t                     ssl_verify;
    ngx_str_t                      ca_file;
    ngx_str_t                      ca_pem;     /* its contents */
} ngx_http_hris_upstream_conf_t;


struct ngx_http_hris_call_s {
    ngx_http_request_t            *request;    /* or NULL: a background call */
    ngx_pool_t                    *pool;       /* the request's, or its own */
    ngx_log_t                     *log;
    ngx_http_hris_upstream_conf_t *conf;

    /* the call, set before ngx_http_hris_call_start() */
    ngx_str_t                      method;     /* null-terminated */
    ngx_str_t                      url;        /* null-terminated */
    ngx_str_t                      body;
    ngx_uint_t                     retry;      /* retry 429/5xx answers */
    /*
     * whether sending the call twice does no harm: 1, 0, or NGX_CONF_UNSET
     * (decided by the method: GET, HEAD, PUT, DELETE, OPTIONS are). A call
     * that is not is sent again only when it certainly was not processed.
     */
    ngx_int_t                      idempotent;
    ngx_uint_t                     keep_headers; /* fill headers_out */
    ngx_http_hris_call_handler_pt  handler;
    void                          *data;

    /* the outcome */
    ngx_http_hris_call_result_e    result;
    ngx_uint_t                     status;
    u_char                        *resp;
    size_t                         resp_len;
    ngx_str_t                      content_type;
    time_t                         retry_after;  /* seconds, or -1 */
    ngx_array_t                    headers_out;  /* ngx_keyval_t */
    ngx_uint_t                     attempts;
    ngx_str_t                      error;        /* curl's message */
    ngx_uint_t                     unknown;      /* may have been carried
                                                    out, no answer came */

    /*
     * resp read into JSON already, by a thread (ngx_http_hris_offload.c):
     * ngx_http_hris_upstream_json() takes this outcome instead of parsing;
     * the tree belongs to the walk's heap
     */
    json_t                        *parsed_body;
    int                            parsed_line;
    int                            parsed_column;
    const char                    *parsed_error;
    unsigned                       parsed:1;

    /* read the records there as slot records (walk.c), or NULL */
    ngx_http_hris_slots_t         *slots;

    /* private */
    CURL                          *easy;
    struct curl_slist             *slist;
    ngx_event_t                    retry_ev;
    ngx_event_t                    resume_ev;  /* paused: read on */
    ngx_uint_t                     turn;       /* of turn_bytes */
    size_t                         turn_bytes;
    ngx_queue_t                    failed_link;
    size_t                         resp_size;
    char                           errbuf[CURL_ERROR_SIZE];
    unsigned                       in_multi:1;
    unsigned                       done:1;
    unsigned                       final:1;    /* retrying cannot help */
    unsigned                       failed:1;   /* its socket not watched */
    unsigned                       paused:1;   /* resume_ev posted */
};


ngx_int_t ngx_http_hris_upstream_init_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_hris_upstream_ca_load(ngx_conf_t *cf,
    ngx_http_hris_upstream_conf_t *conf);
void ngx_http_hris_upstream_exit_process(ngx_cycle_t *cycle);

ngx_http_hris_call_t *ngx_http_hris_call_create(ngx_http_request_t *r,
    ngx_http_hris_upstream_conf_t *conf);
ngx_http_hris_call_t *ngx_http_hris_call_create_bg(ngx_pool_t *pool,
    ngx_log_t *log, ngx_http_hris_upstream_conf_t *conf);
ngx_int_t ngx_http_hris_call_header(ngx_http_hris_call_t *call,
    ngx_str_t *name, ngx_str_t *value);
ngx_int_t ngx_http_hris_call_start(ngx_http_hris_call_t *call);
ngx_str_t *ngx_http_hris_call_host(ngx_http_hris_call_t *call);


#endif /* _NGX_HTTP_HRIS_UPSTREAM_H_INCLUDED_ */

/*
 * The Redis client's insides, shared by ngx_http_hris_redis*.c (the rest
 * of the module uses ngx_http_hris_redis.h).
 */

#ifndef _NGX_HTTP_HRIS_REDIS_CLIENT_H_INCLUDED_
#define _NGX_HTTP_HRIS_REDIS_CLIENT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>

#include "ngx_http_hris_redis.h"
#include "ngx_http_hris_metrics.h"


#define NGX_HTTP_HRIS_REDIS_PORT         6379
#define NGX_HTTP_HRIS_REDIS_BUF          4096
#define NGX_HTTP_HRIS_REDIS_BACKOFF_MIN  100
#define NGX_HTTP_HRIS_REDIS_BACKOFF_MAX  5000


typedef enum {
    NGX_HTTP_HRIS_REDIS_DOWN = 0,     /* no connection: a reconnect is due */
    NGX_HTTP_HRIS_REDIS_CONNECTING,
    NGX_HTTP_HRIS_REDIS_HANDSHAKE,    /* AUTH, SELECT, PING on the wire */
    NGX_HTTP_HRIS_REDIS_READY
} ngx_http_hris_redis_state_e;


struct ngx_http_hris_redis_cmd_s {
    ngx_queue_t                      queue;
    ngx_http_hris_redis_handler_pt   handler;   /* NULL: cancelled */
    void                            *data;
    ngx_pool_cleanup_t              *cln;       /* in the caller's pool */
    ngx_http_hris_redis_script_t    *script;    /* EVALSHA: EVAL on NOSCRIPT */
    size_t                           tail;      /* EVALSHA: after the sha */
    ngx_uint_t                       nargs;     /* EVALSHA: *N */
    ngx_http_hris_redis_status_e     status;    /* when it failed */
    ngx_msec_t                       deadline;
    ngx_buf_t                        buf;       /* the command, in RESP */
    ngx_chain_t                      cl;
};


struct ngx_http_hris_redis_s {
    ngx_http_hris_redis_conf_t      *conf;
    ngx_log_t                       *log;
    ngx_peer_connection_t            peer;
    ngx_http_hris_redis_state_e      state;
    ngx_uint_t                       generation; /* +1 per connection */
    ngx_uint_t                       addr;       /* next address to try */
    ngx_uint_t                       failures;   /* in a row */
    ngx_msec_t                       backoff;

    ngx_queue_t                      waiting;
    ngx_queue_t                      sent;
    ngx_queue_t                      failed;
    ngx_uint_t                       handshake;  /* replies still due */
    const char                      *steps[3];   /* their commands */

    ngx_event_t                      reconnect;
    ngx_event_t                      deliver;

    u_char                          *start;      /* read buffer */
    u_char                          *pos;
    u_char                          *last;
    u_char                          *end;

    void                           (*on_connect)(void *data);
    void                            *on_connect_data;
};


ngx_int_t ngx_http_hris_redis_test_connect(ngx_connection_t *c);
void ngx_http_hris_redis_connected(ngx_http_hris_redis_t *rd);
void ngx_http_hris_redis_fail(ngx_http_hris_redis_t *rd,
    ngx_http_hris_redis_status_e status, ngx_err_t err, const char *why);
void ngx_http_hris_redis_write_handler(ngx_event_t *wev);
void ngx_http_hris_redis_read_handler(ngx_event_t *rev);
ngx_int_t ngx_http_hris_redis_flush(ngx_http_hris_redis_t *rd);
void ngx_http_hris_redis_timer(ngx_http_hris_redis_t *rd);
ngx_uint_t ngx_http_hris_redis_awaited(ngx_http_hris_redis_t *rd);
ngx_http_hris_redis_cmd_t *ngx_http_hris_redis_cmd_new(
    ngx_http_hris_redis_t *rd, ngx_pool_t *pool, ngx_uint_t argc,
    ngx_str_t *argv, ngx_http_hris_redis_handler_pt handler, void *data);
void ngx_http_hris_redis_enqueue(ngx_http_hris_redis_t *rd,
    ngx_http_hris_redis_cmd_t *cmd);
void ngx_http_hris_redis_cmd_free(ngx_http_hris_redis_cmd_t *cmd);


#endif /* _NGX_HTTP_HRIS_REDIS_CLIENT_H_INCLUDED_ */

/*
 * A Redis client owned by nginx's event loop, one per worker (hris_redis).
 *
 * Commands are queued, pipelined in order and matched to replies in FIFO
 * order. The client connects at worker start, authenticates and selects
 * its database before any queued command is sent, and reconnects by
 * itself with a growing, jittered delay after an error. Nothing here
 * blocks the worker: connect, send and receive are nginx events, waits
 * are nginx timers.
 *
 *     cmd = ngx_http_hris_redis_command(rd, r->pool, 2, argv, handler, ctx);
 *
 * The handler is called once: with NGX_HTTP_HRIS_REDIS_REPLY and a parsed
 * reply (which may be a Redis error reply, type ..._ERROR), or with
 * ..._UNREACHABLE / ..._TIMEOUT and no reply when the store could not
 * answer. The reply lives in a pool of its own, destroyed when the handler
 * returns: copy what you keep. When the caller's pool is destroyed first
 * (a request that went away), the handler is not called: the pool's
 * cleanup cancels the command, and its reply is read and dropped.
 */

#ifndef _NGX_HTTP_HRIS_REDIS_H_INCLUDED_
#define _NGX_HTTP_HRIS_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_hris_resp.h"


typedef struct ngx_http_hris_redis_s        ngx_http_hris_redis_t;
typedef struct ngx_http_hris_redis_cmd_s    ngx_http_hris_redis_cmd_t;


typedef enum {
    NGX_HTTP_HRIS_REDIS_REPLY = 0,    /* a reply, maybe an error reply */
    NGX_HTTP_HRIS_REDIS_UNREACHABLE,  /* no connection, or it was lost */
    NGX_HTTP_HRIS_REDIS_TIMEOUT       /* no reply in hris_redis_timeout */
} ngx_http_hris_redis_status_e;


typedef void (*ngx_http_hris_redis_handler_pt)(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);


/* hris_redis, parsed: no credential in name (it goes into log lines) */
typedef struct {
    ngx_str_t                     name;     /* host:port or unix:/path */
    ngx_addr_t                   *addrs;
    ngx_uint_t                    naddrs;
    ngx_str_t                     user;     /* empty: AUTH <password> */
    ngx_str_t                     password; /* empty: no AUTH */
    ngx_uint_t                    db;
    ngx_msec_t                    timeout;
    ngx_msec_t                    connect_timeout;
    ngx_http_hris_redis_t        *client;   /* in a worker */
} ngx_http_hris_redis_conf_t;


/* A Lua script run by EVALSHA, sent whole (EVAL) when Redis lacks it. */
typedef struct {
    ngx_str_t                     text;
    u_char                        sha1[40]; /* hex */
} ngx_http_hris_redis_script_t;


/* configuration */
char *ngx_http_hris_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_hris_redis_check(ngx_conf_t *cf,
    ngx_http_hris_redis_conf_t *rcf);
void ngx_http_hris_redis_script_init(ngx_http_hris_redis_script_t *script,
    char *text);

/* per worker */
ngx_int_t ngx_http_hris_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_hris_redis_conf_t *rcf);
void ngx_http_hris_redis_exit_process(ngx_http_hris_redis_conf_t *rcf);

ngx_http_hris_redis_cmd_t *ngx_http_hris_redis_command(
    ngx_http_hris_redis_t *rd, ngx_pool_t *pool, ngx_uint_t argc,
    ngx_str_t *argv, ngx_http_hris_redis_handler_pt handler, void *data);
ngx_http_hris_redis_cmd_t *ngx_http_hris_redis_eval(ngx_http_hris_redis_t *rd,
    ngx_pool_t *pool, ngx_http_hris_redis_script_t *script,
    ngx_uint_t nkeys, ngx_uint_t argc, ngx_str_t *argv,
    ngx_http_hris_redis_handler_pt handler, void *data);
void ngx_http_hris_redis_cancel(ngx_http_hris_redis_cmd_t *cmd);

/* called after each (re)connection is ready for commands */
void ngx_http_hris_redis_on_connect(ngx_http_hris_redis_t *rd,
    void (*handler)(void *data), void *data);
ngx_str_t *ngx_http_hris_redis_name(ngx_http_hris_redis_t *rd);


#endif /* _NGX_HTTP_HRIS_REDIS_H_INCLUDED_ */

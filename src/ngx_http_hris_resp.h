/*
 * RESP2, the Redis protocol: commands encoded, replies parsed with bounds
 * (ngx_http_hris_resp.c). No I/O: ngx_http_hris_redis.c moves the bytes.
 */

#ifndef _NGX_HTTP_HRIS_RESP_H_INCLUDED_
#define _NGX_HTTP_HRIS_RESP_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* what one reply may hold: more is an error, and the connection is reset */
#define NGX_HTTP_HRIS_RESP_MAX_REPLY  (4 * 1024 * 1024)   /* bytes */
#define NGX_HTTP_HRIS_RESP_MAX_ELTS   (128 * 1024)        /* in all arrays */
#define NGX_HTTP_HRIS_RESP_MAX_DEPTH  8                   /* array in array */


typedef struct ngx_http_hris_redis_reply_s  ngx_http_hris_redis_reply_t;

typedef enum {
    NGX_HTTP_HRIS_REDIS_STRING = 1,   /* +simple string */
    NGX_HTTP_HRIS_REDIS_ERROR,        /* -error reply (str: its text) */
    NGX_HTTP_HRIS_REDIS_INTEGER,      /* :integer */
    NGX_HTTP_HRIS_REDIS_BULK,         /* $bulk string */
    NGX_HTTP_HRIS_REDIS_NIL,          /* $-1 or *-1 */
    NGX_HTTP_HRIS_REDIS_ARRAY         /* *array, maybe nested */
} ngx_http_hris_redis_type_e;

struct ngx_http_hris_redis_reply_s {
    ngx_http_hris_redis_type_e    type;
    int64_t                       integer;
    ngx_str_t                     str;      /* null-terminated */
    ngx_uint_t                    nelts;
    ngx_http_hris_redis_reply_t  *elts;
};


ngx_int_t ngx_http_hris_resp_parse(u_char **pos, u_char *last,
    ngx_pool_t *pool, ngx_http_hris_redis_reply_t *reply, const char **err);
size_t ngx_http_hris_resp_size(ngx_uint_t argc, ngx_str_t *argv);
u_char *ngx_http_hris_resp_write(u_char *p, ngx_uint_t argc, ngx_str_t *argv);


#endif /* _NGX_HTTP_HRIS_RESP_H_INCLUDED_ */

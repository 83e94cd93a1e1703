/*
 * A per-request arena for jansson's allocations (see
 * ngx_http_hris_arena.c).
 */

#ifndef _NGX_HTTP_HRIS_ARENA_H_INCLUDED_
#define _NGX_HTTP_HRIS_ARENA_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


typedef struct ngx_http_hris_arena_s  ngx_http_hris_arena_t;


ngx_http_hris_arena_t *ngx_http_hris_arena_get(ngx_pool_t *pool);
ngx_http_hris_arena_t *ngx_http_hris_arena_of(const void *p);
ngx_http_hris_arena_t *ngx_http_hris_arena_enter(ngx_http_hris_arena_t *a);
void ngx_http_hris_arena_leave(ngx_http_hris_arena_t *prev);
void ngx_http_hris_arena_done(void);

ngx_int_t ngx_http_hris_arena_init_range(void);
ngx_http_hris_arena_t *ngx_http_hris_arena_thread(void);
ngx_int_t ngx_http_hris_arena_bind(ngx_http_hris_arena_t *a,
    ngx_pool_t *pool);
void ngx_http_hris_arena_drop(ngx_http_hris_arena_t *a);
ngx_uint_t ngx_http_hris_arena_in_range(const void *p);


#endif /* _NGX_HTTP_HRIS_ARENA_H_INCLUDED_ */

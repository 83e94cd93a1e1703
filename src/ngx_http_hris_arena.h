/*
 * A per-request arena for jansson's allocations (see
 * ngx_http_hris_arena.c).
 */

#ifndef _NGX_HTTP_HRIS_ARENA_H_INCLUDED_
#define _NGX_HTTP_HRIS_ARENA_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>


typedef struct ngx_http_hris_arena_s  ngx_http_hris_arena_t;


ngx_http_hris_arena_t *ngx_http_hris_arena_get(ngx_pool_t *pool);
ngx_http_hris_arena_t *ngx_http_hris_arena_of(const void *p);
ngx_uint_t ngx_http_hris_arena_mallocs(ngx_http_hris_arena_t *a);
ngx_http_hris_arena_t *ngx_http_hris_arena_enter(ngx_http_hris_arena_t *a);
void ngx_http_hris_arena_leave(ngx_http_hris_arena_t *prev);
void ngx_http_hris_arena_done(void);

ngx_int_t ngx_http_hris_arena_init_range(void);
ngx_http_hris_arena_t *ngx_http_hris_arena_thread(void);
ngx_int_t ngx_http_hris_arena_bind(ngx_http_hris_arena_t *a,
    ngx_pool_t *pool);
void ngx_http_hris_arena_drop(ngx_http_hris_arena_t *a);
ngx_uint_t ngx_http_hris_arena_in_range(const void *p);
json_t *ngx_http_hris_arena_string(const u_char *s, size_t len);


/*
 * Pins a string or a number whose blocks all lie in an arena of the event
 * loop: refcount (size_t) -1, as jansson's own true, false and null. Its
 * references then cost no atomic instruction (json_incref() and
 * json_decref() pass over an immortal value) and it is never deleted:
 * its blocks go with the arena's pool, as they would anyway. A window
 * builds only what dies with the pool, so nothing holds it past that.
 * The caller knows the blocks are the arena's (ngx_http_hris_arena_
 * mallocs() unchanged since the value was built in a window).
 */

static ngx_inline void
ngx_http_hris_arena_pin(json_t *v)
{
    switch (json_typeof(v)) {

    case JSON_STRING:
    case JSON_INTEGER:
    case JSON_REAL:
        v->refcount = (size_t) -1;
        break;

    default:
        break;
    }
}


#endif /* _NGX_HTTP_HRIS_ARENA_H_INCLUDED_ */

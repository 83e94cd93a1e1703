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


/*
 * jansson's string and array nodes as its value.c lays them out
 * (jansson_private.h, the same since 2.7), for the nodes the arena makes
 * in one block (ngx_http_hris_arena_string(), _array()). The library's
 * own functions are checked against them before they are used:
 * ngx_http_hris_json_ours is 1 then (NGX_CONF_UNSET_UINT before the
 * check, 0 if the layouts differ and jansson makes every node).
 */
typedef struct {
    json_t                       json;
    char                        *value;
    size_t                       length;
} ngx_http_hris_json_string_t;

typedef struct {
    json_t                       json;
    size_t                       size;
    size_t                       entries;
    json_t                     **table;
} ngx_http_hris_json_array_t;

extern ngx_uint_t  ngx_http_hris_json_ours;

json_t *ngx_http_hris_arena_string(const u_char *s, size_t len);
json_t *ngx_http_hris_arena_array(size_t n);


/*
 * jansson's accessors of a string (an array) as loads once its layouts
 * are known to be ours, its functions before: the writer and the paths
 * called them for every value. v must be of that type.
 */

static ngx_inline const char *
ngx_http_hris_string_value(const json_t *v)
{
    return ngx_http_hris_json_ours == 1
           ? ((const ngx_http_hris_json_string_t *) v)->value
           : json_string_value(v);
}


static ngx_inline size_t
ngx_http_hris_string_length(const json_t *v)
{
    return ngx_http_hris_json_ours == 1
           ? ((const ngx_http_hris_json_string_t *) v)->length
           : json_string_length(v);
}


static ngx_inline size_t
ngx_http_hris_array_size(const json_t *v)
{
    return ngx_http_hris_json_ours == 1
           ? ((const ngx_http_hris_json_array_t *) v)->entries
           : json_array_size(v);
}


/* the i-th value, i below the size */

static ngx_inline json_t *
ngx_http_hris_array_at(const json_t *v, size_t i)
{
    return ngx_http_hris_json_ours == 1
           ? ((const ngx_http_hris_json_array_t *) v)->table[i]
           : json_array_get(v, i);
}


/*
 * json_array_append_new() for an array with room (one the arena made for
 * its n values): a store, not a call. Steals v's reference, as it does.
 */

static ngx_inline int
ngx_http_hris_array_append(json_t *array, json_t *v)
{
    ngx_http_hris_json_array_t  *a = (ngx_http_hris_json_array_t *) array;

    if (ngx_http_hris_json_ours == 1 && v != NULL && a->entries < a->size) {
        a->table[a->entries++] = v;
        return 0;
    }

    return json_array_append_new(array, v);
}


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

/*
 * Mapping expressions: the field part of a mapping table, compiled at
 * configuration time into a tree of ngx_http_hris_expr_t and evaluated per
 * upstream record. See mappings/README.md, "Field expressions".
 */

#ifndef _NGX_HTTP_HRIS_MAP_H_INCLUDED_
#define _NGX_HTTP_HRIS_MAP_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>
#include "ngx_http_hris_parse.h"
#include "ngx_http_hris_arena.h"


/* A pre-split JSON pointer. */
typedef struct {
    ngx_uint_t                 parent;    /* starts at "$parent" */
    ngx_uint_t                 n;         /* number of tokens */
    ngx_str_t                 *tokens;    /* unescaped, null-terminated */

    /* a field path's first token as a slot record's slot (or NULL) */
    ngx_http_hris_slot_keys_t *slot_keys;
    ngx_uint_t                 slot;
} ngx_http_hris_path_t;


typedef struct ngx_http_hris_expr_s  ngx_http_hris_expr_t;


/* Where compile errors are reported: "<file>: <where>: <message>". */
typedef struct {
    ngx_conf_t                *cf;
    ngx_pool_t                *pool;      /* compiled trees live here */
    const char                *file;      /* table file name, for messages */

    /* the first keys of the field paths compiled (NULL at first) */
    ngx_http_hris_slot_keys_t *slot_keys;

    /*
     * A key as the answer's writer puts it (ngx_http_hris_json_key());
     * when set, "object" expressions keep theirs and may be evaluated
     * as compact objects (below).
     */
    ngx_int_t                (*write_key)(ngx_pool_t *pool, ngx_str_t *name,
                                          ngx_str_t *key);
} ngx_http_hris_map_ctx_t;


/*
 * A compact object: what an "object" expression gives while a record is
 * mapped for the answer's writer (ngx_http_hris_map_compact set by
 * ngx_http_hris_record_values()), instead of a jansson object, whose
 * hash table cost a sixth of a list request (bench/README.md) for values
 * that are only written out. It is a jansson array: the expression's
 * mark, then the values in the order of its keys. The mark is an
 * immortal null of the expression's (refcount (size_t) -1, as jansson's
 * own singletons: references neither count nor free it), which no
 * provider value and no other expression can be. Every step of an
 * evaluation treats a compact object as it treats an object: not null,
 * no string form, not spliced into a list.
 */
typedef struct {
    json_t                     mark;
    ngx_str_t                 *keys;      /* as the writer puts them */
} ngx_http_hris_compact_t;


extern __thread ngx_uint_t  ngx_http_hris_map_compact
    __attribute__((tls_model("initial-exec")));


/* the compact object's expression part, or NULL: v is something else */

static ngx_inline ngx_http_hris_compact_t *
ngx_http_hris_compact_of(json_t *v)
{
    json_t  *m;

    if (!json_is_array(v) || ngx_http_hris_array_size(v) == 0) {
        return NULL;
    }

    m = ngx_http_hris_array_at(v, 0);

    if (m->type != JSON_NULL || m->refcount != (size_t) -1
        || m == json_null())
    {
        return NULL;
    }

    return (ngx_http_hris_compact_t *) m;
}


/*
 * Compiles "text" (RFC 6901, or "$parent" followed by a pointer) into path.
 * Returns NGX_OK or NGX_ERROR (syntax error; nothing logged).
 */
ngx_int_t ngx_http_hris_path_compile(ngx_pool_t *pool, ngx_str_t *text,
    ngx_http_hris_path_t *path);

/*
 * Gives a field path's first token a slot number (ngx_http_hris_parse.h),
 * in the table of mc's compile.
 */
ngx_int_t ngx_http_hris_path_slot(ngx_http_hris_map_ctx_t *mc,
    ngx_http_hris_path_t *path);

/* the table the paths of expr have slot numbers in, or NULL */
ngx_http_hris_slot_keys_t *ngx_http_hris_expr_slot_keys(
    ngx_http_hris_expr_t *expr);

/*
 * The slot record being mapped (ngx_http_hris_record_values()): a path
 * whose record or parent is its object reads the first token's value
 * from its slot, any other use of it fills the object first.
 */
extern ngx_http_hris_slot_rec_t  *ngx_http_hris_slot_record;

/*
 * Returns the borrowed value at path, or NULL when absent (or out of
 * memory filling a slot record).
 */
json_t *ngx_http_hris_path_get(ngx_http_hris_path_t *path, json_t *record,
    json_t *parent);


/*
 * Compiles one field expression. "where" names the key for error messages
 * (e.g. "resources.employees.fields.email"). On error logs, through
 * ngx_conf_log_error(NGX_LOG_EMERG, ...), "<file>: <where>: <what>" and
 * returns NULL.
 */
ngx_http_hris_expr_t *ngx_http_hris_expr_compile(ngx_http_hris_map_ctx_t *mc,
    json_t *spec, const char *where);

/*
 * Evaluates an expression against record (and parent, which may be NULL).
 * Returns a new reference (json_null() for null), or NULL only when out of
 * memory.
 */
json_t *ngx_http_hris_expr_eval(ngx_http_hris_expr_t *expr, json_t *record,
    json_t *parent);


#endif /* _NGX_HTTP_HRIS_MAP_H_INCLUDED_ */

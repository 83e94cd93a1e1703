/*
 * Private to the mapping-expression engine, where ngx_http_hris_map.c
 * compiles field expressions, ngx_http_hris_eval.c evaluates them and
 * ngx_http_hris_convert.c does their "type" conversions: the compiled form
 * of an expression and the functions these files call across. The rest of
 * the module includes only ngx_http_hris_map.h, where an expression is
 * opaque.
 */

#ifndef _NGX_HTTP_HRIS_MAP_INT_H_INCLUDED_
#define _NGX_HTTP_HRIS_MAP_INT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_hris_map.h"


/* sources: exactly one per expression */
#define NGX_HTTP_HRIS_EXPR_PATH        1
#define NGX_HTTP_HRIS_EXPR_CONST       2
#define NGX_HTTP_HRIS_EXPR_TEMPLATE    3
#define NGX_HTTP_HRIS_EXPR_FIRST       4
#define NGX_HTTP_HRIS_EXPR_OBJECT      5
#define NGX_HTTP_HRIS_EXPR_ARRAY       6
#define NGX_HTTP_HRIS_EXPR_EACH        7

/* the other keys of an expression object */
#define NGX_HTTP_HRIS_KEY_REQUIRED     8
#define NGX_HTTP_HRIS_KEY_MAP          9
#define NGX_HTTP_HRIS_KEY_REGEX        10
#define NGX_HTTP_HRIS_KEY_ENUM         11
#define NGX_HTTP_HRIS_KEY_ENUM_DEFAULT 12
#define NGX_HTTP_HRIS_KEY_TYPE         13
#define NGX_HTTP_HRIS_KEY_DEFAULT      14
#define NGX_HTTP_HRIS_KEY_MAX          15

#define NGX_HTTP_HRIS_TYPE_NONE        0
#define NGX_HTTP_HRIS_TYPE_STRING      1
#define NGX_HTTP_HRIS_TYPE_NUMBER      2
#define NGX_HTTP_HRIS_TYPE_INTEGER     3
#define NGX_HTTP_HRIS_TYPE_BOOLEAN     4
#define NGX_HTTP_HRIS_TYPE_DATE        5
#define NGX_HTTP_HRIS_TYPE_DATETIME    6

/* enough for any json_int_t and any "%.17g" double */
#define NGX_HTTP_HRIS_NUM_LEN          32


typedef struct {
    ngx_str_t                  text;       /* literal text before the path */
    ngx_http_hris_path_t       path;
    ngx_uint_t                 has_path;   /* 0 for the trailing literal */
} ngx_http_hris_tpl_part_t;


struct ngx_http_hris_expr_s {
    ngx_uint_t                 source;
    ngx_uint_t                 modified;   /* any modifier present */

    ngx_http_hris_path_t       path;       /* path, each */
    json_t                    *value;      /* const */

    ngx_http_hris_expr_t     **items;      /* first, array, object */
    ngx_uint_t                 nitems;
    ngx_str_t                 *keys;       /* object */
    u_char                    *required;   /* object: a flag per key */
    ngx_http_hris_compact_t    compact;    /* object, with write_key */

    ngx_http_hris_tpl_part_t  *parts;      /* template */
    ngx_uint_t                 nparts;

    ngx_http_hris_expr_t      *map;        /* each */

    ngx_regex_t               *regex;
    ngx_uint_t                 group;      /* capture to return: 0 or 1 */
    json_t                    *enums;
    json_t                    *enum_default;
    ngx_uint_t                 type;
    json_t                    *dflt;
};


/*
 * The "type" modifier (NGX_HTTP_HRIS_TYPE_...): takes over value and
 * returns a new reference, or NULL when out of memory.
 */
json_t *ngx_http_hris_expr_convert(ngx_uint_t type, json_t *value);

/*
 * The string a scalar stands for; a number is written into buf, of
 * NGX_HTTP_HRIS_NUM_LEN bytes. NGX_DECLINED for null, objects and arrays.
 */
ngx_int_t ngx_http_hris_map_string_form(json_t *value, u_char *buf,
    ngx_str_t *s);

/* strips leading and trailing spaces, tabs, CRs and LFs */
void ngx_http_hris_map_trim(ngx_str_t *s);


#endif /* _NGX_HTTP_HRIS_MAP_INT_H_INCLUDED_ */

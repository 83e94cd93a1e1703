/*
 * String templates of mapping tables: "text {{ns.key}} text", compiled at
 * configuration time into literal and variable parts.
 */

#ifndef _NGX_HTTP_HRIS_TEMPLATE_H_INCLUDED_
#define _NGX_HTTP_HRIS_TEMPLATE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


typedef enum {
    NGX_HTTP_HRIS_TPL_LITERAL = 0,
    NGX_HTTP_HRIS_TPL_CONTEXT,
    NGX_HTTP_HRIS_TPL_CREDENTIALS,
    NGX_HTTP_HRIS_TPL_ID,
    NGX_HTTP_HRIS_TPL_PAGE_LIMIT,
    NGX_HTTP_HRIS_TPL_PAGE_CURSOR,
    NGX_HTTP_HRIS_TPL_PAGE_OFFSET,
    NGX_HTTP_HRIS_TPL_PAGE_NUMBER,
    NGX_HTTP_HRIS_TPL_FILTER,
    NGX_HTTP_HRIS_TPL_EACH,
    NGX_HTTP_HRIS_TPL_BASE_URL,
    NGX_HTTP_HRIS_TPL_TOKEN_URL,
    NGX_HTTP_HRIS_TPL_TOKEN,
    NGX_HTTP_HRIS_TPL_REFRESH_TOKEN,
    NGX_HTTP_HRIS_TPL_INPUT           /* a write's unified input */
} ngx_http_hris_tpl_part_type_e;


typedef struct {
    ngx_http_hris_tpl_part_type_e  type;
    ngx_str_t                      text;      /* literal, or the key */
} ngx_http_hris_tpl_part_t;


/* literals and variables of one template: what rendering has room for */
#define NGX_HTTP_HRIS_TPL_MAX_PARTS  16


typedef struct {
    ngx_uint_t                     nparts;
    ngx_http_hris_tpl_part_t      *parts;
} ngx_http_hris_tpl_t;


/* What a template may read when it is rendered. */
typedef struct {
    ngx_array_t                   *context;     /* ngx_keyval_t */
    ngx_array_t                   *credentials; /* ngx_keyval_t */
    ngx_str_t                      id;
    ngx_str_t                      page_limit;
    ngx_str_t                      page_cursor;
    ngx_str_t                      page_offset;
    ngx_str_t                      page_number;
    ngx_array_t                   *filters;     /* ngx_keyval_t */
    ngx_str_t                      each;        /* fan-out value */
    ngx_str_t                      base_url;
    ngx_str_t                      token_url;
    ngx_str_t                      token;       /* access token */
    ngx_str_t                      refresh_token;
    ngx_array_t                   *input;       /* ngx_keyval_t: "a.b" */
} ngx_http_hris_tpl_vars_t;


/* Returns NULL with *err set (a static message) on a syntax error. */
ngx_http_hris_tpl_t *ngx_http_hris_tpl_compile(ngx_pool_t *pool,
    ngx_str_t *src, const char **err);

/*
 * Renders; escape percent-encodes every variable (not the literals).
 * Unescaped (headers, token URLs, bodies), a variable holding a control
 * character is refused: NGX_DECLINED, logged to the pool's log.
 */
ngx_int_t ngx_http_hris_tpl_render(ngx_pool_t *pool, ngx_http_hris_tpl_t *tpl,
    ngx_http_hris_tpl_vars_t *vars, ngx_uint_t escape, ngx_str_t *out);

/* Whether a value can go into a header or URL as it is (no CR, LF, ...). */
ngx_uint_t ngx_http_hris_value_safe(u_char *p, size_t len);
ngx_uint_t ngx_http_hris_header_safe(u_char *p, size_t len);

/* Percent-encodes everything but RFC 3986 unreserved characters. */
ngx_int_t ngx_http_hris_escape(ngx_pool_t *pool, ngx_str_t *in,
    ngx_str_t *out);

ngx_str_t *ngx_http_hris_keyval_get(ngx_array_t *kv, ngx_str_t *key);


#endif /* _NGX_HTTP_HRIS_TEMPLATE_H_INCLUDED_ */

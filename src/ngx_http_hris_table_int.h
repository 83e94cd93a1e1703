/*
 * What the table compiler's files share (ngx_http_hris_table.c,
 * ngx_http_hris_table_op.c, ngx_http_hris_table_auth.c): the compile
 * context and its helpers, which report errors as "<file>: <key>: <what>".
 */

#ifndef _NGX_HTTP_HRIS_TABLE_INT_H_INCLUDED_
#define _NGX_HTTP_HRIS_TABLE_INT_H_INCLUDED_


#include "ngx_http_hris.h"


typedef struct {
    ngx_conf_t                  *cf;
    ngx_http_hris_main_conf_t   *hmcf;
    ngx_http_hris_table_t       *table;
    ngx_http_hris_map_ctx_t      mc;
    char                         where[256];
} ngx_http_hris_tc_t;


#define ngx_http_hris_tc_error(tc, where, fmt, ...)                          \
    ngx_conf_log_error(NGX_LOG_EMERG, (tc)->cf, 0, "hris: %V: %s: " fmt,     \
                       &(tc)->table->file, where, ##__VA_ARGS__)


ngx_http_hris_op_t *ngx_http_hris_op_compile(ngx_http_hris_tc_t *tc,
    ngx_http_hris_schema_resource_t *sr, json_t *js, const char *where);
ngx_int_t ngx_http_hris_fields_compile(ngx_http_hris_tc_t *tc,
    ngx_http_hris_schema_resource_t *sr, json_t *js, const char *where,
    ngx_array_t *fields);
ngx_int_t ngx_http_hris_writes_compile(ngx_http_hris_tc_t *tc,
    ngx_http_hris_schema_resource_t *sr, json_t *rjs,
    ngx_http_hris_resource_t *res);
ngx_int_t ngx_http_hris_auth_compile(ngx_http_hris_tc_t *tc, json_t *js);
ngx_int_t ngx_http_hris_connect_compile(ngx_http_hris_tc_t *tc, json_t *js);
/* the "webhooks" section, or none (js NULL): ngx_http_hris_webhooks.h */
ngx_int_t ngx_http_hris_webhooks_compile(ngx_http_hris_tc_t *tc, json_t *js);
ngx_int_t ngx_http_hris_body_errors_compile(ngx_http_hris_tc_t *tc,
    json_t *js);
ngx_int_t ngx_http_hris_rate_compile(ngx_http_hris_tc_t *tc, json_t *js,
    const char *where, ngx_uint_t *calls, ngx_msec_t *window);

ngx_int_t ngx_http_hris_tc_params(ngx_http_hris_tc_t *tc, json_t *js,
    const char *where, ngx_array_t *params);
ngx_http_hris_tpl_t *ngx_http_hris_tc_tpl(ngx_http_hris_tc_t *tc, json_t *js,
    const char *where);
ngx_int_t ngx_http_hris_tc_path(ngx_http_hris_tc_t *tc, json_t *js,
    const char *where, ngx_http_hris_path_t *path);
ngx_regex_t *ngx_http_hris_tc_regex(ngx_http_hris_tc_t *tc, json_t *js,
    const char *where, ngx_str_t *src);
ngx_int_t ngx_http_hris_tc_keys(ngx_http_hris_tc_t *tc, json_t *js,
    const char *where, const char **allowed);
ngx_int_t ngx_http_hris_tc_str(ngx_pool_t *pool, const char *s, size_t len,
    ngx_str_t *out);
ngx_http_hris_body_t *ngx_http_hris_tc_body(ngx_http_hris_tc_t *tc,
    json_t *js, const char *where);


#endif /* _NGX_HTTP_HRIS_TABLE_INT_H_INCLUDED_ */

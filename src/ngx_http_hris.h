/*
 * ngx_http_hris_module: shared types. The module turns nginx into a unified
 * HRIS API; see README.md for the picture and mappings/README.md for the
 * table format these structures are compiled from.
 */

#ifndef _NGX_HTTP_HRIS_H_INCLUDED_
#define _NGX_HTTP_HRIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>

#include "ngx_http_hris_map.h"
#include "ngx_http_hris_template.h"
#include "ngx_http_hris_upstream.h"


#define NGX_HTTP_HRIS_MAX_LIMIT      500
#define NGX_HTTP_HRIS_DEFAULT_LIMIT  50


typedef enum {
    NGX_HTTP_HRIS_AUTH_NONE = 0,
    NGX_HTTP_HRIS_AUTH_BASIC,
    NGX_HTTP_HRIS_AUTH_BEARER,
    NGX_HTTP_HRIS_AUTH_HEADER
} ngx_http_hris_auth_type_e;


typedef enum {
    NGX_HTTP_HRIS_PAGE_NONE = 0,      /* one answer, sliced by the gateway */
    NGX_HTTP_HRIS_PAGE_CURSOR         /* provider cursor at a JSON pointer */
} ngx_http_hris_page_type_e;


/* A name (header or query parameter) with a value template. */
typedef struct {
    ngx_str_t                    name;
    ngx_http_hris_tpl_t         *value;
} ngx_http_hris_param_t;


/* A list filter the client may send; its value reaches templates. */
typedef struct {
    ngx_str_t                    name;
    ngx_str_t                    dflt;
    ngx_regex_t                 *pattern;     /* NULL: anything */
    ngx_str_t                    pattern_src;
} ngx_http_hris_filter_t;


/* "where": a record is kept when the value at path is one of values. */
typedef struct {
    ngx_http_hris_path_t         path;
    json_t                      *values;      /* array */
} ngx_http_hris_where_t;


/* One unified output field and the expression that computes it. */
typedef struct {
    ngx_str_t                    name;        /* null-terminated */
    ngx_http_hris_expr_t        *expr;        /* NULL: not mapped */
    ngx_uint_t                   is_list;     /* unmapped value is [] */
} ngx_http_hris_field_t;


typedef struct {
    ngx_str_t                    method;      /* null-terminated */
    ngx_http_hris_tpl_t         *path;
    ngx_array_t                  query;       /* ngx_http_hris_param_t */
    ngx_http_hris_path_t         records;
    ngx_array_t                  where;       /* ngx_http_hris_where_t */
    ngx_http_hris_path_t         unnest;
    ngx_array_t                  filters;     /* ngx_http_hris_filter_t */
    ngx_array_t                 *fields;      /* NULL: the resource's */

    ngx_http_hris_page_type_e    page_type;
    ngx_http_hris_path_t         page_next;
    ngx_uint_t                   max_limit;

    unsigned                     has_unnest:1;
    unsigned                     from_list:1;
} ngx_http_hris_op_t;


typedef struct {
    ngx_str_t                    name;
    ngx_http_hris_op_t          *list;
    ngx_http_hris_op_t          *get;
    ngx_array_t                  fields;      /* ngx_http_hris_field_t */
} ngx_http_hris_resource_t;


/* A unified resource as mappings/schema.json declares it. */
typedef struct {
    ngx_str_t                    name;
    ngx_array_t                  fields;      /* ngx_http_hris_field_t */
} ngx_http_hris_schema_resource_t;


typedef struct {
    ngx_str_t                    name;
    ngx_regex_t                 *pattern;
    ngx_str_t                    pattern_src;
} ngx_http_hris_context_key_t;


/* A provider's compiled mapping table. */
typedef struct {
    ngx_str_t                    name;        /* file stem: "bamboohr" */
    ngx_str_t                    file;
    ngx_http_hris_tpl_t         *base_url;
    ngx_array_t                  context;     /* ngx_http_hris_context_key_t */
    ngx_array_t                  headers;     /* ngx_http_hris_param_t */

    ngx_http_hris_auth_type_e    auth_type;
    ngx_http_hris_tpl_t         *auth_user;   /* basic */
    ngx_http_hris_tpl_t         *auth_pass;   /* basic */
    ngx_http_hris_tpl_t         *auth_token;  /* bearer */
    ngx_array_t                  auth_headers;/* header: param_t */

    ngx_array_t                  error_headers;  /* ngx_str_t */
    ngx_array_t                  error_paths;    /* ngx_http_hris_path_t */

    ngx_http_hris_resource_t   **resources;   /* by schema index, or NULL */
} ngx_http_hris_table_t;


typedef struct {
    ngx_str_t                    id;
    ngx_str_t                    tenant;
    ngx_str_t                    provider;
    ngx_http_hris_table_t       *table;
    ngx_array_t                  context;     /* ngx_keyval_t */
    ngx_array_t                  credentials; /* ngx_keyval_t */
    ngx_str_t                    base_url;    /* rendered, no trailing / */
    ngx_str_t                    token_url;
} ngx_http_hris_account_t;


typedef struct {
    u_char                       sha256[32];
    ngx_str_t                    tenant;
} ngx_http_hris_api_key_t;


typedef struct {
    ngx_str_t                    mappings;    /* directory */
    ngx_str_t                    accounts_file;
    ngx_str_t                    cursor_secret;

    ngx_array_t                  schema;      /* schema_resource_t */
    ngx_array_t                  tables;      /* ngx_http_hris_table_t */
    ngx_array_t                  accounts;    /* account_t, sorted by id */
    ngx_array_t                  api_keys;    /* api_key_t, sorted */

    ngx_str_t                    openapi;     /* the document */
    u_char                       cursor_key[32];
    ngx_uint_t                   used;        /* a location serves it */
} ngx_http_hris_main_conf_t;


typedef struct {
    ngx_http_hris_upstream_conf_t  upstream;
} ngx_http_hris_loc_conf_t;


extern ngx_module_t  ngx_http_hris_module;


/* ngx_http_hris_table.c */
ngx_int_t ngx_http_hris_schema_load(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf);
ngx_int_t ngx_http_hris_tables_load(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf);
ngx_http_hris_table_t *ngx_http_hris_table_find(
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *name);
ngx_int_t ngx_http_hris_schema_index(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *name);
json_t *ngx_http_hris_record_map(ngx_array_t *fields, json_t *record,
    json_t *parent, ngx_uint_t remote_data);

/* ngx_http_hris_accounts.c */
ngx_int_t ngx_http_hris_accounts_load(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf);
ngx_http_hris_api_key_t *ngx_http_hris_api_key_find(
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *key);
ngx_http_hris_account_t *ngx_http_hris_account_find(
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id);
ngx_int_t ngx_http_hris_authenticate(ngx_http_request_t *r,
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *tenant);
ngx_int_t ngx_http_hris_account_resolve(ngx_http_request_t *r,
    ngx_http_hris_main_conf_t *hmcf, ngx_http_hris_account_t **account);
ngx_int_t ngx_http_hris_apply_auth(ngx_http_hris_call_t *call,
    ngx_http_hris_account_t *account, ngx_http_hris_tpl_vars_t *vars);

/* ngx_http_hris_cursor.c */
ngx_int_t ngx_http_hris_cursor_seal(ngx_pool_t *pool, u_char *key,
    ngx_str_t *binding, json_t *state, ngx_str_t *out);
ngx_int_t ngx_http_hris_cursor_open(ngx_pool_t *pool, u_char *key,
    ngx_str_t *binding, ngx_str_t *in, json_t **state);

/* ngx_http_hris_response.c */
ngx_int_t ngx_http_hris_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body);
ngx_int_t ngx_http_hris_send_error(ngx_http_request_t *r, ngx_uint_t status,
    json_t *details, const char *fmt, ...);
ngx_int_t ngx_http_hris_json_cleanup(ngx_pool_t *pool, json_t *json);

/* ngx_http_hris_openapi.c */
ngx_int_t ngx_http_hris_openapi_build(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf, json_t *schema_res);
ngx_int_t ngx_http_hris_openapi_send(ngx_http_request_t *r);

/* ngx_http_hris_unified.c, ngx_http_hris_proxy.c */
ngx_int_t ngx_http_hris_unified_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_hris_proxy_handler(ngx_http_request_t *r);

/* helpers shared by the handlers */
ngx_int_t ngx_http_hris_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);
ngx_int_t ngx_http_hris_subpath(ngx_http_request_t *r, ngx_str_t *rest);
ngx_int_t ngx_http_hris_call_status_error(ngx_http_request_t *r,
    ngx_http_hris_call_t *call, ngx_http_hris_table_t *table);


#endif /* _NGX_HTTP_HRIS_H_INCLUDED_ */

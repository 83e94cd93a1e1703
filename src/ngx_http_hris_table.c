/*
 * Mapping tables: mappings/schema.json (the unified resources and fields)
 * and one mappings/<provider>.json per provider, read and compiled at
 * configuration time. Field expressions are compiled by
 * ngx_http_hris_map.c; this file compiles everything around them.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"


typedef struct {
    ngx_conf_t                  *cf;
    ngx_http_hris_main_conf_t   *hmcf;
    ngx_http_hris_table_t       *table;
    ngx_http_hris_map_ctx_t      mc;
    char                         where[256];
} ngx_http_hris_tc_t;


static ngx_int_t ngx_http_hris_overrides_check(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf);
static ngx_int_t ngx_http_hris_table_load(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *path, ngx_str_t *name);
static ngx_int_t ngx_http_hris_table_compile(ngx_http_hris_tc_t *tc,
    json_t *root);
static ngx_int_t ngx_http_hris_auth_compile(ngx_http_hris_tc_t *tc,
    json_t *js);
static ngx_int_t ngx_http_hris_token_compile(ngx_http_hris_tc_t *tc,
    json_t *js);
static ngx_int_t ngx_http_hris_body_errors_compile(ngx_http_hris_tc_t *tc,
    json_t *js);
static ngx_int_t ngx_http_hris_rate_compile(ngx_http_hris_tc_t *tc,
    json_t *js, const char *where, ngx_uint_t *calls, ngx_msec_t *window);
static ngx_int_t ngx_http_hris_op_for_each(ngx_http_hris_tc_t *tc,
    ngx_http_hris_op_t *op, json_t *js, const char *where);
static ngx_http_hris_body_t *ngx_http_hris_body_get(ngx_http_hris_tc_t *tc,
    json_t *js, const char *where);
static ngx_int_t ngx_http_hris_resource_compile(ngx_http_hris_tc_t *tc,
    ngx_http_hris_schema_resource_t *sr, json_t *js,
    ngx_http_hris_resource_t *res);
static ngx_int_t ngx_http_hris_fields_compile(ngx_http_hris_tc_t *tc,
    ngx_http_hris_schema_resource_t *sr, json_t *js, const char *where,
    ngx_array_t *fields);
static ngx_http_hris_op_t *ngx_http_hris_op_compile(ngx_http_hris_tc_t *tc,
    ngx_http_hris_schema_resource_t *sr, json_t *js, const char *where);
static ngx_int_t ngx_http_hris_op_pagination(ngx_http_hris_tc_t *tc,
    ngx_http_hris_op_t *op, json_t *js, const char *where);
static ngx_int_t ngx_http_hris_op_filters(ngx_http_hris_tc_t *tc,
    ngx_http_hris_op_t *op, json_t *js, const char *where);
static ngx_int_t ngx_http_hris_params_compile(ngx_http_hris_tc_t *tc,
    json_t *js, const char *where, ngx_array_t *params);
static ngx_http_hris_tpl_t *ngx_http_hris_tpl_get(ngx_http_hris_tc_t *tc,
    json_t *js, const char *where);
static ngx_int_t ngx_http_hris_tc_path(ngx_http_hris_tc_t *tc, json_t *js,
    const char *where, ngx_http_hris_path_t *path);
static ngx_regex_t *ngx_http_hris_regex(ngx_http_hris_tc_t *tc, json_t *js,
    const char *where, ngx_str_t *src);
static ngx_int_t ngx_http_hris_keys_check(ngx_http_hris_tc_t *tc, json_t *js,
    const char *where, const char **allowed);
static ngx_int_t ngx_http_hris_str(ngx_pool_t *pool, const char *s,
    size_t len, ngx_str_t *out);


#define ngx_http_hris_tc_error(tc, where, fmt, ...)                          \
    ngx_conf_log_error(NGX_LOG_EMERG, (tc)->cf, 0, "hris: %V: %s: " fmt,     \
                       &(tc)->table->file, where, ##__VA_ARGS__)


static const char  *ngx_http_hris_table_keys[] = {
    "base_url", "token_url", "context", "headers", "auth", "errors",
    "rate_limit", "resources", "description", NULL
};

static const char  *ngx_http_hris_op_keys[] = {
    "method", "path", "query", "body", "records", "where", "unnest",
    "pagination", "filters", "fields", "from_list", "for_each",
    "empty_statuses", NULL
};

static const char  *ngx_http_hris_token_keys[] = {
    "type", "method", "url", "query", "form", "body", "basic", "token",
    "expires_in", "ttl", "header", "value", "echo_header", NULL
};


/* mappings/schema.json: {"resources": {name: {"fields": {f: type}}}} */

ngx_int_t
ngx_http_hris_schema_load(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf)
{
    json_t                           *root, *res, *r, *fields, *t;
    const char                       *name, *fname;
    ngx_str_t                         file;
    json_error_t                      jerr;
    ngx_http_hris_field_t            *f;
    ngx_http_hris_schema_resource_t  *sr;

    file.len = hmcf->mappings.len + sizeof("/schema.json") - 1;
    file.data = ngx_pnalloc(cf->pool, file.len + 1);
    if (file.data == NULL) {
        return NGX_ERROR;
    }
    ngx_sprintf(file.data, "%V/schema.json%Z", &hmcf->mappings);

    root = json_load_file((char *) file.data, 0, &jerr);
    if (root == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: %V: line %d: %s",
                           &file, jerr.line, jerr.text);
        return NGX_ERROR;
    }

    if (ngx_http_hris_json_cleanup(cf->pool, root) != NGX_OK
        || ngx_array_init(&hmcf->schema, cf->pool, 16,
                          sizeof(ngx_http_hris_schema_resource_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    res = json_object_get(root, "resources");
    if (!json_is_object(res)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: %V: \"resources\" "
                           "must be an object", &file);
        return NGX_ERROR;
    }

    json_object_foreach(res, name, r) {
        fields = json_object_get(r, "fields");
        if (!json_is_object(fields)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: %V: resources.%s"
                               ".fields must be an object", &file, name);
            return NGX_ERROR;
        }

        sr = ngx_array_push(&hmcf->schema);
        if (sr == NULL
            || ngx_http_hris_str(cf->pool, name, ngx_strlen(name), &sr->name)
               != NGX_OK
            || ngx_array_init(&sr->fields, cf->pool, json_object_size(fields),
                              sizeof(ngx_http_hris_field_t))
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        json_object_foreach(fields, fname, t) {
            f = ngx_array_push(&sr->fields);
            if (f == NULL
                || ngx_http_hris_str(cf->pool, fname, ngx_strlen(fname),
                                     &f->name)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            /* "type", or {"type": ..., "enum": [...]} */
            if (json_is_object(t)) {
                t = json_object_get(t, "type");
            }

            f->expr = NULL;
            f->is_list = json_is_string(t)
                         && ngx_strcmp(json_string_value(t), "array") == 0;
        }
    }

    return ngx_http_hris_openapi_build(cf, hmcf, res);
}


ngx_int_t
ngx_http_hris_schema_index(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *name)
{
    ngx_uint_t                        i;
    ngx_http_hris_schema_resource_t  *sr;

    sr = hmcf->schema.elts;

    for (i = 0; i < hmcf->schema.nelts; i++) {
        if (sr[i].name.len == name->len
            && ngx_strncmp(sr[i].name.data, name->data, name->len) == 0)
        {
            return i;
        }
    }

    return NGX_ERROR;
}


/* every <provider>.json in the mappings directory but schema.json */

ngx_int_t
ngx_http_hris_tables_load(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf)
{
    size_t      len;
    u_char     *fname;
    ngx_dir_t   dir;
    ngx_str_t   path, name;

    if (ngx_array_init(&hmcf->tables, cf->pool, 8,
                       sizeof(ngx_http_hris_table_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_open_dir(&hmcf->mappings, &dir) == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "hris: cannot open mappings directory \"%V\"",
                           &hmcf->mappings);
        return NGX_ERROR;
    }

    for ( ;; ) {
        ngx_set_errno(0);

        if (ngx_read_dir(&dir) == NGX_ERROR) {
            break;
        }

        fname = ngx_de_name(&dir);
        len = ngx_de_namelen(&dir);

        if (len <= 5 || ngx_strcmp(fname + len - 5, ".json") != 0
            || ngx_strcmp(fname, "schema.json") == 0 || fname[0] == '.')
        {
            continue;
        }

        path.len = hmcf->mappings.len + 1 + len;
        path.data = ngx_pnalloc(cf->pool, path.len + 1);
        if (path.data == NULL) {
            ngx_close_dir(&dir);
            return NGX_ERROR;
        }
        ngx_sprintf(path.data, "%V/%s%Z", &hmcf->mappings, fname);

        /* the provider's name: the file name without ".json" */
        name.len = len - 5;
        name.data = ngx_pnalloc(cf->pool, name.len + 1);
        if (name.data == NULL) {
            ngx_close_dir(&dir);
            return NGX_ERROR;
        }
        ngx_memcpy(name.data, fname, name.len);
        name.data[name.len] = '\0';

        if (ngx_http_hris_table_load(cf, hmcf, &path, &name) != NGX_OK) {
            ngx_close_dir(&dir);
            return NGX_ERROR;
        }
    }

    ngx_close_dir(&dir);

    return ngx_http_hris_overrides_check(cf, hmcf);
}


/* overrides for a provider without a table are a typo, not a no-op */

static ngx_int_t
ngx_http_hris_overrides_check(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf)
{
    json_t      *v;
    ngx_str_t    name;
    const char  *key;

    json_object_foreach(hmcf->overrides, key, v) {
        name.data = (u_char *) key;
        name.len = ngx_strlen(key);

        if (ngx_http_hris_table_find(hmcf, &name) == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: %V: there is no "
                               "mapping table %V/%s.json to override",
                               &hmcf->overrides_file, &hmcf->mappings, key);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_table_load(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *path, ngx_str_t *name)
{
    json_t              *root;
    ngx_int_t            rc;
    json_error_t         jerr;
    ngx_http_hris_tc_t   tc;

    ngx_memzero(&tc, sizeof(ngx_http_hris_tc_t));

    tc.cf = cf;
    tc.hmcf = hmcf;
    tc.table = ngx_array_push(&hmcf->tables);
    if (tc.table == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(tc.table, sizeof(ngx_http_hris_table_t));
    tc.table->file = *path;
    tc.table->name = *name;

    tc.mc.cf = cf;
    tc.mc.pool = cf->pool;
    tc.mc.file = (const char *) path->data;

    root = json_load_file((char *) path->data, 0, &jerr);
    if (root == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: %V: line %d, column "
                           "%d: %s", path, jerr.line, jerr.column, jerr.text);
        return NGX_ERROR;
    }

    /* "const" values and "where" lists stay referenced by compiled trees */
    if (ngx_http_hris_json_cleanup(cf->pool, root) != NGX_OK) {
        json_decref(root);
        return NGX_ERROR;
    }

    if (ngx_http_hris_overrides_apply(cf, root,
                                      json_object_get(hmcf->overrides,
                                                      (char *) name->data),
                                      &hmcf->overrides_file)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    tc.table->root = root;

    rc = ngx_http_hris_table_compile(&tc, root);

    return rc;
}


/*
 * A table of its own for an account with "overrides": the provider's
 * (already overridden) JSON, copied, overridden again and compiled.
 */

ngx_http_hris_table_t *
ngx_http_hris_table_variant(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf,
    ngx_http_hris_table_t *base, json_t *overrides, ngx_str_t *what)
{
    json_t              *root;
    ngx_http_hris_tc_t   tc;

    root = json_deep_copy(base->root);
    if (root == NULL || ngx_http_hris_json_cleanup(cf->pool, root) != NGX_OK) {
        json_decref(root);
        return NULL;
    }

    if (ngx_http_hris_overrides_apply(cf, root, overrides, what) != NGX_OK) {
        return NULL;
    }

    ngx_memzero(&tc, sizeof(ngx_http_hris_tc_t));

    tc.cf = cf;
    tc.hmcf = hmcf;
    tc.table = ngx_pcalloc(cf->pool, sizeof(ngx_http_hris_table_t));
    if (tc.table == NULL) {
        return NULL;
    }

    tc.table->name = base->name;
    tc.table->file = *what;
    tc.table->root = root;

    tc.mc.cf = cf;
    tc.mc.pool = cf->pool;
    tc.mc.file = (const char *) what->data;

    if (ngx_http_hris_table_compile(&tc, root) != NGX_OK) {
        return NULL;
    }

    return tc.table;
}


static ngx_int_t
ngx_http_hris_table_compile(ngx_http_hris_tc_t *tc, json_t *root)
{
    json_t                           *res, *js;
    size_t                            len;
    ngx_int_t                         idx;
    ngx_str_t                         name;
    ngx_uint_t                        i;
    const char                       *key;
    ngx_http_hris_table_t            *t = tc->table;
    ngx_http_hris_context_key_t      *ck;
    ngx_http_hris_schema_resource_t  *sr;

    if (!json_is_object(root)) {
        ngx_http_hris_tc_error(tc, "(top level)", "must be an object");
        return NGX_ERROR;
    }

    if (ngx_http_hris_keys_check(tc, root, "(top level)",
                                 ngx_http_hris_table_keys)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    t->base_url = ngx_http_hris_tpl_get(tc, json_object_get(root, "base_url"),
                                        "base_url");
    if (t->base_url == NULL) {
        return NGX_ERROR;
    }

    if (ngx_array_init(&t->context, tc->cf->pool, 4,
                       sizeof(ngx_http_hris_context_key_t)) != NGX_OK
        || ngx_array_init(&t->error_headers, tc->cf->pool, 2,
                          sizeof(ngx_str_t)) != NGX_OK
        || ngx_array_init(&t->error_paths, tc->cf->pool, 2,
                          sizeof(ngx_http_hris_path_t)) != NGX_OK)
    {
        return NGX_ERROR;
    }

    json_object_foreach(json_object_get(root, "context"), key, js) {
        ck = ngx_array_push(&t->context);
        if (ck == NULL
            || ngx_http_hris_str(tc->cf->pool, key, ngx_strlen(key),
                                 &ck->name) != NGX_OK)
        {
            return NGX_ERROR;
        }

        ngx_snprintf((u_char *) tc->where, sizeof(tc->where), "context.%s"
                     ".pattern%Z", key);
        ck->pattern = NULL;

        if (json_object_get(js, "pattern")) {
            ck->pattern = ngx_http_hris_regex(tc,
                              json_object_get(js, "pattern"), tc->where,
                              &ck->pattern_src);
            if (ck->pattern == NULL) {
                return NGX_ERROR;
            }
        }
    }

    if (ngx_http_hris_params_compile(tc, json_object_get(root, "headers"),
                                     "headers", &t->headers)
        != NGX_OK
        || ngx_http_hris_auth_compile(tc, json_object_get(root, "auth"))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (json_object_get(root, "token_url")) {
        t->token_url = ngx_http_hris_tpl_get(tc,
                           json_object_get(root, "token_url"), "token_url");
        if (t->token_url == NULL) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_hris_rate_compile(tc, json_object_get(root, "rate_limit"),
                                   "rate_limit", &t->rate_calls,
                                   &t->rate_window)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    js = json_object_get(root, "errors");

    if (ngx_http_hris_body_errors_compile(tc, json_object_get(js, "in_body"))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    json_array_foreach(json_object_get(js, "message_headers"), len, res) {
        if (!json_is_string(res)
            || ngx_http_hris_str(tc->cf->pool, json_string_value(res),
                                 json_string_length(res),
                                 ngx_array_push(&t->error_headers))
               != NGX_OK)
        {
            ngx_http_hris_tc_error(tc, "errors.message_headers",
                                   "must be an array of header names");
            return NGX_ERROR;
        }
    }

    json_array_foreach(json_object_get(js, "message_paths"), len, res) {
        if (ngx_http_hris_tc_path(tc, res, "errors.message_paths",
                                   ngx_array_push(&t->error_paths))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    res = json_object_get(root, "resources");
    if (!json_is_object(res)) {
        ngx_http_hris_tc_error(tc, "resources", "must be an object of "
                               "unified resources");
        return NGX_ERROR;
    }

    t->resources = ngx_pcalloc(tc->cf->pool, tc->hmcf->schema.nelts
                                         * sizeof(ngx_http_hris_resource_t *));
    if (t->resources == NULL) {
        return NGX_ERROR;
    }

    sr = tc->hmcf->schema.elts;

    json_object_foreach(res, key, js) {
        name.data = (u_char *) key;
        name.len = ngx_strlen(key);

        idx = ngx_http_hris_schema_index(tc->hmcf, &name);
        if (idx == NGX_ERROR) {
            ngx_http_hris_tc_error(tc, "resources", "unknown resource "
                                   "\"%s\" (mappings/schema.json lists the "
                                   "unified resources)", key);
            return NGX_ERROR;
        }

        i = (ngx_uint_t) idx;

        t->resources[i] = ngx_pcalloc(tc->cf->pool,
                                      sizeof(ngx_http_hris_resource_t));
        if (t->resources[i] == NULL) {
            return NGX_ERROR;
        }

        t->resources[i]->name = sr[i].name;

        if (ngx_http_hris_resource_compile(tc, &sr[i], js, t->resources[i])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /* a fan-out walks another resource's list: it must be there */
    for (i = 0; i < tc->hmcf->schema.nelts; i++) {
        if (t->resources[i] == NULL || t->resources[i]->list == NULL
            || t->resources[i]->list->for_each == NULL
            || t->resources[i]->list->for_each->resource < 0)
        {
            continue;
        }

        idx = t->resources[i]->list->for_each->resource;

        if (t->resources[idx] == NULL || t->resources[idx]->list == NULL
            || t->resources[idx]->list->for_each)
        {
            ngx_http_hris_tc_error(tc, "resources", "%V.list.for_each walks "
                                   "%V, which needs a list without a "
                                   "for_each of its own", &sr[i].name,
                                   &sr[idx].name);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_auth_compile(ngx_http_hris_tc_t *tc, json_t *js)
{
    const char             *type;
    ngx_http_hris_table_t  *t = tc->table;

    if (ngx_array_init(&t->auth_headers, tc->cf->pool, 2,
                       sizeof(ngx_http_hris_param_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (js == NULL) {
        t->auth_type = NGX_HTTP_HRIS_AUTH_NONE;
        return NGX_OK;
    }

    type = json_string_value(json_object_get(js, "type"));
    if (type == NULL) {
        ngx_http_hris_tc_error(tc, "auth.type", "missing (none, basic, "
                               "bearer or header)");
        return NGX_ERROR;
    }

    if (ngx_strcmp(type, "none") == 0) {
        t->auth_type = NGX_HTTP_HRIS_AUTH_NONE;

    } else if (ngx_strcmp(type, "basic") == 0) {
        t->auth_type = NGX_HTTP_HRIS_AUTH_BASIC;
        t->auth_user = ngx_http_hris_tpl_get(tc,
                           json_object_get(js, "username"), "auth.username");
        t->auth_pass = ngx_http_hris_tpl_get(tc,
                           json_object_get(js, "password"), "auth.password");
        if (t->auth_user == NULL || t->auth_pass == NULL) {
            return NGX_ERROR;
        }

    } else if (ngx_strcmp(type, "bearer") == 0) {
        t->auth_type = NGX_HTTP_HRIS_AUTH_BEARER;
        t->auth_token = ngx_http_hris_tpl_get(tc,
                            json_object_get(js, "token"), "auth.token");
        if (t->auth_token == NULL) {
            return NGX_ERROR;
        }

    } else if (ngx_strcmp(type, "header") == 0) {
        t->auth_type = NGX_HTTP_HRIS_AUTH_HEADER;
        if (ngx_http_hris_params_compile(tc, json_object_get(js, "headers"),
                                         "auth.headers", &t->auth_headers)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (ngx_strcmp(type, "body") == 0) {
        t->auth_type = NGX_HTTP_HRIS_AUTH_BODY;
        t->auth_body = ngx_http_hris_body_get(tc,
                           json_object_get(js, "fields"), "auth.fields");
        if (t->auth_body == NULL) {
            return NGX_ERROR;
        }

    } else if (ngx_strcmp(type, "token") == 0) {
        t->auth_type = NGX_HTTP_HRIS_AUTH_TOKEN;
        if (ngx_http_hris_token_compile(tc, js) != NGX_OK) {
            return NGX_ERROR;
        }

    } else {
        ngx_http_hris_tc_error(tc, "auth.type", "unknown type \"%s\" (none, "
                               "basic, bearer, header, body or token)", type);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_resource_compile(ngx_http_hris_tc_t *tc,
    ngx_http_hris_schema_resource_t *sr, json_t *js,
    ngx_http_hris_resource_t *res)
{
    json_t      *v;
    const char  *key;
    char         where[128];

    json_object_foreach(js, key, v) {
        if (ngx_strcmp(key, "list") != 0 && ngx_strcmp(key, "get") != 0
            && ngx_strcmp(key, "fields") != 0)
        {
            ngx_snprintf((u_char *) where, sizeof(where), "resources.%V%Z",
                         &sr->name);
            ngx_http_hris_tc_error(tc, where, "unknown key \"%s\" (list, get "
                                   "or fields)", key);
            return NGX_ERROR;
        }
    }

    ngx_snprintf((u_char *) where, sizeof(where), "resources.%V.fields%Z",
                 &sr->name);

    if (ngx_http_hris_fields_compile(tc, sr, json_object_get(js, "fields"),
                                     where, &res->fields)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (json_object_get(js, "list")) {
        ngx_snprintf((u_char *) where, sizeof(where), "resources.%V.list%Z",
                     &sr->name);
        res->list = ngx_http_hris_op_compile(tc, sr,
                                             json_object_get(js, "list"),
                                             where);
        if (res->list == NULL) {
            return NGX_ERROR;
        }
    }

    if (json_object_get(js, "get")) {
        ngx_snprintf((u_char *) where, sizeof(where), "resources.%V.get%Z",
                     &sr->name);
        res->get = ngx_http_hris_op_compile(tc, sr,
                                            json_object_get(js, "get"),
                                            where);
        if (res->get == NULL) {
            return NGX_ERROR;
        }

        if (res->get->from_list && res->list == NULL) {
            ngx_http_hris_tc_error(tc, where, "\"from_list\" needs a \"list\" "
                                   "operation");
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* fields in schema order; each unified field at most once */

static ngx_int_t
ngx_http_hris_fields_compile(ngx_http_hris_tc_t *tc,
    ngx_http_hris_schema_resource_t *sr, json_t *js, const char *where,
    ngx_array_t *fields)
{
    json_t                 *spec;
    ngx_uint_t              i;
    const char             *key;
    ngx_http_hris_field_t  *f, *sf;
    char                    fwhere[256];

    if (!json_is_object(js)) {
        ngx_http_hris_tc_error(tc, where, "must be an object of unified "
                               "fields");
        return NGX_ERROR;
    }

    if (ngx_array_init(fields, tc->cf->pool, sr->fields.nelts,
                       sizeof(ngx_http_hris_field_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    json_object_foreach(js, key, spec) {
        sf = sr->fields.elts;
        for (i = 0; i < sr->fields.nelts; i++) {
            if (ngx_strcmp(sf[i].name.data, key) == 0) {
                break;
            }
        }

        if (i == sr->fields.nelts) {
            ngx_http_hris_tc_error(tc, where, "\"%s\" is not a field of the "
                                   "unified %V resource (see "
                                   "mappings/schema.json)", key, &sr->name);
            return NGX_ERROR;
        }
    }

    sf = sr->fields.elts;

    for (i = 0; i < sr->fields.nelts; i++) {
        f = ngx_array_push(fields);
        if (f == NULL) {
            return NGX_ERROR;
        }

        *f = sf[i];
        spec = json_object_get(js, (char *) sf[i].name.data);

        if (spec == NULL) {
            continue;
        }

        ngx_snprintf((u_char *) fwhere, sizeof(fwhere), "%s.%V%Z", where,
                     &sf[i].name);

        f->expr = ngx_http_hris_expr_compile(&tc->mc, spec, fwhere);
        if (f->expr == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_http_hris_op_t *
ngx_http_hris_op_compile(ngx_http_hris_tc_t *tc,
    ngx_http_hris_schema_resource_t *sr, json_t *js, const char *where)
{
    json_t                 *v, *list;
    size_t                  n;
    ngx_uint_t             *status;
    const char             *key, *s;
    ngx_http_hris_op_t     *op;
    ngx_http_hris_where_t  *w;
    char                    sub[256];

    if (!json_is_object(js)
        || ngx_http_hris_keys_check(tc, js, where, ngx_http_hris_op_keys)
           != NGX_OK)
    {
        if (!json_is_object(js)) {
            ngx_http_hris_tc_error(tc, where, "must be an object");
        }
        return NULL;
    }

    op = ngx_pcalloc(tc->cf->pool, sizeof(ngx_http_hris_op_t));
    if (op == NULL) {
        return NULL;
    }

    if (json_is_true(json_object_get(js, "from_list"))) {
        op->from_list = 1;
        return op;
    }

    s = json_string_value(json_object_get(js, "method"));
    if (ngx_http_hris_str(tc->cf->pool, s ? s : "GET", ngx_strlen(s ? s
                          : "GET"), &op->method) != NGX_OK)
    {
        return NULL;
    }

    ngx_snprintf((u_char *) sub, sizeof(sub), "%s.path%Z", where);
    op->path = ngx_http_hris_tpl_get(tc, json_object_get(js, "path"), sub);
    if (op->path == NULL) {
        return NULL;
    }

    ngx_snprintf((u_char *) sub, sizeof(sub), "%s.query%Z", where);
    if (ngx_http_hris_params_compile(tc, json_object_get(js, "query"), sub,
                                     &op->query)
        != NGX_OK)
    {
        return NULL;
    }

    ngx_snprintf((u_char *) sub, sizeof(sub), "%s.records%Z", where);
    v = json_object_get(js, "records");
    if (v == NULL) {
        /* no "records": the answer itself is the array (or the record) */
        op->records.n = 0;

    } else if (ngx_http_hris_tc_path(tc, v, sub, &op->records) != NGX_OK) {
        return NULL;
    }

    if (json_object_get(js, "body")) {
        ngx_snprintf((u_char *) sub, sizeof(sub), "%s.body%Z", where);
        op->body = ngx_http_hris_body_get(tc, json_object_get(js, "body"),
                                          sub);
        if (op->body == NULL) {
            return NULL;
        }
    }

    if (ngx_array_init(&op->empty, tc->cf->pool, 2, sizeof(ngx_uint_t))
        != NGX_OK)
    {
        return NULL;
    }

    json_array_foreach(json_object_get(js, "empty_statuses"), n, v) {
        if (!json_is_integer(v)) {
            ngx_snprintf((u_char *) sub, sizeof(sub), "%s.empty_statuses%Z",
                         where);
            ngx_http_hris_tc_error(tc, sub, "must be an array of HTTP "
                                   "statuses that mean \"no records\"");
            return NULL;
        }

        status = ngx_array_push(&op->empty);
        if (status == NULL) {
            return NULL;
        }
        *status = (ngx_uint_t) json_integer_value(v);
    }

    if (json_object_get(js, "for_each")
        && ngx_http_hris_op_for_each(tc, op, json_object_get(js, "for_each"),
                                     where)
           != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&op->where, tc->cf->pool, 1,
                       sizeof(ngx_http_hris_where_t))
        != NGX_OK)
    {
        return NULL;
    }

    json_object_foreach(json_object_get(js, "where"), key, list) {
        ngx_snprintf((u_char *) sub, sizeof(sub), "%s.where.%s%Z", where,
                     key);
        w = ngx_array_push(&op->where);
        if (w == NULL) {
            return NULL;
        }

        if (!json_is_array(list)) {
            ngx_http_hris_tc_error(tc, sub, "must be an array of allowed "
                                   "values");
            return NULL;
        }

        w->values = list;
        v = json_string(key);
        if (v == NULL) {
            return NULL;
        }
        if (ngx_http_hris_tc_path(tc, v, sub, &w->path) != NGX_OK) {
            json_decref(v);
            return NULL;
        }
        json_decref(v);
    }

    if (json_object_get(js, "unnest")) {
        ngx_snprintf((u_char *) sub, sizeof(sub), "%s.unnest%Z", where);
        if (ngx_http_hris_tc_path(tc, json_object_get(js, "unnest"), sub,
                                   &op->unnest)
            != NGX_OK)
        {
            return NULL;
        }
        op->has_unnest = 1;

        if (op->for_each) {
            ngx_http_hris_tc_error(tc, sub, "cannot be combined with "
                                   "\"for_each\"");
            return NULL;
        }
    }

    if (ngx_http_hris_op_pagination(tc, op, json_object_get(js, "pagination"),
                                    where) != NGX_OK
        || ngx_http_hris_op_filters(tc, op, json_object_get(js, "filters"),
                                    where) != NGX_OK)
    {
        return NULL;
    }

    if (json_object_get(js, "fields")) {
        op->fields = ngx_palloc(tc->cf->pool, sizeof(ngx_array_t));
        ngx_snprintf((u_char *) sub, sizeof(sub), "%s.fields%Z", where);

        if (op->fields == NULL
            || ngx_http_hris_fields_compile(tc, sr,
                                            json_object_get(js, "fields"),
                                            sub, op->fields)
               != NGX_OK)
        {
            return NULL;
        }
    }

    return op;
}


static ngx_int_t
ngx_http_hris_op_pagination(ngx_http_hris_tc_t *tc, ngx_http_hris_op_t *op,
    json_t *js, const char *where)
{
    json_t      *v;
    const char  *type;
    char         sub[256];

    op->page_type = NGX_HTTP_HRIS_PAGE_NONE;
    op->max_limit = NGX_HTTP_HRIS_MAX_LIMIT;

    if (js == NULL) {
        return NGX_OK;
    }

    ngx_snprintf((u_char *) sub, sizeof(sub), "%s.pagination%Z", where);

    type = json_string_value(json_object_get(js, "type"));

    if (type == NULL || ngx_strcmp(type, "none") == 0) {
        return NGX_OK;
    }

    if (ngx_strcmp(type, "cursor") == 0) {
        op->page_type = NGX_HTTP_HRIS_PAGE_CURSOR;

        ngx_snprintf((u_char *) sub, sizeof(sub), "%s.pagination.next%Z",
                     where);
        if (ngx_http_hris_tc_path(tc, json_object_get(js, "next"), sub,
                                  &op->page_next)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (ngx_strcmp(type, "offset") == 0
               || ngx_strcmp(type, "page") == 0)
    {
        op->page_type = (type[0] == 'o') ? NGX_HTTP_HRIS_PAGE_OFFSET
                                         : NGX_HTTP_HRIS_PAGE_NUMBER;

        v = json_object_get(js, "first");
        if (v && (!json_is_integer(v) || json_integer_value(v) < 0)) {
            ngx_snprintf((u_char *) sub, sizeof(sub),
                         "%s.pagination.first%Z", where);
            ngx_http_hris_tc_error(tc, sub, "must be 0 or 1");
            return NGX_ERROR;
        }
        op->page_first = v ? (ngx_uint_t) json_integer_value(v) : 0;

        /* without "total", a short page is the last one */
        if (json_object_get(js, "total")) {
            ngx_snprintf((u_char *) sub, sizeof(sub),
                         "%s.pagination.total%Z", where);
            if (ngx_http_hris_tc_path(tc, json_object_get(js, "total"), sub,
                                      &op->page_total)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
            op->has_total = 1;
        }

    } else {
        ngx_http_hris_tc_error(tc, sub, "unknown type \"%s\" (none, cursor, "
                               "offset or page)", type);
        return NGX_ERROR;
    }

    v = json_object_get(js, "max_limit");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 1) {
            ngx_snprintf((u_char *) sub, sizeof(sub),
                         "%s.pagination.max_limit%Z", where);
            ngx_http_hris_tc_error(tc, sub, "must be a positive integer");
            return NGX_ERROR;
        }
        op->max_limit = ngx_min((ngx_uint_t) json_integer_value(v),
                                NGX_HTTP_HRIS_MAX_LIMIT);
    }

    return NGX_OK;
}


/*
 * "auth": {"type": "token", ...}: the account's credentials are exchanged
 * at "url" (default: the table's token_url) for a token found at "token"
 * in the answer, sent as "header: value" until it expires.
 */

static ngx_int_t
ngx_http_hris_token_compile(ngx_http_hris_tc_t *tc, json_t *js)
{
    json_t                      *v;
    const char                  *s;
    ngx_http_hris_token_spec_t  *ts;

    if (ngx_http_hris_keys_check(tc, js, "auth", ngx_http_hris_token_keys)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ts = ngx_pcalloc(tc->cf->pool, sizeof(ngx_http_hris_token_spec_t));
    if (ts == NULL) {
        return NGX_ERROR;
    }

    s = json_string_value(json_object_get(js, "method"));
    if (ngx_http_hris_str(tc->cf->pool, s ? s : "POST",
                          ngx_strlen(s ? s : "POST"), &ts->method)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ts->url = ngx_http_hris_tpl_get(tc, json_object_get(js, "url")
                                        ? json_object_get(js, "url")
                                        : json_string("{{token_url}}"),
                                    "auth.url");
    if (ts->url == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_hris_params_compile(tc, json_object_get(js, "query"),
                                     "auth.query", &ts->query) != NGX_OK
        || ngx_http_hris_params_compile(tc, json_object_get(js, "form"),
                                        "auth.form", &ts->form) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (json_object_get(js, "body")) {
        ts->body = ngx_http_hris_body_get(tc, json_object_get(js, "body"),
                                          "auth.body");
        if (ts->body == NULL) {
            return NGX_ERROR;
        }
    }

    v = json_object_get(js, "basic");
    if (v) {
        ts->basic_user = ngx_http_hris_tpl_get(tc,
                             json_object_get(v, "username"),
                             "auth.basic.username");
        ts->basic_pass = ngx_http_hris_tpl_get(tc,
                             json_object_get(v, "password"),
                             "auth.basic.password");
        if (ts->basic_user == NULL || ts->basic_pass == NULL) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_hris_tc_path(tc, json_object_get(js, "token"), "auth.token",
                              &ts->token)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (json_object_get(js, "expires_in")) {
        if (ngx_http_hris_tc_path(tc, json_object_get(js, "expires_in"),
                                  "auth.expires_in", &ts->expires_in)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
        ts->has_expires_in = 1;
    }

    v = json_object_get(js, "ttl");
    ts->ttl = json_is_integer(v) ? (time_t) json_integer_value(v) : 3600;

    s = json_string_value(json_object_get(js, "header"));
    if (ngx_http_hris_str(tc->cf->pool, s ? s : "Authorization",
                          ngx_strlen(s ? s : "Authorization"), &ts->header)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ts->value = ngx_http_hris_tpl_get(tc, json_object_get(js, "value")
                                          ? json_object_get(js, "value")
                                          : json_string("Bearer {{token}}"),
                                      "auth.value");
    if (ts->value == NULL) {
        return NGX_ERROR;
    }

    s = json_string_value(json_object_get(js, "echo_header"));
    if (s && ngx_http_hris_str(tc->cf->pool, s, ngx_strlen(s),
                               &ts->echo_header)
             != NGX_OK)
    {
        return NGX_ERROR;
    }

    tc->table->token = ts;

    return NGX_OK;
}


/*
 * "errors": {"in_body": {"when": {"/isError": [true]}, "status": "/Status",
 * "message": "/Message", "rules": [{"status": [1, 2], "http": 401}, ...]}}:
 * a 2xx answer that says it failed is handled as the status a rule names.
 */

static ngx_int_t
ngx_http_hris_body_errors_compile(ngx_http_hris_tc_t *tc, json_t *js)
{
    json_t                       *when, *v, *rule;
    size_t                        i;
    const char                   *key;
    ngx_str_t                     src;
    ngx_http_hris_body_rule_t    *r;
    ngx_http_hris_body_errors_t  *be = &tc->table->body_errors;
    char                          sub[128];

    if (ngx_array_init(&be->rules, tc->cf->pool, 4,
                       sizeof(ngx_http_hris_body_rule_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (js == NULL) {
        return NGX_OK;
    }

    when = json_object_get(js, "when");
    if (!json_is_object(when) || json_object_size(when) != 1) {
        ngx_http_hris_tc_error(tc, "errors.in_body.when", "must be one "
                               "{\"pointer\": [values]}");
        return NGX_ERROR;
    }

    json_object_foreach(when, key, v) {
        if (!json_is_array(v)
            || ngx_http_hris_tc_path(tc, json_string(key),
                                     "errors.in_body.when", &be->when)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
        be->when_values = v;
    }

    if (ngx_http_hris_tc_path(tc, json_object_get(js, "status")
                                  ? json_object_get(js, "status")
                                  : json_string("/status"),
                              "errors.in_body.status", &be->status) != NGX_OK
        || ngx_http_hris_tc_path(tc, json_object_get(js, "message")
                                     ? json_object_get(js, "message")
                                     : json_string("/message"),
                                 "errors.in_body.message", &be->message)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    json_array_foreach(json_object_get(js, "rules"), i, rule) {
        ngx_snprintf((u_char *) sub, sizeof(sub), "errors.in_body.rules.%uz%Z",
                     i);

        r = ngx_array_push(&be->rules);
        if (r == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(r, sizeof(ngx_http_hris_body_rule_t));

        v = json_object_get(rule, "http");
        if (!json_is_integer(v) || json_integer_value(v) < 200
            || json_integer_value(v) > 599)
        {
            ngx_http_hris_tc_error(tc, sub, "\"http\" must be the HTTP "
                                   "status the error stands for");
            return NGX_ERROR;
        }
        r->http = (ngx_uint_t) json_integer_value(v);

        r->statuses = json_object_get(rule, "status");
        if (r->statuses && !json_is_array(r->statuses)) {
            ngx_http_hris_tc_error(tc, sub, "\"status\" must be an array");
            return NGX_ERROR;
        }

        if (json_object_get(rule, "message")) {
            r->message = ngx_http_hris_regex(tc,
                             json_object_get(rule, "message"), sub, &src);
            if (r->message == NULL) {
                return NGX_ERROR;
            }
        }
    }

    be->enabled = 1;

    return NGX_OK;
}


/* "rate_limit": {"calls": 30, "per": "60s"} */

static ngx_int_t
ngx_http_hris_rate_compile(ngx_http_hris_tc_t *tc, json_t *js,
    const char *where, ngx_uint_t *calls, ngx_msec_t *window)
{
    json_t      *c, *per;
    ngx_int_t    ms;
    ngx_str_t    s;

    if (js == NULL) {
        return NGX_OK;
    }

    c = json_object_get(js, "calls");
    per = json_object_get(js, "per");

    if (json_is_string(per)) {
        s.data = (u_char *) json_string_value(per);
        s.len = json_string_length(per);
        ms = ngx_parse_time(&s, 0);

    } else {
        ms = NGX_ERROR;
    }

    if (!json_is_integer(c) || json_integer_value(c) < 1
        || json_integer_value(c) > 10000 || ms == NGX_ERROR || ms == 0)
    {
        ngx_http_hris_tc_error(tc, where, "must be {\"calls\": 1..10000, "
                               "\"per\": \"60s\"}");
        return NGX_ERROR;
    }

    *calls = (ngx_uint_t) json_integer_value(c);
    *window = (ngx_msec_t) ms;

    return NGX_OK;
}


static ngx_http_hris_body_t *
ngx_http_hris_body_get(ngx_http_hris_tc_t *tc, json_t *js, const char *where)
{
    const char            *err;
    ngx_http_hris_body_t  *body;

    body = ngx_http_hris_body_compile(tc->cf->pool, js, &err);
    if (body == NULL) {
        ngx_http_hris_tc_error(tc, where, "%s", err);
    }

    return body;
}


/*
 * "for_each": {"values": [...]} or {"resource": "employees", "value":
 * "/id"}: the operation is called once per value, {{each.value}}.
 */

static ngx_int_t
ngx_http_hris_op_for_each(ngx_http_hris_tc_t *tc, ngx_http_hris_op_t *op,
    json_t *js, const char *where)
{
    json_t                    *v;
    ngx_str_t                  name;
    ngx_http_hris_for_each_t  *fe;
    char                       sub[256];

    ngx_snprintf((u_char *) sub, sizeof(sub), "%s.for_each%Z", where);

    fe = ngx_pcalloc(tc->cf->pool, sizeof(ngx_http_hris_for_each_t));
    if (fe == NULL) {
        return NGX_ERROR;
    }

    fe->resource = -1;
    fe->max_calls = 10;

    v = json_object_get(js, "max_calls");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 1) {
            ngx_http_hris_tc_error(tc, sub, "\"max_calls\" must be a "
                                   "positive integer");
            return NGX_ERROR;
        }
        fe->max_calls = (ngx_uint_t) json_integer_value(v);
    }

    if (json_is_array(json_object_get(js, "values"))) {
        fe->values = json_object_get(js, "values");

    } else if (json_is_string(json_object_get(js, "resource"))) {
        name.data = (u_char *) json_string_value(json_object_get(js,
                                                              "resource"));
        name.len = ngx_strlen(name.data);

        fe->resource = ngx_http_hris_schema_index(tc->hmcf, &name);
        if (fe->resource == NGX_ERROR) {
            ngx_http_hris_tc_error(tc, sub, "unknown resource \"%V\"",
                                   &name);
            return NGX_ERROR;
        }

        if (ngx_http_hris_tc_path(tc, json_object_get(js, "value"), sub,
                                  &fe->value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else {
        ngx_http_hris_tc_error(tc, sub, "needs \"values\" (an array) or "
                               "\"resource\" and \"value\"");
        return NGX_ERROR;
    }

    op->for_each = fe;

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_op_filters(ngx_http_hris_tc_t *tc, ngx_http_hris_op_t *op,
    json_t *js, const char *where)
{
    json_t                  *v, *d;
    const char              *key;
    ngx_http_hris_filter_t  *f;
    char                     sub[256];

    if (ngx_array_init(&op->filters, tc->cf->pool, 2,
                       sizeof(ngx_http_hris_filter_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    json_object_foreach(js, key, v) {
        ngx_snprintf((u_char *) sub, sizeof(sub), "%s.filters.%s%Z", where,
                     key);

        f = ngx_array_push(&op->filters);
        if (f == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(f, sizeof(ngx_http_hris_filter_t));

        if (ngx_http_hris_str(tc->cf->pool, key, ngx_strlen(key), &f->name)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        d = json_object_get(v, "default");
        if (d && !json_is_string(d)) {
            ngx_http_hris_tc_error(tc, sub, "\"default\" must be a string");
            return NGX_ERROR;
        }

        if (d && ngx_http_hris_str(tc->cf->pool, json_string_value(d),
                                   json_string_length(d), &f->dflt)
                 != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (json_object_get(v, "pattern")) {
            f->pattern = ngx_http_hris_regex(tc,
                             json_object_get(v, "pattern"), sub,
                             &f->pattern_src);
            if (f->pattern == NULL) {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_params_compile(ngx_http_hris_tc_t *tc, json_t *js,
    const char *where, ngx_array_t *params)
{
    json_t                 *v;
    const char             *key;
    ngx_http_hris_param_t  *p;
    char                    sub[256];

    if (ngx_array_init(params, tc->cf->pool, 4, sizeof(ngx_http_hris_param_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (js == NULL) {
        return NGX_OK;
    }

    if (!json_is_object(js)) {
        ngx_http_hris_tc_error(tc, where, "must be an object of strings");
        return NGX_ERROR;
    }

    json_object_foreach(js, key, v) {
        ngx_snprintf((u_char *) sub, sizeof(sub), "%s.%s%Z", where, key);

        p = ngx_array_push(params);
        if (p == NULL
            || ngx_http_hris_str(tc->cf->pool, key, ngx_strlen(key), &p->name)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        p->value = ngx_http_hris_tpl_get(tc, v, sub);
        if (p->value == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_http_hris_tpl_t *
ngx_http_hris_tpl_get(ngx_http_hris_tc_t *tc, json_t *js, const char *where)
{
    ngx_str_t             src;
    const char           *err;
    ngx_http_hris_tpl_t  *tpl;

    if (!json_is_string(js)) {
        ngx_http_hris_tc_error(tc, where, "must be a string template");
        return NULL;
    }

    if (ngx_http_hris_str(tc->cf->pool, json_string_value(js),
                          json_string_length(js), &src)
        != NGX_OK)
    {
        return NULL;
    }

    tpl = ngx_http_hris_tpl_compile(tc->cf->pool, &src, &err);
    if (tpl == NULL) {
        ngx_http_hris_tc_error(tc, where, "%s in \"%V\"", err, &src);
    }

    return tpl;
}


static ngx_int_t
ngx_http_hris_tc_path(ngx_http_hris_tc_t *tc, json_t *js, const char *where,
    ngx_http_hris_path_t *path)
{
    ngx_str_t  text;

    if (path == NULL) {
        return NGX_ERROR;
    }

    if (!json_is_string(js)) {
        ngx_http_hris_tc_error(tc, where, "must be a JSON pointer string");
        return NGX_ERROR;
    }

    if (ngx_http_hris_str(tc->cf->pool, json_string_value(js),
                          json_string_length(js), &text)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_hris_path_compile(tc->cf->pool, &text, path) != NGX_OK) {
        ngx_http_hris_tc_error(tc, where, "\"%V\" is not a JSON pointer "
                               "(\"\" or \"/a/b\")", &text);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_regex_t *
ngx_http_hris_regex(ngx_http_hris_tc_t *tc, json_t *js, const char *where,
    ngx_str_t *src)
{
    ngx_regex_compile_t  rc;
    u_char               errstr[NGX_MAX_CONF_ERRSTR];

    if (!json_is_string(js)
        || ngx_http_hris_str(tc->cf->pool, json_string_value(js),
                             json_string_length(js), src)
           != NGX_OK)
    {
        ngx_http_hris_tc_error(tc, where, "must be a regular expression "
                               "string");
        return NULL;
    }

    ngx_memzero(&rc, sizeof(ngx_regex_compile_t));
    rc.pattern = *src;
    rc.pool = tc->cf->pool;
    rc.err.len = NGX_MAX_CONF_ERRSTR;
    rc.err.data = errstr;

    if (ngx_regex_compile(&rc) != NGX_OK) {
        ngx_http_hris_tc_error(tc, where, "%V", &rc.err);
        return NULL;
    }

    return rc.regex;
}


static ngx_int_t
ngx_http_hris_keys_check(ngx_http_hris_tc_t *tc, json_t *js,
    const char *where, const char **allowed)
{
    json_t       *v;
    ngx_uint_t    i;
    const char   *key;

    json_object_foreach(js, key, v) {
        for (i = 0; allowed[i]; i++) {
            if (ngx_strcmp(allowed[i], key) == 0) {
                break;
            }
        }

        if (allowed[i] == NULL) {
            ngx_http_hris_tc_error(tc, where, "unknown key \"%s\"", key);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_str(ngx_pool_t *pool, const char *s, size_t len, ngx_str_t *out)
{
    if (out == NULL) {
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(pool, len + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, s, len);
    out->data[len] = '\0';
    out->len = len;

    return NGX_OK;
}


ngx_http_hris_table_t *
ngx_http_hris_table_find(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *name)
{
    ngx_uint_t              i;
    ngx_http_hris_table_t  *t;

    t = hmcf->tables.elts;

    for (i = 0; i < hmcf->tables.nelts; i++) {
        if (t[i].name.len == name->len
            && ngx_strncmp(t[i].name.data, name->data, name->len) == 0)
        {
            return &t[i];
        }
    }

    return NULL;
}


/*
 * One upstream record to one unified record: every schema field in order,
 * unmapped ones as null (or [] for lists), then remote_data.
 */

json_t *
ngx_http_hris_record_map(ngx_array_t *fields, json_t *record, json_t *parent,
    ngx_uint_t remote_data)
{
    json_t                 *out, *v;
    ngx_uint_t              i;
    ngx_http_hris_field_t  *f;

    out = json_object();
    if (out == NULL) {
        return NULL;
    }

    f = fields->elts;

    for (i = 0; i < fields->nelts; i++) {
        if (f[i].expr) {
            v = ngx_http_hris_expr_eval(f[i].expr, record, parent);

        } else {
            v = f[i].is_list ? json_array() : json_null();
        }

        if (v == NULL
            || json_object_set_new_nocheck(out, (char *) f[i].name.data, v)
               != 0)
        {
            json_decref(out);
            return NULL;
        }
    }

    if (remote_data
        && json_object_set_nocheck(out, "remote_data", record) != 0)
    {
        json_decref(out);
        return NULL;
    }

    return out;
}

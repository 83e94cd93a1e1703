/*
 * Mapping tables: one mappings/<provider>.json per provider, read, given
 * their overrides and compiled at configuration time: the top level and
 * the resources here, operations in ngx_http_hris_table_op.c, auth and
 * errors in ngx_http_hris_table_auth.c, field expressions in
 * ngx_http_hris_map.c, the unified schema in ngx_http_hris_schema.c.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_table_int.h"
#include "ngx_http_hris_record.h"




static ngx_int_t ngx_http_hris_overrides_check(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf);
static ngx_int_t ngx_http_hris_table_load(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *path, ngx_str_t *name);
static ngx_int_t ngx_http_hris_table_compile(ngx_http_hris_tc_t *tc,
    json_t *root);
static ngx_int_t ngx_http_hris_resource_compile(ngx_http_hris_tc_t *tc,
    ngx_http_hris_schema_resource_t *sr, json_t *js,
    ngx_http_hris_resource_t *res);
static ngx_int_t ngx_http_hris_context_compile(ngx_http_hris_tc_t *tc,
    json_t *js);
static ngx_int_t ngx_http_hris_allowed_compile(ngx_http_hris_tc_t *tc,
    json_t *js);
static ngx_int_t ngx_http_hris_tpl_context_check(ngx_http_hris_tc_t *tc,
    ngx_http_hris_tpl_t *tpl, const char *where);


/*
 * The pattern of a context key that declares none: context values go into
 * URLs and headers, so none is taken as it comes.
 */
#define NGX_HTTP_HRIS_CONTEXT_PATTERN  "^[A-Za-z0-9._~-]{1,255}$"




static const char  *ngx_http_hris_table_keys[] = {
    "base_url", "token_url", "context", "headers", "auth", "errors",
    "rate_limit", "resources", "description", "connect", "allowed_urls",
    "webhooks", NULL
};


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
    tc.mc.write_key = ngx_http_hris_json_key;

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
    tc.mc.write_key = ngx_http_hris_json_key;

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
    ngx_http_hris_schema_resource_t  *sr;

    if (!json_is_object(root)) {
        ngx_http_hris_tc_error(tc, "(top level)", "must be an object");
        return NGX_ERROR;
    }

    if (ngx_http_hris_tc_keys(tc, root, "(top level)",
                                 ngx_http_hris_table_keys)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_array_init(&t->error_headers, tc->cf->pool, 2,
                       sizeof(ngx_str_t)) != NGX_OK
        || ngx_array_init(&t->error_paths, tc->cf->pool, 2,
                          sizeof(ngx_http_hris_path_t)) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* first: every template below may only use context keys declared here */
    if (ngx_http_hris_context_compile(tc, json_object_get(root, "context"))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    t->base_url = ngx_http_hris_tc_tpl(tc, json_object_get(root, "base_url"),
                                        "base_url");
    if (t->base_url == NULL
        || ngx_http_hris_allowed_compile(tc,
                                         json_object_get(root, "allowed_urls"))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_hris_tc_params(tc, json_object_get(root, "headers"),
                                     "headers", &t->headers)
        != NGX_OK
        || ngx_http_hris_auth_compile(tc, json_object_get(root, "auth"))
           != NGX_OK
        || ngx_http_hris_connect_compile(tc, json_object_get(root, "connect"))
           != NGX_OK
        || ngx_http_hris_webhooks_compile(tc,
                                          json_object_get(root, "webhooks"))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (json_object_get(root, "token_url")) {
        t->token_url = ngx_http_hris_tc_tpl(tc,
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
            || ngx_http_hris_tc_str(tc->cf->pool, json_string_value(res),
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


/*
 * "context": {"key": {"pattern": "...", "required": true}}: what an
 * account's context may hold. Every key gets a pattern (a safe one when
 * the table gives none); "required" is true unless it says false.
 */

static ngx_int_t
ngx_http_hris_context_compile(ngx_http_hris_tc_t *tc, json_t *js)
{
    json_t                       *v, *req, *pat, *dflt;
    const char                   *key;
    ngx_http_hris_context_key_t  *ck;
    char                          where[256];

    static const char  *keys[] = { "pattern", "required", "description",
                                   NULL };

    if (ngx_array_init(&tc->table->context, tc->cf->pool, 4,
                       sizeof(ngx_http_hris_context_key_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (js == NULL) {
        return NGX_OK;
    }

    if (!json_is_object(js)) {
        ngx_http_hris_tc_error(tc, "context", "must be an object of context "
                               "keys");
        return NGX_ERROR;
    }

    json_object_foreach(js, key, v) {
        ngx_snprintf((u_char *) where, sizeof(where), "context.%s%Z", key);

        if (!json_is_object(v)
            || ngx_http_hris_tc_keys(tc, v, where, keys) != NGX_OK)
        {
            if (!json_is_object(v)) {
                ngx_http_hris_tc_error(tc, where, "must be an object "
                                       "(\"pattern\", \"required\")");
            }
            return NGX_ERROR;
        }

        ck = ngx_array_push(&tc->table->context);
        if (ck == NULL
            || ngx_http_hris_tc_str(tc->cf->pool, key, ngx_strlen(key),
                                    &ck->name) != NGX_OK)
        {
            return NGX_ERROR;
        }

        req = json_object_get(v, "required");

        if (req && !json_is_boolean(req)) {
            ngx_http_hris_tc_error(tc, where, "\"required\" must be true or "
                                   "false");
            return NGX_ERROR;
        }

        ck->required = (req == NULL || json_is_true(req));

        pat = json_object_get(v, "pattern");
        dflt = NULL;

        if (pat == NULL) {
            dflt = json_string(NGX_HTTP_HRIS_CONTEXT_PATTERN);
            if (dflt == NULL) {
                return NGX_ERROR;
            }
            pat = dflt;
        }

        ngx_snprintf((u_char *) tc->where, sizeof(tc->where), "%s.pattern%Z",
                     where);

        /* the pattern's text is copied: the default can go at once */
        ck->pattern = ngx_http_hris_tc_regex(tc, pat, tc->where,
                                             &ck->pattern_src);
        json_decref(dflt);

        if (ck->pattern == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * "allowed_urls": prefixes (templates: "https://{{context.subdomain}}.
 * example.com") an account of a tenant may use besides the table's
 * base_url and token_url hosts, e.g. a provider's data-center hosts.
 */

static ngx_int_t
ngx_http_hris_allowed_compile(ngx_http_hris_tc_t *tc, json_t *js)
{
    size_t                 i;
    json_t                *v;
    ngx_http_hris_tpl_t  **tpl;
    char                   where[64];

    if (ngx_array_init(&tc->table->allowed_urls, tc->cf->pool, 2,
                       sizeof(ngx_http_hris_tpl_t *))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (js == NULL) {
        return NGX_OK;
    }

    if (!json_is_array(js)) {
        ngx_http_hris_tc_error(tc, "allowed_urls", "must be an array of URL "
                               "prefixes");
        return NGX_ERROR;
    }

    json_array_foreach(js, i, v) {
        ngx_snprintf((u_char *) where, sizeof(where), "allowed_urls[%uz]%Z",
                     i);

        tpl = ngx_array_push(&tc->table->allowed_urls);
        if (tpl == NULL) {
            return NGX_ERROR;
        }

        *tpl = ngx_http_hris_tc_tpl(tc, v, where);
        if (*tpl == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* A template may only read context keys the table declares. */

static ngx_int_t
ngx_http_hris_tpl_context_check(ngx_http_hris_tc_t *tc,
    ngx_http_hris_tpl_t *tpl, const char *where)
{
    ngx_uint_t                    i, j;
    ngx_http_hris_context_key_t  *ck;

    ck = tc->table->context.elts;

    for (i = 0; i < tpl->nparts; i++) {
        if (tpl->parts[i].type != NGX_HTTP_HRIS_TPL_CONTEXT) {
            continue;
        }

        for (j = 0; j < tc->table->context.nelts; j++) {
            if (ngx_http_hris_str_eq(&ck[j].name, &tpl->parts[i].text)) {
                break;
            }
        }

        if (j == tc->table->context.nelts) {
            ngx_http_hris_tc_error(tc, where, "uses {{context.%V}}, which "
                                   "\"context\" does not declare (declare "
                                   "it with a \"pattern\": context values "
                                   "go into URLs and headers)",
                                   &tpl->parts[i].text);
            return NGX_ERROR;
        }
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
            && ngx_strcmp(key, "fields") != 0
            && ngx_strcmp(key, "create") != 0
            && ngx_strcmp(key, "update") != 0
            && ngx_strcmp(key, "delete") != 0)
        {
            ngx_snprintf((u_char *) where, sizeof(where), "resources.%V%Z",
                         &sr->name);
            ngx_http_hris_tc_error(tc, where, "unknown key \"%s\" (list, get, "
                                   "fields, create, update or delete)", key);
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

    /* after fields and get: writes answer the record as a get maps it */
    return ngx_http_hris_writes_compile(tc, sr, js, res);
}


/* fields in schema order; each unified field at most once */

ngx_int_t
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


ngx_http_hris_body_t *
ngx_http_hris_tc_body(ngx_http_hris_tc_t *tc, json_t *js, const char *where)
{
    ngx_uint_t                  i;
    const char                 *err;
    ngx_http_hris_body_t       *body;
    ngx_http_hris_body_slot_t  *slot;

    body = ngx_http_hris_body_compile(tc->cf->pool, js, &err);
    if (body == NULL) {
        ngx_http_hris_tc_error(tc, where, "%s", err);
        return NULL;
    }

    slot = body->slots.elts;

    for (i = 0; i < body->slots.nelts; i++) {
        if (ngx_http_hris_tpl_context_check(tc, slot[i].value, where)
            != NGX_OK)
        {
            return NULL;
        }
    }

    return body;
}


ngx_int_t
ngx_http_hris_tc_params(ngx_http_hris_tc_t *tc, json_t *js,
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
            || ngx_http_hris_tc_str(tc->cf->pool, key, ngx_strlen(key),
                                    &p->name)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        p->value = ngx_http_hris_tc_tpl(tc, v, sub);
        if (p->value == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_http_hris_tpl_t *
ngx_http_hris_tc_tpl(ngx_http_hris_tc_t *tc, json_t *js, const char *where)
{
    ngx_str_t             src;
    const char           *err;
    ngx_http_hris_tpl_t  *tpl;

    if (!json_is_string(js)) {
        ngx_http_hris_tc_error(tc, where, "must be a string template");
        return NULL;
    }

    if (ngx_http_hris_tc_str(tc->cf->pool, json_string_value(js),
                          json_string_length(js), &src)
        != NGX_OK)
    {
        return NULL;
    }

    tpl = ngx_http_hris_tpl_compile(tc->cf->pool, &src, &err);
    if (tpl == NULL) {
        ngx_http_hris_tc_error(tc, where, "%s in \"%V\"", err, &src);
        return NULL;
    }

    if (ngx_http_hris_tpl_context_check(tc, tpl, where) != NGX_OK) {
        return NULL;
    }

    return tpl;
}


ngx_int_t
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

    if (ngx_http_hris_tc_str(tc->cf->pool, json_string_value(js),
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


ngx_regex_t *
ngx_http_hris_tc_regex(ngx_http_hris_tc_t *tc, json_t *js, const char *where,
    ngx_str_t *src)
{
    ngx_regex_compile_t  rc;
    u_char               errstr[NGX_MAX_CONF_ERRSTR];

    if (!json_is_string(js)
        || ngx_http_hris_tc_str(tc->cf->pool, json_string_value(js),
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


ngx_int_t
ngx_http_hris_tc_keys(ngx_http_hris_tc_t *tc, json_t *js,
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


ngx_int_t
ngx_http_hris_tc_str(ngx_pool_t *pool, const char *s, size_t len,
    ngx_str_t *out)
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



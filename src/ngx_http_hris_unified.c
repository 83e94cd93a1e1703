/*
 * The unified API: GET /unified/hris/{resource}[/{id}].
 *
 * The handler checks everything it can before calling out (key, account,
 * resource, parameters, cursor), then runs the operation's upstream call;
 * when it completes, records are selected, mapped and answered with
 * {"result": [...], "next_cursor": ..., "result_count": N}.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"


typedef struct {
    json_t                     *record;
    json_t                     *parent;
} ngx_http_hris_rec_t;


typedef struct {
    ngx_http_request_t         *request;
    ngx_http_hris_main_conf_t  *hmcf;
    ngx_http_hris_loc_conf_t   *hlcf;
    ngx_http_hris_account_t    *account;
    ngx_http_hris_resource_t   *res;
    ngx_http_hris_op_t         *op;         /* the upstream operation */
    ngx_array_t                *fields;
    ngx_http_hris_expr_t       *id_expr;    /* get from_list */

    ngx_str_t                   id;         /* get */
    ngx_uint_t                  limit;
    ngx_uint_t                  remote_data;
    ngx_array_t                 filters;    /* ngx_keyval_t */
    ngx_str_t                   binding;

    ngx_str_t                   page_cursor;  /* of the current call */
    ngx_uint_t                  offset;       /* records to skip in it */

    unsigned                    is_get:1;
} ngx_http_hris_ctx_t;


static ngx_int_t ngx_http_hris_unified_route(ngx_http_request_t *r,
    ngx_http_hris_ctx_t *ctx);
static ngx_int_t ngx_http_hris_unified_args(ngx_http_request_t *r,
    ngx_http_hris_ctx_t *ctx);
static ngx_int_t ngx_http_hris_unified_filter(ngx_http_request_t *r,
    ngx_http_hris_ctx_t *ctx, ngx_str_t *name, ngx_str_t *value);
static ngx_int_t ngx_http_hris_unified_binding(ngx_http_request_t *r,
    ngx_http_hris_ctx_t *ctx, ngx_str_t *cursor);
static ngx_int_t ngx_http_hris_unified_call(ngx_http_hris_ctx_t *ctx);
static void ngx_http_hris_unified_done(ngx_http_hris_call_t *call);
static ngx_int_t ngx_http_hris_unified_process(ngx_http_hris_ctx_t *ctx,
    ngx_http_hris_call_t *call);
static ngx_int_t ngx_http_hris_unified_records(ngx_http_hris_ctx_t *ctx,
    json_t *body, ngx_array_t *recs);
static ngx_int_t ngx_http_hris_unified_list(ngx_http_hris_ctx_t *ctx,
    json_t *body, ngx_array_t *recs);
static ngx_int_t ngx_http_hris_unified_get(ngx_http_hris_ctx_t *ctx,
    json_t *body, ngx_array_t *recs);
static ngx_int_t ngx_http_hris_unified_find(ngx_http_hris_ctx_t *ctx,
    json_t *body, ngx_array_t *recs);
static ngx_int_t ngx_http_hris_send_record(ngx_http_hris_ctx_t *ctx,
    ngx_http_hris_rec_t *rec);
static ngx_int_t ngx_http_hris_not_found(ngx_http_hris_ctx_t *ctx);
static ngx_int_t ngx_http_hris_upstream_json(ngx_http_request_t *r,
    ngx_http_hris_call_t *call, json_t **body);
static ngx_int_t ngx_http_hris_str_value(ngx_pool_t *pool, json_t *v,
    ngx_str_t *out);


ngx_int_t
ngx_http_hris_unified_handler(ngx_http_request_t *r)
{
    ngx_int_t             rc;
    ngx_str_t             rest;
    ngx_http_hris_ctx_t  *ctx;

    /* the API's description needs no key and no account */
    ngx_http_hris_subpath(r, &rest);
    if (rest.len == sizeof("openapi.json") - 1
        && ngx_strncmp(rest.data, "openapi.json", rest.len) == 0)
    {
        rc = ngx_http_discard_request_body(r);
        return rc == NGX_OK ? ngx_http_hris_openapi_send(r) : rc;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST
                       |NGX_HTTP_PATCH|NGX_HTTP_DELETE)))
    {
        return ngx_http_hris_send_error(r, NGX_HTTP_NOT_ALLOWED, NULL,
                   "method %V is not allowed: the unified API takes GET, "
                   "POST, PATCH and DELETE", &r->method_name);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_hris_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);
    ctx->hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hris_module);

    rc = ngx_http_hris_account_resolve(r, ctx->hmcf, &ctx->account);
    if (ctx->account == NULL) {
        return rc;
    }

    /*
     * an error answer sent by route() or args() usually returns NGX_OK
     * (the output filter's rc): header_sent tells it from "go on"
     */

    rc = ngx_http_hris_unified_route(r, ctx);
    if (rc != NGX_OK || r->header_sent) {
        return rc;
    }

    rc = ngx_http_hris_unified_args(r, ctx);
    if (rc != NGX_OK || r->header_sent) {
        return rc;
    }

    if (ngx_http_hris_unified_call(ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the client may go away while we wait: notice it, then stop */
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    r->main->count++;

    return NGX_DONE;
}


/*
 * hris/{resource}[/{id}]: finds the resource, the operation and the
 * fields. Returns NGX_OK, or the client's answer.
 */

static ngx_int_t
ngx_http_hris_unified_route(ngx_http_request_t *r, ngx_http_hris_ctx_t *ctx)
{
    u_char                    *slash, *dst, *src;
    ngx_int_t                  idx;
    ngx_str_t                  rest, name;
    ngx_uint_t                 i;
    ngx_http_hris_field_t     *f;
    ngx_http_hris_table_t     *t = ctx->account->table;

    ngx_http_hris_subpath(r, &rest);

    if (rest.len <= 5 || ngx_strncmp(rest.data, "hris/", 5) != 0) {
        return ngx_http_hris_send_error(r, NGX_HTTP_NOT_FOUND, NULL,
                   "unknown path \"%V\": unified resources are at "
                   "hris/{resource} below this location", &r->uri);
    }

    name.data = rest.data + 5;
    slash = ngx_strlchr(name.data, rest.data + rest.len, '/');
    name.len = (slash ? slash : rest.data + rest.len) - name.data;

    if (slash && slash + 1 < rest.data + rest.len) {
        src = slash + 1;
        ctx->id.data = ngx_pnalloc(r->pool, rest.data + rest.len - src + 1);
        if (ctx->id.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        dst = ctx->id.data;
        ngx_unescape_uri(&dst, &src, rest.data + rest.len - src, 0);
        ctx->id.len = dst - ctx->id.data;
        *dst = '\0';

        if (ngx_strlchr(ctx->id.data, dst, '/') != NULL) {
            return ngx_http_hris_send_error(r, NGX_HTTP_NOT_FOUND, NULL,
                       "unknown path \"%V\": expected hris/{resource}/{id}",
                       &r->uri);
        }

        ctx->is_get = 1;
    }

    idx = ngx_http_hris_schema_index(ctx->hmcf, &name);
    if (idx == NGX_ERROR) {
        return ngx_http_hris_send_error(r, NGX_HTTP_NOT_FOUND,
                   json_pack("{s:s%}", "resource", name.data, name.len),
                   "unknown resource \"%V\"; the unified resources are "
                   "listed in the OpenAPI document", &name);
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        if ((r->method == NGX_HTTP_POST) == ctx->is_get) {
            return ngx_http_hris_send_error(r, NGX_HTTP_NOT_ALLOWED, NULL,
                       "%V is not allowed on %V", &r->method_name, &r->uri);
        }

        return ngx_http_hris_send_error(r, NGX_HTTP_NOT_IMPLEMENTED,
                   json_pack("{s:s%,s:s%}", "provider", t->name.data,
                             t->name.len, "resource", name.data, name.len),
                   "%V of %V is not supported for provider %V",
                   &r->method_name, &name, &t->name);
    }

    ctx->res = t->resources[idx];
    if (ctx->res) {
        ctx->op = ctx->is_get ? ctx->res->get : ctx->res->list;
    }

    if (ctx->op == NULL) {
        return ngx_http_hris_send_error(r, NGX_HTTP_NOT_IMPLEMENTED,
                   json_pack("{s:s%,s:s%}", "provider", t->name.data,
                             t->name.len, "resource", name.data, name.len),
                   "%s %V is not supported for provider %V",
                   ctx->is_get ? "reading one record of" : "listing",
                   &name, &t->name);
    }

    if (ctx->op->from_list) {
        ctx->op = ctx->res->list;

        f = ctx->res->fields.elts;
        for (i = 0; i < ctx->res->fields.nelts; i++) {
            if (ngx_strcmp(f[i].name.data, "id") == 0) {
                ctx->id_expr = f[i].expr;
            }
        }
    }

    ctx->fields = ctx->op->fields ? ctx->op->fields : &ctx->res->fields;

    return NGX_OK;
}


/* limit, cursor, remote_data and the operation's filters; nothing else */

static ngx_int_t
ngx_http_hris_unified_args(ngx_http_request_t *r, ngx_http_hris_ctx_t *ctx)
{
    u_char      *p, *end, *amp, *eq, *dst, *src;
    ngx_int_t    n, rc;
    ngx_str_t    name, value, cursor;

    ctx->limit = NGX_HTTP_HRIS_DEFAULT_LIMIT;
    ctx->remote_data = 1;
    ngx_str_null(&cursor);

    if (ngx_array_init(&ctx->filters, r->pool, 4, sizeof(ngx_keyval_t))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = r->args.data;
    end = p + r->args.len;

    while (p < end) {
        amp = ngx_strlchr(p, end, '&');
        amp = amp ? amp : end;
        eq = ngx_strlchr(p, amp, '=');

        name.data = p;
        name.len = (eq ? eq : amp) - p;

        value.len = 0;
        value.data = ngx_pnalloc(r->pool, eq ? amp - eq : 1);
        if (value.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (eq) {
            for (src = eq + 1, dst = value.data; src < amp; src++) {
                *dst++ = (*src == '+') ? ' ' : *src;
            }
            src = value.data;
            dst = value.data;
            ngx_unescape_uri(&dst, &src, amp - eq - 1,
                             0);
            value.len = dst - value.data;
        }

        p = amp + 1;

        if (name.len == 0) {
            continue;
        }

#define ngx_http_hris_is(s)                                                  \
        (name.len == sizeof(s) - 1 && ngx_strncmp(name.data, s, name.len) == 0)

        if (ngx_http_hris_is("integrated_account_id")) {
            continue;

        } else if (ngx_http_hris_is("remote_data")) {
            if (value.len == 4 && ngx_strncmp(value.data, "true", 4) == 0) {
                ctx->remote_data = 1;

            } else if (value.len == 5
                       && ngx_strncmp(value.data, "false", 5) == 0)
            {
                ctx->remote_data = 0;

            } else {
                return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                           "remote_data must be \"true\" or \"false\"");
            }

        } else if (ngx_http_hris_is("limit") && !ctx->is_get) {
            n = ngx_atoi(value.data, value.len);
            if (n == NGX_ERROR || n < 1) {
                return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                           "limit must be a whole number from 1 to %d",
                           NGX_HTTP_HRIS_MAX_LIMIT);
            }

            /* larger pages are clamped, not refused (CONTRACT.md §4) */
            ctx->limit = ngx_min((ngx_uint_t) n, NGX_HTTP_HRIS_MAX_LIMIT);

        } else if (ngx_http_hris_is("cursor") && !ctx->is_get) {
            cursor = value;

        } else {
            rc = ngx_http_hris_unified_filter(r, ctx, &name, &value);
            if (rc != NGX_OK) {
                return rc;
            }
        }

#undef ngx_http_hris_is
    }

    return ngx_http_hris_unified_binding(r, ctx, &cursor);
}


static ngx_int_t
ngx_http_hris_unified_filter(ngx_http_request_t *r, ngx_http_hris_ctx_t *ctx,
    ngx_str_t *name, ngx_str_t *value)
{
    ngx_uint_t               i;
    ngx_keyval_t            *kv;
    ngx_http_hris_filter_t  *f;

    f = ctx->op->filters.elts;

    for (i = 0; i < ctx->op->filters.nelts; i++) {
        if (f[i].name.len == name->len
            && ngx_strncmp(f[i].name.data, name->data, name->len) == 0)
        {
            break;
        }
    }

    if (i == ctx->op->filters.nelts || ctx->is_get) {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST,
                   json_pack("{s:s%}", "parameter", name->data, name->len),
                   "unknown query parameter \"%V\" for %s %V", name,
                   ctx->is_get ? "a get of" : "a list of", &ctx->res->name);
    }

    if (f[i].pattern && ngx_regex_exec(f[i].pattern, value, NULL, 0) < 0) {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST,
                   json_pack("{s:s%}", "parameter", name->data, name->len),
                   "query parameter \"%V\" must match %V", name,
                   &f[i].pattern_src);
    }

    kv = ngx_array_push(&ctx->filters);
    if (kv == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    kv->key = f[i].name;
    kv->value = *value;

    return NGX_OK;
}


/*
 * Adds filter defaults, builds what a cursor is bound to (account,
 * resource, filters) and opens the client's cursor against it.
 */

static ngx_int_t
ngx_http_hris_unified_binding(ngx_http_request_t *r, ngx_http_hris_ctx_t *ctx,
    ngx_str_t *cursor)
{
    u_char                  *p;
    json_t                  *state, *v;
    size_t                   len;
    ngx_str_t               *val;
    ngx_uint_t               i;
    ngx_keyval_t            *kv;
    ngx_http_hris_filter_t  *f;

    f = ctx->op->filters.elts;
    len = ctx->account->id.len + ctx->res->name.len + 2;

    for (i = 0; i < ctx->op->filters.nelts; i++) {
        val = ngx_http_hris_keyval_get(&ctx->filters, &f[i].name);

        if (val == NULL) {
            kv = ngx_array_push(&ctx->filters);
            if (kv == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
            kv->key = f[i].name;
            kv->value = f[i].dflt;
            val = &kv->value;
        }

        len += f[i].name.len + val->len + 2;
    }

    if (ctx->is_get) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->binding.data = p;
    p = ngx_sprintf(p, "%V%Z%V", &ctx->account->id, &ctx->res->name);

    for (i = 0; i < ctx->op->filters.nelts; i++) {
        val = ngx_http_hris_keyval_get(&ctx->filters, &f[i].name);
        p = ngx_sprintf(p, "%Z%V=%V", &f[i].name, val);
    }

    ctx->binding.len = p - ctx->binding.data;

    if (cursor->len == 0) {
        return NGX_OK;
    }

    if (ngx_http_hris_cursor_open(r->pool, ctx->hmcf->cursor_key,
                                  &ctx->binding, cursor, &state)
        != NGX_OK)
    {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "invalid cursor: pass the next_cursor of the previous "
                   "page verbatim, with the same integrated_account_id, "
                   "resource and filters");
    }

    v = json_object_get(state, "o");
    ctx->offset = json_is_integer(v) && json_integer_value(v) > 0
                  ? (ngx_uint_t) json_integer_value(v) : 0;

    v = json_object_get(state, "c");
    if (json_is_string(v)
        && ngx_http_hris_str_value(r->pool, v, &ctx->page_cursor) != NGX_OK)
    {
        json_decref(state);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json_decref(state);

    return NGX_OK;
}


/* Builds and starts the upstream call for the current page. */

static ngx_int_t
ngx_http_hris_unified_call(ngx_http_hris_ctx_t *ctx)
{
    u_char                    *p;
    size_t                     len;
    ngx_str_t                  path, *values;
    ngx_uint_t                 i, n;
    u_char                     limit[NGX_INT_T_LEN];
    ngx_http_hris_call_t      *call;
    ngx_http_hris_param_t     *q;
    ngx_http_hris_tpl_vars_t   vars;
    ngx_http_request_t        *r = ctx->request;
    ngx_http_hris_op_t        *op = ctx->op;

    call = ngx_http_hris_call_create(r, &ctx->hlcf->upstream);
    if (call == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&vars, sizeof(ngx_http_hris_tpl_vars_t));
    vars.context = &ctx->account->context;
    vars.credentials = &ctx->account->credentials;
    vars.filters = &ctx->filters;
    vars.id = ctx->id;
    vars.page_cursor = ctx->page_cursor;
    vars.page_limit.data = limit;
    vars.page_limit.len = ngx_sprintf(limit, "%ui",
                                      ngx_min(ctx->limit, op->max_limit))
                          - limit;

    if (ngx_http_hris_tpl_render(r->pool, op->path, &vars, 1, &path)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    n = op->query.nelts;
    q = op->query.elts;

    values = ngx_palloc(r->pool, (n + 1) * sizeof(ngx_str_t));
    if (values == NULL) {
        return NGX_ERROR;
    }

    len = ctx->account->base_url.len + path.len + 2;

    for (i = 0; i < n; i++) {
        if (ngx_http_hris_tpl_render(r->pool, q[i].value, &vars, 1,
                                     &values[i])
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        len += q[i].name.len + values[i].len + 2;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    call->url.data = p;
    p = ngx_cpymem(p, ctx->account->base_url.data, ctx->account->base_url.len);
    p = ngx_cpymem(p, path.data, path.len);

    for (i = 0; i < n; i++) {
        /* a parameter that renders empty is left out (first page cursor) */
        if (values[i].len == 0) {
            continue;
        }

        *p = (ngx_strlchr(call->url.data, p, '?') == NULL) ? '?' : '&';
        p++;
        p = ngx_cpymem(p, q[i].name.data, q[i].name.len);
        *p++ = '=';
        p = ngx_cpymem(p, values[i].data, values[i].len);
    }

    *p = '\0';
    call->url.len = p - call->url.data;
    call->method = op->method;
    call->keep_headers = 1;
    call->handler = ngx_http_hris_unified_done;
    call->data = ctx;

    if (ngx_http_hris_apply_auth(call, ctx->account, &vars) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_hris_call_start(call);
}


static void
ngx_http_hris_unified_done(ngx_http_hris_call_t *call)
{
    ngx_int_t             rc;
    ngx_http_hris_ctx_t  *ctx = call->data;

    rc = ngx_http_hris_unified_process(ctx, call);

    if (rc == NGX_AGAIN) {
        return;                         /* the next page is on its way */
    }

    ngx_http_finalize_request(ctx->request, rc);
}


static ngx_int_t
ngx_http_hris_unified_process(ngx_http_hris_ctx_t *ctx,
    ngx_http_hris_call_t *call)
{
    json_t              *body;
    ngx_int_t            rc;
    ngx_array_t          recs;
    ngx_http_request_t  *r = ctx->request;

    if (call->result == NGX_HTTP_HRIS_CALL_OK && call->status == 404
        && ctx->is_get && ctx->id_expr == NULL)
    {
        return ngx_http_hris_not_found(ctx);
    }

    if (call->result != NGX_HTTP_HRIS_CALL_OK
        || call->status < 200 || call->status > 299)
    {
        return ngx_http_hris_call_status_error(r, call, ctx->account->table);
    }

    rc = ngx_http_hris_upstream_json(r, call, &body);
    if (body == NULL) {
        return rc;
    }

    if (ngx_http_hris_json_cleanup(r->pool, body) != NGX_OK
        || ngx_array_init(&recs, r->pool, 64, sizeof(ngx_http_hris_rec_t))
           != NGX_OK)
    {
        json_decref(body);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_hris_unified_records(ctx, body, &recs) != NGX_OK) {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_GATEWAY,
                   json_pack("{s:s%}", "provider",
                             ctx->account->table->name.data,
                             ctx->account->table->name.len),
                   "the provider's answer has no records where the mapping "
                   "table expects them (%V)", &ctx->account->table->file);
    }

    if (ctx->id_expr) {
        return ngx_http_hris_unified_find(ctx, body, &recs);
    }

    if (ctx->is_get) {
        return ngx_http_hris_unified_get(ctx, body, &recs);
    }

    return ngx_http_hris_unified_list(ctx, body, &recs);
}


/*
 * The operation's records: the array at "records" (or a single object for
 * a get), kept by "where", each expanded by "unnest".
 */

static ngx_int_t
ngx_http_hris_unified_records(ngx_http_hris_ctx_t *ctx, json_t *body,
    ngx_array_t *recs)
{
    json_t                 *list, *rec, *v, *inner, *child;
    size_t                  i, j, k;
    ngx_uint_t              keep;
    ngx_http_hris_rec_t    *e;
    ngx_http_hris_where_t  *w;
    ngx_http_hris_op_t     *op = ctx->op;

    list = ngx_http_hris_path_get(&op->records, body, NULL);

    if (json_is_object(list) && ctx->is_get) {
        e = ngx_array_push(recs);
        if (e == NULL) {
            return NGX_ERROR;
        }
        e->record = list;
        e->parent = NULL;
        return NGX_OK;
    }

    if (!json_is_array(list)) {
        return NGX_ERROR;
    }

    w = op->where.elts;

    json_array_foreach(list, i, rec) {
        keep = 1;

        for (j = 0; keep && j < op->where.nelts; j++) {
            v = ngx_http_hris_path_get(&w[j].path, rec, NULL);
            keep = 0;

            json_array_foreach(w[j].values, k, inner) {
                if (v && json_equal(v, inner)) {
                    keep = 1;
                    break;
                }
            }
        }

        if (!keep) {
            continue;
        }

        if (!op->has_unnest) {
            e = ngx_array_push(recs);
            if (e == NULL) {
                return NGX_ERROR;
            }
            e->record = rec;
            e->parent = NULL;
            continue;
        }

        inner = ngx_http_hris_path_get(&op->unnest, rec, NULL);

        json_array_foreach(inner, k, child) {
            e = ngx_array_push(recs);
            if (e == NULL) {
                return NGX_ERROR;
            }
            e->record = child;
            e->parent = rec;
        }
    }

    return NGX_OK;
}


/*
 * One page. "none": the provider gave everything, the cursor keeps the
 * offset. "cursor": the cursor keeps the provider's cursor of the page and
 * how many of its records were already sent, so a page the provider made
 * larger than ours is still walked exactly once.
 */

static ngx_int_t
ngx_http_hris_unified_list(ngx_http_hris_ctx_t *ctx, json_t *body,
    ngx_array_t *recs)
{
    json_t               *out, *result, *rec, *state, *next;
    ngx_str_t             cursor, up;
    ngx_uint_t            i, from, to;
    ngx_http_hris_rec_t  *e;
    ngx_http_request_t   *r = ctx->request;

    e = recs->elts;
    from = ngx_min(ctx->offset, recs->nelts);
    to = ngx_min(from + ctx->limit, recs->nelts);

    result = json_array();
    if (result == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = from; i < to; i++) {
        rec = ngx_http_hris_record_map(ctx->fields, e[i].record, e[i].parent,
                                       ctx->remote_data);
        if (rec == NULL || json_array_append_new(result, rec) != 0) {
            json_decref(result);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    state = NULL;
    ngx_str_null(&up);

    if (to < recs->nelts) {
        state = json_pack("{s:I}", "o", (json_int_t) to);
        if (state && ctx->page_cursor.len) {
            json_object_set_new(state, "c",
                                json_stringn((char *) ctx->page_cursor.data,
                                             ctx->page_cursor.len));
        }

    } else if (ctx->op->page_type == NGX_HTTP_HRIS_PAGE_CURSOR) {
        next = ngx_http_hris_path_get(&ctx->op->page_next, body, NULL);

        if (ngx_http_hris_str_value(r->pool, next, &up) != NGX_OK) {
            json_decref(result);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (up.len) {
            state = json_pack("{s:s%}", "c", up.data, up.len);
        }
    }

    ngx_str_null(&cursor);

    if (state) {
        if (ngx_http_hris_cursor_seal(r->pool, ctx->hmcf->cursor_key,
                                      &ctx->binding, state, &cursor)
            != NGX_OK)
        {
            json_decref(state);
            json_decref(result);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        json_decref(state);
    }

    out = json_pack("{s:o, s:o, s:I}", "result", result,
                    "next_cursor", cursor.len
                                   ? json_stringn((char *) cursor.data,
                                                  cursor.len)
                                   : json_null(),
                    "result_count", (json_int_t) (to - from));
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_hris_json_cleanup(r->pool, out) != NGX_OK) {
        json_decref(out);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_hris_send_json(r, NGX_HTTP_OK, out);
}


static ngx_int_t
ngx_http_hris_unified_get(ngx_http_hris_ctx_t *ctx, json_t *body,
    ngx_array_t *recs)
{
    if (recs->nelts == 0) {
        return ngx_http_hris_not_found(ctx);
    }

    return ngx_http_hris_send_record(ctx, recs->elts);
}


/*
 * A get for a provider with no single-record read: look for the id in
 * the list, page after page.
 */

static ngx_int_t
ngx_http_hris_unified_find(ngx_http_hris_ctx_t *ctx, json_t *body,
    ngx_array_t *recs)
{
    json_t               *id, *next;
    ngx_str_t             s;
    ngx_uint_t            i, found;
    ngx_http_hris_rec_t  *e;
    ngx_http_request_t   *r = ctx->request;

    e = recs->elts;

    for (i = 0; i < recs->nelts; i++) {
        id = ngx_http_hris_expr_eval(ctx->id_expr, e[i].record, e[i].parent);
        if (id == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        found = json_is_string(id)
                && json_string_length(id) == ctx->id.len
                && ngx_strncmp(json_string_value(id), ctx->id.data,
                               ctx->id.len) == 0;
        json_decref(id);

        if (found) {
            return ngx_http_hris_send_record(ctx, &e[i]);
        }
    }

    if (ctx->op->page_type == NGX_HTTP_HRIS_PAGE_CURSOR) {
        next = ngx_http_hris_path_get(&ctx->op->page_next, body, NULL);

        if (ngx_http_hris_str_value(r->pool, next, &s) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (s.len) {
            ctx->page_cursor = s;
            ctx->limit = ctx->op->max_limit;

            return ngx_http_hris_unified_call(ctx) == NGX_OK
                   ? NGX_AGAIN : NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_hris_not_found(ctx);
}


static ngx_int_t
ngx_http_hris_send_record(ngx_http_hris_ctx_t *ctx, ngx_http_hris_rec_t *rec)
{
    json_t              *out, *mapped;
    ngx_http_request_t  *r = ctx->request;

    mapped = ngx_http_hris_record_map(ctx->fields, rec->record, rec->parent,
                                      ctx->remote_data);
    if (mapped == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    out = json_pack("{s:o}", "result", mapped);
    if (out == NULL || ngx_http_hris_json_cleanup(r->pool, out) != NGX_OK) {
        json_decref(out);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_hris_send_json(r, NGX_HTTP_OK, out);
}


static ngx_int_t
ngx_http_hris_not_found(ngx_http_hris_ctx_t *ctx)
{
    return ngx_http_hris_send_error(ctx->request, NGX_HTTP_NOT_FOUND,
               json_pack("{s:s%,s:s%}", "resource", ctx->res->name.data,
                         ctx->res->name.len, "id", ctx->id.data,
                         ctx->id.len),
               "no %V record with id \"%V\" in integrated account \"%V\"",
               &ctx->res->name, &ctx->id, &ctx->account->id);
}


/*
 * The upstream body as JSON in *body; or *body NULL and the client's 502
 * sent (its rc returned): an HTML error page or a cut answer is the
 * provider's fault, said plainly.
 */

static ngx_int_t
ngx_http_hris_upstream_json(ngx_http_request_t *r, ngx_http_hris_call_t *call,
    json_t **body)
{
    json_error_t   jerr;
    ngx_str_t     *host;

    host = ngx_http_hris_call_host(call);
    *body = NULL;

    if (call->resp_len == 0) {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_GATEWAY,
            json_pack("{s:i}", "upstream_status", (int) call->status),
            "the provider at %V answered %ui with an empty body instead of "
            "JSON", host, call->status);
    }

    if (call->content_type.len
        && ngx_strlcasestrn(call->content_type.data,
                            call->content_type.data + call->content_type.len,
                            (u_char *) "json", 4 - 1) == NULL)
    {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_GATEWAY,
            json_pack("{s:i,s:s%}", "upstream_status", (int) call->status,
                      "content_type", call->content_type.data,
                      call->content_type.len),
            "the provider at %V answered with %V instead of JSON", host,
            &call->content_type);
    }

    *body = json_loadb((char *) call->resp, call->resp_len, 0, &jerr);
    if (*body == NULL) {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_GATEWAY,
            json_pack("{s:i,s:s}", "upstream_status", (int) call->status,
                      "parse_error", jerr.text),
            "the provider at %V answered with malformed JSON (line %d, "
            "column %d)", host, jerr.line, jerr.column);
    }

    return NGX_OK;
}


/*
 * Turns a failed call or a non-2xx answer into the contract's error
 * (CONTRACT.md §6), with the provider's own message in "details".
 */

ngx_int_t
ngx_http_hris_call_status_error(ngx_http_request_t *r,
    ngx_http_hris_call_t *call, ngx_http_hris_table_t *table)
{
    json_t                *details, *body, *v;
    ngx_str_t             *host, *h, msg;
    ngx_uint_t             i, j;
    ngx_keyval_t          *kv;
    ngx_table_elt_t       *ra;
    ngx_http_hris_path_t  *p;

    host = ngx_http_hris_call_host(call);

    details = json_pack("{s:s%,s:i,s:i}", "provider", table->name.data,
                        table->name.len, "upstream_status", (int) call->status,
                        "attempts", (int) call->attempts);

    switch (call->result) {

    case NGX_HTTP_HRIS_CALL_TIMEOUT:
        return ngx_http_hris_send_error(r, NGX_HTTP_GATEWAY_TIME_OUT, details,
                   "the provider at %V did not answer in time (hris_timeout "
                   "%M ms, hris_connect_timeout %M ms)", host,
                   call->conf->timeout, call->conf->connect_timeout);

    case NGX_HTTP_HRIS_CALL_UNREACHABLE:
        return ngx_http_hris_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                   details, "the provider at %V could not be reached after "
                   "%ui attempts: %V", host, call->attempts, &call->error);

    case NGX_HTTP_HRIS_CALL_BROKEN:
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_GATEWAY, details,
                   "the provider at %V broke off its answer after %ui "
                   "attempts: %V", host, call->attempts, &call->error);

    case NGX_HTTP_HRIS_CALL_TOO_LARGE:
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_GATEWAY, details,
                   "the provider's answer is larger than "
                   "hris_max_response_size (%uz bytes)",
                   call->conf->max_response);

    case NGX_HTTP_HRIS_CALL_ERROR:
        json_decref(details);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;

    default:
        break;
    }

    /* the provider's own message: from a header, or from a JSON body */
    ngx_str_null(&msg);

    h = table->error_headers.elts;
    kv = call->headers_out.elts;

    for (i = 0; msg.len == 0 && i < table->error_headers.nelts; i++) {
        for (j = 0; kv && j < call->headers_out.nelts; j++) {
            if (kv[j].key.len == h[i].len
                && ngx_strncasecmp(kv[j].key.data, h[i].data, h[i].len) == 0
                && kv[j].value.len)
            {
                msg = kv[j].value;
                break;
            }
        }
    }

    if (msg.len == 0 && call->resp_len) {
        body = json_loadb((char *) call->resp, call->resp_len, 0, NULL);
        p = table->error_paths.elts;

        for (i = 0; body && i < table->error_paths.nelts; i++) {
            v = ngx_http_hris_path_get(&p[i], body, NULL);
            if (json_is_string(v)
                && ngx_http_hris_str_value(r->pool, v, &msg) == NGX_OK
                && msg.len)
            {
                break;
            }
        }

        json_decref(body);
    }

    if (msg.len && details) {
        json_object_set_new(details, "upstream_message",
                            json_stringn((char *) msg.data,
                                         ngx_min(msg.len, 500)));
    }

    if (call->result == NGX_HTTP_HRIS_CALL_RATE_LIMITED
        || call->status == 429
        || (call->status == 503 && call->retry_after >= 0))
    {
        ra = ngx_list_push(&r->headers_out.headers);
        if (ra == NULL) {
            json_decref(details);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ra->hash = 1;
        ngx_str_set(&ra->key, "Retry-After");
        ra->value.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
        if (ra->value.data == NULL) {
            json_decref(details);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        ra->value.len = ngx_sprintf(ra->value.data, "%T",
                                    call->retry_after > 0
                                    ? call->retry_after : (time_t) 1)
                        - ra->value.data;

        return ngx_http_hris_send_error(r, NGX_HTTP_TOO_MANY_REQUESTS,
                   details, "the provider's rate limit is exhausted; retry "
                   "after %V seconds", &ra->value);
    }

    if (call->status == 401) {
        return ngx_http_hris_send_error(r, NGX_HTTP_UNAUTHORIZED, details,
                   "the provider rejected the integrated account's "
                   "credentials (upstream 401): check or renew them");
    }

    if (call->status >= 500) {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_GATEWAY, details,
                   "the provider at %V failed with %ui after %ui attempts",
                   host, call->status, call->attempts);
    }

    if (call->status >= 400) {
        return ngx_http_hris_send_error(r, 422, details,
                   "the provider rejected the request with %ui%s%V",
                   call->status, msg.len ? ": " : "", &msg);
    }

    return ngx_http_hris_send_error(r, NGX_HTTP_BAD_GATEWAY, details,
               "the provider at %V answered with unexpected status %ui",
               host, call->status);
}


/* A JSON string or number as text; null and absent are "". */

static ngx_int_t
ngx_http_hris_str_value(ngx_pool_t *pool, json_t *v, ngx_str_t *out)
{
    ngx_str_null(out);

    if (json_is_string(v)) {
        out->len = json_string_length(v);
        out->data = ngx_pnalloc(pool, out->len + 1);
        if (out->data == NULL) {
            return NGX_ERROR;
        }
        ngx_memcpy(out->data, json_string_value(v), out->len + 1);

    } else if (json_is_integer(v)) {
        out->data = ngx_pnalloc(pool, NGX_INT64_LEN + 1);
        if (out->data == NULL) {
            return NGX_ERROR;
        }
        out->len = ngx_sprintf(out->data, "%L%Z",
                               (int64_t) json_integer_value(v))
                   - out->data - 1;
    }

    return NGX_OK;
}

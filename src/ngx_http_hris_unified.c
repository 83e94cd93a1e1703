/*
 * The unified API: GET /unified/hris/{resource}[/{id}].
 *
 * The handler checks everything it can before calling out (key, account,
 * resource, parameters, cursor), then runs the operation's upstream call;
 * when it completes, records are selected, mapped and answered with
 * {"result": [...], "next_cursor": ..., "result_count": N}.
 *
 * Writes (POST {resource}, PATCH and DELETE {resource}/{id}) and GET
 * {resource}/meta are routed here and served by ngx_http_hris_write.c.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_unified.h"
#include "ngx_http_hris_record.h"


static ngx_int_t ngx_http_hris_unified_route(ngx_http_request_t *r,
    ngx_http_hris_ctx_t *ctx);
static ngx_int_t ngx_http_hris_unified_args(ngx_http_request_t *r,
    ngx_http_hris_ctx_t *ctx);
static ngx_int_t ngx_http_hris_unified_filter(ngx_http_request_t *r,
    ngx_http_hris_ctx_t *ctx, ngx_str_t *name, ngx_str_t *value);
static ngx_int_t ngx_http_hris_unified_binding(ngx_http_request_t *r,
    ngx_http_hris_ctx_t *ctx, ngx_str_t *cursor);
static ngx_int_t ngx_http_hris_send_list(ngx_http_hris_ctx_t *ctx);
static ngx_int_t ngx_http_hris_cursor_fits(ngx_http_hris_ctx_t *ctx,
    ngx_str_t *cursor);
static ngx_uint_t ngx_http_hris_state_uint(json_t *state, const char *key);


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

    /* a write reads its body; an answer before that discards it */
    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
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

    ngx_http_hris_observe_provider(r, ctx->account->table, &ctx->account->id);

    /*
     * an error answer sent by route() or args() usually returns NGX_OK
     * (the output filter's rc): header_sent tells it from "go on"
     */

    ctx->write = -1;

    rc = ngx_http_hris_unified_route(r, ctx);
    if (rc != NGX_OK || r->header_sent) {
        return rc;
    }

    if (ctx->write >= 0) {
        return ngx_http_hris_write_handler(ctx, &ctx->name,
                                           (ngx_http_hris_write_kind_e)
                                           ctx->write);
    }

    if (ctx->is_meta) {
        return ngx_http_hris_meta_handler(ctx, &ctx->name);
    }

    /* a list opens and seals cursors: with hris_redis, the fleet's key */
    if (!ctx->is_get) {
        rc = ngx_http_hris_cursor_key_wait(r, ngx_http_hris_unified_handler);
        if (rc != NGX_OK || r->header_sent) {
            return rc;
        }
    }

    rc = ngx_http_hris_unified_args(r, ctx);
    if (rc != NGX_OK || r->header_sent) {
        return rc;
    }

    /* answered at once (its rc, NGX_AGAIN included), or pending */
    rc = ngx_http_hris_walk_start(ctx);
    if (rc != NGX_HTTP_HRIS_PENDING) {
        return rc;
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
    u_char                    *slash;
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
        /*
         * r->uri is decoded already: "%2541" is the id "%41" (decoded
         * again it would be "A"); the template escapes it for the call
         */
        ctx->id.len = rest.data + rest.len - (slash + 1);
        ctx->id.data = ngx_pnalloc(r->pool, ctx->id.len + 1);
        if (ctx->id.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *ngx_cpymem(ctx->id.data, slash + 1, ctx->id.len) = '\0';

        if (ngx_strlchr(ctx->id.data, ctx->id.data + ctx->id.len, '/')
            != NULL)
        {
            return ngx_http_hris_send_error(r, NGX_HTTP_NOT_FOUND, NULL,
                       "unknown path \"%V\": expected hris/{resource}/{id}",
                       &r->uri);
        }

        ctx->is_get = 1;
    }

    idx = ngx_http_hris_schema_index(ctx->hmcf, &name);

    /* a label from the schema, never the client's name */
    ngx_http_hris_observe_resource(r, idx);

    if (idx == NGX_ERROR) {
        return ngx_http_hris_send_error(r, NGX_HTTP_NOT_FOUND,
                   json_pack("{s:s%}", "resource", name.data, name.len),
                   "unknown resource \"%V\"; the unified resources are "
                   "listed in the OpenAPI document", &name);
    }

    ctx->name = name;
    ctx->res = t->resources[idx];

    /* {resource}/meta: what this account's provider can write */
    if (ctx->is_get && ctx->id.len == 4
        && ngx_strncmp(ctx->id.data, "meta", 4) == 0
        && (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)))
    {
        ctx->is_meta = 1;
        return NGX_OK;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        if ((r->method == NGX_HTTP_POST) == ctx->is_get) {
            return ngx_http_hris_send_error(r, NGX_HTTP_NOT_ALLOWED, NULL,
                       "%V is not allowed on %V: create with POST "
                       "hris/{resource}, update with PATCH and delete with "
                       "DELETE hris/{resource}/{id}", &r->method_name,
                       &r->uri);
        }

        ctx->write = (r->method == NGX_HTTP_POST) ? NGX_HTTP_HRIS_WRITE_CREATE
                     : (r->method == NGX_HTTP_PATCH)
                       ? NGX_HTTP_HRIS_WRITE_UPDATE
                       : NGX_HTTP_HRIS_WRITE_DELETE;
        return NGX_OK;
    }

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
    }

    ctx->fields = ctx->op->fields ? ctx->op->fields : &ctx->res->fields;
    ctx->cover = ngx_http_hris_metrics_cover(r, ctx->fields->nelts);

    /*
     * A get answers only the record whose mapped id is the one asked for:
     * a provider's search may also match names or e-mails (ClayHR), and
     * a get through the list must find its record among many.
     */
    if (ctx->is_get) {
        f = ctx->fields->elts;
        for (i = 0; i < ctx->fields->nelts; i++) {
            if (ngx_strcmp(f[i].name.data, "id") == 0) {
                ctx->id_expr = f[i].expr;
            }
        }
    }

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
            /* stop at the first error answered (its rc is usually NGX_OK) */
            rc = ngx_http_hris_unified_filter(r, ctx, &name, &value);
            if (rc != NGX_OK || r->header_sent) {
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

    /* the position: e (for_each value), p (page or offset), s (page
     * size), c (provider cursor), o (records of that page already sent) */
    ctx->pos.each = ngx_http_hris_state_uint(state, "e");
    ctx->pos.page = ngx_http_hris_state_uint(state, "p");
    ctx->pos.size = ngx_http_hris_state_uint(state, "s");
    ctx->pos.skip = ngx_http_hris_state_uint(state, "o");
    ctx->pos.started = (ctx->pos.size > 0);

    v = json_object_get(state, "c");
    if (json_is_string(v)
        && ngx_http_hris_json_text(r->pool, v, &ctx->pos.cursor) != NGX_OK)
    {
        json_decref(state);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json_decref(state);

    return NGX_OK;
}


static ngx_uint_t
ngx_http_hris_state_uint(json_t *state, const char *key)
{
    json_t  *v;

    v = json_object_get(state, key);

    return (json_is_integer(v) && json_integer_value(v) > 0)
           ? (ngx_uint_t) json_integer_value(v) : 0;
}


/* The walk ended: the record of a get, or the page of a list. */

ngx_int_t
ngx_http_hris_unified_finish(ngx_http_hris_ctx_t *ctx)
{
    json_t                   *out, *at;
    ngx_int_t                 rc;
    ngx_http_hris_records_t   recs;

    if (!ctx->is_get) {
        return ngx_http_hris_send_list(ctx);
    }

    /* the record is written where the answer holds "at" */
    at = json_object();
    out = json_pack("{s:o}", "result", at);
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    recs.at = at;
    recs.fields = ctx->fields;
    recs.records = &ctx->found;
    recs.n = 1;
    recs.single = 1;
    recs.part = NULL;

    /* the answer is written out before this returns */
    rc = ngx_http_hris_send_records(ctx->request, NGX_HTTP_OK, out,
                                    ctx->spans, &recs);
    json_decref(out);

    return rc;
}


static ngx_int_t
ngx_http_hris_send_list(ngx_http_hris_ctx_t *ctx)
{
    json_t                   *out, *state, *at;
    ngx_int_t                 rc;
    ngx_str_t                 cursor;
    ngx_http_request_t       *r = ctx->request;
    ngx_http_hris_pos_t      *pos = &ctx->pos;
    ngx_http_hris_records_t   recs;

    ngx_str_null(&cursor);

    if (ctx->more) {
        state = json_object();
        if (state == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* only what is not zero: cursors stay short */
        if ((pos->each
             && json_object_set_new(state, "e", json_integer(pos->each)))
            || (pos->page
                && json_object_set_new(state, "p", json_integer(pos->page)))
            || (pos->started && pos->size
                && json_object_set_new(state, "s", json_integer(pos->size)))
            || (pos->skip
                && json_object_set_new(state, "o", json_integer(pos->skip)))
            || (pos->cursor.len
                && json_object_set_new(state, "c",
                                       json_stringn((char *) pos->cursor.data,
                                                    pos->cursor.len))))
        {
            json_decref(state);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_http_hris_cursor_seal(r->pool, ctx->hmcf->cursor_key,
                                      &ctx->binding, state, &cursor)
            != NGX_OK)
        {
            json_decref(state);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        json_decref(state);

        /* the error answer it sends usually returns NGX_OK */
        rc = ngx_http_hris_cursor_fits(ctx, &cursor);
        if (rc != NGX_OK || r->header_sent) {
            return rc;
        }
    }

    at = json_object();
    out = json_pack("{s:o, s:o, s:I}", "result", at,
                    "next_cursor", cursor.len
                                   ? json_stringn((char *) cursor.data,
                                                  cursor.len)
                                   : json_null(),
                    "result_count", (json_int_t) ctx->result.nelts);
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    recs.at = at;
    recs.fields = ctx->fields;
    recs.records = ctx->result.elts;
    recs.n = ctx->result.nelts;
    recs.single = 0;
    recs.part = ngx_http_hris_slice_part(ctx);

    /* the answer is written out before this returns */
    rc = ngx_http_hris_send_records(r, NGX_HTTP_OK, out, ctx->spans, &recs);
    json_decref(out);

    return rc;
}


/*
 * A next_cursor comes back in a request line, which must fit in one of
 * nginx's large_client_header_buffers: one that cannot is refused now,
 * with what to change, rather than by nginx's 414 on the next request.
 */

static ngx_int_t
ngx_http_hris_cursor_fits(ngx_http_hris_ctx_t *ctx, ngx_str_t *cursor)
{
    size_t                     max;
    ngx_http_core_srv_conf_t  *cscf;
    ngx_http_request_t        *r = ctx->request;

    cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);
    max = cscf->large_client_header_buffers.size;

    /* the least a next request line holds (filters and limit aside) */
    if (sizeof("GET ?integrated_account_id=&cursor= HTTP/1.1") - 1
        + r->uri.len + ctx->account->id.len + cursor->len <= max)
    {
        return NGX_OK;
    }

    return ngx_http_hris_send_error(r, NGX_HTTP_BAD_GATEWAY,
               json_pack("{s:s%,s:i,s:i}", "provider",
                         ctx->account->table->name.data,
                         ctx->account->table->name.len,
                         "next_cursor_length", (int) cursor->len,
                         "large_client_header_buffers", (int) max),
               "the provider's next-page cursor makes a next_cursor of %uz "
               "bytes, too long to come back in a request line of at most "
               "%uz bytes: raise nginx's large_client_header_buffers",
               cursor->len, max);
}


ngx_int_t
ngx_http_hris_not_found(ngx_http_hris_ctx_t *ctx)
{
    return ngx_http_hris_send_error(ctx->request, NGX_HTTP_NOT_FOUND,
               json_pack("{s:s%,s:s%}", "resource", ctx->res->name.data,
                         ctx->res->name.len, "id", ctx->id.data,
                         ctx->id.len),
               "no %V record with id \"%V\" in integrated account \"%V\"",
               &ctx->res->name, &ctx->id, &ctx->account->id);
}

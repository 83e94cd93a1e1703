/*
 * Writes through the unified API (CONTRACT.md §7):
 *
 *     POST   /unified/hris/{resource}        create  201 {"result": {...}}
 *     PATCH  /unified/hris/{resource}/{id}   update  200 {"result": {...}}
 *     DELETE /unified/hris/{resource}/{id}   delete  200 {"result": {"id"}}
 *
 * The body is checked against the table's write operation before any
 * upstream call (ngx_http_hris_write_input.c), an Idempotency-Key is
 * claimed (ngx_http_hris_idem.c), then the write goes through the same
 * gate as reads (token, rate limit, credentials cool-down) and out once:
 * it is sent again only when the provider certainly did not carry it out
 * (unreachable, throttled, its token refused). The written record is
 * answered as a get maps it: from the write's answer, or read back.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_unified.h"
#include "ngx_http_hris_idem.h"
#include "ngx_http_hris_state_if.h"


static ngx_int_t ngx_http_hris_write_args(ngx_http_hris_write_t *w);
static void ngx_http_hris_write_body_ready(ngx_http_request_t *r);
static ngx_int_t ngx_http_hris_write_start(ngx_http_hris_write_t *w);
static void ngx_http_hris_write_begun(void *data, ngx_int_t rc);
static ngx_int_t ngx_http_hris_write_claimed(ngx_http_hris_write_t *w,
    ngx_int_t rc);
static ngx_int_t ngx_http_hris_write_replay(ngx_http_request_t *r,
    ngx_http_hris_idem_kept_t *kept);
static ngx_int_t ngx_http_hris_write_call(ngx_http_hris_write_t *w);
static void ngx_http_hris_write_gated(ngx_http_hris_gate_t *g);
static ngx_int_t ngx_http_hris_write_send(ngx_http_hris_write_t *w);
static ngx_int_t ngx_http_hris_write_read_send(ngx_http_hris_write_t *w);
static ngx_int_t ngx_http_hris_write_url(ngx_http_hris_write_t *w,
    ngx_http_hris_tpl_t *path, ngx_array_t *query, ngx_str_t *extra,
    ngx_http_hris_tpl_vars_t *vars, ngx_str_t *url);
static ngx_int_t ngx_http_hris_write_json(ngx_http_hris_write_t *w,
    ngx_http_hris_call_t *call, json_t *body, ngx_http_hris_tpl_vars_t *vars);
static void ngx_http_hris_write_done(ngx_http_hris_call_t *call);
static ngx_int_t ngx_http_hris_write_answered(ngx_http_hris_write_t *w,
    ngx_http_hris_call_t *call);
static ngx_int_t ngx_http_hris_write_succeeded(ngx_http_hris_write_t *w,
    ngx_http_hris_call_t *call);
static ngx_int_t ngx_http_hris_write_new_id(ngx_http_hris_write_t *w,
    ngx_http_hris_call_t *call, json_t *body);
static ngx_int_t ngx_http_hris_write_read_done(ngx_http_hris_write_t *w,
    ngx_http_hris_call_t *call);
static json_t *ngx_http_hris_write_pick(ngx_http_hris_write_t *w,
    ngx_array_t *fields, json_t *list);
static json_t *ngx_http_hris_write_parse(ngx_http_hris_write_t *w,
    ngx_http_hris_call_t *call, ngx_uint_t *failed);
static ngx_int_t ngx_http_hris_write_send_record(ngx_http_hris_write_t *w,
    json_t *record, const char *warning);
static ngx_int_t ngx_http_hris_write_unknown(ngx_http_hris_write_t *w,
    ngx_http_hris_call_t *call, const char *what);
static ngx_int_t ngx_http_hris_write_refused(ngx_http_hris_write_t *w,
    ngx_http_hris_call_t *call, ngx_str_t *code, ngx_str_t *msg);


static const char  *ngx_http_hris_write_doing[] = {
    "create", "update", "delete"
};


/*
 * From the unified handler, once the key, the account and the resource
 * are known: reads the body, then goes on in the body handler. Returns
 * the handler's rc.
 */

ngx_int_t
ngx_http_hris_write_handler(ngx_http_hris_ctx_t *ctx, ngx_str_t *name,
    ngx_http_hris_write_kind_e kind)
{
    ngx_int_t                  rc, idx;
    ngx_http_hris_write_t     *w;
    ngx_http_hris_write_op_t  *wop;
    ngx_http_request_t        *r = ctx->request;
    ngx_http_hris_table_t     *t = ctx->account->table;

    wop = ctx->res ? ctx->res->writes[kind] : NULL;

    if (wop == NULL) {
        return ngx_http_hris_send_error(r, NGX_HTTP_NOT_IMPLEMENTED,
                   json_pack("{s:s%,s:s%,s:s}", "provider", t->name.data,
                             t->name.len, "resource", name->data, name->len,
                             "operation", ngx_http_hris_write_names[kind]),
                   "%s of %V is not supported for provider %V",
                   ngx_http_hris_write_names[kind], name, &t->name);
    }

    w = ngx_pcalloc(r->pool, sizeof(ngx_http_hris_write_t));
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    idx = ngx_http_hris_schema_index(ctx->hmcf, &ctx->res->name);

    w->request = r;
    w->hmcf = ctx->hmcf;
    w->hlcf = ctx->hlcf;
    w->account = ctx->account;
    w->res = ctx->res;
    w->sr = &((ngx_http_hris_schema_resource_t *) ctx->hmcf->schema.elts)[idx];
    w->wop = wop;
    w->id = ctx->id;
    w->remote_data = 1;

    rc = ngx_http_hris_write_args(w);
    if (rc != NGX_OK || r->header_sent) {
        return rc;
    }

    ngx_http_set_ctx(r, w, ngx_http_hris_module);

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_hris_write_body_ready);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/* integrated_account_id and remote_data; nothing else */

static ngx_int_t
ngx_http_hris_write_args(ngx_http_hris_write_t *w)
{
    u_char              *p, *end, *amp, *eq;
    ngx_str_t            name, value;
    ngx_http_request_t  *r = w->request;

    p = r->args.data;
    end = p + r->args.len;

    for ( /* void */ ; p < end; p = amp + 1) {
        amp = ngx_strlchr(p, end, '&');
        amp = amp ? amp : end;
        eq = ngx_strlchr(p, amp, '=');

        name.data = p;
        name.len = (eq ? eq : amp) - p;
        value.data = eq ? eq + 1 : amp;
        value.len = amp - value.data;

        if (name.len == 0
            || (name.len == sizeof("integrated_account_id") - 1
                && ngx_strncmp(name.data, "integrated_account_id",
                               name.len) == 0))
        {
            continue;
        }

        if (name.len == sizeof("remote_data") - 1
            && ngx_strncmp(name.data, "remote_data", name.len) == 0
            && ((value.len == 4 && ngx_strncmp(value.data, "true", 4) == 0)
                || (value.len == 5
                    && ngx_strncmp(value.data, "false", 5) == 0)))
        {
            w->remote_data = (value.len == 4);
            continue;
        }

        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST,
                   json_pack("{s:s%}", "parameter", name.data, name.len),
                   "unknown query parameter \"%V\" for a write: it takes "
                   "integrated_account_id and remote_data (true or false)",
                   &name);
    }

    return NGX_OK;
}


static void
ngx_http_hris_write_body_ready(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_http_hris_write_t  *w;

    w = ngx_http_get_module_ctx(r, ngx_http_hris_module);

    rc = ngx_http_hris_write_start(w);
    if (rc != NGX_HTTP_HRIS_PENDING) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    /* the client may go away while we wait: notice it, then stop */
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;
}


/*
 * The body checked, the Idempotency-Key claimed (or its kept answer sent
 * again), then the call. Every error before the call is a 400 that names
 * what is wrong, and nothing reached the provider.
 */

static ngx_int_t
ngx_http_hris_write_start(ngx_http_hris_write_t *w)
{
    json_t              *body;
    ngx_int_t            rc;
    ngx_str_t            text, key;
    json_error_t         jerr;
    ngx_http_request_t  *r = w->request;

    rc = ngx_http_hris_request_body(r, &text);
    if (rc != NGX_OK || r->header_sent) {
        return rc;
    }

    rc = ngx_http_hris_idem_key(r, &key);
    if (rc != NGX_OK || r->header_sent) {
        return rc;
    }

    if (text.len == 0 && w->wop->kind == NGX_HTTP_HRIS_WRITE_DELETE) {
        body = json_object();

    } else {
        body = json_loadb((char *) text.data, text.len, 0, &jerr);

        if (body == NULL) {
            return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                       "the body must be a JSON object of unified %V fields: "
                       "%s (line %d, column %d)", &w->res->name,
                       text.len ? jerr.text : "it is empty", jerr.line,
                       jerr.column);
        }
    }

    if (body == NULL || ngx_http_hris_json_cleanup(r->pool, body) != NGX_OK) {
        json_decref(body);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_hris_write_check(w, body);
    if (rc != NGX_OK || r->header_sent) {
        return rc;
    }

    if (key.len == 0) {
        return ngx_http_hris_write_claimed(w, NGX_OK);
    }

    /* a store that answers later (Redis): write_begun() goes on */
    rc = ngx_http_hris_state_idem_begin(r, &w->account->tenant,
                                        &w->account->id, &key, &text,
                                        &w->kept, ngx_http_hris_write_begun,
                                        w);

    return (rc == NGX_AGAIN) ? NGX_HTTP_HRIS_PENDING
                             : ngx_http_hris_write_claimed(w, rc);
}


static void
ngx_http_hris_write_begun(void *data, ngx_int_t rc)
{
    ngx_http_hris_write_t  *w = data;

    rc = ngx_http_hris_write_claimed(w, rc);

    if (rc != NGX_HTTP_HRIS_PENDING) {
        ngx_http_finalize_request(w->request, rc);
    }

    ngx_http_run_posted_requests(w->request->connection);
}


/* What the Idempotency-Key says: go on with the call, or answer now. */

static ngx_int_t
ngx_http_hris_write_claimed(ngx_http_hris_write_t *w, ngx_int_t rc)
{
    ngx_http_request_t  *r = w->request;

    switch (rc) {

    case NGX_OK:
        break;

    case NGX_DONE:
        return ngx_http_hris_write_replay(r, &w->kept);

    case NGX_ABORT:
        return ngx_http_hris_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                   json_pack("{s:s}", "store", "redis"),
                   "the state store (hris_redis) that keeps "
                   "Idempotency-Keys for the fleet cannot be used now; "
                   "nothing was sent to the provider: retry shortly");

    case NGX_BUSY:
        return ngx_http_hris_send_error(r, NGX_HTTP_CONFLICT,
                   json_pack("{s:s}", "idempotency_key", "in_flight"),
                   "a request with this Idempotency-Key is still being "
                   "processed: wait for its answer, then send this one "
                   "again to get it");

    case NGX_DECLINED:
        return ngx_http_hris_send_error(r, 422,
                   json_pack("{s:s}", "idempotency_key", "reused"),
                   "this Idempotency-Key was used with another method, "
                   "path or body in the last 24 hours: use a new key "
                   "for a new request");

    case NGX_HTTP_HRIS_IDEM_FULL:
        return ngx_http_hris_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                   json_pack("{s:s}", "directive",
                             "hris_idempotency_zone_size"),
                   "no room to keep this write's answer for its "
                   "Idempotency-Key: the zone, or this tenant's quarter "
                   "of it, is full of answers kept for 24 hours "
                   "(hris_idempotency_zone_size); nothing was sent to "
                   "the provider");

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_hris_gate_init(&w->gate, r, w->account) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    w->gate.handler = ngx_http_hris_write_gated;
    w->gate.data = w;

    return ngx_http_hris_write_call(w);
}


/* the first answer to this Idempotency-Key, again, without a call */

static ngx_int_t
ngx_http_hris_write_replay(ngx_http_request_t *r,
    ngx_http_hris_idem_kept_t *kept)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_str_t     yes = ngx_string("true");
    ngx_chain_t   out;

    if (ngx_http_hris_header_out(r, "Idempotent-Replayed", &yes) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = kept->body.data;
    b->last = kept->body.data + kept->body.len;
    b->memory = kept->body.len ? 1 : 0;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    r->headers_out.status = kept->status;
    r->headers_out.content_length_n = kept->body.len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, &out);
}


/* through the gate (token, rate limit), then the write or the read back */

static ngx_int_t
ngx_http_hris_write_call(ngx_http_hris_write_t *w)
{
    switch (ngx_http_hris_gate_pass(&w->gate)) {

    case NGX_OK:
        return w->reading ? ngx_http_hris_write_read_send(w)
                          : ngx_http_hris_write_send(w);

    case NGX_AGAIN:
        return NGX_HTTP_HRIS_PENDING;

    default:
        return w->gate.final;
    }
}


static void
ngx_http_hris_write_gated(ngx_http_hris_gate_t *g)
{
    ngx_int_t               rc;
    ngx_http_hris_write_t  *w = g->data;

    if (g->rc != NGX_OK) {
        rc = g->final;

    } else {
        rc = w->reading ? ngx_http_hris_write_read_send(w)
                        : ngx_http_hris_write_send(w);
    }

    if (rc != NGX_HTTP_HRIS_PENDING) {
        ngx_http_finalize_request(w->request, rc);
    }
}


/* The write: path, query and body from the input, sent once. */

static ngx_int_t
ngx_http_hris_write_send(ngx_http_hris_write_t *w)
{
    json_t                    *body;
    ngx_str_t                  form, name, value;
    ngx_http_hris_call_t      *call;
    ngx_http_hris_tpl_vars_t   vars;
    ngx_http_hris_write_op_t  *wop = w->wop;
    ngx_http_request_t        *r = w->request;

    call = ngx_http_hris_call_create(r, &w->hlcf->upstream);
    if (call == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&vars, sizeof(ngx_http_hris_tpl_vars_t));
    ngx_http_hris_gate_vars(&w->gate, &vars);

    vars.id = w->id;
    vars.input = &w->flat;

    ngx_str_null(&form);
    body = NULL;

    if (wop->body) {
        body = ngx_http_hris_write_body(w, wop->body, &vars);
        if (body == NULL
            || ngx_http_hris_json_cleanup(r->pool, body) != NGX_OK)
        {
            json_decref(body);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        w->sent = body;

        if (wop->body_as != NGX_HTTP_HRIS_BODY_JSON
            && ngx_http_hris_write_form(r->pool, body, &form) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ngx_http_hris_write_url(w, wop->path, &wop->query,
                                wop->body_as == NGX_HTTP_HRIS_BODY_QUERY
                                ? &form : NULL, &vars, &call->url)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (body && wop->body_as == NGX_HTTP_HRIS_BODY_JSON) {
        if (ngx_http_hris_write_json(w, call, body, &vars) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else if (body && wop->body_as == NGX_HTTP_HRIS_BODY_FORM) {
        call->body = form;
        ngx_str_set(&name, "Content-Type");
        ngx_str_set(&value, "application/x-www-form-urlencoded");

        if (ngx_http_hris_call_header(call, &name, &value) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ngx_http_hris_apply_auth(call, w->account, &vars) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    call->method = wop->method;
    /* a write goes out once unless the table says repeating it is harmless */
    call->idempotent = wop->idempotent;
    call->retry = 1;
    call->keep_headers = 1;
    call->handler = ngx_http_hris_write_done;
    call->data = w;
    w->call = call;

    /*
     * From now on the provider may get the write: whatever ends this
     * request (an answer, or the client going away) is kept for its
     * Idempotency-Key, unless the answer says the write never arrived
     */
    ngx_http_hris_idem_keep(r, 1);

    if (ngx_http_hris_call_start(call) != NGX_OK) {
        ngx_http_hris_idem_keep(r, 0);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_HTTP_HRIS_PENDING;
}


/* The read of the written record: the get, or the table's own read. */

static ngx_int_t
ngx_http_hris_write_read_send(ngx_http_hris_write_t *w)
{
    json_t                    *body;
    ngx_array_t               *query;
    ngx_http_hris_op_t        *op = w->wop->then;
    ngx_http_hris_call_t      *call;
    ngx_http_hris_tpl_vars_t   vars;
    ngx_http_request_t        *r = w->request;

    call = ngx_http_hris_call_create(r, &w->hlcf->upstream);
    if (call == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&vars, sizeof(ngx_http_hris_tpl_vars_t));
    ngx_http_hris_gate_vars(&w->gate, &vars);

    vars.id = w->id;
    vars.input = &w->flat;

    /* with field batches, the first batch's fields: one call reads back */
    query = op->batches ? &op->batches->queries[0] : &op->query;

    if (ngx_http_hris_write_url(w, op->path, query, NULL, &vars, &call->url)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (op->body) {
        body = ngx_http_hris_body_render(r->pool, op->body, &vars);
        if (body == NULL
            || ngx_http_hris_json_cleanup(r->pool, body) != NGX_OK
            || ngx_http_hris_write_json(w, call, body, &vars) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ngx_http_hris_apply_auth(call, w->account, &vars) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    call->method = op->method;
    call->idempotent = 1;       /* a read, even over POST (RPC providers) */
    call->retry = 1;
    call->keep_headers = 1;
    call->handler = ngx_http_hris_write_done;
    call->data = w;
    w->call = call;
    w->op = op;

    if (ngx_http_hris_call_start(call) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_HTTP_HRIS_PENDING;
}


/* {base_url}{path}?{query}[&{extra}]: a parameter rendering empty is left
 * out */

static ngx_int_t
ngx_http_hris_write_url(ngx_http_hris_write_t *w, ngx_http_hris_tpl_t *path,
    ngx_array_t *query, ngx_str_t *extra, ngx_http_hris_tpl_vars_t *vars,
    ngx_str_t *url)
{
    u_char                 *p;
    size_t                  len;
    ngx_str_t               rpath, *values;
    ngx_uint_t              i;
    ngx_http_hris_param_t  *q;
    ngx_pool_t             *pool = w->request->pool;

    if (ngx_http_hris_tpl_render(pool, path, vars, 1, &rpath) != NGX_OK) {
        return NGX_ERROR;
    }

    q = query->elts;

    values = ngx_palloc(pool, (query->nelts + 1) * sizeof(ngx_str_t));
    if (values == NULL) {
        return NGX_ERROR;
    }

    len = w->account->base_url.len + rpath.len + 2
          + (extra ? extra->len + 1 : 0);

    for (i = 0; i < query->nelts; i++) {
        if (ngx_http_hris_tpl_render(pool, q[i].value, vars, 1, &values[i])
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        len += q[i].name.len + values[i].len + 2;
    }

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    url->data = p;
    p = ngx_cpymem(p, w->account->base_url.data, w->account->base_url.len);
    p = ngx_cpymem(p, rpath.data, rpath.len);

    for (i = 0; i < query->nelts; i++) {
        if (values[i].len == 0) {
            continue;
        }

        *p = (ngx_strlchr(url->data, p, '?') == NULL) ? '?' : '&';
        p++;
        p = ngx_cpymem(p, q[i].name.data, q[i].name.len);
        *p++ = '=';
        p = ngx_cpymem(p, values[i].data, values[i].len);
    }

    if (extra && extra->len) {
        *p = (ngx_strlchr(url->data, p, '?') == NULL) ? '?' : '&';
        p++;
        p = ngx_cpymem(p, extra->data, extra->len);
    }

    *p = '\0';
    url->len = p - url->data;

    return NGX_OK;
}


/* a JSON body, with the credentials a table carries in bodies merged in */

static ngx_int_t
ngx_http_hris_write_json(ngx_http_hris_write_t *w, ngx_http_hris_call_t *call,
    json_t *body, ngx_http_hris_tpl_vars_t *vars)
{
    char                  *text;
    json_t                *copy;
    ngx_str_t              name, value;
    ngx_http_hris_auth_t  *auth = w->account->auth;
    ngx_pool_t            *pool = w->request->pool;

    /* the body sent stays credential-free: it is $parent of a read back */
    copy = json_deep_copy(body);
    if (copy == NULL) {
        return NGX_ERROR;
    }

    if (auth->type == NGX_HTTP_HRIS_AUTH_BODY
        && ngx_http_hris_body_merge(pool, copy, auth->body, vars) != NGX_OK)
    {
        json_decref(copy);
        return NGX_ERROR;
    }

    text = json_dumps(copy, JSON_COMPACT);
    json_decref(copy);

    if (text == NULL) {
        return NGX_ERROR;
    }

    call->body.len = ngx_strlen(text);
    call->body.data = ngx_pnalloc(pool, call->body.len);
    if (call->body.data == NULL) {
        free(text);
        return NGX_ERROR;
    }

    ngx_memcpy(call->body.data, text, call->body.len);

    /* the text held credentials: not left behind in freed memory */
    ngx_explicit_memzero(text, call->body.len);
    free(text);

    ngx_str_set(&name, "Content-Type");
    ngx_str_set(&value, "application/json");

    return ngx_http_hris_call_header(call, &name, &value);
}


static void
ngx_http_hris_write_done(ngx_http_hris_call_t *call)
{
    ngx_int_t               rc;
    ngx_http_hris_write_t  *w = call->data;

    ngx_http_hris_gate_answered(&w->gate, call);

    /*
     * a refused token: the provider did not carry the call out, so it may
     * go again, once, with a renewed token
     */
    if (call->result == NGX_HTTP_HRIS_CALL_OK && !w->gate.renewed
        && ngx_http_hris_token_refused(w->account->auth, call->status))
    {
        ngx_http_hris_gate_refused(&w->gate);
        w->gate.renewed = 1;
        rc = ngx_http_hris_write_call(w);

    } else if (w->reading) {
        rc = ngx_http_hris_write_read_done(w, call);

    } else {
        rc = ngx_http_hris_write_answered(w, call);
    }

    if (rc != NGX_HTTP_HRIS_PENDING) {
        ngx_http_finalize_request(w->request, rc);
    }
}


/* The provider's answer to the write. */

static ngx_int_t
ngx_http_hris_write_answered(ngx_http_hris_write_t *w,
    ngx_http_hris_call_t *call)
{
    ngx_uint_t           throttled;
    ngx_http_request_t  *r = w->request;
    ngx_str_t           *provider = &w->account->table->name;

    throttled = call->result == NGX_HTTP_HRIS_CALL_RATE_LIMITED
                || (call->result == NGX_HTTP_HRIS_CALL_OK
                    && (call->status == 429
                        || (call->status == 503 && call->retry_after >= 0)));

    /*
     * The provider may have carried the write out: the answer is kept for
     * an Idempotency-Key, whatever it is. Not when it certainly did not
     * (unreachable, throttled, nothing sent): the key may be used again.
     */
    ngx_http_hris_idem_keep(r, call->unknown
                               || call->result == NGX_HTTP_HRIS_CALL_TOO_LARGE
                               || (call->result == NGX_HTTP_HRIS_CALL_OK
                                   && !throttled));

    if (call->unknown) {
        return ngx_http_hris_write_unknown(w, call, NULL);
    }

    if (call->result == NGX_HTTP_HRIS_CALL_TOO_LARGE) {
        return ngx_http_hris_write_unknown(w, call, "answered with more than "
                                           "hris_max_response_size");
    }

    if (call->result != NGX_HTTP_HRIS_CALL_OK || throttled
        || call->status == 401)
    {
        return ngx_http_hris_call_status_error(r, call, w->account->table);
    }

    if (call->status >= 200 && call->status <= 299) {
        return ngx_http_hris_write_succeeded(w, call);
    }

    if (call->status == 404 && w->wop->kind != NGX_HTTP_HRIS_WRITE_CREATE) {
        return ngx_http_hris_send_error(r, NGX_HTTP_NOT_FOUND,
                   json_pack("{s:s%,s:s%,s:s%,s:i}", "provider",
                             provider->data, provider->len, "resource",
                             w->res->name.data, w->res->name.len, "id",
                             w->id.data, w->id.len, "upstream_status", 404),
                   "no %V record with id \"%V\" in integrated account \"%V\" "
                   "(the provider answered 404)", &w->res->name, &w->id,
                   &w->account->id);
    }

    if (call->status >= 500) {
        return ngx_http_hris_write_unknown(w, call, NULL);
    }

    if (call->status >= 400) {
        return ngx_http_hris_write_refused(w, call, NULL, NULL);
    }

    return ngx_http_hris_call_status_error(r, call, w->account->table);
}


/* 2xx: an error inside it after all, or the written record */

static ngx_int_t
ngx_http_hris_write_succeeded(ngx_http_hris_write_t *w,
    ngx_http_hris_call_t *call)
{
    json_t                       *body, *rec, *mapped, *id;
    ngx_int_t                     rc;
    ngx_str_t                     code, msg;
    ngx_uint_t                    http, failed;
    ngx_http_hris_write_op_t     *wop = w->wop;
    ngx_http_request_t           *r = w->request;
    ngx_http_hris_body_errors_t  *be = &w->account->table->body_errors;

    body = ngx_http_hris_write_parse(w, call, &failed);

    if (failed && (wop->has_records || wop->has_id_path)) {
        return ngx_http_hris_write_unknown(w, call, "answered 2xx with a body "
                                           "that is not the JSON expected");
    }

    http = body ? ngx_http_hris_body_status(r->pool, be, body) : 0;

    if (http && (http < 200 || http > 299)) {
        /* the provider's code and message, for the refusal */
        if (ngx_http_hris_json_text(r->pool,
                ngx_http_hris_path_get(&be->status, body, NULL), &code)
            != NGX_OK
            || ngx_http_hris_json_text(r->pool,
                   ngx_http_hris_path_get(&be->message, body, NULL), &msg)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (http == NGX_HTTP_UNAUTHORIZED || http == 429) {
            call->status = http;
            call->retry_after = -1;
            return ngx_http_hris_call_status_error(r, call, w->account->table);
        }

        return ngx_http_hris_write_refused(w, call, &code, &msg);
    }

    if (wop->kind == NGX_HTTP_HRIS_WRITE_DELETE) {
        rec = json_pack("{s:s%}", "id", w->id.data, w->id.len);
        return ngx_http_hris_write_send_record(w, rec, NULL);
    }

    rc = ngx_http_hris_write_new_id(w, call, body);
    if (rc != NGX_OK || r->header_sent) {
        return rc;
    }

    rec = wop->has_records && body
          ? ngx_http_hris_path_get(&wop->records, body, NULL) : NULL;

    if (json_is_array(rec)) {
        rec = ngx_http_hris_write_pick(w, wop->fields, rec);
    }

    if (json_is_object(rec) && json_object_size(rec)) {
        mapped = ngx_http_hris_record_map(wop->fields, rec, NULL,
                                          w->remote_data, NULL);
        if (mapped == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        id = json_object_get(mapped, "id");

        if (w->id.len == 0 && json_is_string(id)
            && ngx_http_hris_json_text(r->pool, id, &w->id) != NGX_OK)
        {
            json_decref(mapped);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* the record the write answered is the one written: done */
        if (wop->then == NULL || w->id.len == 0) {
            return ngx_http_hris_write_send_record(w, mapped, NULL);
        }

        json_decref(mapped);
    }

    if (wop->then == NULL || w->id.len == 0) {
        return ngx_http_hris_write_send_record(w, NULL,
                   "the provider's answer holds neither the record nor "
                   "its id");
    }

    /* the answer does not hold the record: read it back */
    w->reading = 1;
    w->gate.renewed = 0;

    return ngx_http_hris_write_call(w);
}


/*
 * The new record's id: a header (Location: .../employees/121) through the
 * table's regex, or a pointer into the answer. Update and delete know it.
 */

static ngx_int_t
ngx_http_hris_write_new_id(ngx_http_hris_write_t *w,
    ngx_http_hris_call_t *call, json_t *body)
{
    int                        caps[6];
    ngx_int_t                  n;
    ngx_uint_t                 i;
    ngx_str_t                  value;
    ngx_keyval_t              *kv;
    ngx_http_hris_write_op_t  *wop = w->wop;
    ngx_pool_t                *pool = w->request->pool;

    if (wop->kind != NGX_HTTP_HRIS_WRITE_CREATE) {
        return NGX_OK;
    }

    if (wop->has_id_path && body) {
        return ngx_http_hris_json_text(pool,
                   ngx_http_hris_path_get(&wop->id_path, body, NULL), &w->id)
               == NGX_OK ? NGX_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (wop->id_header.len == 0) {
        return NGX_OK;
    }

    kv = call->headers_out.elts;
    ngx_str_null(&value);

    for (i = 0; kv && i < call->headers_out.nelts; i++) {
        if (kv[i].key.len == wop->id_header.len
            && ngx_strncasecmp(kv[i].key.data, wop->id_header.data,
                               wop->id_header.len) == 0)
        {
            value = kv[i].value;
        }
    }

    if (value.len == 0 || wop->id_regex == NULL) {
        w->id = value;
        return NGX_OK;
    }

    n = ngx_regex_exec(wop->id_regex, &value, caps, 6);
    if (n < 0) {
        return NGX_OK;
    }

    i = (n > 1) ? 2 : 0;
    w->id.data = value.data + caps[i];
    w->id.len = caps[i + 1] - caps[i];

    return NGX_OK;
}


/* The read back answered: the record, or the write's success without it */

static ngx_int_t
ngx_http_hris_write_read_done(ngx_http_hris_write_t *w,
    ngx_http_hris_call_t *call)
{
    json_t              *body, *rec, *mapped;
    ngx_uint_t           failed, http;
    ngx_http_hris_op_t  *op = w->op;

    if (call->result != NGX_HTTP_HRIS_CALL_OK
        || call->status < 200 || call->status > 299)
    {
        return ngx_http_hris_write_send_record(w, NULL,
                   "the write was carried out, but reading the record back "
                   "failed");
    }

    body = ngx_http_hris_write_parse(w, call, &failed);
    http = body ? ngx_http_hris_body_status(w->request->pool,
                                            &w->account->table->body_errors,
                                            body)
                : 0;

    if (body == NULL || (http && (http < 200 || http > 299))) {
        return ngx_http_hris_write_send_record(w, NULL,
                   "the write was carried out, but the provider's answer to "
                   "reading the record back is not usable");
    }

    rec = ngx_http_hris_path_get(&op->records, body, NULL);

    if (json_is_array(rec)) {
        rec = ngx_http_hris_write_pick(w, w->wop->then_fields, rec);
    }

    if (!json_is_object(rec)) {
        return ngx_http_hris_write_send_record(w, NULL,
                   "the write was carried out, but reading the record back "
                   "did not find it");
    }

    /* in a read of its own, "$parent" is the body the write sent */
    mapped = ngx_http_hris_record_map(w->wop->then_fields, rec, w->sent,
                                      w->remote_data, NULL);
    if (mapped == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_hris_write_send_record(w, mapped, NULL);
}


/* Of several records, the one whose mapped id is the written one. */

static json_t *
ngx_http_hris_write_pick(ngx_http_hris_write_t *w, ngx_array_t *fields,
    json_t *list)
{
    json_t                 *rec, *id;
    size_t                  i;
    ngx_uint_t              j, same;
    ngx_http_hris_field_t  *f;

    f = fields->elts;

    for (j = 0; j < fields->nelts; j++) {
        if (ngx_strcmp(f[j].name.data, "id") == 0) {
            break;
        }
    }

    if (j == fields->nelts || f[j].expr == NULL || w->id.len == 0) {
        return json_array_get(list, 0);
    }

    json_array_foreach(list, i, rec) {
        id = ngx_http_hris_expr_eval(f[j].expr, rec, w->sent);
        if (id == NULL) {
            return NULL;
        }

        same = json_is_string(id) && json_string_length(id) == w->id.len
               && ngx_strncmp(json_string_value(id), w->id.data,
                              w->id.len) == 0;
        json_decref(id);

        if (same) {
            return rec;
        }
    }

    return NULL;
}


/* An answer's JSON, or NULL: none (*failed 0) or unreadable (*failed 1). */

static json_t *
ngx_http_hris_write_parse(ngx_http_hris_write_t *w,
    ngx_http_hris_call_t *call, ngx_uint_t *failed)
{
    int          line, column;
    json_t      *body;
    const char  *perr;

    *failed = 0;

    if (call->resp_len == 0) {
        return NULL;
    }

    /* an answer that is not JSON (an HTML page) holds no record */
    if (call->content_type.len
        && ngx_strlcasestrn(call->content_type.data,
                            call->content_type.data + call->content_type.len,
                            (u_char *) "json", 4 - 1) == NULL)
    {
        *failed = 1;
        return NULL;
    }

    body = ngx_http_hris_parse(call->resp, call->resp_len, &line, &column,
                               &perr, NULL);

    if (body == NULL
        || ngx_http_hris_json_cleanup(w->request->pool, body) != NGX_OK)
    {
        json_decref(body);
        *failed = 1;
        return NULL;
    }

    return body;
}


/*
 * The answer: {"result": record} with 201 for a create, 200 otherwise.
 * Without a record (the write was carried out, its record could not be
 * had), the record's id and a warning: an error would make clients send
 * the write again.
 */

static ngx_int_t
ngx_http_hris_write_send_record(ngx_http_hris_write_t *w, json_t *record,
    const char *warning)
{
    json_t              *out, *empty;
    ngx_http_request_t  *r = w->request;

    if (record == NULL) {
        empty = json_object();
        record = empty ? ngx_http_hris_record_map(w->wop->fields, empty, NULL,
                                                  0, NULL)
                       : NULL;
        json_decref(empty);

        if (record == NULL
            || (w->id.len
                && (json_object_set_new(record, "id",
                                        json_stringn((char *) w->id.data,
                                                     w->id.len))
                    || json_object_set_new(record, "remote_id",
                                           json_stringn((char *) w->id.data,
                                                        w->id.len)))))
        {
            json_decref(record);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "hris: %s of %V \"%V\": %s",
                      ngx_http_hris_write_doing[w->wop->kind], &w->res->name,
                      &w->id, warning);
    }

    out = warning ? json_pack("{s:o,s:[s]}", "result", record, "warnings",
                              warning)
                  : json_pack("{s:o}", "result", record);
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_hris_json_cleanup(r->pool, out) != NGX_OK) {
        json_decref(out);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_hris_send_json(r,
               w->wop->kind == NGX_HTTP_HRIS_WRITE_CREATE ? NGX_HTTP_CREATED
                                                          : NGX_HTTP_OK,
               out, NULL);
}


/*
 * The write went out and what came back does not tell whether it was
 * carried out (no answer in time, a connection cut, a 5xx): it is not
 * sent again, and the client is told to check first.
 */

static ngx_int_t
ngx_http_hris_write_unknown(ngx_http_hris_write_t *w,
    ngx_http_hris_call_t *call, const char *what)
{
    ngx_uint_t  status;
    ngx_str_t  *name = &w->account->table->name;
    u_char      buf[128];

    if (what == NULL && call->result == NGX_HTTP_HRIS_CALL_OK) {
        ngx_snprintf(buf, sizeof(buf), "failed with %ui%Z", call->status);
        what = (const char *) buf;

    } else if (what == NULL) {
        what = call->result == NGX_HTTP_HRIS_CALL_TIMEOUT
               ? "did not answer in time" : "broke off without an answer";
    }

    status = (call->unknown || call->result == NGX_HTTP_HRIS_CALL_TIMEOUT)
             ? NGX_HTTP_GATEWAY_TIME_OUT : NGX_HTTP_BAD_GATEWAY;

    return ngx_http_hris_send_error(w->request, status,
               json_pack("{s:s%,s:i,s:i,s:s}", "provider", name->data,
                         name->len, "upstream_status", (int) call->status,
                         "attempts", (int) call->attempts,
                         "outcome", "unknown"),
               "the provider at %V took the request to %s %V but %s; it was "
               "not sent again, and whether the provider carried it out is "
               "unknown: check before sending it again",
               ngx_http_hris_call_host(call),
               ngx_http_hris_write_doing[w->wop->kind], &w->res->name, what);
}


/*
 * The provider refused the write: 422 with its status and message (from
 * the table's message headers or pointers, or its error inside a 2xx).
 */

static ngx_int_t
ngx_http_hris_write_refused(ngx_http_hris_write_t *w,
    ngx_http_hris_call_t *call, ngx_str_t *code, ngx_str_t *msg)
{
    json_t     *details, *v;
    ngx_int_t   rc;
    ngx_str_t  *name = &w->account->table->name;

    if (code == NULL) {
        /* the table's own way to find the message: the read path's */
        return ngx_http_hris_call_status_error(w->request, call,
                                               w->account->table);
    }

    details = json_pack("{s:s%,s:i,s:s%,s:s%}", "provider", name->data,
                        name->len, "upstream_status", (int) call->status,
                        "upstream_code", code->data, code->len,
                        "upstream_message", msg->data,
                        ngx_min(msg->len, 500));

    v = json_object_get(details, "upstream_code");
    if (v && json_string_length(v) == 0) {
        json_object_del(details, "upstream_code");
    }

    rc = ngx_http_hris_send_error(w->request, 422, details,
             "the provider refused to %s the %V record (error %V inside its "
             "%ui answer)%s%V", ngx_http_hris_write_doing[w->wop->kind],
             &w->res->name, code, call->status, msg->len ? ": " : "", msg);

    return rc;
}


/*
 * GET /unified/hris/{resource}/meta: what this account's provider can
 * write for the resource.
 */

ngx_int_t
ngx_http_hris_meta_handler(ngx_http_hris_ctx_t *ctx, ngx_str_t *name)
{
    json_t              *out, *ops;
    u_char              *p, *end;
    ngx_http_request_t  *r = ctx->request;
    ngx_str_t           *provider = &ctx->account->table->name;

    /* integrated_account_id only */
    for (p = r->args.data, end = p + r->args.len; p < end; /* void */) {
        u_char  *amp = ngx_strlchr(p, end, '&');
        amp = amp ? amp : end;

        if (amp > p
            && !((size_t) (amp - p) > sizeof("integrated_account_id") - 1
                 && ngx_strncmp(p, "integrated_account_id=",
                                sizeof("integrated_account_id")) == 0))
        {
            return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                       "the meta of a resource takes integrated_account_id "
                       "only");
        }

        p = amp + 1;
    }

    ops = ngx_http_hris_write_meta(ctx->res);

    out = json_pack("{s:{s:s%,s:s%,s:s%,s:o}}", "result",
                    "resource", name->data, name->len,
                    "provider", provider->data, provider->len,
                    "integrated_account_id", ctx->account->id.data,
                    ctx->account->id.len,
                    "operations", ops ? ops : json_object());
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_hris_json_cleanup(r->pool, out) != NGX_OK) {
        json_decref(out);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_hris_send_json(r, NGX_HTTP_OK, out, NULL);
}

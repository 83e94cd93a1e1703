/*
 * Walking the provider's data for one unified page.
 *
 * Each upstream call passes the gate (token, rate limit), then its answer
 * is checked (statuses meaning "no records", errors inside a 2xx body),
 * its records selected, mapped and added to the page. The position in the
 * provider's data (ngx_http_hris_pos_t) moves the way the operation
 * paginates: none (the gateway slices), cursor, offset or page number.
 * With "for_each" the same operation runs once per value (constants, or a
 * field of every record of a parent list), a few calls per unified page,
 * and the position remembers which value it stopped at.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_unified.h"
#include "ngx_http_hris_record.h"


static ngx_int_t ngx_http_hris_walk_call(ngx_http_hris_ctx_t *ctx,
    ngx_http_hris_op_t *op);
static void ngx_http_hris_walk_gated(ngx_http_hris_gate_t *g);
static ngx_int_t ngx_http_hris_walk_send(ngx_http_hris_ctx_t *ctx);
static ngx_int_t ngx_http_hris_walk_url(ngx_http_hris_ctx_t *ctx,
    ngx_http_hris_call_t *call, ngx_http_hris_tpl_vars_t *vars);
static ngx_int_t ngx_http_hris_walk_body(ngx_http_hris_ctx_t *ctx,
    ngx_http_hris_call_t *call, ngx_http_hris_tpl_vars_t *vars);
static void ngx_http_hris_walk_done(ngx_http_hris_call_t *call);
static void ngx_http_hris_walk_parsed(ngx_http_hris_call_t *call);
static ngx_int_t ngx_http_hris_walk_answer(ngx_http_hris_ctx_t *ctx,
    ngx_http_hris_call_t *call);
static ngx_int_t ngx_http_hris_walk_body_error(ngx_http_hris_ctx_t *ctx,
    ngx_http_hris_call_t *call, json_t *body, ngx_uint_t *empty);
static ngx_int_t ngx_http_hris_walk_records(ngx_http_hris_ctx_t *ctx,
    json_t *body, ngx_http_hris_slots_t *slots, ngx_array_t *recs,
    ngx_uint_t *raw);
static ngx_uint_t ngx_http_hris_walk_keep(ngx_http_hris_op_t *op,
    json_t *rec);
static ngx_uint_t ngx_http_hris_walk_alone(ngx_http_hris_ctx_t *ctx);
static ngx_http_hris_slots_t *ngx_http_hris_walk_slots(
    ngx_http_hris_ctx_t *ctx, ngx_http_hris_spans_t *spans);
static ngx_http_hris_select_t *ngx_http_hris_walk_select(
    ngx_http_hris_ctx_t *ctx);
static ngx_uint_t ngx_http_hris_walk_outside(ngx_http_hris_path_t *records,
    ngx_http_hris_path_t *path);
static ngx_int_t ngx_http_hris_walk_count(void *data, json_t *rec);
static ngx_int_t ngx_http_hris_walk_parents(ngx_http_hris_ctx_t *ctx,
    json_t *body, ngx_array_t *recs, ngx_uint_t raw);
static ngx_int_t ngx_http_hris_walk_take(ngx_http_hris_ctx_t *ctx,
    json_t *body, ngx_array_t *recs, ngx_uint_t raw);
static ngx_int_t ngx_http_hris_walk_find(ngx_http_hris_ctx_t *ctx,
    json_t *body, ngx_array_t *recs, ngx_uint_t raw);
static ngx_int_t ngx_http_hris_walk_next(ngx_http_hris_ctx_t *ctx,
    ngx_http_hris_op_t *op, ngx_http_hris_pos_t *pos, json_t *body,
    ngx_uint_t raw);
static ngx_int_t ngx_http_hris_walk_max_calls(ngx_http_hris_ctx_t *ctx);
static ngx_int_t ngx_http_hris_walk_max_bytes(ngx_http_hris_ctx_t *ctx,
    ngx_http_hris_call_t *call);
static ngx_int_t ngx_http_hris_walk_stuck(ngx_http_hris_ctx_t *ctx);
static json_t *ngx_http_hris_walk_parent(ngx_http_hris_ctx_t *ctx);
static void ngx_http_hris_walk_first_page(ngx_http_hris_ctx_t *ctx,
    ngx_http_hris_op_t *op, ngx_http_hris_pos_t *pos);
static void ngx_http_hris_walk_release(void *data);


#define ngx_http_hris_fetching_parents(ctx)                                  \
    ((ctx)->op->for_each && !(ctx)->has_values)


/*
 * Starts the walk. NGX_HTTP_HRIS_PENDING: under way, the request is
 * finalized when it ends. Anything else: the rc to finalize with now
 * (ngx_http_hris_unified.h).
 */

ngx_int_t
ngx_http_hris_walk_start(ngx_http_hris_ctx_t *ctx)
{
    json_t                    *v;
    size_t                     i;
    ngx_str_t                 *s;
    ngx_pool_cleanup_t        *cln;
    ngx_http_request_t        *r = ctx->request;
    ngx_http_hris_for_each_t  *fe = ctx->op->for_each;

    if (ngx_http_hris_heap_create(ctx) != NGX_OK
        || ngx_http_hris_gate_init(&ctx->gate, r, ctx->account) != NGX_OK
        || ngx_array_init(&ctx->values, r->pool, 16, sizeof(ngx_str_t))
           != NGX_OK
        || ngx_array_init(&ctx->parents, r->pool, 16, sizeof(json_t *))
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->gate.handler = ngx_http_hris_walk_gated;
    ctx->gate.data = ctx;

    /* the mapped records' values go with the pool, as the trees do */
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL
        || ngx_array_init(&ctx->result, r->pool, ngx_max(ctx->limit, 1),
                          sizeof(json_t **))
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_hris_walk_release;
    cln->data = ctx;

    if (fe == NULL) {
        return ngx_http_hris_walk_call(ctx, ctx->op);
    }

    if (fe->values) {
        json_array_foreach(fe->values, i, v) {
            s = ngx_array_push(&ctx->values);
            if (s == NULL
                || ngx_http_hris_json_text(r->pool, v, s) != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        ctx->has_values = 1;

        return ngx_http_hris_walk_call(ctx, ctx->op);
    }

    /* first the parent list, whose records give the values */
    return ngx_http_hris_walk_call(ctx,
                                   ctx->account->table->resources[fe->resource]
                                   ->list);
}


static ngx_int_t
ngx_http_hris_walk_call(ngx_http_hris_ctx_t *ctx, ngx_http_hris_op_t *op)
{
    ngx_int_t  rc;

    ctx->call_op = op;

    /* before the gate: a call not made takes no rate-limit slot */
    rc = ngx_http_hris_walk_max_calls(ctx);
    if (rc != NGX_OK || ctx->request->header_sent) {
        return rc;
    }

    rc = ngx_http_hris_gate_pass(&ctx->gate);

    switch (rc) {

    case NGX_OK:
        return ngx_http_hris_walk_send(ctx);

    case NGX_AGAIN:
        return NGX_HTTP_HRIS_PENDING;

    default:
        return ctx->gate.final;
    }
}


static void
ngx_http_hris_walk_gated(ngx_http_hris_gate_t *g)
{
    ngx_int_t             rc;
    ngx_http_hris_ctx_t  *ctx = g->data;

    rc = (g->rc == NGX_OK) ? ngx_http_hris_walk_send(ctx) : g->final;

    if (rc != NGX_HTTP_HRIS_PENDING) {
        ngx_http_finalize_request(ctx->request, rc);
    }
}


/* Builds the call of ctx->call_op at ctx->pos and starts it. */

static ngx_int_t
ngx_http_hris_walk_send(ngx_http_hris_ctx_t *ctx)
{
    u_char                    *p;
    ngx_str_t                 *each;
    ngx_http_hris_pos_t       *pos;
    ngx_http_hris_call_t      *call;
    ngx_http_hris_tpl_vars_t   vars;
    ngx_http_hris_op_t        *op = ctx->call_op;
    ngx_http_request_t        *r = ctx->request;

    call = ngx_http_hris_call_create(r, &ctx->hlcf->upstream);
    if (call == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&vars, sizeof(ngx_http_hris_tpl_vars_t));
    ngx_http_hris_gate_vars(&ctx->gate, &vars);

    vars.filters = &ctx->filters;
    vars.id = ctx->id;

    /* the parent list is walked with pages as large as it allows */
    pos = ngx_http_hris_fetching_parents(ctx) ? &ctx->ppos : &ctx->pos;

    ngx_http_hris_walk_first_page(ctx, op, pos);

    p = ngx_pnalloc(r->pool, 3 * NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    vars.page_limit.data = p;
    p = ngx_sprintf(p, "%ui", pos->size);
    vars.page_limit.len = p - vars.page_limit.data;

    vars.page_offset.data = p;
    vars.page_number.data = p;
    p = ngx_sprintf(p, "%ui", pos->page);
    vars.page_offset.len = p - vars.page_offset.data;
    vars.page_number.len = vars.page_offset.len;

    vars.page_cursor = pos->cursor;

    if (ctx->has_values) {
        each = ctx->values.elts;
        vars.each = each[ctx->pos.each];
    }

    if (ngx_http_hris_walk_url(ctx, call, &vars) != NGX_OK
        || ngx_http_hris_walk_body(ctx, call, &vars) != NGX_OK
        || ngx_http_hris_apply_auth(call, ctx->account, &vars) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    call->method = op->method;
    call->idempotent = 1;       /* a read, even over POST (RPC providers) */
    call->keep_headers = 1;
    call->handler = ngx_http_hris_walk_done;
    call->data = ctx;

    if (ngx_http_hris_call_start(call) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->calls++;
    ctx->total_calls++;

    return NGX_HTTP_HRIS_PENDING;
}


/* A new position starts at the operation's first page. */

static void
ngx_http_hris_walk_first_page(ngx_http_hris_ctx_t *ctx,
    ngx_http_hris_op_t *op, ngx_http_hris_pos_t *pos)
{
    if (pos->started) {
        return;
    }

    pos->size = ngx_min(ctx->limit, op->max_limit);
    pos->page = (op->page_type == NGX_HTTP_HRIS_PAGE_NUMBER)
                ? op->page_first : 0;
    pos->started = 1;

    /* parents, and a get through the list: the largest pages there are */
    if (ctx->id_expr || pos == &ctx->ppos) {
        pos->size = op->max_limit;
    }
}


/* {base_url}{path}?{query}: a parameter that renders empty is left out */

static ngx_int_t
ngx_http_hris_walk_url(ngx_http_hris_ctx_t *ctx, ngx_http_hris_call_t *call,
    ngx_http_hris_tpl_vars_t *vars)
{
    u_char                 *p;
    size_t                  len;
    ngx_str_t               path, *values;
    ngx_uint_t              i, n;
    ngx_array_t            *query;
    ngx_http_hris_param_t  *q;
    ngx_http_request_t     *r = ctx->request;
    ngx_http_hris_op_t     *op = ctx->call_op;

    if (ngx_http_hris_tpl_render(r->pool, op->path, vars, 1, &path)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* with field batches, the query names this call's share of fields */
    query = ngx_http_hris_batch_query(ctx, op);
    n = query->nelts;
    q = query->elts;

    values = ngx_palloc(r->pool, (n + 1) * sizeof(ngx_str_t));
    if (values == NULL) {
        return NGX_ERROR;
    }

    len = ctx->account->base_url.len + path.len + 2;

    for (i = 0; i < n; i++) {
        if (ngx_http_hris_tpl_render(r->pool, q[i].value, vars, 1,
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

    return NGX_OK;
}


/* The operation's JSON body, with body-carried credentials merged in. */

static ngx_int_t
ngx_http_hris_walk_body(ngx_http_hris_ctx_t *ctx, ngx_http_hris_call_t *call,
    ngx_http_hris_tpl_vars_t *vars)
{
    char                   *text;
    json_t                 *body;
    ngx_str_t               name, value;
    ngx_http_request_t     *r = ctx->request;

    if (ctx->call_op->body == NULL) {
        return NGX_OK;
    }

    body = ngx_http_hris_body_render(r->pool, ctx->call_op->body, vars);
    if (body == NULL) {
        return NGX_ERROR;
    }

    if (ctx->account->auth->type == NGX_HTTP_HRIS_AUTH_BODY
        && ngx_http_hris_body_merge(r->pool, body, ctx->account->auth->body,
                                    vars)
           != NGX_OK)
    {
        json_decref(body);
        return NGX_ERROR;
    }

    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);

    if (text == NULL) {
        return NGX_ERROR;
    }

    call->body.len = ngx_strlen(text);
    call->body.data = ngx_pnalloc(r->pool, call->body.len);
    if (call->body.data == NULL) {
        free(text);
        return NGX_ERROR;
    }

    ngx_memcpy(call->body.data, text, call->body.len);
    free(text);

    ngx_str_set(&name, "Content-Type");
    ngx_str_set(&value, "application/json");

    return ngx_http_hris_call_header(call, &name, &value);
}


static void
ngx_http_hris_walk_done(ngx_http_hris_call_t *call)
{
    ngx_int_t              rc;
    ngx_http_hris_ctx_t   *ctx = call->data;

    ngx_http_hris_gate_answered(&ctx->gate, call);

    /* the 502 it may send usually returns NGX_OK: see header_sent */
    rc = ngx_http_hris_walk_max_bytes(ctx, call);
    if (rc != NGX_OK || ctx->request->header_sent) {
        ngx_http_finalize_request(ctx->request, rc);
        return;
    }

    /* a refused token is renewed once, then the call made again */
    if (call->result == NGX_HTTP_HRIS_CALL_OK && !ctx->gate.renewed
        && ngx_http_hris_token_refused(ctx->account->auth, call->status))
    {
        ngx_http_hris_gate_refused(&ctx->gate);
        ctx->gate.renewed = 1;
        ctx->calls--;
        rc = ngx_http_hris_walk_call(ctx, ctx->call_op);

    } else {
        rc = ngx_http_hris_walk_answer(ctx, call);
    }

    if (rc != NGX_HTTP_HRIS_PENDING) {
        ngx_http_finalize_request(ctx->request, rc);
    }
}


/* A huge answer was parsed by a thread: the walk goes on from there. */

static void
ngx_http_hris_walk_parsed(ngx_http_hris_call_t *call)
{
    ngx_int_t             rc;
    ngx_http_hris_ctx_t  *ctx = call->data;

    rc = ngx_http_hris_walk_answer(ctx, call);

    if (rc != NGX_HTTP_HRIS_PENDING) {
        ngx_http_finalize_request(ctx->request, rc);
    }
}


/*
 * An answer arrived: checked, parsed (a huge one by a thread, which
 * comes back here with call->parsed set), then its records taken.
 */

static ngx_int_t
ngx_http_hris_walk_answer(ngx_http_hris_ctx_t *ctx,
    ngx_http_hris_call_t *call)
{
    json_t                 *body;
    ngx_int_t               rc;
    ngx_uint_t              i, empty, raw, *st;
    ngx_array_t             recs;
    ngx_http_request_t     *r = ctx->request;
    ngx_http_hris_op_t     *op = ctx->call_op;
    ngx_http_hris_spans_t  *spans;

    empty = 0;
    body = NULL;

    if (call->result == NGX_HTTP_HRIS_CALL_OK) {
        st = op->empty.elts;
        for (i = 0; i < op->empty.nelts; i++) {
            if (st[i] == call->status) {
                empty = 1;
            }
        }
    }

    if (!empty && call->result == NGX_HTTP_HRIS_CALL_OK
        && call->status == 404 && ctx->is_get && ctx->op == ctx->res->get)
    {
        return ngx_http_hris_not_found(ctx);
    }

    if (!empty && (call->result != NGX_HTTP_HRIS_CALL_OK
                   || call->status < 200 || call->status > 299))
    {
        return ngx_http_hris_call_status_error(r, call, ctx->account->table);
    }

    if (!empty) {
        /*
         * the spans serve remote_data only; records merged from field
         * batches are not the provider's bytes of any one answer
         */
        spans = (ctx->remote_data && !op->batches) ? ctx->spans : NULL;

        if (!call->parsed) {
            ctx->select = ngx_http_hris_walk_select(ctx);

            rc = ngx_http_hris_offload_parse(ctx, call, spans,
                                             ngx_http_hris_walk_parsed);
            if (rc == NGX_OK) {
                return NGX_HTTP_HRIS_PENDING;
            }

            if (rc == NGX_ERROR) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        if (!call->parsed) {
            call->slots = ngx_http_hris_walk_slots(ctx, spans);
        }

        rc = ngx_http_hris_upstream_json(r, call, &body, spans);
        if (body == NULL) {
            return rc;
        }

        /* the heap holds the trees (a thread's parse put it there) */
        if (!call->parsed) {
            ctx->heap_bytes += call->resp_len;
            ctx->heap_arena = 1;

            if (ngx_http_hris_json_cleanup(ctx->heap, body) != NGX_OK) {
                json_decref(body);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        /* the error answer it sends usually returns NGX_OK */
        rc = ngx_http_hris_walk_body_error(ctx, call, body, &empty);
        if (rc != NGX_OK || r->header_sent) {
            return rc;
        }
    }

    /* field batches: the page's other calls, then their merged answer */
    rc = ngx_http_hris_batch_answer(ctx, &body, empty);
    if (rc == NGX_AGAIN) {
        return ngx_http_hris_walk_call(ctx, op);
    }

    if (rc != NGX_OK || r->header_sent) {
        return rc;
    }

    if (ngx_array_init(&recs, r->pool, 64, sizeof(ngx_http_hris_rec_t))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    raw = 0;

    if (!empty
        && ngx_http_hris_walk_records(ctx, body, call->slots, &recs, &raw)
           != NGX_OK)
    {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_GATEWAY,
                   json_pack("{s:s%}", "provider",
                             ctx->account->table->name.data,
                             ctx->account->table->name.len),
                   "the provider's answer has no records where the mapping "
                   "table expects them (%V)", &ctx->account->table->file);
    }

    if (ngx_http_hris_fetching_parents(ctx)) {
        return ngx_http_hris_walk_parents(ctx, body, &recs, raw);
    }

    if (ctx->id_expr) {
        return ngx_http_hris_walk_find(ctx, body, &recs, raw);
    }

    if (ctx->is_get) {
        if (recs.nelts == 0) {
            return ngx_http_hris_not_found(ctx);
        }

        ctx->found = ngx_http_hris_walk_map(ctx, recs.elts);
        if (ctx->found == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_hris_unified_finish(ctx);
    }

    return ngx_http_hris_walk_take(ctx, body, &recs, raw);
}


/*
 * A provider that says "failed" inside a 2xx answer (PeopleHR's isError):
 * the first matching rule tells what status it stands for. 204 means "no
 * records"; another 2xx, no error after all.
 */

static ngx_int_t
ngx_http_hris_walk_body_error(ngx_http_hris_ctx_t *ctx,
    ngx_http_hris_call_t *call, json_t *body, ngx_uint_t *empty)
{
    ngx_str_t                     a;
    ngx_uint_t                    http;
    ngx_http_hris_body_errors_t  *be = &ctx->account->table->body_errors;

    http = ngx_http_hris_body_status(ctx->request->pool, be, body);

    if (http == 0) {
        return NGX_OK;
    }

    if (http == NGX_HTTP_NO_CONTENT) {
        *empty = 1;
        return NGX_OK;
    }

    if (http >= 200 && http <= 299) {
        return NGX_OK;
    }

    if (http == NGX_HTTP_NOT_FOUND && ctx->is_get) {
        return ngx_http_hris_not_found(ctx);
    }

    if (ngx_http_hris_json_text(ctx->request->pool,
                                ngx_http_hris_path_get(&be->status, body,
                                                       NULL), &a)
        != NGX_OK)
    {
        ngx_str_set(&a, "?");
    }

    ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                  "hris: the provider reported error %V in a %ui answer: "
                  "handled as %ui", &a, call->status, http);

    call->status = http;
    call->retry_after = -1;

    return ngx_http_hris_call_status_error(ctx->request, call,
                                           ctx->account->table);
}


/*
 * The operation's records: the array at "records" (one object counts as
 * one record; nothing there counts as none), kept by "where", each
 * expanded by "unnest". *raw counts the records before selection, which
 * is what offsets count.
 */

static ngx_int_t
ngx_http_hris_walk_records(ngx_http_hris_ctx_t *ctx, json_t *body,
    ngx_http_hris_slots_t *slots, ngx_array_t *recs, ngx_uint_t *raw)
{
    json_t                    *list, *rec, *inner, *child, *parent;
    size_t                     i, k;
    ngx_http_hris_rec_t       *e;
    ngx_http_hris_op_t        *op = ctx->call_op;
    ngx_http_hris_select_t    *sel;
    ngx_http_hris_slot_rec_t **slot;

    list = ngx_http_hris_path_get(&op->records, body, NULL);

    if (list == NULL || json_is_null(list)) {
        *raw = 0;
        return NGX_OK;
    }

    parent = ngx_http_hris_fetching_parents(ctx)
             ? NULL : ngx_http_hris_walk_parent(ctx);

    if (json_is_object(list)) {
        e = ngx_array_push(recs);
        if (e == NULL) {
            return NGX_ERROR;
        }
        e->record = list;
        e->parent = parent;
        e->slot = NULL;
        *raw = 1;
        return NGX_OK;
    }

    if (!json_is_array(list)) {
        return NGX_ERROR;
    }

    /* a huge answer's array, parsed selectively: the page's part of it */
    sel = ctx->select;

    if (sel && sel->list != list) {
        sel = NULL;
    }

    *raw = sel ? sel->raw : json_array_size(list);

    /*
     * The records before the part kept stand in as empty entries, so that
     * positions (pos.skip) count as in the whole array; walk_take() maps
     * only from pos.skip on, which is inside the part kept.
     */
    for (i = 0; sel && i < sel->offset; i++) {
        e = ngx_array_push(recs);
        if (e == NULL) {
            return NGX_ERROR;
        }
        e->record = NULL;
        e->parent = NULL;
        e->slot = NULL;
    }

    /* the objects of a slots parse's array (walk_slots(): no "where") */
    slot = (slots && slots->list == list) ? slots->recs.elts : NULL;

    json_array_foreach(list, i, rec) {
        if (!ngx_http_hris_walk_keep(op, rec)) {
            continue;
        }

        if (!op->has_unnest) {
            e = ngx_array_push(recs);
            if (e == NULL) {
                return NGX_ERROR;
            }
            e->record = rec;
            e->parent = parent;
            e->slot = slot ? slot[i] : NULL;
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
            e->slot = NULL;
        }
    }

    /* records after the part kept: one entry says so (the page is full) */
    if (sel && sel->more) {
        e = ngx_array_push(recs);
        if (e == NULL) {
            return NGX_ERROR;
        }
        e->record = NULL;
        e->parent = NULL;
        e->slot = NULL;
    }

    return NGX_OK;
}


/* "where": whether a record of the array is kept */

static ngx_uint_t
ngx_http_hris_walk_keep(ngx_http_hris_op_t *op, json_t *rec)
{
    json_t                 *v, *inner;
    size_t                  k;
    ngx_uint_t              j, keep;
    ngx_http_hris_where_t  *w;

    keep = 1;
    w = op->where.elts;

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

    return keep;
}


/*
 * Whether the walk reads the records array only for the records it maps
 * from pos.skip on (ngx_http_hris_walk_records()): not the parent list
 * nor a get, no field batches, no body error or page field inside it.
 */

static ngx_uint_t
ngx_http_hris_walk_alone(ngx_http_hris_ctx_t *ctx)
{
    ngx_http_hris_op_t           *op = ctx->call_op;
    ngx_http_hris_body_errors_t  *be = &ctx->account->table->body_errors;

    if (ngx_http_hris_fetching_parents(ctx) || ctx->id_expr || ctx->is_get
        || op->batches || op->records.parent)
    {
        return 0;
    }

    if ((op->page_type == NGX_HTTP_HRIS_PAGE_CURSOR
         && !ngx_http_hris_walk_outside(&op->records, &op->page_next))
        || (op->has_total
            && !ngx_http_hris_walk_outside(&op->records, &op->page_total))
        || (be->enabled
            && (!ngx_http_hris_walk_outside(&op->records, &be->when)
                || !ngx_http_hris_walk_outside(&op->records, &be->status)
                || !ngx_http_hris_walk_outside(&op->records,
                                               &be->message))))
    {
        return 0;
    }

    return 1;
}


/*
 * What the event loop's parse reads as slot records (ngx_http_hris_
 * parse.h): the records array's objects, when only the mapping reads
 * them (no "where" nor "unnest" either) and remote_data, if asked for,
 * comes from their spans. NULL: an ordinary tree.
 */

static ngx_http_hris_slots_t *
ngx_http_hris_walk_slots(ngx_http_hris_ctx_t *ctx,
    ngx_http_hris_spans_t *spans)
{
    ngx_uint_t                  i;
    ngx_http_hris_op_t         *op = ctx->call_op;
    ngx_http_hris_field_t      *f;
    ngx_http_hris_slots_t      *slots;
    ngx_http_hris_slot_keys_t  *keys;

    /* the slot numbers of the fields' paths: their table's compile */
    keys = NULL;
    f = ctx->fields->elts;

    for (i = 0; keys == NULL && i < ctx->fields->nelts; i++) {
        keys = f[i].expr ? ngx_http_hris_expr_slot_keys(f[i].expr) : NULL;
    }

    if (keys == NULL || !ngx_http_hris_walk_alone(ctx)
        || op->where.nelts || op->has_unnest
        || (ctx->remote_data && spans == NULL))
    {
        return NULL;
    }

    slots = ngx_pcalloc(ctx->request->pool, sizeof(ngx_http_hris_slots_t));
    if (slots == NULL) {
        return NULL;
    }

    slots->keys = op->records.tokens;
    slots->nkeys = op->records.n;
    slots->slot_keys = keys;
    slots->pool = ctx->request->pool;

    return slots;
}


/*
 * What a thread's parse of a huge answer builds (offload.c): of the
 * records array, only the elements whose records this page takes, when
 * nothing else of the walk reads the array (the parent list and a get
 * read all of it; body errors and page fields must lie outside it).
 * NULL: all of it.
 */

static ngx_http_hris_select_t *
ngx_http_hris_walk_select(ngx_http_hris_ctx_t *ctx)
{
    ngx_http_hris_op_t      *op = ctx->call_op;
    ngx_http_hris_select_t  *sel;

    if (!ngx_http_hris_walk_alone(ctx)) {
        return NULL;
    }

    sel = ngx_pcalloc(ctx->request->pool, sizeof(ngx_http_hris_select_t));
    if (sel == NULL) {
        return NULL;
    }

    sel->keys = op->records.tokens;
    sel->nkeys = op->records.n;
    /*
     * the whole page's worth from pos.skip: walk_take() maps at most what
     * the page still has room for (less after a fan-out's earlier calls),
     * and a record kept beyond it only says that more follow
     */
    sel->skip = ctx->pos.skip;
    sel->room = ngx_max(ctx->limit, 1);

    if (op->where.nelts || op->has_unnest) {
        sel->count = ngx_http_hris_walk_count;
        sel->data = op;
    }

    return sel;
}


/* whether path does not lead into (nor to) the records */

static ngx_uint_t
ngx_http_hris_walk_outside(ngx_http_hris_path_t *records,
    ngx_http_hris_path_t *path)
{
    ngx_uint_t  i;

    if (path->parent || path->n < records->n) {
        return 1;
    }

    for (i = 0; i < records->n; i++) {
        if (path->tokens[i].len != records->tokens[i].len
            || ngx_strncmp(path->tokens[i].data, records->tokens[i].data,
                           path->tokens[i].len) != 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * In the parsing thread: the records an element of the array yields, as
 * ngx_http_hris_walk_records() counts them. Reads only.
 */

static ngx_int_t
ngx_http_hris_walk_count(void *data, json_t *rec)
{
    json_t              *inner;
    ngx_http_hris_op_t  *op = data;

    if (!ngx_http_hris_walk_keep(op, rec)) {
        return 0;
    }

    if (!op->has_unnest) {
        return 1;
    }

    inner = ngx_http_hris_path_get(&op->unnest, rec, NULL);

    return json_is_array(inner) ? (ngx_int_t) json_array_size(inner) : 0;
}


/* The parent record of the current for_each value, if any. */

static json_t *
ngx_http_hris_walk_parent(ngx_http_hris_ctx_t *ctx)
{
    json_t  **p;

    if (ctx->parents.nelts == 0 || ctx->pos.each >= ctx->parents.nelts) {
        return NULL;
    }

    p = ctx->parents.elts;

    return p[ctx->pos.each];
}


/*
 * A page of the parent list arrived: its records give for_each values.
 * Every page of it is read before the first value is used, so that the
 * positions of values stay the same from one unified page to the next.
 */

static ngx_int_t
ngx_http_hris_walk_parents(ngx_http_hris_ctx_t *ctx, json_t *body,
    ngx_array_t *recs, ngx_uint_t raw)
{
    json_t                    *v, **p;
    ngx_str_t                 *s;
    ngx_uint_t                 i;
    ngx_http_hris_rec_t       *e;
    ngx_http_request_t        *r = ctx->request;
    ngx_http_hris_for_each_t  *fe = ctx->op->for_each;

    e = recs->elts;

    for (i = 0; i < recs->nelts; i++) {
        v = ngx_http_hris_path_get(&fe->value, e[i].record, e[i].parent);
        if (v == NULL || json_is_null(v)) {
            continue;
        }

        s = ngx_array_push(&ctx->values);
        p = ngx_array_push(&ctx->parents);
        if (s == NULL || p == NULL
            || ngx_http_hris_json_text(r->pool, v, s) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *p = e[i].record;
    }

    switch (ngx_http_hris_walk_next(ctx, ctx->call_op, &ctx->ppos, body, raw)) {

    case NGX_OK:
        return ngx_http_hris_walk_call(ctx, ctx->call_op);

    case NGX_ABORT:
        return ngx_http_hris_walk_stuck(ctx);

    default:
        break;
    }

    ctx->has_values = 1;
    ctx->calls = 0;

    if (ctx->pos.each >= ctx->values.nelts) {
        ctx->more = 0;
        return ngx_http_hris_unified_finish(ctx);
    }

    return ngx_http_hris_walk_call(ctx, ctx->op);
}


/*
 * Adds this upstream page's records to the unified page, then decides:
 * the page is full, the data ended, or one more upstream call.
 */

static ngx_int_t
ngx_http_hris_walk_take(ngx_http_hris_ctx_t *ctx, json_t *body,
    ngx_array_t *recs, ngx_uint_t raw)
{
    ngx_int_t   rc;
    ngx_uint_t  from, room, to;

    room = ctx->limit - ctx->result.nelts;
    from = ngx_min(ctx->pos.skip, recs->nelts);
    to = ngx_min(from + room, recs->nelts);

    /* a large page is mapped in slices between events (slice.c) */
    rc = ngx_http_hris_slice_map(ctx, body, recs, raw, from, to);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_hris_walk_took(ctx, body, recs, raw, to);
}


/* The records up to "to" of this upstream page are in the unified page. */

ngx_int_t
ngx_http_hris_walk_took(ngx_http_hris_ctx_t *ctx, json_t *body,
    ngx_array_t *recs, ngx_uint_t raw, ngx_uint_t to)
{
    ngx_int_t            rc;
    ngx_http_hris_op_t  *op = ctx->op;

    if (to < recs->nelts) {
        /* the page is full inside this upstream page: resume here */
        ctx->pos.skip = to;
        ctx->more = 1;
        return ngx_http_hris_unified_finish(ctx);
    }

    rc = ngx_http_hris_walk_next(ctx, op, &ctx->pos, body, raw);
    if (rc == NGX_ABORT) {
        return ngx_http_hris_walk_stuck(ctx);
    }

    ctx->more = (rc == NGX_OK);

    if (!ctx->more && op->for_each
        && ctx->pos.each + 1 < ctx->values.nelts)
    {
        /* this value is done: the next one starts at its first page */
        ctx->pos.each++;
        ctx->pos.started = 0;
        ctx->pos.skip = 0;
        ngx_str_null(&ctx->pos.cursor);
        ctx->more = 1;
    }

    if (!ctx->more || ctx->result.nelts >= ctx->limit
        || op->for_each == NULL || ctx->calls >= op->for_each->max_calls)
    {
        return ngx_http_hris_unified_finish(ctx);
    }

    return ngx_http_hris_walk_call(ctx, op);
}


/* A get through the list: this page, then the next, until it is found. */

static ngx_int_t
ngx_http_hris_walk_find(ngx_http_hris_ctx_t *ctx, json_t *body,
    ngx_array_t *recs, ngx_uint_t raw)
{
    json_t               *id;
    ngx_uint_t            i, found;
    ngx_http_hris_rec_t  *e;

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
            ctx->found = ngx_http_hris_walk_map(ctx, &e[i]);
            if (ctx->found == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ngx_http_hris_unified_finish(ctx);
        }
    }

    switch (ngx_http_hris_walk_next(ctx, ctx->op, &ctx->pos, body, raw)) {

    case NGX_OK:
        return ngx_http_hris_walk_call(ctx, ctx->op);

    case NGX_ABORT:
        return ngx_http_hris_walk_stuck(ctx);

    default:
        break;
    }

    if (ctx->op->for_each && ctx->pos.each + 1 < ctx->values.nelts) {
        ctx->pos.each++;
        ctx->pos.started = 0;
        ngx_str_null(&ctx->pos.cursor);
        return ngx_http_hris_walk_call(ctx, ctx->op);
    }

    return ngx_http_hris_not_found(ctx);
}


/*
 * Moves the position to the operation's next upstream page: NGX_OK, or
 * NGX_DECLINED at the end (without a total, a short page is the last
 * one), or NGX_ABORT when the provider's cursor did not move.
 */

static ngx_int_t
ngx_http_hris_walk_next(ngx_http_hris_ctx_t *ctx, ngx_http_hris_op_t *op,
    ngx_http_hris_pos_t *pos, json_t *body, ngx_uint_t raw)
{
    json_t      *v;
    ngx_str_t    s;
    ngx_uint_t   more;

    pos->skip = 0;

    switch (op->page_type) {

    case NGX_HTTP_HRIS_PAGE_CURSOR:
        v = ngx_http_hris_path_get(&op->page_next, body, NULL);
        if (ngx_http_hris_json_text(ctx->request->pool, v, &s) != NGX_OK
            || s.len == 0)
        {
            return NGX_DECLINED;
        }

        /* the page it was asked for, once more: it would never end */
        if (s.len == pos->cursor.len
            && ngx_strncmp(s.data, pos->cursor.data, s.len) == 0)
        {
            return NGX_ABORT;
        }

        pos->cursor = s;
        return NGX_OK;

    case NGX_HTTP_HRIS_PAGE_OFFSET:
    case NGX_HTTP_HRIS_PAGE_NUMBER:
        if (raw == 0) {
            return NGX_DECLINED;
        }

        if (op->has_total) {
            v = ngx_http_hris_path_get(&op->page_total, body, NULL);
            if (!json_is_integer(v)) {
                more = (raw >= pos->size);

            } else if (op->page_type == NGX_HTTP_HRIS_PAGE_OFFSET) {
                more = pos->page + raw
                       < (ngx_uint_t) json_integer_value(v);

            } else {
                more = pos->page - op->page_first + 1
                       < (ngx_uint_t) json_integer_value(v);
            }

        } else {
            more = (raw >= pos->size);
        }

        if (more) {
            pos->page += (op->page_type == NGX_HTTP_HRIS_PAGE_OFFSET)
                             ? raw : 1;
        }

        return more ? NGX_OK : NGX_DECLINED;

    default:
        return NGX_DECLINED;
    }
}


/*
 * What one unified request may take from the provider: one that always
 * has a next page must neither be called without end nor have all its
 * pages held in memory. NGX_OK to go on, or the rc of the 502 answered.
 */

static ngx_int_t
ngx_http_hris_walk_max_calls(ngx_http_hris_ctx_t *ctx)
{
    ngx_http_hris_table_t  *t = ctx->account->table;

    if (ctx->total_calls < ctx->hlcf->max_calls) {
        return NGX_OK;
    }

    return ngx_http_hris_send_error(ctx->request, NGX_HTTP_BAD_GATEWAY,
               json_pack("{s:s%,s:i}", "provider", t->name.data, t->name.len,
                         "upstream_calls", (int) ctx->total_calls),
               "the provider's pages did not end after %ui upstream calls, "
               "the most one unified request may make "
               "(hris_max_upstream_calls)", ctx->total_calls);
}


/* the answers read so far, all kept until the request answers */

static ngx_int_t
ngx_http_hris_walk_max_bytes(ngx_http_hris_ctx_t *ctx,
    ngx_http_hris_call_t *call)
{
    size_t                  max;
    ngx_http_hris_table_t  *t = ctx->account->table;

    /* a failed call keeps nothing; one answer alone is held to the limit
     * by the call itself */
    if (call->result != NGX_HTTP_HRIS_CALL_OK) {
        return NGX_OK;
    }

    max = ctx->hlcf->upstream.max_response;
    ctx->total_bytes += call->resp_len;

    if (ctx->total_bytes <= max) {
        return NGX_OK;
    }

    return ngx_http_hris_send_error(ctx->request, NGX_HTTP_BAD_GATEWAY,
               json_pack("{s:s%,s:i}", "provider", t->name.data, t->name.len,
                         "upstream_calls", (int) ctx->total_calls),
               "the provider's answers to one unified request add up to "
               "more than hris_max_response_size (%uz bytes) after %ui "
               "upstream calls", max, ctx->total_calls);
}


static ngx_int_t
ngx_http_hris_walk_stuck(ngx_http_hris_ctx_t *ctx)
{
    ngx_http_hris_table_t  *t = ctx->account->table;

    return ngx_http_hris_send_error(ctx->request, NGX_HTTP_BAD_GATEWAY,
               json_pack("{s:s%,s:i}", "provider", t->name.data, t->name.len,
                         "upstream_calls", (int) ctx->total_calls),
               "the provider answered with the same next-page cursor it was "
               "asked with: its pages do not advance");
}


/*
 * A record mapped into the page (ngx_http_hris_record.h): its values'
 * references are held until the request's pool goes.
 */

json_t **
ngx_http_hris_walk_map(ngx_http_hris_ctx_t *ctx, ngx_http_hris_rec_t *e)
{
    json_t      **values, ***slot;
    ngx_uint_t    arena_only;

    slot = ngx_array_push(&ctx->result);
    if (slot == NULL) {
        return NULL;
    }

    values = ngx_http_hris_record_values(ctx->request->pool, ctx->fields,
                                         e->record, e->parent, e->slot,
                                         ctx->remote_data, ctx->cover,
                                         &arena_only);
    if (values == NULL) {
        ctx->result.nelts--;
        return NULL;
    }

    /*
     * What the values hold: the record's nodes, pinned or in the arena;
     * nodes the mapping made, in the arena; the table's values, immortal
     * (ngx_http_hris_map.c). Their references need not be given back
     * then: the arena's chunks go with the pool. Anything else (a parent
     * of another answer, a tree of a thread, a node malloc() gave) and
     * every record is released one by one.
     */
    if (!(arena_only && e->slot && e->slot->pinned && e->parent == NULL)) {
        ctx->release = 1;
    }

    *slot = values;

    return values;
}


static void
ngx_http_hris_walk_release(void *data)
{
    ngx_http_hris_ctx_t *ctx = data;

    json_t      ***rec;
    ngx_uint_t     i;

    if (!ctx->release) {
        /* see ngx_http_hris_walk_map(): nothing to give back */
        return;
    }

    rec = ctx->result.elts;

    for (i = 0; i < ctx->result.nelts; i++) {
        ngx_http_hris_record_release(ctx->fields, rec[i]);
    }
}

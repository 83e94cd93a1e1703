/*
 * Field batches: a provider that returns only the fields a call names,
 * and takes at most so many of them in one call (BambooHR: 400), while
 * the mapping table (with its overrides' custom fields) names more.
 *
 * The table compiler has already split the list into n parameter values
 * of at most "max" fields (ngx_http_hris_table_op.c). For every upstream
 * page the walk makes the n calls one after another, each with the same
 * page position and another slice of the fields; the first answer is
 * kept, the records of each later one are merged into it, matched by
 * their "merge_on" value, and only then does the walk go on with the
 * merged answer as if it had been one. An answer that fails ends the
 * request with the usual error before anything is merged; answers that
 * disagree (another number of records, a record the first does not have)
 * end it with 502: a record is sent whole or not at all.
 *
 * One after another rather than at once through the worker's curl multi
 * handle: every call passes the gate (token, the account's rate limit,
 * which counts each of them) one at a time, a refused token is renewed
 * and the same call made again, and a page whose first call fails costs
 * no further calls. The price is latency: n round trips per upstream page
 * instead of one (n is 2 for up to 800 fields, at most
 * NGX_HTTP_HRIS_MAX_BATCHES).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_unified.h"


#define NGX_HTTP_HRIS_BATCH_KEY_MAX  64


static ngx_uint_t ngx_http_hris_batch_match(ngx_http_hris_batches_t *fb,
    json_t *a, size_t j, u_char *used, json_t *kb);
static ngx_int_t ngx_http_hris_batch_record(ngx_http_hris_batches_t *fb,
    json_t *into, json_t *from, const char **why, json_t **key);
static ngx_int_t ngx_http_hris_batch_disagree(ngx_http_hris_ctx_t *ctx,
    const char *why, json_t *key);


/* The query of the call to make: the operation's, or this batch's. */

ngx_array_t *
ngx_http_hris_batch_query(ngx_http_hris_ctx_t *ctx, ngx_http_hris_op_t *op)
{
    if (op->batches == NULL) {
        return &op->query;
    }

    return &op->batches->queries[ctx->batch];
}


/*
 * An answer of ctx->call_op arrived: *body, parsed, unless "empty" (a
 * status or a body that means "no records"). NGX_AGAIN: make the call of
 * the next batch. NGX_OK with the request not answered: go on with *body,
 * all batches merged into it. Anything else, or an answer sent: the rc
 * to return.
 */

ngx_int_t
ngx_http_hris_batch_answer(ngx_http_hris_ctx_t *ctx, json_t **body,
    ngx_uint_t empty)
{
    json_t                   *key, *records;
    ngx_int_t                 rc;
    const char               *why;
    ngx_http_hris_batches_t  *fb = ctx->call_op->batches;

    if (fb == NULL) {
        return NGX_OK;
    }

    if (ctx->batch == 0) {
        records = (empty || *body == NULL)
                  ? NULL
                  : ngx_http_hris_path_get(&ctx->call_op->records, *body,
                                           NULL);

        if (records == NULL || json_is_null(records)
            || (json_is_array(records) && json_array_size(records) == 0))
        {
            /* no records: the other fields of none are not needed */
            return NGX_OK;
        }

        ctx->batched = *body;
        ctx->batch = 1;

        return NGX_AGAIN;
    }

    key = NULL;
    why = "says there are no records";

    rc = (empty || *body == NULL)
         ? NGX_DECLINED
         : ngx_http_hris_batch_merge(ctx->request->pool, ctx->call_op,
                                     ctx->batched, *body, &why, &key);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_hris_batch_disagree(ctx, why, key);
    }

    if (++ctx->batch < fb->n) {
        return NGX_AGAIN;
    }

    /* the page is whole: the next page starts at the first batch again */
    *body = ctx->batched;
    ctx->batched = NULL;
    ctx->batch = 0;

    return NGX_OK;
}


/*
 * Adds to the records of "into" the fields of the records of "from" it
 * lacks (a field both have keeps the first answer's value). Records are
 * matched by their merge_on value; the provider normally answers in the
 * same order, so the record at the same index is tried first.
 * NGX_DECLINED with *why (and maybe *key, borrowed from "from"): the
 * answers disagree.
 */

ngx_int_t
ngx_http_hris_batch_merge(ngx_pool_t *pool, ngx_http_hris_op_t *op,
    json_t *into, json_t *from, const char **why, json_t **key)
{
    json_t                   *a, *b, *rb, *kb;
    size_t                    i, j, n;
    ngx_int_t                 rc;
    u_char                   *used;
    ngx_http_hris_batches_t  *fb = op->batches;

    a = ngx_http_hris_path_get(&op->records, into, NULL);
    b = ngx_http_hris_path_get(&op->records, from, NULL);

    if (json_is_null(a)) {
        a = NULL;
    }

    if (json_is_null(b)) {
        b = NULL;
    }

    if (a == NULL || b == NULL) {
        if (a == b) {
            return NGX_OK;
        }

        *why = "has records where the first has none, or the reverse";
        return NGX_DECLINED;
    }

    if (json_is_object(a) && json_is_object(b)) {
        return ngx_http_hris_batch_record(fb, a, b, why, key);
    }

    if (!json_is_array(a) || !json_is_array(b)) {
        *why = "has its records in another shape than the first";
        return NGX_DECLINED;
    }

    n = json_array_size(a);

    if (json_array_size(b) != n) {
        *why = "has another number of records than the first";
        return NGX_DECLINED;
    }

    used = ngx_pcalloc(pool, n + 1);
    if (used == NULL) {
        return NGX_ERROR;
    }

    json_array_foreach(b, i, rb) {
        kb = ngx_http_hris_path_get(&fb->merge_on, rb, NULL);
        if (kb == NULL || json_is_null(kb)) {
            *why = "has a record without a merge_on value";
            return NGX_DECLINED;
        }

        j = i;

        if (!ngx_http_hris_batch_match(fb, a, j, used, kb)) {
            for (j = 0; j < n; j++) {
                if (j != i && ngx_http_hris_batch_match(fb, a, j, used, kb)) {
                    break;
                }
            }
        }

        if (j == n) {
            *why = "has a record the first does not have, merge_on value";
            *key = kb;
            return NGX_DECLINED;
        }

        used[j] = 1;

        rc = ngx_http_hris_batch_record(fb, json_array_get(a, j), rb, why,
                                        key);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/* Record j of "a" is not merged yet and has the merge_on value kb. */

static ngx_uint_t
ngx_http_hris_batch_match(ngx_http_hris_batches_t *fb, json_t *a, size_t j,
    u_char *used, json_t *kb)
{
    json_t  *ka;

    if (used[j]) {
        return 0;
    }

    ka = ngx_http_hris_path_get(&fb->merge_on, json_array_get(a, j), NULL);

    return ka != NULL && json_equal(ka, kb);
}


static ngx_int_t
ngx_http_hris_batch_record(ngx_http_hris_batches_t *fb, json_t *into,
    json_t *from, const char **why, json_t **key)
{
    json_t      *v, *ka, *kb;
    const char  *name;

    if (!json_is_object(into) || !json_is_object(from)) {
        *why = "has a record that is not an object";
        return NGX_DECLINED;
    }

    ka = ngx_http_hris_path_get(&fb->merge_on, into, NULL);
    kb = ngx_http_hris_path_get(&fb->merge_on, from, NULL);

    if (ka == NULL || kb == NULL || json_is_null(kb)) {
        *why = "has a record without a merge_on value";
        return NGX_DECLINED;
    }

    if (!json_equal(ka, kb)) {
        *why = "has another record than the first, merge_on value";
        *key = kb;
        return NGX_DECLINED;
    }

    json_object_foreach(from, name, v) {
        if (json_object_get(into, name) == NULL
            && json_object_set(into, name, v) != 0)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* 502: nothing of the page is sent, and the message says why. */

static ngx_int_t
ngx_http_hris_batch_disagree(ngx_http_hris_ctx_t *ctx, const char *why,
    json_t *key)
{
    ngx_str_t                 text;
    ngx_http_hris_table_t    *t = ctx->account->table;
    ngx_http_hris_batches_t  *fb = ctx->call_op->batches;

    ngx_str_null(&text);

    if (key && ngx_http_hris_json_text(ctx->request->pool, key, &text)
               != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the provider's text: bounded */
    text.len = ngx_min(text.len, NGX_HTTP_HRIS_BATCH_KEY_MAX);

    return ngx_http_hris_send_error(ctx->request, NGX_HTTP_BAD_GATEWAY,
               json_pack("{s:s%, s:i, s:i}",
                         "provider", t->name.data, t->name.len,
                         "field_batch", (int) ctx->batch + 1,
                         "field_batches", (int) fb->n),
               "the provider's answers to the %ui calls that split %ui "
               "fields into batches of %ui disagree: answer %ui %s%s%V%s "
               "(field_batches of the %V mapping table)",
               fb->n, fb->fields, fb->max, ctx->batch + 1, why,
               key ? " \"" : "", &text, key ? "\"" : "", &t->name);
}

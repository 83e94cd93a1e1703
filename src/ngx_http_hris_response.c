/*
 * Answers: JSON bodies and the error envelope of CONTRACT.md §6,
 * {"statusCode", "error", "message", "details"}. Messages say what to do;
 * they never carry a credential.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_idem.h"
#include "ngx_http_hris_arena.h"
#include "ngx_http_hris_record.h"


static void ngx_http_hris_json_decref(void *data);
static const char *ngx_http_hris_reason(ngx_uint_t status);
static void ngx_http_hris_pin_slots(ngx_http_hris_slots_t *slots);


/*
 * Sends status and body. Returns what ngx_http_finalize_request() takes:
 * the output filter's rc once the answer is under way (NGX_AGAIN when the
 * client has not taken all of it yet: nginx's writer sends the rest), or
 * an HTTP status when nothing was sent.
 */

ngx_int_t
ngx_http_hris_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body, ngx_http_hris_spans_t *spans)
{
    return ngx_http_hris_send_records(r, status, body, spans, NULL);
}


/* The same, with unified records in the body (ngx_http_hris_record.h). */

ngx_int_t
ngx_http_hris_send_records(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body, ngx_http_hris_spans_t *spans, ngx_http_hris_records_t *recs)
{
    size_t        len;
    ngx_int_t     rc;
    ngx_chain_t  *out, *cl;

    if (ngx_http_hris_json_write_records(r->pool, body, spans, recs, &out,
                                         &len)
        != NGX_OK)
    {
        /* our envelope still, not nginx's HTML page; an error's is small */
        if (status >= NGX_HTTP_SPECIAL_RESPONSE) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_hris_send_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                   NULL, "the answer could not be written: out of memory, "
                   "or nested deeper than %d levels",
                   NGX_HTTP_HRIS_JSON_MAX_DEPTH);
    }

    for (cl = out; cl->next; cl = cl->next) { /* void */ }

    /* a write's answer is kept for its Idempotency-Key (idem.c) */
    ngx_http_hris_idem_answer(r, status, out, len);

    cl->buf->last_buf = (r == r->main) ? 1 : 0;
    cl->buf->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, out);
}


ngx_int_t
ngx_http_hris_send_error(ngx_http_request_t *r, ngx_uint_t status,
    json_t *details, const char *fmt, ...)
{
    u_char     *p;
    va_list     args;
    json_t     *body;
    ngx_int_t   rc;
    u_char      msg[1024];

    va_start(args, fmt);
    p = ngx_vslprintf(msg, msg + sizeof(msg) - 1, fmt, args);
    va_end(args);
    *p = '\0';

    ngx_http_hris_observe_error(r, msg, p - msg);

    body = json_pack("{s:i, s:s, s:s, s:o}",
                     "statusCode", (int) status,
                     "error", ngx_http_hris_reason(status),
                     "message", (char *) msg,
                     "details", details ? details : json_object());
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }


    ngx_log_error((status >= 500 ? NGX_LOG_ERR : NGX_LOG_INFO),
                  r->connection->log, 0, "hris: %ui: %s", status, msg);

    /* our own envelope, not nginx's error page */
    r->keepalive = r->keepalive && status < 500;
    /* send_json copies the text out: the tree can go now */
    rc = ngx_http_hris_send_json(r, status, body, NULL);
    json_decref(body);

    return rc;
}


ngx_int_t
ngx_http_hris_json_cleanup(ngx_pool_t *pool, json_t *json)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_hris_json_decref;
    cln->data = json;

    return NGX_OK;
}


static void
ngx_http_hris_json_decref(void *data)
{
    json_decref((json_t *) data);
}


static const char *
ngx_http_hris_reason(ngx_uint_t status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default:  return "Internal Server Error";
    }
}


/*
 * The strings and numbers of a list's records, every block of the parse
 * in the request's arena: pinned (ngx_http_hris_arena_pin()), the fields
 * that borrow them take and drop references without an atomic operation
 * each, and no value is deleted one by one when the request ends: the
 * records and the set are marked so (the walks that would give their
 * references back are skipped, ngx_http_hris_walk_release()).
 */

static void
ngx_http_hris_pin_slots(ngx_http_hris_slots_t *slots)
{
    ngx_uint_t                  i, j;
    ngx_http_hris_slot_rec_t  **rec;

    rec = slots->all.elts;

    for (i = 0; i < slots->all.nelts; i++) {
        for (j = 0; j < rec[i]->n; j++) {
            ngx_http_hris_arena_pin(rec[i]->members[j].value);
        }

        rec[i]->pinned = 1;
    }

    slots->pinned = 1;
}


/*
 * The upstream body as JSON in *body; or *body NULL and the client's 502
 * sent (its rc returned): an HTML error page or a cut answer is the
 * provider's fault, said plainly. Spans, when given, point into
 * call->resp, which a call keeps until the request's pool goes.
 */

ngx_int_t
ngx_http_hris_upstream_json(ngx_http_request_t *r, ngx_http_hris_call_t *call,
    json_t **body, ngx_http_hris_spans_t *spans)
{
    int                     line, column;
    ngx_uint_t              mallocs;
    const char             *perr;
    ngx_str_t              *host;
    ngx_http_hris_arena_t  *arena, *a;

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

    if (call->parsed) {
        /* by a thread: the same outcome, the tree owned by the walk */
        *body = call->parsed_body;
        line = call->parsed_line;
        column = call->parsed_column;
        perr = call->parsed_error;

    } else {
        /* the tree dies with the request: its nodes come from the arena */
        a = ngx_http_hris_arena_get(r->pool);
        mallocs = a ? ngx_http_hris_arena_mallocs(a) : 0;

        arena = ngx_http_hris_arena_enter(a);

        *body = call->slots
                ? ngx_http_hris_parse_slots(call->resp, call->resp_len,
                                            &line, &column, &perr, spans,
                                            call->slots)
                : ngx_http_hris_parse(call->resp, call->resp_len, &line,
                                      &column, &perr, spans);

        ngx_http_hris_arena_leave(arena);

        if (*body && call->slots && a
            && ngx_http_hris_arena_mallocs(a) == mallocs)
        {
            ngx_http_hris_pin_slots(call->slots);
        }
    }

    if (*body == NULL && ngx_strcmp(perr, NGX_HTTP_HRIS_PARSE_TOO_DEEP) == 0) {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_GATEWAY,
            json_pack("{s:i,s:s,s:i}", "upstream_status", (int) call->status,
                      "parse_error", perr, "max_depth",
                      NGX_HTTP_HRIS_JSON_MAX_DEPTH),
            "the provider at %V answered with JSON nested deeper than %d "
            "levels (line %d, column %d)", host,
            NGX_HTTP_HRIS_JSON_MAX_DEPTH, line, column);
    }

    if (*body == NULL) {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_GATEWAY,
            json_pack("{s:i,s:s}", "upstream_status", (int) call->status,
                      "parse_error", perr),
            "the provider at %V answered with malformed JSON (line %d, "
            "column %d)", host, line, column);
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
                && ngx_http_hris_json_text(r->pool, v, &msg) == NGX_OK
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

ngx_int_t
ngx_http_hris_json_text(ngx_pool_t *pool, json_t *v, ngx_str_t *out)
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


/* A response header of the module's own: name is a C string literal. */

ngx_int_t
ngx_http_hris_header_out(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;

    if (ngx_strcmp(name, "Location") == 0) {
        r->headers_out.location = h;
    }

    return NGX_OK;
}

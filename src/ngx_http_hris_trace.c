/*
 * W3C trace context (https://www.w3.org/TR/trace-context/): a client that
 * sends "traceparent" has its trace go on through the gateway. Every
 * upstream call of its request (token exchanges included) carries a
 * traceparent with the client's trace id and flags and a new span id of
 * its own, and the client's tracestate. A request without a valid
 * traceparent sends none: the gateway starts no traces of its own.
 *
 * The client's header is untrusted: only version 00, exactly as the
 * specification spells it (lowercase hex, ids not all zero), is taken;
 * anything else is dropped, and so is its tracestate. A tracestate is
 * passed on only when it is printable ASCII of at most 512 bytes (the
 * length the specification asks every vendor to keep).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/rand.h>

#include "ngx_http_hris_metrics.h"


static ngx_uint_t ngx_http_hris_trace_hex(u_char *p, size_t len);
static void ngx_http_hris_trace_state(ngx_http_request_t *r,
    ngx_http_hris_trace_t *t);


/*
 * The request's traceparent, checked once: whether there is a valid one
 * (then t holds its trace id, flags and tracestate).
 */

ngx_uint_t
ngx_http_hris_trace_parse(ngx_http_request_t *r, ngx_http_hris_trace_t *t)
{
    u_char           *p;
    ngx_uint_t        i, n;
    ngx_str_t        *tp;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    if (t->parsed) {
        return t->valid;
    }

    t->parsed = 1;

    n = 0;
    tp = NULL;
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }
            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("traceparent") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "traceparent",
                               sizeof("traceparent") - 1) == 0)
        {
            n++;
            tp = &h[i].value;
        }
    }

    /* two of them: which one is meant cannot be told */
    if (n != 1 || tp->len != NGX_HTTP_HRIS_TRACEPARENT_LEN) {
        return 0;
    }

    /* 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags> */
    p = tp->data;

    if (p[0] != '0' || p[1] != '0' || p[2] != '-' || p[35] != '-'
        || p[52] != '-'
        || !ngx_http_hris_trace_hex(p + 3, 32)
        || !ngx_http_hris_trace_hex(p + 36, 16)
        || !ngx_http_hris_trace_hex(p + 53, 2))
    {
        return 0;
    }

    ngx_memcpy(t->trace_id, p + 3, 32);
    ngx_memcpy(t->flags, p + 53, 2);
    t->valid = 1;

    ngx_http_hris_trace_state(r, t);

    return 1;
}


/* lowercase hex digits, not all of them zero */

static ngx_uint_t
ngx_http_hris_trace_hex(u_char *p, size_t len)
{
    size_t      i;
    ngx_uint_t  zero;

    zero = 1;

    for (i = 0; i < len; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) {
            return 0;
        }

        if (p[i] != '0') {
            zero = 0;
        }
    }

    /* flags 00 are fine; ids of zeros are not */
    return !zero || len == 2;
}


/* tracestate headers, joined with "," as the specification allows */

static void
ngx_http_hris_trace_state(ngx_http_request_t *r, ngx_http_hris_trace_t *t)
{
    u_char           *p, *v, *end;
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;
    u_char            buf[NGX_HTTP_HRIS_TRACESTATE_MAX];

    len = 0;
    p = buf;
    end = buf + sizeof(buf);

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }
            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len != sizeof("tracestate") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "tracestate",
                               sizeof("tracestate") - 1) != 0
            || h[i].value.len == 0)
        {
            continue;
        }

        /* too long: dropped whole (cutting it could split a member) */
        if ((size_t) (end - p) < h[i].value.len + (p > buf ? 1 : 0)) {
            return;
        }

        if (p > buf) {
            *p++ = ',';
        }

        for (v = h[i].value.data; v < h[i].value.data + h[i].value.len; v++) {
            if (*v < 0x20 || *v > 0x7e) {
                return;
            }
            *p++ = *v;
        }
    }

    len = p - buf;

    if (len == 0) {
        return;
    }

    t->state.data = ngx_pnalloc(r->pool, len);
    if (t->state.data == NULL) {
        return;
    }

    ngx_memcpy(t->state.data, buf, len);
    t->state.len = len;
}


/* The headers of one upstream call (the upstream client, before it goes). */

ngx_int_t
ngx_http_hris_trace_headers(ngx_http_hris_call_t *call)
{
    u_char                span[8], *p;
    ngx_str_t             name, value;
    ngx_uint_t            i;
    ngx_http_hris_req_t  *req;

    req = ngx_http_get_module_ctx(call->request,
                                  ngx_http_hris_metrics_module);

    if (req == NULL || !ngx_http_hris_trace_parse(call->request, &req->trace))
    {
        return NGX_OK;
    }

    /* a new span id, never all zero */
    do {
        if (RAND_bytes(span, sizeof(span)) != 1) {
            for (i = 0; i < sizeof(span); i++) {
                span[i] = (u_char) ngx_random();
            }
        }

        for (i = 0; i < sizeof(span) && span[i] == 0; i++) { /* void */ }

    } while (i == sizeof(span));

    p = ngx_pnalloc(call->request->pool, NGX_HTTP_HRIS_TRACEPARENT_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    value.data = p;
    p = ngx_cpymem(p, "00-", 3);
    p = ngx_cpymem(p, req->trace.trace_id, 32);
    *p++ = '-';
    p = ngx_hex_dump(p, span, sizeof(span));
    *p++ = '-';
    p = ngx_cpymem(p, req->trace.flags, 2);
    value.len = p - value.data;

    ngx_str_set(&name, "traceparent");

    if (ngx_http_hris_call_header(call, &name, &value) != NGX_OK) {
        return NGX_ERROR;
    }

    if (req->trace.state.len == 0) {
        return NGX_OK;
    }

    ngx_str_set(&name, "tracestate");

    return ngx_http_hris_call_header(call, &name, &req->trace.state);
}

/*
 * The proxy API (CONTRACT.md §5):
 * {METHOD} /proxy/{path}?integrated_account_id=
 * goes to {base_url}/{path} with the account's credentials injected; the
 * provider's status and body come back as they are.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"


typedef struct {
    ngx_http_hris_account_t    *account;
    ngx_http_hris_gate_t        gate;       /* token, rate limit */
    ngx_http_hris_call_t       *call;
} ngx_http_hris_proxy_ctx_t;


static void ngx_http_hris_proxy_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_hris_proxy_start(ngx_http_request_t *r,
    ngx_http_hris_proxy_ctx_t *ctx);
static ngx_int_t ngx_http_hris_proxy_url(ngx_http_request_t *r,
    ngx_http_hris_account_t *acc, ngx_str_t *url);
static ngx_int_t ngx_http_hris_proxy_headers(ngx_http_request_t *r,
    ngx_http_hris_call_t *call, ngx_http_hris_account_t *account);
static ngx_int_t ngx_http_hris_proxy_call(ngx_http_hris_proxy_ctx_t *ctx);
static void ngx_http_hris_proxy_gated(ngx_http_hris_gate_t *g);
static ngx_int_t ngx_http_hris_proxy_body_auth(ngx_http_request_t *r,
    ngx_http_hris_account_t *account, ngx_str_t *body);
static ngx_uint_t ngx_http_hris_param_named(ngx_array_t *params,
    ngx_str_t *name);
static void ngx_http_hris_proxy_done(ngx_http_hris_call_t *call);
static ngx_int_t ngx_http_hris_proxy_answer(ngx_http_request_t *r,
    ngx_http_hris_proxy_ctx_t *ctx);
static ngx_int_t ngx_http_hris_proxy_unknown(ngx_http_request_t *r,
    ngx_http_hris_proxy_ctx_t *ctx);
static ngx_uint_t ngx_http_hris_proxy_credential(ngx_http_hris_proxy_ctx_t *ctx,
    ngx_keyval_t *kv);
static ngx_uint_t ngx_http_hris_header_in(ngx_str_t *name,
    const char **list);
static ngx_uint_t ngx_http_hris_str_caseeq(ngx_str_t *a, ngx_str_t *b);
static ngx_uint_t ngx_http_hris_connection_option(ngx_http_request_t *r,
    ngx_str_t *name);


/*
 * never forwarded: hop-by-hop, framing, and the caller's own credentials;
 * trace context goes on as the gateway's own (ngx_http_hris_trace.c)
 */
static const char  *ngx_http_hris_proxy_drop_in[] = {
    "connection", "keep-alive", "te", "trailer", "transfer-encoding",
    "upgrade", "proxy-authorization", "proxy-authenticate", "host",
    "content-length", "authorization", "cookie", "accept-encoding",
    "expect", "traceparent", "tracestate", NULL
};

/*
 * never passed back: hop-by-hop, framing, and whatever may carry a
 * credential (CONTRACT.md §5: credentials travel one way only); the
 * table's own credential headers are added in ngx_http_hris_proxy_credential()
 */
static const char  *ngx_http_hris_proxy_drop_out[] = {
    "connection", "keep-alive", "te", "trailer", "transfer-encoding",
    "upgrade", "proxy-authenticate", "content-length", "content-type",
    "set-cookie", "set-cookie2", "server", "date", "authorization",
    "proxy-authorization", "authentication-info",
    "proxy-authentication-info", NULL
};


ngx_int_t
ngx_http_hris_proxy_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_hris_proxy_ctx_t  *ctx;
    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_hris_proxy_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_hris_account_resolve(r, hmcf, &ctx->account);
    if (ctx->account == NULL) {
        return rc;
    }

    ngx_http_hris_observe_provider(r, ctx->account->table, &ctx->account->id);

    ngx_http_set_ctx(r, ctx, ngx_http_hris_module);

    /* the body must be in memory: it is handed to curl as one piece */
    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_hris_proxy_body);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_hris_proxy_body(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_hris_proxy_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hris_module);

    rc = ngx_http_hris_proxy_start(r, ctx);
    if (rc != NGX_AGAIN) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;
}


static ngx_int_t
ngx_http_hris_proxy_start(ngx_http_request_t *r,
    ngx_http_hris_proxy_ctx_t *ctx)
{
    ngx_int_t                  rc;
    ngx_http_hris_call_t      *call;
    ngx_http_hris_loc_conf_t  *hlcf;

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hris_module);

    call = ngx_http_hris_call_create(r, &hlcf->upstream);
    if (call == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* an error answer already sent usually returns NGX_OK: see header_sent */

    rc = ngx_http_hris_proxy_url(r, ctx->account, &call->url);
    if (rc != NGX_OK || r->header_sent) {
        return rc;
    }

    rc = ngx_http_hris_request_body(r, &call->body);
    if (rc != NGX_OK || r->header_sent) {
        return rc;
    }

    call->method.len = r->method_name.len;
    call->method.data = ngx_pnalloc(r->pool, r->method_name.len + 1);
    if (call->method.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_memcpy(call->method.data, r->method_name.data, r->method_name.len);
    call->method.data[call->method.len] = '\0';

    /* statuses go back as they are: the caller decides about retrying */
    call->retry = 0;
    call->keep_headers = 1;
    call->handler = ngx_http_hris_proxy_done;
    call->data = ctx;
    ctx->call = call;

    if (ngx_http_hris_proxy_body_auth(r, ctx->account, &call->body)
        != NGX_OK
        || ngx_http_hris_proxy_headers(r, call, ctx->account) != NGX_OK
        || ngx_http_hris_gate_init(&ctx->gate, r, ctx->account) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the same gate as unified calls: the account's token, its rate limit */
    ctx->gate.handler = ngx_http_hris_proxy_gated;
    ctx->gate.data = ctx;

    switch (ngx_http_hris_gate_pass(&ctx->gate)) {

    case NGX_OK:
        return ngx_http_hris_proxy_call(ctx);

    case NGX_AGAIN:
        return NGX_AGAIN;

    default:
        return ctx->gate.final;
    }
}


static void
ngx_http_hris_proxy_gated(ngx_http_hris_gate_t *g)
{
    ngx_int_t                   rc;
    ngx_http_hris_proxy_ctx_t  *ctx = g->data;

    rc = (g->rc == NGX_OK) ? ngx_http_hris_proxy_call(ctx) : g->final;

    if (rc != NGX_AGAIN) {
        ngx_http_finalize_request(g->request, rc);
    }
}


static ngx_int_t
ngx_http_hris_proxy_call(ngx_http_hris_proxy_ctx_t *ctx)
{
    ngx_http_hris_tpl_vars_t   vars;

    ngx_memzero(&vars, sizeof(ngx_http_hris_tpl_vars_t));
    ngx_http_hris_gate_vars(&ctx->gate, &vars);

    if (ngx_http_hris_apply_auth(ctx->call, ctx->account, &vars) != NGX_OK
        || ngx_http_hris_call_start(ctx->call) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_AGAIN;
}


/*
 * A table whose credentials travel in JSON bodies (PeopleHR's APIKey):
 * they are merged into the caller's JSON object body.
 */

static ngx_int_t
ngx_http_hris_proxy_body_auth(ngx_http_request_t *r,
    ngx_http_hris_account_t *account, ngx_str_t *body)
{
    char                      *text;
    json_t                    *js;
    ngx_int_t                  rc;
    ngx_http_hris_tpl_vars_t   vars;

    if (account->auth->type != NGX_HTTP_HRIS_AUTH_BODY || body->len == 0) {
        return NGX_OK;
    }

    js = json_loadb((char *) body->data, body->len, 0, NULL);
    if (!json_is_object(js)) {
        /* not JSON: passed on as it is, and the provider will say so */
        json_decref(js);
        return NGX_OK;
    }

    ngx_memzero(&vars, sizeof(ngx_http_hris_tpl_vars_t));
    vars.context = &account->context;
    vars.credentials = ngx_http_hris_credentials(r, account);

    rc = (vars.credentials == NULL)
         ? NGX_ERROR
         : ngx_http_hris_body_merge(r->pool, js, account->auth->body, &vars);

    text = (rc == NGX_OK) ? json_dumps(js, JSON_COMPACT) : NULL;
    json_decref(js);

    if (text == NULL) {
        return NGX_ERROR;
    }

    body->len = ngx_strlen(text);
    body->data = ngx_pnalloc(r->pool, body->len);
    if (body->data == NULL) {
        free(text);
        return NGX_ERROR;
    }

    ngx_memcpy(body->data, text, body->len);
    free(text);

    return NGX_OK;
}


/*
 * {base_url}/{path}?{query without integrated_account_id}. The raw path
 * is used, so percent-encoding reaches the provider unchanged; dot
 * segments are refused, so the path cannot climb above the base URL.
 */

static ngx_int_t
ngx_http_hris_proxy_url(ngx_http_request_t *r, ngx_http_hris_account_t *acc,
    ngx_str_t *url)
{
    u_char                    *p, *end, *q, *amp;
    ngx_str_t                  path, args, dec;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    path.data = r->unparsed_uri.data;
    end = r->unparsed_uri.data + r->unparsed_uri.len;
    q = ngx_strlchr(path.data, end, '?');
    path.len = (q ? q : end) - path.data;

    if (!clcf->regex && path.len >= clcf->name.len
        && ngx_strncmp(path.data, clcf->name.data, clcf->name.len) == 0)
    {
        path.data += clcf->name.len;
        path.len -= clcf->name.len;
    }

    while (path.len && path.data[0] == '/') {
        path.data++;
        path.len--;
    }

    /*
     * a provider may decode "%2e%2e" (and "%2f") before it resolves dot
     * segments: they are looked for in the decoded path
     */
    dec.data = ngx_pnalloc(r->pool, path.len + 1);
    if (dec.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = dec.data;
    q = path.data;
    ngx_unescape_uri(&p, &q, path.len, 0);
    dec.len = p - dec.data;

    for (p = dec.data; p < dec.data + dec.len; p++) {
        if (*p == '.' && (p == dec.data || p[-1] == '/')
            && (p + 1 == dec.data + dec.len || p[1] == '/'
                || (p[1] == '.' && (p + 2 == dec.data + dec.len
                                    || p[2] == '/'))))
        {
            return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                       "the proxy path may not contain \".\" or \"..\" "
                       "segments");
        }
    }

    url->data = ngx_pnalloc(r->pool, acc->base_url.len + path.len
                                     + r->args.len + 3);
    if (url->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(url->data, acc->base_url.data, acc->base_url.len);
    *p++ = '/';
    p = ngx_cpymem(p, path.data, path.len);

    args = r->args;
    end = args.data + args.len;

    for (q = args.data; q < end; q = amp + 1) {
        amp = ngx_strlchr(q, end, '&');
        amp = amp ? amp : end;

        if ((size_t) (amp - q) >= sizeof("integrated_account_id") - 1
            && ngx_strncmp(q, "integrated_account_id",
                           sizeof("integrated_account_id") - 1) == 0
            && (amp - q == sizeof("integrated_account_id") - 1
                || q[sizeof("integrated_account_id") - 1] == '='))
        {
            continue;
        }

        if (amp == q) {
            continue;
        }

        *p = (ngx_strlchr(url->data, p, '?') == NULL) ? '?' : '&';
        p++;
        p = ngx_cpymem(p, q, amp - q);
    }

    *p = '\0';
    url->len = p - url->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_proxy_headers(ngx_http_request_t *r, ngx_http_hris_call_t *call,
    ngx_http_hris_account_t *account)
{
    ngx_uint_t              i;
    ngx_list_part_t        *part;
    ngx_table_elt_t        *h;
    ngx_http_hris_auth_t   *auth = account->auth;
    ngx_http_hris_table_t  *table = account->table;

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

        /* the table's own headers and credential headers win */
        if (ngx_http_hris_header_in(&h[i].key, ngx_http_hris_proxy_drop_in)
            || ngx_http_hris_connection_option(r, &h[i].key)
            || ngx_http_hris_param_named(&table->headers, &h[i].key)
            || ngx_http_hris_param_named(&auth->headers, &h[i].key))
        {
            continue;
        }

        if (ngx_http_hris_call_header(call, &h[i].key, &h[i].value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The client's body in one piece. A body nginx spilled to a file is
 * refused (413): reading the file would block the worker.
 */

ngx_int_t
ngx_http_hris_request_body(ngx_http_request_t *r, ngx_str_t *body)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;
    u_char       *p;
    size_t        len;

    ngx_str_null(body);

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            /* reading the temp file would block the worker */
            return ngx_http_hris_send_error(r,
                       NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                       NULL, "the request body is larger than "
                       "client_body_buffer_size; raise it to proxy bodies "
                       "of this size");
        }

        len += b->last - b->pos;
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body->data = p;
    body->len = len;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        if (cl->buf->last != cl->buf->pos) {
            p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
        }
    }

    return NGX_OK;
}


static void
ngx_http_hris_proxy_done(ngx_http_hris_call_t *call)
{
    ngx_int_t                   rc;
    ngx_http_request_t         *r = call->request;
    ngx_http_hris_proxy_ctx_t  *ctx = call->data;

    ngx_http_hris_gate_answered(&ctx->gate, call);

    /*
     * A refused token goes back to the caller as the provider said it (the
     * proxy does not replay requests), but it is dropped, so the next call
     * gets a fresh one.
     */
    if (call->result == NGX_HTTP_HRIS_CALL_OK
        && ngx_http_hris_token_refused(ctx->account->auth, call->status))
    {
        ngx_http_hris_gate_refused(&ctx->gate);
    }

    if (call->unknown) {
        rc = ngx_http_hris_proxy_unknown(r, ctx);

    } else if (call->result != NGX_HTTP_HRIS_CALL_OK) {
        rc = ngx_http_hris_call_status_error(r, call, ctx->account->table);

    } else {
        rc = ngx_http_hris_proxy_answer(r, ctx);
    }

    ngx_http_finalize_request(r, rc);
}


/*
 * A request that is not idempotent went out and no answer came (a timeout,
 * a connection cut): it was not sent again, and whether the provider
 * carried it out is unknown. 504, and details.outcome says so.
 */

static ngx_int_t
ngx_http_hris_proxy_unknown(ngx_http_request_t *r,
    ngx_http_hris_proxy_ctx_t *ctx)
{
    ngx_str_t             *name = &ctx->account->table->name;
    ngx_http_hris_call_t  *call = ctx->call;

    return ngx_http_hris_send_error(r, NGX_HTTP_GATEWAY_TIME_OUT,
               json_pack("{s:s%,s:i,s:s}", "provider", name->data, name->len,
                         "attempts", (int) call->attempts,
                         "outcome", "unknown"),
               "the provider at %V took the %V request but %s; it was not "
               "sent again, and whether the provider carried it out is "
               "unknown: check before sending it again",
               ngx_http_hris_call_host(call), &call->method,
               call->result == NGX_HTTP_HRIS_CALL_TIMEOUT
               ? "did not answer in time" : "broke off without an answer");
}


static ngx_int_t
ngx_http_hris_proxy_answer(ngx_http_request_t *r,
    ngx_http_hris_proxy_ctx_t *ctx)
{
    ngx_int_t              rc;
    ngx_buf_t             *b;
    ngx_uint_t             i;
    ngx_chain_t            out;
    ngx_keyval_t          *kv;
    ngx_table_elt_t       *h;
    ngx_http_hris_call_t  *call = ctx->call;

    kv = call->headers_out.elts;

    for (i = 0; kv && i < call->headers_out.nelts; i++) {
        if (ngx_http_hris_header_in(&kv[i].key, ngx_http_hris_proxy_drop_out)
            || ngx_http_hris_proxy_credential(ctx, &kv[i]))
        {
            continue;
        }

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        h->key = kv[i].key;
        h->value = kv[i].value;
    }

    r->headers_out.status = call->status;
    r->headers_out.content_length_n = call->resp_len;

    if (call->content_type.len) {
        r->headers_out.content_type = call->content_type;
        r->headers_out.content_type_len = call->content_type.len;
    }

    if (call->resp_len == 0) {
        r->header_only = 1;
        return ngx_http_send_header(r);
    }

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the call's buffer lives until the request pool goes */
    b->pos = call->resp;
    b->last = call->resp + call->resp_len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * A provider's header that may hold a credential: one named like a header
 * the table sends credentials in, the header a provider hands a fresh
 * token back in (the token's "echo_header", Personio's "authorization"),
 * or any header that holds the token or refresh token in use.
 */

static ngx_uint_t
ngx_http_hris_proxy_credential(ngx_http_hris_proxy_ctx_t *ctx,
    ngx_keyval_t *kv)
{
    ngx_str_t                   *secret[2];
    ngx_uint_t                   i;
    ngx_http_hris_auth_t        *auth = ctx->account->auth;
    ngx_http_hris_token_spec_t  *ts = auth->token;

    if (ngx_http_hris_param_named(&auth->headers, &kv->key)) {
        return 1;
    }

    if (ts && (ngx_http_hris_str_caseeq(&kv->key, &ts->echo_header)
               || ngx_http_hris_str_caseeq(&kv->key, &ts->header)))
    {
        return 1;
    }

    secret[0] = &ctx->gate.token;
    secret[1] = &ctx->gate.refresh;

    /* (a token of a few characters would match headers at random) */
    for (i = 0; i < 2; i++) {
        if (secret[i]->len >= 8
            && ngx_strlcasestrn(kv->value.data,
                                kv->value.data + kv->value.len,
                                secret[i]->data, secret[i]->len - 1)
               != NULL)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_uint_t
ngx_http_hris_str_caseeq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len && a->len == b->len
           && ngx_strncasecmp(a->data, b->data, a->len) == 0;
}


static ngx_uint_t
ngx_http_hris_header_in(ngx_str_t *name, const char **list)
{
    ngx_uint_t  i;

    for (i = 0; list[i]; i++) {
        if (ngx_strlen(list[i]) == name->len
            && ngx_strncasecmp(name->data, (u_char *) list[i], name->len)
               == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * A header the client's "Connection" names is hop-by-hop too (RFC 9110,
 * 7.6.1): "Connection: close, X-Trace" keeps X-Trace on this hop.
 */

static ngx_uint_t
ngx_http_hris_connection_option(ngx_http_request_t *r, ngx_str_t *name)
{
    u_char           *p, *end, *start;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    /* every "Connection" line counts: r->headers_in keeps only one */
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

        if (h[i].key.len != sizeof("Connection") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Connection",
                               sizeof("Connection") - 1) != 0)
        {
            continue;
        }

        p = h[i].value.data;
        end = p + h[i].value.len;

        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
                p++;
            }

            start = p;

            while (p < end && *p != ',' && *p != ' ' && *p != '\t') {
                p++;
            }

            if (p > start && (size_t) (p - start) == name->len
                && ngx_strncasecmp(start, name->data, name->len) == 0)
            {
                return 1;
            }
        }
    }

    return 0;
}


static ngx_uint_t
ngx_http_hris_param_named(ngx_array_t *params, ngx_str_t *name)
{
    ngx_uint_t              i;
    ngx_http_hris_param_t  *p;

    p = params->elts;

    for (i = 0; i < params->nelts; i++) {
        if (p[i].name.len == name->len
            && ngx_strncasecmp(p[i].name.data, name->data, name->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}

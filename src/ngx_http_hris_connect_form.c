/*
 * The connect flow's form, for providers whose credentials are typed in
 * (API keys, client credentials): the table's "connect.form" names them;
 * context keys the link did not give are asked for too.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_connect.h"


static ngx_int_t ngx_http_hris_form_value(ngx_pool_t *pool, ngx_str_t *body,
    ngx_str_t *name, ngx_str_t *value);


/* The HTML form of an API-key provider: credentials and missing context. */

ngx_int_t
ngx_http_hris_connect_form(ngx_http_request_t *r, ngx_http_hris_link_t *link)
{
    size_t                        len;
    u_char                       *p;
    json_t                       *ctx;
    ngx_buf_t                    *b;
    ngx_str_t                    *cred;
    ngx_uint_t                    i;
    ngx_int_t                     rc;
    ngx_chain_t                   out;
    ngx_http_hris_context_key_t  *ck;
    ngx_str_t                     csp = ngx_string("default-src 'none'; "
                                        "form-action 'self'; "
                                        "frame-ancestors 'none'");
    ngx_str_t                     policy = ngx_string("no-referrer");
    ngx_str_t                     cache = ngx_string("no-store");

    static const char  head[] =
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        "<title>Connect your account</title></head><body>\n"
        "<h1>Connect your %V account</h1>\n"
        "<form method=\"post\">\n";
    static const char  field[] =
        "<p><label>%V <input name=\"%V\" type=\"%s\" required "
        "autocomplete=\"off\"></label></p>\n";
    static const char  tail[] =
        "<p><button type=\"submit\">Connect</button></p>\n"
        "</form></body></html>\n";

    ctx = json_object_get(link->json, "c");
    cred = link->table->connect_form.elts;
    ck = link->table->context.elts;

    /* names come from the mapping table: letters, digits and "_" */
    len = sizeof(head) + link->table->name.len + sizeof(tail);

    for (i = 0; i < link->table->connect_form.nelts; i++) {
        len += sizeof(field) + 2 * cred[i].len + 8;
    }

    for (i = 0; i < link->table->context.nelts; i++) {
        len += sizeof(field) + 2 * ck[i].name.len + 8;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(b->last, head, &link->table->name);

    /* optional context (Personio's app_id) comes with the link, if at all */
    for (i = 0; i < link->table->context.nelts; i++) {
        if (ck[i].required
            && json_object_get(ctx, (char *) ck[i].name.data) == NULL)
        {
            p = ngx_sprintf(p, field, &ck[i].name, &ck[i].name, "text");
        }
    }

    for (i = 0; i < link->table->connect_form.nelts; i++) {
        p = ngx_sprintf(p, field, &cred[i], &cred[i], "password");
    }

    b->last = ngx_cpymem(p, tail, sizeof(tail) - 1);
    b->last_buf = (r == r->main);
    b->last_in_chain = 1;

    /* the link is a capability: no referrer, no framing, no caching */
    if (ngx_http_hris_header_out(r, "Content-Security-Policy", &csp) != NGX_OK
        || ngx_http_hris_header_out(r, "Referrer-Policy", &policy) != NGX_OK
        || ngx_http_hris_header_out(r, "Cache-Control", &cache) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "text/html; charset=utf-8");
    r->headers_out.content_type_len = sizeof("text/html") - 1;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


void
ngx_http_hris_connect_posted(ngx_http_request_t *r)
{
    json_t                       *account, *creds, *context;
    ngx_int_t                     rc;
    ngx_str_t                     body, value, *cred;
    ngx_uint_t                    i;
    ngx_http_hris_link_t         *link;
    ngx_http_hris_connect_ctx_t  *ctx;
    ngx_http_hris_context_key_t  *ck;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hris_module);
    link = &ctx->link;

    rc = ngx_http_hris_request_body(r, &body);
    if (rc != NGX_OK || r->header_sent) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    context = json_deep_copy(json_object_get(link->json, "c"));
    if (context == NULL) {
        context = json_object();
    }

    creds = json_object();
    account = json_pack("{s:o, s:o}", "context", context, "credentials",
                        creds);
    if (account == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cred = link->table->connect_form.elts;
    ck = link->table->context.elts;

    for (i = 0; i < link->table->connect_form.nelts
                    + link->table->context.nelts; i++)
    {
        if (i >= link->table->connect_form.nelts
            && (!ck[i - link->table->connect_form.nelts].required
                || json_object_get(context, (char *)
                       ck[i - link->table->connect_form.nelts].name.data)))
        {
            continue;
        }

        rc = ngx_http_hris_form_value(r->pool, &body,
                 i < link->table->connect_form.nelts
                 ? &cred[i] : &ck[i - link->table->connect_form.nelts].name,
                 &value);

        if (rc != NGX_OK || value.len == 0
            || !ngx_http_hris_value_safe(value.data, value.len))
        {
            /* a line break ("%0D%0A") would end a header line upstream */
            json_decref(account);
            rc = ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                     rc == NGX_OK && value.len
                     ? "the form's \"%V\" holds a control character (a line "
                       "break?): type it again without"
                     : "the form needs \"%V\"",
                     i < link->table->connect_form.nelts
                     ? &cred[i]
                     : &ck[i - link->table->connect_form.nelts].name);
            ngx_http_finalize_request(r, rc);
            return;
        }

        json_object_set_new(i < link->table->connect_form.nelts
                            ? creds : context,
                            (char *) (i < link->table->connect_form.nelts
                                      ? cred[i].data
                                      : ck[i - link->table->connect_form.nelts]
                                        .name.data),
                            json_stringn((char *) value.data, value.len));
    }

    /* a value the provider's table refuses: the user can correct it */
    rc = ngx_http_hris_connect_store(r, link, account);

    ngx_http_finalize_request(r, rc);
}


/* One field of an application/x-www-form-urlencoded body, decoded. */

static ngx_int_t
ngx_http_hris_form_value(ngx_pool_t *pool, ngx_str_t *body, ngx_str_t *name,
    ngx_str_t *value)
{
    u_char  *p, *last, *end, *dst, *src;
    size_t   i;

    p = body->data;
    last = body->data + body->len;

    while (p < last) {
        end = ngx_strlchr(p, last, '&');
        if (end == NULL) {
            end = last;
        }

        if ((size_t) (end - p) > name->len && p[name->len] == '='
            && ngx_strncmp(p, name->data, name->len) == 0)
        {
            p += name->len + 1;

            dst = ngx_pnalloc(pool, end - p + 1);
            if (dst == NULL) {
                return NGX_ERROR;
            }

            for (i = 0; i < (size_t) (end - p); i++) {
                dst[i] = (p[i] == '+') ? ' ' : p[i];
            }

            value->data = dst;
            src = dst;
            ngx_unescape_uri(&dst, &src, end - p, 0);
            value->len = dst - value->data;

            return NGX_OK;
        }

        p = end + 1;
    }

    return NGX_DECLINED;
}

/*
 * The HTML pages of the connect flow, the only pages of the gateway that
 * people read: the frame every page shares (viewport, inline style), text
 * escaping, the headers that keep a page with a link in it to itself, and
 * the short page that says why a link cannot be used. API clients that
 * ask for JSON (Accept: application/json) get the error envelope instead.
 *
 * Everything written into a page that does not come from this file is
 * escaped: the tables' texts, the link's context (a tenant's), what the
 * end user typed, URLs.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>

#include "ngx_http_hris_connect.h"


/*
 * The one style sheet: inline, allowed by its hash in the CSP (no
 * 'unsafe-inline', no external file). Large targets and type for phones;
 * a focus ring that shows on every control.
 */
static const char  ngx_http_hris_page_css[] =
    "*{box-sizing:border-box}"
    "html{-webkit-text-size-adjust:100%;text-size-adjust:100%}"
    "body{margin:0;background:#f3f4f6;color:#1f2328;"
    "font:1rem/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,"
    "\"Helvetica Neue\",Arial,sans-serif}"
    "main{max-width:32rem;margin:0 auto;padding:1.5rem 1rem 3rem}"
    ".card{background:#fff;border:1px solid #d0d7de;border-radius:.5rem;"
    "padding:1.25rem;overflow-wrap:break-word}"
    "h1{font-size:1.5rem;line-height:1.25;margin:0 0 .75rem}"
    "p{margin:0 0 1rem}"
    ".given{margin:0 0 1.25rem;padding:0}"
    ".given div{display:flex;flex-wrap:wrap;gap:0 .5rem}"
    ".given dt{font-weight:600}.given dt::after{content:\":\"}"
    ".given dd{margin:0;overflow-wrap:anywhere}"
    ".field{margin:0 0 1.25rem}"
    "label{display:block;font-weight:600;margin:0 0 .25rem}"
    ".help{color:#4b5563;font-size:.9375rem;margin:0 0 .5rem}"
    "input{display:block;width:100%;min-height:2.75rem;margin:0;"
    "padding:.5rem .75rem;font:inherit;color:inherit;background:#fff;"
    "border:1px solid #6b7280;border-radius:.375rem}"
    "input[aria-invalid=true]{border:2px solid #b91c1c}"
    ".error{color:#b91c1c;font-weight:600;margin:.375rem 0 0}"
    ".alert{border:2px solid #b91c1c;background:#fef2f2;border-radius:"
    ".375rem;padding:.75rem 1rem;margin:0 0 1.25rem}"
    ".alert p{margin:0}"
    "button{display:block;width:100%;min-height:2.75rem;padding:.625rem 1rem;"
    "font:inherit;font-weight:600;color:#fff;background:#1d4ed8;border:0;"
    "border-radius:.375rem;cursor:pointer}"
    "button:hover{background:#1e40af}"
    "a{color:#1d4ed8}"
    ":focus-visible{outline:3px solid #1d4ed8;outline-offset:2px}"
    "input:focus-visible{outline-offset:1px}"
    ".back{margin:1.25rem 0 0;text-align:center}"
    "code{overflow-wrap:anywhere}";


static ngx_int_t ngx_http_hris_html_room(ngx_http_hris_html_t *h, size_t n);
static ngx_uint_t ngx_http_hris_origin(ngx_str_t *url, ngx_str_t *origin);


ngx_int_t
ngx_http_hris_html_init(ngx_http_hris_html_t *h, ngx_pool_t *pool)
{
    h->pool = pool;
    h->start = ngx_pnalloc(pool, 8192);
    if (h->start == NULL) {
        return NGX_ERROR;
    }

    h->pos = h->start;
    h->end = h->start + 8192;
    h->failed = 0;

    return NGX_OK;
}


/* Grows the page (in the request pool: pages are a few kilobytes). */

static ngx_int_t
ngx_http_hris_html_room(ngx_http_hris_html_t *h, size_t n)
{
    u_char  *p;
    size_t   size, used;

    if (h->failed) {
        return NGX_ERROR;
    }

    if ((size_t) (h->end - h->pos) >= n) {
        return NGX_OK;
    }

    used = h->pos - h->start;
    size = 2 * (h->end - h->start) + n;

    p = ngx_pnalloc(h->pool, size);
    if (p == NULL) {
        h->failed = 1;
        return NGX_ERROR;
    }

    ngx_memcpy(p, h->start, used);
    h->start = p;
    h->pos = p + used;
    h->end = p + size;

    return NGX_OK;
}


/* Markup written as it is: only this module's own text. */

void
ngx_http_hris_html_raw(ngx_http_hris_html_t *h, const char *s)
{
    size_t  n = ngx_strlen(s);

    if (ngx_http_hris_html_room(h, n) == NGX_OK) {
        h->pos = ngx_cpymem(h->pos, s, n);
    }
}


/* Any text, escaped for an element or a double-quoted attribute. */

void
ngx_http_hris_html_text(ngx_http_hris_html_t *h, ngx_str_t *s)
{
    size_t   i;
    u_char  *p;

    if (ngx_http_hris_html_room(h, 6 * s->len) != NGX_OK) {
        return;
    }

    p = h->pos;

    for (i = 0; i < s->len; i++) {
        switch (s->data[i]) {
        case '&':
            p = ngx_cpymem(p, "&amp;", 5);
            break;
        case '<':
            p = ngx_cpymem(p, "&lt;", 4);
            break;
        case '>':
            p = ngx_cpymem(p, "&gt;", 4);
            break;
        case '"':
            p = ngx_cpymem(p, "&quot;", 6);
            break;
        case '\'':
            p = ngx_cpymem(p, "&#39;", 5);
            break;
        default:
            *p++ = s->data[i];
        }
    }

    h->pos = p;
}


void
ngx_http_hris_html_ctext(ngx_http_hris_html_t *h, const char *s)
{
    ngx_str_t  str;

    str.data = (u_char *) s;
    str.len = ngx_strlen(s);

    ngx_http_hris_html_text(h, &str);
}


/* The head every page shares, and the start of its main content. */

void
ngx_http_hris_html_start(ngx_http_hris_html_t *h, ngx_str_t *title)
{
    ngx_http_hris_html_raw(h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
                           "<meta charset=\"utf-8\">\n"
                           "<meta name=\"viewport\" content=\"width=device-"
                           "width, initial-scale=1\">\n"
                           "<meta name=\"robots\" content=\"noindex\">\n"
                           "<title>");
    ngx_http_hris_html_text(h, title);
    ngx_http_hris_html_raw(h, "</title>\n<style>");
    ngx_http_hris_html_raw(h, ngx_http_hris_page_css);
    ngx_http_hris_html_raw(h, "</style>\n</head>\n<body>\n<main>\n"
                           "<div class=\"card\">\n");
}


void
ngx_http_hris_html_end(ngx_http_hris_html_t *h)
{
    ngx_http_hris_html_raw(h, "</main>\n</body>\n</html>\n");
}


/*
 * Sends a page. Its policy: nothing is loaded (default-src 'none'), the
 * style is the one above (by its hash), no script runs, no site frames
 * it; a form posts to the gateway only, and may be redirected from there
 * to "back" (the link's redirect_uri: Chromium applies form-action to the
 * redirect after a post too). No referrer (the link is a capability), no
 * caching.
 */

ngx_int_t
ngx_http_hris_html_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_http_hris_html_t *h, ngx_str_t *back)
{
    u_char        *p;
    ngx_int_t      rc;
    ngx_str_t      csp, origin, policy, cache, nosniff;
    ngx_buf_t     *b;
    ngx_chain_t    out;
    unsigned int   n;
    u_char         md[EVP_MAX_MD_SIZE];
    u_char         hash[64];
    ngx_str_t      digest, enc;

    if (h->failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = 0;
    if (EVP_Digest(ngx_http_hris_page_css, sizeof(ngx_http_hris_page_css) - 1,
                   md, &n, EVP_sha256(), NULL) != 1)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    digest.data = md;
    digest.len = n;
    enc.data = hash;
    ngx_encode_base64(&enc, &digest);

    if (back == NULL || !ngx_http_hris_origin(back, &origin)) {
        origin.len = 0;
    }

    csp.len = sizeof("default-src 'none'; style-src 'sha256-'; "
                     "form-action 'self' ; frame-ancestors 'none'; "
                     "base-uri 'none'") + enc.len + origin.len;
    csp.data = ngx_pnalloc(r->pool, csp.len);
    if (csp.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(csp.data, "default-src 'none'; style-src 'sha256-%V'; "
                    "form-action 'self'%s%V; frame-ancestors 'none'; "
                    "base-uri 'none'", &enc, origin.len ? " " : "", &origin);
    csp.len = p - csp.data;

    ngx_str_set(&policy, "no-referrer");
    ngx_str_set(&cache, "no-store");
    ngx_str_set(&nosniff, "nosniff");

    if (ngx_http_hris_header_out(r, "Content-Security-Policy", &csp) != NGX_OK
        || ngx_http_hris_header_out(r, "Referrer-Policy", &policy) != NGX_OK
        || ngx_http_hris_header_out(r, "Cache-Control", &cache) != NGX_OK
        || ngx_http_hris_header_out(r, "X-Content-Type-Options", &nosniff)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = h->start;
    b->last = h->pos;
    b->memory = 1;
    b->last_buf = (r == r->main);
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "text/html; charset=utf-8");
    r->headers_out.content_type_len = sizeof("text/html") - 1;

    /* as for the JSON errors: a failed connection is not kept */
    r->keepalive = r->keepalive && status < 500;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * scheme://host[:port] of an absolute URL, for the CSP: only when it is
 * made of characters that cannot end a source expression or a directive.
 */

static ngx_uint_t
ngx_http_hris_origin(ngx_str_t *url, ngx_str_t *origin)
{
    u_char  *p, *last, *host;

    last = url->data + url->len;
    host = ngx_strlcasestrn(url->data, last, (u_char *) "://", 3 - 1);
    if (host == NULL) {
        return 0;
    }

    for (p = url->data; p < host; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) {
            return 0;
        }
    }

    for (p = host + 3; p < last; p++) {
        if (*p == '/' || *p == '?' || *p == '#') {
            break;
        }

        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'
              || *p == ':' || *p == '[' || *p == ']'))
        {
            return 0;
        }
    }

    if (p == host + 3) {
        return 0;
    }

    origin->data = url->data;
    origin->len = p - url->data;

    return 1;
}


/*
 * The host part of a URL, to name the app a page sends the user back to;
 * the URL itself when it has none.
 */

void
ngx_http_hris_url_host(ngx_str_t *url, ngx_str_t *host)
{
    u_char  *p, *last;

    last = url->data + url->len;
    p = ngx_strlcasestrn(url->data, last, (u_char *) "://", 3 - 1);

    if (p == NULL) {
        *host = *url;
        return;
    }

    host->data = p + 3;

    for (p += 3; p < last && *p != '/' && *p != '?' && *p != '#'; p++) {
        /* void */
    }

    host->len = p - host->data;

    /* userinfo is no part of the name */
    p = ngx_strlchr(host->data, host->data + host->len, '@');
    if (p) {
        host->len -= p + 1 - host->data;
        host->data = p + 1;
    }
}


/* Whether the client asked for JSON rather than a page. */

ngx_uint_t
ngx_http_hris_wants_json(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return 0;
            }
            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("Accept") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Accept",
                               sizeof("Accept") - 1) == 0
            && ngx_strlcasestrn(h[i].value.data,
                                h[i].value.data + h[i].value.len,
                                (u_char *) "application/json",
                                sizeof("application/json") - 2)
            && ngx_strlcasestrn(h[i].value.data,
                                h[i].value.data + h[i].value.len,
                                (u_char *) "text/html",
                                sizeof("text/html") - 2) == NULL)
        {
            return 1;
        }
    }
}


/*
 * A link that cannot be used (altered, expired, used, another browser's
 * state): a short page for the person who opened it, or the JSON error
 * envelope for a client that asked for JSON. The message says what to do;
 * a page's title says what happened.
 */

ngx_int_t
ngx_http_hris_connect_refuse(ngx_http_request_t *r, ngx_uint_t status,
    ngx_http_hris_link_t *link, const char *title, const char *fmt, ...)
{
    u_char                *p;
    va_list                args;
    ngx_str_t              msg, t, name;
    ngx_http_hris_html_t   h;
    u_char                 buf[1024];

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    msg.data = buf;
    msg.len = p - buf;

    if (ngx_http_hris_wants_json(r)) {
        return ngx_http_hris_send_error(r, status, NULL, "%V", &msg);
    }

    ngx_log_error((status >= 500 ? NGX_LOG_ERR : NGX_LOG_INFO),
                  r->connection->log, 0, "hris: %ui: %V", status, &msg);

    /* a sentence for people: a capital first, a full stop last */
    if (msg.len && msg.data[0] >= 'a' && msg.data[0] <= 'z') {
        msg.data[0] -= 'a' - 'A';
    }

    if (msg.len && msg.len < sizeof(buf) && msg.data[msg.len - 1] != '.') {
        msg.data[msg.len++] = '.';
    }

    t.data = (u_char *) title;
    t.len = ngx_strlen(title);

    if (ngx_http_hris_html_init(&h, r->pool) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_hris_html_start(&h, &t);
    ngx_http_hris_html_raw(&h, "<h1>");
    ngx_http_hris_html_text(&h, &t);
    ngx_http_hris_html_raw(&h, "</h1>\n<p>");
    ngx_http_hris_html_text(&h, &msg);
    ngx_http_hris_html_raw(&h, "</p>\n");

    if (link && link->table) {
        name = link->table->display_name;
        ngx_http_hris_html_raw(&h, "<p class=\"help\">Provider: ");
        ngx_http_hris_html_text(&h, &name);
        ngx_http_hris_html_raw(&h, "</p>\n");
    }

    ngx_http_hris_html_raw(&h, "</div>\n");
    ngx_http_hris_html_end(&h);

    return ngx_http_hris_html_send(r, status, &h, NULL);
}

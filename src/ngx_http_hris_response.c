/*
 * Answers: JSON bodies and the error envelope of CONTRACT.md §6,
 * {"statusCode", "error", "message", "details"}. Messages say what to do;
 * they never carry a credential.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"


typedef struct {
    ngx_http_request_t  *request;
    ngx_chain_t         *out;
    ngx_chain_t        **last;
    ngx_buf_t           *buf;
} ngx_http_hris_dump_t;


static int ngx_http_hris_dump_cb(const char *buffer, size_t size, void *data);
static void ngx_http_hris_json_decref(void *data);
static const char *ngx_http_hris_reason(ngx_uint_t status);


ngx_int_t
ngx_http_hris_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body)
{
    ngx_int_t              rc;
    ngx_chain_t           *cl;
    ngx_http_hris_dump_t   d;

    ngx_memzero(&d, sizeof(ngx_http_hris_dump_t));
    d.request = r;
    d.last = &d.out;

    /* sorted keys would cost time; insertion order is the schema's order */
    if (json_dump_callback(body, ngx_http_hris_dump_cb, &d,
                           JSON_COMPACT | JSON_PRESERVE_ORDER)
        != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (d.buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    d.buf->last_buf = (r == r->main) ? 1 : 0;
    d.buf->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = 0;
    for (cl = d.out; cl; cl = cl->next) {
        r->headers_out.content_length_n += cl->buf->last - cl->buf->pos;
    }

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, d.out);
}


/* jansson writes in small pieces: gather them in 16k pool buffers */

static int
ngx_http_hris_dump_cb(const char *buffer, size_t size, void *data)
{
    size_t                 n;
    ngx_buf_t             *b;
    ngx_chain_t           *cl;
    ngx_http_hris_dump_t  *d = data;

    while (size) {
        b = d->buf;

        if (b == NULL || b->last == b->end) {
            b = ngx_create_temp_buf(d->request->pool,
                                    ngx_max(16384, size));
            if (b == NULL) {
                return -1;
            }

            cl = ngx_alloc_chain_link(d->request->pool);
            if (cl == NULL) {
                return -1;
            }

            cl->buf = b;
            cl->next = NULL;
            *d->last = cl;
            d->last = &cl->next;
            d->buf = b;
        }

        n = ngx_min(size, (size_t) (b->end - b->last));
        b->last = ngx_cpymem(b->last, buffer, n);
        buffer += n;
        size -= n;
    }

    return 0;
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

    if (status == NGX_HTTP_UNAUTHORIZED) {
        ngx_table_elt_t  *h;

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        h->hash = 1;
        ngx_str_set(&h->key, "WWW-Authenticate");
        ngx_str_set(&h->value, "Bearer");
    }

    /* our own envelope, not nginx's error page */
    r->keepalive = r->keepalive && status < 500;
    /* send_json copies the text out: the tree can go now */
    rc = ngx_http_hris_send_json(r, status, body);
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

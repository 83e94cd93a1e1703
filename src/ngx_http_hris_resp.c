/*
 * RESP2, written here rather than taken from hiredis: hiredis 0.14's
 * connect functions resolve names synchronously, so only its reader could
 * have served, and a reader bounded the way this module bounds whatever a
 * peer sends (reply size, nesting, element count) is as short as the glue
 * hiredis's would need. Unit-tested in t/unit/resp_test.c.
 *
 * A reply is parsed in two passes over the read buffer: the first only
 * measures (and says NGX_AGAIN while the reply is not whole: the buffer is
 * then parsed again from the reply's start when more bytes came; lengths
 * are skipped, not scanned, so a large bulk string costs nothing), the
 * second builds the reply in the caller's pool.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_hris_resp.h"


typedef struct {
    u_char         *last;
    ngx_pool_t     *pool;       /* NULL: only measure */
    ngx_uint_t      elts;
    const char     *err;
} ngx_http_hris_resp_parse_t;


static ngx_int_t ngx_http_hris_resp_value(ngx_http_hris_resp_parse_t *ps,
    u_char **pos, ngx_uint_t depth, ngx_http_hris_redis_reply_t *r);
static ngx_int_t ngx_http_hris_resp_int(u_char *p, u_char *last,
    int64_t *n);
static ngx_int_t ngx_http_hris_resp_str(ngx_http_hris_resp_parse_t *ps,
    ngx_str_t *str, u_char *p, size_t len);


/*
 * One reply at *pos: NGX_OK (*pos is past it; built into *reply when pool
 * is given), NGX_AGAIN (not whole yet), or NGX_ERROR (malformed or over a
 * limit; *err says which).
 */

ngx_int_t
ngx_http_hris_resp_parse(u_char **pos, u_char *last, ngx_pool_t *pool,
    ngx_http_hris_redis_reply_t *reply, const char **err)
{
    u_char                      *p;
    ngx_int_t                    rc;
    ngx_http_hris_resp_parse_t   ps;

    ngx_memzero(&ps, sizeof(ngx_http_hris_resp_parse_t));
    ps.last = last;
    p = *pos;

    rc = ngx_http_hris_resp_value(&ps, &p, 0, NULL);

    if (rc == NGX_OK && pool) {
        ngx_memzero(reply, sizeof(ngx_http_hris_redis_reply_t));
        ps.pool = pool;
        ps.elts = 0;
        p = *pos;

        rc = ngx_http_hris_resp_value(&ps, &p, 0, reply);
    }

    if (rc == NGX_OK) {
        *pos = p;

    } else if (rc == NGX_ERROR) {
        *err = ps.err ? ps.err : "out of memory";
    }

    return rc;
}


static ngx_int_t
ngx_http_hris_resp_value(ngx_http_hris_resp_parse_t *ps, u_char **pos,
    ngx_uint_t depth, ngx_http_hris_redis_reply_t *r)
{
    u_char      *p, *eol, type;
    int64_t      n;
    ngx_int_t    rc;
    ngx_uint_t   i;

    p = *pos;

    if (p >= ps->last) {
        return NGX_AGAIN;
    }

    if (depth > NGX_HTTP_HRIS_RESP_MAX_DEPTH) {
        ps->err = "arrays nested too deep";
        return NGX_ERROR;
    }

    type = *p++;

    for (eol = p; /* void */; eol++) {
        eol = ngx_strlchr(eol, ps->last, '\r');
        if (eol == NULL || eol + 1 == ps->last) {
            return NGX_AGAIN;
        }
        if (eol[1] == '\n') {
            break;
        }
    }

    switch (type) {

    case '+':
    case '-':
        if (ps->pool) {
            r->type = (type == '+') ? NGX_HTTP_HRIS_REDIS_STRING
                                    : NGX_HTTP_HRIS_REDIS_ERROR;
            if (ngx_http_hris_resp_str(ps, &r->str, p, eol - p) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        *pos = eol + 2;
        return NGX_OK;

    case ':':
        if (ngx_http_hris_resp_int(p, eol, &n) != NGX_OK) {
            ps->err = "a malformed integer";
            return NGX_ERROR;
        }

        if (ps->pool) {
            r->type = NGX_HTTP_HRIS_REDIS_INTEGER;
            r->integer = n;
        }

        *pos = eol + 2;
        return NGX_OK;

    case '$':
        if (ngx_http_hris_resp_int(p, eol, &n) != NGX_OK
            || n < -1 || n > NGX_HTTP_HRIS_RESP_MAX_REPLY)
        {
            ps->err = "a bulk string of a bad or too large length";
            return NGX_ERROR;
        }

        p = eol + 2;

        if (n == -1) {
            if (ps->pool) {
                r->type = NGX_HTTP_HRIS_REDIS_NIL;
            }
            *pos = p;
            return NGX_OK;
        }

        if (ps->last - p < n + 2) {
            return NGX_AGAIN;
        }

        if (p[n] != '\r' || p[n + 1] != '\n') {
            ps->err = "a bulk string longer than its length";
            return NGX_ERROR;
        }

        if (ps->pool) {
            r->type = NGX_HTTP_HRIS_REDIS_BULK;
            if (ngx_http_hris_resp_str(ps, &r->str, p, (size_t) n) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        *pos = p + n + 2;
        return NGX_OK;

    case '*':
        if (ngx_http_hris_resp_int(p, eol, &n) != NGX_OK || n < -1) {
            ps->err = "an array of a bad size";
            return NGX_ERROR;
        }

        p = eol + 2;

        if (n == -1) {
            if (ps->pool) {
                r->type = NGX_HTTP_HRIS_REDIS_NIL;
            }
            *pos = p;
            return NGX_OK;
        }

        /* counted before anything is read or allocated */
        ps->elts += (ngx_uint_t) ngx_min(n, NGX_HTTP_HRIS_RESP_MAX_ELTS + 1);

        if (ps->elts > NGX_HTTP_HRIS_RESP_MAX_ELTS) {
            ps->err = "more array elements than the limit (131072)";
            return NGX_ERROR;
        }

        if (ps->pool) {
            r->type = NGX_HTTP_HRIS_REDIS_ARRAY;
            r->nelts = (ngx_uint_t) n;
            r->elts = ngx_pcalloc(ps->pool,
                                  (n ? n : 1)
                                  * sizeof(ngx_http_hris_redis_reply_t));
            if (r->elts == NULL) {
                return NGX_ERROR;
            }
        }

        for (i = 0; i < (ngx_uint_t) n; i++) {
            rc = ngx_http_hris_resp_value(ps, &p, depth + 1,
                                          ps->pool ? &r->elts[i] : NULL);
            if (rc != NGX_OK) {
                return rc;
            }
        }

        *pos = p;
        return NGX_OK;

    default:
        ps->err = "not a RESP2 reply";
        return NGX_ERROR;
    }
}


static ngx_int_t
ngx_http_hris_resp_int(u_char *p, u_char *last, int64_t *n)
{
    int64_t     v;
    ngx_uint_t  neg;

    neg = (p < last && *p == '-');
    p += neg;

    /* 18 digits at most: no overflow to check (Redis's are 64-bit) */
    if (p == last || last - p > 18) {
        return NGX_ERROR;
    }

    for (v = 0; p < last; p++) {
        if (*p < '0' || *p > '9') {
            return NGX_ERROR;
        }
        v = v * 10 + (*p - '0');
    }

    *n = neg ? -v : v;

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_resp_str(ngx_http_hris_resp_parse_t *ps, ngx_str_t *str,
    u_char *p, size_t len)
{
    str->data = ngx_pnalloc(ps->pool, len + 1);
    if (str->data == NULL) {
        return NGX_ERROR;
    }

    *ngx_cpymem(str->data, p, len) = '\0';
    str->len = len;

    return NGX_OK;
}


/* The bytes of arguments as bulk strings ("$3\r\nGET\r\n"...). */

size_t
ngx_http_hris_resp_size(ngx_uint_t argc, ngx_str_t *argv)
{
    u_char      *p;
    size_t       len;
    ngx_uint_t   i;
    u_char       n[NGX_SIZE_T_LEN];

    len = 0;

    for (i = 0; i < argc; i++) {
        p = ngx_sprintf(n, "%uz", argv[i].len);
        len += sizeof("$\r\n\r\n") - 1 + (p - n) + argv[i].len;
    }

    return len;
}


u_char *
ngx_http_hris_resp_write(u_char *p, ngx_uint_t argc, ngx_str_t *argv)
{
    ngx_uint_t  i;

    for (i = 0; i < argc; i++) {
        p = ngx_sprintf(p, "$%uz\r\n", argv[i].len);
        if (argv[i].len) {
            p = ngx_cpymem(p, argv[i].data, argv[i].len);
        }
        *p++ = '\r';
        *p++ = '\n';
    }

    return p;
}

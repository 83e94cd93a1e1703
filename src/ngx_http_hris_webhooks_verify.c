/*
 * Verifying a provider's webhook request as its table says
 * (ngx_http_hris_webhooks.h): an HMAC over parts of the request, or a
 * token in a header, the query or the path, compared with a credential of
 * the account in constant time.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_webhooks_in.h"


static const char *ngx_http_hris_wh_hmac(ngx_http_request_t *r,
    ngx_http_hris_webhooks_t *wh, ngx_str_t *secret, ngx_str_t *body);
static ngx_uint_t ngx_http_hris_wh_equal(ngx_str_t *a, ngx_str_t *b);


/* NULL when the request verifies, or what failed (for the log). */

const char *
ngx_http_hris_webhooks_verify(ngx_http_request_t *r,
    ngx_http_hris_webhooks_t *wh, ngx_str_t *token, ngx_str_t *secret,
    ngx_str_t *body)
{
    ngx_str_t  *h, got;

    if (wh->verify == NGX_HTTP_HRIS_WH_HMAC) {
        return token->len ? "a path after the account id"
                          : ngx_http_hris_wh_hmac(r, wh, secret, body);
    }

    switch (wh->in) {

    case NGX_HTTP_HRIS_WH_IN_PATH:
        got = *token;
        break;

    case NGX_HTTP_HRIS_WH_IN_QUERY:
        if (token->len
            || ngx_http_arg(r, wh->name.data, wh->name.len, &got) != NGX_OK)
        {
            return "no token in the query";
        }
        break;

    default: /* NGX_HTTP_HRIS_WH_IN_HEADER */
        h = ngx_http_hris_webhooks_header(r, &wh->name);

        if (token->len || h == NULL || h->len < wh->prefix.len
            || ngx_strncasecmp(h->data, wh->prefix.data, wh->prefix.len)
               != 0)
        {
            return "no token in the header";
        }

        got.data = h->data + wh->prefix.len;
        got.len = h->len - wh->prefix.len;
        break;
    }

    return ngx_http_hris_wh_equal(&got, secret) ? NULL : "a wrong token";
}


static const char *
ngx_http_hris_wh_hmac(ngx_http_request_t *r, ngx_http_hris_webhooks_t *wh,
    ngx_str_t *secret, ngx_str_t *body)
{
    u_char                   *text, *p, mac[EVP_MAX_MD_SIZE], want[64],
                              hex[64];
    size_t                    len;
    time_t                    ts;
    ngx_str_t                *h, *sig;
    ngx_uint_t                i;
    unsigned int              maclen;
    ngx_http_hris_wh_part_t  *part;

    if (wh->timestamp.len) {
        h = ngx_http_hris_webhooks_header(r, &wh->timestamp);
        ts = h && h->len <= 12 ? ngx_atotm(h->data, h->len) : NGX_ERROR;

        if (ts == NGX_ERROR) {
            return "no timestamp";
        }

        if (ts < ngx_time() - wh->tolerance
            || ts > ngx_time() + wh->tolerance)
        {
            return "a stale timestamp";
        }
    }

    sig = ngx_http_hris_webhooks_header(r, &wh->name);

    if (sig == NULL || sig->len != sizeof(want)) {
        return "no signature";
    }

    /* hex either case; the comparison is with lower case */
    ngx_strlow(want, sig->data, sizeof(want));

    len = 0;
    part = wh->parts.elts;

    for (i = 0; i < wh->parts.nelts; i++) {
        h = part[i].header.len
            ? ngx_http_hris_webhooks_header(r, &part[i].header) : body;
        if (h == NULL) {
            return "a signed header missing";
        }

        len += h->len;
    }

    text = ngx_pnalloc(r->pool, len + 1);
    if (text == NULL) {
        return "no memory";
    }

    p = text;

    for (i = 0; i < wh->parts.nelts; i++) {
        h = part[i].header.len
            ? ngx_http_hris_webhooks_header(r, &part[i].header) : body;
        p = ngx_cpymem(p, h->data, h->len);
    }

    if (HMAC(EVP_sha256(), secret->data, (int) secret->len, text, len, mac,
             &maclen)
        == NULL
        || maclen * 2 != sizeof(hex))
    {
        return "no HMAC";
    }

    ngx_hex_dump(hex, mac, maclen);

    return CRYPTO_memcmp(hex, want, sizeof(want)) == 0 ? NULL
                                                       : "a wrong signature";
}


/* Constant time whatever the lengths: the digests are compared. */

static ngx_uint_t
ngx_http_hris_wh_equal(ngx_str_t *a, ngx_str_t *b)
{
    u_char        da[32], db[32];
    unsigned int  len;

    if (EVP_Digest(a->data, a->len, da, &len, EVP_sha256(), NULL) != 1
        || EVP_Digest(b->data, b->len, db, &len, EVP_sha256(), NULL) != 1)
    {
        return 0;
    }

    return CRYPTO_memcmp(da, db, sizeof(da)) == 0;
}


ngx_str_t *
ngx_http_hris_webhooks_header(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == name->len
            && ngx_strncasecmp(h[i].key.data, name->data, name->len) == 0)
        {
            return &h[i].value;
        }
    }
}

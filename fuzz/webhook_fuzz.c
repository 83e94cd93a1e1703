/*
 * libFuzzer target of the provider webhook verifier
 * (ngx_http_hris_webhooks_verify() in src/ngx_http_hris_webhooks_verify.c):
 * the three ways a table's "webhooks" section verifies a provider's POST,
 * each configured by hand as a table would compile it, fed with what a
 * stranger on the internet controls: the body, the headers' values, the
 * query and the path after the account id.
 *
 * The input: byte 0 chooses the kind (bits 0-1: an HMAC over the
 * timestamp header and the body, with a tolerance; a token in a header
 * after a prefix; in the query; in the path) and what the harness does
 * (bit 2: sign right, or send the fuzzer's signature or token; bit 3: a
 * timestamp the harness makes from byte 1 as an offset from now, or the
 * fuzzer's; bit 4: upper-case hex; bit 5: a path token as well; bit 6:
 * flip one character of the right value). Then length-prefixed fields:
 * the secret, the signature or token, the timestamp; the body is the rest.
 *
 * What must hold: no crash or out-of-bounds; the answer is NULL (verified)
 * exactly when the harness's own computation, with OpenSSL, says the
 * request carries the right signature or token; a timestamp further from
 * now than the tolerance, or none, is refused.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_webhooks_in.h"


#define FUZZ_TOLERANCE  300


typedef struct {
    const uint8_t  *p;
    size_t          n;
} fuzz_in_t;


static ngx_str_t
fuzz_field(fuzz_in_t *in)
{
    size_t     len;
    ngx_str_t  s;

    if (in->n == 0) {
        ngx_str_null(&s);
        return s;
    }

    len = ngx_min(in->p[0], in->n - 1);
    s.data = (u_char *) in->p + 1;
    s.len = len;
    in->p += 1 + len;
    in->n -= 1 + len;

    return s;
}


/* the harness's copy in the pool: the module may not read past it */

static ngx_str_t
fuzz_copy(ngx_pool_t *pool, u_char *data, size_t len)
{
    ngx_str_t  s;

    s.data = ngx_pnalloc(pool, len ? len : 1);
    if (s.data == NULL) {
        abort();
    }

    if (len) {
        ngx_memcpy(s.data, data, len);
    }

    s.len = len;

    return s;
}


static void
fuzz_header(ngx_list_t *l, char *name, ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    if (l->part.nelts == l->nalloc) {
        abort();
    }

    h = (ngx_table_elt_t *) l->part.elts + l->part.nelts++;
    ngx_memzero(h, sizeof(ngx_table_elt_t));
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;
    h->hash = 1;
}


static ngx_uint_t
fuzz_eq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len && ngx_memcmp(a->data, b->data, a->len) == 0;
}


static ngx_uint_t
fuzz_case_prefix(ngx_str_t *s, const char *prefix)
{
    size_t  i, n = strlen(prefix);

    if (s->len < n) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (ngx_tolower(s->data[i]) != ngx_tolower((u_char) prefix[i])) {
            return 0;
        }
    }

    return 1;
}


/* the right signature, in lower-case hex: HMAC-SHA256(secret, ts body) */

static void
fuzz_sign(ngx_pool_t *pool, ngx_str_t *secret, ngx_str_t *ts,
    ngx_str_t *body, u_char *hex)
{
    u_char        mac[EVP_MAX_MD_SIZE], *text;
    unsigned int  len;

    text = ngx_pnalloc(pool, ts->len + body->len + 1);
    if (text == NULL) {
        abort();
    }

    ngx_memcpy(text, ts->data, ts->len);
    ngx_memcpy(text + ts->len, body->data, body->len);

    if (HMAC(EVP_sha256(), secret->data, (int) secret->len, text,
             ts->len + body->len, mac, &len)
        == NULL
        || len != 32)
    {
        abort();
    }

    ngx_hex_dump(hex, mac, 32);
}


/* the harness's reading of a timestamp header: 1 to 12 digits, fresh */

static ngx_uint_t
fuzz_fresh(ngx_str_t *ts)
{
    size_t  i;
    time_t  t;

    if (ts->len == 0 || ts->len > 12) {
        return 0;
    }

    for (t = 0, i = 0; i < ts->len; i++) {
        if (ts->data[i] < '0' || ts->data[i] > '9') {
            return 0;
        }

        t = t * 10 + (ts->data[i] - '0');
    }

    return t >= ngx_time() - FUZZ_TOLERANCE
           && t <= ngx_time() + FUZZ_TOLERANCE;
}


static void
fuzz_mutate(ngx_str_t *s, uint8_t flags, uint8_t where)
{
    if ((flags & 0x40) && s->len) {
        s->data[where % s->len] ^= 0x01;
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                    *p, hex[64], ts_buf[NGX_TIME_T_LEN];
    uint8_t                    flags, off;
    fuzz_in_t                  in;
    ngx_str_t                  secret, sig, ts, body, token, value, got;
    ngx_str_t                  ts_name = ngx_string("X-Ts");
    ngx_uint_t                 expect, kind, fresh;
    ngx_pool_t                *pool;
    ngx_list_t                *headers;
    const char                *why;
    ngx_http_request_t         r;
    ngx_http_hris_wh_part_t   *part;
    ngx_http_hris_webhooks_t   wh;

    if (size < 2) {
        return 0;
    }

    flags = data[0];
    off = data[1];
    kind = flags & 3;
    in.p = data + 2;
    in.n = size - 2;

    pool = ngx_create_pool(4096, NULL);
    if (pool == NULL) {
        abort();
    }

    /* the account's credential is never empty: the handler refuses that */
    secret = fuzz_field(&in);
    secret = secret.len ? fuzz_copy(pool, secret.data, secret.len)
                        : fuzz_copy(pool, (u_char *) "s", 1);
    sig = fuzz_field(&in);
    sig = fuzz_copy(pool, sig.data, sig.len);
    ts = fuzz_field(&in);
    ts = fuzz_copy(pool, ts.data, ts.len);
    body = fuzz_copy(pool, (u_char *) in.p, in.n);
    ngx_str_null(&token);

    ngx_memzero(&r, sizeof(ngx_http_request_t));
    r.pool = pool;
    headers = &r.headers_in.headers;

    if (ngx_list_init(headers, pool, 4, sizeof(ngx_table_elt_t)) != NGX_OK) {
        abort();
    }

    ngx_memzero(&wh, sizeof(ngx_http_hris_webhooks_t));

    if (flags & 0x20) {
        token = fuzz_copy(pool, sig.data, sig.len);
    }

    switch (kind) {

    case 0:
        wh.verify = NGX_HTTP_HRIS_WH_HMAC;
        ngx_str_set(&wh.name, "X-Sig");
        wh.timestamp = ts_name;
        wh.tolerance = FUZZ_TOLERANCE;

        if (ngx_array_init(&wh.parts, pool, 2,
                           sizeof(ngx_http_hris_wh_part_t))
            != NGX_OK)
        {
            abort();
        }

        part = wh.parts.elts;
        part[0].header = ts_name;
        ngx_str_null(&part[1].header);
        wh.parts.nelts = 2;

        if (flags & 0x08) {
            /* off: -128 .. 127 times 4 seconds, fresh or stale */
            p = ngx_sprintf(ts_buf, "%L",
                            (int64_t) (ngx_time() + (int8_t) off * 4));
            ts = fuzz_copy(pool, ts_buf, p - ts_buf);
        }

        fresh = fuzz_fresh(&ts);

        if (flags & 0x04) {
            fuzz_sign(pool, &secret, &ts, &body, hex);

            if (flags & 0x10) {
                for (p = hex; p < hex + 64; p++) {
                    *p = ngx_toupper(*p);
                }
            }

            sig = fuzz_copy(pool, hex, 64);
            fuzz_mutate(&sig, flags, off);
        }

        if (ts.len || !(flags & 0x80)) {
            fuzz_header(headers, "x-ts", &ts);
        }

        fuzz_header(headers, "X-SIG", &sig);

        /* what the harness itself says: the right HMAC, lower-cased */
        fuzz_sign(pool, &secret, &ts, &body, hex);
        expect = token.len == 0 && fresh && sig.len == 64;

        for (p = sig.data; expect && p < sig.data + 64; p++) {
            expect = ngx_tolower(*p) == hex[p - sig.data];
        }

        if (token.len == 0 && (flags & 0x08) && ts.len
            && (int8_t) off * 4 >= -FUZZ_TOLERANCE
            && (int8_t) off * 4 <= FUZZ_TOLERANCE && !fresh)
        {
            fprintf(stderr, "a fresh timestamp read as stale\n");
            abort();
        }

        break;

    case 1:
        wh.verify = NGX_HTTP_HRIS_WH_TOKEN;
        wh.in = NGX_HTTP_HRIS_WH_IN_HEADER;
        ngx_str_set(&wh.name, "Authorization");
        ngx_str_set(&wh.prefix, "Bearer ");

        if (flags & 0x04) {
            value.len = 7 + secret.len;
            value.data = ngx_pnalloc(pool, value.len);
            if (value.data == NULL) {
                abort();
            }

            p = ngx_cpymem(value.data, (flags & 0x10) ? "bEARER " : "Bearer ",
                           7);
            ngx_memcpy(p, secret.data, secret.len);
            fuzz_mutate(&value, flags, off);

        } else {
            value = sig;
        }

        /* a decoy first, of another name; the body as the real one's */
        fuzz_header(headers, "Authorisation", &body);
        fuzz_header(headers, "authorization", &value);

        got.data = value.data + 7;
        got.len = value.len >= 7 ? value.len - 7 : 0;
        expect = token.len == 0 && fuzz_case_prefix(&value, "Bearer ")
                 && fuzz_eq(&got, &secret);
        break;

    case 2:
        wh.verify = NGX_HTTP_HRIS_WH_TOKEN;
        wh.in = NGX_HTTP_HRIS_WH_IN_QUERY;
        ngx_str_set(&wh.name, "token");

        if (flags & 0x04) {
            /* the fuzzer's arguments first, then the right one */
            r.args.len = sig.len + 7 + secret.len;
            r.args.data = ngx_pnalloc(pool, r.args.len);
            if (r.args.data == NULL) {
                abort();
            }

            p = ngx_cpymem(r.args.data, sig.data, sig.len);
            p = ngx_cpymem(p, "&token=", 7);
            ngx_memcpy(p, secret.data, secret.len);

        } else {
            r.args = sig;
        }

        /* what nginx's argument reader gives (the stub) must be the key */
        expect = token.len == 0
                 && ngx_http_arg(&r, wh.name.data, wh.name.len, &got)
                    == NGX_OK
                 && fuzz_eq(&got, &secret);

        if ((flags & 0x04) && token.len == 0 && !expect
            && ngx_strlchr(sig.data, sig.data + sig.len, '&') == NULL
            && ngx_strlchr(secret.data, secret.data + secret.len, '&')
               == NULL
            && !fuzz_case_prefix(&sig, "token="))
        {
            fprintf(stderr, "the right query token not found\n");
            abort();
        }

        break;

    default:
        wh.verify = NGX_HTTP_HRIS_WH_TOKEN;
        wh.in = NGX_HTTP_HRIS_WH_IN_PATH;

        if (flags & 0x04) {
            token = fuzz_copy(pool, secret.data, secret.len);
            fuzz_mutate(&token, flags, off);

        } else {
            token = sig;
        }

        expect = fuzz_eq(&token, &secret);
        break;
    }

    why = ngx_http_hris_webhooks_verify(&r, &wh, &token, &secret, &body);

    if ((why == NULL) != (expect != 0)) {
        fprintf(stderr, "kind %u: verified %s, expected %s (%s)\n",
                (unsigned) kind, why ? "no" : "yes", expect ? "yes" : "no",
                why ? why : "-");
        abort();
    }

    if (kind == 0 && why == NULL && !fuzz_fresh(&ts)) {
        fprintf(stderr, "a stale or missing timestamp verified\n");
        abort();
    }

    ngx_destroy_pool(pool);

    return 0;
}

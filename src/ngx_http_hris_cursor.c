/*
 * next_cursor: the position in the provider's list, sealed so a client can
 * neither forge nor reuse it elsewhere. Format:
 *
 *     base64url(state JSON) "." base64url(HMAC-SHA256(key, binding \0 state))
 *
 * The binding (account, resource and filters) is signed but not carried:
 * a cursor presented with another binding fails like a tampered one.
 *
 * A provider's own cursor may be long, and it is carried whole: the only
 * bound is the request line a cursor comes back in (nginx's
 * large_client_header_buffers), checked when one is issued.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ngx_http_hris.h"


static ngx_int_t ngx_http_hris_cursor_mac(ngx_pool_t *pool, u_char *key,
    ngx_str_t *binding, ngx_str_t *payload, u_char *mac);


ngx_int_t
ngx_http_hris_cursor_seal(ngx_pool_t *pool, u_char *key, ngx_str_t *binding,
    json_t *state, ngx_str_t *out)
{
    char       *dump;
    u_char     *start;
    ngx_str_t   payload, src, dst;
    u_char      mac[32];

    dump = json_dumps(state, JSON_COMPACT);
    if (dump == NULL) {
        return NGX_ERROR;
    }

    payload.data = (u_char *) dump;
    payload.len = ngx_strlen(dump);

    start = ngx_pnalloc(pool, ngx_base64_encoded_length(payload.len) + 1
                              + ngx_base64_encoded_length(sizeof(mac)));

    if (start == NULL
        || ngx_http_hris_cursor_mac(pool, key, binding, &payload, mac)
           != NGX_OK)
    {
        free(dump);
        return NGX_ERROR;
    }

    dst.data = start;
    ngx_encode_base64url(&dst, &payload);
    free(dump);

    dst.data[dst.len] = '.';

    out->data = start;
    out->len = dst.len + 1;

    src.data = mac;
    src.len = sizeof(mac);
    dst.data = start + out->len;
    ngx_encode_base64url(&dst, &src);

    out->len += dst.len;

    return NGX_OK;
}


/*
 * Returns NGX_OK with *state (a new reference), or NGX_DECLINED when the
 * cursor is malformed, altered or bound to something else.
 */

ngx_int_t
ngx_http_hris_cursor_open(ngx_pool_t *pool, u_char *key, ngx_str_t *binding,
    ngx_str_t *in, json_t **state)
{
    u_char     *dot;
    json_t     *js;
    ngx_str_t   enc, payload, macenc, mac, check;
    u_char      want[32];

    if (in->len == 0) {
        return NGX_DECLINED;
    }

    dot = ngx_strlchr(in->data, in->data + in->len, '.');
    if (dot == NULL) {
        return NGX_DECLINED;
    }

    enc.data = in->data;
    enc.len = dot - in->data;
    macenc.data = dot + 1;
    macenc.len = in->data + in->len - macenc.data;

    payload.data = ngx_pnalloc(pool, ngx_base64_decoded_length(enc.len) + 1);
    mac.data = ngx_pnalloc(pool, ngx_base64_decoded_length(macenc.len) + 1);
    if (payload.data == NULL || mac.data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_decode_base64url(&payload, &enc) != NGX_OK
        || ngx_decode_base64url(&mac, &macenc) != NGX_OK
        || mac.len != sizeof(want))
    {
        return NGX_DECLINED;
    }

    /*
     * decoding ignores the spare bits of the last character and stops at
     * "=": only the canonical encoding is accepted, so that an altered
     * cursor never opens (CONTRACT.md §4)
     */

    check.data = ngx_pnalloc(pool, ngx_base64_encoded_length(
                                       ngx_max(payload.len, mac.len)));
    if (check.data == NULL) {
        return NGX_ERROR;
    }

    ngx_encode_base64url(&check, &payload);
    if (check.len != enc.len
        || ngx_memcmp(check.data, enc.data, enc.len) != 0)
    {
        return NGX_DECLINED;
    }

    ngx_encode_base64url(&check, &mac);
    if (check.len != macenc.len
        || ngx_memcmp(check.data, macenc.data, macenc.len) != 0)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_hris_cursor_mac(pool, key, binding, &payload, want)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (CRYPTO_memcmp(want, mac.data, sizeof(want)) != 0) {
        return NGX_DECLINED;
    }

    js = json_loadb((char *) payload.data, payload.len, 0, NULL);
    if (js == NULL || !json_is_object(js)) {
        json_decref(js);
        return NGX_DECLINED;
    }

    *state = js;

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_cursor_mac(ngx_pool_t *pool, u_char *key, ngx_str_t *binding,
    ngx_str_t *payload, u_char *mac)
{
    u_char  *msg, *p;

    msg = ngx_pnalloc(pool, binding->len + 1 + payload->len);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(msg, binding->data, binding->len);
    *p++ = '\0';
    p = ngx_cpymem(p, payload->data, payload->len);

    return ngx_http_hris_hmac_sha256(key, 32, msg, p - msg, mac);
}

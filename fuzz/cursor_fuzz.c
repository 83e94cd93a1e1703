/*
 * libFuzzer target of the cursor opener (src/ngx_http_hris_cursor.c) with
 * a fixed key and binding. The first byte picks what the rest is:
 *
 *   0  a cursor as a client sends it: opening never crashes, and what
 *      opens is an object (the fuzzer cannot forge the MAC: 1 and 2 reach
 *      past it)
 *   1  a payload, signed here the way the format says: it opens exactly
 *      when it is a JSON object, and then as that object
 *   2  a JSON state: when it is an object, seal then open round-trips,
 *      and the same cursor with another binding does not open
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ngx_http_hris.h"


static u_char     fuzz_key[32] = "0123456789abcdef0123456789abcdef";
static ngx_str_t  fuzz_binding = ngx_string("acct-1\0employees\0status=active");
static ngx_str_t  fuzz_other = ngx_string("acct-2\0employees\0status=active");


static ngx_int_t
fuzz_open(ngx_pool_t *pool, ngx_str_t *binding, const u_char *data,
    size_t size, json_t **state)
{
    ngx_int_t  rc;
    ngx_str_t  in;

    /* a copy of exactly size bytes: ASan sees any read past the end */
    in.data = malloc(size ? size : 1);
    if (in.data == NULL) {
        abort();
    }

    if (size) {
        memcpy(in.data, data, size);
    }

    in.len = size;
    *state = NULL;

    rc = ngx_http_hris_cursor_open(pool, fuzz_key, binding, &in, state);

    free(in.data);

    if (rc == NGX_OK && !json_is_object(*state)) {
        fprintf(stderr, "a cursor opened as something else than an object\n");
        abort();
    }

    if (rc != NGX_OK && rc != NGX_DECLINED) {
        fprintf(stderr, "opening failed: %d\n", (int) rc);
        abort();
    }

    return rc;
}


/* payload "." mac, the MAC computed here as the format describes it */

static void
fuzz_signed(ngx_pool_t *pool, const u_char *data, size_t size)
{
    u_char        *msg, *buf;
    json_t        *state, *want;
    ngx_int_t      rc;
    ngx_str_t      payload, mac, dst;
    unsigned int   len;
    u_char         sum[32];

    msg = malloc(fuzz_binding.len + 1 + size);
    if (msg == NULL) {
        abort();
    }

    memcpy(msg, fuzz_binding.data, fuzz_binding.len);
    msg[fuzz_binding.len] = '\0';
    if (size) {
        memcpy(msg + fuzz_binding.len + 1, data, size);
    }

    len = sizeof(sum);
    if (HMAC(EVP_sha256(), fuzz_key, 32, msg, fuzz_binding.len + 1 + size,
             sum, &len) == NULL)
    {
        abort();
    }

    free(msg);

    buf = malloc(ngx_base64_encoded_length(size) + 1
                 + ngx_base64_encoded_length(sizeof(sum)));
    if (buf == NULL) {
        abort();
    }

    payload.data = (u_char *) data;
    payload.len = size;
    dst.data = buf;
    ngx_encode_base64url(&dst, &payload);
    buf[dst.len] = '.';

    mac.data = sum;
    mac.len = sizeof(sum);
    payload.len = dst.len + 1;
    dst.data = buf + payload.len;
    ngx_encode_base64url(&dst, &mac);

    rc = fuzz_open(pool, &fuzz_binding, buf, payload.len + dst.len, &state);

    free(buf);

    want = json_loadb((const char *) data, size, 0, NULL);

    if (json_is_object(want) != (rc == NGX_OK)
        || (rc == NGX_OK && !json_equal(want, state)))
    {
        fprintf(stderr, "a signed payload opened wrongly: rc %d\n", (int) rc);
        abort();
    }

    json_decref(want);
    json_decref(state);
}


static void
fuzz_round_trip(ngx_pool_t *pool, const u_char *data, size_t size)
{
    json_t     *want, *state;
    ngx_str_t   out;

    want = json_loadb((const char *) data, size, 0, NULL);

    if (!json_is_object(want)) {
        json_decref(want);
        return;
    }

    if (ngx_http_hris_cursor_seal(pool, fuzz_key, &fuzz_binding, want, &out)
        != NGX_OK)
    {
        abort();
    }

    if (fuzz_open(pool, &fuzz_binding, out.data, out.len, &state) != NGX_OK
        || !json_equal(want, state))
    {
        fprintf(stderr, "seal then open did not round-trip\n");
        abort();
    }

    json_decref(state);

    if (fuzz_open(pool, &fuzz_other, out.data, out.len, &state)
        != NGX_DECLINED)
    {
        fprintf(stderr, "a cursor opened under another binding\n");
        abort();
    }

    json_decref(want);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t      *state;
    ngx_pool_t  *pool;

    if (size == 0) {
        return 0;
    }

    pool = ngx_create_pool(1024, NULL);
    if (pool == NULL) {
        abort();
    }

    switch (data[0] % 3) {

    case 0:
        if (fuzz_open(pool, &fuzz_binding, data + 1, size - 1, &state)
            == NGX_OK)
        {
            json_decref(state);
        }
        break;

    case 1:
        fuzz_signed(pool, data + 1, size - 1);
        break;

    default:
        fuzz_round_trip(pool, data + 1, size - 1);
        break;
    }

    ngx_destroy_pool(pool);

    return 0;
}

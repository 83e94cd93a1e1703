/*
 * ngx_encode_base64url() and ngx_decode_base64url() for the fuzz targets,
 * which link no nginx core (t/unit/stubs.c has its own ngx_vslprintf):
 * nginx's contract, written here. Encoding without padding; decoding
 * stops at the first "=", refuses a character outside the alphabet or a
 * length of 1 mod 4, and ignores the spare bits of the last character.
 */

#include <ngx_config.h>
#include <ngx_core.h>


static const char  fuzz_b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


void
ngx_encode_base64url(ngx_str_t *dst, ngx_str_t *src)
{
    u_char    *d, *s;
    size_t     len;
    uint32_t   v;

    s = src->data;
    d = dst->data;

    for (len = src->len; len >= 3; len -= 3, s += 3) {
        v = (s[0] << 16) | (s[1] << 8) | s[2];
        *d++ = fuzz_b64url[(v >> 18) & 63];
        *d++ = fuzz_b64url[(v >> 12) & 63];
        *d++ = fuzz_b64url[(v >> 6) & 63];
        *d++ = fuzz_b64url[v & 63];
    }

    if (len == 2) {
        v = (s[0] << 16) | (s[1] << 8);
        *d++ = fuzz_b64url[(v >> 18) & 63];
        *d++ = fuzz_b64url[(v >> 12) & 63];
        *d++ = fuzz_b64url[(v >> 6) & 63];

    } else if (len == 1) {
        v = s[0] << 16;
        *d++ = fuzz_b64url[(v >> 18) & 63];
        *d++ = fuzz_b64url[(v >> 12) & 63];
    }

    dst->len = d - dst->data;
}


static int
fuzz_b64url_value(u_char c)
{
    const char  *p;

    if (c == '\0') {
        return -1;
    }

    p = strchr(fuzz_b64url, c);

    return p ? p - fuzz_b64url : -1;
}


ngx_int_t
ngx_decode_base64url(ngx_str_t *dst, ngx_str_t *src)
{
    u_char    *d;
    size_t     len, i;
    uint32_t   v;
    ngx_uint_t bits;

    for (len = 0; len < src->len; len++) {
        if (src->data[len] == '=') {
            break;
        }

        if (fuzz_b64url_value(src->data[len]) < 0) {
            return NGX_ERROR;
        }
    }

    if (len % 4 == 1) {
        return NGX_ERROR;
    }

    d = dst->data;
    v = 0;
    bits = 0;

    for (i = 0; i < len; i++) {
        v = (v << 6) | fuzz_b64url_value(src->data[i]);
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            *d++ = (u_char) (v >> bits);
        }
    }

    dst->len = d - dst->data;

    return NGX_OK;
}

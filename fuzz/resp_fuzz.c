/*
 * libFuzzer target of the Redis reply parser (src/ngx_http_hris_resp.c).
 * Besides never reading out of bounds: measuring (no pool) and parsing
 * agree on the result and on where the reply ends, and a reply cut one
 * byte before its end is NGX_AGAIN with nothing consumed.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_hris_resp.h"


static ngx_int_t
fuzz_parse(const uint8_t *data, size_t size, ngx_pool_t *pool,
    ngx_http_hris_redis_reply_t *reply, size_t *used)
{
    u_char      *buf, *p;
    ngx_int_t    rc;
    const char  *err;

    /* a copy of exactly size bytes: ASan sees any read past the end */
    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        abort();
    }

    if (size) {
        memcpy(buf, data, size);
    }

    p = buf;
    err = NULL;

    rc = ngx_http_hris_resp_parse(&p, buf + size, pool, reply, &err);

    if (p < buf || p > buf + size) {
        abort();
    }

    *used = p - buf;

    if (rc == NGX_ERROR && err == NULL) {
        fprintf(stderr, "an error without its message\n");
        abort();
    }

    free(buf);

    return rc;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                        used, mused, cused;
    ngx_int_t                     rc, mrc, crc;
    ngx_pool_t                   *pool;
    ngx_http_hris_redis_reply_t   reply;

    pool = ngx_create_pool(1024, NULL);
    if (pool == NULL) {
        abort();
    }

    rc = fuzz_parse(data, size, pool, &reply, &used);
    mrc = fuzz_parse(data, size, NULL, NULL, &mused);

    if (rc != mrc || (rc == NGX_OK && used != mused)) {
        fprintf(stderr, "measuring and parsing disagree: %d/%zu, %d/%zu\n",
                (int) rc, used, (int) mrc, mused);
        abort();
    }

    if (rc != NGX_OK && used != 0) {
        fprintf(stderr, "consumed %zu bytes without a reply\n", used);
        abort();
    }

    if (rc == NGX_OK) {
        if (used == 0) {
            abort();
        }

        crc = fuzz_parse(data, used - 1, pool, &reply, &cused);

        if (crc != NGX_AGAIN || cused != 0) {
            fprintf(stderr, "a reply cut before its end: rc %d, used %zu\n",
                    (int) crc, cused);
            abort();
        }
    }

    ngx_destroy_pool(pool);

    return 0;
}

/*
 * Tests of src/ngx_http_hris_digest.c: the cached SHA-256 and the HMAC
 * context that keeps its key give what OpenSSL's one-shot EVP_Digest()
 * and HMAC() give, for keys of every length around the kept size, the
 * same key again and again (the context started over, nothing of the last
 * message left in it), keys that alternate, and after the exit's free.
 * Prints TAP.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ngx_http_hris.h"


static int  tests, failed;


static void
ok(int cond, const char *name)
{
    tests++;

    if (!cond) {
        failed++;
    }

    printf("%sok %d - %s\n", cond ? "" : "not ", tests, name);
}


static int
same_hmac(const u_char *key, size_t klen, const u_char *msg, size_t len)
{
    u_char        want[32], got[32];
    unsigned int  n;

    n = sizeof(want);
    HMAC(EVP_sha256(), key, (int) klen, msg, len, want, &n);

    memset(got, 0, sizeof(got));

    if (ngx_http_hris_hmac_sha256(key, klen, msg, len, got) != NGX_OK) {
        return 0;
    }

    return n == 32 && memcmp(want, got, 32) == 0;
}


int
main(void)
{
    u_char        key[200], key2[32], msg[300], want[32], got[32];
    size_t        i, k;
    unsigned int  n;
    int           all;

    for (i = 0; i < sizeof(key); i++) {
        key[i] = (u_char) (i * 7 + 1);
    }

    for (i = 0; i < sizeof(key2); i++) {
        key2[i] = (u_char) (255 - i);
    }

    for (i = 0; i < sizeof(msg); i++) {
        msg[i] = (u_char) (i * 13 + 5);
    }

    /* SHA-256 through the fetched algorithm */
    n = 32;
    EVP_Digest(msg, 100, want, &n, EVP_sha256(), NULL);
    EVP_Digest(msg, 100, got, &n, ngx_http_hris_sha256_md(), NULL);
    ok(memcmp(want, got, 32) == 0, "sha256: the fetched algorithm");
    EVP_Digest(msg, 100, got, &n, ngx_http_hris_sha256_md(), NULL);
    ok(memcmp(want, got, 32) == 0, "sha256: fetched once, used again");

    /* every key length from none to past SHA-256's block, twice each */
    all = 1;

    for (k = 0; k <= 130; k++) {
        all &= same_hmac(key, k, msg, 77);
        all &= same_hmac(key, k, msg, 77);
    }

    ok(all, "hmac: keys of 0 to 130 bytes, each twice in a row");

    /* one key, many messages: the context starts over each time */
    all = 1;

    for (i = 0; i <= sizeof(msg); i++) {
        all &= same_hmac(key, 32, msg, i);
    }

    ok(all, "hmac: the same key over messages of 0 to 300 bytes");

    /* two keys in turn, as a cursor and a webhook secret would */
    all = 1;

    for (i = 0; i < 50; i++) {
        all &= same_hmac(key, 32, msg, i);
        all &= same_hmac(key2, 32, msg, i);
        all &= same_hmac(key, 100, msg, i);
    }

    ok(all, "hmac: keys in turn, a long one among them");

    /* a key that differs from the kept one in its last byte only */
    memcpy(key2, key, 32);
    key2[31] ^= 1;
    ok(same_hmac(key, 32, msg, 10) && same_hmac(key2, 32, msg, 10)
       && same_hmac(key, 32, msg, 10), "hmac: a key one bit apart");

    /* a key of the same length that is a prefix's neighbour */
    ok(same_hmac(key, 31, msg, 10) && same_hmac(key, 32, msg, 10),
       "hmac: a key one byte shorter");

    ngx_http_hris_digest_free();
    ok(same_hmac(key, 32, msg, 10), "hmac: after the exit's free");
    n = 32;
    EVP_Digest(msg, 100, got, &n, ngx_http_hris_sha256_md(), NULL);
    ok(memcmp(want, got, 32) == 0, "sha256: after the exit's free");

    ngx_http_hris_digest_free();

    printf("1..%d\n", tests);

    return failed ? 1 : 0;
}

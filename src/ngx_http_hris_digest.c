/*
 * SHA-256 and HMAC-SHA256 for the paths every request takes (the API
 * key's digest, the cursor's seal).
 *
 * With OpenSSL 3, EVP_sha256() in EVP_Digest() or HMAC() is only a name:
 * each call fetches the algorithm from the provider again (a lookup under
 * a lock) and HMAC() builds and frees a MAC context: 1.6% of a unified
 * list request's CPU (bench/README.md). Here the algorithm is fetched
 * once per process, and the HMAC context keeps its key, so that a cursor
 * sealed with the same key as the last one costs only its two hashes.
 * These run on the event loop's thread only.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ngx_http_hris.h"


#if (OPENSSL_VERSION_NUMBER >= 0x30000000L)

#include <openssl/core_names.h>


/* a key longer than SHA-256's block is hashed first: not kept then */
#define NGX_HTTP_HRIS_HMAC_KEEP  64


static EVP_MD       *ngx_http_hris_sha256_alg;
static EVP_MAC      *ngx_http_hris_hmac_alg;
static EVP_MAC_CTX  *ngx_http_hris_hmac_ctx;
static u_char        ngx_http_hris_hmac_key[NGX_HTTP_HRIS_HMAC_KEEP];
static size_t        ngx_http_hris_hmac_key_len = (size_t) -1;


const EVP_MD *
ngx_http_hris_sha256_md(void)
{
    if (ngx_http_hris_sha256_alg == NULL) {
        ngx_http_hris_sha256_alg = EVP_MD_fetch(NULL, "SHA256", NULL);

        if (ngx_http_hris_sha256_alg == NULL) {
            /* the slow way still works */
            return EVP_sha256();
        }
    }

    return ngx_http_hris_sha256_alg;
}


/* the worker's exit: nothing of OpenSSL's left for a leak checker */

void
ngx_http_hris_digest_free(void)
{
    EVP_MAC_CTX_free(ngx_http_hris_hmac_ctx);
    EVP_MAC_free(ngx_http_hris_hmac_alg);
    EVP_MD_free(ngx_http_hris_sha256_alg);

    ngx_http_hris_hmac_ctx = NULL;
    ngx_http_hris_hmac_alg = NULL;
    ngx_http_hris_sha256_alg = NULL;

    OPENSSL_cleanse(ngx_http_hris_hmac_key, NGX_HTTP_HRIS_HMAC_KEEP);
    ngx_http_hris_hmac_key_len = (size_t) -1;
}


static ngx_int_t
ngx_http_hris_hmac_key_set(const u_char *key, size_t len)
{
    OSSL_PARAM  params[2];

    if (ngx_http_hris_hmac_ctx == NULL) {
        ngx_http_hris_hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (ngx_http_hris_hmac_alg == NULL) {
            return NGX_ERROR;
        }

        ngx_http_hris_hmac_ctx = EVP_MAC_CTX_new(ngx_http_hris_hmac_alg);
        if (ngx_http_hris_hmac_ctx == NULL) {
            return NGX_ERROR;
        }
    }

    /* until the new key is in, no call may take the context as keyed */
    OPENSSL_cleanse(ngx_http_hris_hmac_key, NGX_HTTP_HRIS_HMAC_KEEP);
    ngx_http_hris_hmac_key_len = (size_t) -1;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *) "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();

    if (EVP_MAC_init(ngx_http_hris_hmac_ctx, key, len, params) != 1) {
        return NGX_ERROR;
    }

    if (len <= NGX_HTTP_HRIS_HMAC_KEEP) {
        ngx_memcpy(ngx_http_hris_hmac_key, key, len);
        ngx_http_hris_hmac_key_len = len;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_hris_hmac_sha256(const u_char *key, size_t key_len,
    const u_char *msg, size_t len, u_char *mac)
{
    size_t  n;

    if (key_len == ngx_http_hris_hmac_key_len
        && CRYPTO_memcmp(key, ngx_http_hris_hmac_key, key_len) == 0)
    {
        /* the same key: the context starts again from its keyed state */
        if (EVP_MAC_init(ngx_http_hris_hmac_ctx, NULL, 0, NULL) != 1) {
            return NGX_ERROR;
        }

    } else if (ngx_http_hris_hmac_key_set(key, key_len) != NGX_OK) {
        return NGX_ERROR;
    }

    if (EVP_MAC_update(ngx_http_hris_hmac_ctx, msg, len) != 1
        || EVP_MAC_final(ngx_http_hris_hmac_ctx, mac, &n, 32) != 1
        || n != 32)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


#else


const EVP_MD *
ngx_http_hris_sha256_md(void)
{
    return EVP_sha256();
}


void
ngx_http_hris_digest_free(void)
{
}


ngx_int_t
ngx_http_hris_hmac_sha256(const u_char *key, size_t key_len,
    const u_char *msg, size_t len, u_char *mac)
{
    unsigned int  n;

    n = 32;

    if (HMAC(EVP_sha256(), key, (int) key_len, msg, len, mac, &n) == NULL
        || n != 32)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


#endif

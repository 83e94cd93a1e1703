/*
 * Sealed credentials: "sealed:v1:" base64url(nonce | ciphertext | tag),
 * AES-256-GCM under the key in the file hris_secrets_key names. Values
 * stay sealed in memory; each upstream call opens the account's sealed
 * values into request memory that is zeroed when the request ends, so a
 * secret is in clear only around the call that needs it.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ngx_http_hris.h"


#define NGX_HTTP_HRIS_SEALED      "sealed:v1:"
#define NGX_HTTP_HRIS_NONCE_LEN   12
#define NGX_HTTP_HRIS_TAG_LEN     16
#define NGX_HTTP_HRIS_AAD         "ngx_http_hris sealed v1"


static ngx_int_t ngx_http_hris_secret_open(ngx_pool_t *pool, u_char *key,
    ngx_str_t *in, ngx_str_t *out);
static void ngx_http_hris_secret_cleanse(void *data);


/* hris_secrets_key: 32 bytes, as 64 hex digits (a newline may follow) */

ngx_int_t
ngx_http_hris_secrets_key_load(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf)
{
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_uint_t       i;
    ngx_int_t        v;
    u_char           buf[130];

    if (hmcf->secrets_key_file.len == 0) {
        return NGX_OK;
    }

    if (ngx_conf_full_name(cf->cycle, &hmcf->secrets_key_file, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    fd = ngx_open_file(hmcf->secrets_key_file.data, NGX_FILE_RDONLY,
                       NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno, "hris: cannot open "
                           "hris_secrets_key \"%V\"", &hmcf->secrets_key_file);
        return NGX_ERROR;
    }

    n = ngx_read_fd(fd, buf, sizeof(buf));
    ngx_close_file(fd);

    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }

    if (n != 64) {
        goto invalid;
    }

    for (i = 0; i < 32; i++) {
        v = ngx_hextoi(buf + 2 * i, 2);
        if (v == NGX_ERROR) {
            goto invalid;
        }
        hmcf->secrets_key[i] = (u_char) v;
    }

    OPENSSL_cleanse(buf, sizeof(buf));
    hmcf->has_secrets_key = 1;

    return NGX_OK;

invalid:

    OPENSSL_cleanse(buf, sizeof(buf));
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: hris_secrets_key \"%V\" "
                       "must hold 64 hex digits (make one with "
                       "\"build/hris-seal --new-key\")",
                       &hmcf->secrets_key_file);
    return NGX_ERROR;
}


ngx_uint_t
ngx_http_hris_is_sealed(ngx_str_t *value)
{
    return value->len > sizeof(NGX_HTTP_HRIS_SEALED) - 1
           && ngx_strncmp(value->data, NGX_HTTP_HRIS_SEALED,
                          sizeof(NGX_HTTP_HRIS_SEALED) - 1) == 0;
}


/*
 * At configuration time: every sealed value must open with the key, so a
 * wrong key fails nginx -t rather than the first call. Nothing opened is
 * kept.
 */

ngx_int_t
ngx_http_hris_secrets_check(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf,
    ngx_http_hris_account_t *acc)
{
    ngx_int_t      rc;
    ngx_uint_t     i;
    ngx_keyval_t  *kv;

    kv = acc->credentials.elts;

    for (i = 0; i < acc->credentials.nelts; i++) {
        if (!ngx_http_hris_is_sealed(&kv[i].value)) {
            continue;
        }

        acc->has_sealed = 1;

        rc = ngx_http_hris_secret_opens(cf, hmcf, &kv[i].value);

        if (rc == NGX_DECLINED) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: %V: account "
                               "\"%V\": credentials.%V is sealed but "
                               "\"hris_secrets_key\" is not set",
                               &hmcf->accounts_file, &acc->id, &kv[i].key);
            return NGX_ERROR;
        }

        if (rc != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: %V: account "
                               "\"%V\": credentials.%V does not open with "
                               "the key in %V (another key, or a damaged "
                               "value)", &hmcf->accounts_file, &acc->id,
                               &kv[i].key, &hmcf->secrets_key_file);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * Whether a value opens with the key (a plaintext one always does):
 * NGX_DECLINED when it is sealed and no key is set. Nothing opened is
 * kept.
 */

ngx_int_t
ngx_http_hris_secret_opens(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *value)
{
    ngx_str_t  plain;

    if (!ngx_http_hris_is_sealed(value)) {
        return NGX_OK;
    }

    if (!hmcf->has_secrets_key) {
        return NGX_DECLINED;
    }

    if (ngx_http_hris_secret_open(cf->temp_pool, hmcf->secrets_key, value,
                                  &plain)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    OPENSSL_cleanse(plain.data, plain.len);

    return NGX_OK;
}


/*
 * The account's credentials for one call: the account's own array when
 * nothing is sealed, else a copy in the request pool with the sealed
 * values opened (and zeroed again when the pool goes).
 */

ngx_array_t *
ngx_http_hris_credentials(ngx_http_request_t *r, ngx_http_hris_account_t *acc)
{
    ngx_uint_t                  i;
    ngx_array_t                *out;
    ngx_keyval_t               *kv, *o;
    ngx_pool_cleanup_t         *cln;
    ngx_http_hris_main_conf_t  *hmcf;

    if (!acc->has_sealed) {
        return &acc->credentials;
    }

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    out = ngx_array_create(r->pool, acc->credentials.nelts,
                           sizeof(ngx_keyval_t));
    if (out == NULL) {
        return NULL;
    }

    kv = acc->credentials.elts;

    for (i = 0; i < acc->credentials.nelts; i++) {
        o = ngx_array_push(out);
        if (o == NULL) {
            return NULL;
        }

        o->key = kv[i].key;

        if (!ngx_http_hris_is_sealed(&kv[i].value)) {
            o->value = kv[i].value;
            continue;
        }

        cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_str_t));
        if (cln == NULL
            || ngx_http_hris_secret_open(r->pool, hmcf->secrets_key,
                                         &kv[i].value, &o->value)
               != NGX_OK)
        {
            /* checked at configuration time: only memory can fail here */
            return NULL;
        }

        *(ngx_str_t *) cln->data = o->value;
        cln->handler = ngx_http_hris_secret_cleanse;
    }

    return out;
}


static ngx_int_t
ngx_http_hris_secret_open(ngx_pool_t *pool, u_char *key, ngx_str_t *in,
    ngx_str_t *out)
{
    int              len, ok;
    ngx_str_t        enc, raw;
    EVP_CIPHER_CTX  *ctx;

    enc.data = in->data + sizeof(NGX_HTTP_HRIS_SEALED) - 1;
    enc.len = in->len - (sizeof(NGX_HTTP_HRIS_SEALED) - 1);

    raw.data = ngx_pnalloc(pool, ngx_base64_decoded_length(enc.len));
    if (raw.data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_decode_base64url(&raw, &enc) != NGX_OK
        || raw.len < NGX_HTTP_HRIS_NONCE_LEN + NGX_HTTP_HRIS_TAG_LEN)
    {
        return NGX_DECLINED;
    }

    out->len = raw.len - NGX_HTTP_HRIS_NONCE_LEN - NGX_HTTP_HRIS_TAG_LEN;
    out->data = ngx_pnalloc(pool, out->len + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    len = 0;

    ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1
         && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN,
                                NGX_HTTP_HRIS_NONCE_LEN, NULL) == 1
         && EVP_DecryptInit_ex(ctx, NULL, NULL, key, raw.data) == 1
         && EVP_DecryptUpdate(ctx, NULL, &len, (u_char *) NGX_HTTP_HRIS_AAD,
                              sizeof(NGX_HTTP_HRIS_AAD) - 1) == 1
         && EVP_DecryptUpdate(ctx, out->data, &len,
                              raw.data + NGX_HTTP_HRIS_NONCE_LEN,
                              (int) out->len) == 1
         && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG,
                                NGX_HTTP_HRIS_TAG_LEN,
                                raw.data + raw.len - NGX_HTTP_HRIS_TAG_LEN)
            == 1
         && EVP_DecryptFinal_ex(ctx, out->data + len, &len) == 1;

    EVP_CIPHER_CTX_free(ctx);

    if (!ok) {
        OPENSSL_cleanse(out->data, out->len);
        return NGX_DECLINED;
    }

    out->data[out->len] = '\0';

    return NGX_OK;
}


static void
ngx_http_hris_secret_cleanse(void *data)
{
    ngx_str_t  *s = data;

    OPENSSL_cleanse(s->data, s->len);
}


/* A sealed copy of a value (for the state file). */

ngx_int_t
ngx_http_hris_secret_seal(ngx_pool_t *pool, u_char *key, ngx_str_t *in,
    ngx_str_t *out)
{
    int              len, ok;
    u_char          *raw;
    ngx_str_t        src, dst;
    EVP_CIPHER_CTX  *ctx;

    raw = ngx_pnalloc(pool, NGX_HTTP_HRIS_NONCE_LEN + in->len
                            + NGX_HTTP_HRIS_TAG_LEN);
    out->data = ngx_pnalloc(pool, sizeof(NGX_HTTP_HRIS_SEALED) - 1
                                  + ngx_base64_encoded_length(
                                        NGX_HTTP_HRIS_NONCE_LEN + in->len
                                        + NGX_HTTP_HRIS_TAG_LEN));
    if (raw == NULL || out->data == NULL
        || RAND_bytes(raw, NGX_HTTP_HRIS_NONCE_LEN) != 1)
    {
        return NGX_ERROR;
    }

    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ok = EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1
         && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN,
                                NGX_HTTP_HRIS_NONCE_LEN, NULL) == 1
         && EVP_EncryptInit_ex(ctx, NULL, NULL, key, raw) == 1
         && EVP_EncryptUpdate(ctx, NULL, &len, (u_char *) NGX_HTTP_HRIS_AAD,
                              sizeof(NGX_HTTP_HRIS_AAD) - 1) == 1
         && EVP_EncryptUpdate(ctx, raw + NGX_HTTP_HRIS_NONCE_LEN, &len,
                              in->data, (int) in->len) == 1
         && EVP_EncryptFinal_ex(ctx, raw + NGX_HTTP_HRIS_NONCE_LEN + len,
                                &len) == 1
         && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG,
                                NGX_HTTP_HRIS_TAG_LEN,
                                raw + NGX_HTTP_HRIS_NONCE_LEN + in->len)
            == 1;

    EVP_CIPHER_CTX_free(ctx);

    if (!ok) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, NGX_HTTP_HRIS_SEALED,
               sizeof(NGX_HTTP_HRIS_SEALED) - 1);

    src.data = raw;
    src.len = NGX_HTTP_HRIS_NONCE_LEN + in->len + NGX_HTTP_HRIS_TAG_LEN;
    dst.data = out->data + sizeof(NGX_HTTP_HRIS_SEALED) - 1;
    ngx_encode_base64url(&dst, &src);

    out->len = sizeof(NGX_HTTP_HRIS_SEALED) - 1 + dst.len;

    return NGX_OK;
}


/*
 * A value opened outside any request (a webhook secret read from the
 * state directory): NGX_DECLINED when it is sealed and no key is set or
 * it does not open with it. The caller zeroes what it no longer needs.
 */

ngx_int_t
ngx_http_hris_secret_unseal(ngx_pool_t *pool, ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *in, ngx_str_t *out)
{
    if (!ngx_http_hris_is_sealed(in)) {
        *out = *in;
        return NGX_OK;
    }

    if (!hmcf->has_secrets_key) {
        return NGX_DECLINED;
    }

    return ngx_http_hris_secret_open(pool, hmcf->secrets_key, in, out);
}


/* One value for this request: opened when sealed, zeroed with the pool. */

ngx_int_t
ngx_http_hris_secret_value(ngx_http_request_t *r, ngx_str_t *value,
    ngx_str_t *out)
{
    ngx_pool_cleanup_t         *cln;
    ngx_http_hris_main_conf_t  *hmcf;

    if (!ngx_http_hris_is_sealed(value)) {
        *out = *value;
        return NGX_OK;
    }

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_str_t));
    if (!hmcf->has_secrets_key || cln == NULL
        || ngx_http_hris_secret_open(r->pool, hmcf->secrets_key, value, out)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    *(ngx_str_t *) cln->data = *out;
    cln->handler = ngx_http_hris_secret_cleanse;

    return NGX_OK;
}

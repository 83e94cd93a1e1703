/*
 * hris-seal: seals a credential for the accounts file of
 * ngx_http_hris_module (hris_secrets_key).
 *
 *   hris-seal --new-key > /etc/nginx/hris.key      a new key (64 hex digits)
 *   hris-seal /etc/nginx/hris.key 'the secret'     prints "sealed:v1:..."
 *   printf %s 'the secret' | hris-seal KEYFILE     the secret from stdin
 *
 * The value is AES-256-GCM with a random 96-bit nonce and the module's
 * associated data, written as "sealed:v1:" base64url(nonce|ciphertext|tag).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>


#define AAD  "ngx_http_hris sealed v1"


static int
read_key(const char *path, unsigned char *key)
{
    FILE          *f;
    char           hex[130];
    size_t         n;
    unsigned int   b;
    int            i;

    f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        return -1;
    }

    n = fread(hex, 1, sizeof(hex) - 1, f);
    fclose(f);

    while (n > 0 && (hex[n - 1] == '\n' || hex[n - 1] == '\r')) {
        n--;
    }

    if (n != 64) {
        fprintf(stderr, "%s: must hold 64 hex digits\n", path);
        return -1;
    }

    for (i = 0; i < 32; i++) {
        if (sscanf(hex + 2 * i, "%2x", &b) != 1) {
            fprintf(stderr, "%s: must hold 64 hex digits\n", path);
            return -1;
        }
        key[i] = (unsigned char) b;
    }

    OPENSSL_cleanse(hex, sizeof(hex));

    return 0;
}


static void
put_base64url(const unsigned char *p, size_t n)
{
    static const char  tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t             i;
    unsigned long      v;

    for (i = 0; i + 2 < n; i += 3) {
        v = (unsigned long) p[i] << 16 | p[i + 1] << 8 | p[i + 2];
        putchar(tab[v >> 18 & 63]);
        putchar(tab[v >> 12 & 63]);
        putchar(tab[v >> 6 & 63]);
        putchar(tab[v & 63]);
    }

    if (n - i == 1) {
        v = (unsigned long) p[i] << 16;
        putchar(tab[v >> 18 & 63]);
        putchar(tab[v >> 12 & 63]);

    } else if (n - i == 2) {
        v = (unsigned long) p[i] << 16 | p[i + 1] << 8;
        putchar(tab[v >> 18 & 63]);
        putchar(tab[v >> 12 & 63]);
        putchar(tab[v >> 6 & 63]);
    }
}


int
main(int argc, char **argv)
{
    int              len, ok;
    size_t           n;
    unsigned char    key[32], out[12 + 4096 + 16];
    char             plain[4097];
    EVP_CIPHER_CTX  *ctx;

    if (argc == 2 && strcmp(argv[1], "--new-key") == 0) {
        if (RAND_bytes(key, sizeof(key)) != 1) {
            return 1;
        }
        for (n = 0; n < sizeof(key); n++) {
            printf("%02x", key[n]);
        }
        printf("\n");
        OPENSSL_cleanse(key, sizeof(key));
        return 0;
    }

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: hris-seal --new-key\n"
                        "       hris-seal KEYFILE [VALUE]   "
                        "(VALUE from stdin when absent)\n");
        return 2;
    }

    if (read_key(argv[1], key) != 0) {
        return 1;
    }

    if (argc == 3) {
        n = strlen(argv[2]);
        if (n > 4096) {
            fprintf(stderr, "value longer than 4096 bytes\n");
            return 1;
        }
        memcpy(plain, argv[2], n);

    } else {
        n = fread(plain, 1, 4096, stdin);
    }

    if (RAND_bytes(out, 12) != 1 || (ctx = EVP_CIPHER_CTX_new()) == NULL) {
        return 1;
    }

    ok = EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1
         && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1
         && EVP_EncryptInit_ex(ctx, NULL, NULL, key, out) == 1
         && EVP_EncryptUpdate(ctx, NULL, &len, (unsigned char *) AAD,
                              sizeof(AAD) - 1) == 1
         && EVP_EncryptUpdate(ctx, out + 12, &len, (unsigned char *) plain,
                              (int) n) == 1
         && EVP_EncryptFinal_ex(ctx, out + 12 + len, &len) == 1
         && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, out + 12 + n)
            == 1;

    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(plain, sizeof(plain));
    OPENSSL_cleanse(key, sizeof(key));

    if (!ok) {
        fprintf(stderr, "sealing failed\n");
        return 1;
    }

    fputs("sealed:v1:", stdout);
    put_base64url(out, 12 + n + 16);
    putchar('\n');

    return 0;
}

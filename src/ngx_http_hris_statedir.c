/*
 * The state directory (hris_state_path, default "hris_state" under nginx's
 * prefix): where the embedded state backend keeps what must survive a
 * restart even when the operator configured nothing about state
 * (CONTRACT §9). nginx creates it at start as it creates its temporary
 * paths (owned by the worker user, mode 0700), and it holds:
 *
 *     state.json     the state snapshot, unless hris_state_file names
 *                    another file (see ngx_http_hris_state.c)
 *     cursor.key     the key that seals cursors and connect links when
 *                    hris_cursor_secret is not set, made once, so that a
 *                    next_cursor or a link survives a reload and a restart
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ngx_http_hris.h"


#define NGX_HTTP_HRIS_STATE_FILE  "state.json"
#define NGX_HTTP_HRIS_KEY_FILE    "cursor.key"


static ngx_path_init_t  ngx_http_hris_state_path_init = {
    ngx_string("hris_state"), { 0, 0, 0 }
};


static ngx_int_t ngx_http_hris_state_dir_file(ngx_pool_t *pool,
    ngx_path_t *dir, char *name, ngx_str_t *out);
static ngx_int_t ngx_http_hris_cursor_key_read(ngx_conf_t *cf,
    ngx_str_t *file, u_char *key);


/*
 * The directory, and the state file inside it when hris_state_file is not
 * set. nginx creates the directory only when it starts (not at nginx -t),
 * so a missing directory is a first start.
 */

ngx_int_t
ngx_http_hris_state_dir(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf)
{
    if (ngx_conf_merge_path_value(cf, &hmcf->state_path, NULL,
                                  &ngx_http_hris_state_path_init)
        != NGX_CONF_OK)
    {
        return NGX_ERROR;
    }

    if (hmcf->state_file.len) {
        return NGX_OK;
    }

    return ngx_http_hris_state_dir_file(cf->pool, hmcf->state_path,
                                        NGX_HTTP_HRIS_STATE_FILE,
                                        &hmcf->state_file);
}


/*
 * The sealing key. hris_cursor_secret wins; otherwise the key kept in the
 * state directory; otherwise a new random one, written there by
 * ngx_http_hris_state_dir_init() once nginx has made the directory.
 */

ngx_int_t
ngx_http_hris_cursor_key_load(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf)
{
    unsigned int  len;
    ngx_int_t     rc;

    if (hmcf->cursor_secret.len) {
        len = sizeof(hmcf->cursor_key);
        EVP_Digest(hmcf->cursor_secret.data, hmcf->cursor_secret.len,
                   hmcf->cursor_key, &len, EVP_sha256(), NULL);
        return NGX_OK;
    }

    if (ngx_http_hris_state_dir_file(cf->pool, hmcf->state_path,
                                     NGX_HTTP_HRIS_KEY_FILE, &hmcf->key_file)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    rc = ngx_http_hris_cursor_key_read(cf, &hmcf->key_file, hmcf->cursor_key);

    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (RAND_bytes(hmcf->cursor_key, sizeof(hmcf->cursor_key)) != 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: RAND_bytes() failed");
        return NGX_ERROR;
    }

    hmcf->key_new = 1;

    return NGX_OK;
}


/*
 * Called from the module's init_module hook, in the master, after nginx
 * created its paths: write a key made by this configuration. O_EXCL: a
 * file that appeared meanwhile is left alone (it is read at the next
 * start or reload; until then this key serves).
 */

ngx_int_t
ngx_http_hris_state_dir_init(ngx_cycle_t *cycle,
    ngx_http_hris_main_conf_t *hmcf)
{
    ngx_fd_t  fd;
    u_char    hex[64];
    ssize_t   n;

    if (ngx_test_config || !hmcf->key_new) {
        return NGX_OK;
    }

    fd = ngx_open_file(hmcf->key_file.data, NGX_FILE_WRONLY,
                       NGX_FILE_CREATE_OR_OPEN|O_EXCL, 0600);

    if (fd == NGX_INVALID_FILE) {
        if (ngx_errno != NGX_EEXIST) {
            ngx_log_error(NGX_LOG_WARN, cycle->log, ngx_errno,
                          "hris: cannot keep the cursor key in \"%V\": "
                          "cursors and connect links will not survive a "
                          "restart (set hris_cursor_secret, or make "
                          "hris_state_path writable)", &hmcf->key_file);
        }
        return NGX_OK;
    }

    ngx_hex_dump(hex, hmcf->cursor_key, sizeof(hmcf->cursor_key));

    n = ngx_write_fd(fd, hex, sizeof(hex));
    if (n != (ssize_t) sizeof(hex)) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, ngx_errno,
                      "hris: writing \"%V\" failed", &hmcf->key_file);
        (void) ngx_delete_file(hmcf->key_file.data);
    }

    ngx_close_file(fd);
    ngx_explicit_memzero(hex, sizeof(hex));
    hmcf->key_new = 0;

    return NGX_OK;
}


/* NGX_DECLINED: no key file yet */

static ngx_int_t
ngx_http_hris_cursor_key_read(ngx_conf_t *cf, ngx_str_t *file, u_char *key)
{
    ngx_fd_t   fd;
    ssize_t    n;
    ngx_int_t  i, hi, lo;
    u_char     hex[65];

    fd = ngx_open_file(file->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        if (ngx_errno == NGX_ENOENT || ngx_errno == NGX_ENOTDIR) {
            return NGX_DECLINED;
        }
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "hris: cannot read \"%V\"", file);
        return NGX_ERROR;
    }

    n = ngx_read_fd(fd, hex, sizeof(hex));
    ngx_close_file(fd);

    if (n < 64) {
        goto invalid;
    }

    for (i = 0; i < 32; i++) {
        hi = ngx_hextoi(&hex[2 * i], 1);
        lo = ngx_hextoi(&hex[2 * i + 1], 1);
        if (hi == NGX_ERROR || lo == NGX_ERROR) {
            goto invalid;
        }
        key[i] = (u_char) (hi * 16 + lo);
    }

    ngx_explicit_memzero(hex, sizeof(hex));

    return NGX_OK;

invalid:

    ngx_explicit_memzero(hex, sizeof(hex));
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: \"%V\" does not hold a "
                       "cursor key (64 hex digits): remove it to make a new "
                       "one (open cursors and connect links then become "
                       "invalid)", file);
    return NGX_ERROR;
}


static ngx_int_t
ngx_http_hris_state_dir_file(ngx_pool_t *pool, ngx_path_t *dir, char *name,
    ngx_str_t *out)
{
    size_t  len;

    len = ngx_strlen(name);

    out->data = ngx_pnalloc(pool, dir->name.len + 1 + len + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    out->len = ngx_sprintf(out->data, "%V/%s", &dir->name, name) - out->data;
    out->data[out->len] = '\0';

    return NGX_OK;
}

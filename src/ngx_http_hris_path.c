/*
 * JSON pointers (RFC 6901) into upstream records, and "$parent" pointers
 * into the record an array was unnested from. A pointer is split into
 * unescaped tokens once, at configuration time, so that reading a field of
 * a record is a walk along ready tokens: no parsing, no allocation, and
 * the value found is borrowed from the record.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_hris_map.h"


static ngx_int_t ngx_http_hris_path_index(ngx_str_t *token, size_t *index);
static ngx_int_t ngx_http_hris_slot_add(ngx_http_hris_slot_keys_t *keys,
    ngx_pool_t *pool, ngx_str_t *key);
static ngx_int_t ngx_http_hris_slot_index(ngx_http_hris_slot_keys_t *keys,
    ngx_pool_t *pool);


/* the slot record being mapped (ngx_http_hris_record_values()) */
ngx_http_hris_slot_rec_t  *ngx_http_hris_slot_record;


ngx_int_t
ngx_http_hris_path_compile(ngx_pool_t *pool, ngx_str_t *text,
    ngx_http_hris_path_t *path)
{
    u_char     *p, *last, *q, *d;
    ngx_str_t  *token;
    ngx_uint_t  n;

    p = text->data;
    last = p + text->len;

    path->parent = 0;
    path->n = 0;
    path->tokens = NULL;
    path->slot_keys = NULL;
    path->slot = 0;

    if (text->len >= sizeof("$parent") - 1
        && ngx_strncmp(p, "$parent", sizeof("$parent") - 1) == 0)
    {
        path->parent = 1;
        p += sizeof("$parent") - 1;
    }

    if (p == last) {
        return NGX_OK;
    }

    if (*p != '/') {
        return NGX_ERROR;
    }

    n = 0;

    for (q = p; q < last; q++) {
        if (*q == '/') {
            n++;
        }
    }

    path->tokens = ngx_palloc(pool, n * sizeof(ngx_str_t));
    if (path->tokens == NULL) {
        return NGX_ERROR;
    }

    path->n = n;
    token = path->tokens;

    while (p < last) {

        /* p points at the '/' that opens a token */

        for (q = ++p; q < last && *q != '/'; q++) { /* void */ }

        token->data = ngx_pnalloc(pool, q - p + 1);
        if (token->data == NULL) {
            return NGX_ERROR;
        }

        for (d = token->data; p < q; p++) {

            if (*p != '~') {
                *d++ = *p;
                continue;
            }

            /* RFC 6901: "~0" is "~", "~1" is "/", any other "~" is invalid */

            if (p + 1 == q || (p[1] != '0' && p[1] != '1')) {
                return NGX_ERROR;
            }

            *d++ = (*++p == '0') ? '~' : '/';
        }

        *d = '\0';
        token->len = d - token->data;
        token++;
    }

    return NGX_OK;
}


json_t *
ngx_http_hris_path_get(ngx_http_hris_path_t *path, json_t *record,
    json_t *parent)
{
    size_t                     index;
    json_t                    *v;
    ngx_str_t                 *token;
    ngx_uint_t                 i;
    ngx_http_hris_slot_rec_t  *rec;

    v = path->parent ? parent : record;
    token = path->tokens;
    i = 0;

    rec = ngx_http_hris_slot_record;

    if (rec != NULL && v == rec->obj && v != NULL) {

        if (path->n && path->slot_keys == rec->keys) {
            v = rec->slot[path->slot];
            i = 1;

        } else if (ngx_http_hris_slot_fill(rec) != NGX_OK) {
            return NULL;
        }
    }

    for ( /* void */ ; i < path->n && v != NULL; i++) {

        switch (json_typeof(v)) {

        case JSON_OBJECT:
            v = json_object_getn(v, (const char *) token[i].data,
                                 token[i].len);
            break;

        case JSON_ARRAY:
            if (ngx_http_hris_path_index(&token[i], &index) != NGX_OK) {
                return NULL;
            }

            v = json_array_get(v, index);
            break;

        default:
            return NULL;
        }
    }

    return v;
}


ngx_int_t
ngx_http_hris_path_slot(ngx_http_hris_map_ctx_t *mc,
    ngx_http_hris_path_t *path)
{
    ngx_int_t                   s;
    ngx_http_hris_slot_keys_t  *keys;

    if (path->n == 0) {
        return NGX_OK;
    }

    /* one table per compile: a mapping table, or an account's overrides */
    keys = mc->slot_keys;

    if (keys == NULL) {
        keys = ngx_pcalloc(mc->pool, sizeof(ngx_http_hris_slot_keys_t));
        if (keys == NULL
            || ngx_http_hris_slot_index(keys, mc->pool) != NGX_OK)
        {
            return NGX_ERROR;
        }

        mc->slot_keys = keys;
    }

    s = ngx_http_hris_slot_add(keys, mc->pool, &path->tokens[0]);
    if (s == NGX_ERROR) {
        return NGX_ERROR;
    }

    path->slot_keys = keys;
    path->slot = s;

    return NGX_OK;
}


/* the key's slot number, a new one if it has none */

static ngx_int_t
ngx_http_hris_slot_add(ngx_http_hris_slot_keys_t *keys, ngx_pool_t *pool,
    ngx_str_t *key)
{
    ngx_int_t   s;
    ngx_str_t  *k;

    s = ngx_http_hris_slot_find(keys, key->data, key->len,
                                ngx_http_hris_slot_hash(key->data,
                                                        key->len));
    if (s >= 0) {
        return s;
    }

    if (keys->n == keys->nalloc) {
        k = ngx_palloc(pool, (2 * keys->nalloc + 16) * sizeof(ngx_str_t));
        if (k == NULL) {
            return NGX_ERROR;
        }

        if (keys->n) {
            ngx_memcpy(k, keys->keys, keys->n * sizeof(ngx_str_t));
        }

        keys->keys = k;
        keys->nalloc = 2 * keys->nalloc + 16;
    }

    /* the tokens live as long as the configuration */
    keys->keys[keys->n++] = *key;

    if (ngx_http_hris_slot_index(keys, pool) != NGX_OK) {
        return NGX_ERROR;
    }

    return keys->n - 1;
}


/* the hash index of the keys, at most a quarter full */

static ngx_int_t
ngx_http_hris_slot_index(ngx_http_hris_slot_keys_t *keys, ngx_pool_t *pool)
{
    ngx_uint_t   size, i, h;
    ngx_int_t   *index;

    if (keys->index && 4 * keys->n <= keys->mask + 1) {
        goto add;
    }

    for (size = 16; size < 4 * keys->n; size *= 2) { /* void */ }

    index = ngx_palloc(pool, size * sizeof(ngx_int_t));
    if (index == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < size; i++) {
        index[i] = -1;
    }

    keys->index = index;
    keys->mask = size - 1;

    for (i = 0; i + 1 < keys->n; i++) {
        h = ngx_http_hris_slot_hash(keys->keys[i].data, keys->keys[i].len);

        while (index[h & keys->mask] >= 0) {
            h++;
        }

        index[h & keys->mask] = i;
    }

add:

    if (keys->n == 0) {
        return NGX_OK;
    }

    i = keys->n - 1;
    h = ngx_http_hris_slot_hash(keys->keys[i].data, keys->keys[i].len);

    while (keys->index[h & keys->mask] >= 0) {
        h++;
    }

    keys->index[h & keys->mask] = i;

    return NGX_OK;
}


/* RFC 6901 array index: "0" or digits without a leading zero */

static ngx_int_t
ngx_http_hris_path_index(ngx_str_t *token, size_t *index)
{
    size_t   n;
    u_char  *p, *last;

    p = token->data;
    last = p + token->len;

    /* 18 digits cannot overflow, and no array is that long */

    if (p == last || token->len > 18 || (*p == '0' && token->len > 1)) {
        return NGX_DECLINED;
    }

    for (n = 0; p < last; p++) {
        if (*p < '0' || *p > '9') {
            return NGX_DECLINED;
        }

        n = n * 10 + (*p - '0');
    }

    *index = n;

    return NGX_OK;
}

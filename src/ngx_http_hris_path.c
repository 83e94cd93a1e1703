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
    size_t       index;
    json_t      *v;
    ngx_str_t   *token;
    ngx_uint_t   i;

    v = path->parent ? parent : record;
    token = path->tokens;

    for (i = 0; i < path->n && v != NULL; i++) {

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

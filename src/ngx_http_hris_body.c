/*
 * JSON body templates. A table writes a request body as JSON whose
 * strings are templates ({"APIKey": "{{credentials.api_key}}", "Action":
 * "GetAllEmployeeDetail"}). Compiling records where each string sits;
 * rendering copies the constant JSON and puts the rendered strings in.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"


#define NGX_HTTP_HRIS_BODY_DEPTH  16


static ngx_int_t ngx_http_hris_body_walk(ngx_pool_t *pool,
    ngx_http_hris_body_t *body, json_t *node, ngx_str_t *tokens,
    ngx_uint_t depth, const char **err);
static ngx_int_t ngx_http_hris_body_slot(ngx_pool_t *pool,
    ngx_http_hris_body_t *body, ngx_str_t *tokens, ngx_uint_t depth,
    const char *key, size_t index, json_t *value, const char **err);


ngx_http_hris_body_t *
ngx_http_hris_body_compile(ngx_pool_t *pool, json_t *spec, const char **err)
{
    ngx_str_t              tokens[NGX_HTTP_HRIS_BODY_DEPTH];
    ngx_http_hris_body_t  *body;

    if (!json_is_object(spec)) {
        *err = "must be a JSON object";
        return NULL;
    }

    body = ngx_pcalloc(pool, sizeof(ngx_http_hris_body_t));
    if (body == NULL
        || ngx_array_init(&body->slots, pool, 4,
                          sizeof(ngx_http_hris_body_slot_t))
           != NGX_OK)
    {
        *err = "out of memory";
        return NULL;
    }

    /* the table's JSON outlives this call: a pool cleanup releases it */
    body->json = spec;

    if (ngx_http_hris_body_walk(pool, body, spec, tokens, 0, err) != NGX_OK) {
        return NULL;
    }

    return body;
}


static ngx_int_t
ngx_http_hris_body_walk(ngx_pool_t *pool, ngx_http_hris_body_t *body,
    json_t *node, ngx_str_t *tokens, ngx_uint_t depth, const char **err)
{
    size_t       i;
    json_t      *v;
    const char  *key;

    if (depth >= NGX_HTTP_HRIS_BODY_DEPTH) {
        *err = "is nested too deeply";
        return NGX_ERROR;
    }

    if (json_is_object(node)) {
        json_object_foreach(node, key, v) {
            if (ngx_http_hris_body_slot(pool, body, tokens, depth, key, 0, v,
                                        err)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

    } else if (json_is_array(node)) {
        json_array_foreach(node, i, v) {
            if (ngx_http_hris_body_slot(pool, body, tokens, depth, NULL, i, v,
                                        err)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_body_slot(ngx_pool_t *pool, ngx_http_hris_body_t *body,
    ngx_str_t *tokens, ngx_uint_t depth, const char *key, size_t index,
    json_t *value, const char **err)
{
    u_char                     *p;
    ngx_str_t                   src;
    ngx_http_hris_body_slot_t  *slot;

    if (json_is_object(value) || json_is_array(value)) {
        if (key) {
            tokens[depth].data = (u_char *) key;
            tokens[depth].len = ngx_strlen(key);

        } else {
            p = ngx_pnalloc(pool, NGX_SIZE_T_LEN + 1);
            if (p == NULL) {
                return NGX_ERROR;
            }
            tokens[depth].data = p;
            tokens[depth].len = ngx_sprintf(p, "%uz%Z", index) - p - 1;
        }

        return ngx_http_hris_body_walk(pool, body, value, tokens, depth + 1,
                                       err);
    }

    if (!json_is_string(value)
        || ngx_strchr(json_string_value(value), '{') == NULL)
    {
        return NGX_OK;                  /* a constant: copied as it is */
    }

    slot = ngx_array_push(&body->slots);
    if (slot == NULL) {
        return NGX_ERROR;
    }

    slot->key = key;
    slot->index = index;
    slot->parent.parent = 0;
    slot->parent.n = depth;
    slot->parent.tokens = ngx_palloc(pool, (depth + 1) * sizeof(ngx_str_t));
    if (slot->parent.tokens == NULL) {
        return NGX_ERROR;
    }
    ngx_memcpy(slot->parent.tokens, tokens, depth * sizeof(ngx_str_t));

    src.data = (u_char *) json_string_value(value);
    src.len = json_string_length(value);

    slot->value = ngx_http_hris_tpl_compile(pool, &src, err);

    return slot->value ? NGX_OK : NGX_ERROR;
}


/* A new JSON value: the constant parts copied, the templates rendered. */

json_t *
ngx_http_hris_body_render(ngx_pool_t *pool, ngx_http_hris_body_t *body,
    ngx_http_hris_tpl_vars_t *vars)
{
    json_t  *out;

    out = json_deep_copy(body->json);
    if (out == NULL) {
        return NULL;
    }

    if (ngx_http_hris_body_merge(pool, out, body, vars) != NGX_OK) {
        json_decref(out);
        return NULL;
    }

    return out;
}


/*
 * Puts body's templates, rendered, into target: into the copy made by
 * render(), or into a caller's own JSON (credentials carried in bodies).
 */

ngx_int_t
ngx_http_hris_body_merge(ngx_pool_t *pool, json_t *target,
    ngx_http_hris_body_t *body, ngx_http_hris_tpl_vars_t *vars)
{
    json_t                     *parent, *v;
    ngx_str_t                   s;
    ngx_uint_t                  i;
    ngx_http_hris_body_slot_t  *slot;

    slot = body->slots.elts;

    for (i = 0; i < body->slots.nelts; i++) {
        parent = ngx_http_hris_path_get(&slot[i].parent, target, NULL);
        if (parent == NULL) {
            continue;
        }

        if (ngx_http_hris_tpl_render(pool, slot[i].value, vars, 0, &s)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* as with query parameters, a field that renders empty is left out */
        if (s.len == 0 && slot[i].key) {
            json_object_del(parent, slot[i].key);
            continue;
        }

        v = json_stringn((char *) s.data, s.len);
        if (v == NULL) {
            return NGX_ERROR;
        }

        if (slot[i].key
            ? json_object_set_new(parent, slot[i].key, v)
            : json_array_set_new(parent, slot[i].index, v))
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}

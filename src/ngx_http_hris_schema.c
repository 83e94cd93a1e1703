/*
 * The unified schema (mappings/schema.json): the resources and their
 * fields, in the order records are written, and mapping one upstream
 * record to one unified record.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_table_int.h"
#include "ngx_http_hris_arena.h"
#include "ngx_http_hris_record.h"


static ngx_int_t ngx_http_hris_record_eval(ngx_array_t *fields,
    json_t *record, json_t *parent, ngx_uint_t remote_data, uint64_t *cover,
    json_t **values);


/* mappings/schema.json: {"resources": {name: {"fields": {f: type}}}} */

ngx_int_t
ngx_http_hris_schema_load(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf)
{
    json_t                           *root, *res, *r, *fields, *t;
    const char                       *name, *fname;
    ngx_str_t                         file;
    json_error_t                      jerr;
    ngx_http_hris_field_t            *f;
    ngx_http_hris_schema_resource_t  *sr;

    file.len = hmcf->mappings.len + sizeof("/schema.json") - 1;
    file.data = ngx_pnalloc(cf->pool, file.len + 1);
    if (file.data == NULL) {
        return NGX_ERROR;
    }
    ngx_sprintf(file.data, "%V/schema.json%Z", &hmcf->mappings);

    root = json_load_file((char *) file.data, 0, &jerr);
    if (root == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: %V: line %d: %s",
                           &file, jerr.line, jerr.text);
        return NGX_ERROR;
    }

    if (ngx_http_hris_json_cleanup(cf->pool, root) != NGX_OK
        || ngx_array_init(&hmcf->schema, cf->pool, 16,
                          sizeof(ngx_http_hris_schema_resource_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    res = json_object_get(root, "resources");
    if (!json_is_object(res)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: %V: \"resources\" "
                           "must be an object", &file);
        return NGX_ERROR;
    }

    json_object_foreach(res, name, r) {
        fields = json_object_get(r, "fields");
        if (!json_is_object(fields)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: %V: resources.%s"
                               ".fields must be an object", &file, name);
            return NGX_ERROR;
        }

        sr = ngx_array_push(&hmcf->schema);
        if (sr != NULL) {
            /* field types and enumerations: what writes check */
            sr->types = fields;
        }

        if (sr == NULL
            || ngx_http_hris_tc_str(cf->pool, name, ngx_strlen(name), &sr->name)
               != NGX_OK
            || ngx_array_init(&sr->fields, cf->pool, json_object_size(fields),
                              sizeof(ngx_http_hris_field_t))
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        json_object_foreach(fields, fname, t) {
            f = ngx_array_push(&sr->fields);
            if (f == NULL
                || ngx_http_hris_tc_str(cf->pool, fname, ngx_strlen(fname),
                                     &f->name)
                   != NGX_OK
                || ngx_http_hris_json_key(cf->pool, &f->name, &f->key)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            /* "type", or {"type": ..., "enum": [...]} */
            if (json_is_object(t)) {
                t = json_object_get(t, "type");
            }

            f->expr = NULL;
            f->is_list = json_is_string(t)
                         && ngx_strcmp(json_string_value(t), "array") == 0;
        }
    }

    return ngx_http_hris_openapi_build(cf, hmcf, res);
}


ngx_int_t
ngx_http_hris_schema_index(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *name)
{
    ngx_uint_t                        i;
    ngx_http_hris_schema_resource_t  *sr;

    sr = hmcf->schema.elts;

    for (i = 0; i < hmcf->schema.nelts; i++) {
        if (sr[i].name.len == name->len
            && ngx_strncmp(sr[i].name.data, name->data, name->len) == 0)
        {
            return i;
        }
    }

    return NGX_ERROR;
}


/*
 * One upstream record to one unified record (ngx_http_hris_record.h):
 * every schema field in order, unmapped ones as null (or [] for lists),
 * then remote_data (NULL without it), from pool. The caller owns the
 * references: ngx_http_hris_record_release(). *arena_only says whether
 * every node the mapping made came from the record's arena (so that
 * nothing of them needs free()). cover, when not NULL,
 * counts the record ([0]) and each mapped field the provider's record
 * lacked ([1 + i]: its expression came out null), per worker (see
 * ngx_http_hris_metrics_cover()).
 */

json_t **
ngx_http_hris_record_values(ngx_pool_t *pool, ngx_array_t *fields,
    json_t *record, json_t *parent, ngx_http_hris_slot_rec_t *slot,
    ngx_uint_t remote_data, uint64_t *cover, ngx_uint_t *arena_only)
{
    json_t                 **values;
    ngx_int_t                rc;
    ngx_uint_t               mallocs;
    ngx_http_hris_arena_t   *arena, *a;

    values = ngx_palloc(pool, (fields->nelts + 1) * sizeof(json_t *));
    if (values == NULL) {
        return NULL;
    }

    /*
     * a record read from a provider's answer lies in its request's arena
     * (ngx_http_hris_upstream_json()); what is mapped from it joins that
     * request's answer and dies with it: its nodes come from there too
     */

    a = ngx_http_hris_arena_of(record);
    mallocs = a ? ngx_http_hris_arena_mallocs(a) : 0;

    arena = ngx_http_hris_arena_enter(a);

    /*
     * a slot record (its object stands for it in the records array, and
     * its span gives remote_data's bytes): paths read it by slot
     */
    ngx_http_hris_slot_record = slot;

    /* its objects are only written out: compact (ngx_http_hris_map.h) */
    ngx_http_hris_map_compact = 1;

    rc = ngx_http_hris_record_eval(fields, record, parent, remote_data,
                                   cover, values);

    ngx_http_hris_map_compact = 0;
    ngx_http_hris_slot_record = NULL;

    ngx_http_hris_arena_leave(arena);

    *arena_only = (a != NULL && ngx_http_hris_arena_mallocs(a) == mallocs);

    return (rc == NGX_OK) ? values : NULL;
}


static ngx_int_t
ngx_http_hris_record_eval(ngx_array_t *fields, json_t *record,
    json_t *parent, ngx_uint_t remote_data, uint64_t *cover,
    json_t **values)
{
    json_t                 *v;
    ngx_uint_t              i;
    ngx_http_hris_field_t  *f;

    f = fields->elts;

    if (cover) {
        cover[0]++;
    }

    for (i = 0; i < fields->nelts; i++) {
        if (f[i].expr) {
            v = ngx_http_hris_expr_eval(f[i].expr, record, parent);

            if (cover && v && json_is_null(v)) {
                cover[1 + i]++;
            }

        } else {
            v = f[i].is_list ? ngx_http_hris_arena_array(0) : json_null();
        }

        if (v == NULL) {
            while (i--) {
                json_decref(values[i]);
            }

            return NGX_ERROR;
        }

        values[i] = v;
    }

    values[i] = remote_data ? json_incref(record) : NULL;

    return NGX_OK;
}


void
ngx_http_hris_record_release(ngx_array_t *fields, json_t **values)
{
    ngx_uint_t  i;

    /* json_decref() passes over remote_data's NULL */

    for (i = 0; i <= fields->nelts; i++) {
        json_decref(values[i]);
    }
}


/*
 * The same record as a jansson object, for the writes (ngx_http_hris_
 * write.c): the key order is the schema's, as the list and get write it.
 */

json_t *
ngx_http_hris_record_map(ngx_array_t *fields, json_t *record, json_t *parent,
    ngx_uint_t remote_data, uint64_t *cover)
{
    json_t                 *out, **values;
    ngx_uint_t              i, n;
    ngx_http_hris_field_t  *f;
    ngx_http_hris_arena_t  *arena;

    n = fields->nelts;

    values = ngx_alloc((n + 1) * sizeof(json_t *), ngx_cycle->log);
    if (values == NULL) {
        return NULL;
    }

    arena = ngx_http_hris_arena_enter(ngx_http_hris_arena_of(record));

    out = NULL;

    if (ngx_http_hris_record_eval(fields, record, parent, remote_data, cover,
                                  values)
        == NGX_OK)
    {
        out = json_object();
        f = fields->elts;

        for (i = 0; out && i < n; i++) {
            if (json_object_set_nocheck(out, (char *) f[i].name.data,
                                        values[i])
                != 0)
            {
                json_decref(out);
                out = NULL;
            }
        }

        if (out && values[n]
            && json_object_set_nocheck(out, "remote_data", values[n]) != 0)
        {
            json_decref(out);
            out = NULL;
        }

        ngx_http_hris_record_release(fields, values);
    }

    ngx_http_hris_arena_leave(arena);

    ngx_free(values);

    return out;
}

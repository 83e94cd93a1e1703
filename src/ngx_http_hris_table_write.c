/*
 * Compiling a resource's write operations (create, update, delete): the
 * upstream call built from the unified input, the fields it takes (their
 * types, which are required, enumerations mapped back to the provider's
 * values, date formats), where the new id is, and where the written
 * record is afterwards (in the answer, or read back).
 *
 *     "create": {
 *       "method": "POST", "path": "/v1/employees",
 *       "body": {"firstName": "{{input.first_name}}"},
 *       "input": {"first_name": {"required": true}},
 *       "id": {"header": "Location", "regex": "/employees/([^/?#]+)$"},
 *       "then": "get"
 *     }
 *
 * See mappings/README.md, "Writes".
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_table_int.h"


static ngx_http_hris_write_op_t *ngx_http_hris_write_compile(
    ngx_http_hris_tc_t *tc, ngx_http_hris_schema_resource_t *sr,
    ngx_http_hris_resource_t *res, json_t *rjs, json_t *js,
    ngx_http_hris_write_kind_e kind, const char *where);
static ngx_int_t ngx_http_hris_write_inputs(ngx_http_hris_tc_t *tc,
    ngx_http_hris_schema_resource_t *sr, json_t *rjs,
    ngx_http_hris_write_op_t *wop, json_t *js, const char *where);
static ngx_int_t ngx_http_hris_write_input(ngx_http_hris_tc_t *tc,
    ngx_http_hris_schema_resource_t *sr, json_t *rjs,
    ngx_http_hris_input_t *in, json_t *js, const char *where);
static json_t *ngx_http_hris_write_read_enum(json_t *rjs, const char *name,
    json_t *unified);
static ngx_int_t ngx_http_hris_write_type(const char *s,
    ngx_http_hris_in_type_e *type);
static ngx_int_t ngx_http_hris_write_id(ngx_http_hris_tc_t *tc,
    ngx_http_hris_write_op_t *wop, json_t *js, const char *where);
static ngx_int_t ngx_http_hris_write_then(ngx_http_hris_tc_t *tc,
    ngx_http_hris_schema_resource_t *sr, ngx_http_hris_resource_t *res,
    ngx_http_hris_write_op_t *wop, json_t *js, const char *where);
static ngx_int_t ngx_http_hris_write_uses(ngx_http_hris_tc_t *tc,
    ngx_http_hris_write_op_t *wop, const char *where);
static ngx_int_t ngx_http_hris_write_tpl_uses(ngx_http_hris_tc_t *tc,
    ngx_http_hris_write_op_t *wop, ngx_http_hris_tpl_t *tpl,
    ngx_uint_t *used, const char *where);


static const char  *ngx_http_hris_write_keys[] = {
    "method", "path", "query", "body", "body_as", "input", "records", "id",
    "then", "idempotent", "description", NULL
};


static const char  *ngx_http_hris_input_keys[] = {
    "required", "type", "as", "enum", "format", "description", NULL
};


const char  *ngx_http_hris_write_names[] = { "create", "update", "delete" };


/* Fields a client never writes: the provider assigns them. */
static const char  *ngx_http_hris_read_only[] = {
    "id", "remote_id", "remote_data", "created_at", "modified_at", NULL
};


/* "create", "update" and "delete" of one resource ("rjs": its JSON) */

ngx_int_t
ngx_http_hris_writes_compile(ngx_http_hris_tc_t *tc,
    ngx_http_hris_schema_resource_t *sr, json_t *rjs,
    ngx_http_hris_resource_t *res)
{
    json_t      *js;
    ngx_uint_t   k;
    char         where[128];

    for (k = 0; k < 3; k++) {
        js = json_object_get(rjs, ngx_http_hris_write_names[k]);
        if (js == NULL) {
            continue;
        }

        ngx_snprintf((u_char *) where, sizeof(where), "resources.%V.%s%Z",
                     &sr->name, ngx_http_hris_write_names[k]);

        res->writes[k] = ngx_http_hris_write_compile(tc, sr, res, rjs, js,
                                                     k, where);
        if (res->writes[k] == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_http_hris_write_op_t *
ngx_http_hris_write_compile(ngx_http_hris_tc_t *tc,
    ngx_http_hris_schema_resource_t *sr, ngx_http_hris_resource_t *res,
    json_t *rjs, json_t *js, ngx_http_hris_write_kind_e kind,
    const char *where)
{
    json_t                    *v;
    const char                *s;
    ngx_http_hris_write_op_t  *wop;
    char                       sub[256];

    static const char  *methods[] = { "POST", "PATCH", "DELETE" };

    if (!json_is_object(js)) {
        ngx_http_hris_tc_error(tc, where, "must be an object");
        return NULL;
    }

    if (ngx_http_hris_tc_keys(tc, js, where, ngx_http_hris_write_keys)
        != NGX_OK)
    {
        return NULL;
    }

    wop = ngx_pcalloc(tc->cf->pool, sizeof(ngx_http_hris_write_op_t));
    if (wop == NULL) {
        return NULL;
    }

    wop->kind = kind;

    v = json_object_get(js, "method");
    if (v && !json_is_string(v)) {
        ngx_snprintf((u_char *) sub, sizeof(sub), "%s.method%Z", where);
        ngx_http_hris_tc_error(tc, sub, "must be an HTTP method");
        return NULL;
    }

    s = v ? json_string_value(v) : methods[kind];
    if (ngx_http_hris_tc_str(tc->cf->pool, s, ngx_strlen(s), &wop->method)
        != NGX_OK)
    {
        return NULL;
    }

    ngx_snprintf((u_char *) sub, sizeof(sub), "%s.path%Z", where);
    wop->path = ngx_http_hris_tc_tpl(tc, json_object_get(js, "path"), sub);
    if (wop->path == NULL) {
        return NULL;
    }

    ngx_snprintf((u_char *) sub, sizeof(sub), "%s.query%Z", where);
    if (ngx_http_hris_tc_params(tc, json_object_get(js, "query"), sub,
                                &wop->query)
        != NGX_OK)
    {
        return NULL;
    }

    v = json_object_get(js, "body_as");
    s = json_string_value(v);

    if (v == NULL || (s && ngx_strcmp(s, "json") == 0)) {
        wop->body_as = NGX_HTTP_HRIS_BODY_JSON;

    } else if (s && ngx_strcmp(s, "form") == 0) {
        wop->body_as = NGX_HTTP_HRIS_BODY_FORM;

    } else if (s && ngx_strcmp(s, "query") == 0) {
        wop->body_as = NGX_HTTP_HRIS_BODY_QUERY;

    } else {
        ngx_snprintf((u_char *) sub, sizeof(sub), "%s.body_as%Z", where);
        ngx_http_hris_tc_error(tc, sub, "must be \"json\", \"form\" or "
                               "\"query\"");
        return NULL;
    }

    v = json_object_get(js, "body");
    if (v) {
        ngx_snprintf((u_char *) sub, sizeof(sub), "%s.body%Z", where);

        wop->body = ngx_http_hris_tc_body(tc, v, sub);
        if (wop->body == NULL) {
            return NULL;
        }

        /* a form or a query string has no nesting */
        if (wop->body_as != NGX_HTTP_HRIS_BODY_JSON) {
            const char  *key;
            json_t      *e;

            json_object_foreach(v, key, e) {
                if (json_is_object(e) || json_is_array(e)) {
                    ngx_http_hris_tc_error(tc, sub, "\"%s\": a body sent as "
                                           "a form or a query string holds "
                                           "no objects or arrays", key);
                    return NULL;
                }
            }
        }
    }

    ngx_snprintf((u_char *) sub, sizeof(sub), "%s.input%Z", where);
    if (ngx_http_hris_write_inputs(tc, sr, rjs, wop,
                                   json_object_get(js, "input"), sub)
        != NGX_OK)
    {
        return NULL;
    }

    v = json_object_get(js, "records");
    if (v) {
        ngx_snprintf((u_char *) sub, sizeof(sub), "%s.records%Z", where);
        if (ngx_http_hris_tc_path(tc, v, sub, &wop->records) != NGX_OK) {
            return NULL;
        }
        wop->has_records = 1;
    }

    if (ngx_http_hris_write_id(tc, wop, json_object_get(js, "id"), where)
        != NGX_OK
        || ngx_http_hris_write_then(tc, sr, res, wop,
                                    json_object_get(js, "then"), where)
           != NGX_OK)
    {
        return NULL;
    }

    v = json_object_get(js, "idempotent");
    if (v && !json_is_boolean(v)) {
        ngx_snprintf((u_char *) sub, sizeof(sub), "%s.idempotent%Z", where);
        ngx_http_hris_tc_error(tc, sub, "must be true or false");
        return NULL;
    }

    wop->idempotent = json_is_true(v);

    /* the answer is a record: the write's answer holds it, or a read */
    if (kind != NGX_HTTP_HRIS_WRITE_DELETE && !wop->has_records
        && wop->then == NULL)
    {
        ngx_http_hris_tc_error(tc, where, "needs \"records\" (where the "
                               "written record is in the provider's answer) "
                               "or \"then\" (how to read it back)");
        return NULL;
    }

    if (kind == NGX_HTTP_HRIS_WRITE_CREATE && wop->then && !wop->has_records
        && wop->id_header.len == 0 && !wop->has_id_path)
    {
        ngx_http_hris_tc_error(tc, where, "reads the record back (\"then\") "
                               "but does not say where the new id is "
                               "(\"id\")");
        return NULL;
    }

    wop->fields = res->get && res->get->fields ? res->get->fields
                                               : &res->fields;

    if (ngx_http_hris_write_uses(tc, wop, where) != NGX_OK) {
        return NULL;
    }

    return wop;
}


static ngx_int_t
ngx_http_hris_write_inputs(ngx_http_hris_tc_t *tc,
    ngx_http_hris_schema_resource_t *sr, json_t *rjs,
    ngx_http_hris_write_op_t *wop, json_t *js, const char *where)
{
    json_t                 *v;
    ngx_uint_t              i;
    const char             *key;
    ngx_http_hris_input_t  *in;
    char                    sub[256];

    if (ngx_array_init(&wop->inputs, tc->cf->pool, 8,
                       sizeof(ngx_http_hris_input_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (js == NULL) {
        return NGX_OK;
    }

    if (!json_is_object(js)) {
        ngx_http_hris_tc_error(tc, where, "must be an object of the unified "
                               "fields this write takes");
        return NGX_ERROR;
    }

    json_object_foreach(js, key, v) {
        ngx_snprintf((u_char *) sub, sizeof(sub), "%s.%s%Z", where, key);

        if (json_object_get(sr->types, key) == NULL) {
            ngx_http_hris_tc_error(tc, sub, "\"%s\" is not a field of the "
                                   "unified %V resource (see "
                                   "mappings/schema.json)", key, &sr->name);
            return NGX_ERROR;
        }

        for (i = 0; ngx_http_hris_read_only[i]; i++) {
            if (ngx_strcmp(ngx_http_hris_read_only[i], key) == 0) {
                ngx_http_hris_tc_error(tc, sub, "is set by the provider, not "
                                       "written");
                return NGX_ERROR;
            }
        }

        in = ngx_array_push(&wop->inputs);
        if (in == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(in, sizeof(ngx_http_hris_input_t));

        if (ngx_http_hris_tc_str(tc->cf->pool, key, ngx_strlen(key),
                                 &in->name)
            != NGX_OK
            || ngx_http_hris_write_input(tc, sr, rjs, in, v, sub) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* {"required": true, "type": "date", "as": "integer", "enum": {...}} */

static ngx_int_t
ngx_http_hris_write_input(ngx_http_hris_tc_t *tc,
    ngx_http_hris_schema_resource_t *sr, json_t *rjs,
    ngx_http_hris_input_t *in, json_t *js, const char *where)
{
    json_t      *t, *v, *map, *e;
    size_t       i;
    ngx_uint_t   found;
    const char  *s, *key;

    if (!json_is_object(js)
        || ngx_http_hris_tc_keys(tc, js, where, ngx_http_hris_input_keys)
           != NGX_OK)
    {
        if (!json_is_object(js)) {
            ngx_http_hris_tc_error(tc, where, "must be an object ({} for a "
                                   "field taken as it is)");
        }
        return NGX_ERROR;
    }

    v = json_object_get(js, "required");
    if (v && !json_is_boolean(v)) {
        ngx_http_hris_tc_error(tc, where, "\"required\" must be true or "
                               "false");
        return NGX_ERROR;
    }

    in->required = json_is_true(v);

    /* the type: the input's own, else the unified schema's */
    t = json_object_get(sr->types, (char *) in->name.data);
    if (json_is_object(t)) {
        in->schema_enum = json_object_get(t, "enum");
        t = json_object_get(t, "type");
    }

    s = json_string_value(t);

    /* a unified object field is a reference ({"id": "..."}), but the
     * free-form custom fields */
    if (s && ngx_strcmp(s, "object") == 0
        && ngx_strcmp(in->name.data, "custom_fields") != 0)
    {
        s = "reference";
    }

    v = json_object_get(js, "type");
    if (v) {
        s = json_string_value(v);
    }

    if (s == NULL || ngx_http_hris_write_type(s, &in->type) != NGX_OK
        || in->type == NGX_HTTP_HRIS_IN_SAME)
    {
        ngx_http_hris_tc_error(tc, where, "\"type\" must be string, number, "
                               "integer, boolean, date, datetime, "
                               "reference, object or array");
        return NGX_ERROR;
    }

    in->as = NGX_HTTP_HRIS_IN_SAME;

    v = json_object_get(js, "as");
    if (v) {
        s = json_string_value(v);
        if (s == NULL || ngx_http_hris_write_type(s, &in->as) != NGX_OK
            || (in->as != NGX_HTTP_HRIS_IN_STRING
                && in->as != NGX_HTTP_HRIS_IN_INTEGER
                && in->as != NGX_HTTP_HRIS_IN_NUMBER
                && in->as != NGX_HTTP_HRIS_IN_BOOLEAN))
        {
            ngx_http_hris_tc_error(tc, where, "\"as\" must be string, "
                                   "integer, number or boolean: what the "
                                   "provider takes");
            return NGX_ERROR;
        }
    }

    v = json_object_get(js, "format");
    if (v) {
        if (!json_is_string(v)
            || (in->type != NGX_HTTP_HRIS_IN_DATE
                && in->type != NGX_HTTP_HRIS_IN_DATETIME)
            || ngx_strstr(json_string_value(v), "YYYY") == NULL)
        {
            ngx_http_hris_tc_error(tc, where, "\"format\" is for dates: a "
                                   "string with YYYY, MM and DD, e.g. "
                                   "\"DD.MM.YYYY\"");
            return NGX_ERROR;
        }

        if (ngx_http_hris_tc_str(tc->cf->pool, json_string_value(v),
                                 json_string_length(v), &in->format)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /*
     * enumerations: unified -> provider as the table says, else the read
     * mapping turned around (the first provider value of each unified one)
     */
    map = json_object_get(js, "enum");

    if (map == NULL && in->schema_enum == NULL) {
        return NGX_OK;
    }

    if (map == NULL) {
        map = ngx_http_hris_write_read_enum(rjs, (char *) in->name.data,
                                            in->schema_enum);
        if (map == NULL) {
            ngx_http_hris_tc_error(tc, where, "is an enumeration: it needs an "
                                   "\"enum\" (unified value -> provider "
                                   "value), as the field's read mapping has "
                                   "none to turn around");
            return NGX_ERROR;
        }

        if (ngx_http_hris_json_cleanup(tc->cf->pool, map) != NGX_OK) {
            json_decref(map);
            return NGX_ERROR;
        }

    } else if (!json_is_object(map) || json_object_size(map) == 0) {
        ngx_http_hris_tc_error(tc, where, "\"enum\" must map unified values "
                               "to the provider's");
        return NGX_ERROR;
    }

    /* only unified values: another would never be accepted */
    json_object_foreach(map, key, e) {
        found = (in->schema_enum == NULL);

        json_array_foreach(in->schema_enum, i, t) {
            if (ngx_strcmp(json_string_value(t), key) == 0) {
                found = 1;
            }
        }

        if (!found || json_is_null(e) || json_is_object(e)
            || json_is_array(e))
        {
            ngx_http_hris_tc_error(tc, where, "\"enum\": \"%s\" %s", key,
                                   found ? "must map to a provider value "
                                           "(a string, number or boolean)"
                                         : "is not a unified value of this "
                                           "field (see mappings/schema.json)");
            return NGX_ERROR;
        }
    }

    in->enum_map = map;

    return NGX_OK;
}


/*
 * The read mapping's "enum" of a field, turned around: the get's own
 * fields first, then the resource's. NULL when the read mapping is not a
 * plain {"path", "enum"} expression.
 */

static json_t *
ngx_http_hris_write_read_enum(json_t *rjs, const char *name, json_t *unified)
{
    json_t      *f, *e, *out, *v, *u;
    size_t       i;
    ngx_uint_t   found;
    const char  *key;

    f = json_object_get(json_object_get(json_object_get(rjs, "get"),
                                        "fields"), name);
    if (f == NULL) {
        f = json_object_get(json_object_get(rjs, "fields"), name);
    }

    e = json_object_get(f, "enum");
    if (!json_is_object(e)) {
        return NULL;
    }

    out = json_object();
    if (out == NULL) {
        return NULL;
    }

    json_object_foreach(e, key, v) {
        if (!json_is_string(v) || json_object_get(out, json_string_value(v))) {
            continue;
        }

        /* a provider value read as a value of its own is not written */
        found = (unified == NULL);
        json_array_foreach(unified, i, u) {
            if (json_equal(u, v)) {
                found = 1;
            }
        }

        if (!found) {
            continue;
        }

        if (json_object_set_new(out, json_string_value(v), json_string(key))
            != 0)
        {
            json_decref(out);
            return NULL;
        }
    }

    if (json_object_size(out) == 0) {
        json_decref(out);
        return NULL;
    }

    return out;
}


static ngx_int_t
ngx_http_hris_write_type(const char *s, ngx_http_hris_in_type_e *type)
{
    ngx_uint_t  i;

    static const char  *names[] = {
        "string", "number", "integer", "boolean", "date", "datetime",
        "reference", "object", "array", NULL
    };

    for (i = 0; names[i]; i++) {
        if (ngx_strcmp(names[i], s) == 0) {
            *type = (ngx_http_hris_in_type_e) i;
            return NGX_OK;
        }
    }

    return NGX_ERROR;
}


const char *
ngx_http_hris_in_type_name(ngx_http_hris_in_type_e type)
{
    static const char  *names[] = {
        "string", "number", "integer", "boolean", "date", "datetime",
        "reference", "object", "array", "same"
    };

    return names[type];
}


/*
 * "id": where the new record's id is: "/data/id" (a pointer into the
 * answer) or {"header": "Location", "regex": "/employees/([^/]+)$"}.
 */

static ngx_int_t
ngx_http_hris_write_id(ngx_http_hris_tc_t *tc, ngx_http_hris_write_op_t *wop,
    json_t *js, const char *where)
{
    json_t     *v;
    ngx_str_t   src;
    char        sub[256];

    static const char  *keys[] = { "header", "regex", NULL };

    if (js == NULL) {
        return NGX_OK;
    }

    ngx_snprintf((u_char *) sub, sizeof(sub), "%s.id%Z", where);

    if (json_is_string(js)) {
        if (ngx_http_hris_tc_path(tc, js, sub, &wop->id_path) != NGX_OK) {
            return NGX_ERROR;
        }
        wop->has_id_path = 1;
        return NGX_OK;
    }

    if (!json_is_object(js) || ngx_http_hris_tc_keys(tc, js, sub, keys)
                               != NGX_OK
        || !json_is_string(json_object_get(js, "header")))
    {
        ngx_http_hris_tc_error(tc, sub, "must be a JSON pointer into the "
                               "answer, or {\"header\": \"Location\", "
                               "\"regex\": \"...\"}");
        return NGX_ERROR;
    }

    v = json_object_get(js, "header");
    if (ngx_http_hris_tc_str(tc->cf->pool, json_string_value(v),
                             json_string_length(v), &wop->id_header)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    v = json_object_get(js, "regex");
    if (v) {
        wop->id_regex = ngx_http_hris_tc_regex(tc, v, sub, &src);
        if (wop->id_regex == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * "then": how to read the record back when the answer does not hold it:
 * "get" (the resource's get, with the record's id), or an operation of
 * its own (for a provider without a get by id), whose templates may also
 * use the input, whose record is the one with the id, and in whose field
 * expressions "$parent" is the body the write sent; its "fields" replace
 * the resource's one by one.
 */

static ngx_int_t
ngx_http_hris_write_then(ngx_http_hris_tc_t *tc,
    ngx_http_hris_schema_resource_t *sr, ngx_http_hris_resource_t *res,
    ngx_http_hris_write_op_t *wop, json_t *js, const char *where)
{
    ngx_uint_t              i;
    ngx_http_hris_op_t     *op;
    ngx_http_hris_field_t  *f, *base;
    char                    sub[256];

    if (js == NULL) {
        return NGX_OK;
    }

    ngx_snprintf((u_char *) sub, sizeof(sub), "%s.then%Z", where);

    if (json_is_string(js)) {
        if (ngx_strcmp(json_string_value(js), "get") != 0) {
            ngx_http_hris_tc_error(tc, sub, "must be \"get\" or an operation "
                                   "that reads the record");
            return NGX_ERROR;
        }

        op = res->get;

        if (op == NULL || op->from_list || op->for_each) {
            ngx_http_hris_tc_error(tc, sub, "\"get\" needs the resource's "
                                   "\"get\" to read one record by id (not "
                                   "from_list, not for_each): give an "
                                   "operation here instead");
            return NGX_ERROR;
        }

        wop->then = op;
        wop->then_fields = op->fields ? op->fields : &res->fields;
        return NGX_OK;
    }

    op = ngx_http_hris_op_compile(tc, sr, js, sub);
    if (op == NULL) {
        return NGX_ERROR;
    }

    if (op->from_list || op->for_each || op->page_type
        != NGX_HTTP_HRIS_PAGE_NONE)
    {
        ngx_http_hris_tc_error(tc, sub, "reads one answer: no from_list, "
                               "for_each or pagination");
        return NGX_ERROR;
    }

    wop->then = op;
    wop->then_fields = &res->fields;

    if (op->fields == NULL) {
        return NGX_OK;
    }

    /* the operation's fields over the resource's */
    f = op->fields->elts;
    base = res->fields.elts;

    for (i = 0; i < op->fields->nelts && i < res->fields.nelts; i++) {
        if (f[i].expr == NULL) {
            f[i].expr = base[i].expr;
        }
    }

    wop->then_fields = op->fields;

    return NGX_OK;
}


/*
 * Every {{input.x}} names a field of "input" (or its "x.id" when it is a
 * reference), and every field of "input" is used somewhere: a field
 * accepted and then dropped would be a write that silently did less.
 */

static ngx_int_t
ngx_http_hris_write_uses(ngx_http_hris_tc_t *tc,
    ngx_http_hris_write_op_t *wop, const char *where)
{
    ngx_uint_t                  i, *used;
    ngx_http_hris_param_t      *q;
    ngx_http_hris_input_t      *in;
    ngx_http_hris_body_slot_t  *slot;

    used = ngx_pcalloc(tc->cf->pool,
                       (wop->inputs.nelts + 1) * sizeof(ngx_uint_t));
    if (used == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_hris_write_tpl_uses(tc, wop, wop->path, used, where)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    q = wop->query.elts;
    for (i = 0; i < wop->query.nelts; i++) {
        if (ngx_http_hris_write_tpl_uses(tc, wop, q[i].value, used, where)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (wop->body) {
        slot = wop->body->slots.elts;
        for (i = 0; i < wop->body->slots.nelts; i++) {
            if (ngx_http_hris_write_tpl_uses(tc, wop, slot[i].value, used,
                                             where)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    in = wop->inputs.elts;

    for (i = 0; i < wop->inputs.nelts; i++) {
        if (!used[i]) {
            ngx_http_hris_tc_error(tc, where, "input \"%V\" is not used in "
                                   "the path, query or body", &in[i].name);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_write_tpl_uses(ngx_http_hris_tc_t *tc,
    ngx_http_hris_write_op_t *wop, ngx_http_hris_tpl_t *tpl,
    ngx_uint_t *used, const char *where)
{
    u_char                 *dot;
    ngx_str_t               name, *text;
    ngx_uint_t              i, j;
    ngx_http_hris_input_t  *in;

    in = wop->inputs.elts;

    for (i = 0; i < tpl->nparts; i++) {
        if (tpl->parts[i].type != NGX_HTTP_HRIS_TPL_INPUT) {
            continue;
        }

        text = &tpl->parts[i].text;
        dot = ngx_strlchr(text->data, text->data + text->len, '.');
        name.data = text->data;
        name.len = (dot ? dot : text->data + text->len) - text->data;

        for (j = 0; j < wop->inputs.nelts; j++) {
            if (ngx_http_hris_str_eq(&in[j].name, &name)) {
                break;
            }
        }

        if (j == wop->inputs.nelts
            || (dot && (in[j].type != NGX_HTTP_HRIS_IN_REFERENCE
                        || text->data + text->len - dot != 3
                        || ngx_strncmp(dot, ".id", 3) != 0)))
        {
            ngx_http_hris_tc_error(tc, where, "{{input.%V}}: %s", text,
                                   j == wop->inputs.nelts
                                   ? "not a field of \"input\""
                                   : "only a reference has a part, its "
                                     "\".id\"");
            return NGX_ERROR;
        }

        used[j] = 1;
    }

    return NGX_OK;
}

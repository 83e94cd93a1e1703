/*
 * GET {unified location}/openapi.json: the unified API as an OpenAPI 3
 * document, built from mappings/schema.json when nginx reads its
 * configuration and served as the same bytes ever after.
 *
 * Writes are documented for every resource with the unified input
 * schema (<resource>_input); which of them a provider serves, and which
 * fields it takes, GET hris/{resource}/meta says per account.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"


static json_t *ngx_http_hris_openapi_field(json_t *type);
static json_t *ngx_http_hris_openapi_paths(ngx_http_hris_main_conf_t *hmcf);
static json_t *ngx_http_hris_openapi_op(const char *summary,
    const char *schema, json_t *params, ngx_uint_t list);
static json_t *ngx_http_hris_openapi_components(json_t *schema_res);
static json_t *ngx_http_hris_openapi_write(ngx_uint_t kind,
    const char *resource);
static json_t *ngx_http_hris_openapi_meta(const char *resource);
static json_t *ngx_http_hris_openapi_input(json_t *fields);


ngx_int_t
ngx_http_hris_openapi_build(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf,
    json_t *schema_res)
{
    char    *text;
    json_t  *doc;

    doc = json_pack("{s:s, s:{s:s, s:s, s:s}, s:[{s:s}], s:[{s:[]}], "
                    "s:o, s:o}",
                    "openapi", "3.0.3",
                    "info",
                      "title", "Unified HRIS API (ngx_http_hris_module)",
                      "version", "1",
                      "description", "Normalized HRIS resources over every "
                      "provider with a mapping table. Authenticate with "
                      "\"Authorization: Bearer <gateway API key>\".",
                    "servers", "url", ".",
                    "security", "gateway_key",
                    "paths", ngx_http_hris_openapi_paths(hmcf),
                    "components",
                      ngx_http_hris_openapi_components(schema_res));
    if (doc == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: cannot build the "
                           "OpenAPI document");
        return NGX_ERROR;
    }

    text = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(doc);

    if (text == NULL) {
        return NGX_ERROR;
    }

    hmcf->openapi.len = ngx_strlen(text);
    hmcf->openapi.data = ngx_pstrdup(cf->pool, &(ngx_str_t)
                                     { hmcf->openapi.len, (u_char *) text });
    free(text);

    return hmcf->openapi.data ? NGX_OK : NGX_ERROR;
}


ngx_int_t
ngx_http_hris_openapi_send(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_buf_t                  *b;
    ngx_chain_t                 out;
    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_hris_send_error(r, NGX_HTTP_NOT_ALLOWED, NULL,
                   "the OpenAPI document is read with GET");
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = hmcf->openapi.data;
    b->last = hmcf->openapi.data + hmcf->openapi.len;
    b->memory = 1;
    b->last_buf = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = hmcf->openapi.len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static json_t *
ngx_http_hris_openapi_paths(ngx_http_hris_main_conf_t *hmcf)
{
    char                              path[128], ref[128], summary[160];
    json_t                           *paths, *common;
    ngx_uint_t                        i;
    ngx_http_hris_schema_resource_t  *sr;

    paths = json_object();
    sr = hmcf->schema.elts;

    for (i = 0; paths && i < hmcf->schema.nelts; i++) {
        ngx_snprintf((u_char *) ref, sizeof(ref), "%V%Z", &sr[i].name);

        common = json_pack("[{s:s}]", "$ref",
                           "#/components/parameters/integrated_account_id");
        json_array_append_new(common, json_pack("{s:s}", "$ref",
                              "#/components/parameters/remote_data"));

        ngx_snprintf((u_char *) path, sizeof(path), "/hris/%V%Z",
                     &sr[i].name);
        ngx_snprintf((u_char *) summary, sizeof(summary), "List %V%Z",
                     &sr[i].name);

        json_object_set_new(paths, path,
            json_pack("{s:o, s:o}", "get",
                      ngx_http_hris_openapi_op(summary, ref,
                                               json_deep_copy(common), 1),
                      "post", ngx_http_hris_openapi_write(0, ref)));

        ngx_snprintf((u_char *) path, sizeof(path), "/hris/%V/meta%Z",
                     &sr[i].name);

        json_object_set_new(paths, path, ngx_http_hris_openapi_meta(ref));

        ngx_snprintf((u_char *) path, sizeof(path), "/hris/%V/{id}%Z",
                     &sr[i].name);
        ngx_snprintf((u_char *) summary, sizeof(summary), "Get one of "
                     "%V by its provider id%Z", &sr[i].name);

        json_array_append_new(common, json_pack("{s:s,s:s,s:b,s:{s:s}}",
                              "name", "id", "in", "path", "required", 1,
                              "schema", "type", "string"));

        json_object_set_new(paths, path,
            json_pack("{s:o, s:o, s:o}", "get",
                      ngx_http_hris_openapi_op(summary, ref, common, 0),
                      "patch", ngx_http_hris_openapi_write(1, ref),
                      "delete", ngx_http_hris_openapi_write(2, ref)));
    }

    return paths;
}


/*
 * A write: create (201), update or delete (200), with the unified input
 * as its body (none for a delete) and an Idempotency-Key.
 */

static json_t *
ngx_http_hris_openapi_write(ngx_uint_t kind, const char *resource)
{
    char         ref[160], input[160], summary[200];
    json_t      *params, *op, *result, *errors;
    const char  *status;

    static const char  *verbs[] = { "Create", "Update", "Delete" };

    ngx_snprintf((u_char *) ref, sizeof(ref), "#/components/schemas/%s%Z",
                 resource);
    ngx_snprintf((u_char *) input, sizeof(input),
                 "#/components/schemas/%s_input%Z", resource);
    ngx_snprintf((u_char *) summary, sizeof(summary), "%s %s at the "
                 "account's provider (GET hris/%s/meta says what it takes)%Z",
                 verbs[kind], resource, resource);

    params = json_pack("[{s:s},{s:s},{s:s}]",
                       "$ref", "#/components/parameters/integrated_account_id",
                       "$ref", "#/components/parameters/remote_data",
                       "$ref", "#/components/parameters/idempotency_key");

    if (params && kind > 0) {
        json_array_append_new(params, json_pack("{s:s,s:s,s:b,s:{s:s}}",
                              "name", "id", "in", "path", "required", 1,
                              "schema", "type", "string"));
    }

    result = (kind == 2)
             ? json_pack("{s:s,s:{s:{s:s}},s:[s]}", "type", "object",
                         "properties", "id", "type", "string",
                         "required", "id")
             : json_pack("{s:s}", "$ref", ref);

    errors = json_pack("{s:s, s:{s:{s:{s:s}}}}",
                       "description", "see the error envelope: 400 names the "
                       "field, 422 is the provider's refusal "
                       "(details.upstream_status, upstream_message), 501 an "
                       "operation the provider does not have, 504 with "
                       "details.outcome \"unknown\" a write that got no "
                       "answer",
                       "content", "application/json", "schema", "$ref",
                       "#/components/schemas/Error");

    status = (kind == 0) ? "201" : "200";

    op = json_pack("{s:s, s:o, s:{s:{s:s, s:{s:{s:{s:s, s:{s:o}, s:[s]}}}},"
                   " s:o}}",
                   "summary", summary,
                   "parameters", params,
                   "responses",
                     status, "description", kind == 0 ? "Created" : "OK",
                       "content", "application/json", "schema",
                         "type", "object", "properties", "result", result,
                         "required", "result",
                     "default", errors);

    if (op && kind < 2) {
        json_object_set_new(op, "requestBody",
                            json_pack("{s:b, s:{s:{s:{s:s}}}}",
                                      "required", 1, "content",
                                      "application/json", "schema", "$ref",
                                      input));
    }

    return op;
}


static json_t *
ngx_http_hris_openapi_meta(const char *resource)
{
    char  summary[160];

    ngx_snprintf((u_char *) summary, sizeof(summary), "What the account's "
                 "provider can write for %s: operations, fields, types, "
                 "required fields, enumerations%Z", resource);

    return json_pack("{s:{s:s, s:[{s:s}], s:{s:{s:s, s:{s:{s:{s:s}}}}}}}",
                     "get", "summary", summary,
                     "parameters",
                       "$ref", "#/components/parameters/integrated_account_id",
                     "responses", "200", "description", "OK",
                       "content", "application/json", "schema",
                         "type", "object");
}


static json_t *
ngx_http_hris_openapi_op(const char *summary, const char *schema,
    json_t *params, ngx_uint_t list)
{
    char     ref[160];
    json_t  *body, *errors;

    ngx_snprintf((u_char *) ref, sizeof(ref), "#/components/schemas/%s%Z",
                 schema);

    if (list) {
        json_array_append_new(params, json_pack("{s:s}", "$ref",
                              "#/components/parameters/limit"));
        json_array_append_new(params, json_pack("{s:s}", "$ref",
                              "#/components/parameters/cursor"));

        body = json_pack("{s:s, s:{s:{s:s, s:{s:s}}, s:{s:s, s:b}, "
                         "s:{s:s}}, s:[s,s,s]}",
                         "type", "object",
                         "properties",
                           "result", "type", "array", "items", "$ref", ref,
                           "next_cursor", "type", "string", "nullable", 1,
                           "result_count", "type", "integer",
                         "required", "result", "next_cursor", "result_count");

    } else {
        body = json_pack("{s:s, s:{s:{s:s}}, s:[s]}", "type", "object",
                         "properties", "result", "$ref", ref,
                         "required", "result");
    }

    errors = json_pack("{s:s, s:{s:{s:{s:s}}}}",
                       "description", "see the error envelope",
                       "content", "application/json", "schema", "$ref",
                       "#/components/schemas/Error");

    return json_pack("{s:s, s:o, s:{s:{s:s, s:{s:{s:o}}}, s:o}}",
                     "summary", summary,
                     "parameters", params,
                     "responses",
                       "200", "description", "OK",
                              "content", "application/json", "schema", body,
                       "default", errors);
}


static json_t *
ngx_http_hris_openapi_components(json_t *schema_res)
{
    char         input[160];
    json_t      *schemas, *props, *res, *type, *out;
    const char  *name, *fname;

    schemas = json_object();

    json_object_foreach(schema_res, name, res) {
        props = json_object();

        json_object_foreach(json_object_get(res, "fields"), fname, type) {
            json_object_set_new(props, fname,
                                ngx_http_hris_openapi_field(type));
        }

        json_object_set_new(props, "remote_data",
                            json_pack("{s:s, s:s}", "type", "object",
                                      "description", "the provider's raw "
                                      "record; left out with "
                                      "remote_data=false"));

        json_object_set_new(schemas, name,
                            json_pack("{s:s, s:o}", "type", "object",
                                      "properties", props));

        ngx_snprintf((u_char *) input, sizeof(input), "%s_input%Z", name);
        json_object_set_new(schemas, input,
                            ngx_http_hris_openapi_input(
                                json_object_get(res, "fields")));
    }

    json_object_set_new(schemas, "Error",
        json_pack("{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}}, "
                  "s:[s,s,s]}",
                  "type", "object",
                  "properties",
                    "statusCode", "type", "integer",
                    "error", "type", "string",
                    "message", "type", "string",
                    "details", "type", "object",
                  "required", "statusCode", "error", "message"));

    out = json_pack("{s:o, s:{s:{s:s,s:s,s:b,s:{s:s}}, "
                     "s:{s:s,s:s,s:{s:s,s:i,s:i,s:i}}, "
                     "s:{s:s,s:s,s:s,s:{s:s}}, "
                     "s:{s:s,s:s,s:{s:s,s:b}}}, "
                     "s:{s:{s:s,s:s}}}",
                     "schemas", schemas,
                     "parameters",
                       "integrated_account_id", "name",
                         "integrated_account_id", "in", "query",
                         "required", 1, "schema", "type", "string",
                       "limit", "name", "limit", "in", "query",
                         "schema", "type", "integer", "minimum", 1,
                         "maximum", NGX_HTTP_HRIS_MAX_LIMIT,
                         "default", NGX_HTTP_HRIS_DEFAULT_LIMIT,
                       "cursor", "name", "cursor", "in", "query",
                         "description", "next_cursor of the previous page",
                         "schema", "type", "string",
                       "remote_data", "name", "remote_data", "in", "query",
                         "schema", "type", "boolean", "default", 1,
                     "securitySchemes",
                       "gateway_key", "type", "http", "scheme", "bearer");

    json_object_set_new(json_object_get(out, "parameters"), "idempotency_key",
        json_pack("{s:s,s:s,s:s,s:{s:s,s:i,s:i}}",
                  "name", "Idempotency-Key", "in", "header",
                  "description", "1 to 255 printable ASCII characters: the "
                  "first answer to it is kept 24 hours (per tenant and "
                  "account) and answered again, with Idempotent-Replayed: "
                  "true, to the same request; another request with it gets "
                  "422, one while the first still runs 409",
                  "schema", "type", "string", "minLength", 1,
                  "maxLength", 255));

    return out;
}


/*
 * The body of a write: the resource's unified fields but those the
 * provider sets; references are {"id": "..."}; enumerations take the
 * unified values (a provider may take fewer: see its meta).
 */

static json_t *
ngx_http_hris_openapi_input(json_t *fields)
{
    json_t      *props, *type, *f, *values;
    const char  *fname, *t;

    static const char  *read_only[] = { "id", "remote_id", "created_at",
                                        "modified_at", NULL };

    props = json_object();

    json_object_foreach(fields, fname, type) {
        ngx_uint_t  i, skip = 0;

        for (i = 0; read_only[i]; i++) {
            if (ngx_strcmp(read_only[i], fname) == 0) {
                skip = 1;
            }
        }

        if (skip) {
            continue;
        }

        values = json_is_object(type) ? json_object_get(type, "enum") : NULL;
        t = json_string_value(json_is_object(type)
                              ? json_object_get(type, "type") : type);
        t = t ? t : "string";

        /* objects are references, but the free-form custom fields */
        if (ngx_strcmp(t, "object") == 0
            && ngx_strcmp(fname, "custom_fields") == 0)
        {
            f = json_pack("{s:s}", "type", "object");

        } else if (ngx_strcmp(t, "object") == 0) {
            f = json_pack("{s:s, s:{s:{s:s}}, s:[s], s:s}", "type", "object",
                          "properties", "id", "type", "string",
                          "required", "id",
                          "description", "a reference: the record's id");

        } else if (ngx_strcmp(t, "date") == 0) {
            f = json_pack("{s:s, s:s}", "type", "string", "format", "date");

        } else if (ngx_strcmp(t, "datetime") == 0) {
            f = json_pack("{s:s, s:s}", "type", "string", "format",
                          "date-time");

        } else if (ngx_strcmp(t, "array") == 0) {
            f = json_pack("{s:s, s:{}}", "type", "array", "items");

        } else {
            f = json_pack("{s:s}", "type", t);
        }

        if (f && json_is_array(values)) {
            json_object_set(f, "enum", values);
        }

        json_object_set_new(props, fname, f);
    }

    return json_pack("{s:s, s:o, s:b, s:s}", "type", "object",
                     "properties", props, "additionalProperties", 0,
                     "description", "the unified fields a write takes; GET "
                     "hris/{resource}/meta says which of them this "
                     "account's provider takes and requires");
}


/* schema.json types: string, number, boolean, object, array, date... */

static json_t *
ngx_http_hris_openapi_field(json_t *type)
{
    json_t      *f, *values;
    const char  *t;

    /*
     * Enumerations are open (a provider value without a mapping passes
     * through raw), so the values are documented, not enforced.
     */
    if (json_is_object(type)) {
        values = json_object_get(type, "enum");
        f = ngx_http_hris_openapi_field(json_object_get(type, "type"));

        if (f && json_is_array(values)) {
            json_object_set(f, "x-enum-values", values);
            json_object_set_new(f, "description",
                                json_string("one of x-enum-values, or the "
                                            "provider's own value when it "
                                            "has no mapping"));
        }

        return f;
    }

    t = json_string_value(type);
    t = t ? t : "string";

    if (ngx_strcmp(t, "date") == 0) {
        return json_pack("{s:s, s:s, s:b}", "type", "string", "format",
                         "date", "nullable", 1);
    }

    if (ngx_strcmp(t, "datetime") == 0) {
        return json_pack("{s:s, s:s, s:b}", "type", "string", "format",
                         "date-time", "nullable", 1);
    }

    if (ngx_strcmp(t, "array") == 0) {
        return json_pack("{s:s, s:{}}", "type", "array", "items");
    }

    return json_pack("{s:s, s:b}", "type", t, "nullable", 1);
}

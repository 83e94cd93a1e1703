/*
 * GET {unified location}/openapi.json: the unified API as an OpenAPI 3
 * document, built from mappings/schema.json when nginx reads its
 * configuration and served as the same bytes ever after.
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
            json_pack("{s:o}", "get",
                      ngx_http_hris_openapi_op(summary, ref,
                                               json_deep_copy(common), 1)));

        ngx_snprintf((u_char *) path, sizeof(path), "/hris/%V/{id}%Z",
                     &sr[i].name);
        ngx_snprintf((u_char *) summary, sizeof(summary), "Get one of "
                     "%V by its provider id%Z", &sr[i].name);

        json_array_append_new(common, json_pack("{s:s,s:s,s:b,s:{s:s}}",
                              "name", "id", "in", "path", "required", 1,
                              "schema", "type", "string"));

        json_object_set_new(paths, path,
            json_pack("{s:o}", "get",
                      ngx_http_hris_openapi_op(summary, ref, common, 0)));
    }

    return paths;
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
    json_t      *schemas, *props, *res, *type;
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

    return json_pack("{s:o, s:{s:{s:s,s:s,s:b,s:{s:s}}, "
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

/*
 * Compiling how a table authenticates (none, basic, bearer, header, body
 * fields, a token exchange), the errors a provider reports inside a 2xx
 * body, and the rate limit the gateway holds itself to.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_table_int.h"


static ngx_int_t ngx_http_hris_auth_way(ngx_http_hris_tc_t *tc, json_t *js,
    ngx_http_hris_auth_t *auth, const char *where);
static ngx_int_t ngx_http_hris_token_compile(ngx_http_hris_tc_t *tc,
    json_t *js, ngx_http_hris_auth_t *auth);


static const char  *ngx_http_hris_token_keys[] = {
    "type", "requires", "method", "url", "query", "form", "body", "basic",
    "token", "refresh_token", "needs_reauth",
    "expires_in", "ttl", "header", "value", "echo_header", "renew_on", NULL
};


ngx_int_t
ngx_http_hris_auth_compile(ngx_http_hris_tc_t *tc, json_t *js)
{
    json_t                 *alt;
    size_t                  i;
    ngx_http_hris_auth_t   *auth;
    ngx_http_hris_table_t  *t = tc->table;

    if (ngx_array_init(&t->auths, tc->cf->pool, 2,
                       sizeof(ngx_http_hris_auth_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /*
     * "auth": one way, or an array of ways, each with the credentials it
     * "requires": an account uses the first way its credentials allow
     * (BambooHR: OAuth2 tokens, or an API key)
     */
    if (!json_is_array(js)) {
        auth = ngx_array_push(&t->auths);
        return auth ? ngx_http_hris_auth_way(tc, js, auth, "auth")
                    : NGX_ERROR;
    }

    json_array_foreach(js, i, alt) {
        auth = ngx_array_push(&t->auths);
        ngx_snprintf((u_char *) tc->where, sizeof(tc->where), "auth.%uz%Z",
                     i);

        if (auth == NULL
            || ngx_http_hris_auth_way(tc, alt, auth, tc->where) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (t->auths.nelts == 0) {
        ngx_http_hris_tc_error(tc, "auth", "an empty array offers no way to "
                               "authenticate");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_auth_way(ngx_http_hris_tc_t *tc, json_t *js,
    ngx_http_hris_auth_t *auth, const char *where)
{
    json_t      *v;
    size_t       i;
    ngx_str_t   *key;
    const char  *type;
    char         sub[256];

    ngx_memzero(auth, sizeof(ngx_http_hris_auth_t));

    if (ngx_array_init(&auth->headers, tc->cf->pool, 2,
                       sizeof(ngx_http_hris_param_t)) != NGX_OK
        || ngx_array_init(&auth->requires, tc->cf->pool, 2,
                          sizeof(ngx_str_t)) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (js == NULL) {
        auth->type = NGX_HTTP_HRIS_AUTH_NONE;
        return NGX_OK;
    }

    json_array_foreach(json_object_get(js, "requires"), i, v) {
        key = ngx_array_push(&auth->requires);
        if (key == NULL || !json_is_string(v)
            || ngx_http_hris_tc_str(tc->cf->pool, json_string_value(v),
                                    json_string_length(v), key)
               != NGX_OK)
        {
            ngx_snprintf((u_char *) sub, sizeof(sub), "%s.requires%Z", where);
            ngx_http_hris_tc_error(tc, sub, "must be an array of credential "
                                   "names");
            return NGX_ERROR;
        }
    }

    ngx_snprintf((u_char *) sub, sizeof(sub), "%s.type%Z", where);

    type = json_string_value(json_object_get(js, "type"));
    if (type == NULL) {
        ngx_http_hris_tc_error(tc, sub, "missing (none, basic, bearer, "
                               "header, body or token)");
        return NGX_ERROR;
    }

    if (ngx_strcmp(type, "none") == 0) {
        auth->type = NGX_HTTP_HRIS_AUTH_NONE;

    } else if (ngx_strcmp(type, "basic") == 0) {
        auth->type = NGX_HTTP_HRIS_AUTH_BASIC;
        auth->user = ngx_http_hris_tc_tpl(tc,
                         json_object_get(js, "username"), "auth.username");
        auth->pass = ngx_http_hris_tc_tpl(tc,
                         json_object_get(js, "password"), "auth.password");
        if (auth->user == NULL || auth->pass == NULL) {
            return NGX_ERROR;
        }

    } else if (ngx_strcmp(type, "bearer") == 0) {
        auth->type = NGX_HTTP_HRIS_AUTH_BEARER;
        auth->bearer = ngx_http_hris_tc_tpl(tc,
                           json_object_get(js, "token"), "auth.token");
        if (auth->bearer == NULL) {
            return NGX_ERROR;
        }

    } else if (ngx_strcmp(type, "header") == 0) {
        auth->type = NGX_HTTP_HRIS_AUTH_HEADER;
        if (ngx_http_hris_tc_params(tc, json_object_get(js, "headers"),
                                    "auth.headers", &auth->headers)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (ngx_strcmp(type, "body") == 0) {
        auth->type = NGX_HTTP_HRIS_AUTH_BODY;
        auth->body = ngx_http_hris_tc_body(tc,
                         json_object_get(js, "fields"), "auth.fields");
        if (auth->body == NULL) {
            return NGX_ERROR;
        }

    } else if (ngx_strcmp(type, "token") == 0) {
        auth->type = NGX_HTTP_HRIS_AUTH_TOKEN;
        if (ngx_http_hris_token_compile(tc, js, auth) != NGX_OK) {
            return NGX_ERROR;
        }

    } else {
        ngx_http_hris_tc_error(tc, sub, "unknown type \"%s\" (none, basic, "
                               "bearer, header, body or token)", type);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * "auth": {"type": "token", ...}: the account's credentials are exchanged
 * at "url" (default: the table's token_url) for a token found at "token"
 * in the answer, sent as "header: value" until it expires.
 */

static ngx_int_t
ngx_http_hris_token_compile(ngx_http_hris_tc_t *tc, json_t *js,
    ngx_http_hris_auth_t *auth)
{
    json_t                      *v, *code;
    size_t                       i;
    const char                  *key;
    ngx_uint_t                  *status;
    const char                  *s;
    ngx_http_hris_token_spec_t  *ts;

    if (ngx_http_hris_tc_keys(tc, js, "auth", ngx_http_hris_token_keys)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ts = ngx_pcalloc(tc->cf->pool, sizeof(ngx_http_hris_token_spec_t));
    if (ts == NULL) {
        return NGX_ERROR;
    }

    s = json_string_value(json_object_get(js, "method"));
    if (ngx_http_hris_tc_str(tc->cf->pool, s ? s : "POST",
                          ngx_strlen(s ? s : "POST"), &ts->method)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ts->url = ngx_http_hris_tc_tpl(tc, json_object_get(js, "url")
                                        ? json_object_get(js, "url")
                                        : json_string("{{token_url}}"),
                                    "auth.url");
    if (ts->url == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_hris_tc_params(tc, json_object_get(js, "query"),
                                     "auth.query", &ts->query) != NGX_OK
        || ngx_http_hris_tc_params(tc, json_object_get(js, "form"),
                                        "auth.form", &ts->form) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (json_object_get(js, "body")) {
        ts->body = ngx_http_hris_tc_body(tc, json_object_get(js, "body"),
                                          "auth.body");
        if (ts->body == NULL) {
            return NGX_ERROR;
        }
    }

    v = json_object_get(js, "basic");
    if (v) {
        ts->basic_user = ngx_http_hris_tc_tpl(tc,
                             json_object_get(v, "username"),
                             "auth.basic.username");
        ts->basic_pass = ngx_http_hris_tc_tpl(tc,
                             json_object_get(v, "password"),
                             "auth.basic.password");
        if (ts->basic_user == NULL || ts->basic_pass == NULL) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_hris_tc_path(tc, json_object_get(js, "token"), "auth.token",
                              &ts->token)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (json_object_get(js, "expires_in")) {
        if (ngx_http_hris_tc_path(tc, json_object_get(js, "expires_in"),
                                  "auth.expires_in", &ts->expires_in)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
        ts->has_expires_in = 1;
    }

    v = json_object_get(js, "ttl");
    ts->ttl = json_is_integer(v) ? (time_t) json_integer_value(v) : 3600;

    s = json_string_value(json_object_get(js, "header"));
    if (ngx_http_hris_tc_str(tc->cf->pool, s ? s : "Authorization",
                          ngx_strlen(s ? s : "Authorization"), &ts->header)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ts->value = ngx_http_hris_tc_tpl(tc, json_object_get(js, "value")
                                          ? json_object_get(js, "value")
                                          : json_string("Bearer {{token}}"),
                                      "auth.value");
    if (ts->value == NULL) {
        return NGX_ERROR;
    }

    /*
     * OAuth2 refresh: "refresh_token" points at a rotated refresh token in
     * the answer (absent: the old one stays), and "needs_reauth":
     * {"/error": ["invalid_grant"]} tells a refused grant, after which
     * only a new authorization helps
     */
    if (json_object_get(js, "refresh_token")) {
        if (ngx_http_hris_tc_path(tc, json_object_get(js, "refresh_token"),
                                  "auth.refresh_token", &ts->refresh)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
        ts->has_refresh = 1;
    }

    v = json_object_get(js, "needs_reauth");
    if (v) {
        if (!json_is_object(v) || json_object_size(v) != 1) {
            ngx_http_hris_tc_error(tc, "auth.needs_reauth", "must be one "
                                   "{\"pointer\": [values]}");
            return NGX_ERROR;
        }

        json_object_foreach(v, key, code) {
            if (!json_is_array(code)
                || ngx_http_hris_tc_path(tc, json_string(key),
                                         "auth.needs_reauth", &ts->reauth)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
            ts->reauth_values = code;
        }
        ts->has_reauth = 1;
    }

    /* the statuses that mean "this token is refused": renew it once */
    if (ngx_array_init(&ts->renew_on, tc->cf->pool, 2, sizeof(ngx_uint_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    v = json_object_get(js, "renew_on");
    if (v == NULL) {
        status = ngx_array_push(&ts->renew_on);
        if (status == NULL) {
            return NGX_ERROR;
        }
        *status = NGX_HTTP_UNAUTHORIZED;
    }

    json_array_foreach(v, i, code) {
        if (!json_is_integer(code)) {
            ngx_http_hris_tc_error(tc, "auth.renew_on", "must be an array of "
                                   "HTTP statuses");
            return NGX_ERROR;
        }
        status = ngx_array_push(&ts->renew_on);
        if (status == NULL) {
            return NGX_ERROR;
        }
        *status = (ngx_uint_t) json_integer_value(code);
    }

    s = json_string_value(json_object_get(js, "echo_header"));
    if (s && ngx_http_hris_tc_str(tc->cf->pool, s, ngx_strlen(s),
                               &ts->echo_header)
             != NGX_OK)
    {
        return NGX_ERROR;
    }

    auth->token = ts;

    return NGX_OK;
}


/*
 * "errors": {"in_body": {"when": {"/isError": [true]}, "status": "/Status",
 * "message": "/Message", "rules": [{"status": [1, 2], "http": 401}, ...]}}:
 * a 2xx answer that says it failed is handled as the status a rule names.
 */

ngx_int_t
ngx_http_hris_body_errors_compile(ngx_http_hris_tc_t *tc, json_t *js)
{
    json_t                       *when, *v, *rule;
    size_t                        i;
    const char                   *key;
    ngx_str_t                     src;
    ngx_http_hris_body_rule_t    *r;
    ngx_http_hris_body_errors_t  *be = &tc->table->body_errors;
    char                          sub[128];

    if (ngx_array_init(&be->rules, tc->cf->pool, 4,
                       sizeof(ngx_http_hris_body_rule_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (js == NULL) {
        return NGX_OK;
    }

    when = json_object_get(js, "when");
    if (!json_is_object(when) || json_object_size(when) != 1) {
        ngx_http_hris_tc_error(tc, "errors.in_body.when", "must be one "
                               "{\"pointer\": [values]}");
        return NGX_ERROR;
    }

    json_object_foreach(when, key, v) {
        if (!json_is_array(v)
            || ngx_http_hris_tc_path(tc, json_string(key),
                                     "errors.in_body.when", &be->when)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
        be->when_values = v;
    }

    if (ngx_http_hris_tc_path(tc, json_object_get(js, "status")
                                  ? json_object_get(js, "status")
                                  : json_string("/status"),
                              "errors.in_body.status", &be->status) != NGX_OK
        || ngx_http_hris_tc_path(tc, json_object_get(js, "message")
                                     ? json_object_get(js, "message")
                                     : json_string("/message"),
                                 "errors.in_body.message", &be->message)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    json_array_foreach(json_object_get(js, "rules"), i, rule) {
        ngx_snprintf((u_char *) sub, sizeof(sub), "errors.in_body.rules.%uz%Z",
                     i);

        r = ngx_array_push(&be->rules);
        if (r == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(r, sizeof(ngx_http_hris_body_rule_t));

        v = json_object_get(rule, "http");
        if (!json_is_integer(v) || json_integer_value(v) < 200
            || json_integer_value(v) > 599)
        {
            ngx_http_hris_tc_error(tc, sub, "\"http\" must be the HTTP "
                                   "status the error stands for");
            return NGX_ERROR;
        }
        r->http = (ngx_uint_t) json_integer_value(v);

        r->statuses = json_object_get(rule, "status");
        if (r->statuses && !json_is_array(r->statuses)) {
            ngx_http_hris_tc_error(tc, sub, "\"status\" must be an array");
            return NGX_ERROR;
        }

        if (json_object_get(rule, "message")) {
            r->message = ngx_http_hris_tc_regex(tc,
                             json_object_get(rule, "message"), sub, &src);
            if (r->message == NULL) {
                return NGX_ERROR;
            }
        }
    }

    be->enabled = 1;

    return NGX_OK;
}


/* "rate_limit": {"calls": 30, "per": "60s"} */

ngx_int_t
ngx_http_hris_rate_compile(ngx_http_hris_tc_t *tc, json_t *js,
    const char *where, ngx_uint_t *calls, ngx_msec_t *window)
{
    json_t      *c, *per;
    ngx_int_t    ms;
    ngx_str_t    s;

    if (js == NULL) {
        return NGX_OK;
    }

    c = json_object_get(js, "calls");
    per = json_object_get(js, "per");

    if (json_is_string(per)) {
        s.data = (u_char *) json_string_value(per);
        s.len = json_string_length(per);
        ms = ngx_parse_time(&s, 0);

    } else {
        ms = NGX_ERROR;
    }

    if (!json_is_integer(c) || json_integer_value(c) < 1
        || json_integer_value(c) > 10000 || ms == NGX_ERROR || ms == 0)
    {
        ngx_http_hris_tc_error(tc, where, "must be {\"calls\": 1..10000, "
                               "\"per\": \"60s\"}");
        return NGX_ERROR;
    }

    *calls = (ngx_uint_t) json_integer_value(c);
    *window = (ngx_msec_t) ms;

    return NGX_OK;
}

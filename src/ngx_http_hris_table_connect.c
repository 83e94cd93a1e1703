/*
 * Compiling "connect": how an end user links an account
 * (ngx_http_hris_connect*.c). "display_name" names the provider to people;
 * "form" describes the fields of the gateway's form (label, help line,
 * secret or not, pattern); "verify" is the one call that checks typed
 * credentials before the account is stored; "oauth2" is an
 * authorization-code grant: where to send the browser and the scope to
 * ask for. The code exchange itself is RFC 6749 and the same for every
 * provider. All the text is the table's: the C code names no provider.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_table_int.h"


#define NGX_HTTP_HRIS_FIELD_NAME     64
#define NGX_HTTP_HRIS_LABEL_MAX      200
#define NGX_HTTP_HRIS_HELP_MAX       1000


static ngx_int_t ngx_http_hris_connect_name(ngx_http_hris_tc_t *tc,
    json_t *js);
static ngx_int_t ngx_http_hris_connect_fields(ngx_http_hris_tc_t *tc,
    json_t *js);
static ngx_int_t ngx_http_hris_connect_field(ngx_http_hris_tc_t *tc,
    json_t *js, const char *where, ngx_http_hris_connect_field_t *f);
static ngx_int_t ngx_http_hris_connect_text(ngx_http_hris_tc_t *tc,
    json_t *js, const char *where, const char *key, size_t max,
    const char *dflt, ngx_str_t *out);
static ngx_int_t ngx_http_hris_connect_pattern(ngx_http_hris_tc_t *tc,
    json_t *js, const char *where, ngx_http_hris_connect_field_t *f);
static ngx_int_t ngx_http_hris_connect_verify(ngx_http_hris_tc_t *tc,
    json_t *js);
static ngx_int_t ngx_http_hris_connect_oauth2(ngx_http_hris_tc_t *tc,
    json_t *js);
static ngx_uint_t ngx_http_hris_connect_word(ngx_str_t *s,
    const char *allowed);


static const char  *ngx_http_hris_connect_keys[] = {
    "display_name", "form", "verify", "oauth2", NULL
};

static const char  *ngx_http_hris_field_keys[] = {
    "name", "label", "help", "placeholder", "secret", "pattern",
    "pattern_error", "autocomplete", "inputmode", NULL
};

static const char  *ngx_http_hris_verify_keys[] = {
    "token", "method", "path", "query", "body", "refused", NULL
};

static const char  *ngx_http_hris_oauth2_keys[] = {
    "authorize_url", "scope", NULL
};

/* the inputmode values HTML defines */
static const char  *ngx_http_hris_inputmodes[] = {
    "none", "text", "decimal", "numeric", "tel", "search", "email", "url",
    NULL
};


ngx_int_t
ngx_http_hris_connect_compile(ngx_http_hris_tc_t *tc, json_t *js)
{
    ngx_http_hris_table_t  *t = tc->table;

    if (ngx_array_init(&t->connect_form, tc->cf->pool, 2,
                       sizeof(ngx_http_hris_connect_field_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    t->display_name = t->name;

    if (js == NULL) {
        return NGX_OK;
    }

    if (!json_is_object(js)
        || ngx_http_hris_tc_keys(tc, js, "connect",
                                 ngx_http_hris_connect_keys)
           != NGX_OK)
    {
        if (!json_is_object(js)) {
            ngx_http_hris_tc_error(tc, "connect", "must be an object with "
                                   "\"form\" and/or \"oauth2\"");
        }
        return NGX_ERROR;
    }

    if (ngx_http_hris_connect_name(tc, json_object_get(js, "display_name"))
        != NGX_OK
        || ngx_http_hris_connect_fields(tc, json_object_get(js, "form"))
           != NGX_OK
        || ngx_http_hris_connect_verify(tc, json_object_get(js, "verify"))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_hris_connect_oauth2(tc, json_object_get(js, "oauth2"));
}


/* How people call the provider: "ClayHR", in titles and sentences. */

static ngx_int_t
ngx_http_hris_connect_name(ngx_http_hris_tc_t *tc, json_t *js)
{
    if (js == NULL) {
        return NGX_OK;
    }

    if (!json_is_string(js) || json_string_length(js) == 0
        || json_string_length(js) > 100
        || !ngx_http_hris_value_safe((u_char *) json_string_value(js),
                                     json_string_length(js)))
    {
        ngx_http_hris_tc_error(tc, "connect.display_name", "must be a "
                               "string of 1 to 100 characters without "
                               "control characters");
        return NGX_ERROR;
    }

    return ngx_http_hris_tc_str(tc->cf->pool, json_string_value(js),
                                json_string_length(js),
                                &tc->table->display_name);
}


/*
 * "form": an array of fields, each a credential or context name (the
 * plain form: labelled by its name) or an object describing it.
 */

static ngx_int_t
ngx_http_hris_connect_fields(ngx_http_hris_tc_t *tc, json_t *js)
{
    size_t                          i;
    json_t                         *o;
    ngx_uint_t                      j;
    ngx_http_hris_connect_field_t  *f, *all;
    char                            where[64];

    if (js == NULL) {
        return NGX_OK;
    }

    if (!json_is_array(js) || json_array_size(js) == 0
        || json_array_size(js) > 32)
    {
        ngx_http_hris_tc_error(tc, "connect.form", "must be an array of 1 "
                               "to 32 fields: credential or context names, "
                               "or objects with \"name\", \"label\", "
                               "\"help\", ...");
        return NGX_ERROR;
    }

    json_array_foreach(js, i, o) {
        ngx_snprintf((u_char *) where, sizeof(where), "connect.form[%uz]%Z",
                     i);

        f = ngx_array_push(&tc->table->connect_form);
        if (f == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_hris_connect_field(tc, o, where, f) != NGX_OK) {
            return NGX_ERROR;
        }

        all = tc->table->connect_form.elts;

        for (j = 0; j + 1 < tc->table->connect_form.nelts; j++) {
            if (ngx_http_hris_str_eq(&all[j].name, &f->name)) {
                ngx_http_hris_tc_error(tc, where, "\"%V\" is in the form "
                                       "twice", &f->name);
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_connect_field(ngx_http_hris_tc_t *tc, json_t *js,
    const char *where, ngx_http_hris_connect_field_t *f)
{
    json_t                       *name, *secret;
    ngx_uint_t                    i;
    ngx_http_hris_context_key_t  *ck;

    ngx_memzero(f, sizeof(ngx_http_hris_connect_field_t));

    name = json_is_string(js) ? js : json_object_get(js, "name");

    if (!(json_is_string(js) || json_is_object(js))
        || (json_is_object(js)
            && ngx_http_hris_tc_keys(tc, js, where, ngx_http_hris_field_keys)
               != NGX_OK))
    {
        if (!json_is_object(js)) {
            ngx_http_hris_tc_error(tc, where, "must be a credential or "
                                   "context name, or an object describing "
                                   "the field");
        }
        return NGX_ERROR;
    }

    /* names go into the page as input names and ids, unescaped */
    if (!json_is_string(name) || json_string_length(name) == 0
        || json_string_length(name) > NGX_HTTP_HRIS_FIELD_NAME
        || strspn(json_string_value(name), "abcdefghijklmnopqrstuvwxyz"
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
           != json_string_length(name))
    {
        ngx_http_hris_tc_error(tc, where, "\"name\" must be a credential or "
                               "context name: 1 to 64 letters, digits or "
                               "\"_\"");
        return NGX_ERROR;
    }

    if (ngx_http_hris_tc_str(tc->cf->pool, json_string_value(name),
                             json_string_length(name), &f->name)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ck = tc->table->context.elts;

    for (i = 0; i < tc->table->context.nelts; i++) {
        if (ngx_http_hris_str_eq(&ck[i].name, &f->name)) {
            f->context = 1;
        }
    }

    /* the plain form: a credential typed into a password input */
    if (json_is_string(js)) {
        f->label = f->name;
        f->secret = !f->context;
        ngx_str_set(&f->autocomplete, "off");
        ngx_str_null(&f->pattern_error);
        return NGX_OK;
    }

    secret = json_object_get(js, "secret");

    if (secret && !json_is_boolean(secret)) {
        ngx_http_hris_tc_error(tc, where, "\"secret\" must be true or false");
        return NGX_ERROR;
    }

    f->secret = secret ? json_is_true(secret) : !f->context;

    if (ngx_http_hris_connect_text(tc, js, where, "label",
                                   NGX_HTTP_HRIS_LABEL_MAX,
                                   (char *) f->name.data, &f->label)
        != NGX_OK
        || ngx_http_hris_connect_text(tc, js, where, "help",
                                      NGX_HTTP_HRIS_HELP_MAX, "", &f->help)
           != NGX_OK
        || ngx_http_hris_connect_text(tc, js, where, "placeholder",
                                      NGX_HTTP_HRIS_LABEL_MAX, "",
                                      &f->placeholder)
           != NGX_OK
        || ngx_http_hris_connect_text(tc, js, where, "pattern_error",
                                      NGX_HTTP_HRIS_HELP_MAX, "",
                                      &f->pattern_error)
           != NGX_OK
        || ngx_http_hris_connect_text(tc, js, where, "autocomplete", 64,
                                      "off", &f->autocomplete)
           != NGX_OK
        || ngx_http_hris_connect_text(tc, js, where, "inputmode", 16, "",
                                      &f->inputmode)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* autocomplete tokens: "off", "username", "section-x organization" */
    if (!ngx_http_hris_connect_word(&f->autocomplete,
                                    "abcdefghijklmnopqrstuvwxyz0123456789- "))
    {
        ngx_http_hris_tc_error(tc, where, "\"autocomplete\" must be HTML "
                               "autofill tokens (lower-case letters, digits, "
                               "\"-\", spaces), e.g. \"off\"");
        return NGX_ERROR;
    }

    for (i = 0; f->inputmode.len && ngx_http_hris_inputmodes[i]; i++) {
        if (ngx_strcmp(f->inputmode.data, ngx_http_hris_inputmodes[i]) == 0) {
            break;
        }
    }

    if (f->inputmode.len && ngx_http_hris_inputmodes[i] == NULL) {
        ngx_http_hris_tc_error(tc, where, "\"inputmode\" must be one of "
                               "none, text, decimal, numeric, tel, search, "
                               "email, url");
        return NGX_ERROR;
    }

    return ngx_http_hris_connect_pattern(tc, json_object_get(js, "pattern"),
                                         where, f);
}


/* A text of the table shown to people: any characters but controls. */

static ngx_int_t
ngx_http_hris_connect_text(ngx_http_hris_tc_t *tc, json_t *js,
    const char *where, const char *key, size_t max, const char *dflt,
    ngx_str_t *out)
{
    json_t  *v;

    v = json_object_get(js, key);

    if (v == NULL) {
        return ngx_http_hris_tc_str(tc->cf->pool, dflt, ngx_strlen(dflt),
                                    out);
    }

    if (!json_is_string(v) || json_string_length(v) > max
        || !ngx_http_hris_value_safe((u_char *) json_string_value(v),
                                     json_string_length(v)))
    {
        ngx_http_hris_tc_error(tc, where, "\"%s\" must be a string of at "
                               "most %uz characters without control "
                               "characters", key, max);
        return NGX_ERROR;
    }

    return ngx_http_hris_tc_str(tc->cf->pool, json_string_value(v),
                                json_string_length(v), out);
}


/*
 * "pattern": a PCRE2 pattern the gateway checks the typed value against,
 * and that the browser checks too (its "pattern" attribute, which is
 * anchored already: a leading "^" and a trailing "$" are left out there).
 */

static ngx_int_t
ngx_http_hris_connect_pattern(ngx_http_hris_tc_t *tc, json_t *js,
    const char *where, ngx_http_hris_connect_field_t *f)
{
    size_t  n;
    char    sub[96];

    if (js == NULL) {
        return NGX_OK;
    }

    ngx_snprintf((u_char *) sub, sizeof(sub), "%s.pattern%Z", where);

    f->pattern = ngx_http_hris_tc_regex(tc, js, sub, &f->pattern_src);
    if (f->pattern == NULL) {
        return NGX_ERROR;
    }

    if (f->pattern_src.len > 500
        || !ngx_http_hris_value_safe(f->pattern_src.data,
                                     f->pattern_src.len))
    {
        ngx_http_hris_tc_error(tc, sub, "must be at most 500 characters "
                               "without control characters");
        return NGX_ERROR;
    }

    if (f->pattern_src.len && f->pattern_src.data[0] == '^') {
        f->pattern_src.data++;
        f->pattern_src.len--;
    }

    /* a "$" that is not escaped ("\$" matches a dollar sign) */
    n = f->pattern_src.len;

    if (n && f->pattern_src.data[n - 1] == '$'
        && (n < 2 || f->pattern_src.data[n - 2] != '\\'))
    {
        f->pattern_src.len--;
    }

    return NGX_OK;
}


/*
 * "verify": {"token": true} (the token exchange of the table's auth) or
 * {"method", "path", "query", "body"}: one cheap call below the base URL,
 * with the table's headers and auth; "refused": the statuses that mean
 * the provider refused the credentials (after errors.in_body).
 */

static ngx_int_t
ngx_http_hris_connect_verify(ngx_http_hris_tc_t *tc, json_t *js)
{
    size_t                           i;
    json_t                          *v, *token;
    ngx_uint_t                       j, *status, has_token;
    ngx_http_hris_auth_t            *auth;
    ngx_http_hris_connect_verify_t  *vf;

    if (js == NULL) {
        return NGX_OK;
    }

    if (!json_is_object(js)
        || ngx_http_hris_tc_keys(tc, js, "connect.verify",
                                 ngx_http_hris_verify_keys)
           != NGX_OK)
    {
        if (!json_is_object(js)) {
            ngx_http_hris_tc_error(tc, "connect.verify", "must be an object: "
                                   "{\"token\": true} or {\"path\": ...}");
        }
        return NGX_ERROR;
    }

    vf = ngx_pcalloc(tc->cf->pool, sizeof(ngx_http_hris_connect_verify_t));
    if (vf == NULL
        || ngx_array_init(&vf->refused, tc->cf->pool, 4, sizeof(ngx_uint_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    token = json_object_get(js, "token");

    if (token && !json_is_true(token)) {
        ngx_http_hris_tc_error(tc, "connect.verify.token", "must be true (or "
                               "left out)");
        return NGX_ERROR;
    }

    vf->token = (token != NULL);

    if (vf->token == (json_object_get(js, "path") != NULL)) {
        ngx_http_hris_tc_error(tc, "connect.verify", "needs either \"token\": "
                               "true or a \"path\", not both");
        return NGX_ERROR;
    }

    if (vf->token) {
        auth = tc->table->auths.elts;
        has_token = 0;

        /* a refresh grant would spend the refresh token it checks */
        for (j = 0; j < tc->table->auths.nelts; j++) {
            if (auth[j].type == NGX_HTTP_HRIS_AUTH_TOKEN
                && !auth[j].token->has_refresh)
            {
                has_token = 1;
            }
        }

        if (!has_token || json_object_get(js, "method")
            || json_object_get(js, "query") || json_object_get(js, "body"))
        {
            ngx_http_hris_tc_error(tc, "connect.verify.token", "needs an "
                                   "\"auth\" of type \"token\" that exchanges "
                                   "credentials (not a refresh token), and "
                                   "takes no method, query or body (the "
                                   "exchange is the auth's)");
            return NGX_ERROR;
        }

    } else {
        v = json_object_get(js, "method");

        if (v && (!json_is_string(v) || json_string_length(v) == 0
                  || json_string_length(v) > 16
                  || strspn(json_string_value(v), "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
                     != json_string_length(v)))
        {
            ngx_http_hris_tc_error(tc, "connect.verify.method", "must be an "
                                   "HTTP method in capitals, e.g. \"GET\"");
            return NGX_ERROR;
        }

        if (ngx_http_hris_tc_str(tc->cf->pool,
                                 v ? json_string_value(v) : "GET",
                                 v ? json_string_length(v) : 3, &vf->method)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        vf->path = ngx_http_hris_tc_tpl(tc, json_object_get(js, "path"),
                                        "connect.verify.path");
        if (vf->path == NULL
            || ngx_http_hris_tc_params(tc, json_object_get(js, "query"),
                                       "connect.verify.query", &vf->query)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        v = json_object_get(js, "body");

        if (v) {
            if (!json_is_object(v)) {
                ngx_http_hris_tc_error(tc, "connect.verify.body", "must be a "
                                       "JSON object");
                return NGX_ERROR;
            }

            vf->body = ngx_http_hris_tc_body(tc, v, "connect.verify.body");
            if (vf->body == NULL) {
                return NGX_ERROR;
            }
        }
    }

    v = json_object_get(js, "refused");

    if (v && (!json_is_array(v) || json_array_size(v) == 0
              || json_array_size(v) > 8))
    {
        goto bad_refused;
    }

    json_array_foreach(v, i, token) {
        if (!json_is_integer(token) || json_integer_value(token) < 400
            || json_integer_value(token) > 599)
        {
            goto bad_refused;
        }

        status = ngx_array_push(&vf->refused);
        if (status == NULL) {
            return NGX_ERROR;
        }

        *status = (ngx_uint_t) json_integer_value(token);
    }

    if (v == NULL) {
        status = ngx_array_push_n(&vf->refused, 2);
        if (status == NULL) {
            return NGX_ERROR;
        }

        status[0] = NGX_HTTP_UNAUTHORIZED;
        status[1] = NGX_HTTP_FORBIDDEN;
    }

    tc->table->connect_verify = vf;

    return NGX_OK;

bad_refused:

    ngx_http_hris_tc_error(tc, "connect.verify.refused", "must be an array "
                           "of 1 to 8 HTTP statuses (400 to 599)");
    return NGX_ERROR;
}


static ngx_int_t
ngx_http_hris_connect_oauth2(ngx_http_hris_tc_t *tc, json_t *o)
{
    json_t                 *v;
    ngx_http_hris_table_t  *t = tc->table;

    if (o == NULL) {
        return NGX_OK;
    }

    if (!json_is_object(o)
        || ngx_http_hris_tc_keys(tc, o, "connect.oauth2",
                                 ngx_http_hris_oauth2_keys)
           != NGX_OK
        || (json_object_get(o, "scope")
            && !json_is_string(json_object_get(o, "scope"))))
    {
        ngx_http_hris_tc_error(tc, "connect.oauth2", "must be {\"authorize_"
                               "url\": template, \"scope\": string}");
        return NGX_ERROR;
    }

    t->authorize_url = ngx_http_hris_tc_tpl(tc,
                           json_object_get(o, "authorize_url"),
                           "connect.oauth2.authorize_url");
    if (t->authorize_url == NULL) {
        return NGX_ERROR;
    }

    v = json_object_get(o, "scope");

    return ngx_http_hris_tc_str(tc->cf->pool,
                                v ? json_string_value(v) : "",
                                v ? json_string_length(v) : 0, &t->scope);
}


static ngx_uint_t
ngx_http_hris_connect_word(ngx_str_t *s, const char *allowed)
{
    return s->len > 0 && strspn((char *) s->data, allowed) == s->len;
}

/*
 * Connect links (POST {admin}/connect_links, called by
 * ngx_http_hris_admin.c): what the SaaS backend asks for with its API
 * key, checked here so that opening the link can only do what its tenant
 * allowed, and sealed like a cursor (ngx_http_hris_cursor.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/rand.h>

#include "ngx_http_hris_connect.h"


#define NGX_HTTP_HRIS_LINK_TTL        3600
#define NGX_HTTP_HRIS_LINK_TTL_MIN    60
#define NGX_HTTP_HRIS_LINK_TTL_MAX    604800


static ngx_int_t ngx_http_hris_context_check(ngx_http_hris_table_t *table,
    json_t *context, ngx_str_t *bad);
static ngx_uint_t ngx_http_hris_absolute_url(json_t *v);
static ngx_int_t ngx_http_hris_link_method(ngx_http_request_t *r,
    ngx_http_hris_table_t *table, ngx_http_hris_oauth_app_t *app,
    json_t *body, ngx_str_t *method, ngx_int_t *rc);


/*
 * POST {admin}/connect_links, for the tenant of the API key. Body:
 * {"integrated_account_id", "provider", "redirect_uri", "context",
 *  "base_url", "token_url", "method": "oauth2" | "form", "expires_in"}
 */

ngx_int_t
ngx_http_hris_connect_link(ngx_http_request_t *r, ngx_str_t *tenant,
    json_t *body)
{
    u_char                      *p;
    json_t                      *v, *link, *ctx, *result;
    time_t                       expires;
    ngx_int_t                    rc;
    ngx_str_t                    id, provider, method, base, token, bad;
    ngx_uint_t                   i;
    ngx_http_hris_table_t       *table;
    ngx_http_hris_account_t     *acc;
    ngx_http_hris_oauth_app_t   *app;
    ngx_http_hris_main_conf_t   *hmcf;
    ngx_tm_t                     tm;
    u_char                       when[sizeof("2026-01-01T00:00:00Z")];
    u_char                       raw[16], nonce[32];

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    v = json_object_get(body, "integrated_account_id");
    id.data = (u_char *) json_string_value(v);
    id.len = json_string_length(v);

    if (!ngx_http_hris_account_id_valid(v)) {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "\"integrated_account_id\" must be a string of 1 to 128 "
                   "letters, digits, \"-\", \"_\" or \".\": the id the "
                   "account will have");
    }

    v = json_object_get(body, "provider");
    provider.data = (u_char *) json_string_value(v);
    provider.len = json_string_length(v);
    table = provider.data ? ngx_http_hris_table_find(hmcf, &provider) : NULL;

    if (table == NULL) {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "\"provider\" must name a mapping table, not \"%V\"",
                   &provider);
    }

    if (!ngx_http_hris_absolute_url(json_object_get(body, "redirect_uri"))) {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "\"redirect_uri\" must be an absolute http:// or https:// "
                   "URL: where the end user's browser goes back to");
    }

    ctx = json_object_get(body, "context");

    if (ctx && ngx_http_hris_context_check(table, ctx, &bad) != NGX_OK) {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "\"context\" must be an object of strings without "
                   "control characters, each matching the pattern the %V "
                   "table declares (context.%V is not)",
                   &table->name, &bad);
    }

    for (i = 0; i < 2; i++) {
        v = json_object_get(body, i ? "token_url" : "base_url");

        if (v && !ngx_http_hris_absolute_url(v)) {
            return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                       "\"%s\" must be an absolute http:// or https:// URL",
                       i ? "token_url" : "base_url");
        }

        if (v && ngx_http_hris_link_url_allowed(r, table, ctx, v) != NGX_OK) {
            return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                       "\"%s\" is not a URL this gateway allows for tenants: "
                       "use the provider's own host (the %V mapping "
                       "table's), a base URL of the accounts file, or ask "
                       "the operator to allow its prefix with "
                       "\"hris_allowed_urls\"", i ? "token_url" : "base_url",
                       &table->name);
        }
    }

    app = ngx_http_hris_oauth_app_find(hmcf, tenant, &provider);

    if (ngx_http_hris_link_method(r, table, app, body, &method, &rc)
        != NGX_OK)
    {
        return rc;
    }

    v = json_object_get(body, "expires_in");
    expires = NGX_HTTP_HRIS_LINK_TTL;

    if (v) {
        if (!json_is_integer(v)
            || json_integer_value(v) < NGX_HTTP_HRIS_LINK_TTL_MIN
            || json_integer_value(v) > NGX_HTTP_HRIS_LINK_TTL_MAX)
        {
            return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                       "\"expires_in\" must be %d to %d seconds",
                       NGX_HTTP_HRIS_LINK_TTL_MIN, NGX_HTTP_HRIS_LINK_TTL_MAX);
        }

        expires = (time_t) json_integer_value(v);
    }

    expires += ngx_time();

    /* connecting may replace the tenant's own account, never another's */
    acc = ngx_http_hris_account_get(r, hmcf, &id);

    if (acc && !ngx_http_hris_str_eq(&acc->tenant, tenant)) {
        return ngx_http_hris_send_error(r, NGX_HTTP_CONFLICT, NULL,
                   "the account id \"%V\" is taken: choose another id", &id);
    }

    /*
     * a new account: refused now if the tenant has no room for it, not
     * after the end user went through the provider (the completion is
     * checked again)
     */
    if (acc == NULL) {
        rc = ngx_http_hris_shm_tenant_room(hmcf, tenant, &id);
        if (rc != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "hris: no connect link for account \"%V\" of "
                          "tenant \"%V\": the tenant is at its cap of "
                          "run-time accounts (\"%s\")", &id, tenant,
                          rc == NGX_HTTP_HRIS_OVER_COUNT
                          ? "hris_tenant_accounts" : "hris_zone_size");
            return ngx_http_hris_admin_over(r, rc);
        }
    }

    if (ngx_http_hris_connect_base(r, hmcf, &base) != NGX_OK) {
        return r->header_sent ? NGX_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* sealed with the fleet's key (hris_redis): 503 until it is known */
    rc = ngx_http_hris_cursor_key_wait(r, NULL);
    if (rc != NGX_OK || r->header_sent) {
        return rc;
    }

    /* a nonce: each link is one of a kind, and so is its use */
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_hex_dump(nonce, raw, sizeof(raw));

    link = json_pack("{s:s%, s:s%, s:s%, s:O, s:s%, s:I, s:s#}",
                     "t", tenant->data, tenant->len,
                     "a", id.data, id.len,
                     "p", provider.data, provider.len,
                     "r", json_object_get(body, "redirect_uri"),
                     "m", method.data, method.len,
                     "e", (json_int_t) expires,
                     "n", (char *) nonce, (int) (2 * sizeof(raw)));

    /* optional: present only when given */
    if (link
        && ((ctx && json_object_set(link, "c", ctx))
            || ((v = json_object_get(body, "base_url"))
                && json_object_set(link, "b", v))
            || ((v = json_object_get(body, "token_url"))
                && json_object_set(link, "u", v))))
    {
        json_decref(link);
        link = NULL;
    }

    if (link == NULL
        || ngx_http_hris_cursor_seal(r->pool, hmcf->cursor_key,
                                     &ngx_http_hris_link_binding, link,
                                     &token)
           != NGX_OK)
    {
        json_decref(link);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json_decref(link);

    p = ngx_pnalloc(r->pool, base.len + token.len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(ngx_cpymem(p, base.data, base.len), token.data, token.len);

    ngx_gmtime(expires, &tm);
    ngx_sprintf(when, "%4d-%02d-%02dT%02d:%02d:%02dZ%Z", tm.ngx_tm_year,
                tm.ngx_tm_mon, tm.ngx_tm_mday, tm.ngx_tm_hour, tm.ngx_tm_min,
                tm.ngx_tm_sec);

    result = json_pack("{s:{s:s%, s:s%, s:s%, s:s%, s:s}}", "result",
                       "url", p, base.len + token.len,
                       "method", method.data, method.len,
                       "integrated_account_id", id.data, id.len,
                       "provider", provider.data, provider.len,
                       "expires_at", (char *) when);

    if (result == NULL
        || ngx_http_hris_json_cleanup(r->pool, result) != NGX_OK)
    {
        json_decref(result);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_hris_send_json(r, NGX_HTTP_CREATED, result, NULL);
}


/* hris_connect_url, or this server's URL of the hris_connect location */

ngx_int_t
ngx_http_hris_connect_base(ngx_http_request_t *r,
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *base)
{
    u_char     *p;
    ngx_str_t   host;

    if (hmcf->connect_url.len) {
        *base = hmcf->connect_url;
        return NGX_OK;
    }

    if (hmcf->connect_location.len == 0) {
        (void) ngx_http_hris_send_error(r, NGX_HTTP_NOT_IMPLEMENTED, NULL,
                   "no location serves \"hris_connect\": add one (and "
                   "\"hris_connect_url\" with its public URL)");
        return NGX_ERROR;
    }

    /* the Host header as nginx validated it, with its port */
    if (r->headers_in.host) {
        host = r->headers_in.host->value;

    } else {
        host = r->headers_in.server;
    }

    p = ngx_pnalloc(r->pool, sizeof("https://") + host.len
                             + hmcf->connect_location.len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    base->data = p;
#if (NGX_HTTP_SSL)
    p = ngx_sprintf(p, r->connection->ssl ? "https://" : "http://");
#else
    p = ngx_sprintf(p, "http://");
#endif
    p = ngx_sprintf(p, "%V", &host);

    p = ngx_sprintf(p, "%V", &hmcf->connect_location);

    if (p[-1] != '/') {
        *p++ = '/';
    }

    base->len = p - base->data;

    return NGX_OK;
}


/*
 * "oauth2" (the table declares it, the tenant has an app, and the link
 * gives every context key the authorize URL may need: no form asks for
 * them later) or "form"; by default oauth2 when it can be. NGX_DECLINED:
 * the 400 was sent, *rc is its rc.
 */

static ngx_int_t
ngx_http_hris_link_method(ngx_http_request_t *r, ngx_http_hris_table_t *table,
    ngx_http_hris_oauth_app_t *app, json_t *body, ngx_str_t *method,
    ngx_int_t *rc)
{
    json_t                       *v, *ctx;
    ngx_uint_t                    i;
    ngx_http_hris_context_key_t  *ck;

    v = json_object_get(body, "method");
    ctx = json_object_get(body, "context");

    if (v == NULL) {
        if (table->authorize_url && app) {
            ngx_str_set(method, "oauth2");

        } else {
            ngx_str_set(method, "form");
        }

    } else {
        method->data = (u_char *) json_string_value(v);
        method->len = json_string_length(v);
    }

    if (method->len == 4 && ngx_strncmp(method->data, "form", 4) == 0) {
        if (table->connect_form.nelts) {
            return NGX_OK;
        }

        *rc = ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                  "the %V mapping table declares no connect form "
                  "(\"connect\": {\"form\"})", &table->name);
        return NGX_DECLINED;
    }

    if (method->len != 6 || ngx_strncmp(method->data, "oauth2", 6) != 0) {
        *rc = ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                  "\"method\" must be \"oauth2\" or \"form\"");
        return NGX_DECLINED;
    }

    if (table->authorize_url == NULL) {
        *rc = ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                  "the %V mapping table declares no OAuth2 connect flow "
                  "(\"connect\": {\"oauth2\"}): use \"method\": \"form\"",
                  &table->name);
        return NGX_DECLINED;
    }

    if (app == NULL) {
        *rc = ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                  "this tenant has no OAuth app for \"%V\": add one to "
                  "\"oauth_apps\" in the accounts file", &table->name);
        return NGX_DECLINED;
    }

    ck = table->context.elts;

    for (i = 0; i < table->context.nelts; i++) {
        if (ck[i].required
            && json_object_get(ctx, (char *) ck[i].name.data) == NULL)
        {
            *rc = ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                      "an oauth2 link needs \"context\": {\"%V\": ...}, "
                      "which the %V mapping table declares", &ck[i].name,
                      &table->name);
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* Each context value a string matching the table's pattern for it. */

static ngx_int_t
ngx_http_hris_context_check(ngx_http_hris_table_t *table, json_t *context,
    ngx_str_t *bad)
{
    json_t                       *v;
    ngx_str_t                     s;
    ngx_uint_t                    i;
    const char                   *key;
    ngx_http_hris_context_key_t  *ck;

    ngx_str_set(bad, "(not an object)");

    if (!json_is_object(context)) {
        return NGX_ERROR;
    }

    ck = table->context.elts;

    json_object_foreach(context, key, v) {
        bad->data = (u_char *) key;
        bad->len = ngx_strlen(key);

        if (!json_is_string(v)) {
            return NGX_ERROR;
        }

        s.data = (u_char *) json_string_value(v);
        s.len = json_string_length(v);

        /* a pattern's "$" lets a final line break through: not this */
        if (!ngx_http_hris_value_safe(bad->data, bad->len)
            || !ngx_http_hris_value_safe(s.data, s.len))
        {
            bad->len = ngx_http_hris_printable(bad->data);
            return NGX_ERROR;
        }

        for (i = 0; i < table->context.nelts; i++) {
            if (ngx_http_hris_str_eq(&ck[i].name, bad)
                && ck[i].pattern
                && ngx_regex_exec(ck[i].pattern, &s, NULL, 0) < 0)
            {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_hris_absolute_url(json_t *v)
{
    size_t       i, len;
    const char  *s;

    if (!json_is_string(v)) {
        return 0;
    }

    s = json_string_value(v);
    len = json_string_length(v);

    if (len > 2048
        || !((len > 7 && ngx_strncasecmp((u_char *) s, (u_char *) "http://",
                                         7) == 0)
             || (len > 8 && ngx_strncasecmp((u_char *) s,
                                            (u_char *) "https://", 8) == 0)))
    {
        return 0;
    }

    /* nothing that could split a header or end the URL early */
    for (i = 0; i < len; i++) {
        if ((u_char) s[i] <= ' ' || s[i] == '#' || s[i] == 0x7f) {
            return 0;
        }
    }

    return 1;
}

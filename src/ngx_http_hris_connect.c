/*
 * The connect flow (location directive hris_connect): an end user links
 * an integrated account, and the SaaS developer never handles a token.
 *
 *  1. The SaaS backend asks for a link with its API key:
 *     POST {admin}/connect_links (ngx_http_hris_admin.c calls
 *     ngx_http_hris_connect_link() below). The link is signed, names the
 *     tenant, account id, provider and where to send the user back, and
 *     expires.
 *  2. GET {connect}/{link}: for an OAuth2 provider, a redirect to its
 *     authorize URL with a "state" that is bound to the link and to a
 *     cookie set in this browser; for API-key providers, an HTML form
 *     asking for the credentials the table's "connect.form" names.
 *  3. GET {connect}/callback?code=&state=: the code is exchanged at the
 *     token URL (RFC 6749 4.1.3), the tokens become the account's
 *     credentials; or POST {connect}/{link} with the form. Either way the
 *     account is stored (ngx_http_hris_store.c) and the browser goes back
 *     to redirect_uri with integrated_account_id and status=connected (or
 *     status=error and error=<code>).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ngx_http_hris.h"


#define NGX_HTTP_HRIS_LINK_TTL        3600
#define NGX_HTTP_HRIS_LINK_TTL_MIN    60
#define NGX_HTTP_HRIS_LINK_TTL_MAX    604800
#define NGX_HTTP_HRIS_STATE_TTL       900      /* from link to callback */


static ngx_str_t  ngx_http_hris_link_binding = ngx_string("hris-connect-link");
static ngx_str_t  ngx_http_hris_state_binding =
    ngx_string("hris-connect-state");
static ngx_str_t  ngx_http_hris_cookie = ngx_string("hris_connect");


/* What a link says, opened. */
typedef struct {
    json_t                      *json;
    ngx_str_t                    tenant;
    ngx_str_t                    id;
    ngx_str_t                    redirect;
    ngx_str_t                    method;
    ngx_http_hris_table_t       *table;
    ngx_http_hris_oauth_app_t   *app;
} ngx_http_hris_link_t;


typedef struct {
    ngx_http_hris_link_t         link;
    ngx_str_t                    redirect_uri;  /* ours, for the provider */
} ngx_http_hris_connect_ctx_t;


static ngx_int_t ngx_http_hris_link_open(ngx_http_request_t *r,
    ngx_str_t *binding, ngx_str_t *in, ngx_http_hris_link_t *link,
    json_t **sealed);
static ngx_int_t ngx_http_hris_connect_base(ngx_http_request_t *r,
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *base);
static ngx_int_t ngx_http_hris_connect_authorize(ngx_http_request_t *r,
    ngx_http_hris_link_t *link);
static ngx_int_t ngx_http_hris_connect_callback(ngx_http_request_t *r);
static void ngx_http_hris_connect_exchanged(ngx_http_hris_call_t *call);
static ngx_int_t ngx_http_hris_connect_tokens(ngx_http_request_t *r,
    ngx_http_hris_link_t *link, json_t *tokens);
static ngx_int_t ngx_http_hris_connect_form(ngx_http_request_t *r,
    ngx_http_hris_link_t *link);
static void ngx_http_hris_connect_posted(ngx_http_request_t *r);
static ngx_int_t ngx_http_hris_connect_store(ngx_http_request_t *r,
    ngx_http_hris_link_t *link, json_t *account);
static ngx_int_t ngx_http_hris_connect_back(ngx_http_request_t *r,
    ngx_http_hris_link_t *link, ngx_uint_t status, const char *error);
static ngx_int_t ngx_http_hris_redirect(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *location, ngx_str_t *cookie);
static ngx_int_t ngx_http_hris_query_add(ngx_pool_t *pool, ngx_str_t *url,
    const char *name, ngx_str_t *value);
static ngx_int_t ngx_http_hris_form_value(ngx_pool_t *pool, ngx_str_t *body,
    ngx_str_t *name, ngx_str_t *value);
static ngx_int_t ngx_http_hris_context_check(ngx_http_hris_table_t *table,
    json_t *context, ngx_str_t *bad);
static ngx_int_t ngx_http_hris_connect_token_url(ngx_http_request_t *r,
    ngx_http_hris_link_t *link, ngx_str_t *url);
static ngx_int_t ngx_http_hris_app_secret(ngx_http_request_t *r,
    ngx_http_hris_oauth_app_t *app, ngx_str_t *secret);
static ngx_uint_t ngx_http_hris_absolute_url(json_t *v);
static void ngx_http_hris_sha256_hex(ngx_str_t *in, u_char *hex);


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
    ngx_str_t                    id, provider, method, base, token, bad;
    ngx_uint_t                   i;
    ngx_http_hris_table_t       *table;
    ngx_http_hris_account_t     *acc;
    ngx_http_hris_oauth_app_t   *app;
    ngx_http_hris_main_conf_t   *hmcf;
    ngx_tm_t                     tm;
    u_char                       when[sizeof("2026-01-01T00:00:00Z")];

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    v = json_object_get(body, "integrated_account_id");
    id.data = (u_char *) json_string_value(v);
    id.len = json_string_length(v);

    for (i = 0; id.data && i < id.len; i++) {
        if (!(isalnum(id.data[i]) || id.data[i] == '-' || id.data[i] == '_'
              || id.data[i] == '.'))
        {
            break;
        }
    }

    if (id.data == NULL || id.len == 0 || id.len > 128 || i < id.len) {
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
                   "\"context\" must be an object of strings, each matching "
                   "the pattern %V declares (context.%V does not)",
                   &table->file, &bad);
    }

    for (i = 0; i < 2; i++) {
        v = json_object_get(body, i ? "token_url" : "base_url");

        if (v && !ngx_http_hris_absolute_url(v)) {
            return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                       "\"%s\" must be an absolute http:// or https:// URL",
                       i ? "token_url" : "base_url");
        }
    }

    app = ngx_http_hris_oauth_app_find(hmcf, tenant, &provider);

    v = json_object_get(body, "method");
    method.data = (u_char *) json_string_value(v);
    method.len = json_string_length(v);

    if (v == NULL) {
        if (table->authorize_url && app) {
            ngx_str_set(&method, "oauth2");

        } else {
            ngx_str_set(&method, "form");
        }
    }

    if (method.len == 6 && ngx_strncmp(method.data, "oauth2", 6) == 0) {
        if (table->authorize_url == NULL) {
            return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                       "%V declares no OAuth2 connect flow (\"connect\": "
                       "{\"oauth2\"}): use \"method\": \"form\"",
                       &table->file);
        }

        if (app == NULL) {
            return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                       "this tenant has no OAuth app for \"%V\": add one to "
                       "\"oauth_apps\" in the accounts file", &provider);
        }

        /* the authorize URL may need them: no form asks for them later */
        if (ngx_http_hris_context_check(table, ctx ? ctx : json_object(),
                                        &bad) != NGX_OK
            || (ctx == NULL && table->context.nelts))
        {
            return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                       "an oauth2 link needs every context key %V declares "
                       "in \"context\"", &table->file);
        }

        for (i = 0; i < table->context.nelts; i++) {
            if (json_object_get(ctx, (char *) ((ngx_http_hris_context_key_t *)
                                       table->context.elts)[i].name.data)
                == NULL)
            {
                return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                           "an oauth2 link needs \"context\": {\"%V\": ...}",
                           &((ngx_http_hris_context_key_t *)
                             table->context.elts)[i].name);
            }
        }

    } else if (method.len == 4 && ngx_strncmp(method.data, "form", 4) == 0) {
        if (table->connect_form.nelts == 0) {
            return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                       "%V declares no connect form (\"connect\": "
                       "{\"form\"})", &table->file);
        }

    } else {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "\"method\" must be \"oauth2\" or \"form\"");
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

    if (ngx_http_hris_connect_base(r, hmcf, &base) != NGX_OK) {
        return r->header_sent ? NGX_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    link = json_pack("{s:s%, s:s%, s:s%, s:O, s:s%, s:I}",
                     "t", tenant->data, tenant->len,
                     "a", id.data, id.len,
                     "p", provider.data, provider.len,
                     "r", json_object_get(body, "redirect_uri"),
                     "m", method.data, method.len,
                     "e", (json_int_t) expires);

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


ngx_int_t
ngx_http_hris_connect_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_str_t                   rest;
    ngx_http_hris_link_t        link;
    ngx_http_hris_connect_ctx_t  *ctx;

    ngx_http_hris_subpath(r, &rest);

    if (rest.len == 8 && ngx_strncmp(rest.data, "callback", 8) == 0) {
        if (r->method != NGX_HTTP_GET) {
            return ngx_http_hris_send_error(r, NGX_HTTP_NOT_ALLOWED, NULL,
                       "the provider sends the browser back with GET");
        }

        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_hris_connect_callback(r);
    }

    if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_POST) {
        return ngx_http_hris_send_error(r, NGX_HTTP_NOT_ALLOWED, NULL,
                   "a connect link is opened with GET (and its form sent "
                   "with POST)");
    }

    if (r->method == NGX_HTTP_GET) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    rc = ngx_http_hris_link_open(r, &ngx_http_hris_link_binding, &rest,
                                 &link, NULL);
    if (link.json == NULL) {
        return rc;
    }

    if (link.method.len == 6) {
        if (r->method != NGX_HTTP_GET) {
            return ngx_http_hris_send_error(r, NGX_HTTP_NOT_ALLOWED, NULL,
                       "an OAuth2 connect link is opened with GET");
        }

        return ngx_http_hris_connect_authorize(r, &link);
    }

    if (r->method == NGX_HTTP_GET) {
        return ngx_http_hris_connect_form(r, &link);
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_hris_connect_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->link = link;
    ngx_http_set_ctx(r, ctx, ngx_http_hris_module);

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_hris_connect_posted);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/*
 * Opens a link (or a state, which carries its link under "k") and checks
 * it is in date and still makes sense with this configuration. When
 * link->json stays NULL, the 400 was sent and its rc is returned.
 */

static ngx_int_t
ngx_http_hris_link_open(ngx_http_request_t *r, ngx_str_t *binding,
    ngx_str_t *in, ngx_http_hris_link_t *link, json_t **sealed)
{
    json_t                     *js, *l;
    ngx_int_t                   rc;
    ngx_str_t                   provider;
    const char                 *what;
    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);
    what = (binding == &ngx_http_hris_link_binding) ? "connect link"
                                                    : "state";
    link->json = NULL;

    rc = ngx_http_hris_cursor_open(r->pool, hmcf->cursor_key, binding, in,
                                   &js);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "this %s is not valid (altered, cut short, or signed "
                   "with another key): ask for a new link", what);
    }

    if (ngx_http_hris_json_cleanup(r->pool, js) != NGX_OK) {
        json_decref(js);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (json_integer_value(json_object_get(js, "e")) < ngx_time()) {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "this %s has expired: ask for a new link", what);
    }

    if (sealed) {
        *sealed = js;
    }

    l = (binding == &ngx_http_hris_link_binding) ? js
                                                : json_object_get(js, "k");

    link->json = l;
    link->tenant.data = (u_char *) json_string_value(json_object_get(l, "t"));
    link->tenant.len = json_string_length(json_object_get(l, "t"));
    link->id.data = (u_char *) json_string_value(json_object_get(l, "a"));
    link->id.len = json_string_length(json_object_get(l, "a"));
    link->redirect.data = (u_char *) json_string_value(json_object_get(l,
                                                                       "r"));
    link->redirect.len = json_string_length(json_object_get(l, "r"));
    link->method.data = (u_char *) json_string_value(json_object_get(l, "m"));
    link->method.len = json_string_length(json_object_get(l, "m"));
    provider.data = (u_char *) json_string_value(json_object_get(l, "p"));
    provider.len = json_string_length(json_object_get(l, "p"));

    link->table = provider.data ? ngx_http_hris_table_find(hmcf, &provider)
                                : NULL;
    link->app = ngx_http_hris_oauth_app_find(hmcf, &link->tenant, &provider);

    if (link->table == NULL || link->id.len == 0 || link->redirect.len == 0
        || (link->method.len == 6 && link->app == NULL))
    {
        link->json = NULL;
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "this %s no longer matches the gateway's configuration "
                   "(provider or OAuth app removed): ask for a new link",
                   what);
    }

    return NGX_OK;
}


/* hris_connect_url, or this server's URL of the hris_connect location */

static ngx_int_t
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


/* The browser goes to the provider, with a state only it can bring back. */

static ngx_int_t
ngx_http_hris_connect_authorize(ngx_http_request_t *r,
    ngx_http_hris_link_t *link)
{
    u_char                      *p;
    json_t                      *state;
    ngx_str_t                    url, base, callback, sealed, cookie, scope;
    ngx_str_t                    nonce, value, path;
    ngx_array_t                  context;
    ngx_keyval_t                *kv;
    const char                  *key;
    json_t                      *v;
    ngx_http_hris_tpl_vars_t     vars;
    ngx_http_hris_main_conf_t   *hmcf;
    u_char                       raw[16], hex[65], noncehex[33];

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    if (ngx_http_hris_connect_base(r, hmcf, &base) != NGX_OK) {
        return r->header_sent ? NGX_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    callback.len = base.len + sizeof("callback") - 1;
    callback.data = ngx_pnalloc(r->pool, callback.len);
    if (callback.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_memcpy(ngx_cpymem(callback.data, base.data, base.len), "callback",
               sizeof("callback") - 1);

    /* the authorize URL: the app's, or the table's for this context */
    if (link->app->authorize_url.len) {
        url = link->app->authorize_url;

    } else {
        if (ngx_array_init(&context, r->pool, 4, sizeof(ngx_keyval_t))
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        json_object_foreach(json_object_get(link->json, "c"), key, v) {
            kv = ngx_array_push(&context);
            if (kv == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
            kv->key.data = (u_char *) key;
            kv->key.len = ngx_strlen(key);
            kv->value.data = (u_char *) json_string_value(v);
            kv->value.len = json_string_length(v);
        }

        ngx_memzero(&vars, sizeof(ngx_http_hris_tpl_vars_t));
        vars.context = &context;

        if (ngx_http_hris_tpl_render(r->pool, link->table->authorize_url,
                                     &vars, 1, &url)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    scope = link->app->has_scope ? link->app->scope : link->table->scope;

    /* a nonce in a cookie of this browser; its hash in the state */
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_hex_dump(noncehex, raw, sizeof(raw));
    nonce.data = noncehex;
    nonce.len = 32;
    ngx_http_hris_sha256_hex(&nonce, hex);

    state = json_pack("{s:O, s:s, s:I}", "k", link->json, "n", (char *) hex,
                      "e", (json_int_t) (ngx_time()
                                         + NGX_HTTP_HRIS_STATE_TTL));

    if (state == NULL
        || ngx_http_hris_cursor_seal(r->pool, hmcf->cursor_key,
                                     &ngx_http_hris_state_binding, state,
                                     &sealed)
           != NGX_OK)
    {
        json_decref(state);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json_decref(state);

    ngx_str_set(&value, "code");

    if (ngx_http_hris_query_add(r->pool, &url, "response_type", &value)
        != NGX_OK
        || ngx_http_hris_query_add(r->pool, &url, "client_id",
                                   &link->app->client_id) != NGX_OK
        || ngx_http_hris_query_add(r->pool, &url, "redirect_uri", &callback)
           != NGX_OK
        || (scope.len
            && ngx_http_hris_query_add(r->pool, &url, "scope", &scope)
               != NGX_OK)
        || ngx_http_hris_query_add(r->pool, &url, "state", &sealed) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * the cookie goes back only to the connect location (its public path),
     * never to scripts; Secure when the public URL is https
     */
    path.data = ngx_strlcasestrn(base.data, base.data + base.len,
                                 (u_char *) "://", 3 - 1);
    path.data = path.data ? path.data + 3 : base.data;
    path.data = ngx_strlchr(path.data, base.data + base.len, '/');
    if (path.data == NULL) {
        ngx_str_set(&path, "/");

    } else {
        path.len = base.data + base.len - path.data;
    }

    cookie.len = ngx_http_hris_cookie.len + 32 + path.len
                 + sizeof("=; Path=; Max-Age=900; HttpOnly; SameSite=Lax; "
                          "Secure") - 1;
    cookie.data = ngx_pnalloc(r->pool, cookie.len);
    if (cookie.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(cookie.data, "%V=%*s; Path=%V; Max-Age=%d; HttpOnly; "
                    "SameSite=Lax", &ngx_http_hris_cookie, (size_t) 32,
                    noncehex, &path, NGX_HTTP_HRIS_STATE_TTL);

    if (ngx_strncasecmp(base.data, (u_char *) "https://", 8) == 0) {
        p = ngx_sprintf(p, "; Secure");
    }

    cookie.len = p - cookie.data;

    return ngx_http_hris_redirect(r, NGX_HTTP_MOVED_TEMPORARILY, &url,
                                  &cookie);
}


static ngx_int_t
ngx_http_hris_connect_callback(ngx_http_request_t *r)
{
    u_char                        hex[65];
    json_t                       *state;
    ngx_int_t                     rc;
    ngx_str_t                     in, nonce, code, error, secret, url, body;
    ngx_str_t                     name, value, base;
    ngx_http_hris_call_t         *call;
    ngx_http_hris_loc_conf_t     *hlcf;
    ngx_http_hris_main_conf_t    *hmcf;
    ngx_http_hris_connect_ctx_t  *ctx;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);
    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hris_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_hris_connect_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_hris_arg(r, "state", &in) != NGX_OK) {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "the provider sent the browser back without \"state\"");
    }

    rc = ngx_http_hris_link_open(r, &ngx_http_hris_state_binding, &in,
                                 &ctx->link, &state);
    if (ctx->link.json == NULL) {
        return rc;
    }

    /* the browser that was sent to the provider is the one coming back */
    if (ngx_http_parse_multi_header_lines(&r->headers_in.cookies,
                                          &ngx_http_hris_cookie, &nonce)
        == NGX_DECLINED)
    {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "the connect cookie is missing: open the connect link "
                   "again in this browser");
    }

    ngx_http_hris_sha256_hex(&nonce, hex);

    if (json_string_length(json_object_get(state, "n")) != 64
        || CRYPTO_memcmp(json_string_value(json_object_get(state, "n")), hex,
                         64) != 0)
    {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "this state belongs to another browser: open the connect "
                   "link again in this one");
    }

    if (ngx_http_hris_arg(r, "error", &error) == NGX_OK && error.len) {
        return ngx_http_hris_connect_back(r, &ctx->link, 0,
                                          (char *) error.data);
    }

    if (ngx_http_hris_arg(r, "code", &code) != NGX_OK || code.len == 0) {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "the provider sent the browser back without \"code\"");
    }

    if (ngx_http_hris_connect_base(r, hmcf, &base) != NGX_OK) {
        return r->header_sent ? NGX_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->redirect_uri.len = base.len + sizeof("callback") - 1;
    ctx->redirect_uri.data = ngx_pnalloc(r->pool, ctx->redirect_uri.len);
    if (ctx->redirect_uri.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_memcpy(ngx_cpymem(ctx->redirect_uri.data, base.data, base.len),
               "callback", sizeof("callback") - 1);

    /* the token URL: the link's, the app's, or the table's for the link */
    if (ngx_http_hris_connect_token_url(r, &ctx->link, &url) != NGX_OK
        || ngx_http_hris_app_secret(r, ctx->link.app, &secret) != NGX_OK)
    {
        return r->header_sent ? NGX_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.len = 0;
    body.data = NULL;

    ngx_str_set(&value, "authorization_code");

    if (ngx_http_hris_query_add(r->pool, &body, "grant_type", &value)
        != NGX_OK
        || ngx_http_hris_query_add(r->pool, &body, "code", &code) != NGX_OK
        || ngx_http_hris_query_add(r->pool, &body, "redirect_uri",
                                   &ctx->redirect_uri) != NGX_OK
        || ngx_http_hris_query_add(r->pool, &body, "client_id",
                                   &ctx->link.app->client_id) != NGX_OK
        || ngx_http_hris_query_add(r->pool, &body, "client_secret", &secret)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* query_add starts with "?": a form body does not */
    body.data++;
    body.len--;

    call = ngx_http_hris_call_create(r, &hlcf->upstream);
    if (call == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&call->method, "POST");
    call->url = url;
    call->body = body;
    call->retry = 0;            /* a code is good for one exchange only */
    call->handler = ngx_http_hris_connect_exchanged;
    call->data = ctx;

    ngx_str_set(&name, "Content-Type");
    ngx_str_set(&value, "application/x-www-form-urlencoded");

    if (ngx_http_hris_call_header(call, &name, &value) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&name, "Accept");
    ngx_str_set(&value, "application/json");

    if (ngx_http_hris_call_header(call, &name, &value) != NGX_OK
        || ngx_http_hris_call_start(call) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_hris_connect_exchanged(ngx_http_hris_call_t *call)
{
    json_t                       *tokens, *err;
    ngx_int_t                     rc;
    ngx_http_request_t           *r = call->request;
    ngx_http_hris_connect_ctx_t  *ctx = call->data;

    tokens = NULL;

    if (call->result == NGX_HTTP_HRIS_CALL_OK) {
        tokens = json_loadb((char *) call->resp, call->resp_len, 0, NULL);
    }

    if (tokens && ngx_http_hris_json_cleanup(r->pool, tokens) != NGX_OK) {
        json_decref(tokens);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (call->result != NGX_HTTP_HRIS_CALL_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "hris: connect \"%V\": the token endpoint could not be "
                      "reached", &ctx->link.id);
        rc = ngx_http_hris_connect_back(r, &ctx->link, 0,
                                        "temporarily_unavailable");

    } else if (call->status != 200
               || !json_is_string(json_object_get(tokens, "access_token")))
    {
        /* RFC 6749 5.2: {"error": "invalid_grant", ...} */
        err = json_object_get(tokens, "error");

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "hris: connect \"%V\": the code exchange failed "
                      "(upstream %ui)", &ctx->link.id, call->status);

        rc = ngx_http_hris_connect_back(r, &ctx->link, 0,
                                        json_is_string(err)
                                        ? json_string_value(err)
                                        : "server_error");

    } else {
        rc = ngx_http_hris_connect_tokens(r, &ctx->link, tokens);
    }

    ngx_http_finalize_request(r, rc);
}


/* The tokens become the account's credentials; the account is stored. */

static ngx_int_t
ngx_http_hris_connect_tokens(ngx_http_request_t *r,
    ngx_http_hris_link_t *link, json_t *tokens)
{
    u_char     buf[NGX_TIME_T_LEN + 1];
    json_t    *account, *creds, *v, *exp;
    time_t     expires;

    exp = json_object_get(tokens, "expires_in");
    expires = ngx_time() + (json_is_integer(exp) && json_integer_value(exp) > 0
                            ? (time_t) json_integer_value(exp) : 3600);
    *ngx_sprintf(buf, "%T", expires) = '\0';

    creds = json_pack("{s:s%, s:s%, s:O, s:s}",
                      "client_id", link->app->client_id.data,
                      link->app->client_id.len,
                      "client_secret", link->app->client_secret.data,
                      link->app->client_secret.len,
                      "access_token", json_object_get(tokens, "access_token"),
                      "expires_at", (char *) buf);
    if (creds == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    v = json_object_get(tokens, "refresh_token");

    if (json_is_string(v) && json_object_set(creds, "refresh_token", v)) {
        json_decref(creds);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    account = json_pack("{s:o}", "credentials", creds);
    if (account == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* where refreshes go: the link's or the app's endpoints */
    if (link->app->base_url.len && json_object_get(link->json, "b") == NULL) {
        json_object_set_new(account, "base_url",
                            json_stringn((char *) link->app->base_url.data,
                                         link->app->base_url.len));
    }

    if (link->app->token_url.len && json_object_get(link->json, "u") == NULL) {
        json_object_set_new(account, "token_url",
                            json_stringn((char *) link->app->token_url.data,
                                         link->app->token_url.len));
    }

    return ngx_http_hris_connect_store(r, link, account);
}


/*
 * The account the link describes, with the credentials (and context)
 * given: checked, stored for the link's tenant, and the browser sent back.
 */

static ngx_int_t
ngx_http_hris_connect_store(ngx_http_request_t *r, ngx_http_hris_link_t *link,
    json_t *account)
{
    json_t                     *v;
    ngx_int_t                   rc;
    ngx_str_t                   err;
    ngx_http_hris_account_t     acc;
    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    if (ngx_http_hris_json_cleanup(r->pool, account) != NGX_OK) {
        json_decref(account);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    v = json_object_get(link->json, "c");
    if (json_object_get(account, "context") == NULL) {
        json_object_set_new(account, "context",
                            v ? json_deep_copy(v) : json_object());
    }

    if (json_object_set_new(account, "id",
                            json_stringn((char *) link->id.data,
                                         link->id.len))
        || json_object_set(account, "provider",
                           json_object_get(link->json, "p"))
        || ((v = json_object_get(link->json, "b"))
            && json_object_set(account, "base_url", v))
        || ((v = json_object_get(link->json, "u"))
            && json_object_set(account, "token_url", v)))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_hris_store_check(r, hmcf, &link->tenant, account, &acc,
                                   &err);

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "hris: connect \"%V\": the account was refused: %V",
                      &link->id, &err);
        return ngx_http_hris_connect_back(r, link, 0, "invalid_account");
    }

    if (rc == NGX_OK) {
        rc = ngx_http_hris_store_change(r, hmcf, &link->tenant, &link->id,
                                        account, NGX_HTTP_HRIS_STORE_UPSERT);
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_hris_connect_back(r, link, 0, "account_taken");
    }

    if (rc != NGX_OK) {
        return ngx_http_hris_connect_back(r, link, 0, "server_error");
    }

    return ngx_http_hris_connect_back(r, link,
                                      r->method == NGX_HTTP_POST
                                      ? NGX_HTTP_SEE_OTHER
                                      : NGX_HTTP_MOVED_TEMPORARILY, NULL);
}


/* Back to the SaaS app: status=connected, or status=error&error=<code>. */

static ngx_int_t
ngx_http_hris_connect_back(ngx_http_request_t *r, ngx_http_hris_link_t *link,
    ngx_uint_t status, const char *error)
{
    size_t     i, n;
    ngx_str_t  url, value, code;

    url = link->redirect;

    if (ngx_http_hris_query_add(r->pool, &url, "integrated_account_id",
                                &link->id) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (error == NULL) {
        ngx_str_set(&value, "connected");
        if (ngx_http_hris_query_add(r->pool, &url, "status", &value)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else {
        /* an error code as RFC 6749 spells them, nothing else passes */
        n = ngx_min(ngx_strlen(error), 64);

        for (i = 0; i < n; i++) {
            if (!(error[i] == '_' || (error[i] >= 'a' && error[i] <= 'z'))) {
                break;
            }
        }

        code.data = (u_char *) (i == n && n ? error : "server_error");
        code.len = (i == n && n) ? n : sizeof("server_error") - 1;

        ngx_str_set(&value, "error");

        if (ngx_http_hris_query_add(r->pool, &url, "status", &value) != NGX_OK
            || ngx_http_hris_query_add(r->pool, &url, "error", &code)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_hris_redirect(r, status ? status
                                            : NGX_HTTP_MOVED_TEMPORARILY,
                                  &url, NULL);
}


/* The HTML form of an API-key provider: credentials and missing context. */

static ngx_int_t
ngx_http_hris_connect_form(ngx_http_request_t *r, ngx_http_hris_link_t *link)
{
    size_t                        len;
    u_char                       *p;
    json_t                       *ctx;
    ngx_buf_t                    *b;
    ngx_str_t                    *cred;
    ngx_uint_t                    i;
    ngx_chain_t                   out;
    ngx_table_elt_t              *h;
    ngx_http_hris_context_key_t  *ck;

    static const char  head[] =
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        "<title>Connect your account</title></head><body>\n"
        "<h1>Connect your %V account</h1>\n"
        "<form method=\"post\">\n";
    static const char  field[] =
        "<p><label>%V <input name=\"%V\" type=\"%s\" required "
        "autocomplete=\"off\"></label></p>\n";
    static const char  tail[] =
        "<p><button type=\"submit\">Connect</button></p>\n"
        "</form></body></html>\n";

    ctx = json_object_get(link->json, "c");
    cred = link->table->connect_form.elts;
    ck = link->table->context.elts;

    /* names come from the mapping table: letters, digits and "_" */
    len = sizeof(head) + link->table->name.len + sizeof(tail);

    for (i = 0; i < link->table->connect_form.nelts; i++) {
        len += sizeof(field) + 2 * cred[i].len + 8;
    }

    for (i = 0; i < link->table->context.nelts; i++) {
        len += sizeof(field) + 2 * ck[i].name.len + 8;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(b->last, head, &link->table->name);

    for (i = 0; i < link->table->context.nelts; i++) {
        if (json_object_get(ctx, (char *) ck[i].name.data) == NULL) {
            p = ngx_sprintf(p, field, &ck[i].name, &ck[i].name, "text");
        }
    }

    for (i = 0; i < link->table->connect_form.nelts; i++) {
        p = ngx_sprintf(p, field, &cred[i], &cred[i], "password");
    }

    b->last = ngx_cpymem(p, tail, sizeof(tail) - 1);
    b->last_buf = (r == r->main);
    b->last_in_chain = 1;

    /* the link is a capability: no referrer, no framing, no caching */
    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    h->hash = 1;
    ngx_str_set(&h->key, "Content-Security-Policy");
    ngx_str_set(&h->value, "default-src 'none'; form-action 'self'; "
                "frame-ancestors 'none'");

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    h->hash = 1;
    ngx_str_set(&h->key, "Referrer-Policy");
    ngx_str_set(&h->value, "no-referrer");

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "text/html; charset=utf-8");
    r->headers_out.content_type_len = sizeof("text/html") - 1;

    if (ngx_http_send_header(r) == NGX_ERROR || r->header_only) {
        return NGX_OK;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static void
ngx_http_hris_connect_posted(ngx_http_request_t *r)
{
    json_t                       *account, *creds, *context;
    ngx_int_t                     rc;
    ngx_str_t                     body, value, *cred;
    ngx_uint_t                    i;
    ngx_http_hris_link_t         *link;
    ngx_http_hris_connect_ctx_t  *ctx;
    ngx_http_hris_context_key_t  *ck;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hris_module);
    link = &ctx->link;

    rc = ngx_http_hris_request_body(r, &body);
    if (rc != NGX_OK || r->header_sent) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    context = json_deep_copy(json_object_get(link->json, "c"));
    if (context == NULL) {
        context = json_object();
    }

    creds = json_object();
    account = json_pack("{s:o, s:o}", "context", context, "credentials",
                        creds);
    if (account == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cred = link->table->connect_form.elts;
    ck = link->table->context.elts;

    for (i = 0; i < link->table->connect_form.nelts
                    + link->table->context.nelts; i++)
    {
        if (i >= link->table->connect_form.nelts
            && json_object_get(context, (char *)
                   ck[i - link->table->connect_form.nelts].name.data))
        {
            continue;
        }

        rc = ngx_http_hris_form_value(r->pool, &body,
                 i < link->table->connect_form.nelts
                 ? &cred[i] : &ck[i - link->table->connect_form.nelts].name,
                 &value);

        if (rc != NGX_OK || value.len == 0) {
            json_decref(account);
            rc = ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                     "the form needs \"%V\"",
                     i < link->table->connect_form.nelts
                     ? &cred[i]
                     : &ck[i - link->table->connect_form.nelts].name);
            ngx_http_finalize_request(r, rc);
            return;
        }

        json_object_set_new(i < link->table->connect_form.nelts
                            ? creds : context,
                            (char *) (i < link->table->connect_form.nelts
                                      ? cred[i].data
                                      : ck[i - link->table->connect_form.nelts]
                                        .name.data),
                            json_stringn((char *) value.data, value.len));
    }

    /* a value the provider's table refuses: the user can correct it */
    rc = ngx_http_hris_connect_store(r, link, account);

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_hris_redirect(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *location, ngx_str_t *cookie)
{
    ngx_int_t         rc;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Location");
    h->value = *location;
    r->headers_out.location = h;

    if (cookie) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Set-Cookie");
        h->value = *cookie;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Referrer-Policy");
    ngx_str_set(&h->value, "no-referrer");

    r->headers_out.status = status;
    r->headers_out.content_length_n = 0;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_send_special(r, NGX_HTTP_LAST);
}


/* url + ("?" or "&") + name=escaped value, in a new string */

static ngx_int_t
ngx_http_hris_query_add(ngx_pool_t *pool, ngx_str_t *url, const char *name,
    ngx_str_t *value)
{
    u_char     *p;
    size_t      len;
    ngx_str_t   esc;

    if (ngx_http_hris_escape(pool, value, &esc) != NGX_OK) {
        return NGX_ERROR;
    }

    len = url->len + 2 + ngx_strlen(name) + esc.len;

    p = ngx_pnalloc(pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    url->len = ngx_sprintf(p, "%V%c%s=%V%Z", url,
                           (url->len && ngx_strlchr(url->data,
                                                    url->data + url->len,
                                                    '?'))
                           ? '&' : '?',
                           name, &esc) - p - 1;
    url->data = p;

    return NGX_OK;
}


/* One field of an application/x-www-form-urlencoded body, decoded. */

static ngx_int_t
ngx_http_hris_form_value(ngx_pool_t *pool, ngx_str_t *body, ngx_str_t *name,
    ngx_str_t *value)
{
    u_char  *p, *last, *end, *dst, *src;
    size_t   i;

    p = body->data;
    last = body->data + body->len;

    while (p < last) {
        end = ngx_strlchr(p, last, '&');
        if (end == NULL) {
            end = last;
        }

        if ((size_t) (end - p) > name->len && p[name->len] == '='
            && ngx_strncmp(p, name->data, name->len) == 0)
        {
            p += name->len + 1;

            dst = ngx_pnalloc(pool, end - p + 1);
            if (dst == NULL) {
                return NGX_ERROR;
            }

            for (i = 0; i < (size_t) (end - p); i++) {
                dst[i] = (p[i] == '+') ? ' ' : p[i];
            }

            value->data = dst;
            src = dst;
            ngx_unescape_uri(&dst, &src, end - p, 0);
            value->len = dst - value->data;

            return NGX_OK;
        }

        p = end + 1;
    }

    return NGX_DECLINED;
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


/*
 * Where the code is exchanged: the link's token_url, the app's, or the
 * table's rendered for the link's context and base URL (which is the
 * link's, the app's or the table's), as an account's would be.
 */

static ngx_int_t
ngx_http_hris_connect_token_url(ngx_http_request_t *r,
    ngx_http_hris_link_t *link, ngx_str_t *url)
{
    json_t                    *v;
    const char                *key;
    ngx_array_t                context;
    ngx_keyval_t              *kv;
    ngx_http_hris_tpl_vars_t   vars;

    v = json_object_get(link->json, "u");

    if (v) {
        url->data = (u_char *) json_string_value(v);
        url->len = json_string_length(v);
        return NGX_OK;
    }

    if (link->app->token_url.len) {
        *url = link->app->token_url;
        return NGX_OK;
    }

    if (link->table->token_url == NULL
        || ngx_array_init(&context, r->pool, 4, sizeof(ngx_keyval_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    json_object_foreach(json_object_get(link->json, "c"), key, v) {
        kv = ngx_array_push(&context);
        if (kv == NULL) {
            return NGX_ERROR;
        }
        kv->key.data = (u_char *) key;
        kv->key.len = ngx_strlen(key);
        kv->value.data = (u_char *) json_string_value(v);
        kv->value.len = json_string_length(v);
    }

    ngx_memzero(&vars, sizeof(ngx_http_hris_tpl_vars_t));
    vars.context = &context;

    v = json_object_get(link->json, "b");

    if (v) {
        vars.base_url.data = (u_char *) json_string_value(v);
        vars.base_url.len = json_string_length(v);

    } else if (link->app->base_url.len) {
        vars.base_url = link->app->base_url;

    } else if (ngx_http_hris_tpl_render(r->pool, link->table->base_url, &vars,
                                        1, &vars.base_url)
               != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_hris_tpl_render(r->pool, link->table->token_url, &vars, 1,
                                    url);
}


static ngx_int_t
ngx_http_hris_app_secret(ngx_http_request_t *r, ngx_http_hris_oauth_app_t *app,
    ngx_str_t *secret)
{
    return ngx_http_hris_secret_value(r, &app->client_secret, secret);
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


static void
ngx_http_hris_sha256_hex(ngx_str_t *in, u_char *hex)
{
    u_char        md[32];
    unsigned int  len;

    len = sizeof(md);
    EVP_Digest(in->data, in->len, md, &len, EVP_sha256(), NULL);
    ngx_hex_dump(hex, md, sizeof(md));
    hex[64] = '\0';
}

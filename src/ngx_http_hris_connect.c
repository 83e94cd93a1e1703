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
 *     credentials; or POST {connect}/{link} with the form, whose
 *     credentials are checked with the provider first
 *     (ngx_http_hris_connect_form.c). Either way the account is stored
 *     (ngx_http_hris_store.c) and the browser goes back to redirect_uri
 *     with integrated_account_id and status=connected (or status=error and
 *     error=<code>). A link that cannot be used gets a short page
 *     (ngx_http_hris_connect_page.c), or JSON when JSON is asked for.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ngx_http_hris_connect.h"
#include "ngx_http_hris_fleet_links.h"
#include "ngx_http_hris_state_if.h"


#define NGX_HTTP_HRIS_STATE_TTL       900      /* from link to callback */
#define NGX_HTTP_HRIS_GONE            410


ngx_str_t  ngx_http_hris_link_binding = ngx_string("hris-connect-link");
static ngx_str_t  ngx_http_hris_state_binding =
    ngx_string("hris-connect-state");
static ngx_str_t  ngx_http_hris_cookie = ngx_string("hris_connect");


static ngx_int_t ngx_http_hris_link_open(ngx_http_request_t *r,
    ngx_str_t *binding, ngx_str_t *in, ngx_http_hris_link_t *link,
    json_t **sealed);
static ngx_int_t ngx_http_hris_connect_authorize(ngx_http_request_t *r,
    ngx_http_hris_link_t *link);
static ngx_int_t ngx_http_hris_connect_callback(ngx_http_request_t *r);
static void ngx_http_hris_connect_exchanged(ngx_http_hris_call_t *call);
static ngx_int_t ngx_http_hris_connect_tokens(ngx_http_request_t *r,
    ngx_http_hris_link_t *link, json_t *tokens);
static ngx_int_t ngx_http_hris_connect_back(ngx_http_request_t *r,
    ngx_http_hris_link_t *link, ngx_uint_t status, const char *error);
static ngx_int_t ngx_http_hris_redirect(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *location, ngx_str_t *cookie);
static ngx_int_t ngx_http_hris_connect_token_url(ngx_http_request_t *r,
    ngx_http_hris_link_t *link, ngx_str_t *url);
static ngx_int_t ngx_http_hris_app_secret(ngx_http_request_t *r,
    ngx_http_hris_oauth_app_t *app, ngx_str_t *secret);
static void ngx_http_hris_sha256_hex(ngx_str_t *in, u_char *hex);
static ngx_int_t ngx_http_hris_link_hash(json_t *link, u_char *hash);
static ngx_int_t ngx_http_hris_link_gone(ngx_http_request_t *r,
    ngx_http_hris_link_t *link);
static void ngx_http_hris_connect_claimed(ngx_http_request_t *r, void *data,
    ngx_int_t rc);
static ngx_int_t ngx_http_hris_connect_commit(ngx_http_request_t *r,
    ngx_http_hris_link_t *link, json_t *account, ngx_int_t rc);
static void ngx_http_hris_connect_counted(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_hris_connect_keep(ngx_http_request_t *r,
    ngx_http_hris_link_t *link, json_t *account, ngx_uint_t existed);
static ngx_int_t ngx_http_hris_connect_unstored(ngx_http_request_t *r,
    ngx_http_hris_link_t *link);


/* a completion waiting for the fleet's claim of its link */
typedef struct {
    ngx_http_hris_link_t         link;
    json_t                      *account;
} ngx_http_hris_connect_saving_t;


/* a completion waiting for the fleet's count of its tenant's accounts */
typedef struct {
    ngx_http_hris_link_t        *link;
    json_t                      *account;
    ngx_uint_t                   existed;
} ngx_http_hris_connect_counting_t;


ngx_int_t
ngx_http_hris_connect_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_str_t                   rest;
    ngx_http_hris_link_t        link;
    ngx_http_hris_main_conf_t   *hmcf;
    ngx_http_hris_connect_ctx_t  *ctx;

    /* links and states are sealed: with hris_redis, by the fleet's key */
    rc = ngx_http_hris_cursor_key_wait(r, ngx_http_hris_connect_handler);
    if (rc != NGX_OK || r->header_sent) {
        return rc;
    }

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

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    /*
     * with hris_redis: used through another gateway? Asked once, when the
     * link is opened (a form's post is answered by the fleet's claim, and
     * its body must be read before the request waits for anything)
     */
    if (r->method == NGX_HTTP_GET
        && !ngx_http_hris_link_used(hmcf, link.hash))
    {
        rc = ngx_http_hris_state_link_check(r, link.hash, link.expires,
                                            ngx_http_hris_connect_handler);
        if (rc != NGX_OK) {
            return (rc == NGX_DONE) ? NGX_DONE
                                    : NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* opened as often as needed, until it connects its account */
    if (ngx_http_hris_link_used(hmcf, link.hash)) {
        return ngx_http_hris_link_gone(r, &link);
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
        return ngx_http_hris_connect_refuse(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "This link does not work",
                   "this %s is not valid (altered, cut short, or signed "
                   "with another key): ask for a new link", what);
    }

    if (ngx_http_hris_json_cleanup(r->pool, js) != NGX_OK) {
        json_decref(js);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (json_integer_value(json_object_get(js, "e")) < ngx_time()) {
        return ngx_http_hris_connect_refuse(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "This link has expired",
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

    link->expires = (time_t) json_integer_value(json_object_get(l, "e"));

    if (ngx_http_hris_link_hash(l, link->hash) != NGX_OK) {
        link->json = NULL;
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    link->table = provider.data ? ngx_http_hris_table_find(hmcf, &provider)
                                : NULL;
    link->app = ngx_http_hris_oauth_app_find(hmcf, &link->tenant, &provider);

    if (link->table == NULL || link->id.len == 0 || link->redirect.len == 0
        || (link->method.len == 6 && link->app == NULL))
    {
        link->json = NULL;
        return ngx_http_hris_connect_refuse(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "This link no longer works",
                   "this %s no longer matches the gateway's configuration "
                   "(provider or OAuth app removed): ask for a new link",
                   what);
    }

    ngx_http_hris_observe_provider(r, link->table, &link->id);

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
        if (ngx_http_hris_link_context(r, link, &context) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
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
    ngx_array_t                   context;
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
        return ngx_http_hris_connect_refuse(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "Connecting did not work",
                   "the provider sent the browser back without \"state\": "
                   "open the connect link again");
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
        return ngx_http_hris_connect_refuse(r, NGX_HTTP_BAD_REQUEST,
                   &ctx->link, "Open the link again in this browser",
                   "the connect cookie is missing: open the connect link "
                   "again in this browser");
    }

    ngx_http_hris_sha256_hex(&nonce, hex);

    if (json_string_length(json_object_get(state, "n")) != 64
        || CRYPTO_memcmp(json_string_value(json_object_get(state, "n")), hex,
                         64) != 0)
    {
        return ngx_http_hris_connect_refuse(r, NGX_HTTP_BAD_REQUEST,
                   &ctx->link, "Open the link again in this browser",
                   "this state belongs to another browser: open the connect "
                   "link again in this one");
    }

    /* with hris_redis: completed through another gateway? (asked once) */
    if (!ngx_http_hris_link_used(hmcf, ctx->link.hash)) {
        rc = ngx_http_hris_state_link_check(r, ctx->link.hash,
                                            ctx->link.expires,
                                            ngx_http_hris_connect_handler);
        if (rc != NGX_OK) {
            return (rc == NGX_DONE) ? NGX_DONE
                                    : NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* another visit completed the link meanwhile: no code is exchanged */
    if (ngx_http_hris_link_used(hmcf, ctx->link.hash)) {
        return ngx_http_hris_link_gone(r, &ctx->link);
    }

    if (ngx_http_hris_arg(r, "error", &error) == NGX_OK && error.len) {
        return ngx_http_hris_connect_back(r, &ctx->link, 0,
                                          (char *) error.data);
    }

    if (ngx_http_hris_arg(r, "code", &code) != NGX_OK || code.len == 0) {
        return ngx_http_hris_connect_refuse(r, NGX_HTTP_BAD_REQUEST,
                   &ctx->link, "Connecting did not work",
                   "the provider sent the browser back without \"code\": "
                   "open the connect link again");
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
        || ngx_http_hris_link_context(r, &ctx->link, &context) != NGX_OK
        || ngx_http_hris_app_secret(r, ctx->link.app, &secret) != NGX_OK)
    {
        return r->header_sent ? NGX_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* allowed when the link was made; the configuration may have changed */
    if (ngx_http_hris_url_allowed(r->pool, hmcf, ctx->link.table, &context,
                                  &url)
        != NGX_OK)
    {
        return ngx_http_hris_connect_refuse(r, NGX_HTTP_BAD_REQUEST,
                   &ctx->link, "This link no longer works",
                   "this connect link's token URL is not one the gateway "
                   "allows for tenants any more (hris_allowed_urls): ask for "
                   "a new link");
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
    call->idempotent = 0;
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

ngx_int_t
ngx_http_hris_connect_store(ngx_http_request_t *r, ngx_http_hris_link_t *link,
    json_t *account)
{
    ngx_int_t                rc;
    ngx_str_t                err;
    ngx_http_hris_account_t  acc;

    rc = ngx_http_hris_connect_check(r, link, account, &acc, &err);

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "hris: connect \"%V\": the account was refused: %V",
                      &link->id, &err);
        return ngx_http_hris_connect_back(r, link, 0, "invalid_account");
    }

    if (rc != NGX_OK) {
        return ngx_http_hris_connect_back(r, link, 0, "server_error");
    }

    return ngx_http_hris_connect_save(r, link, account);
}


/*
 * The account the link describes completed with what was given, checked
 * as the administration API checks one (the table's patterns, the tenant
 * URL rules) and compiled into *acc, not stored. NGX_DECLINED: refused,
 * *err says why. The JSON is the request's from here.
 */

ngx_int_t
ngx_http_hris_connect_check(ngx_http_request_t *r, ngx_http_hris_link_t *link,
    json_t *account, ngx_http_hris_account_t *acc, ngx_str_t *err)
{
    json_t                     *v;
    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    if (ngx_http_hris_json_cleanup(r->pool, account) != NGX_OK) {
        json_decref(account);
        return NGX_ERROR;
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
        return NGX_ERROR;
    }

    return ngx_http_hris_store_check(r, hmcf, &link->tenant, account, acc,
                                     err);
}


/* A checked account stored, once per link, and the browser sent back. */

ngx_int_t
ngx_http_hris_connect_save(ngx_http_request_t *r, ngx_http_hris_link_t *link,
    json_t *account)
{
    ngx_int_t                        rc;
    ngx_http_hris_main_conf_t       *hmcf;
    ngx_http_hris_connect_saving_t  *sv;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    /*
     * The link is used from here: claimed for every worker (and with
     * hris_redis, for every gateway first) before the account is stored,
     * so that of two completions at once one wins; given back when the
     * account could not be stored.
     */
    sv = ngx_palloc(r->pool, sizeof(ngx_http_hris_connect_saving_t));
    if (sv == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sv->link = *link;
    sv->account = account;

    rc = ngx_http_hris_state_link_claim(r, link->hash, link->expires,
                                        ngx_http_hris_connect_claimed, sv);

    if (rc == NGX_DONE) {
        return NGX_DONE;
    }

    if (hmcf->redis) {
        return ngx_http_hris_connect_unstored(r, link);
    }

    return ngx_http_hris_connect_commit(r, link, account, rc);
}


/* The fleet's answer (ngx_http_hris_fleet_links.c): then as one gateway. */

static void
ngx_http_hris_connect_claimed(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_hris_connect_saving_t  *sv = data;

    ngx_int_t                   local;
    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    if (rc == NGX_ABORT) {
        ngx_http_finalize_request(r,
                                  ngx_http_hris_connect_unstored(r, &sv->link));
        return;
    }

    /* this gateway remembers it too: its pages say "used" without asking */
    local = ngx_http_hris_link_claim(hmcf, sv->link.hash, sv->link.expires);

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r, ngx_http_hris_link_gone(r, &sv->link));
        return;
    }

    /* the fleet's claim holds even when the zone could not note it */
    if (local == NGX_BUSY || local == NGX_ERROR) {
        local = NGX_OK;
    }

    ngx_http_finalize_request(r, ngx_http_hris_connect_commit(r, &sv->link,
                                     sv->account, local));
}


/* rc: the zone's claim of the link. */

static ngx_int_t
ngx_http_hris_connect_commit(ngx_http_request_t *r,
    ngx_http_hris_link_t *link, json_t *account, ngx_int_t rc)
{
    char                              *dump;
    ngx_uint_t                         existed;
    ngx_http_hris_main_conf_t         *hmcf;
    ngx_http_hris_connect_counting_t  *ct;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    if (rc == NGX_DECLINED) {
        return ngx_http_hris_link_gone(r, link);
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "hris: connect \"%V\": no room in the shared memory "
                      "zone to remember the used link: raise "
                      "\"hris_zone_size\"", &link->id);
        return ngx_http_hris_connect_back(r, link, 0,
                                          "temporarily_unavailable");
    }

    /* a new account, or new credentials for one (store.c tells those) */
    existed = ngx_http_hris_account_get(r, hmcf, &link->id) != NULL;

    /*
     * the fleet's count of the tenant's accounts first (with hris_redis,
     * link is the request's copy: ngx_http_hris_connect_claimed())
     */
    if (hmcf->redis && ngx_http_hris_account_find(hmcf, &link->id) == NULL) {
        ct = ngx_palloc(r->pool, sizeof(ngx_http_hris_connect_counting_t));
        dump = json_dumps(account, JSON_COMPACT);

        if (ct == NULL || dump == NULL) {
            free(dump);
            ngx_http_hris_state_link_release(hmcf, link->hash);
            return ngx_http_hris_connect_back(r, link, 0, "server_error");
        }

        ct->link = link;
        ct->account = account;
        ct->existed = existed;

        rc = ngx_http_hris_accounts_claim(r, &link->tenant, &link->id,
                                          ngx_strlen(dump),
                                          ngx_http_hris_connect_counted, ct);
        free(dump);

        if (rc == NGX_DONE) {
            return NGX_DONE;
        }

        if (rc == NGX_ERROR) {
            ngx_http_hris_state_link_release(hmcf, link->hash);
            return ngx_http_hris_connect_back(r, link, 0, "server_error");
        }
    }

    return ngx_http_hris_connect_keep(r, link, account, existed);
}


static void
ngx_http_hris_connect_counted(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_hris_connect_counting_t  *ct = data;

    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    if (rc == NGX_HTTP_HRIS_OVER_COUNT || rc == NGX_HTTP_HRIS_OVER_BYTES) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "hris: integrated account \"%V\" of tenant \"%V\" "
                      "refused: the tenant is at its limit for the fleet, "
                      "\"%s\"", &ct->link->id, &ct->link->tenant,
                      rc == NGX_HTTP_HRIS_OVER_COUNT
                      ? "hris_tenant_accounts" : "hris_zone_size");

        /* not stored: the link may be used again */
        ngx_http_hris_state_link_release(hmcf, ct->link->hash);
        ngx_http_finalize_request(r, ngx_http_hris_connect_back(r, ct->link,
                                         0, "account_limit"));
        return;
    }

    ngx_http_finalize_request(r, ngx_http_hris_connect_keep(r, ct->link,
                                     ct->account, ct->existed));
}


/* The account stored (the link claimed, the fleet's count taken). */

static ngx_int_t
ngx_http_hris_connect_keep(ngx_http_request_t *r,
    ngx_http_hris_link_t *link, json_t *account, ngx_uint_t existed)
{
    json_t                     *v;
    ngx_int_t                   rc;
    ngx_str_t                   provider;
    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    rc = ngx_http_hris_store_change(r, hmcf, &link->tenant, &link->id,
                                    account, NGX_HTTP_HRIS_STORE_UPSERT);

    if (rc != NGX_OK) {
        /* not stored: the link may be used again (for the fleet too) */
        ngx_http_hris_state_link_release(hmcf, link->hash);

        /* and the slot the fleet's count gave goes back */
        ngx_http_hris_accounts_unclaim(hmcf, &link->id);
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_hris_connect_back(r, link, 0, "account_taken");
    }

    /* the tenant's cap on run-time accounts (the error log says which) */
    if (rc == NGX_HTTP_HRIS_OVER_COUNT || rc == NGX_HTTP_HRIS_OVER_BYTES) {
        return ngx_http_hris_connect_back(r, link, 0, "account_limit");
    }

    if (rc != NGX_OK) {
        return ngx_http_hris_connect_back(r, link, 0, "server_error");
    }

    if (!existed) {
        v = json_object_get(account, "provider");
        provider.data = (u_char *) json_string_value(v);
        provider.len = json_string_length(v);

        ngx_http_hris_account_event(hmcf, &link->tenant, &link->id,
                                    &provider, "integrated_account.created",
                                    NULL, r->connection->log);
    }

    return ngx_http_hris_connect_back(r, link,
                                      r->method == NGX_HTTP_POST
                                      ? NGX_HTTP_SEE_OTHER
                                      : NGX_HTTP_MOVED_TEMPORARILY, NULL);
}


/* The fleet's store could not say whether the link was used: 503. */

static ngx_int_t
ngx_http_hris_connect_unstored(ngx_http_request_t *r,
    ngx_http_hris_link_t *link)
{
    ngx_str_t                   retry = ngx_string("1");
    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "hris: connect \"%V\": the state store (hris_redis %V) "
                  "cannot be used now: the account was not stored",
                  &link->id, ngx_http_hris_fleet_store_name(hmcf));

    if (ngx_http_hris_header_out(r, "Retry-After", &retry) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_hris_connect_refuse(r, NGX_HTTP_SERVICE_UNAVAILABLE,
               link, "Try again in a moment",
               "the state store (hris_redis %V) cannot be used now, so the "
               "account was not saved: the link still works, try again in "
               "a moment", ngx_http_hris_fleet_store_name(hmcf));
}


/*
 * Where a form's "cancel" goes: back to the app, as a denied
 * authorization would (status=error&error=access_denied).
 */

ngx_int_t
ngx_http_hris_connect_cancel_url(ngx_http_request_t *r,
    ngx_http_hris_link_t *link, ngx_str_t *url)
{
    ngx_str_t  value;

    *url = link->redirect;

    if (ngx_http_hris_query_add(r->pool, url, "integrated_account_id",
                                &link->id) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_str_set(&value, "error");

    if (ngx_http_hris_query_add(r->pool, url, "status", &value) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_str_set(&value, "access_denied");

    return ngx_http_hris_query_add(r->pool, url, "error", &value);
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


static ngx_int_t
ngx_http_hris_redirect(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *location, ngx_str_t *cookie)
{
    ngx_int_t  rc;
    ngx_str_t  policy = ngx_string("no-referrer");

    /* links, states and codes in URLs are not for other sites to see */
    if (ngx_http_hris_header_out(r, "Location", location) != NGX_OK
        || (cookie
            && ngx_http_hris_header_out(r, "Set-Cookie", cookie) != NGX_OK)
        || ngx_http_hris_header_out(r, "Referrer-Policy", &policy) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = 0;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_send_special(r, NGX_HTTP_LAST);
}


/* url + ("?" or "&") + name=escaped value, in a new string */

ngx_int_t
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
    ngx_array_t                context;
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
        || ngx_http_hris_link_context(r, link, &context) != NGX_OK)
    {
        return NGX_ERROR;
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


/* The link's context as templates read it (values stay in the JSON). */

ngx_int_t
ngx_http_hris_link_context(ngx_http_request_t *r, ngx_http_hris_link_t *link,
    ngx_array_t *context)
{
    json_t        *v;
    const char    *key;
    ngx_keyval_t  *kv;

    if (ngx_array_init(context, r->pool, 4, sizeof(ngx_keyval_t)) != NGX_OK) {
        return NGX_ERROR;
    }

    json_object_foreach(json_object_get(link->json, "c"), key, v) {
        kv = ngx_array_push(context);
        if (kv == NULL) {
            return NGX_ERROR;
        }

        kv->key.data = (u_char *) key;
        kv->key.len = ngx_strlen(key);
        kv->value.data = (u_char *) json_string_value(v);
        kv->value.len = json_string_length(v);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_app_secret(ngx_http_request_t *r, ngx_http_hris_oauth_app_t *app,
    ngx_str_t *secret)
{
    return ngx_http_hris_secret_value(r, &app->client_secret, secret);
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


/* What names a link (or the link in a state): a digest of its JSON. */

static ngx_int_t
ngx_http_hris_link_hash(json_t *link, u_char *hash)
{
    char          *dump;
    u_char         md[32];
    unsigned int   len;

    /* sorted keys: the link's JSON and the one a state carries agree */
    dump = json_dumps(link, JSON_COMPACT | JSON_SORT_KEYS);
    if (dump == NULL) {
        return NGX_ERROR;
    }

    len = sizeof(md);
    EVP_Digest(dump, ngx_strlen(dump), md, &len, EVP_sha256(), NULL);
    free(dump);

    ngx_memcpy(hash, md, NGX_HTTP_HRIS_LINK_HASH);

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_link_gone(ngx_http_request_t *r, ngx_http_hris_link_t *link)
{
    return ngx_http_hris_connect_refuse(r, NGX_HTTP_HRIS_GONE, link,
               "This link was used already",
               "this connect link was used already: a link connects its "
               "account once; ask for a new link to connect it again");
}

/*
 * URLs a tenant may use (CONTRACT.md §3, "URLs a tenant may use"). An
 * account's base_url and token_url that come from a tenant (the
 * administration API, a connect link) must fall under what the operator
 * allowed, or the gateway would call any host for anyone holding an API
 * key (cloud metadata, loopback services):
 *
 *  - the provider's own hosts: the table's base_url and token_url
 *    rendered for the account's context, and its "allowed_urls";
 *  - a URL the operator wrote in the accounts file (an account's
 *    base_url or token_url, an oauth_apps entry's);
 *  - a prefix of "hris_allowed_urls".
 *
 * URLs are compared parsed, never as raw string prefixes: the scheme, the
 * host (case-insensitive), the port and the path up to a "/" boundary.
 * What the parser cannot read unambiguously (userinfo, backslashes,
 * percent-encoding, dot segments, control or non-ASCII bytes) is refused,
 * so that the host checked here is the host libcurl connects to.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"


#define NGX_HTTP_HRIS_URL_MAX   2048


static ngx_int_t ngx_http_hris_url_host(u_char *p, u_char *last,
    ngx_http_hris_url_t *u);
static ngx_int_t ngx_http_hris_url_path(u_char *p, u_char *last,
    ngx_uint_t prefix, ngx_http_hris_url_t *u);
static ngx_uint_t ngx_http_hris_url_under(ngx_http_hris_url_t *allowed,
    ngx_http_hris_url_t *u, ngx_uint_t host_only);
static ngx_uint_t ngx_http_hris_url_table(ngx_pool_t *pool,
    ngx_http_hris_table_t *table, ngx_array_t *context,
    ngx_http_hris_url_t *u);
static ngx_uint_t ngx_http_hris_url_rendered(ngx_pool_t *pool,
    ngx_http_hris_tpl_t *tpl, ngx_http_hris_tpl_vars_t *vars,
    ngx_uint_t prefix, ngx_http_hris_url_t *u, ngx_str_t *out);
static ngx_int_t ngx_http_hris_file_url_add(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *url);


/*
 * Parses "scheme://host[:port][/path][?query]" (prefix: no query, and a
 * missing port means any port). NGX_DECLINED when it is not such a URL.
 */

ngx_int_t
ngx_http_hris_url_parse(ngx_str_t *in, ngx_uint_t prefix,
    ngx_http_hris_url_t *u)
{
    u_char     *p, *last, *host, *end;
    ngx_int_t   port;
    ngx_uint_t  i;

    ngx_memzero(u, sizeof(ngx_http_hris_url_t));

    if (in->len == 0 || in->len > NGX_HTTP_HRIS_URL_MAX) {
        return NGX_DECLINED;
    }

    /* one byte a header, a URL parser or a resolver could read otherwise */
    for (i = 0; i < in->len; i++) {
        if (in->data[i] <= ' ' || in->data[i] >= 0x7f
            || in->data[i] == '\\' || in->data[i] == '#')
        {
            return NGX_DECLINED;
        }
    }

    p = in->data;
    last = in->data + in->len;

    if (in->len > 7 && ngx_strncasecmp(p, (u_char *) "http://", 7) == 0) {
        ngx_str_set(&u->scheme, "http");
        u->port = 80;
        p += 7;

    } else if (in->len > 8
               && ngx_strncasecmp(p, (u_char *) "https://", 8) == 0)
    {
        ngx_str_set(&u->scheme, "https");
        u->port = 443;
        p += 8;

    } else {
        return NGX_DECLINED;
    }

    /* the authority ends where the path or the query starts */
    for (end = p; end < last && *end != '/' && *end != '?'; end++) {
        if (*end == '@' || *end == '%') {
            /* userinfo hides the real host; an encoded host is a maybe */
            return NGX_DECLINED;
        }
    }

    host = p;

    if (*p == '[') {
        p = ngx_strlchr(p, end, ']');
        if (p == NULL) {
            return NGX_DECLINED;
        }
        p++;

    } else {
        p = ngx_strlchr(p, end, ':');
        if (p == NULL) {
            p = end;
        }
    }

    if (ngx_http_hris_url_host(host, p, u) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (p < end) {
        /* ":port": 1 to 65535, nothing after it */
        if (*p != ':' || end - p < 2 || end - p > 6) {
            return NGX_DECLINED;
        }

        port = ngx_atoi(p + 1, end - p - 1);
        if (port < 1 || port > 65535) {
            return NGX_DECLINED;
        }

        u->port = (in_port_t) port;

    } else if (prefix) {
        u->port = 0;            /* any port */
    }

    return ngx_http_hris_url_path(end, last, prefix, u);
}


/*
 * A host name (letters, digits, "-", "_", dots between labels) or an IPv6
 * literal; kept as written, compared case-insensitively.
 */

static ngx_int_t
ngx_http_hris_url_host(u_char *p, u_char *last, ngx_http_hris_url_t *u)
{
    u_char      c;
    size_t      len;
    ngx_uint_t  i, v6;

    len = last - p;

    if (len == 0 || len > 255) {
        return NGX_DECLINED;
    }

    v6 = (p[0] == '[');

    if (v6 && (len < 4 || last[-1] != ']')) {
        return NGX_DECLINED;
    }

    for (i = 0; i < len; i++) {
        c = ngx_tolower(p[i]);

        if (v6) {
            /* no zone id ("%25eth0"): only hex digits, ":" and "." */
            if (i == 0 || i == len - 1 || c == ':' || c == '.'
                || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))
            {
                continue;
            }

            return NGX_DECLINED;
        }

        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'
            || c == '_')
        {
            continue;
        }

        /* dots between labels only: no "", ".x", "x." or "x..y" */
        if (c == '.' && i > 0 && i < len - 1 && p[i - 1] != '.') {
            continue;
        }

        return NGX_DECLINED;
    }

    u->host.data = p;
    u->host.len = len;

    return NGX_OK;
}


/* The path, without trailing "/": no dot segments, no percent-encoding. */

static ngx_int_t
ngx_http_hris_url_path(u_char *p, u_char *last, ngx_uint_t prefix,
    ngx_http_hris_url_t *u)
{
    u_char  *q, *seg;

    q = ngx_strlchr(p, last, '?');

    if (q && prefix) {
        return NGX_DECLINED;
    }

    if (q == NULL) {
        q = last;
    }

    /* "%2e%2e" or "%2f" would be a segment only the provider's server sees */
    if (ngx_strlchr(p, q, '%')) {
        return NGX_DECLINED;
    }

    for (seg = p; seg < q; seg++) {
        if (*seg != '/') {
            continue;
        }

        /* "/." and "/.." as whole segments: libcurl squashes them */
        if ((q - seg >= 2 && seg[1] == '.'
             && (q - seg == 2 || seg[2] == '/'))
            || (q - seg >= 3 && seg[1] == '.' && seg[2] == '.'
                && (q - seg == 3 || seg[3] == '/')))
        {
            return NGX_DECLINED;
        }
    }

    while (q > p && q[-1] == '/') {
        q--;
    }

    u->path.data = p;
    u->path.len = q - p;

    return NGX_OK;
}


/*
 * Whether u is under allowed: the same scheme and host, the same port
 * (an allowed prefix without one takes any), and a path that is the
 * allowed one or below it at a "/" boundary ("/rm/api" takes
 * "/rm/api/x", not "/rm/apix").
 */

static ngx_uint_t
ngx_http_hris_url_under(ngx_http_hris_url_t *allowed, ngx_http_hris_url_t *u,
    ngx_uint_t host_only)
{
    ngx_str_t  *a, *b;

    if (!ngx_http_hris_str_eq(&allowed->scheme, &u->scheme)
        || allowed->host.len != u->host.len
        || ngx_strncasecmp(allowed->host.data, u->host.data, u->host.len) != 0
        || (allowed->port && allowed->port != u->port))
    {
        return 0;
    }

    a = &allowed->path;
    b = &u->path;

    if (host_only || a->len == 0) {
        return 1;
    }

    return b->len >= a->len && ngx_strncmp(a->data, b->data, a->len) == 0
           && (b->len == a->len || b->data[a->len] == '/');
}


/*
 * Whether a tenant may use url with this table and context. NGX_OK: yes;
 * NGX_DECLINED: no (or it is not a URL the gateway can check).
 */

ngx_int_t
ngx_http_hris_url_allowed(ngx_pool_t *pool, ngx_http_hris_main_conf_t *hmcf,
    ngx_http_hris_table_t *table, ngx_array_t *context, ngx_str_t *url)
{
    ngx_uint_t            i;
    ngx_http_hris_url_t   u, *a;

    if (ngx_http_hris_url_parse(url, 0, &u) != NGX_OK) {
        return NGX_DECLINED;
    }

    a = hmcf->allowed_urls ? hmcf->allowed_urls->elts : NULL;

    for (i = 0; a && i < hmcf->allowed_urls->nelts; i++) {
        if (ngx_http_hris_url_under(&a[i], &u, 0)) {
            return NGX_OK;
        }
    }

    a = hmcf->file_urls.elts;

    for (i = 0; i < hmcf->file_urls.nelts; i++) {
        if (ngx_http_hris_url_under(&a[i], &u, 0)) {
            return NGX_OK;
        }
    }

    return ngx_http_hris_url_table(pool, table, context, &u) ? NGX_OK
                                                             : NGX_DECLINED;
}


/*
 * Whether url falls under a prefix of hris_allowed_urls: the operator's
 * word for URLs a tenant may use beyond public hosts (a webhook's
 * receiver on loopback or a private network).
 */

ngx_uint_t
ngx_http_hris_url_listed(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *url)
{
    ngx_uint_t            i;
    ngx_http_hris_url_t   u, *a;

    if (hmcf->allowed_urls == NULL
        || ngx_http_hris_url_parse(url, 0, &u) != NGX_OK)
    {
        return 0;
    }

    a = hmcf->allowed_urls->elts;

    for (i = 0; i < hmcf->allowed_urls->nelts; i++) {
        if (ngx_http_hris_url_under(&a[i], &u, 0)) {
            return 1;
        }
    }

    return 0;
}


/*
 * The table's own hosts for this context: its base_url and token_url (the
 * latter with the table's base URL, never the account's: a tenant's URL
 * must not allow itself), and its "allowed_urls" prefixes.
 */

static ngx_uint_t
ngx_http_hris_url_table(ngx_pool_t *pool, ngx_http_hris_table_t *table,
    ngx_array_t *context, ngx_http_hris_url_t *u)
{
    ngx_uint_t                 i;
    ngx_http_hris_url_t        a;
    ngx_http_hris_tpl_t      **tpl;
    ngx_http_hris_tpl_vars_t   vars;

    ngx_memzero(&vars, sizeof(ngx_http_hris_tpl_vars_t));
    vars.context = context;

    if (ngx_http_hris_url_rendered(pool, table->base_url, &vars, 0, &a,
                                   &vars.base_url)
        && ngx_http_hris_url_under(&a, u, 1))
    {
        return 1;
    }

    if (table->token_url
        && ngx_http_hris_url_rendered(pool, table->token_url, &vars, 0, &a,
                                      NULL)
        && ngx_http_hris_url_under(&a, u, 1))
    {
        return 1;
    }

    tpl = table->allowed_urls.elts;

    for (i = 0; i < table->allowed_urls.nelts; i++) {
        if (ngx_http_hris_url_rendered(pool, tpl[i], &vars, 1, &a, NULL)
            && ngx_http_hris_url_under(&a, u, 0))
        {
            return 1;
        }
    }

    return 0;
}


static ngx_uint_t
ngx_http_hris_url_rendered(ngx_pool_t *pool, ngx_http_hris_tpl_t *tpl,
    ngx_http_hris_tpl_vars_t *vars, ngx_uint_t prefix, ngx_http_hris_url_t *u,
    ngx_str_t *out)
{
    ngx_str_t  s;

    /* context values escaped, as an account's base URL is rendered */
    if (ngx_http_hris_tpl_render(pool, tpl, vars, 1, &s) != NGX_OK
        || ngx_http_hris_url_parse(&s, prefix, u) != NGX_OK)
    {
        return 0;
    }

    if (out) {
        *out = s;
    }

    return 1;
}


/*
 * A run-time account's URLs, after it compiled: NULL when they are
 * allowed, else the name of the first that is not.
 */

const char *
ngx_http_hris_account_urls(ngx_pool_t *pool, ngx_http_hris_main_conf_t *hmcf,
    ngx_http_hris_account_t *acc)
{
    ngx_http_hris_table_t  *table;

    /* the provider's table as the operator has it, never an overridden one */
    table = ngx_http_hris_table_find(hmcf, &acc->provider);
    if (table == NULL) {
        return "base_url";
    }

    if (ngx_http_hris_url_allowed(pool, hmcf, table, &acc->context,
                                  &acc->base_url)
        != NGX_OK)
    {
        return "base_url";
    }

    if (acc->token_url.len
        && ngx_http_hris_url_allowed(pool, hmcf, table, &acc->context,
                                     &acc->token_url)
           != NGX_OK)
    {
        return "token_url";
    }

    return NULL;
}


/*
 * A connect link's base_url or token_url (JSON strings), with the link's
 * context (a JSON object of strings, or NULL).
 */

ngx_int_t
ngx_http_hris_link_url_allowed(ngx_http_request_t *r,
    ngx_http_hris_table_t *table, json_t *context, json_t *url)
{
    json_t                     *v;
    ngx_str_t                   s;
    const char                 *key;
    ngx_array_t                 ctx;
    ngx_keyval_t               *kv;
    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    if (ngx_array_init(&ctx, r->pool, 4, sizeof(ngx_keyval_t)) != NGX_OK) {
        return NGX_ERROR;
    }

    json_object_foreach(context, key, v) {
        kv = ngx_array_push(&ctx);
        if (kv == NULL) {
            return NGX_ERROR;
        }

        kv->key.data = (u_char *) key;
        kv->key.len = ngx_strlen(key);
        kv->value.data = (u_char *) json_string_value(v);
        kv->value.len = json_string_length(v);
    }

    s.data = (u_char *) json_string_value(url);
    s.len = json_string_length(url);

    return ngx_http_hris_url_allowed(r->pool, hmcf, table, &ctx, &s);
}


/* hris_allowed_urls PREFIX ...; */

char *
ngx_http_hris_allowed_urls(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_hris_main_conf_t *hmcf = conf;

    ngx_str_t            *value;
    ngx_uint_t            i;
    ngx_http_hris_url_t  *u;

    if (hmcf->allowed_urls == NULL) {
        hmcf->allowed_urls = ngx_array_create(cf->pool, 4,
                                              sizeof(ngx_http_hris_url_t));
        if (hmcf->allowed_urls == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        u = ngx_array_push(hmcf->allowed_urls);
        if (u == NULL) {
            return NGX_CONF_ERROR;
        }

        if (ngx_http_hris_url_parse(&value[i], 1, u) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: \"%V\" is not a "
                               "URL prefix: write scheme://host[:port][/path] "
                               "with http or https, a host name or an IP "
                               "address, and no user, query, fragment, "
                               "percent-encoding or dot segments",
                               &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * The URLs the operator wrote in the accounts file, which tenants may use
 * too: every account's base_url and token_url, every oauth_apps entry's.
 * One the parser cannot read simply allows nothing.
 */

ngx_int_t
ngx_http_hris_file_urls(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf)
{
    ngx_uint_t                  i;
    ngx_http_hris_account_t    *acc;
    ngx_http_hris_oauth_app_t  *app;

    if (ngx_array_init(&hmcf->file_urls, cf->pool,
                       2 * hmcf->accounts.nelts + 2 * hmcf->oauth_apps.nelts
                       + 1, sizeof(ngx_http_hris_url_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    acc = hmcf->accounts.elts;

    for (i = 0; i < hmcf->accounts.nelts; i++) {
        if (ngx_http_hris_file_url_add(cf, hmcf, &acc[i].base_url) != NGX_OK
            || ngx_http_hris_file_url_add(cf, hmcf, &acc[i].token_url)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    app = hmcf->oauth_apps.elts;

    for (i = 0; i < hmcf->oauth_apps.nelts; i++) {
        if (ngx_http_hris_file_url_add(cf, hmcf, &app[i].base_url) != NGX_OK
            || ngx_http_hris_file_url_add(cf, hmcf, &app[i].token_url)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_file_url_add(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *url)
{
    ngx_http_hris_url_t   u, *a;

    if (url->len == 0 || ngx_http_hris_url_parse(url, 0, &u) != NGX_OK) {
        return NGX_OK;
    }

    a = ngx_array_push(&hmcf->file_urls);
    if (a == NULL) {
        return NGX_ERROR;
    }

    *a = u;

    return NGX_OK;
}

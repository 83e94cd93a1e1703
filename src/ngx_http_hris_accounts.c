/*
 * The accounts file (CONTRACT.md §3): gateway API keys with their tenants,
 * and integrated accounts with their provider, context and credentials.
 * Read and checked at configuration time; looked up per request.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ngx_http_hris.h"


static ngx_int_t ngx_http_hris_api_keys_load(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf, json_t *keys);
static ngx_int_t ngx_http_hris_oauth_apps_load(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf, json_t *apps);
static ngx_int_t ngx_http_hris_account_load(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf, json_t *js, ngx_uint_t i,
    ngx_http_hris_account_t *acc);
static ngx_int_t ngx_http_hris_account_context(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf, ngx_http_hris_account_t *acc);
static ngx_int_t ngx_http_hris_account_auth(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf, ngx_http_hris_account_t *acc);
static ngx_int_t ngx_http_hris_account_limits(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf, json_t *js,
    ngx_http_hris_account_t *acc);
static ngx_int_t ngx_http_hris_kv_load(ngx_conf_t *cf, json_t *obj,
    ngx_array_t *kv);
static ngx_int_t ngx_http_hris_json_str(ngx_conf_t *cf, json_t *obj,
    const char *key, ngx_uint_t required, ngx_str_t *out);
static int ngx_http_hris_account_cmp(const void *a, const void *b);
static int ngx_http_hris_api_key_cmp(const void *a, const void *b);
static void ngx_http_hris_sha256(ngx_str_t *in, u_char *out);
static ngx_int_t ngx_http_hris_hex_decode(u_char *dst, ngx_str_t *hex);


#define ngx_http_hris_conf_error(cf, hmcf, fmt, ...)                         \
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: %V: " fmt,               \
                       &(hmcf)->accounts_file, ##__VA_ARGS__)


ngx_int_t
ngx_http_hris_accounts_load(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf)
{
    json_t                   *root, *list, *js;
    size_t                    i;
    json_error_t              jerr;
    ngx_http_hris_account_t  *acc, *accs;

    root = json_load_file((char *) hmcf->accounts_file.data, 0, &jerr);
    if (root == NULL) {
        ngx_http_hris_conf_error(cf, hmcf, "line %d, column %d: %s",
                                 jerr.line, jerr.column, jerr.text);
        return NGX_ERROR;
    }

    if (!json_is_object(root)) {
        ngx_http_hris_conf_error(cf, hmcf, "the top level must be an object "
                                 "with \"api_keys\" and \"accounts\"");
        goto failed;
    }

    if (ngx_http_hris_api_keys_load(cf, hmcf, json_object_get(root,
                                                              "api_keys"))
        != NGX_OK)
    {
        goto failed;
    }

    list = json_object_get(root, "accounts");
    if (!json_is_array(list)) {
        ngx_http_hris_conf_error(cf, hmcf, "\"accounts\" must be an array");
        goto failed;
    }

    if (ngx_array_init(&hmcf->accounts, cf->pool,
                       ngx_max(json_array_size(list), 1),
                       sizeof(ngx_http_hris_account_t))
        != NGX_OK)
    {
        goto failed;
    }

    json_array_foreach(list, i, js) {
        acc = ngx_array_push(&hmcf->accounts);
        if (acc == NULL) {
            goto failed;
        }

        if (ngx_http_hris_account_load(cf, hmcf, js, i, acc) != NGX_OK) {
            goto failed;
        }

        /* what an update through the administration API starts from */
        acc->source = js;
    }

    if (ngx_http_hris_oauth_apps_load(cf, hmcf,
                                      json_object_get(root, "oauth_apps"))
        != NGX_OK)
    {
        goto failed;
    }

    /* what the operator wrote there, tenants may use too */
    if (ngx_http_hris_file_urls(cf, hmcf) != NGX_OK) {
        goto failed;
    }

    accs = hmcf->accounts.elts;
    ngx_qsort(accs, hmcf->accounts.nelts, sizeof(ngx_http_hris_account_t),
              ngx_http_hris_account_cmp);

    for (i = 1; i < hmcf->accounts.nelts; i++) {
        if (ngx_http_hris_account_cmp(&accs[i - 1], &accs[i]) == 0) {
            ngx_http_hris_conf_error(cf, hmcf, "account id \"%V\" is used "
                                     "twice", &accs[i].id);
            goto failed;
        }
    }

    return ngx_http_hris_json_cleanup(cf->pool, root);

failed:

    json_decref(root);
    return NGX_ERROR;
}


static ngx_int_t
ngx_http_hris_api_keys_load(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf,
    json_t *keys)
{
    json_t                   *js;
    size_t                    i;
    ngx_str_t                 key, hex;
    ngx_http_hris_api_key_t  *k;

    if (!json_is_array(keys)) {
        ngx_http_hris_conf_error(cf, hmcf, "\"api_keys\" must be an array");
        return NGX_ERROR;
    }

    if (ngx_array_init(&hmcf->api_keys, cf->pool,
                       ngx_max(json_array_size(keys), 1),
                       sizeof(ngx_http_hris_api_key_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    json_array_foreach(keys, i, js) {
        k = ngx_array_push(&hmcf->api_keys);
        if (k == NULL) {
            return NGX_ERROR;
        }

        if (!json_is_object(js)
            || ngx_http_hris_json_str(cf, js, "tenant", 1, &k->tenant)
               != NGX_OK
            || ngx_http_hris_json_str(cf, js, "key", 0, &key) != NGX_OK
            || ngx_http_hris_json_str(cf, js, "key_sha256", 0, &hex)
               != NGX_OK)
        {
            ngx_http_hris_conf_error(cf, hmcf, "api_keys[%uz]: needs "
                                     "\"tenant\" and \"key\" or "
                                     "\"key_sha256\" strings", i);
            return NGX_ERROR;
        }

        if (key.len) {
            ngx_http_hris_sha256(&key, k->sha256);

        } else if (hex.len == 64
                   && ngx_http_hris_hex_decode(k->sha256, &hex) == NGX_OK)
        {
            /* stored as a hash: the file need not hold the key itself */

        } else {
            ngx_http_hris_conf_error(cf, hmcf, "api_keys[%uz]: needs \"key\", "
                                     "or \"key_sha256\" as 64 hex digits", i);
            return NGX_ERROR;
        }
    }

    ngx_qsort(hmcf->api_keys.elts, hmcf->api_keys.nelts,
              sizeof(ngx_http_hris_api_key_t), ngx_http_hris_api_key_cmp);

    /* one key for two tenants: a lookup would pick either of them */
    k = hmcf->api_keys.elts;

    for (i = 1; i < hmcf->api_keys.nelts; i++) {
        if (ngx_http_hris_api_key_cmp(&k[i - 1], &k[i]) == 0
            && (k[i - 1].tenant.len != k[i].tenant.len
                || ngx_strncmp(k[i - 1].tenant.data, k[i].tenant.data,
                               k[i].tenant.len) != 0))
        {
            ngx_http_hris_conf_error(cf, hmcf, "the same API key is given "
                                     "to tenants \"%V\" and \"%V\"",
                                     &k[i - 1].tenant, &k[i].tenant);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_account_load(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf,
    json_t *js, ngx_uint_t i, ngx_http_hris_account_t *acc)
{
    ngx_str_t  what;
    char       what_buf[128];

    ngx_memzero(acc, sizeof(ngx_http_hris_account_t));

    if (!json_is_object(js)
        || ngx_http_hris_json_str(cf, js, "id", 1, &acc->id) != NGX_OK
        || ngx_http_hris_json_str(cf, js, "tenant", 1, &acc->tenant) != NGX_OK
        || ngx_http_hris_json_str(cf, js, "provider", 1, &acc->provider)
           != NGX_OK
        || ngx_http_hris_json_str(cf, js, "base_url", 0, &acc->base_url)
           != NGX_OK
        || ngx_http_hris_json_str(cf, js, "token_url", 0, &acc->token_url)
           != NGX_OK)
    {
        ngx_http_hris_conf_error(cf, hmcf, "accounts[%ui]: needs \"id\", "
                                 "\"tenant\" and \"provider\" strings "
                                 "(\"base_url\" and \"token_url\" are "
                                 "optional strings)", i);
        return NGX_ERROR;
    }

    acc->table = ngx_http_hris_table_find(hmcf, &acc->provider);
    if (acc->table == NULL) {
        ngx_http_hris_conf_error(cf, hmcf, "account \"%V\": provider \"%V\" "
                                 "has no mapping table %V/%V.json",
                                 &acc->id, &acc->provider, &hmcf->mappings,
                                 &acc->provider);
        return NGX_ERROR;
    }

    if (json_object_get(js, "overrides")) {
        what.len = hmcf->accounts_file.len + acc->id.len
                   + sizeof(", account \"\" overrides") - 1;
        what.data = ngx_pnalloc(cf->pool, what.len + 1);
        if (what.data == NULL) {
            return NGX_ERROR;
        }
        ngx_sprintf(what.data, "%V, account \"%V\" overrides%Z",
                    &hmcf->accounts_file, &acc->id);

        acc->table = ngx_http_hris_table_variant(cf, hmcf, acc->table,
                                                 json_object_get(js,
                                                                 "overrides"),
                                                 &what);
        if (acc->table == NULL) {
            return NGX_ERROR;
        }
    }

    if (ngx_array_init(&acc->context, cf->pool, 4, sizeof(ngx_keyval_t))
        != NGX_OK
        || ngx_array_init(&acc->credentials, cf->pool, 4,
                          sizeof(ngx_keyval_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_hris_account_values(js, what_buf, sizeof(what_buf))
        != NGX_OK)
    {
        ngx_http_hris_conf_error(cf, hmcf, "account \"%V\": %s holds a "
                                 "control character (CR, LF, ...), which "
                                 "could end a header line: remove it",
                                 &acc->id, what_buf);
        return NGX_ERROR;
    }

    if (ngx_http_hris_kv_load(cf, json_object_get(js, "context"),
                              &acc->context)
        != NGX_OK
        || ngx_http_hris_kv_load(cf, json_object_get(js, "credentials"),
                                 &acc->credentials)
           != NGX_OK)
    {
        ngx_http_hris_conf_error(cf, hmcf, "account \"%V\": \"context\" and "
                                 "\"credentials\" must be objects of "
                                 "strings", &acc->id);
        return NGX_ERROR;
    }

    if (ngx_http_hris_account_context(cf, hmcf, acc) != NGX_OK
        || ngx_http_hris_account_auth(cf, hmcf, acc) != NGX_OK
        || ngx_http_hris_secrets_check(cf, hmcf, acc) != NGX_OK
        || ngx_http_hris_state_account(cf, hmcf, acc) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_hris_account_limits(cf, hmcf, js, acc);
}


/* An account given as JSON at run time (ngx_http_hris_store.c). */

ngx_int_t
ngx_http_hris_account_compile(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf,
    json_t *js, ngx_http_hris_account_t *acc)
{
    return ngx_http_hris_account_load(cf, hmcf, js, 0, acc);
}


/*
 * Context and credentials go into headers and URLs: a control character
 * in a key or a value (CR and LF would start a header of their own) is
 * refused wherever an account comes from. NGX_DECLINED names the first
 * such key in bad ("credentials.api_key"). Other types are left to the
 * compile, which says what they must be.
 */

ngx_int_t
ngx_http_hris_account_values(json_t *js, char *bad, size_t size)
{
    json_t      *v;
    ngx_uint_t   i;
    const char  *key, *ns;

    for (i = 0; i < 2; i++) {
        ns = i ? "credentials" : "context";

        json_object_foreach(json_object_get(js, ns), key, v) {
            if (ngx_http_hris_value_safe((u_char *) key, ngx_strlen(key))
                && (!json_is_string(v)
                    || ngx_http_hris_value_safe((u_char *)
                                                json_string_value(v),
                                                json_string_length(v))))
            {
                continue;
            }

            /* the key as far as it is printable */
            *ngx_snprintf((u_char *) bad, size - 1, "%s.%*s", ns,
                          ngx_http_hris_printable((u_char *) key), key) = '\0';

            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* How many bytes of s come before its first control character. */

size_t
ngx_http_hris_printable(u_char *s)
{
    u_char  *p;

    for (p = s; *p >= ' ' && *p != 0x7f; p++) { /* void */ }

    return ngx_min((size_t) (p - s), 64);
}


/*
 * "oauth_apps": the apps a tenant registered with providers, whose
 * client_id and client_secret the connect flow's authorization-code
 * grant uses; one per tenant and provider.
 */

static ngx_int_t
ngx_http_hris_oauth_apps_load(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf,
    json_t *apps)
{
    json_t                     *js, *scope;
    size_t                      i;
    ngx_http_hris_oauth_app_t  *app;

    if (ngx_array_init(&hmcf->oauth_apps, cf->pool, 2,
                       sizeof(ngx_http_hris_oauth_app_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (apps == NULL) {
        return NGX_OK;
    }

    if (!json_is_array(apps)) {
        ngx_http_hris_conf_error(cf, hmcf, "\"oauth_apps\" must be an array");
        return NGX_ERROR;
    }

    json_array_foreach(apps, i, js) {
        app = ngx_array_push(&hmcf->oauth_apps);
        if (app == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(app, sizeof(ngx_http_hris_oauth_app_t));
        scope = json_object_get(js, "scope");

        if (!json_is_object(js)
            || ngx_http_hris_json_str(cf, js, "tenant", 1, &app->tenant)
               != NGX_OK
            || ngx_http_hris_json_str(cf, js, "provider", 1, &app->provider)
               != NGX_OK
            || ngx_http_hris_json_str(cf, js, "client_id", 1,
                                      &app->client_id) != NGX_OK
            || ngx_http_hris_json_str(cf, js, "client_secret", 1,
                                      &app->client_secret) != NGX_OK
            || ngx_http_hris_json_str(cf, js, "authorize_url", 0,
                                      &app->authorize_url) != NGX_OK
            || ngx_http_hris_json_str(cf, js, "token_url", 0,
                                      &app->token_url) != NGX_OK
            || ngx_http_hris_json_str(cf, js, "base_url", 0,
                                      &app->base_url) != NGX_OK
            || ngx_http_hris_json_str(cf, js, "scope", 0, &app->scope)
               != NGX_OK)
        {
            ngx_http_hris_conf_error(cf, hmcf, "oauth_apps[%uz]: needs "
                                     "\"tenant\", \"provider\", "
                                     "\"client_id\" and \"client_secret\" "
                                     "strings (\"authorize_url\", "
                                     "\"token_url\", \"base_url\" and "
                                     "\"scope\" are optional strings)", i);
            return NGX_ERROR;
        }

        app->has_scope = json_is_string(scope);

        if (ngx_http_hris_table_find(hmcf, &app->provider) == NULL) {
            ngx_http_hris_conf_error(cf, hmcf, "oauth_apps[%uz]: provider "
                                     "\"%V\" has no mapping table", i,
                                     &app->provider);
            return NGX_ERROR;
        }

        switch (ngx_http_hris_secret_opens(cf, hmcf, &app->client_secret)) {

        case NGX_OK:
            break;

        case NGX_DECLINED:
            ngx_http_hris_conf_error(cf, hmcf, "oauth_apps[%uz]: "
                                     "client_secret is sealed but "
                                     "\"hris_secrets_key\" is not set", i);
            return NGX_ERROR;

        default:
            ngx_http_hris_conf_error(cf, hmcf, "oauth_apps[%uz]: "
                                     "client_secret does not open with the "
                                     "key in %V", i, &hmcf->secrets_key_file);
            return NGX_ERROR;
        }

        if (ngx_http_hris_oauth_app_find(hmcf, &app->tenant, &app->provider)
            != app)
        {
            ngx_http_hris_conf_error(cf, hmcf, "oauth_apps[%uz]: tenant "
                                     "\"%V\" has two apps for \"%V\"", i,
                                     &app->tenant, &app->provider);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_http_hris_oauth_app_t *
ngx_http_hris_oauth_app_find(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *tenant, ngx_str_t *provider)
{
    ngx_uint_t                  i;
    ngx_http_hris_oauth_app_t  *app;

    app = hmcf->oauth_apps.elts;

    for (i = 0; i < hmcf->oauth_apps.nelts; i++) {
        if (ngx_http_hris_str_eq(&app[i].tenant, tenant)
            && ngx_http_hris_str_eq(&app[i].provider, provider))
        {
            return &app[i];
        }
    }

    return NULL;
}


ngx_uint_t
ngx_http_hris_str_eq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len && ngx_strncmp(a->data, b->data, a->len) == 0;
}


/* The first of the table's ways to authenticate the credentials allow. */

static ngx_int_t
ngx_http_hris_account_auth(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf,
    ngx_http_hris_account_t *acc)
{
    ngx_str_t             *need;
    ngx_uint_t             i, j;
    ngx_http_hris_auth_t  *a;

    a = acc->table->auths.elts;

    for (i = 0; i < acc->table->auths.nelts; i++) {
        need = a[i].requires.elts;

        for (j = 0; j < a[i].requires.nelts; j++) {
            if (ngx_http_hris_keyval_get(&acc->credentials, &need[j])
                == NULL)
            {
                break;
            }
        }

        if (j == a[i].requires.nelts) {
            acc->auth = &a[i];
            return NGX_OK;
        }
    }

    ngx_http_hris_conf_error(cf, hmcf, "account \"%V\": its credentials "
                             "allow none of the ways %V authenticates (see "
                             "\"requires\" in its \"auth\")", &acc->id,
                             &acc->table->file);
    return NGX_ERROR;
}


/*
 * The token URL (the account's, or the table's rendered against this
 * account) and the gateway rate limit (the table's, or the account's).
 */

static ngx_int_t
ngx_http_hris_account_limits(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf,
    json_t *js, ngx_http_hris_account_t *acc)
{
    json_t                    *rl, *c, *per;
    ngx_int_t                  ms;
    ngx_str_t                  s;
    ngx_http_hris_tpl_vars_t   vars;

    if (acc->token_url.len == 0 && acc->table->token_url) {
        ngx_memzero(&vars, sizeof(ngx_http_hris_tpl_vars_t));
        vars.context = &acc->context;
        vars.base_url = acc->base_url;

        if (ngx_http_hris_tpl_render(cf->pool, acc->table->token_url, &vars,
                                     1, &acc->token_url)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    acc->rate_calls = acc->table->rate_calls;
    acc->rate_window = acc->table->rate_window;

    rl = json_object_get(js, "rate_limit");
    if (rl == NULL) {
        return NGX_OK;
    }

    /* "rate_limit": {"calls": 30, "per": "60s"}, or null: none */
    if (json_is_null(rl)) {
        acc->rate_calls = 0;
        return NGX_OK;
    }

    c = json_object_get(rl, "calls");
    per = json_object_get(rl, "per");
    ms = NGX_ERROR;

    if (json_is_string(per)) {
        s.data = (u_char *) json_string_value(per);
        s.len = json_string_length(per);
        ms = ngx_parse_time(&s, 0);
    }

    if (!json_is_integer(c) || json_integer_value(c) < 1
        || json_integer_value(c) > 10000 || ms == NGX_ERROR || ms == 0)
    {
        ngx_http_hris_conf_error(cf, hmcf, "account \"%V\": \"rate_limit\" "
                                 "must be {\"calls\": 1..10000, \"per\": "
                                 "\"60s\"} or null", &acc->id);
        return NGX_ERROR;
    }

    acc->rate_calls = (ngx_uint_t) json_integer_value(c);
    acc->rate_window = (ngx_msec_t) ms;

    return NGX_OK;
}


/*
 * Checks the context against what the table declares, then renders the
 * base URL once: per request only paths and queries are rendered.
 */

static ngx_int_t
ngx_http_hris_account_context(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf,
    ngx_http_hris_account_t *acc)
{
    ngx_str_t                    *v;
    ngx_uint_t                    i;
    ngx_http_hris_tpl_vars_t      vars;
    ngx_http_hris_context_key_t  *ck;

    ck = acc->table->context.elts;

    for (i = 0; i < acc->table->context.nelts; i++) {
        v = ngx_http_hris_keyval_get(&acc->context, &ck[i].name);

        if (v == NULL && ck[i].required) {
            ngx_http_hris_conf_error(cf, hmcf, "account \"%V\": context."
                                     "%V is required by %V", &acc->id,
                                     &ck[i].name, &acc->table->file);
            return NGX_ERROR;
        }

        if (v && ngx_regex_exec(ck[i].pattern, v, NULL, 0) < 0)
        {
            ngx_http_hris_conf_error(cf, hmcf, "account \"%V\": context.%V "
                                     "\"%V\" does not match %V", &acc->id,
                                     &ck[i].name, v, &ck[i].pattern_src);
            return NGX_ERROR;
        }
    }

    if (acc->base_url.len == 0) {
        ngx_memzero(&vars, sizeof(ngx_http_hris_tpl_vars_t));
        vars.context = &acc->context;

        if (ngx_http_hris_tpl_render(cf->pool, acc->table->base_url, &vars,
                                     1, &acc->base_url)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    while (acc->base_url.len && acc->base_url.data[acc->base_url.len - 1]
                                == '/')
    {
        acc->base_url.len--;
    }

    if (ngx_strncmp(acc->base_url.data, "http://", 7) != 0
        && ngx_strncmp(acc->base_url.data, "https://", 8) != 0)
    {
        ngx_http_hris_conf_error(cf, hmcf, "account \"%V\": base_url \"%V\" "
                                 "must start with http:// or https://",
                                 &acc->id, &acc->base_url);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_kv_load(ngx_conf_t *cf, json_t *obj, ngx_array_t *kv)
{
    char          *buf;
    json_t        *v;
    const char    *key;
    ngx_keyval_t  *e;

    if (obj == NULL) {
        return NGX_OK;
    }

    if (!json_is_object(obj)) {
        return NGX_ERROR;
    }

    json_object_foreach(obj, key, v) {
        e = ngx_array_push(kv);
        if (e == NULL) {
            return NGX_ERROR;
        }

        e->key.len = ngx_strlen(key);
        e->key.data = ngx_pstrdup(cf->pool, &(ngx_str_t) { e->key.len,
                                                          (u_char *) key });

        if (json_is_string(v)) {
            e->value.len = json_string_length(v);
            e->value.data = ngx_pnalloc(cf->pool, e->value.len + 1);
            if (e->value.data == NULL) {
                return NGX_ERROR;
            }
            ngx_memcpy(e->value.data, json_string_value(v), e->value.len);
            e->value.data[e->value.len] = '\0';

        } else if (json_is_number(v) || json_is_boolean(v)) {
            buf = json_dumps(v, JSON_ENCODE_ANY);
            if (buf == NULL) {
                return NGX_ERROR;
            }
            e->value.len = ngx_strlen(buf);
            e->value.data = ngx_pstrdup(cf->pool, &(ngx_str_t)
                                        { e->value.len, (u_char *) buf });
            free(buf);

        } else {
            return NGX_ERROR;
        }

        if (e->key.data == NULL || e->value.data == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_json_str(ngx_conf_t *cf, json_t *obj, const char *key,
    ngx_uint_t required, ngx_str_t *out)
{
    json_t  *v;

    v = json_object_get(obj, key);

    if (v == NULL || json_is_null(v)) {
        out->len = 0;
        out->data = (u_char *) "";
        return required ? NGX_ERROR : NGX_OK;
    }

    if (!json_is_string(v) || (required && json_string_length(v) == 0)) {
        return NGX_ERROR;
    }

    out->len = json_string_length(v);
    out->data = ngx_pnalloc(cf->pool, out->len + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, json_string_value(v), out->len + 1);

    return NGX_OK;
}


ngx_http_hris_account_t *
ngx_http_hris_account_find(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id)
{
    ngx_http_hris_account_t  key;

    key.id = *id;

    return bsearch(&key, hmcf->accounts.elts, hmcf->accounts.nelts,
                   sizeof(ngx_http_hris_account_t),
                   ngx_http_hris_account_cmp);
}


/*
 * Keys are compared as SHA-256 digests: what the search leaks through
 * timing is a prefix of a hash, which tells nothing about a key.
 */

ngx_http_hris_api_key_t *
ngx_http_hris_api_key_find(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *key)
{
    ngx_http_hris_api_key_t   want, *k;

    ngx_http_hris_sha256(key, want.sha256);

    k = bsearch(&want, hmcf->api_keys.elts, hmcf->api_keys.nelts,
                sizeof(ngx_http_hris_api_key_t), ngx_http_hris_api_key_cmp);

    if (k == NULL || CRYPTO_memcmp(k->sha256, want.sha256, 32) != 0) {
        return NULL;
    }

    return k;
}


/* Returns NGX_OK with the caller's tenant, or NGX_DECLINED. */

ngx_int_t
ngx_http_hris_authenticate(ngx_http_request_t *r,
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *tenant)
{
    ngx_str_t                 key;
    ngx_table_elt_t          *h;
    ngx_http_hris_api_key_t  *k;

    h = r->headers_in.authorization;

    if (h == NULL || h->value.len <= sizeof("Bearer ") - 1
        || ngx_strncasecmp(h->value.data, (u_char *) "Bearer ",
                           sizeof("Bearer ") - 1) != 0)
    {
        return NGX_DECLINED;
    }

    key.data = h->value.data + sizeof("Bearer ") - 1;
    key.len = h->value.len - (sizeof("Bearer ") - 1);

    while (key.len && key.data[0] == ' ') {
        key.data++;
        key.len--;
    }

    k = ngx_http_hris_api_key_find(hmcf, &key);
    if (k == NULL) {
        return NGX_DECLINED;
    }

    *tenant = k->tenant;

    return NGX_OK;
}


/*
 * Authenticates the caller and finds the account it names. When *account
 * stays NULL, the client's error answer was sent and its rc is returned.
 */

ngx_int_t
ngx_http_hris_account_resolve(ngx_http_request_t *r,
    ngx_http_hris_main_conf_t *hmcf, ngx_http_hris_account_t **account)
{
    ngx_str_t                 tenant, id;
    ngx_table_elt_t          *h;
    ngx_http_hris_account_t  *acc;

    *account = NULL;

    if (ngx_http_hris_authenticate(r, hmcf, &tenant) != NGX_OK) {
        /* the gateway's own key is wanted (not a provider's credentials) */
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        h->hash = 1;
        ngx_str_set(&h->key, "WWW-Authenticate");
        ngx_str_set(&h->value, "Bearer");

        return ngx_http_hris_send_error(r, NGX_HTTP_UNAUTHORIZED, NULL,
                   r->headers_in.authorization
                   ? "unknown API key: send a gateway API key from the "
                     "accounts file as \"Authorization: Bearer <key>\""
                   : "missing API key: send \"Authorization: Bearer <key>\" "
                     "with a gateway API key from the accounts file");
    }

    if (ngx_http_hris_arg(r, "integrated_account_id", &id) != NGX_OK
        || id.len == 0)
    {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "missing query parameter \"integrated_account_id\": name "
                   "the integrated account to call");
    }

    acc = ngx_http_hris_account_get(r, hmcf, &id);

    /* another tenant's account is reported exactly like a missing one */
    if (acc == NULL || !ngx_http_hris_str_eq(&acc->tenant, &tenant)) {
        return ngx_http_hris_send_error(r, NGX_HTTP_NOT_FOUND,
                   json_pack("{s:s%}", "integrated_account_id",
                             id.data, id.len),
                   "no integrated account \"%V\" for this API key", &id);
    }

    /* the operator may have stopped allowing it since it was stored */
    if (acc->refused_url) {
        return ngx_http_hris_send_error(r, NGX_HTTP_FORBIDDEN,
                   json_pack("{s:s%, s:s}", "integrated_account_id",
                             id.data, id.len, "field", acc->refused_url),
                   "integrated account \"%V\": its %s is not a URL this "
                   "gateway allows for tenants (any more): PATCH the "
                   "account with the provider's own host, or ask the "
                   "operator to add a prefix for it to \"hris_allowed_urls\"",
                   &id, acc->refused_url);
    }

    *account = acc;

    return NGX_OK;
}


static int
ngx_http_hris_account_cmp(const void *a, const void *b)
{
    const ngx_http_hris_account_t  *x = a, *y = b;

    if (x->id.len != y->id.len) {
        return x->id.len < y->id.len ? -1 : 1;
    }

    return ngx_strncmp(x->id.data, y->id.data, x->id.len);
}


static int
ngx_http_hris_api_key_cmp(const void *a, const void *b)
{
    return ngx_memcmp(((ngx_http_hris_api_key_t *) a)->sha256,
                      ((ngx_http_hris_api_key_t *) b)->sha256, 32);
}


static void
ngx_http_hris_sha256(ngx_str_t *in, u_char *out)
{
    unsigned int  len;

    len = 32;
    EVP_Digest(in->data, in->len, out, &len, ngx_http_hris_sha256_md(),
               NULL);
}


static ngx_int_t
ngx_http_hris_hex_decode(u_char *dst, ngx_str_t *hex)
{
    ngx_int_t   n;
    ngx_uint_t  i;

    for (i = 0; i < hex->len; i += 2) {
        n = ngx_hextoi(hex->data + i, 2);
        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }
        dst[i / 2] = (u_char) n;
    }

    return NGX_OK;
}

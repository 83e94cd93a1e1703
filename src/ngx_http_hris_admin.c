/*
 * The account administration API (location directive hris_admin). An API
 * key sees and changes its tenant's integrated accounts and nothing else:
 *
 *     GET    {location}/accounts           {"result": [...], "result_count"}
 *     GET    {location}/accounts/{id}      {"result": {...}}
 *     POST   {location}/accounts           create: 201 {"result": {...}}
 *     PATCH  {location}/accounts/{id}      change: {"result": {...}}
 *     DELETE {location}/accounts/{id}      {"result": {"id": "..."}}
 *     POST   {location}/connect_links      a link for an end user
 *                                          (ngx_http_hris_connect.c)
 *
 * An account is described without a secret: the credentials' names only,
 * whether it needs re-authorization, and whether it comes from the
 * accounts file or was changed at run time (ngx_http_hris_store.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_events.h"


typedef enum {
    NGX_HTTP_HRIS_ADMIN_CREATE = 0,
    NGX_HTTP_HRIS_ADMIN_PATCH,
    NGX_HTTP_HRIS_ADMIN_LINK
} ngx_http_hris_admin_op_e;


typedef struct {
    ngx_str_t                    tenant;
    ngx_str_t                    id;
    ngx_http_hris_admin_op_e     op;
    json_t                      *js;          /* checked, to be stored */
    ngx_http_hris_account_t      checked;
} ngx_http_hris_admin_ctx_t;


static ngx_int_t ngx_http_hris_admin_read(ngx_http_request_t *r,
    ngx_str_t *tenant, ngx_str_t *id);
static ngx_int_t ngx_http_hris_admin_delete(ngx_http_request_t *r,
    ngx_str_t *tenant, ngx_str_t *id);
static void ngx_http_hris_admin_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_hris_admin_write(ngx_http_request_t *r,
    ngx_http_hris_admin_ctx_t *ctx, json_t *body);
static void ngx_http_hris_admin_claimed(ngx_http_request_t *r, void *data,
    ngx_int_t rc);
static ngx_int_t ngx_http_hris_admin_store(ngx_http_request_t *r,
    ngx_http_hris_admin_ctx_t *ctx);
static json_t *ngx_http_hris_admin_patched(ngx_http_request_t *r,
    ngx_http_hris_account_t *acc, json_t *patch);
static ngx_int_t ngx_http_hris_admin_not_found(ngx_http_request_t *r,
    ngx_str_t *id);
static ngx_int_t ngx_http_hris_admin_send(ngx_http_request_t *r,
    ngx_uint_t status, json_t *result);
static json_t *ngx_http_hris_admin_kv(ngx_array_t *kv, ngx_uint_t values);


ngx_int_t
ngx_http_hris_admin_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_str_t                   rest, tenant, id;
    ngx_uint_t                  accounts;
    ngx_http_hris_main_conf_t  *hmcf;
    ngx_http_hris_admin_ctx_t  *ctx;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    if (ngx_http_hris_authenticate(r, hmcf, &tenant) != NGX_OK) {
        return ngx_http_hris_send_error(r, NGX_HTTP_UNAUTHORIZED, NULL,
                   "send a gateway API key from the accounts file as "
                   "\"Authorization: Bearer <key>\"");
    }

    ngx_http_hris_subpath(r, &rest);

    /* webhook subscriptions: ngx_http_hris_webhooks_admin.c */
    if (rest.len >= 8 && ngx_strncmp(rest.data, "webhooks", 8) == 0
        && (rest.len == 8 || rest.data[8] == '/'))
    {
        return ngx_http_hris_webhooks_admin(r, &tenant, &rest);
    }

    accounts = rest.len >= 8 && ngx_strncmp(rest.data, "accounts", 8) == 0
               && (rest.len == 8 || rest.data[8] == '/');

    if (!accounts
        && !(rest.len == 13
             && ngx_strncmp(rest.data, "connect_links", 13) == 0))
    {
        return ngx_http_hris_send_error(r, NGX_HTTP_NOT_FOUND, NULL,
                   "unknown path \"%V\": the administration API serves "
                   "accounts, accounts/{id}, connect_links, webhooks and "
                   "webhooks/{id} below this location", &r->uri);
    }

    id.data = rest.data + 9;
    id.len = accounts && rest.len > 9 ? rest.len - 9 : 0;

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_DELETE)) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_hris_admin_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->tenant = tenant;
    ctx->id = id;

    if (!accounts) {
        if (r->method != NGX_HTTP_POST) {
            goto not_allowed;
        }
        ctx->op = NGX_HTTP_HRIS_ADMIN_LINK;

    } else if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        return ngx_http_hris_admin_read(r, &tenant, &id);

    } else if (r->method == NGX_HTTP_DELETE && id.len) {
        return ngx_http_hris_admin_delete(r, &tenant, &id);

    } else if (r->method == NGX_HTTP_POST && id.len == 0) {
        ctx->op = NGX_HTTP_HRIS_ADMIN_CREATE;

    } else if (r->method == NGX_HTTP_PATCH && id.len) {
        ctx->op = NGX_HTTP_HRIS_ADMIN_PATCH;

    } else {
        goto not_allowed;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_hris_module);

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_hris_admin_body);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;

not_allowed:

    return ngx_http_hris_send_error(r, NGX_HTTP_NOT_ALLOWED, NULL,
               "method %V is not allowed on \"%V\": use GET or POST on "
               "accounts, GET, PATCH or DELETE on accounts/{id}, POST on "
               "connect_links", &r->method_name, &r->uri);
}


static ngx_int_t
ngx_http_hris_admin_read(ngx_http_request_t *r, ngx_str_t *tenant,
    ngx_str_t *id)
{
    json_t                      *list, *one;
    ngx_uint_t                   i;
    ngx_array_t                  all;
    ngx_http_hris_account_t     *acc, **accs;
    ngx_http_hris_main_conf_t   *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    if (id->len) {
        acc = ngx_http_hris_account_get(r, hmcf, id);

        /* another tenant's account is reported exactly like a missing one */
        if (acc == NULL || !ngx_http_hris_str_eq(&acc->tenant, tenant)) {
            return ngx_http_hris_admin_not_found(r, id);
        }

        return ngx_http_hris_admin_send(r, NGX_HTTP_OK,
                                        ngx_http_hris_admin_account(r, acc));
    }

    if (ngx_http_hris_account_list(r, hmcf, &all) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    list = json_array();
    accs = all.elts;

    for (i = 0; list && i < all.nelts; i++) {
        if (!ngx_http_hris_str_eq(&accs[i]->tenant, tenant)) {
            continue;
        }

        one = ngx_http_hris_admin_account(r, accs[i]);
        if (one == NULL || json_array_append_new(list, one) != 0) {
            json_decref(list);
            list = NULL;
        }
    }

    return ngx_http_hris_admin_send(r, NGX_HTTP_OK, list);
}


static ngx_int_t
ngx_http_hris_admin_delete(ngx_http_request_t *r, ngx_str_t *tenant,
    ngx_str_t *id)
{
    ngx_int_t                   rc;
    ngx_str_t                   provider;
    ngx_http_hris_account_t    *acc;
    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    /* the provider, for the event: the account is gone afterwards */
    acc = ngx_http_hris_account_get(r, hmcf, id);
    ngx_str_null(&provider);

    if (acc) {
        provider = acc->provider;
    }

    rc = ngx_http_hris_store_change(r, hmcf, tenant, id, NULL,
                                    NGX_HTTP_HRIS_STORE_DELETE);
    if (rc == NGX_DECLINED) {
        return ngx_http_hris_admin_not_found(r, id);
    }

    if (rc != NGX_OK) {
        return ngx_http_hris_send_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                   NULL, "the account could not be deleted: see the error "
                   "log");
    }

    ngx_http_hris_account_event(hmcf, tenant, id, &provider,
                                "integrated_account.deleted", NULL,
                                r->connection->log);

    return ngx_http_hris_admin_send(r, NGX_HTTP_OK,
                                    json_pack("{s:s%}", "id", id->data,
                                              id->len));
}


static void
ngx_http_hris_admin_body(ngx_http_request_t *r)
{
    json_t                     *body;
    ngx_int_t                   rc;
    ngx_http_hris_admin_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hris_module);

    rc = ngx_http_hris_admin_json(r, &body);
    if (body == NULL) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (ctx->op == NGX_HTTP_HRIS_ADMIN_LINK) {
        rc = ngx_http_hris_connect_link(r, &ctx->tenant, body);

    } else {
        rc = ngx_http_hris_admin_write(r, ctx, body);
    }

    ngx_http_finalize_request(r, rc);
}


/*
 * An administration API body: a JSON object, released with the request.
 * *body NULL: the request is to be finalized with the returned code (an
 * error answer was sent, or the body could not be read).
 */

ngx_int_t
ngx_http_hris_admin_json(ngx_http_request_t *r, json_t **body)
{
    ngx_int_t     rc;
    ngx_str_t     text;
    json_error_t  jerr;

    *body = NULL;

    rc = ngx_http_hris_request_body(r, &text);
    if (rc != NGX_OK || r->header_sent) {
        return rc;
    }

    *body = json_loadb((char *) text.data, text.len, 0, &jerr);

    if (*body == NULL || !json_is_object(*body)) {
        rc = ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                 "the body must be a JSON object (%s)",
                 *body ? "it is another JSON value" : jerr.text);
        json_decref(*body);
        *body = NULL;
        return rc;
    }

    if (ngx_http_hris_json_cleanup(r->pool, *body) != NGX_OK) {
        json_decref(*body);
        *body = NULL;
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_admin_write(ngx_http_request_t *r,
    ngx_http_hris_admin_ctx_t *ctx, json_t *body)
{
    char                        *dump;
    json_t                      *js;
    size_t                       len;
    ngx_int_t                    rc;
    ngx_str_t                    err;
    ngx_http_hris_account_t     *acc;
    ngx_http_hris_main_conf_t   *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    if (ctx->op == NGX_HTTP_HRIS_ADMIN_PATCH) {
        acc = ngx_http_hris_account_get(r, hmcf, &ctx->id);

        if (acc == NULL || !ngx_http_hris_str_eq(&acc->tenant, &ctx->tenant)) {
            return ngx_http_hris_admin_not_found(r, &ctx->id);
        }

        js = ngx_http_hris_admin_patched(r, acc, body);
        if (js == NULL) {
            return r->header_sent ? NGX_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else {
        js = body;
    }

    rc = ngx_http_hris_store_check(r, hmcf, &ctx->tenant, js, &ctx->checked,
                                   &err);
    if (rc == NGX_DECLINED) {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                                        "%V", &err);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->js = js;

    /* the accounts file's accounts count in no tenant's cap */
    if (hmcf->redis == NULL
        || ngx_http_hris_account_find(hmcf, &ctx->checked.id))
    {
        return ngx_http_hris_admin_store(r, ctx);
    }

    /* the fleet's count first: of two gateways, one takes the last slot */
    dump = json_dumps(js, JSON_COMPACT);
    if (dump == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_strlen(dump);
    free(dump);

    rc = ngx_http_hris_accounts_claim(r, &ctx->tenant, &ctx->checked.id, len,
                                      ngx_http_hris_admin_claimed, ctx);
    if (rc == NGX_DONE) {
        return NGX_DONE;
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_hris_admin_store(r, ctx);
}


static void
ngx_http_hris_admin_claimed(ngx_http_request_t *r, void *data, ngx_int_t rc)
{
    ngx_http_hris_admin_ctx_t  *ctx = data;

    if (rc == NGX_HTTP_HRIS_OVER_COUNT || rc == NGX_HTTP_HRIS_OVER_BYTES) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "hris: integrated account \"%V\" of tenant \"%V\" "
                      "refused: the tenant is at its limit for the fleet, "
                      "\"%s\"", &ctx->checked.id, &ctx->tenant,
                      rc == NGX_HTTP_HRIS_OVER_COUNT
                      ? "hris_tenant_accounts" : "hris_zone_size");
        ngx_http_finalize_request(r, ngx_http_hris_admin_over(r, rc));
        return;
    }

    ngx_http_finalize_request(r, ngx_http_hris_admin_store(r, ctx));
}


/* The checked account stored: this gateway's zone, the state, the fleet. */

static ngx_int_t
ngx_http_hris_admin_store(ngx_http_request_t *r,
    ngx_http_hris_admin_ctx_t *ctx)
{
    ngx_int_t                   rc;
    ngx_str_t                   id;
    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    id = ctx->checked.id;

    rc = ngx_http_hris_store_change(r, hmcf, &ctx->tenant, &id, ctx->js,
                                    ctx->op == NGX_HTTP_HRIS_ADMIN_CREATE
                                    ? NGX_HTTP_HRIS_STORE_CREATE
                                    : NGX_HTTP_HRIS_STORE_REPLACE);

    if (rc != NGX_OK) {
        /* a slot the fleet's count gave for nothing goes back */
        ngx_http_hris_accounts_unclaim(hmcf, &id);
    }

    if (rc == NGX_DECLINED && ctx->op == NGX_HTTP_HRIS_ADMIN_CREATE) {
        return ngx_http_hris_send_error(r, NGX_HTTP_CONFLICT,
                   json_pack("{s:s%}", "id", id.data, id.len),
                   "the account id \"%V\" is taken: choose another id, or "
                   "PATCH the account", &id);
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_hris_admin_not_found(r, &id);
    }

    if (rc == NGX_HTTP_HRIS_OVER_COUNT || rc == NGX_HTTP_HRIS_OVER_BYTES) {
        return ngx_http_hris_admin_over(r, rc);
    }

    if (rc != NGX_OK) {
        return ngx_http_hris_send_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                   NULL, "the account could not be stored: see the error "
                   "log");
    }

    if (ctx->op == NGX_HTTP_HRIS_ADMIN_CREATE) {
        ngx_http_hris_account_event(hmcf, &ctx->tenant, &id,
                                    &ctx->checked.provider,
                                    "integrated_account.created", NULL,
                                    r->connection->log);
    }

    return ngx_http_hris_admin_send(r, ctx->op == NGX_HTTP_HRIS_ADMIN_CREATE
                                       ? NGX_HTTP_CREATED : NGX_HTTP_OK,
                                    ngx_http_hris_admin_account(r,
                                                         &ctx->checked));
}


/*
 * The account's JSON with a PATCH applied: keys replace (null removes),
 * but "context" and "credentials" merge key by key, so one secret can be
 * rotated without sending the others. The id and tenant stay.
 */

static json_t *
ngx_http_hris_admin_patched(ngx_http_request_t *r,
    ngx_http_hris_account_t *acc, json_t *patch)
{
    json_t      *js, *v, *cur, *own;
    const char  *key, *k2;

    own = json_object_get(patch, "id");

    if (own && !(json_is_string(own)
                 && json_string_length(own) == acc->id.len
                 && ngx_strncmp(json_string_value(own), acc->id.data,
                                acc->id.len) == 0))
    {
        (void) ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "\"id\" cannot change: create an account with the new id "
                   "and delete this one");
        return NULL;
    }

    js = json_deep_copy(acc->source);
    if (js == NULL || ngx_http_hris_json_cleanup(r->pool, js) != NGX_OK) {
        json_decref(js);
        return NULL;
    }

    json_object_foreach(patch, key, v) {
        cur = json_object_get(js, key);

        if ((ngx_strcmp(key, "context") == 0
             || ngx_strcmp(key, "credentials") == 0)
            && json_is_object(v) && json_is_object(cur))
        {
            json_object_foreach(v, k2, own) {
                if (json_is_null(own)) {
                    json_object_del(cur, k2);

                } else {
                    json_object_set(cur, k2, own);
                }
            }

            continue;
        }

        if (json_is_null(v)) {
            json_object_del(js, key);

        } else {
            json_object_set(js, key, v);
        }
    }

    return js;
}


/*
 * The tenant's cap on run-time accounts refused a create, or a change
 * that made an account bigger (or a connect link that would create one:
 * ngx_http_hris_connect_link.c): 409, as a taken id is, since the tenant
 * resolves it by changing its own state (deleting accounts it no longer
 * needs); waiting does not help, which 429 or 503 would suggest. Only
 * the tenant's own numbers are told.
 */

ngx_int_t
ngx_http_hris_admin_over(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    if (rc == NGX_HTTP_HRIS_OVER_COUNT) {
        return ngx_http_hris_send_error(r, NGX_HTTP_CONFLICT,
                   json_pack("{s:s, s:I}", "limit", "hris_tenant_accounts",
                             "max_accounts",
                             (json_int_t) hmcf->tenant_accounts),
                   "this API key's tenant is at its limit of %ui "
                   "integrated accounts created at run time: delete one it "
                   "no longer needs, or ask the gateway's operator to raise "
                   "\"hris_tenant_accounts\"", hmcf->tenant_accounts);
    }

    return ngx_http_hris_send_error(r, NGX_HTTP_CONFLICT,
               json_pack("{s:s}", "limit", "hris_zone_size"),
               "this API key's tenant's integrated accounts created at run "
               "time take its share of the gateway's memory (a quarter of "
               "\"hris_zone_size\"): delete accounts it no longer needs, "
               "make this one smaller, or ask the gateway's operator to "
               "raise \"hris_zone_size\"");
}


static ngx_int_t
ngx_http_hris_admin_not_found(ngx_http_request_t *r, ngx_str_t *id)
{
    return ngx_http_hris_send_error(r, NGX_HTTP_NOT_FOUND, NULL,
               "no integrated account \"%V\" for this API key", id);
}


static ngx_int_t
ngx_http_hris_admin_send(ngx_http_request_t *r, ngx_uint_t status,
    json_t *result)
{
    json_t  *out;

    if (json_is_array(result)) {
        out = json_pack("{s:o, s:I}", "result", result, "result_count",
                        (json_int_t) json_array_size(result));

    } else {
        out = result ? json_pack("{s:o}", "result", result) : NULL;
    }

    if (out == NULL || ngx_http_hris_json_cleanup(r->pool, out) != NGX_OK) {
        json_decref(out);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_hris_send_json(r, status, out, NULL);
}


json_t *
ngx_http_hris_admin_account(ngx_http_request_t *r,
    ngx_http_hris_account_t *acc)
{
    ngx_uint_t                  reauth;
    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    reauth = acc->state_reauth
             || ngx_http_hris_needs_reauth(hmcf, &acc->id);

    return json_pack("{s:s%, s:s%, s:s%, s:o, s:o, s:s%, s:s%, s:s, s:s}",
                     "id", acc->id.data, acc->id.len,
                     "tenant", acc->tenant.data, acc->tenant.len,
                     "provider", acc->provider.data, acc->provider.len,
                     "context", ngx_http_hris_admin_kv(&acc->context, 1),
                     "credentials", ngx_http_hris_admin_kv(&acc->credentials,
                                                           0),
                     "base_url", acc->base_url.data, acc->base_url.len,
                     "token_url", acc->token_url.data, acc->token_url.len,
                     "status", reauth ? "needs_reauth" : "ok",
                     "source", acc->runtime ? "runtime" : "file");
}


/* context with its values; credentials by name only: never a secret */

static json_t *
ngx_http_hris_admin_kv(ngx_array_t *kv, ngx_uint_t values)
{
    json_t        *obj;
    ngx_uint_t     i;
    ngx_keyval_t  *e;

    obj = values ? json_object() : json_array();
    if (obj == NULL) {
        return NULL;
    }

    e = kv->elts;

    for (i = 0; i < kv->nelts; i++) {
        if (values) {
            json_object_setn_new(obj, (char *) e[i].key.data, e[i].key.len,
                                 json_stringn((char *) e[i].value.data,
                                              e[i].value.len));

        } else {
            json_array_append_new(obj, json_stringn((char *) e[i].key.data,
                                                    e[i].key.len));
        }
    }

    return obj;
}

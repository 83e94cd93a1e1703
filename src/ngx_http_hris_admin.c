/*
 * The account administration API (location directive hris_admin), read
 * side: an API key sees its tenant's integrated accounts and nothing else.
 *
 *     GET {location}/accounts          {"result": [...], "result_count": N}
 *     GET {location}/accounts/{id}     {"result": {...}}
 *
 * An account is described without a secret: the credentials' names only,
 * and whether it needs re-authorization. Creating, changing and deleting
 * accounts at run time is not available yet (501).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"


static json_t *ngx_http_hris_admin_account(ngx_http_request_t *r,
    ngx_http_hris_account_t *acc);
static json_t *ngx_http_hris_admin_kv(ngx_array_t *kv, ngx_uint_t values);


ngx_int_t
ngx_http_hris_admin_handler(ngx_http_request_t *r)
{
    json_t                     *list, *one, *out;
    ngx_int_t                   rc;
    ngx_str_t                   rest, tenant, id;
    ngx_uint_t                  i;
    ngx_http_hris_account_t    *acc;
    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_hris_authenticate(r, hmcf, &tenant) != NGX_OK) {
        return ngx_http_hris_send_error(r, NGX_HTTP_UNAUTHORIZED, NULL,
                   "send a gateway API key from the accounts file as "
                   "\"Authorization: Bearer <key>\"");
    }

    ngx_http_hris_subpath(r, &rest);

    if (rest.len < 8 || ngx_strncmp(rest.data, "accounts", 8) != 0
        || (rest.len > 8 && rest.data[8] != '/'))
    {
        return ngx_http_hris_send_error(r, NGX_HTTP_NOT_FOUND, NULL,
                   "unknown path \"%V\": the administration API serves "
                   "accounts and accounts/{id} below this location", &r->uri);
    }

    id.data = rest.data + 9;
    id.len = rest.len > 9 ? rest.len - 9 : 0;

    if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
        if (r->method & (NGX_HTTP_POST|NGX_HTTP_PUT|NGX_HTTP_PATCH
                         |NGX_HTTP_DELETE))
        {
            return ngx_http_hris_send_error(r, NGX_HTTP_NOT_IMPLEMENTED, NULL,
                       "changing accounts at run time is not available yet: "
                       "edit the accounts file and reload nginx");
        }

        return ngx_http_hris_send_error(r, NGX_HTTP_NOT_ALLOWED, NULL,
                   "method %V is not allowed here", &r->method_name);
    }

    if (id.len) {
        acc = ngx_http_hris_account_find(hmcf, &id);

        /* another tenant's account is reported exactly like a missing one */
        if (acc == NULL || acc->tenant.len != tenant.len
            || ngx_strncmp(acc->tenant.data, tenant.data, tenant.len) != 0)
        {
            return ngx_http_hris_send_error(r, NGX_HTTP_NOT_FOUND, NULL,
                       "no integrated account \"%V\" for this API key", &id);
        }

        one = ngx_http_hris_admin_account(r, acc);
        out = one ? json_pack("{s:o}", "result", one) : NULL;

    } else {
        list = json_array();
        acc = hmcf->accounts.elts;

        for (i = 0; list && i < hmcf->accounts.nelts; i++) {
            if (acc[i].tenant.len != tenant.len
                || ngx_strncmp(acc[i].tenant.data, tenant.data, tenant.len)
                   != 0)
            {
                continue;
            }

            one = ngx_http_hris_admin_account(r, &acc[i]);
            if (one == NULL || json_array_append_new(list, one) != 0) {
                json_decref(list);
                list = NULL;
            }
        }

        out = list ? json_pack("{s:o, s:I}", "result", list, "result_count",
                               (json_int_t) json_array_size(list))
                   : NULL;
    }

    if (out == NULL || ngx_http_hris_json_cleanup(r->pool, out) != NGX_OK) {
        json_decref(out);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_hris_send_json(r, NGX_HTTP_OK, out, NULL);
}


static json_t *
ngx_http_hris_admin_account(ngx_http_request_t *r,
    ngx_http_hris_account_t *acc)
{
    ngx_uint_t                  reauth;
    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    reauth = acc->state_reauth
             || ngx_http_hris_needs_reauth(hmcf, &acc->id);

    return json_pack("{s:s%, s:s%, s:s%, s:o, s:o, s:s%, s:s%, s:s}",
                     "id", acc->id.data, acc->id.len,
                     "tenant", acc->tenant.data, acc->tenant.len,
                     "provider", acc->provider.data, acc->provider.len,
                     "context", ngx_http_hris_admin_kv(&acc->context, 1),
                     "credentials", ngx_http_hris_admin_kv(&acc->credentials,
                                                           0),
                     "base_url", acc->base_url.data, acc->base_url.len,
                     "token_url", acc->token_url.data, acc->token_url.len,
                     "status", reauth ? "needs_reauth" : "ok");
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

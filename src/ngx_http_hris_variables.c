/*
 * What a request did, recorded as it goes (the hooks below, called by the
 * APIs, the upstream client and the error envelope), and the variables
 * log_format reads it with (CONTRACT.md §10):
 *
 *   $hris_provider        the account's provider (its mapping table)
 *   $hris_account         the integrated account's id
 *   $hris_resource        the unified resource ("unknown" for one the
 *                         schema does not have)
 *   $hris_upstream_calls  requests sent to the provider, each try of a
 *                         call and token exchanges included
 *   $hris_upstream_status their statuses, ", " between them, as nginx's
 *                         $upstream_status (502, or 504 for a timeout,
 *                         when no answer came)
 *   $hris_upstream_time   their times in seconds with milliseconds
 *   $hris_retries         tries that were retries
 *   $hris_error           the message of the error envelope answered
 *   $hris_trace_id        the W3C trace id passed on to the provider
 *
 * A variable with nothing to say is not found: the log shows "-".
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_metrics.h"


static ngx_http_hris_req_t *ngx_http_hris_req(ngx_http_request_t *r);
static ngx_int_t ngx_http_hris_var_provider(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_hris_var_account(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_hris_var_resource(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_hris_var_number(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_hris_var_tries(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_hris_var_error(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_hris_var_trace_id(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static void ngx_http_hris_var_str(ngx_http_variable_value_t *v,
    ngx_str_t *s);


/* which number, which list */
#define NGX_HTTP_HRIS_VAR_CALLS    0
#define NGX_HTTP_HRIS_VAR_RETRIES  1
#define NGX_HTTP_HRIS_VAR_STATUS   0
#define NGX_HTTP_HRIS_VAR_TIME     1


static ngx_http_variable_t  ngx_http_hris_vars[] = {

    { ngx_string("hris_provider"), NULL, ngx_http_hris_var_provider,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("hris_account"), NULL, ngx_http_hris_var_account,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("hris_resource"), NULL, ngx_http_hris_var_resource,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("hris_upstream_calls"), NULL, ngx_http_hris_var_number,
      NGX_HTTP_HRIS_VAR_CALLS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("hris_upstream_status"), NULL, ngx_http_hris_var_tries,
      NGX_HTTP_HRIS_VAR_STATUS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("hris_upstream_time"), NULL, ngx_http_hris_var_tries,
      NGX_HTTP_HRIS_VAR_TIME, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("hris_retries"), NULL, ngx_http_hris_var_number,
      NGX_HTTP_HRIS_VAR_RETRIES, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("hris_error"), NULL, ngx_http_hris_var_error,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("hris_trace_id"), NULL, ngx_http_hris_var_trace_id,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_hris_variables_add(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_hris_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/* A request of one of the APIs starts (the content handlers). */

void
ngx_http_hris_observe(ngx_http_request_t *r, ngx_uint_t api)
{
    ngx_http_hris_req_t  *req;

    if (ngx_http_get_module_ctx(r, ngx_http_hris_metrics_module)) {
        return;
    }

    req = ngx_pcalloc(r->pool, sizeof(ngx_http_hris_req_t));
    if (req == NULL) {
        return;
    }

    req->api = api;
    req->provider = -1;
    req->resource = NGX_HTTP_HRIS_RESOURCE_NONE;

    ngx_http_set_ctx(r, req, ngx_http_hris_metrics_module);
}


static ngx_http_hris_req_t *
ngx_http_hris_req(ngx_http_request_t *r)
{
    return ngx_http_get_module_ctx(r, ngx_http_hris_metrics_module);
}


/* The request's account is known (or, for the connect flow, its link's). */

void
ngx_http_hris_observe_provider(ngx_http_request_t *r,
    ngx_http_hris_table_t *table, ngx_str_t *account)
{
    ngx_http_hris_req_t        *req;
    ngx_http_hris_main_conf_t  *hmcf;

    req = ngx_http_hris_req(r);
    if (req == NULL) {
        return;
    }

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);
    req->provider = ngx_http_hris_metrics_provider(hmcf, &table->name);

    /* run-time accounts may go while the request is logged: a copy */
    if (req->account.len == 0 && account->len) {
        req->account.data = ngx_pstrdup(r->pool, account);
        req->account.len = req->account.data ? account->len : 0;
    }
}


/* The unified resource: a schema index, or NGX_ERROR for an unknown one. */

void
ngx_http_hris_observe_resource(ngx_http_request_t *r, ngx_int_t index)
{
    ngx_http_hris_req_t  *req;

    req = ngx_http_hris_req(r);
    if (req == NULL) {
        return;
    }

    req->resource = (index >= 0) ? index : NGX_HTTP_HRIS_RESOURCE_UNKNOWN;
}


/* The error envelope's message (ngx_http_hris_send_error()). */

void
ngx_http_hris_observe_error(ngx_http_request_t *r, u_char *msg, size_t len)
{
    ngx_http_hris_req_t  *req;

    req = ngx_http_hris_req(r);
    if (req == NULL) {
        return;
    }

    req->error.data = ngx_pnalloc(r->pool, len);
    if (req->error.data == NULL) {
        req->error.len = 0;
        return;
    }

    ngx_memcpy(req->error.data, msg, len);
    req->error.len = len;
}


/*
 * A try of an upstream call ended (the upstream client), after us
 * microseconds; retrying: another try follows. Each try is one value of
 * $hris_upstream_status and one request counted by provider.
 */

void
ngx_http_hris_observe_try(ngx_http_hris_call_t *call, uint64_t us,
    ngx_uint_t retrying)
{
    ngx_uint_t            status;
    ngx_http_request_t   *r = call->request;
    ngx_http_hris_try_t  *t;
    ngx_http_hris_req_t  *req;

    switch (call->result) {

    case NGX_HTTP_HRIS_CALL_OK:
    case NGX_HTTP_HRIS_CALL_TOO_LARGE:
    case NGX_HTTP_HRIS_CALL_RATE_LIMITED:
        if (call->status) {
            status = call->status;
            break;
        }

        /* fall through */

    default:
        /* no (whole) answer: what nginx's $upstream_status says then */
        status = (call->result == NGX_HTTP_HRIS_CALL_TIMEOUT)
                 ? NGX_HTTP_GATEWAY_TIME_OUT : NGX_HTTP_BAD_GATEWAY;
    }

    req = ngx_http_hris_req(r);

    ngx_http_hris_metrics_count_try(req, status, us, retrying);

    if (req == NULL) {
        return;
    }

    if (retrying) {
        req->retries++;
    }

    if (req->tries.elts == NULL
        && ngx_array_init(&req->tries, r->pool, 4,
                          sizeof(ngx_http_hris_try_t))
           != NGX_OK)
    {
        return;
    }

    t = ngx_array_push(&req->tries);
    if (t == NULL) {
        return;
    }

    t->status = status;
    t->ms = (ngx_msec_t) (us / 1000);
}


static ngx_int_t
ngx_http_hris_var_provider(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_hris_req_t        *req;
    ngx_http_hris_table_t      *t;
    ngx_http_hris_main_conf_t  *hmcf;

    req = ngx_http_hris_req(r);
    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    if (req == NULL || req->provider < 0
        || (ngx_uint_t) req->provider >= hmcf->tables.nelts)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    t = hmcf->tables.elts;
    ngx_http_hris_var_str(v, &t[req->provider].name);

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_var_account(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_hris_req_t  *req;

    req = ngx_http_hris_req(r);

    if (req == NULL || req->account.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_http_hris_var_str(v, &req->account);

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_var_resource(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_hris_req_t              *req;
    ngx_http_hris_main_conf_t        *hmcf;
    ngx_http_hris_schema_resource_t  *sr;

    static ngx_str_t  unknown = ngx_string("unknown");

    req = ngx_http_hris_req(r);
    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    if (req && req->resource == NGX_HTTP_HRIS_RESOURCE_UNKNOWN) {
        ngx_http_hris_var_str(v, &unknown);
        return NGX_OK;
    }

    if (req == NULL || req->resource < 0
        || (ngx_uint_t) req->resource >= hmcf->schema.nelts)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    sr = hmcf->schema.elts;
    ngx_http_hris_var_str(v, &sr[req->resource].name);

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_var_number(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char               *p;
    ngx_uint_t            n;
    ngx_http_hris_req_t  *req;

    req = ngx_http_hris_req(r);

    if (req == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    n = (data == NGX_HTTP_HRIS_VAR_CALLS) ? req->tries.nelts : req->retries;

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%ui", n) - p;
    v->data = p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* "200, 503, 200" or "0.012, 0.100, 0.031": one value per try */

static ngx_int_t
ngx_http_hris_var_tries(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    u_char               *p;
    ngx_uint_t            i;
    ngx_http_hris_try_t  *t;
    ngx_http_hris_req_t  *req;

    req = ngx_http_hris_req(r);

    if (req == NULL || req->tries.nelts == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    /* "NNNNN.NNN, " at most per try */
    p = ngx_pnalloc(r->pool, req->tries.nelts * (NGX_TIME_T_LEN + 6));
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;
    t = req->tries.elts;

    for (i = 0; i < req->tries.nelts; i++) {
        if (i) {
            *p++ = ',';
            *p++ = ' ';
        }

        p = (data == NGX_HTTP_HRIS_VAR_STATUS)
            ? ngx_sprintf(p, "%ui", t[i].status)
            : ngx_sprintf(p, "%T.%03M", (time_t) (t[i].ms / 1000),
                          t[i].ms % 1000);
    }

    v->len = p - v->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_var_error(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    ngx_http_hris_req_t  *req;

    req = ngx_http_hris_req(r);

    if (req == NULL || req->error.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_http_hris_var_str(v, &req->error);

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_var_trace_id(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t             id;
    ngx_http_hris_req_t  *req;

    req = ngx_http_hris_req(r);

    if (req == NULL || !ngx_http_hris_trace_parse(r, &req->trace)) {
        v->not_found = 1;
        return NGX_OK;
    }

    id.data = req->trace.trace_id;
    id.len = sizeof(req->trace.trace_id);
    ngx_http_hris_var_str(v, &id);

    return NGX_OK;
}


static void
ngx_http_hris_var_str(ngx_http_variable_value_t *v, ngx_str_t *s)
{
    v->len = s->len;
    v->data = s->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
}

/*
 * Checking credentials an end user typed into the connect form before
 * they become an account: one cheap call with them, the one the table's
 * "connect.verify" names (the token exchange of its auth, or e.g. a
 * one-record employee list). It goes through the same client as every
 * upstream call (asynchronous, hris_timeout, hris_retries,
 * hris_max_response_size), after the same rate limit as the account's
 * calls, to the account's base or token URL, which the tenant URL rules
 * allowed when the account was checked (ngx_http_hris_store_check()).
 *
 * It does not pass the account gate (ngx_http_hris_auth.c): the gate
 * would use a token the zone holds for the account id (the old
 * credentials' when an account is connected again) and answers errors
 * in JSON, where the end user needs the form again.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_connect.h"


static ngx_int_t ngx_http_hris_verify_call(ngx_http_hris_verify_t *v);
static ngx_int_t ngx_http_hris_verify_request(ngx_http_hris_verify_t *v,
    ngx_http_hris_call_t **out);
static ngx_int_t ngx_http_hris_verify_body(ngx_http_hris_verify_t *v,
    ngx_http_hris_call_t *call, ngx_http_hris_tpl_vars_t *vars);
static void ngx_http_hris_verify_done(ngx_http_hris_call_t *call);
static ngx_http_hris_verify_result_e ngx_http_hris_verify_outcome(
    ngx_http_hris_verify_t *v, ngx_http_hris_call_t *call);
static void ngx_http_hris_verify_timer(ngx_event_t *ev);
static void ngx_http_hris_verify_cleanup(void *data);


/*
 * NGX_AGAIN: v->handler(v) runs later with v->result. NGX_OK: v->result
 * is known already (the rate limit said so). NGX_ERROR: failed.
 */

ngx_int_t
ngx_http_hris_verify_start(ngx_http_hris_verify_t *v)
{
    ngx_int_t                   rc;
    ngx_msec_t                  wait;
    ngx_pool_cleanup_t         *cln;
    ngx_http_request_t         *r = v->request;
    ngx_http_hris_account_t    *acc = &v->account;
    ngx_http_hris_loc_conf_t   *hlcf;
    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);
    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hris_module);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_hris_verify_cleanup;
    cln->data = v;

    v->timer.handler = ngx_http_hris_verify_timer;
    v->timer.data = r->connection;
    v->timer.log = r->connection->log;

    if (acc->rate_calls == 0) {
        return ngx_http_hris_verify_call(v);
    }

    /* the account's own limit: a customer's quota is spent by this too */
    rc = ngx_http_hris_rate_reserve(hmcf, &acc->id, acc->rate_calls,
                                    acc->rate_window,
                                    hlcf->upstream.retry_after_max, &wait);

    if (rc == NGX_OK) {
        if (wait == 0) {
            return ngx_http_hris_verify_call(v);
        }

        ngx_add_timer(&v->timer, wait);
        return NGX_AGAIN;
    }

    if (rc == NGX_BUSY) {
        v->result = NGX_HTTP_HRIS_VERIFY_BUSY;
        v->retry_after = (time_t) ((wait + 999) / 1000);
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "hris: no room in the shared memory zone for the rate-limit "
                  "window of integrated account \"%V\": raise "
                  "\"hris_zone_size\"", &acc->id);

    return NGX_ERROR;
}


static void
ngx_http_hris_verify_timer(ngx_event_t *ev)
{
    ngx_connection_t        *c;
    ngx_http_hris_verify_t  *v;

    v = (ngx_http_hris_verify_t *)
            ((u_char *) ev - offsetof(ngx_http_hris_verify_t, timer));

    c = v->request->connection;

    if (ngx_http_hris_verify_call(v) != NGX_AGAIN) {
        v->result = NGX_HTTP_HRIS_VERIFY_ERROR;
        v->handler(v);
    }

    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_hris_verify_call(ngx_http_hris_verify_t *v)
{
    ngx_http_hris_call_t  *call;

    if (ngx_http_hris_verify_request(v, &call) != NGX_OK
        || ngx_http_hris_call_start(call) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_AGAIN;
}


/* The call the table names, with the typed credentials. */

static ngx_int_t
ngx_http_hris_verify_request(ngx_http_hris_verify_t *v,
    ngx_http_hris_call_t **out)
{
    u_char                          *p;
    ngx_str_t                        path, value, name;
    ngx_uint_t                       i;
    ngx_http_request_t              *r = v->request;
    ngx_http_hris_call_t            *call;
    ngx_http_hris_param_t           *qp;
    ngx_http_hris_account_t         *acc = &v->account;
    ngx_http_hris_tpl_vars_t         vars;
    ngx_http_hris_loc_conf_t        *hlcf;
    ngx_http_hris_connect_verify_t  *spec = acc->table->connect_verify;

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hris_module);
    ngx_memzero(&vars, sizeof(ngx_http_hris_tpl_vars_t));

    if (spec->token) {
        /* a refresh grant would spend a refresh token: not a check */
        if (acc->auth->type != NGX_HTTP_HRIS_AUTH_TOKEN
            || acc->auth->token->has_refresh)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "hris: %V: connect.verify.token: the credentials "
                          "of the form select no client-credentials token "
                          "auth", &acc->table->file);
            return NGX_ERROR;
        }

        vars.context = &acc->context;
        vars.credentials = ngx_http_hris_credentials(r, acc);
        vars.base_url = acc->base_url;
        vars.token_url = acc->token_url;

        call = (vars.credentials == NULL)
               ? NULL
               : ngx_http_hris_token_call(r, &hlcf->upstream,
                                          acc->auth->token, &vars);
        if (call == NULL) {
            return NGX_ERROR;
        }

    } else {
        call = ngx_http_hris_call_create(r, &hlcf->upstream);
        if (call == NULL
            || ngx_http_hris_apply_auth(call, acc, &vars) != NGX_OK
            || ngx_http_hris_tpl_render(r->pool, spec->path, &vars, 1, &path)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* base URL, path, then the query parameters that are not empty */
        qp = spec->query.elts;

        p = ngx_pnalloc(r->pool, acc->base_url.len + path.len + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        call->url.data = p;
        p = ngx_cpymem(p, acc->base_url.data, acc->base_url.len);
        p = ngx_cpymem(p, path.data, path.len);
        *p = '\0';
        call->url.len = p - call->url.data;

        for (i = 0; i < spec->query.nelts; i++) {
            if (ngx_http_hris_tpl_render(r->pool, qp[i].value, &vars, 1,
                                         &value)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            if (value.len == 0) {
                continue;
            }

            p = ngx_pnalloc(r->pool, call->url.len + qp[i].name.len
                                     + value.len + 3);
            if (p == NULL) {
                return NGX_ERROR;
            }

            call->url.len = ngx_sprintf(p, "%V%c%V=%V%Z", &call->url,
                                        ngx_strlchr(call->url.data,
                                                    call->url.data
                                                    + call->url.len, '?')
                                        ? '&' : '?',
                                        &qp[i].name, &value) - p - 1;
            call->url.data = p;
        }

        call->method = spec->method;

        if (ngx_http_hris_verify_body(v, call, &vars) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_str_set(&name, "Accept");
        ngx_str_set(&value, "application/json");

        if (ngx_http_hris_call_header(call, &name, &value) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /* a check reads only: sending it twice does no harm */
    call->idempotent = 1;
    call->handler = ngx_http_hris_verify_done;
    call->data = v;

    *out = call;

    return NGX_OK;
}


/* The table's JSON body, with credentials that travel in bodies. */

static ngx_int_t
ngx_http_hris_verify_body(ngx_http_hris_verify_t *v,
    ngx_http_hris_call_t *call, ngx_http_hris_tpl_vars_t *vars)
{
    char                            *text;
    json_t                          *js;
    ngx_int_t                        rc;
    ngx_str_t                        name, value;
    ngx_pool_t                      *pool = v->request->pool;
    ngx_http_hris_account_t         *acc = &v->account;
    ngx_http_hris_connect_verify_t  *spec = acc->table->connect_verify;

    if (spec->body == NULL && acc->auth->type != NGX_HTTP_HRIS_AUTH_BODY) {
        return NGX_OK;
    }

    js = spec->body ? ngx_http_hris_body_render(pool, spec->body, vars)
                    : json_object();
    if (js == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_OK;

    if (acc->auth->type == NGX_HTTP_HRIS_AUTH_BODY) {
        rc = ngx_http_hris_body_merge(pool, js, acc->auth->body, vars);
    }

    text = (rc == NGX_OK) ? json_dumps(js, JSON_COMPACT) : NULL;
    json_decref(js);

    if (text == NULL) {
        return NGX_ERROR;
    }

    call->body.len = ngx_strlen(text);
    call->body.data = ngx_pnalloc(pool, call->body.len);
    if (call->body.data == NULL) {
        ngx_explicit_memzero(text, call->body.len);
        free(text);
        return NGX_ERROR;
    }

    ngx_memcpy(call->body.data, text, call->body.len);

    /* it may hold the key (PeopleHR's APIKey): not left in freed memory */
    ngx_explicit_memzero(text, call->body.len);
    free(text);

    ngx_str_set(&name, "Content-Type");
    ngx_str_set(&value, "application/json");

    return ngx_http_hris_call_header(call, &name, &value);
}


static void
ngx_http_hris_verify_done(ngx_http_hris_call_t *call)
{
    ngx_http_hris_verify_t  *v = call->data;

    v->status = call->status;
    v->result = ngx_http_hris_verify_outcome(v, call);

    v->handler(v);
}


/* What the answer says about the credentials. */

static ngx_http_hris_verify_result_e
ngx_http_hris_verify_outcome(ngx_http_hris_verify_t *v,
    ngx_http_hris_call_t *call)
{
    json_t                          *body, *token;
    ngx_uint_t                       i, status, *refused;
    ngx_http_hris_account_t         *acc = &v->account;
    ngx_http_hris_connect_verify_t  *spec = acc->table->connect_verify;

    switch (call->result) {

    case NGX_HTTP_HRIS_CALL_OK:
        break;

    case NGX_HTTP_HRIS_CALL_TIMEOUT:
        ngx_str_set(&v->reason, "it did not answer in time");
        return NGX_HTTP_HRIS_VERIFY_UNREACHABLE;

    case NGX_HTTP_HRIS_CALL_UNREACHABLE:
        ngx_str_set(&v->reason, "it could not be reached");
        return NGX_HTTP_HRIS_VERIFY_UNREACHABLE;

    case NGX_HTTP_HRIS_CALL_BROKEN:
        ngx_str_set(&v->reason, "its answer broke off");
        return NGX_HTTP_HRIS_VERIFY_UNREACHABLE;

    case NGX_HTTP_HRIS_CALL_RATE_LIMITED:
        v->retry_after = call->retry_after > 0 ? call->retry_after : 60;
        return NGX_HTTP_HRIS_VERIFY_BUSY;

    case NGX_HTTP_HRIS_CALL_TOO_LARGE:
        return NGX_HTTP_HRIS_VERIFY_FAILED;

    default:
        return NGX_HTTP_HRIS_VERIFY_ERROR;
    }

    status = call->status;
    body = NULL;

    if (status >= 200 && status <= 299
        && (spec->token || acc->table->body_errors.enabled))
    {
        body = json_loadb((char *) call->resp, call->resp_len, 0, NULL);
    }

    /* an error inside a 2xx answer (PeopleHR's isError) */
    if (body && !spec->token && acc->table->body_errors.enabled) {
        i = ngx_http_hris_body_status(v->request->pool,
                                      &acc->table->body_errors, body);
        if (i && (i < 200 || i > 299)) {
            status = i;
            v->status = i;
        }
    }

    /* an exchange that gave no token settles nothing */
    if (spec->token && status >= 200 && status <= 299) {
        token = ngx_http_hris_path_get(&acc->auth->token->token, body, NULL);

        if (!json_is_string(token) || json_string_length(token) == 0) {
            json_decref(body);
            return NGX_HTTP_HRIS_VERIFY_FAILED;
        }
    }

    json_decref(body);

    refused = spec->refused.elts;

    for (i = 0; i < spec->refused.nelts; i++) {
        if (refused[i] == status) {
            return NGX_HTTP_HRIS_VERIFY_REFUSED;
        }
    }

    if (status >= 200 && status <= 299) {
        return NGX_HTTP_HRIS_VERIFY_OK;
    }

    if (status == NGX_HTTP_TOO_MANY_REQUESTS) {
        v->retry_after = call->retry_after > 0 ? call->retry_after : 60;
        return NGX_HTTP_HRIS_VERIFY_BUSY;
    }

    return NGX_HTTP_HRIS_VERIFY_FAILED;
}


/*
 * The status an error reported inside a 2xx body stands for (the table's
 * "errors.in_body" rules, the first that matches), or 0 when the body
 * reports none. 204 means "no records", another 2xx no error after all.
 */

ngx_uint_t
ngx_http_hris_body_status(ngx_pool_t *pool, ngx_http_hris_body_errors_t *be,
    json_t *body)
{
    json_t                     *v, *code, *s;
    size_t                      i;
    ngx_str_t                   msg, a, b;
    ngx_uint_t                  j, hit;
    ngx_http_hris_body_rule_t  *rule;

    if (!be->enabled) {
        return 0;
    }

    v = ngx_http_hris_path_get(&be->when, body, NULL);
    hit = 0;

    json_array_foreach(be->when_values, i, s) {
        if (v && json_equal(v, s)) {
            hit = 1;
        }
    }

    if (!hit) {
        return 0;
    }

    code = ngx_http_hris_path_get(&be->status, body, NULL);
    v = ngx_http_hris_path_get(&be->message, body, NULL);

    if (ngx_http_hris_json_text(pool, code, &a) != NGX_OK
        || ngx_http_hris_json_text(pool, v, &msg) != NGX_OK)
    {
        return NGX_HTTP_BAD_GATEWAY;
    }

    rule = be->rules.elts;

    for (j = 0; j < be->rules.nelts; j++) {
        hit = (rule[j].statuses == NULL);

        json_array_foreach(rule[j].statuses, i, s) {
            /* 2 and "2" are the same code */
            if (ngx_http_hris_json_text(pool, s, &b) == NGX_OK
                && a.len == b.len && ngx_strncmp(a.data, b.data, a.len) == 0)
            {
                hit = 1;
            }
        }

        if (hit && rule[j].message
            && ngx_regex_exec(rule[j].message, &msg, NULL, 0) < 0)
        {
            hit = 0;
        }

        if (hit) {
            return rule[j].http;
        }
    }

    return NGX_HTTP_BAD_GATEWAY;
}


static void
ngx_http_hris_verify_cleanup(void *data)
{
    ngx_http_hris_verify_t  *v = data;

    if (v->timer.timer_set) {
        ngx_del_timer(&v->timer);
    }
}

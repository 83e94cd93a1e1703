/*
 * ngx_http_hris_module: nginx as a self-hosted unified HRIS API.
 *
 * This file is the table of contents: directives, configuration and the
 * process hooks. The request paths live in src/: ngx_http_hris_unified.c
 * (GET /unified/hris/...), ngx_http_hris_proxy.c (/proxy/...); upstream
 * calls in ngx_http_hris_upstream.c, the walk of a provider's pages in
 * ngx_http_hris_walk.c; mapping tables in ngx_http_hris_table*.c and
 * ngx_http_hris_map.c (see README.md, "How it works").
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_redis.h"
#include "ngx_http_hris_idem.h"
#include "ngx_http_hris_webhooks_in.h"
#include "ngx_http_hris_fleet_links.h"


static void *ngx_http_hris_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_hris_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_hris_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_hris_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_hris_unified(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_hris_proxy(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_hris_admin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_hris_webhooks(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_hris_connect(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_hris_connect_url_check(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf);
static ngx_int_t ngx_http_hris_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_hris_unified_content(ngx_http_request_t *r);
static ngx_int_t ngx_http_hris_proxy_content(ngx_http_request_t *r);
static ngx_int_t ngx_http_hris_admin_content(ngx_http_request_t *r);
static ngx_int_t ngx_http_hris_webhooks_content(ngx_http_request_t *r);
static ngx_int_t ngx_http_hris_connect_content(ngx_http_request_t *r);
static ngx_int_t ngx_http_hris_unread_body(ngx_http_request_t *r,
    ngx_int_t rc);
static ngx_int_t ngx_http_hris_init_process(ngx_cycle_t *cycle);
static void ngx_http_hris_exit_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_http_hris_commands[] = {

    { ngx_string("hris_mappings"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hris_main_conf_t, mappings),
      NULL },

    { ngx_string("hris_accounts"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hris_main_conf_t, accounts_file),
      NULL },

    { ngx_string("hris_cursor_secret"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hris_main_conf_t, cursor_secret),
      NULL },

    { ngx_string("hris_mapping_overrides"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hris_main_conf_t, overrides_file),
      NULL },

    { ngx_string("hris_secrets_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hris_main_conf_t, secrets_key_file),
      NULL },

    { ngx_string("hris_state_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hris_main_conf_t, state_file),
      NULL },

    { ngx_string("hris_state_path"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_path_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hris_main_conf_t, state_path),
      NULL },

    { ngx_string("hris_idempotency_zone_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hris_main_conf_t, idem_size),
      NULL },

    { ngx_string("hris_zone_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hris_main_conf_t, shm_size),
      NULL },

    { ngx_string("hris_tenant_accounts"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hris_main_conf_t, tenant_accounts),
      NULL },

    { ngx_string("hris_allowed_urls"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_hris_allowed_urls,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("hris_credentials_cooldown"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hris_main_conf_t, credentials_cooldown),
      NULL },

    { ngx_string("hris_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_hris_redis_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hris_main_conf_t, redis),
      NULL },

    { ngx_string("hris_redis_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hris_main_conf_t, redis_timeout),
      NULL },

    { ngx_string("hris_redis_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hris_main_conf_t, redis_connect_timeout),
      NULL },

    { ngx_string("hris_unified"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_hris_unified,
      0,
      0,
      NULL },

    { ngx_string("hris_proxy"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_hris_proxy,
      0,
      0,
      NULL },

    { ngx_string("hris_admin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_hris_admin,
      0,
      0,
      NULL },

    { ngx_string("hris_webhooks"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_hris_webhooks,
      0,
      0,
      NULL },

    { ngx_string("hris_connect"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_hris_connect,
      0,
      0,
      NULL },

    { ngx_string("hris_connect_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hris_main_conf_t, connect_url),
      NULL },

    { ngx_string("hris_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hris_loc_conf_t, upstream.connect_timeout),
      NULL },

    { ngx_string("hris_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hris_loc_conf_t, upstream.timeout),
      NULL },

    { ngx_string("hris_retries"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hris_loc_conf_t, upstream.retries),
      NULL },

    { ngx_string("hris_retry_backoff"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hris_loc_conf_t, upstream.backoff),
      NULL },

    { ngx_string("hris_retry_after_max"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hris_loc_conf_t, upstream.retry_after_max),
      NULL },

    { ngx_string("hris_max_response_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hris_loc_conf_t, upstream.max_response),
      NULL },

    { ngx_string("hris_max_upstream_calls"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hris_loc_conf_t, max_calls),
      NULL },

    { ngx_string("hris_ssl_verify"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hris_loc_conf_t, upstream.ssl_verify),
      NULL },

    { ngx_string("hris_ssl_trusted_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hris_loc_conf_t, upstream.ca_file),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_hris_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_hris_create_main_conf,        /* create main configuration */
    ngx_http_hris_init_main_conf,          /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_hris_create_loc_conf,         /* create location configuration */
    ngx_http_hris_merge_loc_conf           /* merge location configuration */
};


ngx_module_t  ngx_http_hris_module = {
    NGX_MODULE_V1,
    &ngx_http_hris_module_ctx,             /* module context */
    ngx_http_hris_commands,                /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_hris_init_module,             /* init module */
    ngx_http_hris_init_process,            /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_hris_exit_process,            /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_hris_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_hris_main_conf_t));
    if (hmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     hmcf->mappings = { 0, NULL };
     *     hmcf->accounts_file = { 0, NULL };
     *     hmcf->cursor_secret = { 0, NULL };
     *     hmcf->used = 0;
     *     hmcf->key_new = 0;
     */

    hmcf->shm_size = NGX_CONF_UNSET_SIZE;
    hmcf->idem_size = NGX_CONF_UNSET_SIZE;
    hmcf->tenant_accounts = NGX_CONF_UNSET_UINT;
    hmcf->credentials_cooldown = NGX_CONF_UNSET;
    hmcf->redis_timeout = NGX_CONF_UNSET_MSEC;
    hmcf->redis_connect_timeout = NGX_CONF_UNSET_MSEC;

    return hmcf;
}


static char *
ngx_http_hris_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_hris_main_conf_t *hmcf = conf;

    ngx_http_hris_redis_conf_t  *rcf;

    ngx_conf_init_size_value(hmcf->shm_size, 1024 * 1024);
    ngx_conf_init_size_value(hmcf->idem_size, 4 * 1024 * 1024);
    ngx_conf_init_uint_value(hmcf->tenant_accounts, 1000);
    ngx_conf_init_value(hmcf->credentials_cooldown, 60);
    ngx_conf_init_msec_value(hmcf->redis_timeout, 1000);
    ngx_conf_init_msec_value(hmcf->redis_connect_timeout, 1000);

    if (hmcf->shm_size < 8 * ngx_pagesize) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: \"hris_zone_size\" "
                           "must be at least %uz", 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    if (hmcf->tenant_accounts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: "
                           "\"hris_tenant_accounts\" must be at least 1");
        return NGX_CONF_ERROR;
    }

    if (hmcf->idem_size < 8 * ngx_pagesize) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: "
                           "\"hris_idempotency_zone_size\" must be at least "
                           "%uz", 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    if (hmcf->mappings.len == 0 && hmcf->accounts_file.len == 0) {
        if (hmcf->used) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: \"hris_mappings\" "
                               "and \"hris_accounts\" are required in the "
                               "http block");
            return NGX_CONF_ERROR;
        }
        return NGX_CONF_OK;
    }

    if (hmcf->mappings.len == 0 || hmcf->accounts_file.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: \"hris_mappings\" and "
                           "\"hris_accounts\" go together");
        return NGX_CONF_ERROR;
    }

    if (ngx_conf_full_name(cf->cycle, &hmcf->mappings, 1) != NGX_OK
        || ngx_conf_full_name(cf->cycle, &hmcf->accounts_file, 1) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    while (hmcf->mappings.len > 1
           && hmcf->mappings.data[hmcf->mappings.len - 1] == '/')
    {
        hmcf->mappings.len--;
    }

    if (ngx_http_hris_schema_load(cf, hmcf) != NGX_OK
        || ngx_http_hris_overrides_load(cf, hmcf) != NGX_OK
        || ngx_http_hris_tables_load(cf, hmcf) != NGX_OK
        || ngx_http_hris_secrets_key_load(cf, hmcf) != NGX_OK
        || ngx_http_hris_state_dir(cf, hmcf) != NGX_OK
        || ngx_http_hris_cursor_key_load(cf, hmcf) != NGX_OK
        || ngx_http_hris_offload_init_conf(cf, hmcf) != NGX_OK
        || ngx_http_hris_state_load(cf, hmcf) != NGX_OK
        || ngx_http_hris_accounts_load(cf, hmcf) != NGX_OK
        || ngx_http_hris_shm_add(cf, hmcf) != NGX_OK
        || ngx_http_hris_idem_init_conf(cf, hmcf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_hris_connect_url_check(cf, hmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    rcf = hmcf->redis;

    if (rcf) {
        rcf->timeout = hmcf->redis_timeout;
        rcf->connect_timeout = hmcf->redis_connect_timeout;

        if (ngx_http_hris_redis_check(cf, rcf) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    /* with hris_redis and no secret, each worker adopts the fleet's key */
    hmcf->cursor_key_ready = (rcf == NULL || hmcf->cursor_secret.len);

    return NGX_CONF_OK;
}


/* hris_connect_url: an absolute URL with a path, which gets a final "/" */

static ngx_int_t
ngx_http_hris_connect_url_check(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf)
{
    u_char     *p, *host;
    ngx_str_t  *u = &hmcf->connect_url;

    if (u->len == 0) {
        return NGX_OK;
    }

    host = NULL;

    if (u->len > 7 && ngx_strncasecmp(u->data, (u_char *) "http://", 7) == 0) {
        host = u->data + 7;

    } else if (u->len > 8
               && ngx_strncasecmp(u->data, (u_char *) "https://", 8) == 0)
    {
        host = u->data + 8;
    }

    for (p = u->data; host && p < u->data + u->len; p++) {
        if (*p <= ' ' || *p == '?' || *p == '#' || *p == 0x7f) {
            host = NULL;
        }
    }

    if (host == NULL || ngx_strlchr(host, u->data + u->len, '/') == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: \"hris_connect_url\" "
                           "must be an absolute http:// or https:// URL with "
                           "the connect location's path, e.g. "
                           "https://gw.example.com/connect/, not \"%V\"", u);
        return NGX_ERROR;
    }

    if (u->data[u->len - 1] != '/') {
        p = ngx_pnalloc(cf->pool, u->len + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }
        ngx_memcpy(p, u->data, u->len);
        p[u->len++] = '/';
        u->data = p;
    }

    return NGX_OK;
}


static void *
ngx_http_hris_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_hris_loc_conf_t  *hlcf;

    hlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_hris_loc_conf_t));
    if (hlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     hlcf->upstream.ca_file = { 0, NULL };
     */

    hlcf->upstream.connect_timeout = NGX_CONF_UNSET_MSEC;
    hlcf->upstream.timeout = NGX_CONF_UNSET_MSEC;
    hlcf->upstream.retries = NGX_CONF_UNSET_UINT;
    hlcf->upstream.backoff = NGX_CONF_UNSET_MSEC;
    hlcf->upstream.retry_after_max = NGX_CONF_UNSET_MSEC;
    hlcf->upstream.max_response = NGX_CONF_UNSET_SIZE;
    hlcf->upstream.ssl_verify = NGX_CONF_UNSET;
    hlcf->max_calls = NGX_CONF_UNSET_UINT;

    return hlcf;
}


static char *
ngx_http_hris_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_hris_loc_conf_t *prev = parent;
    ngx_http_hris_loc_conf_t *conf = child;

    ngx_conf_merge_msec_value(conf->upstream.connect_timeout,
                              prev->upstream.connect_timeout, 5000);
    ngx_conf_merge_msec_value(conf->upstream.timeout,
                              prev->upstream.timeout, 30000);
    ngx_conf_merge_uint_value(conf->upstream.retries,
                              prev->upstream.retries, 3);
    ngx_conf_merge_msec_value(conf->upstream.backoff,
                              prev->upstream.backoff, 200);
    ngx_conf_merge_msec_value(conf->upstream.retry_after_max,
                              prev->upstream.retry_after_max, 10000);
    ngx_conf_merge_size_value(conf->upstream.max_response,
                              prev->upstream.max_response, 64 * 1024 * 1024);
    ngx_conf_merge_value(conf->upstream.ssl_verify,
                         prev->upstream.ssl_verify, 1);
    ngx_conf_merge_uint_value(conf->max_calls, prev->max_calls,
                              NGX_HTTP_HRIS_MAX_CALLS);
    ngx_conf_merge_str_value(conf->upstream.ca_file,
                             prev->upstream.ca_file, "");

    if (conf->upstream.ca_file.data == prev->upstream.ca_file.data) {
        conf->upstream.ca_pem = prev->upstream.ca_pem;
    }

    if (ngx_http_hris_upstream_ca_load(cf, &conf->upstream) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (conf->max_calls == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "hris_max_upstream_calls must be at least 1");
        return NGX_CONF_ERROR;
    }

    if (conf->upstream.retries > 10) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "hris_retries must be between 0 and 10");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_hris_set_handler(ngx_conf_t *cf, ngx_http_handler_pt handler)
{
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_hris_main_conf_t  *hmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    if (clcf->handler) {
        return "is duplicate or conflicts with another content handler";
    }

    clcf->handler = handler;

    hmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_hris_module);
    hmcf->used = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_hris_unified(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    return ngx_http_hris_set_handler(cf, ngx_http_hris_unified_content);
}


static char *
ngx_http_hris_proxy(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    return ngx_http_hris_set_handler(cf, ngx_http_hris_proxy_content);
}


static char *
ngx_http_hris_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    return ngx_http_hris_set_handler(cf, ngx_http_hris_admin_content);
}


static char *
ngx_http_hris_webhooks(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    if (ngx_http_hris_webhooks_conf(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_hris_set_handler(cf, ngx_http_hris_webhooks_content);
}


static char *
ngx_http_hris_connect(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_hris_main_conf_t  *hmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    hmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_hris_module);

    /* links point to the first such location unless hris_connect_url says */
    if (hmcf->connect_location.len == 0) {
        hmcf->connect_location = clcf->name;
    }

    return ngx_http_hris_set_handler(cf, ngx_http_hris_connect_content);
}


/*
 * The content handlers. Each API answers some requests before it reads
 * their body: a bad or missing key, an unknown account or link, a wrong
 * path or method. nginx would then take the unread body for the next
 * request on a keep-alive connection (request smuggling: a request hidden
 * in a body would be served). Whatever a handler answered, a body it
 * neither read nor discarded is discarded here. Each request gets its
 * record for metrics and log variables first (ngx_http_hris_metrics.h).
 */

static ngx_int_t
ngx_http_hris_unified_content(ngx_http_request_t *r)
{
    ngx_http_hris_observe(r, NGX_HTTP_HRIS_API_UNIFIED);

    return ngx_http_hris_unread_body(r, ngx_http_hris_unified_handler(r));
}


static ngx_int_t
ngx_http_hris_proxy_content(ngx_http_request_t *r)
{
    ngx_http_hris_observe(r, NGX_HTTP_HRIS_API_PROXY);

    return ngx_http_hris_unread_body(r, ngx_http_hris_proxy_handler(r));
}


static ngx_int_t
ngx_http_hris_admin_content(ngx_http_request_t *r)
{
    ngx_http_hris_observe(r, NGX_HTTP_HRIS_API_ADMIN);

    return ngx_http_hris_unread_body(r, ngx_http_hris_admin_handler(r));
}


static ngx_int_t
ngx_http_hris_webhooks_content(ngx_http_request_t *r)
{
    return ngx_http_hris_unread_body(r, ngx_http_hris_webhooks_handler(r));
}


static ngx_int_t
ngx_http_hris_connect_content(ngx_http_request_t *r)
{
    ngx_http_hris_observe(r, NGX_HTTP_HRIS_API_CONNECT);

    return ngx_http_hris_unread_body(r, ngx_http_hris_connect_handler(r));
}


/*
 * r is alive here whatever rc is: a handler that returns NGX_DONE holds a
 * reference of its own. A discard that has to wait for the rest of the
 * body holds one too (r->discard_body), and nginx finishes it after the
 * answer, as after any answer sent before the body was read.
 */

static ngx_int_t
ngx_http_hris_unread_body(ngx_http_request_t *r, ngx_int_t rc)
{
    if (r != r->main || r->discard_body || r->request_body
        || (r->headers_in.content_length_n <= 0 && !r->headers_in.chunked))
    {
        return rc;
    }

    /* an answer is out (or on its way): no "100 Continue" after it */
    r->expect_tested = 1;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        /* a malformed body: the connection cannot be trusted any further */
        r->keepalive = 0;
    }

    return rc;
}


/* In the master, once nginx has created its paths (the state directory). */

static ngx_int_t
ngx_http_hris_init_module(ngx_cycle_t *cycle)
{
    ngx_http_hris_main_conf_t  *hmcf;

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_core_module)
        == NULL)
    {
        return NGX_OK;
    }

    hmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_hris_module);
    if (hmcf == NULL || hmcf->state_path == NULL) {
        return NGX_OK;
    }

    return ngx_http_hris_state_dir_init(cycle, hmcf);
}


static ngx_int_t
ngx_http_hris_init_process(ngx_cycle_t *cycle)
{
    ngx_http_hris_main_conf_t  *hmcf;

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_core_module)
        == NULL)
    {
        return NGX_OK;
    }

    hmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_hris_module);
    if (hmcf == NULL || !hmcf->used) {
        return NGX_OK;
    }

    if (ngx_http_hris_upstream_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    /* workers only: not the cache manager and loader, which serve nothing */
    if (hmcf->redis == NULL
        || (ngx_process != NGX_PROCESS_WORKER
            && ngx_process != NGX_PROCESS_SINGLE))
    {
        return NGX_OK;
    }

    if (ngx_http_hris_redis_init_process(cycle, hmcf->redis) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_hris_cursor_key_init_process(cycle, hmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_hris_fleet_cooldown_init_process(cycle, hmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_hris_accounts_sync_init_process(cycle, hmcf);
}


static void
ngx_http_hris_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_hris_main_conf_t  *hmcf;

    ngx_http_hris_upstream_exit_process(cycle);
    ngx_http_hris_digest_free();

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_core_module)
        == NULL)
    {
        return;
    }

    hmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_hris_module);

    if (hmcf) {
        /* a change a coalesced write of the state file lacks */
        ngx_http_hris_state_exit(hmcf, cycle->log);
    }

    if (hmcf && hmcf->redis) {
        ngx_http_hris_redis_exit_process(hmcf->redis);
    }
}


/* A query parameter, percent-decoded into the request pool. */

ngx_int_t
ngx_http_hris_arg(ngx_http_request_t *r, const char *name, ngx_str_t *value)
{
    u_char     *dst, *src;
    size_t      i;
    ngx_str_t   raw;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &raw) != NGX_OK) {
        return NGX_DECLINED;
    }

    dst = ngx_pnalloc(r->pool, raw.len + 1);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    /* "+" is a space in query strings; r->args itself stays as it is */
    for (i = 0; i < raw.len; i++) {
        dst[i] = (raw.data[i] == '+') ? ' ' : raw.data[i];
    }

    value->data = dst;
    src = dst;

    ngx_unescape_uri(&dst, &src, raw.len, 0);
    value->len = dst - value->data;
    *dst = '\0';

    return NGX_OK;
}


/* The part of the URI after the location's prefix. */

ngx_int_t
ngx_http_hris_subpath(ngx_http_request_t *r, ngx_str_t *rest)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    *rest = r->uri;

    if (!clcf->regex && r->uri.len >= clcf->name.len
        && ngx_strncmp(r->uri.data, clcf->name.data, clcf->name.len) == 0)
    {
        rest->data += clcf->name.len;
        rest->len -= clcf->name.len;
    }

    while (rest->len && rest->data[0] == '/') {
        rest->data++;
        rest->len--;
    }

    return NGX_OK;
}

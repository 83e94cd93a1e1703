/*
 * Webhooks out: the module that holds their directives and zone
 * ("ngx_http_hris_events_module", after ngx_http_hris_module in the
 * config, so that the gateway's main configuration is read before ours),
 * and small helpers of the other webhooks files (see webhooks.h).
 *
 *   hris_webhook_zone_size SIZE       the "hris_webhooks" zone (1m)
 *   hris_webhook_tenant_size SIZE     a tenant's share of its undelivered
 *                                     events (a quarter, at least 64k)
 *   hris_webhook_timeout TIME         one attempt's longest wait (15s)
 *   hris_webhook_retry_delays TIME... the waits before each retry
 *                                     (5s 5m 30m 2h 5h 10h 10h)
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/rand.h>

#include "ngx_http_hris_events.h"
#include "ngx_http_hris_webhooks.h"


#define NGX_HTTP_HRIS_WH_MAGIC   0x6b6f6f68          /* "hook" */
#define NGX_HTTP_HRIS_WH_LAYOUT  1


static void *ngx_http_hris_events_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_hris_events_init_main_conf(ngx_conf_t *cf,
    void *conf);
static char *ngx_http_hris_wh_delays(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_hris_wh_zone_init(ngx_shm_zone_t *zone,
    void *data);
static ngx_int_t ngx_http_hris_events_init_process(ngx_cycle_t *cycle);
static void ngx_http_hris_events_exit_process(ngx_cycle_t *cycle);


static const char  *ngx_http_hris_wh_types[] = {
    "integrated_account.created",
    "integrated_account.deleted",
    "integrated_account.needs_reauth",
    "integrated_account.reactivated",
    "record.created",
    "record.updated",
    "record.deleted",
    NULL
};


/* the default retry schedule: about 28 hours in all */
static ngx_msec_t  ngx_http_hris_wh_default_delays[] = {
    5000, 300000, 1800000, 7200000, 18000000, 36000000, 36000000
};


static ngx_command_t  ngx_http_hris_events_commands[] = {

    { ngx_string("hris_webhook_zone_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hris_wh_conf_t, size),
      NULL },

    { ngx_string("hris_webhook_tenant_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hris_wh_conf_t, tenant_size),
      NULL },

    { ngx_string("hris_webhook_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hris_wh_conf_t, timeout),
      NULL },

    { ngx_string("hris_webhook_retry_delays"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_hris_wh_delays,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_hris_events_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */
    ngx_http_hris_events_create_main_conf, /* create main configuration */
    ngx_http_hris_events_init_main_conf,   /* init main configuration */
    NULL, NULL, NULL, NULL
};


ngx_module_t  ngx_http_hris_events_module = {
    NGX_MODULE_V1,
    &ngx_http_hris_events_module_ctx,      /* module context */
    ngx_http_hris_events_commands,         /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_hris_events_init_process,     /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_hris_events_exit_process,     /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_hris_events_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_hris_wh_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_hris_wh_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->size = NGX_CONF_UNSET_SIZE;
    conf->tenant_size = NGX_CONF_UNSET_SIZE;
    conf->timeout = NGX_CONF_UNSET_MSEC;
    conf->delays = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_hris_wh_delays(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_hris_wh_conf_t  *whcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;
    ngx_msec_t  *d;

    if (whcf->delays != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    if (cf->args->nelts - 1 > NGX_HTTP_HRIS_WH_DELAYS_MAX) {
        return "takes at most 16 delays";
    }

    whcf->delays = ngx_array_create(cf->pool, cf->args->nelts,
                                    sizeof(ngx_msec_t));
    if (whcf->delays == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        d = ngx_array_push(whcf->delays);
        *d = ngx_parse_time(&value[i], 0);

        if (*d == (ngx_msec_t) NGX_ERROR || *d == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid delay \"%V\" "
                               "(a time above 0, e.g. 5s or 2h)", &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_hris_events_init_main_conf(ngx_conf_t *cf, void *c)
{
    ngx_http_hris_wh_conf_t  *conf = c;

    ngx_uint_t                  i;
    ngx_msec_t                 *d;
    ngx_shm_zone_t             *zone;
    ngx_http_hris_main_conf_t  *hmcf;
    ngx_str_t                   name = ngx_string("hris_webhooks");

    ngx_conf_init_size_value(conf->size, 1024 * 1024);
    ngx_conf_init_msec_value(conf->timeout, 15000);

    if (conf->delays == NGX_CONF_UNSET_PTR) {
        conf->delays = ngx_array_create(cf->pool, 8, sizeof(ngx_msec_t));
        if (conf->delays == NULL) {
            return NGX_CONF_ERROR;
        }

        for (i = 0; i < sizeof(ngx_http_hris_wh_default_delays)
                        / sizeof(ngx_msec_t); i++)
        {
            d = ngx_array_push(conf->delays);
            *d = ngx_http_hris_wh_default_delays[i];
        }
    }

    if (conf->size < 8 * ngx_pagesize) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"hris_webhook_zone_size\" "
                           "must be at least %uz", 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    /*
     * A tenant's undelivered events may take this much of the zone, so
     * that a few tenants whose receivers are down cannot fill it for all
     */
    ngx_conf_init_size_value(conf->tenant_size,
                             ngx_max(conf->size / 4,
                                     NGX_HTTP_HRIS_WH_TENANT_FLOOR));

    if (conf->tenant_size < 2 * NGX_HTTP_HRIS_WH_BODY_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"hris_webhook_tenant_size"
                           "\" must be at least %uz, so that the largest "
                           "event fits",
                           (size_t) 2 * NGX_HTTP_HRIS_WH_BODY_MAX);
        return NGX_CONF_ERROR;
    }

    hmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_hris_module);

    /* ngx_http_hris_module's configuration is read: is the gateway on? */
    if (hmcf == NULL || hmcf->accounts_file.len == 0) {
        return NGX_CONF_OK;
    }

    conf->hmcf = hmcf;
    conf->enabled = 1;
    conf->concurrency = 8;

    conf->upstream.connect_timeout = ngx_min(conf->timeout, 10000);
    conf->upstream.timeout = conf->timeout;
    conf->upstream.retries = 0;
    conf->upstream.max_response = 16384;
    conf->upstream.ssl_verify = 1;
    conf->upstream.retry_after_max = NGX_HTTP_HRIS_WH_RA_MAX * 1000;

    if (ngx_http_hris_wh_spool_read(cf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    zone = ngx_shared_memory_add(cf, &name, conf->size,
                                 &ngx_http_hris_events_module);
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone->init = ngx_http_hris_wh_zone_init;
    zone->data = conf;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_hris_wh_zone_init(ngx_shm_zone_t *zone, void *data)
{
    ngx_http_hris_wh_conf_t  *conf = zone->data;
    ngx_http_hris_wh_sh_t    *sh;

    conf->shpool = (ngx_slab_pool_t *) zone->shm.addr;

    /* a reload keeps the zone: newer than any file */
    if (data || zone->shm.exists) {
        sh = conf->shpool->data;

        if (sh == NULL || sh->magic != NGX_HTTP_HRIS_WH_MAGIC
            || sh->layout != NGX_HTTP_HRIS_WH_LAYOUT)
        {
            ngx_log_error(NGX_LOG_EMERG, zone->shm.log, 0, "hris: the "
                          "shared memory zone \"hris_webhooks\" was laid "
                          "out by another build of the module: restart "
                          "nginx to use this build (webhooks.json keeps "
                          "the subscriptions and events)");
            return NGX_ERROR;
        }

        conf->sh = sh;
        return NGX_OK;
    }

    sh = ngx_slab_calloc(conf->shpool, sizeof(ngx_http_hris_wh_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    conf->sh = sh;
    conf->shpool->data = sh;
    sh->magic = NGX_HTTP_HRIS_WH_MAGIC;
    sh->layout = NGX_HTTP_HRIS_WH_LAYOUT;
    ngx_queue_init(&sh->subs);
    ngx_queue_init(&sh->dlvs);

    /* snapshots are numbered on from the file's (see the spool) */
    ngx_http_hris_file_mark_init(&sh->mark, conf->serial);

    conf->shpool->log_ctx = ngx_slab_alloc(conf->shpool,
                                           sizeof(" in hris_webhooks zone"));
    if (conf->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(conf->shpool->log_ctx, " in hris_webhooks zone%Z");

    /* a full zone is said once per event, not as a slab alert */
    conf->shpool->log_nomem = 0;

    return ngx_http_hris_wh_seed(conf, zone->shm.log);
}


static ngx_int_t
ngx_http_hris_events_init_process(ngx_cycle_t *cycle)
{
    ngx_http_hris_wh_conf_t  *conf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    conf = ngx_http_hris_wh_conf();
    if (conf == NULL || !conf->enabled || !conf->hmcf->used) {
        return NGX_OK;
    }

    if (ngx_http_hris_wh_deliver_init_process(cycle, conf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_hris_wh_fleet_init_process(cycle, conf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_hris_wh_queue_init_process(cycle, conf);
}


static void
ngx_http_hris_events_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_hris_wh_conf_t  *conf;

    conf = ngx_http_hris_wh_conf();
    if (conf == NULL || !conf->enabled) {
        return;
    }

    ngx_http_hris_wh_queue_exit_process(conf);
    ngx_http_hris_wh_spool_exit(conf, cycle->log);
}


/* this cycle's configuration, or NULL (no http block) */

ngx_http_hris_wh_conf_t *
ngx_http_hris_wh_conf(void)
{
    if (ngx_http_cycle_get_module_main_conf(ngx_cycle, ngx_http_core_module)
        == NULL)
    {
        return NULL;
    }

    return ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_hris_events_module);
}


uint64_t
ngx_http_hris_wh_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (uint64_t) tp->sec * 1000 + tp->msec;
}


/* prefix + len - strlen(prefix) random base64url characters */

void
ngx_http_hris_wh_random_id(u_char *out, const char *prefix, size_t len)
{
    long       r;
    size_t     plen;
    uint64_t   now;
    u_char     raw[24];
    ngx_str_t  src, dst;
    u_char     enc[32];

    plen = ngx_strlen(prefix);

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        /* not expected; ids need only be unique, not secret */
        now = ngx_http_hris_wh_now();
        r = ngx_random();
        ngx_memzero(raw, sizeof(raw));
        ngx_memcpy(raw, &r, sizeof(r));
        ngx_memcpy(raw + 8, &now, sizeof(now));
        ngx_memcpy(raw + 16, &ngx_pid, sizeof(ngx_pid));
    }

    src.data = raw;
    src.len = 18;
    dst.data = enc;
    ngx_encode_base64url(&dst, &src);

    ngx_memcpy(out, prefix, plen);
    ngx_memcpy(out + plen, enc, len - plen);
}


ngx_uint_t
ngx_http_hris_wh_type_known(const char *type, size_t len)
{
    ngx_uint_t  i;

    for (i = 0; ngx_http_hris_wh_types[i]; i++) {
        if (ngx_strlen(ngx_http_hris_wh_types[i]) == len
            && ngx_strncmp(ngx_http_hris_wh_types[i], type, len) == 0)
        {
            return 1;
        }
    }

    return 0;
}



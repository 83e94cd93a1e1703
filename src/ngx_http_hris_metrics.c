/*
 * /metrics: Prometheus text format 0.0.4, summed across workers
 * (CONTRACT.md §10).
 *
 * A shared-memory increment per request costs every worker a lock, so
 * each worker counts in its own memory and folds its counts into the
 * shared zone once a second (and when it exits, and before it answers a
 * scrape itself). A worker that crashes loses at most its last second.
 *
 * Labels are bounded by the configuration: providers are the mapping
 * tables, resources and fields the schema, statuses HTTP codes; nothing
 * a client sends becomes a label. Counters keyed by status live in a
 * hash (a few dozen codes show up, out of 500 possible); the others are
 * dense arrays, one row per provider. The zone ("hris_metrics", its own:
 * the module's main zone is not touched) is sized from the tables and
 * the schema and kept across reloads while its layout stays the same.
 *
 * This file also holds ngx_http_hris_metrics_module, the second module
 * of the .so: its request context is the per-request record of
 * ngx_http_hris_metrics.h, its log-phase handler counts each request
 * once it is over, and its preconfiguration adds the log variables.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_metrics.h"


/* the keys of the hash: metric, api, provider, resource, status */
#define NGX_HTTP_HRIS_M_REQUESTS      1
#define NGX_HTTP_HRIS_M_UPSTREAM      2
/* with hris_metrics_account_label: status class, 48 bits of the id's hash */
#define NGX_HTTP_HRIS_M_ACCOUNT       3

#define ngx_http_hris_mkey(m, api, prov, res, status)                        \
    (((uint64_t) (m) << 56) | ((uint64_t) (api) << 48)                       \
     | ((uint64_t) (prov) << 32) | ((uint64_t) (res) << 16)                  \
     | (uint64_t) (status))

#define ngx_http_hris_mkey_api(k)     (((k) >> 48) & 0xff)
#define ngx_http_hris_mkey_prov(k)    (((k) >> 32) & 0xffff)
#define ngx_http_hris_mkey_res(k)     (((k) >> 16) & 0xffff)
#define ngx_http_hris_mkey_status(k)  ((k) & 0xffff)

/* statuses one label set may show before the hash is full */
#define NGX_HTTP_HRIS_M_STATUSES      32

#define NGX_HTTP_HRIS_M_FLUSH         1000      /* ms */

/* hris_upstream_duration_seconds: buckets (microseconds), then +Inf */
#define NGX_HTTP_HRIS_M_BUCKETS       13

/* a provider's row of dense counters */
#define NGX_HTTP_HRIS_ROW_HIST        0
#define NGX_HTTP_HRIS_ROW_SUM         (NGX_HTTP_HRIS_ROW_HIST                \
                                       + NGX_HTTP_HRIS_M_BUCKETS)
#define NGX_HTTP_HRIS_ROW_RETRIES     (NGX_HTTP_HRIS_ROW_SUM + 1)
#define NGX_HTTP_HRIS_ROW_TOKEN       (NGX_HTTP_HRIS_ROW_RETRIES + 1)
#define NGX_HTTP_HRIS_ROW_COVER       (NGX_HTTP_HRIS_ROW_TOKEN + 3)

/*
 * After the rows, the counters that belong to no provider: state store
 * errors (file, redis), Redis commands (ok, error, unreachable), events
 * by type (the seven of CONTRACT section 8, then "other"), webhook
 * deliveries by result, provider webhooks received by status class.
 */
#define NGX_HTTP_HRIS_G_STATE         0
#define NGX_HTTP_HRIS_G_REDIS         (NGX_HTTP_HRIS_G_STATE + 2)
#define NGX_HTTP_HRIS_G_EVENTS        (NGX_HTTP_HRIS_G_REDIS + 3)
#define NGX_HTTP_HRIS_G_DELIVERY      (NGX_HTTP_HRIS_G_EVENTS + 8)
#define NGX_HTTP_HRIS_G_WEBHOOK_IN    (NGX_HTTP_HRIS_G_DELIVERY + 6)
#define NGX_HTTP_HRIS_G_COUNT         (NGX_HTTP_HRIS_G_WEBHOOK_IN + 6)

/* the dense counters: a row per provider and "none", then the globals */
#define ngx_http_hris_metrics_ndense(mcf)                                    \
    (((mcf)->providers + 1) * (mcf)->row + NGX_HTTP_HRIS_G_COUNT)

/* accounts the hash makes room for besides the accounts file's */
#define NGX_HTTP_HRIS_M_ACCOUNTS_EXTRA  1024

/* a line's fixed part, its label values aside */
#define NGX_HTTP_HRIS_M_LINE          256


typedef struct {
    uint64_t                     key;         /* 0: empty */
    uint64_t                     value;
} ngx_http_hris_mentry_t;


/* in the shared zone */
typedef struct {
    uint32_t                     layout;
    ngx_uint_t                   capacity;
    ngx_uint_t                   used;
    uint64_t                     dropped;     /* counts the hash had no
                                                 room for */
    ngx_http_hris_mentry_t      *entries;
    uint64_t                    *dense;
} ngx_http_hris_mshm_t;


typedef struct {
    ngx_flag_t                   enabled;     /* a location says hris_metrics */
    ngx_flag_t                   account_label;
    ngx_shm_zone_t              *zone;
    ngx_http_hris_mshm_t        *sh;
    ngx_http_hris_main_conf_t   *hmcf;
    ngx_uint_t                   providers;   /* P; row P is "none" */
    ngx_uint_t                   resources;   /* R */
    ngx_uint_t                   row;         /* counters per provider */
    ngx_uint_t                  *cover;       /* per resource: its offset
                                                 in a row after _COVER */
    ngx_uint_t                   capacity;    /* hash entries, power of 2 */
    size_t                       label_max;   /* longest label value */
    uint32_t                     layout;      /* what the keys mean */
} ngx_http_hris_metrics_conf_t;


/* this worker's counts since its last flush */
typedef struct {
    ngx_http_hris_metrics_conf_t  *mcf;
    ngx_http_hris_mentry_t        *entries;
    ngx_uint_t                     capacity;
    ngx_uint_t                     used;
    uint64_t                      *dense;
    ngx_uint_t                     ndense;
    ngx_event_t                    timer;
    ngx_connection_t               timer_conn;  /* fd -1: for debug logs */
} ngx_http_hris_mworker_t;


/* the output of a scrape: a chain of buffers */
typedef struct {
    ngx_http_request_t          *request;
    ngx_chain_t                 *first;
    ngx_chain_t                **last;
    ngx_buf_t                   *b;
    size_t                       line;        /* room a line may need */
} ngx_http_hris_mout_t;


static ngx_int_t ngx_http_hris_metrics_preconf(ngx_conf_t *cf);
static ngx_int_t ngx_http_hris_metrics_postconf(ngx_conf_t *cf);
static void *ngx_http_hris_metrics_create_conf(ngx_conf_t *cf);
static char *ngx_http_hris_metrics_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_hris_metrics_layout(ngx_conf_t *cf,
    ngx_http_hris_metrics_conf_t *mcf);
static ngx_int_t ngx_http_hris_metrics_init_zone(ngx_shm_zone_t *zone,
    void *data);
static ngx_int_t ngx_http_hris_metrics_alloc(ngx_slab_pool_t *shpool,
    ngx_http_hris_metrics_conf_t *mcf, ngx_http_hris_mshm_t *sh);
static ngx_int_t ngx_http_hris_metrics_init_process(ngx_cycle_t *cycle);
static void ngx_http_hris_metrics_exit_process(ngx_cycle_t *cycle);
static void ngx_http_hris_metrics_timer(ngx_event_t *ev);
static void ngx_http_hris_metrics_flush(void);
static void ngx_http_hris_metrics_add(uint64_t key);
static ngx_uint_t ngx_http_hris_metrics_hash(uint64_t key);
static ngx_int_t ngx_http_hris_metrics_log(ngx_http_request_t *r);
static ngx_uint_t ngx_http_hris_metrics_slot(ngx_http_hris_req_t *req);
static uint64_t ngx_http_hris_metrics_account_hash(ngx_str_t *id);
static void ngx_http_hris_metrics_global(ngx_uint_t i);
static ngx_int_t ngx_http_hris_metrics_write_accounts(
    ngx_http_hris_mout_t *out, ngx_http_hris_metrics_conf_t *mcf,
    ngx_array_t *entries);
static ngx_int_t ngx_http_hris_metrics_write_global(ngx_http_hris_mout_t *out,
    uint64_t *g);
static ngx_int_t ngx_http_hris_metrics_write_list(ngx_http_hris_mout_t *out,
    const char *name, const char *help, const char *label,
    const char **values, ngx_uint_t n, ngx_uint_t always, uint64_t *c);
static int ngx_libc_cdecl ngx_http_hris_metrics_name_cmp(const void *a,
    const void *b);
static ngx_int_t ngx_http_hris_metrics_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_hris_metrics_snapshot(ngx_http_request_t *r,
    ngx_http_hris_metrics_conf_t *mcf, ngx_array_t *entries,
    uint64_t **dense, uint64_t *dropped);
static ngx_int_t ngx_http_hris_metrics_accounts(ngx_http_request_t *r,
    ngx_http_hris_metrics_conf_t *mcf, uint64_t *counts);
static ngx_int_t ngx_http_hris_metrics_write(ngx_http_hris_mout_t *out,
    ngx_http_hris_metrics_conf_t *mcf, ngx_array_t *entries,
    uint64_t *dense, uint64_t *accounts, uint64_t dropped);
static ngx_int_t ngx_http_hris_metrics_write_dense(ngx_http_hris_mout_t *out,
    ngx_http_hris_metrics_conf_t *mcf, uint64_t *dense);
static ngx_int_t ngx_http_hris_metrics_write_cover(ngx_http_hris_mout_t *out,
    ngx_http_hris_metrics_conf_t *mcf, uint64_t *dense);
static u_char *ngx_http_hris_metrics_room(ngx_http_hris_mout_t *out);
static u_char *ngx_http_hris_metrics_head(ngx_http_hris_mout_t *out,
    const char *name, const char *type, const char *help);
static u_char *ngx_http_hris_metrics_esc(u_char *p, ngx_str_t *v);
static ngx_str_t *ngx_http_hris_metrics_pname(
    ngx_http_hris_metrics_conf_t *mcf, ngx_uint_t slot);
static ngx_str_t *ngx_http_hris_metrics_rname(
    ngx_http_hris_metrics_conf_t *mcf, ngx_uint_t slot);
static int ngx_libc_cdecl ngx_http_hris_metrics_cmp(const void *a,
    const void *b);


static ngx_command_t  ngx_http_hris_metrics_commands[] = {

    { ngx_string("hris_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_hris_metrics_directive,
      0,
      0,
      NULL },

    { ngx_string("hris_metrics_account_label"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hris_metrics_conf_t, account_label),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_hris_metrics_module_ctx = {
    ngx_http_hris_metrics_preconf,         /* preconfiguration */
    ngx_http_hris_metrics_postconf,        /* postconfiguration */

    ngx_http_hris_metrics_create_conf,     /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_hris_metrics_module = {
    NGX_MODULE_V1,
    &ngx_http_hris_metrics_module_ctx,     /* module context */
    ngx_http_hris_metrics_commands,        /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_hris_metrics_init_process,    /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_hris_metrics_exit_process,    /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static const char  *ngx_http_hris_api_names[] = {
    "unified", "proxy", "admin", "connect"
};

static const char  *ngx_http_hris_token_results[] = {
    "ok", "refused", "error"
};

static uint64_t  ngx_http_hris_bucket_us[NGX_HTTP_HRIS_M_BUCKETS - 1] = {
    5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
    5000000, 10000000, 30000000
};

static const char  *ngx_http_hris_bucket_le[NGX_HTTP_HRIS_M_BUCKETS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
    "5", "10", "30", "+Inf"
};

static const char  *ngx_http_hris_store_names[] = { "file", "redis" };

static const char  *ngx_http_hris_redis_results[] = {
    "ok", "error", "unreachable"
};

/* CONTRACT section 8's event types; anything else is "other" */
static const char  *ngx_http_hris_event_types[] = {
    "integrated_account.created", "integrated_account.deleted",
    "integrated_account.needs_reauth", "integrated_account.reactivated",
    "record.created", "record.updated", "record.deleted", "other"
};

/* a 410 ends a subscription: apart from the other 4xx */
static const char  *ngx_http_hris_delivery_results[] = {
    "2xx", "4xx", "5xx", "410", "no_answer", "other"
};

static const char  *ngx_http_hris_status_classes[] = {
    "1xx", "2xx", "3xx", "4xx", "5xx", "other"
};

static ngx_str_t  ngx_http_hris_none = ngx_string("none");
static ngx_str_t  ngx_http_hris_unknown = ngx_string("unknown");


/* per worker; entries stays NULL where nothing is counted */
static ngx_http_hris_mworker_t  ngx_http_hris_mw;


static ngx_int_t
ngx_http_hris_metrics_preconf(ngx_conf_t *cf)
{
    return ngx_http_hris_variables_add(cf);
}


static void *
ngx_http_hris_metrics_create_conf(ngx_conf_t *cf)
{
    ngx_http_hris_metrics_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_hris_metrics_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mcf->enabled = 0;
     *     mcf->zone = NULL;
     */

    mcf->account_label = NGX_CONF_UNSET;

    return mcf;
}


static char *
ngx_http_hris_metrics_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_hris_main_conf_t     *hmcf;
    ngx_http_hris_metrics_conf_t  *mcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    if (clcf->handler) {
        return "is duplicate or conflicts with another content handler";
    }

    clcf->handler = ngx_http_hris_metrics_handler;

    mcf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_hris_metrics_module);
    mcf->enabled = 1;

    /* the counts are the gateway's: it must be configured */
    hmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_hris_module);
    hmcf->used = 1;

    return NGX_CONF_OK;
}


/* After the main module has read its tables: the counters and the zone. */

static ngx_int_t
ngx_http_hris_metrics_postconf(ngx_conf_t *cf)
{
    size_t                         size;
    ngx_str_t                      name;
    ngx_http_handler_pt           *h;
    ngx_http_core_main_conf_t     *cmcf;
    ngx_http_hris_metrics_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_hris_metrics_module);
    mcf->hmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_hris_module);

    /* off: account ids are as many as tenants make, a label each */
    ngx_conf_init_value(mcf->account_label, 0);

    if (!mcf->enabled || mcf->hmcf->tables.nelts == 0) {
        return NGX_OK;
    }

    if (ngx_http_hris_metrics_layout(cf, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    size = sizeof(ngx_http_hris_mshm_t)
           + mcf->capacity * sizeof(ngx_http_hris_mentry_t)
           + ngx_http_hris_metrics_ndense(mcf) * sizeof(uint64_t);

    /* the slab allocator's own pages, and its rounding */
    size = ngx_align(size, ngx_pagesize) + 8 * ngx_pagesize;

    ngx_str_set(&name, "hris_metrics");

    mcf->zone = ngx_shared_memory_add(cf, &name, size,
                                      &ngx_http_hris_metrics_module);
    if (mcf->zone == NULL) {
        return NGX_ERROR;
    }

    mcf->zone->init = ngx_http_hris_metrics_init_zone;
    mcf->zone->data = mcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_hris_metrics_log;

    return NGX_OK;
}


/*
 * What each counter stands for: rows by provider, the cover counters by
 * resource and field, the hash's size; and a checksum of it all, so that
 * a zone kept across a reload is only added to by workers that agree.
 */

static ngx_int_t
ngx_http_hris_metrics_layout(ngx_conf_t *cf,
    ngx_http_hris_metrics_conf_t *mcf)
{
    uint32_t                          crc;
    ngx_uint_t                        i, j, n, expected;
    ngx_http_hris_field_t            *f;
    ngx_http_hris_table_t            *t;
    ngx_http_hris_main_conf_t        *hmcf = mcf->hmcf;
    ngx_http_hris_schema_resource_t  *sr;

    mcf->providers = hmcf->tables.nelts;
    mcf->resources = hmcf->schema.nelts;

    mcf->cover = ngx_palloc(cf->pool, mcf->resources * sizeof(ngx_uint_t));
    if (mcf->cover == NULL) {
        return NGX_ERROR;
    }

    ngx_crc32_init(crc);
    mcf->label_max = sizeof("unknown") - 1;

    t = hmcf->tables.elts;

    for (i = 0; i < mcf->providers; i++) {
        ngx_crc32_update(&crc, t[i].name.data, t[i].name.len + 1);
        mcf->label_max = ngx_max(mcf->label_max, t[i].name.len);
    }

    /* per resource: its records, then each field's misses */
    sr = hmcf->schema.elts;
    n = 0;

    for (i = 0; i < mcf->resources; i++) {
        mcf->cover[i] = n;
        n += 1 + sr[i].fields.nelts;

        ngx_crc32_update(&crc, sr[i].name.data, sr[i].name.len + 1);
        mcf->label_max = ngx_max(mcf->label_max, sr[i].name.len);

        f = sr[i].fields.elts;
        for (j = 0; j < sr[i].fields.nelts; j++) {
            ngx_crc32_update(&crc, f[j].name.data, f[j].name.len + 1);
            mcf->label_max = ngx_max(mcf->label_max, f[j].name.len);
        }
    }

    mcf->row = NGX_HTTP_HRIS_ROW_COVER + n;

    /*
     * the label sets that may show up, a few dozen statuses each: unified
     * by provider and resource (with none and unknown), proxy, connect
     * and upstream calls by provider, admin alone
     */
    expected = ((mcf->providers + 1) * (mcf->resources + 2 + 3) + 1)
               * NGX_HTTP_HRIS_M_STATUSES;

    /* five status classes per account; beyond the room, counted dropped */
    if (mcf->account_label) {
        expected += (hmcf->accounts.nelts + NGX_HTTP_HRIS_M_ACCOUNTS_EXTRA)
                    * 5;
    }

    for (mcf->capacity = 1024; mcf->capacity < 2 * expected;
         mcf->capacity *= 2)
    {
        /* void */
    }

    ngx_crc32_update(&crc, (u_char *) &mcf->capacity, sizeof(ngx_uint_t));
    ngx_crc32_update(&crc, (u_char *) &mcf->row, sizeof(ngx_uint_t));
    n = NGX_HTTP_HRIS_G_COUNT;
    ngx_crc32_update(&crc, (u_char *) &n, sizeof(ngx_uint_t));
    ngx_crc32_final(crc);

    mcf->layout = crc;

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_metrics_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_slab_pool_t               *shpool;
    ngx_http_hris_mshm_t          *sh;
    ngx_http_hris_metrics_conf_t  *omcf = data;
    ngx_http_hris_metrics_conf_t  *mcf = zone->data;

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (omcf) {
        /* a reload: the counts go on, unless the layout changed */
        mcf->sh = omcf->sh;

        if (mcf->sh->layout == mcf->layout) {
            return NGX_OK;
        }

        /* old workers still flush into it: they check the layout first */
        ngx_shmtx_lock(&shpool->mutex);

        ngx_slab_free_locked(shpool, mcf->sh->entries);
        ngx_slab_free_locked(shpool, mcf->sh->dense);

        if (ngx_http_hris_metrics_alloc(shpool, mcf, mcf->sh) != NGX_OK) {
            ngx_shmtx_unlock(&shpool->mutex);
            return NGX_ERROR;
        }

        ngx_shmtx_unlock(&shpool->mutex);

        return NGX_OK;
    }

    if (zone->shm.exists) {
        mcf->sh = shpool->data;
        return NGX_OK;
    }

    sh = ngx_slab_alloc(shpool, sizeof(ngx_http_hris_mshm_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_shmtx_lock(&shpool->mutex);

    if (ngx_http_hris_metrics_alloc(shpool, mcf, sh) != NGX_OK) {
        ngx_shmtx_unlock(&shpool->mutex);
        return NGX_ERROR;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    mcf->sh = sh;
    shpool->data = sh;

    return NGX_OK;
}


/* with the zone's lock held */

static ngx_int_t
ngx_http_hris_metrics_alloc(ngx_slab_pool_t *shpool,
    ngx_http_hris_metrics_conf_t *mcf, ngx_http_hris_mshm_t *sh)
{
    size_t  esize, dsize;

    esize = mcf->capacity * sizeof(ngx_http_hris_mentry_t);
    dsize = ngx_http_hris_metrics_ndense(mcf) * sizeof(uint64_t);

    sh->entries = ngx_slab_alloc_locked(shpool, esize);
    sh->dense = ngx_slab_alloc_locked(shpool, dsize);

    if (sh->entries == NULL || sh->dense == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(sh->entries, esize);
    ngx_memzero(sh->dense, dsize);

    sh->capacity = mcf->capacity;
    sh->used = 0;
    sh->dropped = 0;
    sh->layout = mcf->layout;

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_metrics_init_process(ngx_cycle_t *cycle)
{
    ngx_http_hris_mworker_t       *w = &ngx_http_hris_mw;
    ngx_http_hris_metrics_conf_t  *mcf;

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_core_module)
        == NULL)
    {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_hris_metrics_module);

    if (mcf == NULL || mcf->zone == NULL
        || (ngx_process != NGX_PROCESS_WORKER
            && ngx_process != NGX_PROCESS_SINGLE))
    {
        return NGX_OK;
    }

    w->mcf = mcf;
    w->capacity = mcf->capacity;
    w->ndense = ngx_http_hris_metrics_ndense(mcf);

    w->entries = ngx_pcalloc(cycle->pool,
                             w->capacity * sizeof(ngx_http_hris_mentry_t));
    w->dense = ngx_pcalloc(cycle->pool, w->ndense * sizeof(uint64_t));

    if (w->entries == NULL || w->dense == NULL) {
        w->entries = NULL;
        w->dense = NULL;
        return NGX_ERROR;
    }

    w->timer_conn.fd = (ngx_socket_t) -1;
    w->timer.data = &w->timer_conn;
    w->timer.handler = ngx_http_hris_metrics_timer;
    w->timer.log = cycle->log;
    /* a graceful quit does not wait for it: exit_process flushes */
    w->timer.cancelable = 1;

    ngx_add_timer(&w->timer, NGX_HTTP_HRIS_M_FLUSH);

    return NGX_OK;
}


static void
ngx_http_hris_metrics_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_hris_metrics_flush();

    ngx_http_hris_mw.entries = NULL;
    ngx_http_hris_mw.dense = NULL;
}


static void
ngx_http_hris_metrics_timer(ngx_event_t *ev)
{
    ngx_http_hris_metrics_flush();

    if (!ngx_exiting) {
        ngx_add_timer(ev, NGX_HTTP_HRIS_M_FLUSH);
    }
}


/* This worker's counts into the zone; one lock, nothing when idle. */

static void
ngx_http_hris_metrics_flush(void)
{
    ngx_uint_t                     i, j, mask, dirty;
    ngx_slab_pool_t               *shpool;
    ngx_http_hris_mshm_t          *sh;
    ngx_http_hris_mentry_t        *e, *s;
    ngx_http_hris_mworker_t       *w = &ngx_http_hris_mw;
    ngx_http_hris_metrics_conf_t  *mcf = w->mcf;

    if (w->entries == NULL) {
        return;
    }

    dirty = (w->used > 0);

    for (i = 0; !dirty && i < w->ndense; i++) {
        dirty = (w->dense[i] != 0);
    }

    if (!dirty) {
        return;
    }

    shpool = (ngx_slab_pool_t *) mcf->zone->shm.addr;
    sh = mcf->sh;
    mask = sh->capacity - 1;

    ngx_shmtx_lock(&shpool->mutex);

    /* after a reload that changed the layout, these counts mean nothing */
    if (sh->layout == mcf->layout) {

        for (i = 0; i < w->capacity; i++) {
            e = &w->entries[i];
            if (e->key == 0) {
                continue;
            }

            for (j = ngx_http_hris_metrics_hash(e->key) & mask; /* void */;
                 j = (j + 1) & mask)
            {
                s = &sh->entries[j];

                if (s->key == e->key) {
                    s->value += e->value;
                    break;
                }

                if (s->key == 0) {
                    /* a quarter kept empty: probes stay short */
                    if (sh->used >= sh->capacity / 4 * 3) {
                        sh->dropped += e->value;

                    } else {
                        s->key = e->key;
                        s->value = e->value;
                        sh->used++;
                    }

                    break;
                }
            }
        }

        for (i = 0; i < w->ndense; i++) {
            sh->dense[i] += w->dense[i];
        }
    }

    ngx_shmtx_unlock(&shpool->mutex);

    ngx_memzero(w->entries, w->capacity * sizeof(ngx_http_hris_mentry_t));
    ngx_memzero(w->dense, w->ndense * sizeof(uint64_t));
    w->used = 0;
}


static void
ngx_http_hris_metrics_add(uint64_t key)
{
    ngx_uint_t                i, mask;
    ngx_http_hris_mentry_t   *e;
    ngx_http_hris_mworker_t  *w = &ngx_http_hris_mw;

    if (w->entries == NULL) {
        return;
    }

    /* full enough: into the zone now, and start again */
    if (w->used >= w->capacity / 4 * 3) {
        ngx_http_hris_metrics_flush();
    }

    mask = w->capacity - 1;

    for (i = ngx_http_hris_metrics_hash(key) & mask; /* void */;
         i = (i + 1) & mask)
    {
        e = &w->entries[i];

        if (e->key == key) {
            e->value++;
            return;
        }

        if (e->key == 0) {
            e->key = key;
            e->value = 1;
            w->used++;
            return;
        }
    }
}


/* a 64-bit finalizer: the keys' low bits alone cluster */

static ngx_uint_t
ngx_http_hris_metrics_hash(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    key *= 0xc4ceb9fe1a85ec53ULL;
    key ^= key >> 33;

    return (ngx_uint_t) key;
}


/* The request is over: its API, provider, resource and status. */

static ngx_int_t
ngx_http_hris_metrics_log(ngx_http_request_t *r)
{
    uint64_t                       key;
    ngx_uint_t                     res, status;
    ngx_http_hris_req_t           *req;
    ngx_http_hris_metrics_conf_t  *mcf = ngx_http_hris_mw.mcf;

    req = ngx_http_get_module_ctx(r, ngx_http_hris_metrics_module);

    if (req == NULL || ngx_http_hris_mw.entries == NULL) {
        return NGX_OK;
    }

    /* as nginx's $status */
    status = r->err_status ? r->err_status : r->headers_out.status;
    status = ngx_min(status, 999);

    if (req->resource >= 0) {
        res = (ngx_uint_t) req->resource;

    } else if (req->resource == NGX_HTTP_HRIS_RESOURCE_UNKNOWN) {
        res = mcf->resources + 1;

    } else {
        res = mcf->resources;
    }

    key = ngx_http_hris_mkey(NGX_HTTP_HRIS_M_REQUESTS, req->api,
                             ngx_http_hris_metrics_slot(req), res, status);

    ngx_http_hris_metrics_add(key);

    /*
     * an account the request resolved (it has a provider): never a
     * client's guess, which would make labels of anything
     */
    if (mcf->account_label && req->account.len && req->provider >= 0
        && status >= 100 && status < 600)
    {
        ngx_http_hris_metrics_add(ngx_http_hris_mkey(NGX_HTTP_HRIS_M_ACCOUNT,
            status / 100, 0, 0, 0)
            | ngx_http_hris_metrics_account_hash(&req->account));
    }

    return NGX_OK;
}


/* 48 bits of an account id's hash: the id is found again at a scrape */

static uint64_t
ngx_http_hris_metrics_account_hash(ngx_str_t *id)
{
    return (((uint64_t) ngx_crc32_long(id->data, id->len)) << 16
            ^ (uint64_t) ngx_murmur_hash2(id->data, id->len))
           & 0xffffffffffffULL;
}


/* the provider's row; the last one is "none" */

static ngx_uint_t
ngx_http_hris_metrics_slot(ngx_http_hris_req_t *req)
{
    ngx_http_hris_metrics_conf_t  *mcf = ngx_http_hris_mw.mcf;

    if (req == NULL || req->provider < 0
        || (ngx_uint_t) req->provider >= mcf->providers)
    {
        return mcf->providers;
    }

    return (ngx_uint_t) req->provider;
}


/* A table's index; its name is the provider's (also for variants). */

ngx_int_t
ngx_http_hris_metrics_provider(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *name)
{
    ngx_uint_t              i;
    ngx_http_hris_table_t  *t;

    t = hmcf->tables.elts;

    for (i = 0; i < hmcf->tables.nelts; i++) {
        if (t[i].name.len == name->len
            && ngx_strncmp(t[i].name.data, name->data, name->len) == 0)
        {
            return i;
        }
    }

    return -1;
}


/* One try of an upstream call (see ngx_http_hris_observe_try()). */

void
ngx_http_hris_metrics_count_try(ngx_http_hris_req_t *req, ngx_uint_t status,
    uint64_t us, ngx_uint_t retrying)
{
    uint64_t                 *row;
    ngx_uint_t                slot, b;
    ngx_http_hris_mworker_t  *w = &ngx_http_hris_mw;

    if (w->entries == NULL) {
        return;
    }

    slot = ngx_http_hris_metrics_slot(req);

    ngx_http_hris_metrics_add(ngx_http_hris_mkey(NGX_HTTP_HRIS_M_UPSTREAM,
                                                 0, slot, 0,
                                                 ngx_min(status, 999)));

    for (b = 0; b < NGX_HTTP_HRIS_M_BUCKETS - 1; b++) {
        if (us <= ngx_http_hris_bucket_us[b]) {
            break;
        }
    }

    row = w->dense + slot * w->mcf->row;

    row[NGX_HTTP_HRIS_ROW_HIST + b]++;
    row[NGX_HTTP_HRIS_ROW_SUM] += us;

    if (retrying) {
        row[NGX_HTTP_HRIS_ROW_RETRIES]++;
    }
}


/* a counter of no provider's (NGX_HTTP_HRIS_G_*) */

static void
ngx_http_hris_metrics_global(ngx_uint_t i)
{
    ngx_http_hris_mworker_t  *w = &ngx_http_hris_mw;

    if (w->entries == NULL) {
        return;
    }

    w->dense[(w->mcf->providers + 1) * w->mcf->row + i]++;
}


/* A state store failed: the file not written, the Redis connection lost. */

void
ngx_http_hris_metrics_state_error(ngx_uint_t store)
{
    ngx_http_hris_metrics_global(NGX_HTTP_HRIS_G_STATE
                                 + (store == NGX_HTTP_HRIS_STORE_REDIS));
}


/* A Redis command ended: NGX_HTTP_HRIS_REDIS_CMD_{OK,ERROR,UNREACHABLE}. */

void
ngx_http_hris_metrics_redis(ngx_uint_t result)
{
    ngx_http_hris_metrics_global(NGX_HTTP_HRIS_G_REDIS + ngx_min(result, 2));
}


/* An event was emitted; a type not in the contract counts as "other". */

void
ngx_http_hris_metrics_event(const char *type)
{
    ngx_uint_t  i;

    for (i = 0; i < 7; i++) {
        if (type && ngx_strcmp(type, ngx_http_hris_event_types[i]) == 0) {
            break;
        }
    }

    ngx_http_hris_metrics_global(NGX_HTTP_HRIS_G_EVENTS + i);
}


/* One try to deliver an event: the subscriber's status, 0 for none. */

void
ngx_http_hris_metrics_delivery(ngx_uint_t status)
{
    ngx_uint_t  i;

    if (status == 0) {
        i = 4;

    } else if (status == 410) {
        i = 3;

    } else if (status >= 200 && status < 300) {
        i = 0;

    } else if (status >= 400 && status < 500) {
        i = 1;

    } else if (status >= 500 && status < 600) {
        i = 2;

    } else {
        i = 5;
    }

    ngx_http_hris_metrics_global(NGX_HTTP_HRIS_G_DELIVERY + i);
}


/* A provider's webhook was answered with this status. */

void
ngx_http_hris_metrics_webhook_in(ngx_uint_t status)
{
    ngx_uint_t  i;

    i = (status >= 100 && status < 600) ? status / 100 - 1 : 5;

    ngx_http_hris_metrics_global(NGX_HTTP_HRIS_G_WEBHOOK_IN + i);
}


/*
 * An exchange of credentials for an access token ended (auth.c), rc what
 * the gate made of the answer (NGX_AGAIN: the token goes to the state
 * store first): refused by the provider (400, 401, 403: what the gate
 * takes for a refusal), ok, or anything else (no answer, an unusable
 * one).
 */

void
ngx_http_hris_metrics_token(ngx_http_request_t *r, ngx_http_hris_call_t *call,
    ngx_int_t rc)
{
    ngx_uint_t                result;
    ngx_http_hris_req_t      *req;
    ngx_http_hris_mworker_t  *w = &ngx_http_hris_mw;

    if (w->entries == NULL) {
        return;
    }

    req = ngx_http_get_module_ctx(r, ngx_http_hris_metrics_module);

    if (call->result == NGX_HTTP_HRIS_CALL_OK
        && (call->status == 400 || call->status == 401
            || call->status == 403))
    {
        result = 1;

    } else if ((rc == NGX_OK || rc == NGX_AGAIN) && !r->header_sent) {
        result = 0;

    } else {
        result = 2;
    }

    w->dense[ngx_http_hris_metrics_slot(req) * w->mcf->row
             + NGX_HTTP_HRIS_ROW_TOKEN + result]++;
}


/*
 * Field coverage: the counters a unified request's records are counted
 * in (schema.c's ngx_http_hris_record_map()): [0] the records mapped,
 * [1 + i] those whose field i (in schema order) the provider lacked.
 * NULL when nothing is counted.
 */

uint64_t *
ngx_http_hris_metrics_cover(ngx_http_request_t *r, ngx_uint_t fields)
{
    ngx_http_hris_req_t              *req;
    ngx_http_hris_mworker_t          *w = &ngx_http_hris_mw;
    ngx_http_hris_metrics_conf_t     *mcf = w->mcf;
    ngx_http_hris_schema_resource_t  *sr;

    if (w->entries == NULL) {
        return NULL;
    }

    req = ngx_http_get_module_ctx(r, ngx_http_hris_metrics_module);

    if (req == NULL || req->provider < 0
        || (ngx_uint_t) req->provider >= mcf->providers
        || req->resource < 0
        || (ngx_uint_t) req->resource >= mcf->resources)
    {
        return NULL;
    }

    sr = mcf->hmcf->schema.elts;

    /* tables compile every schema field, in order: checked all the same */
    if (sr[req->resource].fields.nelts != fields) {
        return NULL;
    }

    return w->dense + req->provider * mcf->row + NGX_HTTP_HRIS_ROW_COVER
           + mcf->cover[req->resource];
}


/* GET /metrics */

static ngx_int_t
ngx_http_hris_metrics_handler(ngx_http_request_t *r)
{
    uint64_t                      *dense, dropped, *accounts;
    ngx_int_t                      rc;
    ngx_array_t                    entries;
    ngx_chain_t                   *cl;
    ngx_http_hris_mout_t           out;
    ngx_http_hris_metrics_conf_t  *mcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_hris_metrics_module);

    if (mcf->zone == NULL) {
        return NGX_HTTP_NOT_FOUND;
    }

    /* this worker's last second counts too */
    ngx_http_hris_metrics_flush();

    accounts = ngx_pcalloc(r->pool,
                           (mcf->providers + 1) * 2 * sizeof(uint64_t));

    if (accounts == NULL
        || ngx_http_hris_metrics_snapshot(r, mcf, &entries, &dense, &dropped)
           != NGX_OK
        || ngx_http_hris_metrics_accounts(r, mcf, accounts) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_qsort(entries.elts, entries.nelts, sizeof(ngx_http_hris_mentry_t),
              ngx_http_hris_metrics_cmp);

    ngx_memzero(&out, sizeof(ngx_http_hris_mout_t));
    out.request = r;
    out.last = &out.first;
    /* three label values, each escaped at worst to twice its length */
    out.line = NGX_HTTP_HRIS_M_LINE + 6 * mcf->label_max;

    if (ngx_http_hris_metrics_write(&out, mcf, &entries, dense, accounts,
                                    dropped)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    out.b->last_buf = 1;
    out.b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = 0;

    for (cl = out.first; cl; cl = cl->next) {
        r->headers_out.content_length_n += cl->buf->last - cl->buf->pos;
    }

    ngx_str_set(&r->headers_out.content_type, "text/plain; version=0.0.4");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, out.first);
}


/* The zone's counts, copied under its lock into the request's memory. */

static ngx_int_t
ngx_http_hris_metrics_snapshot(ngx_http_request_t *r,
    ngx_http_hris_metrics_conf_t *mcf, ngx_array_t *entries,
    uint64_t **dense, uint64_t *dropped)
{
    size_t                   dsize;
    ngx_uint_t               i, n;
    ngx_slab_pool_t         *shpool;
    ngx_http_hris_mshm_t    *sh = mcf->sh;
    ngx_http_hris_mentry_t  *e, *copy;

    dsize = ngx_http_hris_metrics_ndense(mcf) * sizeof(uint64_t);

    if (ngx_array_init(entries, r->pool, mcf->capacity / 4 * 3 + 1,
                       sizeof(ngx_http_hris_mentry_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    *dense = ngx_pcalloc(r->pool, dsize);
    if (*dense == NULL) {
        return NGX_ERROR;
    }

    copy = entries->elts;
    n = 0;
    *dropped = 0;

    shpool = (ngx_slab_pool_t *) mcf->zone->shm.addr;

    ngx_shmtx_lock(&shpool->mutex);

    /* a zone another layout's workers filled is read as empty */
    if (sh->layout == mcf->layout) {
        e = sh->entries;

        for (i = 0; i < sh->capacity && n < entries->nalloc; i++) {
            if (e[i].key) {
                copy[n++] = e[i];
            }
        }

        ngx_memcpy(*dense, sh->dense, dsize);
        *dropped = sh->dropped;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    entries->nelts = n;

    return NGX_OK;
}


/* hris_accounts: every account known now, file and run-time ones */

static ngx_int_t
ngx_http_hris_metrics_accounts(ngx_http_request_t *r,
    ngx_http_hris_metrics_conf_t *mcf, uint64_t *counts)
{
    ngx_int_t                  p;
    ngx_uint_t                 i, reauth;
    ngx_array_t                list;
    ngx_http_hris_account_t  **acc;

    if (ngx_http_hris_account_list(r, mcf->hmcf, &list) != NGX_OK) {
        return NGX_ERROR;
    }

    acc = list.elts;

    for (i = 0; i < list.nelts; i++) {
        p = ngx_http_hris_metrics_provider(mcf->hmcf, &acc[i]->table->name);
        if (p < 0) {
            p = mcf->providers;
        }

        reauth = acc[i]->state_reauth
                 || ngx_http_hris_needs_reauth(mcf->hmcf, &acc[i]->id);

        counts[p * 2 + (reauth ? 1 : 0)]++;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_metrics_write(ngx_http_hris_mout_t *out,
    ngx_http_hris_metrics_conf_t *mcf, ngx_array_t *entries,
    uint64_t *dense, uint64_t *accounts, uint64_t dropped)
{
    u_char                  *p;
    uint64_t                 k;
    ngx_uint_t               i, s;
    ngx_http_hris_mentry_t  *e;

    e = entries->elts;

    p = ngx_http_hris_metrics_head(out, "hris_requests_total", "counter",
            "Requests the gateway answered, by API (unified, proxy, admin, "
            "connect), provider, unified resource and HTTP status.");
    if (p == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < entries->nelts; i++) {
        k = e[i].key;

        if ((k >> 56) != NGX_HTTP_HRIS_M_REQUESTS) {
            continue;
        }

        p = ngx_http_hris_metrics_room(out);
        if (p == NULL) {
            return NGX_ERROR;
        }

        p = ngx_sprintf(p, "hris_requests_total{api=\"%s\",provider=\"",
                        ngx_http_hris_api_names[ngx_http_hris_mkey_api(k)
                                                & 3]);
        p = ngx_http_hris_metrics_esc(p, ngx_http_hris_metrics_pname(mcf,
                                             ngx_http_hris_mkey_prov(k)));
        p = ngx_cpymem(p, "\",resource=\"", sizeof("\",resource=\"") - 1);
        p = ngx_http_hris_metrics_esc(p, ngx_http_hris_metrics_rname(mcf,
                                             ngx_http_hris_mkey_res(k)));
        out->b->last = ngx_sprintf(p, "\",status=\"%03uL\"} %uL\n",
                                   (uint64_t) ngx_http_hris_mkey_status(k),
                                   e[i].value);
    }

    if (mcf->account_label
        && ngx_http_hris_metrics_write_accounts(out, mcf, entries) != NGX_OK)
    {
        return NGX_ERROR;
    }

    p = ngx_http_hris_metrics_head(out, "hris_upstream_requests_total",
            "counter", "Requests sent to providers, each try of a call on "
            "its own, by provider and HTTP status (502 or 504 when no "
            "answer came, as nginx's $upstream_status).");
    if (p == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < entries->nelts; i++) {
        k = e[i].key;

        if ((k >> 56) != NGX_HTTP_HRIS_M_UPSTREAM) {
            continue;
        }

        p = ngx_http_hris_metrics_room(out);
        if (p == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(p, "hris_upstream_requests_total{provider=\"",
                       sizeof("hris_upstream_requests_total{provider=\"")
                       - 1);
        p = ngx_http_hris_metrics_esc(p, ngx_http_hris_metrics_pname(mcf,
                                             ngx_http_hris_mkey_prov(k)));
        out->b->last = ngx_sprintf(p, "\",status=\"%03uL\"} %uL\n",
                                   (uint64_t) ngx_http_hris_mkey_status(k),
                                   e[i].value);
    }

    if (ngx_http_hris_metrics_write_dense(out, mcf, dense) != NGX_OK) {
        return NGX_ERROR;
    }

    p = ngx_http_hris_metrics_head(out, "hris_accounts", "gauge",
            "Integrated accounts the gateway knows (accounts file and run "
            "time), by provider and status (ok, needs_reauth).");
    if (p == NULL) {
        return NGX_ERROR;
    }

    for (s = 0; s <= mcf->providers; s++) {
        for (i = 0; i < 2; i++) {
            if (s == mcf->providers && accounts[s * 2 + i] == 0) {
                continue;
            }

            p = ngx_http_hris_metrics_room(out);
            if (p == NULL) {
                return NGX_ERROR;
            }

            p = ngx_cpymem(p, "hris_accounts{provider=\"",
                           sizeof("hris_accounts{provider=\"") - 1);
            p = ngx_http_hris_metrics_esc(p,
                    ngx_http_hris_metrics_pname(mcf, s));
            out->b->last = ngx_sprintf(p, "\",status=\"%s\"} %uL\n",
                                       i ? "needs_reauth" : "ok",
                                       accounts[s * 2 + i]);
        }
    }

    if (ngx_http_hris_metrics_write_cover(out, mcf, dense) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_hris_metrics_write_global(out,
            dense + (mcf->providers + 1) * mcf->row)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    p = ngx_http_hris_metrics_head(out, "hris_metrics_dropped_total",
            "counter", "Counts lost because the metrics zone had no room "
            "for more label sets.");
    if (p == NULL) {
        return NGX_ERROR;
    }

    p = ngx_http_hris_metrics_room(out);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->b->last = ngx_sprintf(p, "hris_metrics_dropped_total %uL\n",
                               dropped);

    return NGX_OK;
}


/* the rows by provider: durations, retries, token exchanges */

static ngx_int_t
ngx_http_hris_metrics_write_dense(ngx_http_hris_mout_t *out,
    ngx_http_hris_metrics_conf_t *mcf, uint64_t *dense)
{
    u_char      *p;
    uint64_t    *row, cum;
    ngx_str_t   *name;
    ngx_uint_t   s, b, t;

    p = ngx_http_hris_metrics_head(out, "hris_upstream_duration_seconds",
            "histogram", "Time of each try of an upstream call, from "
            "resolving the provider's name to the answer's last byte, by "
            "provider.");
    if (p == NULL) {
        return NGX_ERROR;
    }

    for (s = 0; s <= mcf->providers; s++) {
        row = dense + s * mcf->row;
        name = ngx_http_hris_metrics_pname(mcf, s);
        cum = 0;

        for (b = 0; b < NGX_HTTP_HRIS_M_BUCKETS; b++) {
            cum += row[NGX_HTTP_HRIS_ROW_HIST + b];
        }

        /* a histogram of zeros says nothing: providers not called yet */
        if (cum == 0) {
            continue;
        }

        cum = 0;

        for (b = 0; b < NGX_HTTP_HRIS_M_BUCKETS; b++) {
            cum += row[NGX_HTTP_HRIS_ROW_HIST + b];

            p = ngx_http_hris_metrics_room(out);
            if (p == NULL) {
                return NGX_ERROR;
            }

            p = ngx_cpymem(p, "hris_upstream_duration_seconds_bucket"
                           "{provider=\"",
                           sizeof("hris_upstream_duration_seconds_bucket"
                                  "{provider=\"") - 1);
            p = ngx_http_hris_metrics_esc(p, name);
            out->b->last = ngx_sprintf(p, "\",le=\"%s\"} %uL\n",
                                       ngx_http_hris_bucket_le[b], cum);
        }

        p = ngx_http_hris_metrics_room(out);
        if (p == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(p, "hris_upstream_duration_seconds_sum{provider=\"",
                       sizeof("hris_upstream_duration_seconds_sum"
                              "{provider=\"") - 1);
        p = ngx_http_hris_metrics_esc(p, name);
        p = ngx_sprintf(p, "\"} %uL.%06uL\n",
                        row[NGX_HTTP_HRIS_ROW_SUM] / 1000000,
                        row[NGX_HTTP_HRIS_ROW_SUM] % 1000000);

        p = ngx_cpymem(p, "hris_upstream_duration_seconds_count{provider=\"",
                       sizeof("hris_upstream_duration_seconds_count"
                              "{provider=\"") - 1);
        p = ngx_http_hris_metrics_esc(p, name);
        out->b->last = ngx_sprintf(p, "\"} %uL\n", cum);
    }

    p = ngx_http_hris_metrics_head(out, "hris_retries_total", "counter",
            "Upstream calls tried again (a 429, 502, 503, 504 answer or a "
            "network error), by provider.");
    if (p == NULL) {
        return NGX_ERROR;
    }

    for (s = 0; s <= mcf->providers; s++) {
        row = dense + s * mcf->row;

        if (s == mcf->providers && row[NGX_HTTP_HRIS_ROW_RETRIES] == 0) {
            continue;
        }

        p = ngx_http_hris_metrics_room(out);
        if (p == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(p, "hris_retries_total{provider=\"",
                       sizeof("hris_retries_total{provider=\"") - 1);
        p = ngx_http_hris_metrics_esc(p, ngx_http_hris_metrics_pname(mcf, s));
        out->b->last = ngx_sprintf(p, "\"} %uL\n",
                                   row[NGX_HTTP_HRIS_ROW_RETRIES]);
    }

    p = ngx_http_hris_metrics_head(out, "hris_token_refreshes_total",
            "counter", "Exchanges of an account's credentials or refresh "
            "token for an access token, by provider and result (ok; "
            "refused by the provider; error: anything else).");
    if (p == NULL) {
        return NGX_ERROR;
    }

    for (s = 0; s <= mcf->providers; s++) {
        row = dense + s * mcf->row;

        for (t = 0; t < 3; t++) {
            if (s == mcf->providers && row[NGX_HTTP_HRIS_ROW_TOKEN + t] == 0)
            {
                continue;
            }

            p = ngx_http_hris_metrics_room(out);
            if (p == NULL) {
                return NGX_ERROR;
            }

            p = ngx_cpymem(p, "hris_token_refreshes_total{provider=\"",
                           sizeof("hris_token_refreshes_total{provider=\"")
                           - 1);
            p = ngx_http_hris_metrics_esc(p,
                    ngx_http_hris_metrics_pname(mcf, s));
            out->b->last = ngx_sprintf(p, "\",result=\"%s\"} %uL\n",
                                       ngx_http_hris_token_results[t],
                                       row[NGX_HTTP_HRIS_ROW_TOKEN + t]);
        }
    }

    return NGX_OK;
}


/* field coverage: records mapped, and the fields their provider lacked */

static ngx_int_t
ngx_http_hris_metrics_write_cover(ngx_http_hris_mout_t *out,
    ngx_http_hris_metrics_conf_t *mcf, uint64_t *dense)
{
    u_char                           *p;
    uint64_t                         *c;
    ngx_uint_t                        s, i, j, pass;
    ngx_http_hris_field_t            *f;
    ngx_http_hris_schema_resource_t  *sr;

    sr = mcf->hmcf->schema.elts;

    for (pass = 0; pass < 2; pass++) {

        p = pass ? ngx_http_hris_metrics_head(out, "hris_field_missing_total",
                       "counter", "Unified records whose provider answer "
                       "lacked what the mapping table reads for a field "
                       "(it came out null), by provider, resource and "
                       "field: compare with hris_records_total.")
                 : ngx_http_hris_metrics_head(out, "hris_records_total",
                       "counter", "Unified records mapped from provider "
                       "answers, by provider and resource.");
        if (p == NULL) {
            return NGX_ERROR;
        }

        for (s = 0; s < mcf->providers; s++) {
            for (i = 0; i < mcf->resources; i++) {
                c = dense + s * mcf->row + NGX_HTTP_HRIS_ROW_COVER
                    + mcf->cover[i];

                if (c[0] == 0) {
                    continue;
                }

                f = sr[i].fields.elts;

                /* pass 0: one line, the records; pass 1: one per field */
                for (j = 0; j < (pass ? sr[i].fields.nelts : 1); j++) {
                    if (pass && c[1 + j] == 0) {
                        continue;
                    }

                    p = ngx_http_hris_metrics_room(out);
                    if (p == NULL) {
                        return NGX_ERROR;
                    }

                    p = pass ? ngx_cpymem(p, "hris_field_missing_total{",
                                   sizeof("hris_field_missing_total{") - 1)
                             : ngx_cpymem(p, "hris_records_total{",
                                   sizeof("hris_records_total{") - 1);
                    p = ngx_cpymem(p, "provider=\"",
                                   sizeof("provider=\"") - 1);
                    p = ngx_http_hris_metrics_esc(p,
                            ngx_http_hris_metrics_pname(mcf, s));
                    p = ngx_cpymem(p, "\",resource=\"",
                                   sizeof("\",resource=\"") - 1);
                    p = ngx_http_hris_metrics_esc(p, &sr[i].name);

                    if (pass) {
                        p = ngx_cpymem(p, "\",field=\"",
                                       sizeof("\",field=\"") - 1);
                        p = ngx_http_hris_metrics_esc(p, &f[j].name);
                    }

                    out->b->last = ngx_sprintf(p, "\"} %uL\n",
                                               pass ? c[1 + j] : c[0]);
                }
            }
        }
    }

    return NGX_OK;
}


/*
 * hris_account_requests_total (hris_metrics_account_label on): the hashes
 * counted, named again by the accounts known now; those of accounts gone
 * since are summed under account="".
 */

typedef struct {
    uint64_t                     hash;
    ngx_str_t                   *id;
} ngx_http_hris_mname_t;


static int ngx_libc_cdecl
ngx_http_hris_metrics_name_cmp(const void *a, const void *b)
{
    const ngx_http_hris_mname_t  *x = a, *y = b;

    return (x->hash < y->hash) ? -1 : (x->hash > y->hash);
}


static ngx_int_t
ngx_http_hris_metrics_write_accounts(ngx_http_hris_mout_t *out,
    ngx_http_hris_metrics_conf_t *mcf, ngx_array_t *entries)
{
    u_char                    *p;
    uint64_t                   k, gone[5];
    ngx_str_t                  empty = ngx_null_string;
    ngx_uint_t                 i, n;
    ngx_array_t                list;
    ngx_http_hris_mname_t     *names, key, *found;
    ngx_http_hris_mentry_t    *e;
    ngx_http_hris_account_t  **acc;

    if (ngx_http_hris_account_list(out->request, mcf->hmcf, &list)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    names = ngx_palloc(out->request->pool,
                       (list.nelts + 1) * sizeof(ngx_http_hris_mname_t));
    if (names == NULL) {
        return NGX_ERROR;
    }

    acc = list.elts;

    for (i = 0; i < list.nelts; i++) {
        names[i].hash = ngx_http_hris_metrics_account_hash(&acc[i]->id);
        names[i].id = &acc[i]->id;
    }

    ngx_qsort(names, list.nelts, sizeof(ngx_http_hris_mname_t),
              ngx_http_hris_metrics_name_cmp);

    p = ngx_http_hris_metrics_head(out, "hris_account_requests_total",
            "counter", "Requests the gateway answered for an integrated "
            "account, by account and status class (account=\"\": "
            "accounts deleted since).");
    if (p == NULL) {
        return NGX_ERROR;
    }

    /* an id may be as long as the longest label: more room per line */
    out->line += 2 * 128;

    ngx_memzero(gone, sizeof(gone));
    e = entries->elts;

    for (i = 0; i < entries->nelts; i++) {
        k = e[i].key;

        if ((k >> 56) != NGX_HTTP_HRIS_M_ACCOUNT) {
            continue;
        }

        n = ngx_http_hris_mkey_api(k) - 1;
        key.hash = k & 0xffffffffffffULL;

        found = bsearch(&key, names, list.nelts,
                        sizeof(ngx_http_hris_mname_t),
                        ngx_http_hris_metrics_name_cmp);

        if (found == NULL || n > 4) {
            gone[ngx_min(n, 4)] += e[i].value;
            continue;
        }

        p = ngx_http_hris_metrics_room(out);
        if (p == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(p, "hris_account_requests_total{account=\"",
                       sizeof("hris_account_requests_total{account=\"") - 1);
        p = ngx_http_hris_metrics_esc(p, found->id);
        out->b->last = ngx_sprintf(p, "\",status=\"%s\"} %uL\n",
                                   ngx_http_hris_status_classes[n],
                                   e[i].value);
    }

    for (n = 0; n < 5; n++) {
        if (gone[n] == 0) {
            continue;
        }

        p = ngx_http_hris_metrics_room(out);
        if (p == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(p, "hris_account_requests_total{account=\"",
                       sizeof("hris_account_requests_total{account=\"") - 1);
        p = ngx_http_hris_metrics_esc(p, &empty);
        out->b->last = ngx_sprintf(p, "\",status=\"%s\"} %uL\n",
                                   ngx_http_hris_status_classes[n], gone[n]);
    }

    out->line -= 2 * 128;

    return NGX_OK;
}


/*
 * One counter family of labels in a fixed list; those in "always" show
 * at zero too (a rate from the first scrape on), the rest when counted.
 */

static ngx_int_t
ngx_http_hris_metrics_write_list(ngx_http_hris_mout_t *out, const char *name,
    const char *help, const char *label, const char **values, ngx_uint_t n,
    ngx_uint_t always, uint64_t *c)
{
    u_char      *p;
    ngx_uint_t   i;

    p = ngx_http_hris_metrics_head(out, name, "counter", help);
    if (p == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (c[i] == 0 && !(always & (1 << i))) {
            continue;
        }

        p = ngx_http_hris_metrics_room(out);
        if (p == NULL) {
            return NGX_ERROR;
        }

        out->b->last = ngx_sprintf(p, "%s{%s=\"%s\"} %uL\n", name, label,
                                   values[i], c[i]);
    }

    return NGX_OK;
}


/* the counters of no provider */

static ngx_int_t
ngx_http_hris_metrics_write_global(ngx_http_hris_mout_t *out, uint64_t *g)
{
    if (ngx_http_hris_metrics_write_list(out, "hris_state_errors_total",
            "Failures of the state store: the state file not written "
            "(store=\"file\"), the connection to Redis lost or refused "
            "(store=\"redis\").", "store", ngx_http_hris_store_names, 2,
            0x3, g + NGX_HTTP_HRIS_G_STATE)
        != NGX_OK
        || ngx_http_hris_metrics_write_list(out, "hris_redis_commands_total",
            "Commands sent to Redis, by result (ok; error: an error reply; "
            "unreachable: no connection, or it was lost).", "result",
            ngx_http_hris_redis_results, 3, 0x7, g + NGX_HTTP_HRIS_G_REDIS)
           != NGX_OK
        || ngx_http_hris_metrics_write_list(out, "hris_events_total",
            "Events emitted, by type.", "type", ngx_http_hris_event_types, 8,
            0x7f, g + NGX_HTTP_HRIS_G_EVENTS)
           != NGX_OK
        || ngx_http_hris_metrics_write_list(out,
            "hris_webhook_deliveries_total", "Tries to deliver an event to "
            "a subscription, by result: the subscriber's status class, 410 "
            "(which ends the subscription), no_answer (none in time).",
            "result", ngx_http_hris_delivery_results, 6, 0x1f,
            g + NGX_HTTP_HRIS_G_DELIVERY)
           != NGX_OK
        || ngx_http_hris_metrics_write_list(out,
            "hris_webhooks_received_total", "Provider webhooks received, by "
            "the status class the gateway answered them with (401: not "
            "verified).", "status", ngx_http_hris_status_classes, 6, 0x1a,
            g + NGX_HTTP_HRIS_G_WEBHOOK_IN)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* Room for one more line; a new buffer when the last one is short. */

static u_char *
ngx_http_hris_metrics_room(ngx_http_hris_mout_t *out)
{
    size_t        size;
    ngx_chain_t  *cl;

    if (out->b && (size_t) (out->b->end - out->b->last) >= out->line) {
        return out->b->last;
    }

    size = ngx_max(16384, 4 * out->line);

    out->b = ngx_create_temp_buf(out->request->pool, size);
    cl = ngx_alloc_chain_link(out->request->pool);

    if (out->b == NULL || cl == NULL) {
        return NULL;
    }

    cl->buf = out->b;
    cl->next = NULL;
    *out->last = cl;
    out->last = &cl->next;

    return out->b->last;
}


static u_char *
ngx_http_hris_metrics_head(ngx_http_hris_mout_t *out, const char *name,
    const char *type, const char *help)
{
    u_char  *p;

    p = ngx_http_hris_metrics_room(out);
    if (p == NULL) {
        return NULL;
    }

    out->b->last = ngx_sprintf(p, "# HELP %s %s\n# TYPE %s %s\n",
                               name, help, name, type);

    return out->b->last;
}


/* a label value: backslash, double quote and line feed escaped */

static u_char *
ngx_http_hris_metrics_esc(u_char *p, ngx_str_t *v)
{
    u_char      c;
    ngx_uint_t  i;

    for (i = 0; i < v->len; i++) {
        c = v->data[i];

        if (c == '\\' || c == '"') {
            *p++ = '\\';
            *p++ = c;

        } else if (c == '\n') {
            *p++ = '\\';
            *p++ = 'n';

        } else {
            *p++ = c;
        }
    }

    return p;
}


static ngx_str_t *
ngx_http_hris_metrics_pname(ngx_http_hris_metrics_conf_t *mcf,
    ngx_uint_t slot)
{
    ngx_http_hris_table_t  *t;

    if (slot >= mcf->providers) {
        return &ngx_http_hris_none;
    }

    t = mcf->hmcf->tables.elts;

    return &t[slot].name;
}


static ngx_str_t *
ngx_http_hris_metrics_rname(ngx_http_hris_metrics_conf_t *mcf,
    ngx_uint_t slot)
{
    ngx_http_hris_schema_resource_t  *sr;

    if (slot == mcf->resources + 1) {
        return &ngx_http_hris_unknown;
    }

    if (slot >= mcf->resources) {
        return &ngx_http_hris_none;
    }

    sr = mcf->hmcf->schema.elts;

    return &sr[slot].name;
}


static int ngx_libc_cdecl
ngx_http_hris_metrics_cmp(const void *a, const void *b)
{
    const ngx_http_hris_mentry_t  *x = a, *y = b;

    return (x->key < y->key) ? -1 : (x->key > y->key);
}

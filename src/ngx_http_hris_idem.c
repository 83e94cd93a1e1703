/*
 * Idempotency keys (see ngx_http_hris_idem.h for the interface): kept in
 * a shared memory zone of their own ("hris_idempotency", sized by
 * hris_idempotency_zone_size), so that every worker honours them, and in
 * the state directory's idempotency.json, so that a restart does too.
 *
 * A key is stored as the SHA-256 of tenant, account and key (an rbtree
 * by its first bytes, plus a queue by age); with it the SHA-256 of what
 * it was first used for (method, path, query, body), whether that first
 * request still runs (and in which worker), and its answer once it is
 * kept. Entries go 24 hours after they were made, never earlier: a full
 * zone refuses new keys (503 naming the directive) rather than forget a
 * kept answer, which would let a write through twice. So that one tenant
 * cannot fill it for all, a tenant's entries may take at most a quarter
 * of the zone (at least 64k): beyond, that tenant is refused as a full
 * zone refuses everyone. An entry carries its tenant's digest for this.
 *
 * The file is written whole after each kept answer, by one worker at a
 * time, through nginx's thread pool (a temporary file renamed over the
 * old one), and read when nginx reads its configuration. It holds the
 * answers as they were sent: records of the provider, personal data
 * among them; it lives in the state directory (mode 0700) with mode 0600.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ngx_http_hris_idem.h"
#include "ngx_http_hris_redis.h"


#define NGX_HTTP_HRIS_IDEM_MAGIC   0x6d656469          /* "idem" */
#define NGX_HTTP_HRIS_IDEM_LAYOUT  2
#define NGX_HTTP_HRIS_IDEM_TENANT  8                 /* digest's bytes */
#define NGX_HTTP_HRIS_IDEM_FLOOR   (64 * 1024)       /* tenant share */
#define NGX_HTTP_HRIS_IDEM_FILE    "idempotency.json"
#define NGX_HTTP_HRIS_IDEM_MAX_KEY 255


typedef enum {
    NGX_HTTP_HRIS_IDEM_RUNNING = 0,
    NGX_HTTP_HRIS_IDEM_DONE
} ngx_http_hris_idem_state_e;


typedef struct {
    ngx_rbtree_node_t            node;        /* key: the hash's first bytes */
    ngx_queue_t                  queue;       /* by age, oldest first */
    u_char                       hash[32];    /* tenant, account, key */
    u_char                       fp[32];      /* method, path, query, body */
    u_char                       tenant[NGX_HTTP_HRIS_IDEM_TENANT];
    time_t                       created;
    ngx_pid_t                    pid;         /* running: in this worker */
    ngx_http_hris_idem_state_e   state;
    ngx_uint_t                   lost;        /* answer: "outcome unknown" */
    ngx_uint_t                   status;
    size_t                       len;
    u_char                      *body;        /* in the zone, or NULL */
} ngx_http_hris_idem_node_t;


typedef struct {
    uint32_t                     magic;
    uint32_t                     layout;
    ngx_rbtree_t                 rbtree;
    ngx_rbtree_node_t            sentinel;
    ngx_queue_t                  queue;
    ngx_http_hris_file_mark_t    mark;        /* answers kept, in the file */
} ngx_http_hris_idem_sh_t;


typedef struct {
    ngx_http_hris_idem_sh_t     *sh;
    ngx_slab_pool_t             *shpool;
    ngx_str_t                    file;
    json_t                      *initial;     /* the file, as read */
    ngx_http_hris_file_t         out;         /* its writer */
} ngx_http_hris_idem_conf_t;


/* a request's claim on a key */
typedef struct {
    ngx_http_hris_idem_conf_t   *conf;
    ngx_http_request_t          *request;
    u_char                       hash[32];
    u_char                       tenant[NGX_HTTP_HRIS_IDEM_TENANT];
    unsigned                     keep:1;
    unsigned                     done:1;

    /* with hris_redis: the claim is the fleet's, in Redis */
    ngx_http_hris_redis_t       *rd;
    u_char                       owner[32];
    ngx_http_hris_idem_begun_pt  handler;
    void                        *data;
    ngx_http_hris_idem_kept_t   *kept;
} ngx_http_hris_idem_req_t;


/*
 * The fleet's keys (hris_redis): hris:{idem:<hash>} is a hash of fp,
 * state (running|done), owner, status, body. A running claim expires
 * after an hour (a gateway that died with it: the key is free again), a
 * kept answer after 24 hours.
 */

/* ARGV: fingerprint, owner. {'ok'} | {'reused'} | {'busy'} | {'done',..} */
static ngx_http_hris_redis_script_t  ngx_http_hris_idem_begin_script;
static char  ngx_http_hris_idem_begin_lua[] =
    "local v = redis.call('HMGET', KEYS[1], 'fp', 'state', 'status', "
    "'body')\n"
    "if not v[1] then\n"
    "  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'running', "
    "'owner', ARGV[2])\n"
    "  redis.call('EXPIRE', KEYS[1], 3600)\n"
    "  return {'ok'}\n"
    "end\n"
    "if v[1] ~= ARGV[1] then return {'reused'} end\n"
    "if v[2] ~= 'done' then return {'busy'} end\n"
    "return {'done', v[3], v[4] or ''}\n";

/* ARGV: owner, status, body ("" and status 0: outcome unknown) */
static ngx_http_hris_redis_script_t  ngx_http_hris_idem_done_script;
static char  ngx_http_hris_idem_done_lua[] =
    "if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[2], "
    "'body', ARGV[3])\n"
    "redis.call('EXPIRE', KEYS[1], 86400)\n"
    "return 1\n";

/* ARGV: owner. Nothing was written: the key is free again. */
static ngx_http_hris_redis_script_t  ngx_http_hris_idem_release_script;
static char  ngx_http_hris_idem_release_lua[] =
    "local v = redis.call('HMGET', KEYS[1], 'owner', 'state')\n"
    "if v[1] == ARGV[1] and v[2] == 'running' then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n";

static ngx_uint_t  ngx_http_hris_idem_scripts_ready;




static ngx_int_t ngx_http_hris_idem_zone_init(ngx_shm_zone_t *zone,
    void *data);
static ngx_int_t ngx_http_hris_idem_seed(ngx_http_hris_idem_conf_t *conf,
    ngx_log_t *log);
static ngx_int_t ngx_http_hris_idem_hex(json_t *v, u_char *out,
    size_t len);
static void ngx_http_hris_idem_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_hris_idem_node_t *ngx_http_hris_idem_lookup(
    ngx_http_hris_idem_conf_t *conf, u_char *hash);
static void ngx_http_hris_idem_expire(ngx_http_hris_idem_conf_t *conf);
static void ngx_http_hris_idem_free(ngx_http_hris_idem_conf_t *conf,
    ngx_http_hris_idem_node_t *n);
static ngx_http_hris_idem_node_t *ngx_http_hris_idem_node(
    ngx_http_hris_idem_conf_t *conf, u_char *hash, u_char *fp,
    time_t created);
static ngx_uint_t ngx_http_hris_idem_dead(ngx_http_hris_idem_node_t *n);
static void ngx_http_hris_idem_lost(ngx_http_hris_idem_conf_t *conf,
    ngx_http_hris_idem_node_t *n);
static void ngx_http_hris_idem_fleet_reply(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);
static void ngx_http_hris_idem_fleet_done(ngx_http_hris_idem_req_t *ir,
    ngx_uint_t status, ngx_str_t *body);
static void ngx_http_hris_idem_fleet_release(ngx_http_hris_idem_req_t *ir);
static u_char *ngx_http_hris_idem_fleet_key(u_char *p, u_char *hash);
static void ngx_http_hris_idem_fleet_ignore(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);
static ngx_http_hris_idem_req_t *ngx_http_hris_idem_req(
    ngx_http_request_t *r);
static void ngx_http_hris_idem_cleanup(void *data);
static void ngx_http_hris_idem_keep_answer(ngx_http_hris_idem_req_t *ir,
    ngx_uint_t status, ngx_str_t *body, ngx_log_t *log);
static void ngx_http_hris_idem_let_go(ngx_http_hris_idem_req_t *ir);
static void ngx_http_hris_idem_hash(ngx_str_t *parts, ngx_uint_t n,
    u_char *out);
static ngx_uint_t ngx_http_hris_idem_share(ngx_http_hris_idem_conf_t *conf,
    u_char *tenant, size_t more);
static void ngx_http_hris_idem_save(ngx_http_hris_idem_conf_t *conf,
    ngx_log_t *log);
static char *ngx_http_hris_idem_snapshot(ngx_http_hris_idem_conf_t *conf,
    ngx_uint_t *serial);
static void ngx_http_hris_idem_writer_free(ngx_http_hris_idem_conf_t *conf);
static void ngx_http_hris_idem_file_done(ngx_http_hris_file_t *file,
    ngx_uint_t serial, ngx_err_t err, const char *what, ngx_log_t *log);


/* the answer kept for a request whose write went out and never answered */
static u_char  ngx_http_hris_idem_lost_body[] =
    "{\"statusCode\":504,\"error\":\"Gateway Timeout\",\"message\":\"the "
    "first request with this Idempotency-Key sent its write to the provider "
    "and ended without an answer: whether the provider carried it out is "
    "unknown: check before sending it again\",\"details\":{\"outcome\":"
    "\"unknown\"}}";


/*
 * When nginx reads its configuration: the zone, and the file of the state
 * directory (read now: the zone is filled from it when it is made).
 */

ngx_int_t
ngx_http_hris_idem_init_conf(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf)
{
    json_error_t                jerr;
    ngx_str_t                   name = ngx_string("hris_idempotency");
    ngx_shm_zone_t             *zone;
    ngx_file_info_t             fi;
    ngx_http_hris_idem_conf_t  *conf;
#if (NGX_THREADS)
    ngx_str_t                   pool = ngx_string("default");
#endif

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_hris_idem_conf_t));
    if (conf == NULL) {
        return NGX_ERROR;
    }

    hmcf->idem = conf;

    if (hmcf->state_path) {
        conf->file.len = hmcf->state_path->name.len
                         + sizeof("/" NGX_HTTP_HRIS_IDEM_FILE) - 1;
        conf->file.data = ngx_pnalloc(cf->pool, conf->file.len + 1);
        if (conf->file.data == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(conf->file.data, "%V/" NGX_HTTP_HRIS_IDEM_FILE "%Z",
                    &hmcf->state_path->name);
    }

#if (NGX_THREADS)
    conf->out.thread_pool = ngx_thread_pool_add(cf, &pool);
    if (conf->out.thread_pool == NULL) {
        return NGX_ERROR;
    }
#endif

    conf->out.path = conf->file;
    conf->out.done = ngx_http_hris_idem_file_done;
    conf->out.data = conf;

    if (conf->file.len
        && !(ngx_file_info(conf->file.data, &fi) == NGX_FILE_ERROR
             && ngx_errno == NGX_ENOENT))
    {
        conf->initial = json_load_file((char *) conf->file.data, 0, &jerr);

        if (conf->initial == NULL
            || !json_is_array(json_object_get(conf->initial, "entries")))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: %V: line %d: %s "
                               "(the Idempotency-Key answers kept: remove "
                               "the file to start without them)",
                               &conf->file, jerr.line,
                               conf->initial ? "\"entries\" must be an array"
                                             : jerr.text);
            json_decref(conf->initial);
            return NGX_ERROR;
        }

        if (ngx_http_hris_json_cleanup(cf->pool, conf->initial) != NGX_OK) {
            json_decref(conf->initial);
            return NGX_ERROR;
        }
    }

    zone = ngx_shared_memory_add(cf, &name, hmcf->idem_size,
                                 &ngx_http_hris_module);
    if (zone == NULL) {
        return NGX_ERROR;
    }

    zone->init = ngx_http_hris_idem_zone_init;
    zone->data = conf;

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_idem_zone_init(ngx_shm_zone_t *zone, void *data)
{
    ngx_http_hris_idem_conf_t  *conf = zone->data;
    ngx_http_hris_idem_sh_t    *sh;

    conf->shpool = (ngx_slab_pool_t *) zone->shm.addr;

    /* a reload keeps the zone's keys: newer than any file */
    if (data || zone->shm.exists) {
        sh = conf->shpool->data;

        if (sh == NULL || sh->magic != NGX_HTTP_HRIS_IDEM_MAGIC
            || sh->layout != NGX_HTTP_HRIS_IDEM_LAYOUT)
        {
            ngx_log_error(NGX_LOG_EMERG, zone->shm.log, 0, "hris: the "
                          "shared memory zone \"hris_idempotency\" was laid "
                          "out by another build of the module: restart "
                          "nginx to use this build (%s keeps its answers)",
                          NGX_HTTP_HRIS_IDEM_FILE);
            return NGX_ERROR;
        }

        conf->sh = sh;
        return NGX_OK;
    }

    sh = ngx_slab_calloc(conf->shpool, sizeof(ngx_http_hris_idem_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    conf->sh = sh;
    conf->shpool->data = sh;

    sh->magic = NGX_HTTP_HRIS_IDEM_MAGIC;
    sh->layout = NGX_HTTP_HRIS_IDEM_LAYOUT;

    ngx_rbtree_init(&sh->rbtree, &sh->sentinel,
                    ngx_http_hris_idem_rbtree_insert);
    ngx_queue_init(&sh->queue);

    conf->shpool->log_ctx = ngx_slab_alloc(conf->shpool,
                                           sizeof(" in hris_idempotency zone"));
    if (conf->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(conf->shpool->log_ctx, " in hris_idempotency zone%Z");

    /* a full zone is an answer (503), not an alert in the log */
    conf->shpool->log_nomem = 0;

    return ngx_http_hris_idem_seed(conf, zone->shm.log);
}


/* The file's entries into a new zone: those not expired, while they fit. */

static ngx_int_t
ngx_http_hris_idem_seed(ngx_http_hris_idem_conf_t *conf, ngx_log_t *log)
{
    json_t                     *e, *t, *s, *b;
    size_t                      i, loaded;
    u_char                      hash[32], fp[32];
    u_char                      tenant[NGX_HTTP_HRIS_IDEM_TENANT];
    ngx_http_hris_idem_node_t  *n;

    loaded = 0;

    json_array_foreach(json_object_get(conf->initial, "entries"), i, e) {
        t = json_object_get(e, "t");
        s = json_object_get(e, "s");
        b = json_object_get(e, "b");

        if (!json_is_integer(t) || !json_is_integer(s) || !json_is_string(b)
            || ngx_http_hris_idem_hex(json_object_get(e, "k"), hash, 32)
               != NGX_OK
            || ngx_http_hris_idem_hex(json_object_get(e, "f"), fp, 32)
               != NGX_OK)
        {
            ngx_log_error(NGX_LOG_WARN, log, 0, "hris: %V: entry %uz is not "
                          "a kept answer: left out", &conf->file, i);
            continue;
        }

        if (json_integer_value(t) + NGX_HTTP_HRIS_IDEM_TTL <= ngx_time()
            || ngx_http_hris_idem_lookup(conf, hash))
        {
            continue;
        }

        /* "n": the tenant's digest; a file of an older build has none */
        if (ngx_http_hris_idem_hex(json_object_get(e, "n"), tenant,
                                   NGX_HTTP_HRIS_IDEM_TENANT)
            != NGX_OK)
        {
            ngx_memzero(tenant, sizeof(tenant));
        }

        n = ngx_http_hris_idem_node(conf, hash, fp,
                                    (time_t) json_integer_value(t));
        if (n) {
            ngx_memcpy(n->tenant, tenant, NGX_HTTP_HRIS_IDEM_TENANT);
            n->len = json_string_length(b);
            n->body = n->len ? ngx_slab_alloc(conf->shpool, n->len) : NULL;
        }

        if (n == NULL || (n->len && n->body == NULL)) {
            if (n) {
                ngx_http_hris_idem_free(conf, n);
            }

            ngx_log_error(NGX_LOG_EMERG, log, 0, "hris: %V holds more kept "
                          "Idempotency-Key answers than fit in the zone: "
                          "raise \"hris_idempotency_zone_size\"",
                          &conf->file);
            return NGX_ERROR;
        }

        ngx_memcpy(n->body, json_string_value(b), n->len);
        n->state = NGX_HTTP_HRIS_IDEM_DONE;
        n->status = (ngx_uint_t) json_integer_value(s);
        loaded++;
    }

    if (loaded) {
        ngx_log_error(NGX_LOG_INFO, log, 0, "hris: %uz Idempotency-Key "
                      "answers kept from %V", loaded, &conf->file);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_idem_hex(json_t *v, u_char *out, size_t len)
{
    size_t       i;
    ngx_int_t    hi, lo;
    const char  *s;

    s = json_string_value(v);
    if (s == NULL || json_string_length(v) != 2 * len) {
        return NGX_ERROR;
    }

    for (i = 0; i < len; i++) {
        hi = ngx_hextoi((u_char *) &s[2 * i], 1);
        lo = ngx_hextoi((u_char *) &s[2 * i + 1], 1);
        if (hi == NGX_ERROR || lo == NGX_ERROR) {
            return NGX_ERROR;
        }
        out[i] = (u_char) (hi * 16 + lo);
    }

    return NGX_OK;
}


/* The request's Idempotency-Key: 1 to 255 printable ASCII characters. */

ngx_int_t
ngx_http_hris_idem_key(ngx_http_request_t *r, ngx_str_t *key)
{
    u_char           *p;
    ngx_uint_t        i, n;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;
    const char       *bad;

    ngx_str_null(key);
    n = 0;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }
            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("Idempotency-Key") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Idempotency-Key",
                               h[i].key.len) == 0)
        {
            *key = h[i].value;
            n++;
        }
    }

    if (n == 0) {
        return NGX_OK;
    }

    bad = NULL;

    if (n > 1) {
        bad = "is sent more than once";

    } else if (key->len == 0) {
        bad = "is empty";

    } else if (key->len > NGX_HTTP_HRIS_IDEM_MAX_KEY) {
        bad = "is longer than 255 characters";

    } else {
        for (p = key->data; p < key->data + key->len; p++) {
            if (*p < 0x20 || *p > 0x7e) {
                bad = "holds a character that is not printable ASCII";
                break;
            }
        }
    }

    if (bad == NULL) {
        return NGX_OK;
    }

    ngx_str_null(key);

    return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST,
               json_pack("{s:s}", "header", "Idempotency-Key"),
               "the Idempotency-Key header %s: it must be 1 to 255 printable "
               "ASCII characters, e.g. a UUID", bad);
}


ngx_int_t
ngx_http_hris_idem_begin(ngx_http_request_t *r, ngx_str_t *tenant,
    ngx_str_t *account, ngx_str_t *key, ngx_str_t *body,
    ngx_http_hris_idem_kept_t *kept)
{
    u_char                      hash[32], fp[32], th[32];
    ngx_int_t                   rc;
    ngx_str_t                   parts[4];
    ngx_pool_cleanup_t         *cln;
    ngx_http_hris_idem_req_t   *ir;
    ngx_http_hris_idem_node_t  *n;
    ngx_http_hris_main_conf_t  *hmcf;
    ngx_http_hris_idem_conf_t  *conf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);
    conf = hmcf->idem;

    parts[0] = *tenant;
    parts[1] = *account;
    parts[2] = *key;
    ngx_http_hris_idem_hash(parts, 3, hash);

    ngx_http_hris_idem_hash(tenant, 1, th);

    parts[0] = r->method_name;
    parts[1] = r->uri;
    parts[2] = r->args;
    parts[3] = *body;
    ngx_http_hris_idem_hash(parts, 4, fp);

    /* the claim's bookkeeping first: nothing to undo when it fails */
    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_hris_idem_req_t));
    if (cln == NULL) {
        return NGX_ERROR;
    }

    ir = cln->data;
    ngx_memzero(ir, sizeof(ngx_http_hris_idem_req_t));
    ir->conf = conf;
    ir->request = r;
    ir->done = 1;                       /* nothing claimed yet */
    ngx_memcpy(ir->hash, hash, 32);
    ngx_memcpy(ir->tenant, th, NGX_HTTP_HRIS_IDEM_TENANT);
    cln->handler = ngx_http_hris_idem_cleanup;

    ngx_shmtx_lock(&conf->shpool->mutex);

    ngx_http_hris_idem_expire(conf);

    n = ngx_http_hris_idem_lookup(conf, hash);

    if (n && n->state == NGX_HTTP_HRIS_IDEM_RUNNING
        && ngx_http_hris_idem_dead(n))
    {
        /* its worker died: the write may have gone out */
        ngx_http_hris_idem_lost(conf, n);
    }

    if (n == NULL) {
        if (!ngx_http_hris_idem_share(conf, th,
                 ngx_http_hris_slab_size(
                     sizeof(ngx_http_hris_idem_node_t))))
        {
            ngx_shmtx_unlock(&conf->shpool->mutex);
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "hris: no "
                          "room for a new Idempotency-Key of tenant \"%V\": "
                          "its kept answers take its share of the zone (a "
                          "quarter of \"hris_idempotency_zone_size\")",
                          tenant);
            return NGX_HTTP_HRIS_IDEM_FULL;
        }

        n = ngx_http_hris_idem_node(conf, hash, fp, ngx_time());

        if (n == NULL) {
            ngx_shmtx_unlock(&conf->shpool->mutex);
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "hris: no "
                          "room for a new Idempotency-Key: raise "
                          "\"hris_idempotency_zone_size\"");
            return NGX_HTTP_HRIS_IDEM_FULL;
        }

        ngx_memcpy(n->tenant, th, NGX_HTTP_HRIS_IDEM_TENANT);
        n->state = NGX_HTTP_HRIS_IDEM_RUNNING;
        n->pid = ngx_pid;

        ngx_shmtx_unlock(&conf->shpool->mutex);

        ir->done = 0;
        return NGX_OK;
    }

    if (ngx_memcmp(n->fp, fp, 32) != 0) {
        rc = NGX_DECLINED;

    } else if (n->state == NGX_HTTP_HRIS_IDEM_RUNNING) {
        rc = NGX_BUSY;

    } else {
        kept->status = n->status;
        kept->body.len = n->lost ? sizeof(ngx_http_hris_idem_lost_body) - 1
                                 : n->len;
        kept->body.data = ngx_pnalloc(r->pool, kept->body.len + 1);
        rc = kept->body.data ? NGX_DONE : NGX_ERROR;

        if (kept->body.data) {
            ngx_memcpy(kept->body.data,
                       n->lost ? ngx_http_hris_idem_lost_body : n->body,
                       kept->body.len);
        }
    }

    ngx_shmtx_unlock(&conf->shpool->mutex);

    return rc;
}


/*
 * The claim asked of Redis (hris_redis), for the whole fleet. NGX_AGAIN:
 * handler(data, rc) follows with what ngx_http_hris_idem_begin() would
 * have returned, or NGX_ABORT when the store could not answer.
 */

ngx_int_t
ngx_http_hris_idem_begin_fleet(ngx_http_request_t *r, ngx_str_t *tenant,
    ngx_str_t *account, ngx_str_t *key, ngx_str_t *body,
    ngx_http_hris_idem_kept_t *kept, ngx_http_hris_idem_begun_pt handler,
    void *data)
{
    u_char                       raw[16], fp[32], *p;
    ngx_str_t                    parts[4], argv[3];
    ngx_pool_cleanup_t          *cln;
    ngx_http_hris_idem_req_t    *ir;
    ngx_http_hris_main_conf_t   *hmcf;
    ngx_http_hris_redis_conf_t  *rcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);
    rcf = hmcf->redis;

    if (!ngx_http_hris_idem_scripts_ready) {
        ngx_http_hris_redis_script_init(&ngx_http_hris_idem_begin_script,
                                        ngx_http_hris_idem_begin_lua);
        ngx_http_hris_redis_script_init(&ngx_http_hris_idem_done_script,
                                        ngx_http_hris_idem_done_lua);
        ngx_http_hris_redis_script_init(&ngx_http_hris_idem_release_script,
                                        ngx_http_hris_idem_release_lua);
        ngx_http_hris_idem_scripts_ready = 1;
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_hris_idem_req_t));
    if (cln == NULL || RAND_bytes(raw, sizeof(raw)) != 1) {
        return NGX_ERROR;
    }

    ir = cln->data;
    ngx_memzero(ir, sizeof(ngx_http_hris_idem_req_t));
    ir->conf = hmcf->idem;
    ir->request = r;
    ir->done = 1;                       /* nothing claimed yet */
    ir->rd = rcf->client;
    ir->handler = handler;
    ir->data = data;
    ir->kept = kept;
    ngx_hex_dump(ir->owner, raw, sizeof(raw));
    cln->handler = ngx_http_hris_idem_cleanup;

    parts[0] = *tenant;
    parts[1] = *account;
    parts[2] = *key;
    ngx_http_hris_idem_hash(parts, 3, ir->hash);

    parts[0] = r->method_name;
    parts[1] = r->uri;
    parts[2] = r->args;
    parts[3] = *body;
    ngx_http_hris_idem_hash(parts, 4, fp);

    p = ngx_pnalloc(r->pool, sizeof("hris:{idem:}") - 1 + 64 + 64);
    if (p == NULL) {
        return NGX_ERROR;
    }

    argv[0].data = p;
    p = ngx_http_hris_idem_fleet_key(p, ir->hash);
    argv[0].len = p - argv[0].data;

    argv[1].data = p;
    argv[1].len = ngx_hex_dump(p, fp, 32) - p;

    argv[2].data = ir->owner;
    argv[2].len = sizeof(ir->owner);

    if (ngx_http_hris_redis_eval(ir->rd, r->pool,
                                 &ngx_http_hris_idem_begin_script, 1, 3, argv,
                                 ngx_http_hris_idem_fleet_reply, ir)
        == NULL)
    {
        return NGX_ABORT;
    }

    return NGX_AGAIN;
}


static void
ngx_http_hris_idem_fleet_reply(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
    ngx_http_hris_idem_req_t  *ir = data;

    ngx_int_t                   rc;
    ngx_str_t                  *what;
    ngx_http_hris_idem_kept_t  *kept = ir->kept;

    rc = NGX_ABORT;

    if (status == NGX_HTTP_HRIS_REDIS_REPLY
        && reply->type == NGX_HTTP_HRIS_REDIS_ARRAY && reply->nelts >= 1
        && reply->elts[0].type == NGX_HTTP_HRIS_REDIS_BULK)
    {
        what = &reply->elts[0].str;

        if (what->len == 2 && ngx_strncmp(what->data, "ok", 2) == 0) {
            ir->done = 0;
            rc = NGX_OK;

        } else if (what->len == 6 && ngx_strncmp(what->data, "reused", 6) == 0)
        {
            rc = NGX_DECLINED;

        } else if (what->len == 4 && ngx_strncmp(what->data, "busy", 4) == 0)
        {
            rc = NGX_BUSY;

        } else if (reply->nelts == 3
                   && reply->elts[1].type == NGX_HTTP_HRIS_REDIS_BULK
                   && reply->elts[2].type == NGX_HTTP_HRIS_REDIS_BULK)
        {
            kept->status = ngx_atoi(reply->elts[1].str.data,
                                    reply->elts[1].str.len);
            kept->body.len = reply->elts[2].str.len;

            if (kept->status == (ngx_uint_t) NGX_ERROR
                || kept->status == 0)
            {
                /* kept as "outcome unknown" */
                kept->status = NGX_HTTP_GATEWAY_TIME_OUT;
                kept->body.len = sizeof(ngx_http_hris_idem_lost_body) - 1;
                kept->body.data = ngx_pnalloc(ir->request->pool,
                                              kept->body.len);
                if (kept->body.data) {
                    ngx_memcpy(kept->body.data, ngx_http_hris_idem_lost_body,
                               kept->body.len);
                }

            } else {
                kept->body.data = ngx_pnalloc(ir->request->pool,
                                              kept->body.len + 1);
                if (kept->body.data) {
                    ngx_memcpy(kept->body.data, reply->elts[2].str.data,
                               kept->body.len);
                }
            }

            rc = kept->body.data ? NGX_DONE : NGX_ERROR;
        }
    }

    ir->handler(ir->data, rc);
}


static u_char *
ngx_http_hris_idem_fleet_key(u_char *p, u_char *hash)
{
    p = ngx_cpymem(p, "hris:{idem:", sizeof("hris:{idem:") - 1);
    p = ngx_hex_dump(p, hash, 32);
    *p++ = '}';

    return p;
}


/* body NULL: "outcome unknown" (status 0 in Redis) */

static void
ngx_http_hris_idem_fleet_done(ngx_http_hris_idem_req_t *ir,
    ngx_uint_t status, ngx_str_t *body)
{
    u_char     key[sizeof("hris:{idem:}") - 1 + 64], code[NGX_INT_T_LEN];
    ngx_str_t  argv[4];

    ir->done = 1;

    argv[0].data = key;
    argv[0].len = ngx_http_hris_idem_fleet_key(key, ir->hash) - key;
    argv[1].data = ir->owner;
    argv[1].len = sizeof(ir->owner);
    argv[2].data = code;
    argv[2].len = ngx_sprintf(code, "%ui", body ? status : 0) - code;

    if (body) {
        argv[3] = *body;
    } else {
        ngx_str_null(&argv[3]);
    }

    if (ngx_http_hris_redis_eval(ir->rd, NULL,
                                 &ngx_http_hris_idem_done_script, 1, 4, argv,
                                 ngx_http_hris_idem_fleet_ignore, NULL)
        == NULL)
    {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0, "hris: the state "
                      "store (hris_redis) could not be told a write's "
                      "answer for its Idempotency-Key: a repeat within the "
                      "hour gets 409");
    }
}


static void
ngx_http_hris_idem_fleet_release(ngx_http_hris_idem_req_t *ir)
{
    u_char     key[sizeof("hris:{idem:}") - 1 + 64];
    ngx_str_t  argv[2];

    ir->done = 1;

    argv[0].data = key;
    argv[0].len = ngx_http_hris_idem_fleet_key(key, ir->hash) - key;
    argv[1].data = ir->owner;
    argv[1].len = sizeof(ir->owner);

    (void) ngx_http_hris_redis_eval(ir->rd, NULL,
                                    &ngx_http_hris_idem_release_script, 1, 2,
                                    argv, ngx_http_hris_idem_fleet_ignore,
                                    NULL);
}


/* a handler all the same: Redis is sent the script when it lacks it */

static void
ngx_http_hris_idem_fleet_ignore(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
}


void
ngx_http_hris_idem_keep(ngx_http_request_t *r, ngx_uint_t keep)
{
    ngx_http_hris_idem_req_t  *ir;

    ir = ngx_http_hris_idem_req(r);
    if (ir) {
        ir->keep = keep ? 1 : 0;
    }
}


/* The request answers: keep what it sends, or let the key go. */

void
ngx_http_hris_idem_answer(ngx_http_request_t *r, ngx_uint_t status,
    ngx_chain_t *out, size_t len)
{
    u_char                    *p;
    ngx_str_t                  body;
    ngx_chain_t               *cl;
    ngx_http_hris_idem_req_t  *ir;

    ir = ngx_http_hris_idem_req(r);
    if (ir == NULL || ir->done) {
        return;
    }

    if (!ir->keep) {
        ngx_http_hris_idem_abandon(r);
        return;
    }

    body.len = len;
    body.data = ngx_pnalloc(r->pool, len + 1);

    if (body.data == NULL) {
        /* cannot copy it: the loss is said, never a second write */
        ngx_http_hris_idem_finish(r, NGX_HTTP_GATEWAY_TIME_OUT, NULL);
        return;
    }

    p = body.data;
    for (cl = out; cl; cl = cl->next) {
        if (!ngx_buf_in_memory(cl->buf)) {
            continue;
        }
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }
    body.len = p - body.data;

    ngx_http_hris_idem_finish(r, status, &body);
}


/* body NULL: "504, outcome unknown" */

ngx_int_t
ngx_http_hris_idem_finish(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body)
{
    ngx_http_hris_idem_req_t  *ir;

    ir = ngx_http_hris_idem_req(r);
    if (ir && !ir->done) {
        ngx_http_hris_idem_keep_answer(ir, status, body, r->connection->log);
    }

    return NGX_OK;
}


/*
 * Works on the claim itself, not through the request: a pool cleanup
 * runs after nginx has taken r->pool away.
 */

static void
ngx_http_hris_idem_keep_answer(ngx_http_hris_idem_req_t *ir,
    ngx_uint_t status, ngx_str_t *body, ngx_log_t *log)
{
    ngx_uint_t                  full;
    ngx_http_hris_idem_node_t  *n;
    ngx_http_hris_idem_conf_t  *conf;

    if (ir->rd) {
        ngx_http_hris_idem_fleet_done(ir, status, body);
        return;
    }

    ir->done = 1;
    conf = ir->conf;
    full = 0;

    ngx_shmtx_lock(&conf->shpool->mutex);

    n = ngx_http_hris_idem_lookup(conf, ir->hash);

    if (n && n->state == NGX_HTTP_HRIS_IDEM_RUNNING && n->pid == ngx_pid) {
        n->body = (body && body->len
                   && ngx_http_hris_idem_share(conf, n->tenant,
                          ngx_http_hris_slab_size(body->len)))
                  ? ngx_slab_alloc_locked(conf->shpool, body->len) : NULL;

        if (body == NULL || (body->len && n->body == NULL)) {
            /*
             * No answer, or no room for it: the key keeps "outcome
             * unknown", which needs no room, so that the write is never
             * let through again.
             */
            full = (body != NULL);
            n->lost = 1;
            n->len = 0;
            n->status = NGX_HTTP_GATEWAY_TIME_OUT;

        } else {
            ngx_memcpy(n->body, body->data, body->len);
            n->len = body->len;
            n->status = status;
        }

        n->state = NGX_HTTP_HRIS_IDEM_DONE;
        ngx_http_hris_file_mark_dirty(&conf->sh->mark);
    }

    ngx_shmtx_unlock(&conf->shpool->mutex);

    if (full) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "hris: no room to keep the answer "
                      "of a write for its Idempotency-Key (the zone is full, "
                      "or the tenant's answers take its quarter of it): a "
                      "repeat gets 504 (outcome unknown); raise "
                      "\"hris_idempotency_zone_size\"");
    }

    ngx_http_hris_idem_save(conf, log);
}


void
ngx_http_hris_idem_abandon(ngx_http_request_t *r)
{
    ngx_http_hris_idem_req_t  *ir;

    ir = ngx_http_hris_idem_req(r);
    if (ir && !ir->done) {
        ngx_http_hris_idem_let_go(ir);
    }
}


static void
ngx_http_hris_idem_let_go(ngx_http_hris_idem_req_t *ir)
{
    ngx_http_hris_idem_node_t  *n;
    ngx_http_hris_idem_conf_t  *conf;

    if (ir->rd) {
        ngx_http_hris_idem_fleet_release(ir);
        return;
    }

    ir->done = 1;
    conf = ir->conf;

    ngx_shmtx_lock(&conf->shpool->mutex);

    n = ngx_http_hris_idem_lookup(conf, ir->hash);

    if (n && n->state == NGX_HTTP_HRIS_IDEM_RUNNING && n->pid == ngx_pid) {
        ngx_http_hris_idem_free(conf, n);
    }

    ngx_shmtx_unlock(&conf->shpool->mutex);
}


/* The request ended without answering (the client went away, ...). */

static void
ngx_http_hris_idem_cleanup(void *data)
{
    ngx_http_hris_idem_req_t  *ir = data;

    if (ir->done) {
        return;
    }

    if (ir->keep) {
        ngx_http_hris_idem_keep_answer(ir, NGX_HTTP_GATEWAY_TIME_OUT, NULL,
                                       ngx_cycle->log);

    } else {
        ngx_http_hris_idem_let_go(ir);
    }
}


static ngx_http_hris_idem_req_t *
ngx_http_hris_idem_req(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t  *cln;

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_hris_idem_cleanup) {
            return cln->data;
        }
    }

    return NULL;
}


/* SHA-256 of the parts, each preceded by its length: no ambiguity */

static void
ngx_http_hris_idem_hash(ngx_str_t *parts, ngx_uint_t n, u_char *out)
{
    uint64_t      len;
    ngx_uint_t    i;
    unsigned int  olen;
    EVP_MD_CTX   *md;

    md = EVP_MD_CTX_new();

    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        ngx_memzero(out, 32);
        EVP_MD_CTX_free(md);
        return;
    }

    for (i = 0; i < n; i++) {
        len = parts[i].len;
        EVP_DigestUpdate(md, &len, sizeof(len));
        EVP_DigestUpdate(md, parts[i].data, parts[i].len);
    }

    olen = 32;
    EVP_DigestFinal_ex(md, out, &olen);
    EVP_MD_CTX_free(md);
}


static void
ngx_http_hris_idem_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t          **p;
    ngx_http_hris_idem_node_t   *n, *t;

    for ( ;; ) {
        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            n = (ngx_http_hris_idem_node_t *) node;
            t = (ngx_http_hris_idem_node_t *) temp;
            p = (ngx_memcmp(n->hash, t->hash, 32) < 0) ? &temp->left
                                                       : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_http_hris_idem_node_t *
ngx_http_hris_idem_lookup(ngx_http_hris_idem_conf_t *conf, u_char *hash)
{
    ngx_int_t                   rc;
    ngx_rbtree_key_t            key;
    ngx_rbtree_node_t          *node, *sentinel;
    ngx_http_hris_idem_node_t  *n;

    ngx_memcpy(&key, hash, sizeof(key));

    node = conf->sh->rbtree.root;
    sentinel = conf->sh->rbtree.sentinel;

    while (node != sentinel) {
        if (key != node->key) {
            node = (key < node->key) ? node->left : node->right;
            continue;
        }

        n = (ngx_http_hris_idem_node_t *) node;
        rc = ngx_memcmp(hash, n->hash, 32);

        if (rc == 0) {
            return n;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/* Keys older than 24 hours go (the zone's lock is held). */

static void
ngx_http_hris_idem_expire(ngx_http_hris_idem_conf_t *conf)
{
    ngx_queue_t                *q;
    ngx_http_hris_idem_node_t  *n;

    while (!ngx_queue_empty(&conf->sh->queue)) {
        q = ngx_queue_head(&conf->sh->queue);
        n = ngx_queue_data(q, ngx_http_hris_idem_node_t, queue);

        if (n->created + NGX_HTTP_HRIS_IDEM_TTL > ngx_time()) {
            break;
        }

        /* a request running for a day: its key goes when it answers */
        if (n->state == NGX_HTTP_HRIS_IDEM_RUNNING
            && !ngx_http_hris_idem_dead(n))
        {
            break;
        }

        ngx_http_hris_idem_free(conf, n);
    }
}


/*
 * Whether the tenant's entries, and more bytes, stay within its share of
 * the zone: a quarter, at least NGX_HTTP_HRIS_IDEM_FLOOR. Counted from
 * the queue itself (the lock is held), so that no tally can drift from
 * what the zone holds.
 */

static ngx_uint_t
ngx_http_hris_idem_share(ngx_http_hris_idem_conf_t *conf, u_char *tenant,
    size_t more)
{
    size_t                      bytes, cap;
    ngx_queue_t                *q;
    ngx_http_hris_idem_node_t  *n;

    cap = (size_t) (conf->shpool->end - (u_char *) conf->shpool) / 4;
    cap = ngx_max(cap, NGX_HTTP_HRIS_IDEM_FLOOR);
    bytes = more;

    for (q = ngx_queue_head(&conf->sh->queue);
         q != ngx_queue_sentinel(&conf->sh->queue);
         q = ngx_queue_next(q))
    {
        n = ngx_queue_data(q, ngx_http_hris_idem_node_t, queue);

        if (ngx_memcmp(n->tenant, tenant, NGX_HTTP_HRIS_IDEM_TENANT) != 0) {
            continue;
        }

        bytes += ngx_http_hris_slab_size(
                     sizeof(ngx_http_hris_idem_node_t));

        if (n->body) {
            bytes += ngx_http_hris_slab_size(n->len);
        }

        if (bytes > cap) {
            return 0;
        }
    }

    return bytes <= cap;
}


static void
ngx_http_hris_idem_free(ngx_http_hris_idem_conf_t *conf,
    ngx_http_hris_idem_node_t *n)
{
    ngx_queue_remove(&n->queue);
    ngx_rbtree_delete(&conf->sh->rbtree, &n->node);

    if (n->body) {
        ngx_slab_free_locked(conf->shpool, n->body);
    }

    ngx_slab_free_locked(conf->shpool, n);
}


/* A new entry, by age at the queue's end (the lock is held). */

static ngx_http_hris_idem_node_t *
ngx_http_hris_idem_node(ngx_http_hris_idem_conf_t *conf, u_char *hash,
    u_char *fp, time_t created)
{
    ngx_queue_t                *q;
    ngx_http_hris_idem_node_t  *n, *o;

    n = ngx_slab_calloc_locked(conf->shpool,
                               sizeof(ngx_http_hris_idem_node_t));
    if (n == NULL) {
        return NULL;
    }

    ngx_memcpy(n->hash, hash, 32);
    ngx_memcpy(n->fp, fp, 32);
    ngx_memcpy(&n->node.key, hash, sizeof(ngx_rbtree_key_t));
    n->created = created;

    ngx_rbtree_insert(&conf->sh->rbtree, &n->node);

    /* entries from the file may come in any order: keep the queue sorted */
    for (q = ngx_queue_last(&conf->sh->queue);
         q != ngx_queue_sentinel(&conf->sh->queue);
         q = ngx_queue_prev(q))
    {
        o = ngx_queue_data(q, ngx_http_hris_idem_node_t, queue);
        if (o->created <= created) {
            break;
        }
    }

    ngx_queue_insert_after(q, &n->queue);

    return n;
}


/* whether the worker that runs the entry's request is gone */

static ngx_uint_t
ngx_http_hris_idem_dead(ngx_http_hris_idem_node_t *n)
{
    if (n->pid == ngx_pid) {
        return 0;
    }

    return kill(n->pid, 0) == -1 && ngx_errno == NGX_ESRCH;
}


/*
 * A running request whose worker died: it may have sent its write, so
 * the key keeps "504, outcome unknown" (the lock is held).
 */

static void
ngx_http_hris_idem_lost(ngx_http_hris_idem_conf_t *conf,
    ngx_http_hris_idem_node_t *n)
{
    n->state = NGX_HTTP_HRIS_IDEM_DONE;
    n->status = NGX_HTTP_GATEWAY_TIME_OUT;
    n->lost = 1;
    ngx_http_hris_file_mark_dirty(&conf->sh->mark);
}


/*
 * The kept answers to the file, by one worker at a time: the one that
 * takes the writer's mark writes, and writes again when more answers were
 * kept meanwhile (a writer that died is taken over after 10 s).
 */

static void
ngx_http_hris_idem_save(ngx_http_hris_idem_conf_t *conf, ngx_log_t *log)
{
    char                        *text;
    ngx_uint_t                   serial;

    if (conf->file.len == 0) {
        return;
    }

    ngx_shmtx_lock(&conf->shpool->mutex);

    if (!ngx_http_hris_file_mark_take(&conf->sh->mark)) {
        ngx_shmtx_unlock(&conf->shpool->mutex);
        return;
    }

    text = ngx_http_hris_idem_snapshot(conf, &serial);

    if (text == NULL) {
        ngx_http_hris_file_mark_release(&conf->sh->mark);
    }

    ngx_shmtx_unlock(&conf->shpool->mutex);

    if (text == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "hris: no memory for a snapshot "
                      "of the Idempotency-Key answers for \"%V\"",
                      &conf->file);
        return;
    }

    if (ngx_http_hris_file_write(&conf->out, text, serial, log) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "hris: no memory to write the "
                      "Idempotency-Key answers to \"%V\"", &conf->file);
        ngx_http_hris_idem_writer_free(conf);
    }
}


/* the kept answers as JSON text (malloc'ed); the lock is held */

static char *
ngx_http_hris_idem_snapshot(ngx_http_hris_idem_conf_t *conf,
    ngx_uint_t *serial)
{
    char                       *text;
    json_t                     *entries, *e, *file;
    u_char                      k[64], f[64], t[2 * NGX_HTTP_HRIS_IDEM_TENANT];
    ngx_queue_t                *q;
    ngx_http_hris_idem_node_t  *n;

    entries = json_array();
    if (entries == NULL) {
        return NULL;
    }

    for (q = ngx_queue_head(&conf->sh->queue);
         q != ngx_queue_sentinel(&conf->sh->queue);
         q = ngx_queue_next(q))
    {
        n = ngx_queue_data(q, ngx_http_hris_idem_node_t, queue);

        if (n->state != NGX_HTTP_HRIS_IDEM_DONE) {
            continue;
        }

        ngx_hex_dump(k, n->hash, 32);
        ngx_hex_dump(f, n->fp, 32);
        ngx_hex_dump(t, n->tenant, NGX_HTTP_HRIS_IDEM_TENANT);

        e = json_pack("{s:s#,s:s#,s:s#,s:I,s:i,s:s#}", "k", k, (int) 64,
                      "f", f, (int) 64, "n", t, (int) sizeof(t),
                      "t", (json_int_t) n->created,
                      "s", (int) n->status,
                      "b", n->lost ? (char *) ngx_http_hris_idem_lost_body
                                   : n->body ? (char *) n->body : "",
                      n->lost ? (int) sizeof(ngx_http_hris_idem_lost_body) - 1
                              : (int) n->len);

        if (e == NULL || json_array_append_new(entries, e) != 0) {
            json_decref(entries);
            return NULL;
        }
    }

    file = json_pack("{s:i,s:o}", "version", 1, "entries", entries);
    if (file == NULL) {
        return NULL;
    }

    *serial = conf->sh->mark.serial;

    text = json_dumps(file, JSON_COMPACT);
    json_decref(file);

    return text;
}


/* In the worker: the writer's mark let go, and a newer snapshot written */

static void
ngx_http_hris_idem_file_done(ngx_http_hris_file_t *file, ngx_uint_t serial,
    ngx_err_t err, const char *what, ngx_log_t *log)
{
    ngx_uint_t                  again;
    ngx_http_hris_idem_conf_t  *conf = file->data;

    if (err) {
        ngx_log_error(NGX_LOG_ERR, log, err, "hris: %s \"%V\" failed: "
                      "the Idempotency-Key answers kept since the last "
                      "write would not survive a restart", what, &file->path);
    }

    ngx_shmtx_lock(&conf->shpool->mutex);
    again = ngx_http_hris_file_mark_done(&conf->sh->mark, serial, err);
    ngx_shmtx_unlock(&conf->shpool->mutex);

    if (again) {
        ngx_http_hris_idem_save(conf, log);
    }
}


/* a write that could not start: another may */

static void
ngx_http_hris_idem_writer_free(ngx_http_hris_idem_conf_t *conf)
{
    ngx_shmtx_lock(&conf->shpool->mutex);
    ngx_http_hris_file_mark_release(&conf->sh->mark);
    ngx_shmtx_unlock(&conf->shpool->mutex);
}

/*
 * Run-time accounts for a fleet (hris_redis): an account created, changed
 * or deleted through one gateway (administration API, connect flow) is
 * served by every gateway on the same Redis within a second.
 *
 * The change is made as without Redis (ngx_http_hris_store.c: checked and
 * stored in this gateway's zone, which answers), then published:
 *
 *     hris:{accounts}:changes   hash: id -> the account's JSON, "null" (a
 *                               deleted accounts-file account) or "-" (a
 *                               deleted run-time account)
 *     hris:{accounts}:gen       a counter, raised by each change
 *     hris:{accounts}:log       sorted set: id scored by the counter's
 *                               value at its latest change
 *
 * Each worker looks at the counter twice a second and, when it moved,
 * reads the accounts changed since the value it saw (the log gives their
 * ids, the hash their values; the whole hash only at the start or when
 * many changed), and merges them into its gateway's zone account by
 * account (compare-and-set, as the administration API does): the workers
 * then compile them as they compile their own gateway's changes, and the
 * state file keeps them for a restart with Redis down.
 *
 * Limits: two gateways creating the same id within that half second both
 * say 201, and the last publication wins everywhere; a change made while
 * Redis is unreachable stays this gateway's until it is made again.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_redis.h"
#include "ngx_http_hris_fleet_mirror.h"


#define NGX_HTTP_HRIS_ACCOUNTS_TRIES 8


typedef struct {
    ngx_http_hris_main_conf_t     *hmcf;
    ngx_http_hris_redis_t         *rd;
    ngx_log_t                     *log;
    ngx_http_hris_fleet_mirror_t   mirror;     /* the changes hash's */
} ngx_http_hris_accounts_sync_t;


static ngx_int_t ngx_http_hris_accounts_merge(
    ngx_http_hris_fleet_mirror_t *m, ngx_http_hris_redis_reply_t *reply);
static ngx_int_t ngx_http_hris_accounts_merge_one(
    ngx_http_hris_accounts_sync_t *as, ngx_pool_t *pool, ngx_str_t *id,
    ngx_str_t *val, ngx_uint_t *changed);
static void ngx_http_hris_accounts_ignore(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);


static ngx_str_t  ngx_http_hris_accounts_changes =
    ngx_string("hris:{accounts}:changes");
static ngx_str_t  ngx_http_hris_accounts_gen =
    ngx_string("hris:{accounts}:gen");
static ngx_str_t  ngx_http_hris_accounts_log =
    ngx_string("hris:{accounts}:log");

/* KEYS: changes, gen, log. ARGV: id, value. */
static ngx_http_hris_redis_script_t  ngx_http_hris_accounts_publish_script;
static char  ngx_http_hris_accounts_publish_lua[] =
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "local gen = redis.call('INCR', KEYS[2])\n"
    "redis.call('ZADD', KEYS[3], gen, ARGV[1])\n"
    "return gen\n";

static ngx_http_hris_accounts_sync_t  *ngx_http_hris_accounts_sync;


ngx_int_t
ngx_http_hris_accounts_sync_init_process(ngx_cycle_t *cycle,
    ngx_http_hris_main_conf_t *hmcf)
{
    ngx_http_hris_accounts_sync_t  *as;
    ngx_http_hris_redis_conf_t     *rcf = hmcf->redis;

    if (rcf == NULL || rcf->client == NULL) {
        return NGX_OK;
    }

    as = ngx_pcalloc(cycle->pool, sizeof(ngx_http_hris_accounts_sync_t));
    if (as == NULL) {
        return NGX_ERROR;
    }

    as->hmcf = hmcf;
    as->rd = rcf->client;
    as->log = cycle->log;

    as->mirror.hmcf = hmcf;
    as->mirror.counter = ngx_http_hris_accounts_gen;
    as->mirror.hash = ngx_http_hris_accounts_changes;
    as->mirror.log_key = ngx_http_hris_accounts_log;
    as->mirror.merge = ngx_http_hris_accounts_merge;
    as->mirror.data = as;

    ngx_http_hris_redis_script_init(&ngx_http_hris_accounts_publish_script,
                                    ngx_http_hris_accounts_publish_lua);

    ngx_http_hris_accounts_sync = as;

    ngx_http_hris_fleet_mirror_start(&as->mirror, cycle);

    return NGX_OK;
}


/*
 * After a change stored in this gateway's zone: tell the fleet. value
 * NULL: a run-time account deleted; JSON null: a file account deleted.
 */

void
ngx_http_hris_accounts_publish(ngx_http_hris_main_conf_t *hmcf,
    ngx_pool_t *pool, ngx_str_t *id, json_t *value)
{
    char                           *dump;
    ngx_str_t                       argv[5];
    ngx_http_hris_accounts_sync_t  *as = ngx_http_hris_accounts_sync;

    if (hmcf->redis == NULL || as == NULL) {
        return;
    }

    dump = NULL;

    if (value == NULL) {
        ngx_str_set(&argv[4], "-");

    } else {
        dump = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
        if (dump == NULL) {
            return;
        }
        argv[4].data = (u_char *) dump;
        argv[4].len = ngx_strlen(dump);
    }

    argv[0] = ngx_http_hris_accounts_changes;
    argv[1] = ngx_http_hris_accounts_gen;
    argv[2] = ngx_http_hris_accounts_log;
    argv[3] = *id;

    /* the command holds its own copy of the arguments */
    if (ngx_http_hris_redis_eval(as->rd, NULL,
                                 &ngx_http_hris_accounts_publish_script, 3, 5,
                                 argv, ngx_http_hris_accounts_ignore, NULL)
        == NULL)
    {
        ngx_log_error(NGX_LOG_ERR, as->log, 0, "hris: integrated account "
                      "\"%V\" was changed on this gateway only: the state "
                      "store (hris_redis) cannot be used now", id);
    }

    free(dump);
}


/*
 * The fleet's changes into this gateway's zone, account by account
 * (compare-and-set on each one's version, as the administration API
 * does): reply holds the accounts changed since the last merge, or
 * every account (id, value, id, value...).
 */

static ngx_int_t
ngx_http_hris_accounts_merge(ngx_http_hris_fleet_mirror_t *m,
    ngx_http_hris_redis_reply_t *reply)
{
    json_t                         *v;
    ngx_int_t                       rc;
    ngx_uint_t                      i, changed;
    ngx_pool_t                     *pool;
    ngx_http_hris_accounts_sync_t  *as = m->data;

    pool = ngx_create_pool(4096, as->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_OK;
    changed = 0;

    for (i = 0; rc == NGX_OK && i + 1 < reply->nelts; i += 2) {

        v = json_stringn((char *) reply->elts[i].str.data,
                         reply->elts[i].str.len);

        if (ngx_http_hris_account_id_valid(v)) {
            rc = ngx_http_hris_accounts_merge_one(as, pool,
                                                  &reply->elts[i].str,
                                                  &reply->elts[i + 1].str,
                                                  &changed);
        }

        json_decref(v);

        /* the copies of the accounts read go with each few */
        if (i % 64 == 62) {
            ngx_reset_pool(pool);
        }
    }

    if (changed) {
        ngx_log_error(NGX_LOG_INFO, as->log, 0, "hris: %ui integrated "
                      "accounts changed through other gateways are served "
                      "here now", changed);
        ngx_http_hris_state_save(as->hmcf, pool, as->log);
    }

    ngx_destroy_pool(pool);

    return rc;
}


/* one account: "-" a run-time account deleted, else its JSON (or null) */

static ngx_int_t
ngx_http_hris_accounts_merge_one(ngx_http_hris_accounts_sync_t *as,
    ngx_pool_t *pool, ngx_str_t *id, ngx_str_t *val, ngx_uint_t *changed)
{
    json_t      *v, *old, *t;
    ngx_int_t    rc;
    ngx_str_t    text, tenant, *set;
    ngx_uint_t   tries, version, same;

    v = NULL;

    if (!(val->len == 1 && val->data[0] == '-')) {
        v = json_loadb((char *) val->data, val->len, JSON_DECODE_ANY, NULL);

        if (v == NULL || !(json_is_object(v) || json_is_null(v))) {
            json_decref(v);
            return NGX_OK;
        }
    }

    set = v ? val : NULL;
    rc = NGX_ERROR;

    t = json_object_get(v, "tenant");
    tenant.data = (u_char *) json_string_value(t);
    tenant.len = json_string_length(t);

    for (tries = 0; tries < NGX_HTTP_HRIS_ACCOUNTS_TRIES; tries++) {

        if (ngx_http_hris_shm_account_get(as->hmcf, pool, id, &text, &version)
            != NGX_OK)
        {
            break;
        }

        if (text.data == NULL || v == NULL) {
            same = (text.data == NULL && v == NULL);

        } else {
            old = json_loadb((char *) text.data, text.len, JSON_DECODE_ANY,
                             NULL);
            same = json_equal(old, v);
            json_decref(old);
        }

        if (same) {
            rc = NGX_OK;
            break;
        }

        /* made on another gateway: counted in its tenant's share, as is */
        rc = ngx_http_hris_shm_account_set(as->hmcf, id, version, set,
                                           tenant.len ? &tenant : NULL, 0);

        if (rc == NGX_OK) {
            (*changed)++;
            break;
        }

        if (rc != NGX_BUSY) {
            ngx_log_error(NGX_LOG_ERR, as->log, 0, "hris: no room for the "
                          "fleet's run-time accounts in the shared zone: "
                          "raise \"hris_zone_size\"");
            break;
        }

        /* changed on this gateway meanwhile: compare again */
        rc = NGX_ERROR;
    }

    json_decref(v);

    return rc;
}


static void
ngx_http_hris_accounts_ignore(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
}

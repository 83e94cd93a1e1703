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
 *
 * Each worker looks at the counter twice a second and, when it moved,
 * merges the changes into its gateway's zone (compare-and-set on the
 * zone's generation, as the administration API does): the workers then
 * compile them as they compile their own gateway's changes, and the state
 * file keeps them for a restart with Redis down.
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
static void ngx_http_hris_accounts_ignore(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);


static ngx_str_t  ngx_http_hris_accounts_changes =
    ngx_string("hris:{accounts}:changes");
static ngx_str_t  ngx_http_hris_accounts_gen =
    ngx_string("hris:{accounts}:gen");

/* KEYS: changes, gen. ARGV: id, value. */
static ngx_http_hris_redis_script_t  ngx_http_hris_accounts_publish_script;
static char  ngx_http_hris_accounts_publish_lua[] =
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "return redis.call('INCR', KEYS[2])\n";

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
    ngx_str_t                       argv[4];
    ngx_http_hris_accounts_sync_t  *as = ngx_http_hris_accounts_sync;

    if (hmcf->redis == NULL || as == NULL) {
        return;
    }

    dump = NULL;

    if (value == NULL) {
        ngx_str_set(&argv[3], "-");

    } else {
        dump = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
        if (dump == NULL) {
            return;
        }
        argv[3].data = (u_char *) dump;
        argv[3].len = ngx_strlen(dump);
    }

    argv[0] = ngx_http_hris_accounts_changes;
    argv[1] = ngx_http_hris_accounts_gen;
    argv[2] = *id;

    /* the command holds its own copy of the arguments */
    if (ngx_http_hris_redis_eval(as->rd, NULL,
                                 &ngx_http_hris_accounts_publish_script, 2, 4,
                                 argv, ngx_http_hris_accounts_ignore, NULL)
        == NULL)
    {
        ngx_log_error(NGX_LOG_ERR, as->log, 0, "hris: integrated account "
                      "\"%V\" was changed on this gateway only: the state "
                      "store (hris_redis) cannot be used now", id);
    }

    free(dump);
}


/* The fleet's changes into this gateway's zone (compare-and-set). */

static ngx_int_t
ngx_http_hris_accounts_merge(ngx_http_hris_fleet_mirror_t *m,
    ngx_http_hris_redis_reply_t *reply)
{
    char                           *dump;
    json_t                         *all, *v, *old;
    ngx_int_t                       rc;
    ngx_str_t                       text, *id, *val;
    ngx_uint_t                      i, gen, tries, changed;
    ngx_pool_t                     *pool;
    ngx_http_hris_accounts_sync_t  *as = m->data;

    pool = ngx_create_pool(4096, as->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    for (tries = 0; tries < NGX_HTTP_HRIS_ACCOUNTS_TRIES; tries++) {

        if (ngx_http_hris_shm_accounts_get(as->hmcf, pool, &text, &gen)
            != NGX_OK)
        {
            break;
        }

        all = json_loadb((char *) text.data, text.len, 0, NULL);
        if (!json_is_object(all)) {
            json_decref(all);
            break;
        }

        changed = 0;

        for (i = 0; i + 1 < reply->nelts; i += 2) {
            id = &reply->elts[i].str;
            val = &reply->elts[i + 1].str;

            v = json_stringn((char *) id->data, id->len);
            if (!ngx_http_hris_account_id_valid(v)) {
                json_decref(v);
                continue;
            }
            json_decref(v);

            old = json_object_getn(all, (char *) id->data, id->len);

            if (val->len == 1 && val->data[0] == '-') {
                if (old) {
                    json_object_deln(all, (char *) id->data, id->len);
                    changed = 1;
                }
                continue;
            }

            v = json_loadb((char *) val->data, val->len, JSON_DECODE_ANY,
                           NULL);

            if (v == NULL || !(json_is_object(v) || json_is_null(v))) {
                json_decref(v);
                continue;
            }

            if (old && json_equal(old, v)) {
                json_decref(v);
                continue;
            }

            json_object_setn_new(all, (char *) id->data, id->len, v);
            changed = 1;
        }

        if (!changed) {
            json_decref(all);
            rc = NGX_OK;
            break;
        }

        dump = json_dumps(all, JSON_COMPACT);
        json_decref(all);

        if (dump == NULL) {
            break;
        }

        text.data = (u_char *) dump;
        text.len = ngx_strlen(dump);

        rc = ngx_http_hris_shm_accounts_set(as->hmcf, gen, &text);
        free(dump);

        if (rc == NGX_OK) {
            ngx_log_error(NGX_LOG_INFO, as->log, 0, "hris: integrated "
                          "accounts changed through other gateways are "
                          "served here now");
            ngx_http_hris_state_save(as->hmcf, pool, as->log);
            break;
        }

        if (rc != NGX_BUSY) {
            ngx_log_error(NGX_LOG_ERR, as->log, 0, "hris: no room for the "
                          "fleet's run-time accounts in the shared zone: "
                          "raise \"hris_zone_size\"");
            break;
        }

        /* this gateway changed its accounts meanwhile: merge again */
        rc = NGX_ERROR;
    }

    ngx_destroy_pool(pool);

    return rc;
}


static void
ngx_http_hris_accounts_ignore(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
}

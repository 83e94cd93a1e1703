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
 *
 * A tenant's cap on run-time accounts (hris_tenant_accounts, a quarter of
 * hris_zone_size) holds for the fleet: before a change is stored, a
 * script claims its slot atomically in
 *
 *     hris:{accounts}:owners    hash: id -> "<tenant digest>:<bytes>" of
 *                               each counted run-time account
 *     hris:{accounts}:tenants   hash: "<digest>:n", "<digest>:b" -> the
 *                               tenant's accounts and their bytes
 *
 * and each publication sets the account's entry as stored (a delete, or
 * an accounts-file account, drops it). A claim whose change then fails
 * is given back; one whose gateway died before either keeps its slot
 * until that id is stored or deleted. Redis unreachable: the gateway's
 * own zone counts alone (it always does too).
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
static void ngx_http_hris_accounts_claimed(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);
static void ngx_http_hris_accounts_ignore(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);


static ngx_str_t  ngx_http_hris_accounts_changes =
    ngx_string("hris:{accounts}:changes");
static ngx_str_t  ngx_http_hris_accounts_gen =
    ngx_string("hris:{accounts}:gen");
static ngx_str_t  ngx_http_hris_accounts_log =
    ngx_string("hris:{accounts}:log");

static ngx_str_t  ngx_http_hris_accounts_owners =
    ngx_string("hris:{accounts}:owners");
static ngx_str_t  ngx_http_hris_accounts_tenants =
    ngx_string("hris:{accounts}:tenants");

/* the account id's entry in owners: moved to tenant d (none: '') */
#define NGX_HTTP_HRIS_ACCOUNTS_OWN_LUA                                       \
    "local function own(ko, kt, id, d, want)\n"                              \
    "  local old = redis.call('HGET', ko, id)\n"                             \
    "  if old then\n"                                                       \
    "    local od, ob = string.match(old, '^(%x+):(%d+)$')\n"                \
    "    if od then\n"                                                      \
    "      redis.call('HINCRBY', kt, od .. ':n', -1)\n"                      \
    "      redis.call('HINCRBY', kt, od .. ':b', -tonumber(ob))\n"           \
    "    end\n"                                                             \
    "  end\n"                                                               \
    "  if d == '' then\n"                                                   \
    "    redis.call('HDEL', ko, id)\n"                                      \
    "    return\n"                                                          \
    "  end\n"                                                               \
    "  redis.call('HINCRBY', kt, d .. ':n', 1)\n"                            \
    "  redis.call('HINCRBY', kt, d .. ':b', want)\n"                         \
    "  redis.call('HSET', ko, id, d .. ':' .. want)\n"                       \
    "end\n"

/*
 * KEYS: changes, gen, log, owners, tenants. ARGV: id, value, the tenant
 * digest it counts for ('' none), its bytes.
 */
static ngx_http_hris_redis_script_t  ngx_http_hris_accounts_publish_script;
static char  ngx_http_hris_accounts_publish_lua[] =
    NGX_HTTP_HRIS_ACCOUNTS_OWN_LUA
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "local gen = redis.call('INCR', KEYS[2])\n"
    "redis.call('ZADD', KEYS[3], gen, ARGV[1])\n"
    "own(KEYS[4], KEYS[5], ARGV[1], ARGV[3], tonumber(ARGV[4]))\n"
    "return gen\n";

/*
 * KEYS: owners, tenants, changes. ARGV: id, digest, bytes, the cap in
 * accounts, in bytes. 0: claimed, or nothing to claim: another tenant's
 * id, or an account the count does not know yet (stored before the
 * count was kept, or Redis was emptied): the change stores or refuses
 * it, and its publication counts it; 1: over the count, 2: over the
 * bytes.
 */
static ngx_http_hris_redis_script_t  ngx_http_hris_accounts_claim_script;
static char  ngx_http_hris_accounts_claim_lua[] =
    NGX_HTTP_HRIS_ACCOUNTS_OWN_LUA
    "local d, want = ARGV[2], tonumber(ARGV[3])\n"
    "local old = redis.call('HGET', KEYS[1], ARGV[1]) or ''\n"
    "local od, ob = string.match(old, '^(%x+):(%d+)$')\n"
    "if od and od ~= d then return 0 end\n"
    "local v = redis.call('HGET', KEYS[3], ARGV[1])\n"
    "if not od and v and v ~= '-' and v ~= 'null' then return 0 end\n"
    "local n = tonumber(redis.call('HGET', KEYS[2], d .. ':n') or '0')\n"
    "local b = tonumber(redis.call('HGET', KEYS[2], d .. ':b') or '0')\n"
    "if od then\n"
    "  ob = tonumber(ob)\n"
    "  if want > ob and b - ob + want > tonumber(ARGV[5]) then\n"
    "    return 2\n"
    "  end\n"
    "  return 0\n"
    "end\n"
    "if n + 1 > tonumber(ARGV[4]) then return 1 end\n"
    "if b + want > tonumber(ARGV[5]) then return 2 end\n"
    "own(KEYS[1], KEYS[2], ARGV[1], d, want)\n"
    "return 0\n";

/*
 * A claim given back when its change failed: KEYS: owners, tenants,
 * changes. ARGV: id. Only if the fleet has no account of that id.
 */
static ngx_http_hris_redis_script_t  ngx_http_hris_accounts_unclaim_script;
static char  ngx_http_hris_accounts_unclaim_lua[] =
    NGX_HTTP_HRIS_ACCOUNTS_OWN_LUA
    "local v = redis.call('HGET', KEYS[3], ARGV[1])\n"
    "if v and v ~= '-' and v ~= 'null' then return 0 end\n"
    "own(KEYS[1], KEYS[2], ARGV[1], '', 0)\n"
    "return 1\n";


typedef struct {
    ngx_http_request_t                *request;
    ngx_http_hris_accounts_claimed_pt  handler;
    void                              *data;
} ngx_http_hris_accounts_claim_t;

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
    ngx_http_hris_redis_script_init(&ngx_http_hris_accounts_claim_script,
                                    ngx_http_hris_accounts_claim_lua);
    ngx_http_hris_redis_script_init(&ngx_http_hris_accounts_unclaim_script,
                                    ngx_http_hris_accounts_unclaim_lua);

    ngx_http_hris_accounts_sync = as;

    ngx_http_hris_fleet_mirror_start(&as->mirror, cycle);

    return NGX_OK;
}


/*
 * After a change stored in this gateway's zone: tell the fleet. value
 * NULL: a run-time account deleted; JSON null: a file account deleted.
 * tenant: whose cap the account counts in (NULL: none's).
 */

void
ngx_http_hris_accounts_publish(ngx_http_hris_main_conf_t *hmcf,
    ngx_pool_t *pool, ngx_str_t *id, json_t *value, ngx_str_t *tenant)
{
    char                           *dump;
    u_char                          digest[NGX_HTTP_HRIS_TENANT_DIGEST];
    u_char                          hex[2 * NGX_HTTP_HRIS_TENANT_DIGEST];
    u_char                          bytes[NGX_SIZE_T_LEN];
    ngx_str_t                       argv[9], text;
    ngx_http_hris_accounts_sync_t  *as = ngx_http_hris_accounts_sync;

    if (hmcf->redis == NULL || as == NULL) {
        return;
    }

    dump = NULL;

    if (value == NULL) {
        ngx_str_set(&text, "-");

    } else {
        dump = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
        if (dump == NULL) {
            return;
        }
        text.data = (u_char *) dump;
        text.len = ngx_strlen(dump);
    }

    /* a file account deleted ("null") counts in no tenant's cap */
    if (!json_is_object(value)) {
        tenant = NULL;
    }

    argv[0] = ngx_http_hris_accounts_changes;
    argv[1] = ngx_http_hris_accounts_gen;
    argv[2] = ngx_http_hris_accounts_log;
    argv[3] = ngx_http_hris_accounts_owners;
    argv[4] = ngx_http_hris_accounts_tenants;
    argv[5] = *id;
    argv[6] = text;
    ngx_str_set(&argv[7], "");
    ngx_str_set(&argv[8], "0");

    if (tenant) {
        ngx_http_hris_shm_tenant_digest(tenant, digest);
        argv[7].data = hex;
        argv[7].len = ngx_hex_dump(hex, digest, sizeof(digest)) - hex;

        argv[8].data = bytes;
        argv[8].len = ngx_sprintf(bytes, "%uz",
                          ngx_http_hris_shm_account_bytes(id->len, text.len))
                      - bytes;
    }

    /* the command holds its own copy of the arguments */
    if (ngx_http_hris_redis_eval(as->rd, NULL,
                                 &ngx_http_hris_accounts_publish_script, 5, 9,
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
 * Claims the slot of a tenant's account of that id, of text_len bytes of
 * JSON, in the fleet's count before it is stored: NGX_DONE, and
 * handler(r, data, rc) follows with NGX_OK, NGX_HTTP_HRIS_OVER_COUNT or
 * _BYTES, or NGX_ABORT (the store cannot say: the zone counts alone);
 * the request is held until then. NGX_DECLINED: no fleet, or the store
 * cannot be used now; NGX_ERROR.
 */

ngx_int_t
ngx_http_hris_accounts_claim(ngx_http_request_t *r, ngx_str_t *tenant,
    ngx_str_t *id, size_t text_len, ngx_http_hris_accounts_claimed_pt handler,
    void *data)
{
    u_char                          *p;
    ngx_str_t                        argv[8];
    ngx_http_hris_main_conf_t       *hmcf;
    ngx_http_hris_accounts_claim_t  *cl;
    ngx_http_hris_accounts_sync_t   *as = ngx_http_hris_accounts_sync;
    u_char                           digest[NGX_HTTP_HRIS_TENANT_DIGEST];

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    if (hmcf->redis == NULL || as == NULL) {
        return NGX_DECLINED;
    }

    cl = ngx_palloc(r->pool, sizeof(ngx_http_hris_accounts_claim_t));
    p = ngx_pnalloc(r->pool, 2 * NGX_HTTP_HRIS_TENANT_DIGEST
                             + 3 * NGX_SIZE_T_LEN);
    if (cl == NULL || p == NULL) {
        return NGX_ERROR;
    }

    cl->request = r;
    cl->handler = handler;
    cl->data = data;

    argv[0] = ngx_http_hris_accounts_owners;
    argv[1] = ngx_http_hris_accounts_tenants;
    argv[2] = ngx_http_hris_accounts_changes;
    argv[3] = *id;

    ngx_http_hris_shm_tenant_digest(tenant, digest);
    argv[4].data = p;
    p = ngx_hex_dump(p, digest, sizeof(digest));
    argv[4].len = p - argv[4].data;

    argv[5].data = p;
    p = ngx_sprintf(p, "%uz",
                    ngx_http_hris_shm_account_bytes(id->len, text_len));
    argv[5].len = p - argv[5].data;

    argv[6].data = p;
    p = ngx_sprintf(p, "%ui", hmcf->tenant_accounts);
    argv[6].len = p - argv[6].data;

    argv[7].data = p;
    p = ngx_sprintf(p, "%uz", ngx_http_hris_shm_tenant_share(hmcf));
    argv[7].len = p - argv[7].data;

    if (ngx_http_hris_redis_eval(as->rd, r->pool,
                                 &ngx_http_hris_accounts_claim_script, 3, 8,
                                 argv, ngx_http_hris_accounts_claimed, cl)
        == NULL)
    {
        return NGX_DECLINED;
    }

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_hris_accounts_claimed(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
    ngx_http_hris_accounts_claim_t  *cl = data;

    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = cl->request;
    c = r->connection;

    if (status != NGX_HTTP_HRIS_REDIS_REPLY
        || reply->type != NGX_HTTP_HRIS_REDIS_INTEGER)
    {
        ngx_log_error(NGX_LOG_WARN, c->log, 0, "hris: the state store "
                      "(hris_redis) could not count the tenant's run-time "
                      "accounts for the fleet: this gateway's count holds "
                      "alone");
        rc = NGX_ABORT;

    } else if (reply->integer == 1) {
        rc = NGX_HTTP_HRIS_OVER_COUNT;

    } else if (reply->integer == 2) {
        rc = NGX_HTTP_HRIS_OVER_BYTES;

    } else {
        rc = NGX_OK;
    }

    cl->handler(r, cl->data, rc);
    ngx_http_run_posted_requests(c);
}


/* A claim whose change was not stored: its slot back, if nothing holds it */

void
ngx_http_hris_accounts_unclaim(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id)
{
    ngx_str_t                       argv[4];
    ngx_http_hris_accounts_sync_t  *as = ngx_http_hris_accounts_sync;

    if (hmcf->redis == NULL || as == NULL) {
        return;
    }

    argv[0] = ngx_http_hris_accounts_owners;
    argv[1] = ngx_http_hris_accounts_tenants;
    argv[2] = ngx_http_hris_accounts_changes;
    argv[3] = *id;

    (void) ngx_http_hris_redis_eval(as->rd, NULL,
                                    &ngx_http_hris_accounts_unclaim_script,
                                    3, 4, argv, ngx_http_hris_accounts_ignore,
                                    NULL);
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

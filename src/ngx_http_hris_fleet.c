/*
 * The gate's state in Redis (hris_redis): access tokens, the refresh
 * single flight and rotated refresh tokens, needs-reauth marks and
 * rate-limit windows shared by every gateway on one Redis, so that a
 * fleet behaves as one gateway (CONTRACT §9). Without hris_redis the gate
 * keeps the same state in the shared zone (ngx_http_hris_shm.c); either
 * way it asks through ngx_http_hris_state_if.c, and the replies here go
 * back to it by ngx_http_hris_gate_token_ready() and _rate_ready().
 *
 * Per account, with a hash tag so that each script touches one slot:
 *
 *     hris:{acct:<id>}:tok    hash: base (which configured credentials the
 *                             state grew from), at + until (access token),
 *                             rt (refresh token), reauth ("1")
 *     hris:{acct:<id>}:lock   the refresh lock: a random owner, with expiry
 *     hris:{acct:<id>}:rate   hash: bucket number -> calls in it
 *
 * The fenced refresh (the recipe in reference/fleet-writes-webhooks.md):
 * the token script gives a valid access token, or the lock and the refresh
 * token to use, or "wait"; the winner refreshes and commits through a
 * script that stores the new tokens only while the stored refresh token is
 * still the one it sent, and releases the lock by compare-and-delete. A
 * refused grant marks the account only when the refresh token is still
 * the one refused: a changed one means another gateway won the race, and
 * its token is used. Tokens are sealed in Redis when hris_secrets_key is
 * set. A valid access token is kept in the worker, so a request with one
 * costs no round trip.
 *
 * Redis unreachable: a token kept in the worker still serves; a request
 * that needs the store gets 503 naming it; rate limits fall back to this
 * gateway's own window, so nothing is let through unlimited.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/rand.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_redis.h"
#include "ngx_http_hris_state_if.h"


#define NGX_HTTP_HRIS_FLEET_BUCKETS  16


typedef struct {
    ngx_rbtree_node_t             node;      /* key: crc32 of the id */
    ngx_str_t                     id;
    ngx_str_t                     token;
    ngx_str_t                     stored;    /* as Redis has it */
    time_t                        until;
} ngx_http_hris_fleet_cached_t;


static ngx_int_t ngx_http_hris_fleet_send(ngx_http_hris_gate_t *g,
    ngx_http_hris_redis_script_t *script, char *suffix, char *suffix2,
    ngx_uint_t argc, ngx_str_t *args, ngx_http_hris_redis_handler_pt handler);
static void ngx_http_hris_fleet_token_reply(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);
static void ngx_http_hris_fleet_commit_reply(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);
static void ngx_http_hris_fleet_refused_reply(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);
static void ngx_http_hris_fleet_rate_reply(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);
static void ngx_http_hris_fleet_ignore(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data);
static ngx_int_t ngx_http_hris_fleet_unreachable(ngx_http_hris_gate_t *g);
static void ngx_http_hris_fleet_failed(ngx_http_hris_gate_t *g);
static ngx_int_t ngx_http_hris_fleet_key(ngx_http_hris_gate_t *g,
    char *suffix, ngx_str_t *key);
static ngx_int_t ngx_http_hris_fleet_keep(ngx_http_hris_gate_t *g,
    ngx_str_t *token, ngx_str_t *out);
static ngx_int_t ngx_http_hris_fleet_open(ngx_http_hris_gate_t *g,
    ngx_str_t *stored, ngx_str_t *out);
static ngx_str_t *ngx_http_hris_fleet_elt(ngx_http_hris_redis_reply_t *reply,
    ngx_uint_t i);
static ngx_http_hris_fleet_cached_t *ngx_http_hris_fleet_cache_find(
    ngx_str_t *id);
static void ngx_http_hris_fleet_cache_set(ngx_str_t *id, ngx_str_t *token,
    ngx_str_t *stored, time_t until);


/*
 * KEYS: tok, lock. ARGV: owner, lock ms, base, configured refresh token,
 * configured access token, its "good until", an access token the provider
 * refused (as stored; forgotten first). State made from other credentials
 * (base) is started over from the configured ones.
 */
static ngx_http_hris_redis_script_t  ngx_http_hris_fleet_token_script;
static char  ngx_http_hris_fleet_token_lua[] =
    "local now = tonumber(redis.call('TIME')[1])\n"
    "local f = {'base', 'at', 'until', 'rt', 'reauth'}\n"
    "local h = redis.call('HMGET', KEYS[1], unpack(f))\n"
    "if h[1] ~= ARGV[3] then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  redis.call('HSET', KEYS[1], 'base', ARGV[3])\n"
    "  if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'rt', ARGV[4]) end\n"
    "  if ARGV[5] ~= '' and tonumber(ARGV[6]) > now then\n"
    "    redis.call('HSET', KEYS[1], 'at', ARGV[5], 'until', ARGV[6])\n"
    "  end\n"
    "  h = redis.call('HMGET', KEYS[1], unpack(f))\n"
    "end\n"
    "if h[5] == '1' then return {'reauth'} end\n"
    "if h[2] and h[2] == ARGV[7] then\n"
    "  redis.call('HDEL', KEYS[1], 'at', 'until')\n"
    "  h[2] = false\n"
    "end\n"
    "if h[2] and tonumber(h[3]) > now then return {'ok', h[2], h[3]} end\n"
    "if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then\n"
    "  return {'go', h[4] or ''}\n"
    "end\n"
    "return {'wait'}\n";

/* ARGV: owner, refresh token sent, base, access token, until, new rt */
static ngx_http_hris_redis_script_t  ngx_http_hris_fleet_commit_script;
static char  ngx_http_hris_fleet_commit_lua[] =
    "local h = redis.call('HMGET', KEYS[1], 'base', 'rt')\n"
    "local ok = 0\n"
    "if h[1] == ARGV[3] and (h[2] or '') == ARGV[2] then\n"
    "  redis.call('HSET', KEYS[1], 'at', ARGV[4], 'until', ARGV[5])\n"
    "  if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'rt', ARGV[6]) end\n"
    "  redis.call('HDEL', KEYS[1], 'reauth')\n"
    "  ok = 1\n"
    "end\n"
    "if redis.call('GET', KEYS[2]) == ARGV[1] then\n"
    "  redis.call('DEL', KEYS[2])\n"
    "end\n"
    "return ok\n";

/*
 * ARGV: owner, refresh token refused, base. "reauth_first" to the one
 * caller that marks the account (its event is told once for the fleet),
 * "reauth" when it was marked already, "changed" when the token rotated.
 */
static ngx_http_hris_redis_script_t  ngx_http_hris_fleet_refused_script;
static char  ngx_http_hris_fleet_refused_lua[] =
    "local h = redis.call('HMGET', KEYS[1], 'base', 'rt')\n"
    "local r = 'changed'\n"
    "if h[1] == ARGV[3] and (h[2] or '') == ARGV[2] then\n"
    "  r = 'reauth'\n"
    "  if redis.call('HSET', KEYS[1], 'reauth', '1') == 1 then\n"
    "    r = 'reauth_first'\n"
    "  end\n"
    "  redis.call('HDEL', KEYS[1], 'at', 'until')\n"
    "end\n"
    "if redis.call('GET', KEYS[2]) == ARGV[1] then\n"
    "  redis.call('DEL', KEYS[2])\n"
    "end\n"
    "return r\n";

/* ARGV: owner. The lock, given back after a failed exchange. */
static ngx_http_hris_redis_script_t  ngx_http_hris_fleet_release_script;
static char  ngx_http_hris_fleet_release_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n";

/* ARGV: the access token used (as stored), the provider's new one, until */
static ngx_http_hris_redis_script_t  ngx_http_hris_fleet_echo_script;
static char  ngx_http_hris_fleet_echo_lua[] =
    "if redis.call('HGET', KEYS[1], 'at') == ARGV[1] then\n"
    "  return redis.call('HSET', KEYS[1], 'at', ARGV[2], 'until', ARGV[3])\n"
    "end\n"
    "return 0\n";

/*
 * ARGV: calls, window ms. Buckets of window/16 ms; the last 17 of them
 * cover at least a whole window, so no window ever holds more than
 * "calls". 0: go; N: wait N ms and ask again.
 */
static ngx_http_hris_redis_script_t  ngx_http_hris_fleet_rate_script;
static char  ngx_http_hris_fleet_rate_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local calls, win = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local w = math.max(1, math.floor(win / 16))\n"
    "local cur = math.floor(now / w)\n"
    "local v = redis.call('HGETALL', KEYS[1])\n"
    "local sum, oldest = 0, nil\n"
    "for i = 1, #v, 2 do\n"
    "  local b = tonumber(v[i])\n"
    "  if b >= cur - 16 then\n"
    "    sum = sum + tonumber(v[i + 1])\n"
    "    if oldest == nil or b < oldest then oldest = b end\n"
    "  else\n"
    "    redis.call('HDEL', KEYS[1], v[i])\n"
    "  end\n"
    "end\n"
    "if sum < calls then\n"
    "  redis.call('HINCRBY', KEYS[1], tostring(cur), 1)\n"
    "  redis.call('PEXPIRE', KEYS[1], win * 2)\n"
    "  return 0\n"
    "end\n"
    "return math.max(1, (oldest + 17) * w - now)\n";


/* the worker's valid access tokens: no round trip while one is good */
static ngx_rbtree_t       ngx_http_hris_fleet_cache;
static ngx_rbtree_node_t  ngx_http_hris_fleet_sentinel;
static ngx_uint_t         ngx_http_hris_fleet_ready;


static ngx_inline ngx_http_hris_redis_t *
ngx_http_hris_fleet_client(ngx_http_hris_gate_t *g)
{
    return ((ngx_http_hris_redis_conf_t *) g->hmcf->redis)->client;
}


static ngx_inline ngx_str_t *
ngx_http_hris_fleet_name(ngx_http_hris_gate_t *g)
{
    return &((ngx_http_hris_redis_conf_t *) g->hmcf->redis)->name;
}


static void
ngx_http_hris_fleet_scripts(void)
{
    if (ngx_http_hris_fleet_ready) {
        return;
    }

    ngx_http_hris_redis_script_init(&ngx_http_hris_fleet_token_script,
                                    ngx_http_hris_fleet_token_lua);
    ngx_http_hris_redis_script_init(&ngx_http_hris_fleet_commit_script,
                                    ngx_http_hris_fleet_commit_lua);
    ngx_http_hris_redis_script_init(&ngx_http_hris_fleet_refused_script,
                                    ngx_http_hris_fleet_refused_lua);
    ngx_http_hris_redis_script_init(&ngx_http_hris_fleet_release_script,
                                    ngx_http_hris_fleet_release_lua);
    ngx_http_hris_redis_script_init(&ngx_http_hris_fleet_rate_script,
                                    ngx_http_hris_fleet_rate_lua);
    ngx_http_hris_redis_script_init(&ngx_http_hris_fleet_echo_script,
                                    ngx_http_hris_fleet_echo_lua);

    ngx_rbtree_init(&ngx_http_hris_fleet_cache, &ngx_http_hris_fleet_sentinel,
                    ngx_rbtree_insert_value);

    ngx_http_hris_fleet_ready = 1;
}


/*
 * The token stage of the gate. NGX_OK: g->token is ready. NGX_AGAIN: a
 * script runs, and the gate resumes from its reply. NGX_DONE: answered.
 */

ngx_int_t
ngx_http_hris_fleet_token(ngx_http_hris_gate_t *g)
{
    u_char                        *p;
    ngx_str_t                      args[7], base;
    ngx_http_hris_account_t       *acc = g->account;
    ngx_http_hris_fleet_cached_t  *c;
    u_char                         raw[16];

    ngx_http_hris_fleet_scripts();

    c = ngx_http_hris_fleet_cache_find(&acc->id);

    if (c && c->until > ngx_time()) {
        g->token.data = ngx_pnalloc(g->request->pool, c->token.len);
        if (g->token.data == NULL) {
            g->final = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return NGX_DONE;
        }
        ngx_memcpy(g->token.data, c->token.data, c->token.len);
        g->token.len = c->token.len;

        g->fleet_at.data = ngx_pnalloc(g->request->pool, c->stored.len);
        if (g->fleet_at.data == NULL) {
            g->final = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return NGX_DONE;
        }
        ngx_memcpy(g->fleet_at.data, c->stored.data, c->stored.len);
        g->fleet_at.len = c->stored.len;

        return NGX_OK;
    }

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        g->final = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }
    ngx_hex_dump(g->fleet_owner, raw, sizeof(raw));

    /* which configured credentials the stored state grew from */
    base.data = ngx_pnalloc(g->request->pool, 2 * sizeof(acc->refresh_base));
    if (base.data == NULL) {
        g->final = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }
    base.len = ngx_hex_dump(base.data, acc->refresh_base,
                            sizeof(acc->refresh_base)) - base.data;

    args[0].data = g->fleet_owner;
    args[0].len = sizeof(g->fleet_owner);

    p = ngx_pnalloc(g->request->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        g->final = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }
    args[1].data = p;
    args[1].len = ngx_sprintf(p, "%M", g->hlcf->upstream.timeout
                                       + g->hlcf->upstream.connect_timeout)
                  - p;

    args[2] = base;
    args[3] = acc->refresh_initial;
    args[4] = acc->seed_token;

    p = ngx_pnalloc(g->request->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        g->final = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }
    args[5].data = p;
    args[5].len = ngx_sprintf(p, "%T", acc->seed_token.len
                                       ? acc->seed_expires
                                         - ngx_min(NGX_HTTP_HRIS_TOKEN_SKEW,
                                                   (acc->seed_expires
                                                   - ngx_time()) / 2)
                                       : 0)
                  - p;

    /* a refused access token (gate_refused()) is forgotten first */
    args[6] = g->fleet_drop;
    ngx_str_null(&g->fleet_drop);

    g->fleet_base = base;

    return ngx_http_hris_fleet_send(g, &ngx_http_hris_fleet_token_script,
                                    ":tok", ":lock", 7, args,
                                    ngx_http_hris_fleet_token_reply);
}


static void
ngx_http_hris_fleet_token_reply(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
    ngx_http_hris_gate_t  *g = data;

    time_t      until;
    ngx_str_t  *what, *v;

    g->fleet_cmd = NULL;

    if (status != NGX_HTTP_HRIS_REDIS_REPLY
        || reply->type == NGX_HTTP_HRIS_REDIS_ERROR)
    {
        ngx_http_hris_fleet_failed(g);
        return;
    }

    what = ngx_http_hris_fleet_elt(reply, 0);

    if (what == NULL) {
        ngx_http_hris_fleet_failed(g);
        return;
    }

    if (what->len == 2 && ngx_strncmp(what->data, "ok", 2) == 0) {
        v = ngx_http_hris_fleet_elt(reply, 1);
        until = ngx_http_hris_fleet_elt(reply, 2)
                ? ngx_atotm(reply->elts[2].str.data, reply->elts[2].str.len)
                : NGX_ERROR;

        if (v == NULL || until == NGX_ERROR
            || ngx_http_hris_fleet_open(g, v, &g->token) != NGX_OK)
        {
            ngx_http_hris_fleet_failed(g);
            return;
        }

        g->fleet_at.len = v->len;
        g->fleet_at.data = ngx_pnalloc(g->request->pool, v->len);
        if (g->fleet_at.data == NULL) {
            ngx_http_hris_gate_token_ready(g, NGX_ERROR);
            return;
        }
        ngx_memcpy(g->fleet_at.data, v->data, v->len);

        ngx_http_hris_fleet_cache_set(&g->account->id, &g->token,
                                      &g->fleet_at, until);
        ngx_http_hris_gate_token_ready(g, NGX_OK);
        return;
    }

    if (what->len == 2 && ngx_strncmp(what->data, "go", 2) == 0) {
        /* this request holds the lock: refresh with the stored token */
        v = ngx_http_hris_fleet_elt(reply, 1);
        g->fleet_locked = 1;
        g->fleet_sent.len = v ? v->len : 0;
        g->fleet_sent.data = ngx_pnalloc(g->request->pool,
                                         g->fleet_sent.len + 1);
        if (g->fleet_sent.data == NULL) {
            ngx_http_hris_gate_token_ready(g, NGX_ERROR);
            return;
        }
        if (v) {
            ngx_memcpy(g->fleet_sent.data, v->data, v->len);
        }

        ngx_str_null(&g->refresh);

        if (g->fleet_sent.len
            && ngx_http_hris_fleet_open(g, &g->fleet_sent, &g->refresh)
               != NGX_OK)
        {
            ngx_http_hris_fleet_release(g);
            ngx_http_hris_fleet_failed(g);
            return;
        }

        ngx_http_hris_gate_token_ready(g, NGX_DECLINED);
        return;
    }

    if (what->len == 6 && ngx_strncmp(what->data, "reauth", 6) == 0) {
        (void) ngx_http_hris_refresh_set(g->hmcf, &g->account->id, NULL, 1);
        ngx_http_hris_gate_token_ready(g, NGX_ABORT);
        return;
    }

    /* "wait": another gateway or worker refreshes: the gate looks again */
    ngx_http_hris_gate_token_ready(g, NGX_BUSY);
}


/*
 * The exchange's answer, committed for the fleet: NGX_AGAIN (the gate
 * resumes from the reply) or NGX_DONE.
 */

ngx_int_t
ngx_http_hris_fleet_commit(ngx_http_hris_gate_t *g, ngx_str_t *token,
    time_t until, ngx_str_t *refresh)
{
    u_char     *p;
    ngx_str_t   args[6];

    g->token = *token;
    g->fleet_until = until;

    args[0].data = g->fleet_owner;
    args[0].len = sizeof(g->fleet_owner);
    args[1] = g->fleet_sent;
    args[2] = g->fleet_base;

    if (ngx_http_hris_fleet_keep(g, token, &args[3]) != NGX_OK) {
        g->final = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }

    g->fleet_at = args[3];

    p = ngx_pnalloc(g->request->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        g->final = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }
    args[4].data = p;
    args[4].len = ngx_sprintf(p, "%T", until) - p;

    ngx_str_null(&args[5]);

    if (refresh->len
        && ngx_http_hris_fleet_keep(g, refresh, &args[5]) != NGX_OK)
    {
        g->final = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }

    return ngx_http_hris_fleet_send(g, &ngx_http_hris_fleet_commit_script,
                                    ":tok", ":lock", 6, args,
                                    ngx_http_hris_fleet_commit_reply);
}


static void
ngx_http_hris_fleet_commit_reply(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
    ngx_http_hris_gate_t  *g = data;

    g->fleet_cmd = NULL;
    g->fleet_locked = 0;

    if (status != NGX_HTTP_HRIS_REDIS_REPLY
        || reply->type != NGX_HTTP_HRIS_REDIS_INTEGER)
    {
        /*
         * The provider may have rotated the refresh token, and the store
         * did not say it kept it: say so loudly (never the token).
         */
        ngx_log_error(NGX_LOG_ALERT, g->request->connection->log, 0,
                      "hris: integrated account \"%V\": the state store "
                      "(hris_redis) did not confirm it kept the provider's "
                      "new tokens; if the provider rotated the refresh "
                      "token the account may need to be connected again",
                      &g->account->id);

    } else if (reply->integer == 0) {
        /* the stored refresh token changed while the lock had expired */
        ngx_log_error(NGX_LOG_WARN, g->request->connection->log, 0,
                      "hris: integrated account \"%V\": another gateway "
                      "renewed the token meanwhile; this renewal was not "
                      "stored (its access token serves this request)",
                      &g->account->id);

    } else {
        ngx_http_hris_fleet_cache_set(&g->account->id, &g->token,
                                      &g->fleet_at, g->fleet_until);
    }

    ngx_http_hris_gate_token_ready(g, NGX_OK);
}


/* invalid_grant: this account needs re-authorization, or lost a race */

ngx_int_t
ngx_http_hris_fleet_refused(ngx_http_hris_gate_t *g)
{
    ngx_str_t  args[3];

    args[0].data = g->fleet_owner;
    args[0].len = sizeof(g->fleet_owner);
    args[1] = g->fleet_sent;
    args[2] = g->fleet_base;

    return ngx_http_hris_fleet_send(g, &ngx_http_hris_fleet_refused_script,
                                    ":tok", ":lock", 3, args,
                                    ngx_http_hris_fleet_refused_reply);
}


static void
ngx_http_hris_fleet_refused_reply(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
    ngx_http_hris_gate_t  *g = data;

    ngx_int_t  rc;

    g->fleet_cmd = NULL;
    g->fleet_locked = 0;

    if (status != NGX_HTTP_HRIS_REDIS_REPLY
        || (reply->type != NGX_HTTP_HRIS_REDIS_BULK
            && reply->type != NGX_HTTP_HRIS_REDIS_STRING))
    {
        ngx_http_hris_fleet_failed(g);
        return;
    }

    if (reply->str.len >= 6 && ngx_strncmp(reply->str.data, "reauth", 6) == 0)
    {
        /* "reauth_first": this gateway set the fleet's mark, and tells */
        if (reply->str.len > 6) {
            ngx_http_hris_account_event(g->hmcf, &g->account->tenant,
                &g->account->id, &g->account->table->name,
                "integrated_account.needs_reauth", "refresh_refused",
                g->request->connection->log);
        }

        (void) ngx_http_hris_refresh_set(g->hmcf, &g->account->id, NULL, 1);
        ngx_log_error(NGX_LOG_WARN, g->request->connection->log, 0,
                      "hris: integrated account \"%V\" needs "
                      "re-authorization (refresh refused)", &g->account->id);
        ngx_http_hris_gate_token_ready(g, NGX_ABORT);
        return;
    }

    /* another gateway rotated the token first: use what it stored */
    if (g->fleet_retried++ > 2) {
        g->final = ngx_http_hris_send_error(g->request,
                       NGX_HTTP_BAD_GATEWAY, NULL,
                       "the provider refused the account's refresh token "
                       "while other gateways kept renewing it; retry");
        ngx_http_hris_gate_token_ready(g, NGX_DONE);
        return;
    }

    rc = ngx_http_hris_fleet_token(g);

    if (rc != NGX_AGAIN) {
        ngx_http_hris_gate_token_ready(g, rc);
    }
}


/* A failed exchange gives the lock back at once (fire and forget). */

void
ngx_http_hris_fleet_release(ngx_http_hris_gate_t *g)
{
    ngx_str_t  args[2];

    if (!g->fleet_locked) {
        return;
    }

    g->fleet_locked = 0;

    if (ngx_http_hris_fleet_key(g, ":lock", &args[0]) != NGX_OK) {
        return;
    }

    args[1].data = g->fleet_owner;
    args[1].len = sizeof(g->fleet_owner);

    (void) ngx_http_hris_redis_eval(ngx_http_hris_fleet_client(g), NULL,
                                    &ngx_http_hris_fleet_release_script, 1, 2,
                                    args, ngx_http_hris_fleet_ignore, NULL);
}


/*
 * The provider refused an access token: this worker forgets it now, and
 * the next token script (the gate passes again) forgets it for the fleet,
 * in the same round trip, so no other order of commands can bring it back.
 */

void
ngx_http_hris_fleet_drop(ngx_http_hris_gate_t *g)
{
    ngx_http_hris_fleet_cached_t  *c;

    ngx_http_hris_fleet_scripts();

    c = ngx_http_hris_fleet_cache_find(&g->account->id);
    if (c) {
        c->until = 0;
    }

    g->fleet_drop = g->fleet_at;
}


/*
 * A provider that hands a newer token back with its answer (token echo):
 * it replaces the one this request used, in the worker and in Redis.
 */

void
ngx_http_hris_fleet_echo(ngx_http_hris_gate_t *g, ngx_str_t *token,
    time_t until)
{
    u_char     *p;
    ngx_str_t   args[4];

    ngx_http_hris_fleet_scripts();

    if (g->fleet_at.len == 0
        || ngx_http_hris_fleet_key(g, ":tok", &args[0]) != NGX_OK
        || ngx_http_hris_fleet_keep(g, token, &args[2]) != NGX_OK)
    {
        return;
    }

    p = ngx_pnalloc(g->request->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        return;
    }

    args[1] = g->fleet_at;
    args[3].data = p;
    args[3].len = ngx_sprintf(p, "%T", until) - p;

    ngx_http_hris_fleet_cache_set(&g->account->id, token, &args[2], until);
    g->fleet_at = args[2];
    g->token = *token;

    (void) ngx_http_hris_redis_eval(ngx_http_hris_fleet_client(g), NULL,
                                    &ngx_http_hris_fleet_echo_script, 1, 4,
                                    args, ngx_http_hris_fleet_ignore, NULL);
}


/*
 * The rate-limit window for the fleet: NGX_AGAIN (a script runs, and
 * ngx_http_hris_gate_rate_ready() follows) or NGX_DONE (answered).
 */

ngx_int_t
ngx_http_hris_fleet_rate(ngx_http_hris_gate_t *g)
{
    u_char     *p;
    ngx_str_t   args[2];

    ngx_http_hris_fleet_scripts();

    p = ngx_pnalloc(g->request->pool, 2 * NGX_INT_T_LEN);
    if (p == NULL) {
        g->final = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }

    args[0].data = p;
    args[0].len = ngx_sprintf(p, "%ui", g->account->rate_calls) - p;
    args[1].data = p + args[0].len;
    args[1].len = ngx_sprintf(args[1].data, "%M", g->account->rate_window)
                  - args[1].data;

    return ngx_http_hris_fleet_send(g, &ngx_http_hris_fleet_rate_script,
                                    ":rate", NULL, 2, args,
                                    ngx_http_hris_fleet_rate_reply);
}


static void
ngx_http_hris_fleet_rate_reply(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
    ngx_http_hris_gate_t  *g = data;

    ngx_int_t   rc;
    ngx_msec_t  wait;

    g->fleet_cmd = NULL;

    if (status != NGX_HTTP_HRIS_REDIS_REPLY
        || reply->type != NGX_HTTP_HRIS_REDIS_INTEGER)
    {
        /* no store: this gateway's own window, never no limit at all */
        ngx_log_error(NGX_LOG_WARN, g->request->connection->log, 0,
                      "hris: the state store (hris_redis %V) cannot count "
                      "calls of integrated account \"%V\" now: this "
                      "gateway's own rate limit applies",
                      ngx_http_hris_fleet_name(g), &g->account->id);
        wait = 0;
        rc = ngx_http_hris_state_rate_zone(g, &wait);
        ngx_http_hris_gate_rate_ready(g, rc, wait);
        return;
    }

    if (reply->integer <= 0) {
        ngx_http_hris_gate_rate_ready(g, NGX_OK, 0);
        return;
    }

    /* no slot yet: the gate asks again when the script says */
    ngx_http_hris_gate_rate_ready(g, NGX_DECLINED,
                                  (ngx_msec_t) reply->integer);
}


/*
 * Fire and forget (a lock given back, a refused token forgotten): a
 * handler all the same, so that Redis is sent the script when it lacks it
 * (NOSCRIPT); the lock and the token expire by themselves otherwise.
 */

static void
ngx_http_hris_fleet_ignore(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
}


/* the store could not answer: 503 naming it (a kept token was used) */

static ngx_int_t
ngx_http_hris_fleet_unreachable(ngx_http_hris_gate_t *g)
{
    ngx_str_t  retry = ngx_string("1");

    ngx_http_hris_fleet_release(g);

    if (ngx_http_hris_header_out(g->request, "Retry-After", &retry)
        != NGX_OK)
    {
        g->final = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }

    g->final = ngx_http_hris_send_error(g->request,
                   NGX_HTTP_SERVICE_UNAVAILABLE,
                   json_pack("{s:s}", "store", "redis"),
                   "the state store (hris_redis %V) cannot be used now and "
                   "the account's access token is kept there; retry shortly",
                   ngx_http_hris_fleet_name(g));

    return NGX_DONE;
}


/* a token script failed: the gate answers 503 */

static void
ngx_http_hris_fleet_failed(ngx_http_hris_gate_t *g)
{
    ngx_http_hris_gate_token_ready(g, ngx_http_hris_fleet_unreachable(g));
}


/*
 * One script for this account: KEYS are hris:{acct:<id>}<suffix> (and a
 * second suffix); NGX_AGAIN once it is sent.
 */

static ngx_int_t
ngx_http_hris_fleet_send(ngx_http_hris_gate_t *g,
    ngx_http_hris_redis_script_t *script, char *suffix, char *suffix2,
    ngx_uint_t argc, ngx_str_t *args, ngx_http_hris_redis_handler_pt handler)
{
    ngx_str_t   *argv;
    ngx_uint_t   nkeys, i;

    nkeys = suffix2 ? 2 : 1;

    argv = ngx_palloc(g->request->pool, (nkeys + argc) * sizeof(ngx_str_t));
    if (argv == NULL) {
        g->final = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }

    for (i = 0; i < nkeys; i++) {
        if (ngx_http_hris_fleet_key(g, i ? suffix2 : suffix, &argv[i])
            != NGX_OK)
        {
            g->final = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return NGX_DONE;
        }
    }

    ngx_memcpy(&argv[nkeys], args, argc * sizeof(ngx_str_t));

    g->fleet_cmd = ngx_http_hris_redis_eval(ngx_http_hris_fleet_client(g),
                                            g->request->pool, script, nkeys,
                                            nkeys + argc, argv, handler, g);
    if (g->fleet_cmd == NULL) {
        return ngx_http_hris_fleet_unreachable(g);
    }

    return NGX_AGAIN;
}


/* hris:{acct:<id>}<suffix>: the hash tag keeps an account in one slot */

static ngx_int_t
ngx_http_hris_fleet_key(ngx_http_hris_gate_t *g, char *suffix,
    ngx_str_t *key)
{
    size_t  len;

    len = sizeof("hris:{acct:}") - 1 + g->account->id.len + ngx_strlen(suffix);

    key->data = ngx_pnalloc(g->request->pool, len);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    key->len = ngx_sprintf(key->data, "hris:{acct:%V}%s", &g->account->id,
                           suffix)
               - key->data;

    return NGX_OK;
}


/* What Redis keeps of a token: sealed when hris_secrets_key is set. */

static ngx_int_t
ngx_http_hris_fleet_keep(ngx_http_hris_gate_t *g, ngx_str_t *token,
    ngx_str_t *out)
{
    if (!g->hmcf->has_secrets_key) {
        *out = *token;
        return NGX_OK;
    }

    return ngx_http_hris_secret_seal(g->request->pool, g->hmcf->secrets_key,
                                     token, out);
}


static ngx_int_t
ngx_http_hris_fleet_open(ngx_http_hris_gate_t *g, ngx_str_t *stored,
    ngx_str_t *out)
{
    ngx_str_t  copy;

    /* the reply's pool goes when its handler returns */
    copy.len = stored->len;
    copy.data = ngx_pnalloc(g->request->pool, copy.len + 1);
    if (copy.data == NULL) {
        return NGX_ERROR;
    }
    ngx_memcpy(copy.data, stored->data, copy.len);
    copy.data[copy.len] = '\0';

    if (ngx_http_hris_secret_value(g->request, &copy, out) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, g->request->connection->log, 0,
                      "hris: integrated account \"%V\": a token in the "
                      "state store does not open with hris_secrets_key",
                      &g->account->id);
        return NGX_ERROR;
    }

    /* it goes into a header */
    if (!ngx_http_hris_value_safe(out->data, out->len)) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_str_t *
ngx_http_hris_fleet_elt(ngx_http_hris_redis_reply_t *reply, ngx_uint_t i)
{
    if (reply->type != NGX_HTTP_HRIS_REDIS_ARRAY || i >= reply->nelts
        || (reply->elts[i].type != NGX_HTTP_HRIS_REDIS_BULK
            && reply->elts[i].type != NGX_HTTP_HRIS_REDIS_STRING))
    {
        return NULL;
    }

    return &reply->elts[i].str;
}


static ngx_http_hris_fleet_cached_t *
ngx_http_hris_fleet_cache_find(ngx_str_t *id)
{
    uint32_t                       hash;
    ngx_rbtree_node_t             *node, *sentinel;
    ngx_http_hris_fleet_cached_t  *c;

    hash = ngx_crc32_short(id->data, id->len);
    node = ngx_http_hris_fleet_cache.root;
    sentinel = ngx_http_hris_fleet_cache.sentinel;

    while (node != sentinel) {
        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        c = (ngx_http_hris_fleet_cached_t *) node;

        if (c->id.len == id->len
            && ngx_memcmp(c->id.data, id->data, id->len) == 0)
        {
            return c;
        }

        /* same hash, another id: ngx_rbtree_insert_value puts it right */
        node = node->right;
    }

    return NULL;
}


/* Worker memory, one entry per account that has had a token. */

static void
ngx_http_hris_fleet_cache_set(ngx_str_t *id, ngx_str_t *token,
    ngx_str_t *stored, time_t until)
{
    u_char                        *p;
    ngx_http_hris_fleet_cached_t  *c;

    c = ngx_http_hris_fleet_cache_find(id);

    if (c == NULL) {
        c = ngx_alloc(sizeof(ngx_http_hris_fleet_cached_t) + id->len,
                      ngx_cycle->log);
        if (c == NULL) {
            return;
        }
        ngx_memzero(c, sizeof(ngx_http_hris_fleet_cached_t));
        c->id.data = (u_char *) c + sizeof(ngx_http_hris_fleet_cached_t);
        c->id.len = id->len;
        ngx_memcpy(c->id.data, id->data, id->len);
        c->node.key = ngx_crc32_short(id->data, id->len);
        ngx_rbtree_insert(&ngx_http_hris_fleet_cache, &c->node);
    }

    p = ngx_alloc(token->len + stored->len, ngx_cycle->log);
    if (p == NULL) {
        c->until = 0;
        return;
    }

    if (c->token.data) {
        ngx_explicit_memzero(c->token.data, c->token.len + c->stored.len);
        ngx_free(c->token.data);
    }

    c->token.data = p;
    c->token.len = token->len;
    ngx_memcpy(p, token->data, token->len);

    c->stored.data = p + token->len;
    c->stored.len = stored->len;
    ngx_memcpy(c->stored.data, stored->data, stored->len);

    c->until = until;
}

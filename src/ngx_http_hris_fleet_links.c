/*
 * Connect links and credential cool-downs for a fleet (hris_redis), so
 * that every gateway on one Redis behaves as one gateway (CONTRACT §9):
 *
 *     hris:{link:<hash>}     "1" while the link could still be used: set
 *                            (SET NX, with the link's remaining lifetime)
 *                            by the request that completes it, so a link
 *                            completes once for the fleet
 *     hris:{cool}:marks      hash: account id -> "<until> <status> <hex of
 *                            the refused credentials' digest>"
 *     hris:{cool}:gen        a counter, raised by each mark
 *
 * A link is claimed in Redis before its account is stored, and then in
 * this gateway's zone too (so that its pages say "used" without asking,
 * and the state file keeps it); given back in both when storing fails.
 * Redis unreachable: the completion is refused with 503 naming the store,
 * and nothing is stored (the link stays usable).
 *
 * A cool-down (hris_credentials_cooldown) is kept in this gateway's zone
 * as without Redis, which the request path reads without a round trip,
 * and published; one worker of each gateway looks at the counter twice a
 * second and copies the fleet's marks into its zone. So credentials
 * refused through one gateway are not sent by another within half a
 * second (a request in flight meanwhile may still send them once). Redis
 * unreachable: each gateway keeps its own marks.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_redis.h"
#include "ngx_http_hris_fleet_links.h"


#define NGX_HTTP_HRIS_COOL_POLL      500     /* ms */
#define NGX_HTTP_HRIS_COOL_MARK      (NGX_TIME_T_LEN + NGX_INT_T_LEN + 34)
#define NGX_HTTP_HRIS_COOL_ID_MAX    1024    /* as the state file's ids */


typedef struct {
    ngx_http_request_t           *request;
    ngx_http_hris_fleet_link_pt   handler;
    void                         *data;
} ngx_http_hris_fleet_link_ctx_t;


/* a link asked of the fleet: the request's, found again by its handler */
typedef struct {
    ngx_http_request_t           *request;
    ngx_http_handler_pt           resume;
    time_t                        expires;
    u_char                        hash[NGX_HTTP_HRIS_LINK_HASH];
} ngx_http_hris_fleet_link_ask_t;


typedef struct {
    ngx_http_hris_main_conf_t    *hmcf;
    ngx_http_hris_redis_t        *rd;
    ngx_event_t                   timer;
    ngx_log_t                    *log;
    ngx_str_t                     seen;       /* the counter merged */
    u_char                        seen_buf[NGX_INT64_LEN];
    unsigned                      busy:1;
} ngx_http_hris_cool_sync_t;


static void ngx_http_hris_fleet_link_reply(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);
static u_char *ngx_http_hris_fleet_link_key(u_char *p, u_char *hash);
static void ngx_http_hris_fleet_link_asked(void *data);
static void ngx_http_hris_fleet_link_answer(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);
static void ngx_http_hris_cool_poll(ngx_event_t *ev);
static void ngx_http_hris_cool_reply(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data);
static void ngx_http_hris_cool_merge(ngx_http_hris_cool_sync_t *cs,
    ngx_str_t *id, ngx_str_t *mark);
static ngx_int_t ngx_http_hris_cool_unhex(u_char *out, u_char *hex,
    size_t n);
static void ngx_http_hris_fleet_links_ignore(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);


static ngx_str_t  ngx_http_hris_cool_marks = ngx_string("hris:{cool}:marks");
static ngx_str_t  ngx_http_hris_cool_gen = ngx_string("hris:{cool}:gen");

/* KEYS: marks, gen. ARGV: id, mark. */
static ngx_http_hris_redis_script_t  ngx_http_hris_cool_publish_script;
static char  ngx_http_hris_cool_publish_lua[] =
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "return redis.call('INCR', KEYS[2])\n";

/*
 * KEYS: marks, gen. ARGV: the counter seen. {counter} when it did not
 * move, else {counter, id, mark, ...} of the marks still running (the
 * others go).
 */
static ngx_http_hris_redis_script_t  ngx_http_hris_cool_poll_script;
static char  ngx_http_hris_cool_poll_lua[] =
    "local g = redis.call('GET', KEYS[2]) or '0'\n"
    "if g == ARGV[1] then return {g} end\n"
    "local now = tonumber(redis.call('TIME')[1])\n"
    "local v = redis.call('HGETALL', KEYS[1])\n"
    "local out = {g}\n"
    "for i = 1, #v, 2 do\n"
    "  local u = tonumber(string.match(v[i + 1], '^%d+'))\n"
    "  if u and u > now then\n"
    "    out[#out + 1] = v[i]\n"
    "    out[#out + 1] = v[i + 1]\n"
    "  else\n"
    "    redis.call('HDEL', KEYS[1], v[i])\n"
    "  end\n"
    "end\n"
    "return out\n";

static ngx_http_hris_cool_sync_t  *ngx_http_hris_cool_sync;


ngx_str_t *
ngx_http_hris_fleet_store_name(ngx_http_hris_main_conf_t *hmcf)
{
    return &((ngx_http_hris_redis_conf_t *) hmcf->redis)->name;
}


/*
 * Claims the link of that hash for the fleet: NGX_DONE, and handler(r,
 * data, rc) follows (the request is held until then); NGX_ERROR.
 */

ngx_int_t
ngx_http_hris_fleet_link_claim(ngx_http_request_t *r, u_char *hash,
    time_t expires, ngx_http_hris_fleet_link_pt handler, void *data)
{
    u_char                          *p;
    ngx_str_t                        argv[6];
    ngx_http_hris_main_conf_t       *hmcf;
    ngx_http_hris_redis_conf_t      *rcf;
    ngx_http_hris_fleet_link_ctx_t  *lc;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);
    rcf = hmcf->redis;

    lc = ngx_palloc(r->pool, sizeof(ngx_http_hris_fleet_link_ctx_t));
    p = ngx_pnalloc(r->pool, sizeof("hris:{link:}") - 1
                             + 2 * NGX_HTTP_HRIS_LINK_HASH + NGX_TIME_T_LEN);
    if (lc == NULL || p == NULL) {
        return NGX_ERROR;
    }

    lc->request = r;
    lc->handler = handler;
    lc->data = data;

    ngx_str_set(&argv[0], "SET");

    argv[1].data = p;
    p = ngx_http_hris_fleet_link_key(p, hash);
    argv[1].len = p - argv[1].data;

    ngx_str_set(&argv[2], "1");
    ngx_str_set(&argv[3], "NX");
    ngx_str_set(&argv[4], "EX");

    /* a used link must be remembered until it could not be used anyway */
    argv[5].data = p;
    argv[5].len = ngx_sprintf(p, "%T", ngx_max(expires - ngx_time(), 1) + 1)
                  - p;

    if (ngx_http_hris_redis_command(rcf->client, r->pool, 6, argv,
                                    ngx_http_hris_fleet_link_reply, lc)
        == NULL)
    {
        return NGX_ERROR;
    }

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_hris_fleet_link_reply(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
    ngx_http_hris_fleet_link_ctx_t  *lc = data;

    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = lc->request;
    c = r->connection;

    if (status != NGX_HTTP_HRIS_REDIS_REPLY) {
        rc = NGX_ABORT;

    } else if (reply->type == NGX_HTTP_HRIS_REDIS_NIL) {
        rc = NGX_DECLINED;

    } else if (reply->type == NGX_HTTP_HRIS_REDIS_STRING) {
        rc = NGX_OK;

    } else {
        ngx_log_error(NGX_LOG_ERR, c->log, 0, "hris: the state store "
                      "refused to mark a connect link used: %V",
                      &reply->str);
        rc = NGX_ABORT;
    }

    lc->handler(r, lc->data, rc);
    ngx_http_run_posted_requests(c);
}


/*
 * Whether another gateway used the link, asked once per request before a
 * page is shown or a code exchanged: NGX_OK, go on (not used, asked
 * already, or the store cannot say: completing asks again); NGX_DONE,
 * resume(r) runs again once the store answered, and a used link is then
 * in this gateway's zone (ngx_http_hris_link_used() says so); NGX_ERROR.
 */

ngx_int_t
ngx_http_hris_fleet_link_check(ngx_http_request_t *r, u_char *hash,
    time_t expires, ngx_http_handler_pt resume)
{
    u_char                          *p;
    ngx_str_t                        argv[2];
    ngx_pool_cleanup_t              *cln;
    ngx_http_hris_main_conf_t       *hmcf;
    ngx_http_hris_redis_conf_t      *rcf;
    ngx_http_hris_fleet_link_ask_t  *ask;

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_hris_fleet_link_asked) {
            return NGX_OK;
        }
    }

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);
    rcf = hmcf->redis;

    cln = ngx_pool_cleanup_add(r->pool,
                               sizeof(ngx_http_hris_fleet_link_ask_t));
    p = ngx_pnalloc(r->pool, sizeof("hris:{link:}") - 1
                             + 2 * NGX_HTTP_HRIS_LINK_HASH);
    if (cln == NULL || p == NULL) {
        return NGX_ERROR;
    }

    ask = cln->data;
    ask->request = r;
    ask->resume = resume;
    ask->expires = expires;
    ngx_memcpy(ask->hash, hash, NGX_HTTP_HRIS_LINK_HASH);
    cln->handler = ngx_http_hris_fleet_link_asked;

    ngx_str_set(&argv[0], "EXISTS");
    argv[1].data = p;
    argv[1].len = ngx_http_hris_fleet_link_key(p, hash) - p;

    if (ngx_http_hris_redis_command(rcf->client, r->pool, 2, argv,
                                    ngx_http_hris_fleet_link_answer, ask)
        == NULL)
    {
        return NGX_OK;
    }

    r->main->count++;

    return NGX_DONE;
}


/* (only a mark: the command goes with the pool by itself) */

static void
ngx_http_hris_fleet_link_asked(void *data)
{
}


static void
ngx_http_hris_fleet_link_answer(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
    ngx_http_hris_fleet_link_ask_t  *ask = data;

    ngx_connection_t           *c;
    ngx_http_request_t         *r;
    ngx_http_hris_main_conf_t  *hmcf;

    r = ask->request;
    c = r->connection;

    if (status == NGX_HTTP_HRIS_REDIS_REPLY
        && reply->type == NGX_HTTP_HRIS_REDIS_INTEGER && reply->integer > 0)
    {
        hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

        /* no room to note it: the completion is refused by the fleet */
        (void) ngx_http_hris_link_claim(hmcf, ask->hash, ask->expires);
    }

    ngx_http_finalize_request(r, ask->resume(r));
    ngx_http_run_posted_requests(c);
}


/* Storing the account failed: the link may be used again (best effort). */

void
ngx_http_hris_fleet_link_release(ngx_http_hris_main_conf_t *hmcf,
    u_char *hash)
{
    u_char                       key[sizeof("hris:{link:}") - 1
                                     + 2 * NGX_HTTP_HRIS_LINK_HASH];
    ngx_str_t                    argv[2];
    ngx_http_hris_redis_conf_t  *rcf = hmcf->redis;

    ngx_str_set(&argv[0], "DEL");
    argv[1].data = key;
    argv[1].len = ngx_http_hris_fleet_link_key(key, hash) - key;

    (void) ngx_http_hris_redis_command(rcf->client, NULL, 2, argv,
                                       ngx_http_hris_fleet_links_ignore, NULL);
}


static u_char *
ngx_http_hris_fleet_link_key(u_char *p, u_char *hash)
{
    p = ngx_cpymem(p, "hris:{link:", sizeof("hris:{link:") - 1);
    p = ngx_hex_dump(p, hash, NGX_HTTP_HRIS_LINK_HASH);
    *p++ = '}';

    return p;
}


/* One worker of each gateway copies the fleet's cool-downs into its zone. */

ngx_int_t
ngx_http_hris_fleet_cooldown_init_process(ngx_cycle_t *cycle,
    ngx_http_hris_main_conf_t *hmcf)
{
    ngx_http_hris_cool_sync_t   *cs;
    ngx_http_hris_redis_conf_t  *rcf = hmcf->redis;

    if (rcf == NULL || rcf->client == NULL) {
        return NGX_OK;
    }

    ngx_http_hris_redis_script_init(&ngx_http_hris_cool_publish_script,
                                    ngx_http_hris_cool_publish_lua);
    ngx_http_hris_redis_script_init(&ngx_http_hris_cool_poll_script,
                                    ngx_http_hris_cool_poll_lua);

    cs = ngx_pcalloc(cycle->pool, sizeof(ngx_http_hris_cool_sync_t));
    if (cs == NULL) {
        return NGX_ERROR;
    }

    cs->hmcf = hmcf;
    cs->rd = rcf->client;
    cs->log = cycle->log;
    cs->seen.data = cs->seen_buf;
    ngx_str_set(&cs->seen, "-");

    cs->timer.handler = ngx_http_hris_cool_poll;
    cs->timer.data = cs;
    cs->timer.log = cycle->log;
    cs->timer.cancelable = 1;      /* a graceful quit does not wait for it */

    ngx_http_hris_cool_sync = cs;

    /* the zone is the gateway's: one poller is enough */
    if (ngx_worker == 0) {
        ngx_add_timer(&cs->timer, 1);
    }

    return NGX_OK;
}


/* A cool-down started here (kept in the zone already): tell the fleet. */

void
ngx_http_hris_fleet_cooldown_publish(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id, u_char *creds, time_t until, ngx_uint_t status)
{
    u_char                     *p, mark[NGX_HTTP_HRIS_COOL_MARK];
    ngx_str_t                   argv[4];
    ngx_http_hris_cool_sync_t  *cs = ngx_http_hris_cool_sync;

    if (hmcf->redis == NULL || cs == NULL) {
        return;
    }

    p = ngx_sprintf(mark, "%T %ui ", until, status);
    p = ngx_hex_dump(p, creds, 16);

    argv[0] = ngx_http_hris_cool_marks;
    argv[1] = ngx_http_hris_cool_gen;
    argv[2] = *id;
    argv[3].data = mark;
    argv[3].len = p - mark;

    if (ngx_http_hris_redis_eval(cs->rd, NULL,
                                 &ngx_http_hris_cool_publish_script, 2, 4,
                                 argv, ngx_http_hris_fleet_links_ignore, NULL)
        == NULL)
    {
        ngx_log_error(NGX_LOG_WARN, cs->log, 0, "hris: the cool-down of "
                      "integrated account \"%V\" holds on this gateway "
                      "only: the state store (hris_redis) cannot be used "
                      "now", id);
    }
}


static void
ngx_http_hris_cool_poll(ngx_event_t *ev)
{
    ngx_str_t                   argv[3];
    ngx_http_hris_cool_sync_t  *cs = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_add_timer(&cs->timer, NGX_HTTP_HRIS_COOL_POLL);

    if (cs->busy) {
        return;
    }

    argv[0] = ngx_http_hris_cool_marks;
    argv[1] = ngx_http_hris_cool_gen;
    argv[2] = cs->seen;

    if (ngx_http_hris_redis_eval(cs->rd, NULL, &ngx_http_hris_cool_poll_script,
                                 2, 3, argv, ngx_http_hris_cool_reply, cs)
        != NULL)
    {
        cs->busy = 1;
    }
}


static void
ngx_http_hris_cool_reply(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
    ngx_http_hris_cool_sync_t  *cs = data;

    ngx_uint_t                    i;
    ngx_http_hris_redis_reply_t  *e;

    cs->busy = 0;

    if (status != NGX_HTTP_HRIS_REDIS_REPLY
        || reply->type != NGX_HTTP_HRIS_REDIS_ARRAY || reply->nelts == 0
        || reply->nelts % 2 == 0
        || reply->elts[0].type != NGX_HTTP_HRIS_REDIS_BULK
        || reply->elts[0].str.len > sizeof(cs->seen_buf))
    {
        return;
    }

    e = reply->elts;

    for (i = 1; i + 1 < reply->nelts; i += 2) {
        if (e[i].type == NGX_HTTP_HRIS_REDIS_BULK
            && e[i + 1].type == NGX_HTTP_HRIS_REDIS_BULK)
        {
            ngx_http_hris_cool_merge(cs, &e[i].str, &e[i + 1].str);
        }
    }

    cs->seen.len = e[0].str.len;
    ngx_memcpy(cs->seen_buf, e[0].str.data, e[0].str.len);
}


/* "<until> <status> <32 hex>" into this gateway's zone */

static void
ngx_http_hris_cool_merge(ngx_http_hris_cool_sync_t *cs, ngx_str_t *id,
    ngx_str_t *mark)
{
    u_char      *p, *last, *sp;
    time_t       until;
    ngx_int_t    status;
    u_char       creds[16];

    p = mark->data;
    last = p + mark->len;

    sp = ngx_strlchr(p, last, ' ');
    if (sp == NULL || id->len == 0 || id->len > NGX_HTTP_HRIS_COOL_ID_MAX) {
        goto invalid;
    }

    until = ngx_atotm(p, sp - p);
    p = sp + 1;

    sp = ngx_strlchr(p, last, ' ');
    if (sp == NULL || until == NGX_ERROR) {
        goto invalid;
    }

    status = ngx_atoi(p, sp - p);
    p = sp + 1;

    if (status == NGX_ERROR || last - p != 32
        || ngx_http_hris_cool_unhex(creds, p, 16) != NGX_OK)
    {
        goto invalid;
    }

    if (until > ngx_time()
        && ngx_http_hris_creds_refuse(cs->hmcf, id, creds, until,
                                      (ngx_uint_t) status)
           == NGX_ERROR)
    {
        ngx_log_error(NGX_LOG_WARN, cs->log, 0, "hris: no room in the "
                      "shared memory zone for the fleet's cool-down of "
                      "integrated account \"%V\"", id);
    }

    return;

invalid:

    ngx_log_error(NGX_LOG_WARN, cs->log, 0, "hris: the state store holds "
                  "a cool-down this gateway cannot read (hris:{cool}:marks)");
}


static ngx_int_t
ngx_http_hris_cool_unhex(u_char *out, u_char *hex, size_t n)
{
    size_t     i;
    ngx_int_t  hi, lo;

    for (i = 0; i < n; i++) {
        hi = ngx_hextoi(&hex[2 * i], 1);
        lo = ngx_hextoi(&hex[2 * i + 1], 1);

        if (hi == NGX_ERROR || lo == NGX_ERROR) {
            return NGX_ERROR;
        }

        out[i] = (u_char) (hi << 4 | lo);
    }

    return NGX_OK;
}


static void
ngx_http_hris_fleet_links_ignore(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
}

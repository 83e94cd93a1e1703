/*
 * State that outlives a request and is shared by every worker, in one
 * shared memory zone (slab, rbtrees and an LRU queue, as limit_req keeps
 * its states):
 *
 *  - per account, a node keyed by its id: the access token, with a
 *    "refreshing" mark so that one worker exchanges credentials while the
 *    others wait for its result; the rotated refresh token and the
 *    needs-reauth mark; the rate-limit window; the mark of credentials
 *    the provider refused;
 *  - the connect links completed, until they expire, so that each link
 *    completes once;
 *  - the accounts created, changed or deleted at run time, as one JSON
 *    text with a generation number that every change bumps, so each
 *    worker knows when to compile them again (ngx_http_hris_store.c).
 *
 * What a tenant can make the zone hold is bounded: a node and its rate
 * window have a fixed size whatever the account's limit; the node goes
 * when its account is deleted, and, least recently used first, when room
 * is short and it holds nothing that could not be had again (see
 * ngx_http_hris_shm_evictable()); used links go when they expire.
 *
 * This file is the one place that knows the store is shared memory: a
 * fleet would put Redis behind the same calls.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"


/*
 * The zone's layout: bump NGX_HTTP_HRIS_SHM_LAYOUT with any change to
 * the structures below (see ngx_http_hris_shm_init()).
 */
#define NGX_HTTP_HRIS_SHM_MAGIC      0x73697268          /* "hris" */
#define NGX_HTTP_HRIS_SHM_LAYOUT     2

#define NGX_HTTP_HRIS_TOKEN_MAX      4096
#define NGX_HTTP_HRIS_REFRESH_STALE  60000   /* ms: a refresher that died */
#define NGX_HTTP_HRIS_IDLE           600     /* s: a node idle this long is
                                                reclaimed, when it may be */

/*
 * A rate window is counted in buckets, a sixteenth of the window each,
 * in a ring that reaches one window into the future (for the calls that
 * wait for their slot): its size does not depend on the limit.
 */
#define NGX_HTTP_HRIS_RATE_BUCKETS   16
#define NGX_HTTP_HRIS_RATE_SLOTS     (2 * NGX_HTTP_HRIS_RATE_BUCKETS + 2)

/* used connect links: at most one per this many bytes of the zone */
#define NGX_HTTP_HRIS_LINK_ROOM      256


typedef struct {
    uint32_t                  count;        /* calls reserved in it */
    uint32_t                  last;         /* the latest: ms after the
                                               bucket's start + 1, or 0 */
} ngx_http_hris_rate_slot_t;


typedef struct {
    ngx_uint_t                calls;
    ngx_msec_t                window;
    ngx_msec_t                width;        /* of a bucket */
    ngx_uint_t                span;         /* buckets in a window */
    ngx_uint_t                low;          /* the oldest bucket kept */
    ngx_msec_t                last;         /* the latest call reserved */
    ngx_http_hris_rate_slot_t slot[NGX_HTTP_HRIS_RATE_SLOTS];
} ngx_http_hris_rate_t;


typedef struct {
    ngx_rbtree_node_t         node;         /* key: crc32 of the id */
    ngx_queue_t               queue;        /* LRU, newest first */
    time_t                    used;         /* seconds */
    ngx_msec_t                refreshing;   /* since when, or 0 */
    time_t                    expires;      /* token expiry, seconds */
    u_char                   *token;        /* slab, or NULL */
    size_t                    token_len;
    size_t                    token_size;   /* allocated */
    u_char                   *refresh;      /* rotated refresh token */
    size_t                    refresh_len;
    size_t                    refresh_size;
    u_char                   *saved;        /* the state file's entry, */
    size_t                    saved_len;    /* until the account is used */
    ngx_http_hris_rate_t     *rate;
    time_t                    refused_until;   /* credentials refused */
    ngx_uint_t                refused_status;
    u_char                    refused_creds[16];
    u_char                    base[32];     /* what it descends from */
    unsigned                  has_base:1;
    unsigned                  needs_reauth:1;
    unsigned                  creds_reauth:1;  /* told: refused for good */
    size_t                    id_len;
    u_char                    id[1];
} ngx_http_hris_shm_node_t;


typedef struct {
    ngx_rbtree_node_t         node;         /* key: the hash's first bytes */
    ngx_queue_t               queue;        /* by expiry, soonest first */
    time_t                    expires;
    u_char                    hash[NGX_HTTP_HRIS_LINK_HASH];
} ngx_http_hris_shm_link_t;


typedef struct {
    uint32_t                  magic;        /* first, whatever the layout */
    uint32_t                  layout;
    ngx_rbtree_t              rbtree;       /* accounts */
    ngx_rbtree_node_t         sentinel;
    ngx_queue_t               lru;
    ngx_rbtree_t              links;        /* used connect links */
    ngx_rbtree_node_t         links_sentinel;
    ngx_queue_t               links_expiry;
    ngx_uint_t                nlinks;
    ngx_uint_t                links_max;
    ngx_atomic_t              accounts_gen;
    u_char                   *accounts;     /* JSON text, slab */
    size_t                    accounts_len;
    ngx_uint_t                state_serial; /* of the latest snapshot */
    time_t                    full_logged;
} ngx_http_hris_shm_sh_t;


typedef struct {
    ngx_http_hris_shm_sh_t     *sh;
    ngx_slab_pool_t            *shpool;
    ngx_http_hris_main_conf_t  *hmcf;
} ngx_http_hris_shm_ctx_t;


static ngx_int_t ngx_http_hris_shm_init(ngx_shm_zone_t *zone, void *data);
static void ngx_http_hris_shm_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static void ngx_http_hris_link_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_hris_shm_node_t *ngx_http_hris_shm_node(
    ngx_http_hris_shm_ctx_t *ctx, ngx_str_t *id, ngx_uint_t create);
static void *ngx_http_hris_shm_alloc(ngx_http_hris_shm_ctx_t *ctx,
    size_t size, ngx_http_hris_shm_node_t *keep);
static ngx_int_t ngx_http_hris_shm_store(ngx_http_hris_shm_ctx_t *ctx,
    ngx_http_hris_shm_node_t *n, u_char **p, size_t *len, size_t *size,
    ngx_str_t *value);
static ngx_uint_t ngx_http_hris_shm_evict(ngx_http_hris_shm_ctx_t *ctx,
    ngx_uint_t max, time_t idle, ngx_http_hris_shm_node_t *keep);
static ngx_uint_t ngx_http_hris_shm_evictable(ngx_http_hris_shm_node_t *n);
static void ngx_http_hris_shm_free(ngx_http_hris_shm_ctx_t *ctx,
    ngx_http_hris_shm_node_t *n);
static ngx_int_t ngx_http_hris_shm_accounts_seed(ngx_http_hris_shm_ctx_t *ctx);
static ngx_int_t ngx_http_hris_shm_tokens_seed(ngx_http_hris_shm_ctx_t *ctx);
static ngx_int_t ngx_http_hris_shm_links_seed(ngx_http_hris_shm_ctx_t *ctx);
static ngx_int_t ngx_http_hris_hex_decode(u_char *out, ngx_str_t *hex);
static ngx_int_t ngx_http_hris_shm_accounts_copy(ngx_http_hris_shm_ctx_t *ctx,
    ngx_pool_t *pool, ngx_str_t *text);
static ngx_int_t ngx_http_hris_rate_take(ngx_http_hris_rate_t *rt,
    ngx_msec_t now, ngx_msec_t max_wait, ngx_msec_t *wait);
static ngx_http_hris_shm_link_t *ngx_http_hris_link_find(
    ngx_http_hris_shm_ctx_t *ctx, u_char *hash);
static ngx_int_t ngx_http_hris_link_add(ngx_http_hris_shm_ctx_t *ctx,
    u_char *hash, time_t expires);
static void ngx_http_hris_links_expire(ngx_http_hris_shm_ctx_t *ctx);


ngx_int_t
ngx_http_hris_shm_add(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf)
{
    ngx_str_t                 name = ngx_string("hris");
    ngx_http_hris_shm_ctx_t  *ctx;

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_hris_shm_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->hmcf = hmcf;

    hmcf->shm = ngx_shared_memory_add(cf, &name, hmcf->shm_size,
                                      &ngx_http_hris_module);
    if (hmcf->shm == NULL) {
        return NGX_ERROR;
    }

    hmcf->shm->init = ngx_http_hris_shm_init;
    hmcf->shm->data = ctx;

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_shm_init(ngx_shm_zone_t *zone, void *data)
{
    ngx_http_hris_shm_ctx_t  *ctx = zone->data;
    ngx_http_hris_shm_sh_t   *sh;

    ctx->shpool = (ngx_slab_pool_t *) zone->shm.addr;

    /*
     * A reload keeps the zone, tokens and call times in it, when it is
     * laid out as this build reads it. nginx hands a zone over to the
     * module of the same tag (&ngx_http_hris_module), and a build loaded
     * from another file for the reload gets that tag too (dlopen with
     * RTLD_GLOBAL resolves the symbol to the running copy's): the header
     * says which layout the zone has, read from the zone itself, not
     * from the old cycle's structures. Another layout refuses the reload
     * (nginx goes on with the old configuration) and the message asks
     * for a restart: starting afresh in its place is no option while the
     * old workers still use it, and a restart starts from the state
     * file, which keeps what must be kept.
     */
    if (data || zone->shm.exists) {
        sh = ctx->shpool->data;

        if (sh == NULL || sh->magic != NGX_HTTP_HRIS_SHM_MAGIC
            || sh->layout != NGX_HTTP_HRIS_SHM_LAYOUT)
        {
            ngx_log_error(NGX_LOG_EMERG, zone->shm.log, 0, "hris: the "
                          "shared memory zone \"hris\" was laid out by "
                          "another build of the module (layout %uD, this "
                          "one reads %d): restart nginx to use this build "
                          "(the state file keeps what it holds)",
                          sh && sh->magic == NGX_HTTP_HRIS_SHM_MAGIC
                          ? sh->layout : 1, NGX_HTTP_HRIS_SHM_LAYOUT);
            return NGX_ERROR;
        }

        ctx->sh = sh;
        return NGX_OK;
    }

    sh = ngx_slab_calloc(ctx->shpool, sizeof(ngx_http_hris_shm_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ctx->sh = sh;
    ctx->shpool->data = sh;

    sh->magic = NGX_HTTP_HRIS_SHM_MAGIC;
    sh->layout = NGX_HTTP_HRIS_SHM_LAYOUT;

    ngx_rbtree_init(&sh->rbtree, &sh->sentinel, ngx_http_hris_shm_insert);
    ngx_rbtree_init(&sh->links, &sh->links_sentinel,
                    ngx_http_hris_link_insert);
    ngx_queue_init(&sh->lru);
    ngx_queue_init(&sh->links_expiry);

    sh->links_max = zone->shm.size / NGX_HTTP_HRIS_LINK_ROOM;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool,
                                          sizeof(" in hris zone") + 1);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx, " in hris zone%Z");
    ctx->shpool->log_nomem = 0;

    if (ngx_http_hris_shm_accounts_seed(ctx) != NGX_OK
        || ngx_http_hris_shm_tokens_seed(ctx) != NGX_OK
        || ngx_http_hris_shm_links_seed(ctx) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, zone->shm.log, 0, "hris: the state "
                      "file's content does not fit in the shared memory "
                      "zone: raise \"hris_zone_size\"");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A fresh zone starts from the run-time accounts of the state file; a
 * reload keeps the zone's, which are newer than any file.
 */

static ngx_int_t
ngx_http_hris_shm_accounts_seed(ngx_http_hris_shm_ctx_t *ctx)
{
    char       *text;
    json_t     *accounts;
    ngx_int_t   rc;

    ctx->sh->accounts_gen = 1;

    /* snapshots go on numbering from the state file's last one */
    ctx->sh->state_serial = ctx->hmcf->state_serial;

    accounts = json_object_get(ctx->hmcf->state, "accounts");
    if (!json_is_object(accounts)) {
        return NGX_OK;
    }

    text = json_dumps(accounts, JSON_COMPACT);
    if (text == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_OK;
    ctx->sh->accounts_len = ngx_strlen(text);
    ctx->sh->accounts = ngx_slab_alloc(ctx->shpool, ctx->sh->accounts_len);

    if (ctx->sh->accounts == NULL) {
        ctx->sh->accounts_len = 0;
        rc = NGX_ERROR;

    } else {
        ngx_memcpy(ctx->sh->accounts, text, ctx->sh->accounts_len);
    }

    free(text);

    return rc;
}


/*
 * The state file's tokens, as they are in it (sealed or not), for the
 * accounts that still exist: every snapshot carries them on until the
 * account is used, which takes them up through its configuration
 * (ngx_http_hris_state_account()), or deleted. Without them, a snapshot
 * written before an account is used would drop its rotated refresh
 * token, and the next start would have only the one rotated away.
 */

static ngx_int_t
ngx_http_hris_shm_tokens_seed(ngx_http_hris_shm_ctx_t *ctx)
{
    char                      *text;
    json_t                    *tokens, *e, *runtime;
    ngx_str_t                  id;
    const char                *key;
    ngx_http_hris_shm_node_t  *n;

    tokens = ngx_http_hris_state_tokens(ctx->hmcf);
    runtime = json_object_get(ctx->hmcf->state, "accounts");

    json_object_foreach(tokens, key, e) {
        id.data = (u_char *) key;
        id.len = ngx_strlen(key);

        if (!json_is_object(e) || id.len == 0 || id.len > 1024
            || !(json_is_object(json_object_get(runtime, key))
                 || (json_object_get(runtime, key) == NULL
                     && ngx_http_hris_account_find(ctx->hmcf, &id))))
        {
            continue;
        }

        n = ngx_http_hris_shm_node(ctx, &id, 1);
        text = json_dumps(e, JSON_COMPACT);

        if (n == NULL || text == NULL) {
            free(text);
            return NGX_ERROR;
        }

        n->saved_len = ngx_strlen(text);
        n->saved = ngx_slab_alloc_locked(ctx->shpool, n->saved_len);

        if (n->saved == NULL) {
            free(text);
            return NGX_ERROR;
        }

        ngx_memcpy(n->saved, text, n->saved_len);
        free(text);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_hex_decode(u_char *out, ngx_str_t *hex)
{
    size_t     i;
    ngx_int_t  b;

    for (i = 0; i + 1 < hex->len; i += 2) {
        b = ngx_hextoi(hex->data + i, 2);
        if (b == NGX_ERROR) {
            return NGX_ERROR;
        }

        out[i / 2] = (u_char) b;
    }

    return NGX_OK;
}


/* The used connect links the state file knows, while they are in date. */

static ngx_int_t
ngx_http_hris_shm_links_seed(ngx_http_hris_shm_ctx_t *ctx)
{
    json_t      *links, *v;
    ngx_str_t    hex;
    const char  *key;
    u_char       hash[NGX_HTTP_HRIS_LINK_HASH];

    links = json_object_get(ctx->hmcf->state, "links");

    json_object_foreach(links, key, v) {
        hex.data = (u_char *) key;
        hex.len = ngx_strlen(key);

        if (!json_is_integer(v) || json_integer_value(v) < ngx_time()
            || hex.len != 2 * NGX_HTTP_HRIS_LINK_HASH
            || ngx_http_hris_hex_decode(hash, &hex) != NGX_OK
            || ctx->sh->nlinks >= ctx->sh->links_max)
        {
            continue;
        }

        if (ngx_http_hris_link_add(ctx, hash, (time_t) json_integer_value(v))
            == NGX_ERROR)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_uint_t
ngx_http_hris_shm_accounts_gen(ngx_http_hris_main_conf_t *hmcf)
{
    ngx_http_hris_shm_ctx_t  *ctx = hmcf->shm->data;

    return ctx->sh->accounts_gen;
}


/* A copy of the run-time accounts text ("{}" when none) and its generation. */

ngx_int_t
ngx_http_hris_shm_accounts_get(ngx_http_hris_main_conf_t *hmcf,
    ngx_pool_t *pool, ngx_str_t *text, ngx_uint_t *gen)
{
    ngx_http_hris_shm_ctx_t  *ctx = hmcf->shm->data;

    ngx_int_t                 rc;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    *gen = ctx->sh->accounts_gen;
    rc = ngx_http_hris_shm_accounts_copy(ctx, pool, text);

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


/* with the zone locked */

static ngx_int_t
ngx_http_hris_shm_accounts_copy(ngx_http_hris_shm_ctx_t *ctx,
    ngx_pool_t *pool, ngx_str_t *text)
{
    text->len = ctx->sh->accounts_len;
    text->data = ngx_pnalloc(pool, ngx_max(text->len, 2));

    if (text->data == NULL) {
        return NGX_ERROR;
    }

    if (text->len) {
        ngx_memcpy(text->data, ctx->sh->accounts, text->len);

    } else {
        text->len = 2;
        ngx_memcpy(text->data, "{}", 2);
    }

    return NGX_OK;
}


/*
 * Replaces the text if nobody changed it since generation gen was read:
 * NGX_BUSY asks the caller to read again and redo its change.
 */

ngx_int_t
ngx_http_hris_shm_accounts_set(ngx_http_hris_main_conf_t *hmcf,
    ngx_uint_t gen, ngx_str_t *text)
{
    u_char                   *p;
    ngx_http_hris_shm_ctx_t  *ctx = hmcf->shm->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (ctx->sh->accounts_gen != gen) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_BUSY;
    }

    p = ngx_http_hris_shm_alloc(ctx, text->len, NULL);
    if (p == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_ERROR;
    }

    if (ctx->sh->accounts) {
        ngx_slab_free_locked(ctx->shpool, ctx->sh->accounts);
    }

    ngx_memcpy(p, text->data, text->len);
    ctx->sh->accounts = p;
    ctx->sh->accounts_len = text->len;
    ctx->sh->accounts_gen++;

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


static void
ngx_http_hris_shm_insert(ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t         **p;
    ngx_http_hris_shm_node_t   *n, *t;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            n = (ngx_http_hris_shm_node_t *) node;
            t = (ngx_http_hris_shm_node_t *) temp;

            p = (ngx_memn2cmp(n->id, t->id, n->id_len, t->id_len) < 0)
                ? &temp->left : &temp->right;
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


/*
 * The account's node, the most recently used from now on; with create, a
 * new one when there is none. With the zone locked.
 */

static ngx_http_hris_shm_node_t *
ngx_http_hris_shm_node(ngx_http_hris_shm_ctx_t *ctx, ngx_str_t *id,
    ngx_uint_t create)
{
    uint32_t                   hash;
    ngx_int_t                  rc;
    ngx_rbtree_node_t         *node, *sentinel;
    ngx_http_hris_shm_node_t  *n;

    hash = ngx_crc32_short(id->data, id->len);

    node = ctx->sh->rbtree.root;
    sentinel = ctx->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        n = (ngx_http_hris_shm_node_t *) node;
        rc = ngx_memn2cmp(id->data, n->id, id->len, n->id_len);

        if (rc == 0) {
            ngx_queue_remove(&n->queue);
            ngx_queue_insert_head(&ctx->sh->lru, &n->queue);
            n->used = ngx_time();
            return n;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    if (!create) {
        return NULL;
    }

    /* as limit_req does: a new node takes a long idle one or two along */
    (void) ngx_http_hris_shm_evict(ctx, 2, NGX_HTTP_HRIS_IDLE, NULL);

    n = ngx_http_hris_shm_alloc(ctx,
                                sizeof(ngx_http_hris_shm_node_t) + id->len,
                                NULL);
    if (n == NULL) {
        return NULL;
    }

    ngx_memzero(n, sizeof(ngx_http_hris_shm_node_t));

    n->node.key = hash;
    n->id_len = id->len;
    n->used = ngx_time();
    ngx_memcpy(n->id, id->data, id->len);

    ngx_rbtree_insert(&ctx->sh->rbtree, &n->node);
    ngx_queue_insert_head(&ctx->sh->lru, &n->queue);

    return n;
}


/*
 * Memory from the zone; when there is none, nodes that hold nothing that
 * must be kept make room, least recently used first. The zone really
 * full is said in the error log (once a second at most): the callers
 * answer with an error naming hris_zone_size. With the zone locked.
 */

static void *
ngx_http_hris_shm_alloc(ngx_http_hris_shm_ctx_t *ctx, size_t size,
    ngx_http_hris_shm_node_t *keep)
{
    void  *p;

    for ( ;; ) {
        p = ngx_slab_alloc_locked(ctx->shpool, size);
        if (p) {
            return p;
        }

        ngx_http_hris_links_expire(ctx);

        if (ngx_http_hris_shm_evict(ctx, 16, 0, keep) == 0) {
            break;
        }
    }

    p = ngx_slab_alloc_locked(ctx->shpool, size);
    if (p) {
        return p;
    }

    if (ctx->sh->full_logged != ngx_time()) {
        ctx->sh->full_logged = ngx_time();
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0, "hris: the shared "
                      "memory zone \"hris\" is full (%uz bytes, all of it "
                      "state that must be kept): raise \"hris_zone_size\"",
                      ctx->hmcf->shm_size);
    }

    return NULL;
}


/*
 * A value into the node's buffer *p: reused when it is big enough (a
 * rotated token usually has the length of the one before, so rotating
 * needs no new memory), else replaced. With the zone locked.
 */

static ngx_int_t
ngx_http_hris_shm_store(ngx_http_hris_shm_ctx_t *ctx,
    ngx_http_hris_shm_node_t *n, u_char **p, size_t *len, size_t *size,
    ngx_str_t *value)
{
    u_char  *q;

    if (*p == NULL || *size < value->len) {
        q = ngx_http_hris_shm_alloc(ctx, value->len, n);
        if (q == NULL) {
            return NGX_ERROR;
        }

        if (*p) {
            ngx_slab_free_locked(ctx->shpool, *p);
        }

        *p = q;
        *size = value->len;
    }

    ngx_memcpy(*p, value->data, value->len);
    *len = value->len;

    return NGX_OK;
}


/*
 * Frees up to max nodes that may go, least recently used first; with
 * idle, only nodes unused for that many seconds. With the zone locked.
 */

static ngx_uint_t
ngx_http_hris_shm_evict(ngx_http_hris_shm_ctx_t *ctx, ngx_uint_t max,
    time_t idle, ngx_http_hris_shm_node_t *keep)
{
    ngx_uint_t                 freed, looked;
    ngx_queue_t               *q, *prev;
    ngx_http_hris_shm_node_t  *n;

    freed = 0;
    looked = 0;

    for (q = ngx_queue_last(&ctx->sh->lru);
         q != ngx_queue_sentinel(&ctx->sh->lru) && freed < max;
         q = prev)
    {
        prev = ngx_queue_prev(q);
        n = ngx_queue_data(q, ngx_http_hris_shm_node_t, queue);

        if (idle) {
            /* newer ones follow; and a look stays short */
            if (ngx_time() - n->used < idle || ++looked > 16) {
                break;
            }
        }

        if (n != keep && ngx_http_hris_shm_evictable(n)) {
            ngx_http_hris_shm_free(ctx, n);
            freed++;
        }
    }

    return freed;
}


/*
 * What may be dropped is what can be had again: an access token (another
 * exchange gets one), a rate window whose calls have all left it, a
 * refusal mark that expired. Never a refresh token nor a needs-reauth
 * mark: the zone is where they live (the configuration holds the token
 * as it was when nginx read it, and the state file only what was
 * written), nor a state file entry that waits for its account, nor a
 * node whose exchange is under way or whose calls still count. (A
 * refresh token without a base is one an exchange brought back after
 * its account was deleted: nothing uses it.)
 */

static ngx_uint_t
ngx_http_hris_shm_evictable(ngx_http_hris_shm_node_t *n)
{
    if (n->has_base || n->needs_reauth || n->saved) {
        return 0;
    }

    /* signed: another worker's clock may be a little ahead of ours */
    if (n->refreshing
        && (ngx_msec_int_t) (ngx_current_msec - n->refreshing)
           < NGX_HTTP_HRIS_REFRESH_STALE)
    {
        return 0;
    }

    if (n->rate
        && (ngx_msec_int_t) (ngx_current_msec - n->rate->last)
           < (ngx_msec_int_t) n->rate->window)
    {
        return 0;
    }

    return n->refused_until <= ngx_time();
}


static void
ngx_http_hris_shm_free(ngx_http_hris_shm_ctx_t *ctx,
    ngx_http_hris_shm_node_t *n)
{
    ngx_rbtree_delete(&ctx->sh->rbtree, &n->node);
    ngx_queue_remove(&n->queue);

    if (n->token) {
        ngx_slab_free_locked(ctx->shpool, n->token);
    }

    if (n->refresh) {
        ngx_slab_free_locked(ctx->shpool, n->refresh);
    }

    if (n->saved) {
        ngx_slab_free_locked(ctx->shpool, n->saved);
    }

    if (n->rate) {
        ngx_slab_free_locked(ctx->shpool, n->rate);
    }

    ngx_slab_free_locked(ctx->shpool, n);
}


/* The account was deleted: whatever the zone held for it goes. */

void
ngx_http_hris_shm_forget(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id)
{
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_hris_shm_node(ctx, id, 0);
    if (n) {
        ngx_http_hris_shm_free(ctx, n);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


/*
 * The account's token. NGX_OK: a valid token, copied into the pool.
 * NGX_DECLINED: none, and the caller is now the one to get it (it must end
 * with token_set() or token_fail()). NGX_AGAIN: another worker is getting
 * it; ask again shortly. NGX_ABORT: the account needs re-authorization.
 * NGX_ERROR: the zone is full.
 */

ngx_int_t
ngx_http_hris_token_get(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id,
    ngx_pool_t *pool, time_t skew, ngx_str_t *token)
{
    ngx_int_t                  rc;
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_hris_shm_node(ctx, id, 1);
    if (n == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_ERROR;
    }

    if (n->needs_reauth) {
        rc = NGX_ABORT;

    } else if (n->token && n->expires - skew > ngx_time()) {
        token->len = n->token_len;
        token->data = ngx_pnalloc(pool, n->token_len + 1);
        rc = token->data ? NGX_OK : NGX_ERROR;
        if (token->data) {
            ngx_memcpy(token->data, n->token, n->token_len);
            token->data[n->token_len] = '\0';
        }

    } else if (n->refreshing
               && (ngx_msec_int_t) (ngx_current_msec - n->refreshing)
                  < NGX_HTTP_HRIS_REFRESH_STALE)
    {
        rc = NGX_AGAIN;

    } else {
        n->refreshing = ngx_current_msec ? ngx_current_msec : 1;
        rc = NGX_DECLINED;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


/*
 * NGX_OK; NGX_DECLINED: the token is empty or longer than the zone keeps
 * (NGX_HTTP_HRIS_TOKEN_MAX); NGX_ERROR: the zone is full. Either way the
 * refreshing mark goes.
 */

ngx_int_t
ngx_http_hris_token_set(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id,
    ngx_str_t *token, time_t expires)
{
    ngx_int_t                  rc;
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;

    if (token->len == 0 || token->len > NGX_HTTP_HRIS_TOKEN_MAX) {
        ngx_http_hris_token_fail(hmcf, id);
        return NGX_DECLINED;
    }

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_hris_shm_node(ctx, id, 1);
    if (n == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_ERROR;
    }

    n->refreshing = 0;

    rc = ngx_http_hris_shm_store(ctx, n, &n->token, &n->token_len,
                                 &n->token_size, token);
    if (rc == NGX_OK) {
        n->expires = expires;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


size_t
ngx_http_hris_token_max(void)
{
    return NGX_HTTP_HRIS_TOKEN_MAX;
}


/* Whether the account was refused for good (needs re-authorization). */

ngx_uint_t
ngx_http_hris_needs_reauth(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id)
{
    ngx_uint_t                 reauth;
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_hris_shm_node(ctx, id, 0);
    reauth = n ? n->needs_reauth : 0;

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return reauth;
}


/*
 * The account got credentials of another descent (connected again): what
 * the zone knew of the old refresh token, its access token and a refused
 * grant no longer apply, nor does the state file's entry for it.
 */

ngx_uint_t
ngx_http_hris_token_rebase(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id,
    u_char *base)
{
    ngx_uint_t                 lifted = 0;
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_hris_shm_node(ctx, id, 0);

    if (n && n->saved) {
        ngx_slab_free_locked(ctx->shpool, n->saved);
        n->saved = NULL;
        n->saved_len = 0;
    }

    if (n && n->has_base && ngx_memcmp(n->base, base, 32) != 0) {
        if (n->token) {
            ngx_slab_free_locked(ctx->shpool, n->token);
        }

        if (n->refresh) {
            ngx_slab_free_locked(ctx->shpool, n->refresh);
        }

        n->token = NULL;
        n->token_len = 0;
        n->token_size = 0;
        n->refresh = NULL;
        n->refresh_len = 0;
        n->refresh_size = 0;
        n->expires = 0;
        n->has_base = 0;
        lifted = n->needs_reauth;
        n->needs_reauth = 0;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return lifted;
}


/* The exchange failed: let the next request try again. */

void
ngx_http_hris_token_fail(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id)
{
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_hris_shm_node(ctx, id, 0);
    if (n) {
        n->refreshing = 0;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


/* The provider refused this token: forget it, unless it changed since. */

void
ngx_http_hris_token_drop(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id,
    ngx_str_t *token)
{
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_hris_shm_node(ctx, id, 0);

    if (n && n->token && n->token_len == token->len
        && ngx_memcmp(n->token, token->data, token->len) == 0)
    {
        ngx_slab_free_locked(ctx->shpool, n->token);
        n->token = NULL;
        n->token_len = 0;
        n->token_size = 0;
        n->expires = 0;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


/*
 * Reserves the account's next upstream call under "calls per window"
 * (a sliding window, as PeopleHR counts). Returns NGX_OK with *wait, the
 * ms to wait before calling; NGX_BUSY with *wait, the ms after which a
 * call would be allowed, when that is longer than max_wait (nothing is
 * reserved then); NGX_ERROR when the zone is full.
 */

ngx_int_t
ngx_http_hris_rate_reserve(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id,
    ngx_uint_t calls, ngx_msec_t window, ngx_msec_t max_wait,
    ngx_msec_t *wait)
{
    ngx_int_t                  rc;
    ngx_msec_t                 now;
    ngx_http_hris_rate_t      *rt;
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;

    now = ngx_current_msec;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_hris_shm_node(ctx, id, 1);
    if (n == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_ERROR;
    }

    if (n->rate == NULL) {
        n->rate = ngx_http_hris_shm_alloc(ctx, sizeof(ngx_http_hris_rate_t),
                                          n);
        if (n->rate == NULL) {
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            return NGX_ERROR;
        }

        n->rate->calls = 0;
    }

    rt = n->rate;

    if (rt->calls != calls || rt->window != window) {
        /* first use, or the limit changed with a reload: start afresh */
        ngx_memzero(rt, sizeof(ngx_http_hris_rate_t));
        rt->calls = calls;
        rt->window = window;
        rt->width = (window + NGX_HTTP_HRIS_RATE_BUCKETS - 1)
                    / NGX_HTTP_HRIS_RATE_BUCKETS;
        rt->span = (window + rt->width - 1) / rt->width;
        rt->low = now / rt->width;
        rt->low = (rt->low > rt->span) ? rt->low - rt->span : 0;
        rt->last = now - window;
    }

    rc = ngx_http_hris_rate_take(rt, now, max_wait, wait);

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


#define ngx_http_hris_rate_slot(rt, i)                                       \
    (&(rt)->slot[(i) % NGX_HTTP_HRIS_RATE_SLOTS])


/* When the latest call counted in bucket i was made (at the latest). */

static ngx_msec_t
ngx_http_hris_rate_last(ngx_http_hris_rate_t *rt, ngx_uint_t i)
{
    ngx_http_hris_rate_slot_t  *s = ngx_http_hris_rate_slot(rt, i);

    /* an offset that did not fit says "the bucket's end", which is later */
    if (s->last == NGX_MAX_UINT32_VALUE) {
        return (i + 1) * rt->width - 1;
    }

    return i * rt->width + s->last - 1;
}


/*
 * The window as buckets: a call in bucket j has in its window the calls
 * of buckets j - span + 1 .. j (counted whole: never more calls than the
 * provider allows, at the price of waiting up to a bucket longer), and
 * those of bucket j - span made less than a window before it. The call
 * takes the earliest time that keeps every window at "calls" or fewer.
 * Calls are placed in the order they come, so a call placed later never
 * lands before one placed earlier and the count it saw holds.
 */

static ngx_int_t
ngx_http_hris_rate_take(ngx_http_hris_rate_t *rt, ngx_msec_t now,
    ngx_msec_t max_wait, ngx_msec_t *wait)
{
    uint32_t                    last;
    ngx_uint_t                  i, j, k, first, end, in;
    ngx_msec_t                  at, off, free_at;
    ngx_http_hris_rate_slot_t  *s, *old;

    k = now / rt->width;
    first = (k > rt->span) ? k - rt->span : 0;

    /* buckets no window from now on reaches are emptied for reuse */
    for (i = rt->low; i < first && i < rt->low + NGX_HTTP_HRIS_RATE_SLOTS;
         i++)
    {
        s = ngx_http_hris_rate_slot(rt, i);
        s->count = 0;
        s->last = 0;
    }

    if (first > rt->low) {
        rt->low = first;
    }

    end = rt->low + NGX_HTTP_HRIS_RATE_SLOTS;

    in = 0;
    for (i = (k + 1 > rt->span) ? k + 1 - rt->span : 0; i <= k; i++) {
        in += ngx_http_hris_rate_slot(rt, i)->count;
    }

    for (j = k; j < end; j++) {

        if (j != k) {
            in += ngx_http_hris_rate_slot(rt, j)->count;

            if (j >= rt->span) {
                in -= ngx_http_hris_rate_slot(rt, j - rt->span)->count;
            }
        }

        if (in >= rt->calls) {
            continue;
        }

        at = ngx_max(now, j * rt->width);
        old = (j >= rt->span) ? ngx_http_hris_rate_slot(rt, j - rt->span)
                              : NULL;

        if (old && old->count && in + old->count >= rt->calls) {
            /* in this bucket only once the older calls have left */
            free_at = ngx_http_hris_rate_last(rt, j - rt->span) + rt->window;

            if (free_at >= (j + 1) * rt->width) {
                continue;
            }

            at = ngx_max(at, free_at);
        }

        *wait = at - now;

        if (*wait > max_wait) {
            return NGX_BUSY;
        }

        s = ngx_http_hris_rate_slot(rt, j);
        off = at - j * rt->width;

        last = (off < NGX_MAX_UINT32_VALUE - 1) ? (uint32_t) off + 1
                                                : NGX_MAX_UINT32_VALUE;
        s->count++;
        s->last = ngx_max(s->last, last);

        if ((ngx_msec_int_t) (at - rt->last) > 0) {
            rt->last = at;
        }

        return NGX_OK;
    }

    /* not within the window ahead: at least that long */
    *wait = end * rt->width - now;

    return NGX_BUSY;
}


/*
 * The refresh token to use for the account. The zone keeps the latest
 * rotation; "base" names what the configuration holds (a hash of the
 * configured refresh token and of the state file's), and when it changes
 * (an operator put new credentials in) the zone starts again from
 * "initial" and forgets a needs-reauth mark. *fresh tells the caller the
 * zone had nothing for this account yet.
 */

ngx_int_t
ngx_http_hris_refresh_get(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id,
    u_char *base, ngx_str_t *initial, ngx_pool_t *pool, ngx_str_t *out,
    ngx_uint_t *fresh)
{
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;

    *fresh = 0;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_hris_shm_node(ctx, id, 1);
    if (n == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_ERROR;
    }

    if (!n->has_base || ngx_memcmp(n->base, base, 32) != 0) {
        if (initial->len == 0) {
            n->refresh_len = 0;

        } else if (ngx_http_hris_shm_store(ctx, n, &n->refresh,
                                           &n->refresh_len, &n->refresh_size,
                                           initial)
                   != NGX_OK)
        {
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            return NGX_ERROR;
        }

        /* the configuration took the state file's entry up */
        if (n->saved) {
            ngx_slab_free_locked(ctx->shpool, n->saved);
            n->saved = NULL;
            n->saved_len = 0;
        }

        ngx_memcpy(n->base, base, 32);
        n->has_base = 1;
        n->needs_reauth = 0;
        *fresh = 1;
    }

    out->len = n->refresh_len;
    out->data = ngx_pnalloc(pool, n->refresh_len + 1);
    if (out->data == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, n->refresh, n->refresh_len);
    out->data[out->len] = '\0';

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


/*
 * A rotated refresh token (or none: the old one stays), or needs-reauth:
 * NGX_DONE tells the one caller that set the mark (of every worker that
 * saw the refusal), so that the account's event is emitted once.
 */

ngx_int_t
ngx_http_hris_refresh_set(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id,
    ngx_str_t *refresh, ngx_uint_t needs_reauth)
{
    ngx_int_t                  rc;
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_hris_shm_node(ctx, id, 1);
    if (n == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_ERROR;
    }

    n->refreshing = 0;
    rc = NGX_OK;

    if (needs_reauth) {
        rc = n->needs_reauth ? NGX_OK : NGX_DONE;
        n->needs_reauth = 1;

        if (n->token) {
            ngx_slab_free_locked(ctx->shpool, n->token);
            n->token = NULL;
            n->token_len = 0;
            n->token_size = 0;
        }
    }

    if (refresh && refresh->len) {
        rc = ngx_http_hris_shm_store(ctx, n, &n->refresh, &n->refresh_len,
                                     &n->refresh_size, refresh);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


/*
 * The provider refused the account's credentials (a hash of them in
 * creds): until "until", calls with the same credentials are answered
 * without the provider. NGX_DONE: the account was not marked refused for
 * good yet (its event is the caller's to emit); the mark stays until
 * ngx_http_hris_creds_reset() or ngx_http_hris_creds_clear(). NGX_ERROR:
 * the zone is full.
 */

ngx_int_t
ngx_http_hris_creds_refuse(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id,
    u_char *creds, time_t until, ngx_uint_t status)
{
    ngx_int_t                  rc;
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_hris_shm_node(ctx, id, 1);
    if (n == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_ERROR;
    }

    n->refused_until = until;
    n->refused_status = status;
    ngx_memcpy(n->refused_creds, creds, sizeof(n->refused_creds));

    rc = n->creds_reauth ? NGX_OK : NGX_DONE;
    n->creds_reauth = 1;

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


/*
 * Whether the account's credentials stand refused: NGX_OK with the hash
 * of the refused ones, until when and the provider's status; NGX_DECLINED
 * when not (a node is not made for asking).
 */

ngx_int_t
ngx_http_hris_creds_refused(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id,
    u_char *creds, time_t *until, ngx_uint_t *status)
{
    ngx_int_t                  rc;
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_hris_shm_node(ctx, id, 0);

    if (n && n->refused_until > ngx_time()) {
        ngx_memcpy(creds, n->refused_creds, sizeof(n->refused_creds));
        *until = n->refused_until;
        *status = n->refused_status;
        rc = NGX_OK;

    } else {
        rc = NGX_DECLINED;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


/*
 * The credentials changed (creds: the refused ones): the mark goes. 1
 * tells the one caller that lifted a refused-for-good mark.
 */

ngx_uint_t
ngx_http_hris_creds_clear(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id,
    u_char *creds)
{
    ngx_uint_t                 lifted = 0;
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_hris_shm_node(ctx, id, 0);

    if (n && ngx_memcmp(n->refused_creds, creds, sizeof(n->refused_creds))
             == 0)
    {
        n->refused_until = 0;
        lifted = n->creds_reauth;
        n->creds_reauth = 0;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return lifted;
}


/*
 * New credentials were stored for the account (administration API,
 * connect flow): a refusal mark goes, whatever credentials it was for. 1
 * tells the one caller that lifted a refused-for-good mark.
 */

ngx_uint_t
ngx_http_hris_creds_reset(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id)
{
    ngx_uint_t                 lifted = 0;
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_hris_shm_node(ctx, id, 0);

    if (n) {
        n->refused_until = 0;
        lifted = n->creds_reauth;
        n->creds_reauth = 0;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return lifted;
}


static void
ngx_http_hris_link_insert(ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t         **p;
    ngx_http_hris_shm_link_t   *n, *t;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            n = (ngx_http_hris_shm_link_t *) node;
            t = (ngx_http_hris_shm_link_t *) temp;

            p = (ngx_memcmp(n->hash, t->hash, NGX_HTTP_HRIS_LINK_HASH) < 0)
                ? &temp->left : &temp->right;
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


static ngx_rbtree_key_t
ngx_http_hris_link_key(u_char *hash)
{
    ngx_rbtree_key_t  key;

    ngx_memcpy(&key, hash, sizeof(ngx_rbtree_key_t));

    return key;
}


/* with the zone locked */

static ngx_http_hris_shm_link_t *
ngx_http_hris_link_find(ngx_http_hris_shm_ctx_t *ctx, u_char *hash)
{
    ngx_int_t                  rc;
    ngx_rbtree_key_t           key;
    ngx_rbtree_node_t         *node, *sentinel;
    ngx_http_hris_shm_link_t  *l;

    key = ngx_http_hris_link_key(hash);

    node = ctx->sh->links.root;
    sentinel = ctx->sh->links.sentinel;

    while (node != sentinel) {

        if (key != node->key) {
            node = (key < node->key) ? node->left : node->right;
            continue;
        }

        l = (ngx_http_hris_shm_link_t *) node;
        rc = ngx_memcmp(hash, l->hash, NGX_HTTP_HRIS_LINK_HASH);

        if (rc == 0) {
            return l;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/* with the zone locked: the expiry queue stays sorted, soonest first */

static ngx_int_t
ngx_http_hris_link_add(ngx_http_hris_shm_ctx_t *ctx, u_char *hash,
    time_t expires)
{
    ngx_queue_t               *q;
    ngx_http_hris_shm_link_t  *l, *o;

    l = ngx_http_hris_shm_alloc(ctx, sizeof(ngx_http_hris_shm_link_t), NULL);
    if (l == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(l->hash, hash, NGX_HTTP_HRIS_LINK_HASH);
    l->node.key = ngx_http_hris_link_key(hash);
    l->expires = expires;

    ngx_rbtree_insert(&ctx->sh->links, &l->node);

    /* links mostly live as long as each other: the place is near the end */
    for (q = ngx_queue_last(&ctx->sh->links_expiry);
         q != ngx_queue_sentinel(&ctx->sh->links_expiry);
         q = ngx_queue_prev(q))
    {
        o = ngx_queue_data(q, ngx_http_hris_shm_link_t, queue);

        if (o->expires <= expires) {
            break;
        }
    }

    ngx_queue_insert_after(q, &l->queue);
    ctx->sh->nlinks++;

    return NGX_OK;
}


static void
ngx_http_hris_link_free(ngx_http_hris_shm_ctx_t *ctx,
    ngx_http_hris_shm_link_t *l)
{
    ngx_rbtree_delete(&ctx->sh->links, &l->node);
    ngx_queue_remove(&l->queue);
    ngx_slab_free_locked(ctx->shpool, l);
    ctx->sh->nlinks--;
}


/* with the zone locked: an expired link fails on its own, it goes */

static void
ngx_http_hris_links_expire(ngx_http_hris_shm_ctx_t *ctx)
{
    ngx_queue_t               *q;
    ngx_http_hris_shm_link_t  *l;

    while (!ngx_queue_empty(&ctx->sh->links_expiry)) {
        q = ngx_queue_head(&ctx->sh->links_expiry);
        l = ngx_queue_data(q, ngx_http_hris_shm_link_t, queue);

        if (l->expires >= ngx_time()) {
            return;
        }

        ngx_http_hris_link_free(ctx, l);
    }
}


/* Whether the connect link of that hash was completed already. */

ngx_uint_t
ngx_http_hris_link_used(ngx_http_hris_main_conf_t *hmcf, u_char *hash)
{
    ngx_uint_t                used;
    ngx_http_hris_shm_ctx_t  *ctx = hmcf->shm->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);
    used = (ngx_http_hris_link_find(ctx, hash) != NULL);
    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return used;
}


/*
 * Completes a connect link, once for every worker: NGX_OK for the one
 * that does; NGX_DECLINED when it was completed already; NGX_BUSY when
 * the zone remembers as many used links as it may; NGX_ERROR when it is
 * full. ngx_http_hris_link_release() undoes it when storing the account
 * fails.
 */

ngx_int_t
ngx_http_hris_link_claim(ngx_http_hris_main_conf_t *hmcf, u_char *hash,
    time_t expires)
{
    ngx_int_t                 rc;
    ngx_http_hris_shm_ctx_t  *ctx = hmcf->shm->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    ngx_http_hris_links_expire(ctx);

    if (ngx_http_hris_link_find(ctx, hash)) {
        rc = NGX_DECLINED;

    } else if (ctx->sh->nlinks >= ctx->sh->links_max) {
        rc = NGX_BUSY;

    } else {
        rc = ngx_http_hris_link_add(ctx, hash, expires);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


void
ngx_http_hris_link_release(ngx_http_hris_main_conf_t *hmcf, u_char *hash)
{
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_link_t  *l;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    l = ngx_http_hris_link_find(ctx, hash);
    if (l) {
        ngx_http_hris_link_free(ctx, l);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


/*
 * What the state file keeps, taken under one lock so that a later serial
 * is always a later state: in *tokens, of every account that has a
 * refresh token, {"<id>": {"base", "refresh_token", "access_token",
 * "expires_at", "needs_reauth"}} (and the state file's entries still
 * waiting for their accounts, as they were); in *links, the used connect
 * links {"<hash>": expiry}; and the run-time accounts' text. The caller
 * seals secrets before writing.
 */

ngx_int_t
ngx_http_hris_shm_snapshot(ngx_http_hris_main_conf_t *hmcf, ngx_pool_t *pool,
    json_t **tokens, json_t **links, ngx_str_t *accounts, ngx_uint_t *serial)
{
    u_char                     hex[65];
    json_t                    *one;
    ngx_queue_t               *q;
    ngx_rbtree_node_t         *node, *root, *sentinel;
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;
    ngx_http_hris_shm_link_t  *l;

    *tokens = json_object();
    *links = json_object();

    if (*tokens == NULL || *links == NULL) {
        goto failed;
    }

    ngx_shmtx_lock(&ctx->shpool->mutex);

    root = ctx->sh->rbtree.root;
    sentinel = ctx->sh->rbtree.sentinel;

    for (node = (root != sentinel) ? ngx_rbtree_min(root, sentinel) : NULL;
         node;
         node = ngx_rbtree_next(&ctx->sh->rbtree, node))
    {
        n = (ngx_http_hris_shm_node_t *) node;

        if (n->has_base) {
            ngx_hex_dump(hex, n->base, 32);
            hex[64] = '\0';

            one = json_pack("{s:s, s:s#, s:s#, s:I, s:b}",
                            "base", (char *) hex,
                            "refresh_token", n->refresh ? (char *) n->refresh
                                                        : "",
                            (int) n->refresh_len,
                            "access_token", n->token ? (char *) n->token : "",
                            (int) n->token_len,
                            "expires_at", (json_int_t) n->expires,
                            "needs_reauth", n->needs_reauth);

        } else if (n->saved) {
            one = json_loadb((char *) n->saved, n->saved_len, 0, NULL);

        } else {
            continue;
        }

        if (one == NULL
            || json_object_setn_new(*tokens, (char *) n->id, n->id_len, one))
        {
            goto unlock;
        }
    }

    for (q = ngx_queue_head(&ctx->sh->links_expiry);
         q != ngx_queue_sentinel(&ctx->sh->links_expiry);
         q = ngx_queue_next(q))
    {
        l = ngx_queue_data(q, ngx_http_hris_shm_link_t, queue);

        ngx_hex_dump(hex, l->hash, NGX_HTTP_HRIS_LINK_HASH);

        if (json_object_setn_new(*links, (char *) hex,
                                 2 * NGX_HTTP_HRIS_LINK_HASH,
                                 json_integer((json_int_t) l->expires)))
        {
            goto unlock;
        }
    }

    if (ngx_http_hris_shm_accounts_copy(ctx, pool, accounts) != NGX_OK) {
        goto unlock;
    }

    *serial = ++ctx->sh->state_serial;

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;

unlock:

    ngx_shmtx_unlock(&ctx->shpool->mutex);

failed:

    json_decref(*tokens);
    json_decref(*links);
    *tokens = NULL;
    *links = NULL;

    return NGX_ERROR;
}

/*
 * State that outlives a request and is shared by every worker, in one
 * shared memory zone (slab + rbtree, as limit_req keeps its states):
 *
 *  - access tokens per account, with a "refreshing" mark so that one
 *    worker exchanges credentials while the others wait for its result;
 *  - the times of the latest upstream calls per account, for the
 *    gateway's own rate limit (a sliding window, as providers count);
 *  - the accounts created, changed or deleted at run time, as one JSON
 *    text with a generation number that every change bumps, so each
 *    worker knows when to compile them again (ngx_http_hris_store.c).
 *
 * Nodes are keyed by account id. This file is the one place that knows the
 * store is shared memory: a fleet would put Redis behind the same calls.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"


#define NGX_HTTP_HRIS_TOKEN_MAX      4096
#define NGX_HTTP_HRIS_REFRESH_STALE  60000   /* ms: a refresher that died */


typedef struct {
    ngx_rbtree_node_t         node;         /* key: crc32 of the id */
    ngx_msec_t                refreshing;   /* since when, or 0 */
    time_t                    expires;      /* token expiry, seconds */
    ngx_uint_t                generation;   /* bumped on every change */
    u_char                   *token;        /* slab, or NULL */
    size_t                    token_len;
    u_char                   *refresh;      /* rotated refresh token */
    size_t                    refresh_len;
    u_char                    base[32];     /* what it descends from */
    unsigned                  has_base:1;
    unsigned                  needs_reauth:1;
    ngx_msec_t               *calls;        /* ring of call times */
    ngx_uint_t                ncalls;       /* ring size */
    ngx_uint_t                next;         /* oldest slot */
    size_t                    id_len;
    u_char                    id[1];
} ngx_http_hris_shm_node_t;


typedef struct {
    ngx_rbtree_t              rbtree;
    ngx_rbtree_node_t         sentinel;
    ngx_atomic_t              accounts_gen;
    u_char                   *accounts;     /* JSON text, slab */
    size_t                    accounts_len;
    ngx_uint_t                state_serial; /* of the latest snapshot */
} ngx_http_hris_shm_sh_t;


typedef struct {
    ngx_http_hris_shm_sh_t     *sh;
    ngx_slab_pool_t            *shpool;
    ngx_http_hris_main_conf_t  *hmcf;
} ngx_http_hris_shm_ctx_t;


static ngx_int_t ngx_http_hris_shm_init(ngx_shm_zone_t *zone, void *data);
static void ngx_http_hris_shm_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_hris_shm_node_t *ngx_http_hris_shm_node(
    ngx_http_hris_shm_ctx_t *ctx, ngx_str_t *id, ngx_uint_t create);
static ngx_int_t ngx_http_hris_shm_accounts_seed(ngx_http_hris_shm_ctx_t *ctx);
static ngx_int_t ngx_http_hris_shm_accounts_copy(ngx_http_hris_shm_ctx_t *ctx,
    ngx_pool_t *pool, ngx_str_t *text);


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
    ngx_http_hris_shm_ctx_t  *octx = data;
    ngx_http_hris_shm_ctx_t  *ctx = zone->data;

    /* a reload keeps tokens and call times */
    if (octx) {
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_alloc(ctx->shpool, sizeof(ngx_http_hris_shm_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel,
                    ngx_http_hris_shm_insert);

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool,
                                          sizeof(" in hris zone") + 1);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx, " in hris zone%Z");
    ctx->shpool->log_nomem = 0;

    return ngx_http_hris_shm_accounts_seed(ctx);
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

    p = ngx_slab_alloc_locked(ctx->shpool, text->len);
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


/* with the zone locked */

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
            return n;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    if (!create) {
        return NULL;
    }

    n = ngx_slab_calloc_locked(ctx->shpool,
                               sizeof(ngx_http_hris_shm_node_t) + id->len);
    if (n == NULL) {
        return NULL;
    }

    n->node.key = hash;
    n->id_len = id->len;
    ngx_memcpy(n->id, id->data, id->len);

    ngx_rbtree_insert(&ctx->sh->rbtree, &n->node);

    return n;
}


/*
 * The account's token. NGX_OK: a valid token, copied into the pool.
 * NGX_DECLINED: none, and the caller is now the one to get it (it must end
 * with token_set() or token_fail()). NGX_AGAIN: another worker is getting
 * it; ask again shortly. NGX_ERROR: the zone is full.
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
               && ngx_current_msec - n->refreshing
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


ngx_int_t
ngx_http_hris_token_set(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id,
    ngx_str_t *token, time_t expires)
{
    u_char                    *p;
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;

    if (token->len == 0 || token->len > NGX_HTTP_HRIS_TOKEN_MAX) {
        ngx_http_hris_token_fail(hmcf, id);
        return NGX_ERROR;
    }

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_hris_shm_node(ctx, id, 1);
    if (n == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_ERROR;
    }

    n->refreshing = 0;

    if (n->token && n->token_len == token->len
        && ngx_memcmp(n->token, token->data, token->len) == 0)
    {
        n->expires = expires;
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_OK;
    }

    p = ngx_slab_alloc_locked(ctx->shpool, token->len);
    if (p == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_ERROR;
    }

    if (n->token) {
        ngx_slab_free_locked(ctx->shpool, n->token);
    }

    ngx_memcpy(p, token->data, token->len);
    n->token = p;
    n->token_len = token->len;
    n->expires = expires;
    n->generation++;

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
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
 * grant no longer apply.
 */

void
ngx_http_hris_token_rebase(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id,
    u_char *base)
{
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_hris_shm_node(ctx, id, 0);

    if (n && n->has_base && ngx_memcmp(n->base, base, 32) != 0) {
        if (n->token) {
            ngx_slab_free_locked(ctx->shpool, n->token);
        }

        if (n->refresh) {
            ngx_slab_free_locked(ctx->shpool, n->refresh);
        }

        n->token = NULL;
        n->token_len = 0;
        n->refresh = NULL;
        n->refresh_len = 0;
        n->expires = 0;
        n->has_base = 0;
        n->needs_reauth = 0;
        n->generation++;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
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
        n->expires = 0;
        n->generation++;
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
    ngx_msec_t                 now, at, oldest;
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;

    now = ngx_current_msec;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_hris_shm_node(ctx, id, 1);
    if (n == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_ERROR;
    }

    if (n->ncalls != calls) {
        /* first use, or the limit changed with a reload: start afresh */
        if (n->calls) {
            ngx_slab_free_locked(ctx->shpool, n->calls);
        }

        n->calls = ngx_slab_calloc_locked(ctx->shpool,
                                          calls * sizeof(ngx_msec_t));
        if (n->calls == NULL) {
            n->ncalls = 0;
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            return NGX_ERROR;
        }

        n->ncalls = calls;
        n->next = 0;
    }

    /* the slot to reuse holds the oldest of the last "calls" calls */
    oldest = n->calls[n->next];
    at = now;

    if (oldest && (ngx_msec_int_t) (oldest + window - now) > 0) {
        at = oldest + window;
    }

    *wait = at - now;

    if (*wait > max_wait) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_BUSY;
    }

    n->calls[n->next] = at ? at : 1;
    n->next = (n->next + 1) % n->ncalls;

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
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
    u_char                    *p;
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
        p = initial->len ? ngx_slab_alloc_locked(ctx->shpool, initial->len)
                         : NULL;
        if (initial->len && p == NULL) {
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            return NGX_ERROR;
        }

        if (n->refresh) {
            ngx_slab_free_locked(ctx->shpool, n->refresh);
        }

        if (p) {
            ngx_memcpy(p, initial->data, initial->len);
        }

        n->refresh = p;
        n->refresh_len = initial->len;
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


/* A rotated refresh token (or none: the old one stays), or needs-reauth. */

ngx_int_t
ngx_http_hris_refresh_set(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id,
    ngx_str_t *refresh, ngx_uint_t needs_reauth)
{
    u_char                    *p;
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_hris_shm_node(ctx, id, 1);
    if (n == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_ERROR;
    }

    n->refreshing = 0;

    if (needs_reauth) {
        n->needs_reauth = 1;

        if (n->token) {
            ngx_slab_free_locked(ctx->shpool, n->token);
            n->token = NULL;
            n->token_len = 0;
        }
    }

    if (refresh && refresh->len) {
        p = ngx_slab_alloc_locked(ctx->shpool, refresh->len);
        if (p == NULL) {
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            return NGX_ERROR;
        }

        if (n->refresh) {
            ngx_slab_free_locked(ctx->shpool, n->refresh);
        }

        ngx_memcpy(p, refresh->data, refresh->len);
        n->refresh = p;
        n->refresh_len = refresh->len;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


/*
 * What the state file keeps, taken under one lock so that a later serial
 * is always a later state: of every account that has a refresh token,
 * {"<id>": {"base", "refresh_token", "access_token", "expires_at",
 * "needs_reauth"}}, and the run-time accounts' text. The caller seals
 * secrets before writing.
 */

json_t *
ngx_http_hris_shm_snapshot(ngx_http_hris_main_conf_t *hmcf, ngx_pool_t *pool,
    ngx_str_t *accounts, ngx_uint_t *serial)
{
    u_char                     hex[65];
    json_t                    *all, *one;
    ngx_rbtree_node_t         *node, *root, *sentinel;
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;

    all = json_object();
    if (all == NULL) {
        return NULL;
    }

    ngx_shmtx_lock(&ctx->shpool->mutex);

    root = ctx->sh->rbtree.root;
    sentinel = ctx->sh->rbtree.sentinel;

    if (root != sentinel) {
        for (node = ngx_rbtree_min(root, sentinel);
             node;
             node = ngx_rbtree_next(&ctx->sh->rbtree, node))
        {
            n = (ngx_http_hris_shm_node_t *) node;

            if (!n->has_base) {
                continue;
            }

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

            if (one == NULL
                || json_object_setn_new(all, (char *) n->id, n->id_len, one))
            {
                ngx_shmtx_unlock(&ctx->shpool->mutex);
                json_decref(all);
                return NULL;
            }
        }
    }

    if (ngx_http_hris_shm_accounts_copy(ctx, pool, accounts) != NGX_OK) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        json_decref(all);
        return NULL;
    }

    *serial = ++ctx->sh->state_serial;

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return all;
}

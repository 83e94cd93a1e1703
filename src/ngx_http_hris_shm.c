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
 * The zone is split by concern: this file (the zone, its nodes, room),
 * ngx_http_hris_shm_token.c, _shm_rate.c, _shm_link.c, _shm_accounts.c;
 * the layout is in ngx_http_hris_shm.h. It is the embedded backend of
 * the state interface (ngx_http_hris_state_if.h maps what Redis answers
 * instead with hris_redis).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_shm.h"


static ngx_int_t ngx_http_hris_shm_init(ngx_shm_zone_t *zone, void *data);
static void ngx_http_hris_shm_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_uint_t ngx_http_hris_shm_evict(ngx_http_hris_shm_ctx_t *ctx,
    ngx_uint_t max, time_t idle, ngx_http_hris_shm_node_t *keep);
static ngx_uint_t ngx_http_hris_shm_evictable(ngx_http_hris_shm_node_t *n);
static void ngx_http_hris_shm_free(ngx_http_hris_shm_ctx_t *ctx,
    ngx_http_hris_shm_node_t *n);


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

ngx_http_hris_shm_node_t *
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

void *
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

ngx_int_t
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
 * What nginx's slab allocator takes for size bytes: a power of two (at
 * least 8) up to half a page, whole pages above. The zones that cap a
 * tenant's share count it as the zone spends it (events.c, idem.c).
 */

size_t
ngx_http_hris_slab_size(size_t size)
{
    size_t  n;

    if (size > ngx_pagesize / 2) {
        return ngx_align(size, ngx_pagesize);
    }

    for (n = 8; n < size; n <<= 1) { /* void */ }

    return n;
}

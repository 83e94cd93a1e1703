/*
 * The shared zone (ngx_http_hris_shm.c): the connect links completed,
 * until they expire, and the marks of credentials a provider refused
 * (hris_credentials_cooldown).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_shm.h"


static ngx_int_t ngx_http_hris_hex_decode(u_char *out, ngx_str_t *hex);
static ngx_http_hris_shm_link_t *ngx_http_hris_link_find(
    ngx_http_hris_shm_ctx_t *ctx, u_char *hash);
static ngx_int_t ngx_http_hris_link_add(ngx_http_hris_shm_ctx_t *ctx,
    u_char *hash, time_t expires);


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

ngx_int_t
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


void
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

void
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

/*
 * The shared zone (ngx_http_hris_shm.c): the accounts changed at run time,
 * as one JSON text with a generation number, and the snapshot of the zone
 * that the state file keeps.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_shm.h"


static ngx_int_t ngx_http_hris_shm_accounts_copy(ngx_http_hris_shm_ctx_t *ctx,
    ngx_pool_t *pool, ngx_str_t *text);


/*
 * A fresh zone starts from the run-time accounts of the state file; a
 * reload keeps the zone's, which are newer than any file.
 */

ngx_int_t
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

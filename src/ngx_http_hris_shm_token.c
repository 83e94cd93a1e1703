/*
 * The shared zone (ngx_http_hris_shm.c): per account, the access token and
 * its refresh single flight, the rotated refresh token and the
 * needs-reauth mark.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_shm.h"


/*
 * The state file's tokens, as they are in it (sealed or not), for the
 * accounts that still exist: every snapshot carries them on until the
 * account is used, which takes them up through its configuration
 * (ngx_http_hris_state_account()), or deleted. Without them, a snapshot
 * written before an account is used would drop its rotated refresh
 * token, and the next start would have only the one rotated away.
 */

ngx_int_t
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


/*
 * The accounts file now gives the account another refresh token than the
 * one its needs-reauth mark was made for (a reload): the mark and the
 * access token go; refresh_get() starts over from the configured token.
 * 1 when a mark was lifted. Unlike token_rebase(), the state file's entry
 * (saved) stays: it is dropped when the configuration takes it up.
 */

ngx_uint_t
ngx_http_hris_token_reconfigured(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id, u_char *base)
{
    ngx_uint_t                 lifted = 0;
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_hris_shm_node(ctx, id, 0);

    if (n && n->needs_reauth && n->has_base
        && ngx_memcmp(n->base, base, 32) != 0)
    {
        if (n->token) {
            ngx_slab_free_locked(ctx->shpool, n->token);
        }

        n->token = NULL;
        n->token_len = 0;
        n->token_size = 0;
        n->expires = 0;
        n->needs_reauth = 0;
        lifted = 1;
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

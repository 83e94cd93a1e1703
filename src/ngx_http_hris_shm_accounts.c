/*
 * The shared zone (ngx_http_hris_shm.c): the accounts changed at run
 * time, one entry each (its JSON text and the generation of its latest
 * change), and the snapshot of the zone that the state file keeps.
 *
 * Every change raises the zone's generation and moves its entry to the
 * end of a queue kept in generation order: a worker at generation g
 * reads only the entries after g, from the end, so a change costs every
 * worker one account, not all of them. A run-time account deleted stays
 * as a tombstone for the workers behind; tombstones are bounded (one per
 * NGX_HTTP_HRIS_DEAD_ROOM bytes of the zone), and a worker older than
 * the oldest one dropped reads every account again.
 *
 * So that a tenant cannot fill the zone for all, an entry carries its
 * tenant's digest, and a change made through the tenant (not one the
 * fleet brings, which is already made) may not take that tenant past
 * hris_tenant_accounts run-time accounts or a quarter of the zone. The
 * tally is counted from the entries themselves, under the lock, so that
 * it cannot drift from what the zone holds; tombstones and the accounts
 * file's accounts (the operator's) do not count.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_shm.h"


static ngx_http_hris_shm_acct_t *ngx_http_hris_shm_acct_find(
    ngx_http_hris_shm_ctx_t *ctx, ngx_str_t *id);
static ngx_http_hris_shm_acct_t *ngx_http_hris_shm_acct_new(
    ngx_http_hris_shm_ctx_t *ctx, ngx_str_t *id, ngx_uint_t gen);
static void ngx_http_hris_shm_acct_bury(ngx_http_hris_shm_ctx_t *ctx,
    ngx_http_hris_shm_acct_t *a);
static ngx_int_t ngx_http_hris_shm_acct_share(ngx_http_hris_shm_ctx_t *ctx,
    ngx_http_hris_shm_acct_t *a, ngx_str_t *id, u_char *tenant, size_t len);
static ngx_int_t ngx_http_hris_shm_accounts_text(ngx_http_hris_shm_ctx_t *ctx,
    ngx_str_t *text);
static ngx_int_t ngx_http_hris_shm_tokens_copy(ngx_http_hris_shm_ctx_t *ctx,
    ngx_http_hris_state_snap_t *snap);
static ngx_int_t ngx_http_hris_shm_links_text(ngx_http_hris_shm_ctx_t *ctx,
    ngx_str_t *text);


/*
 * A fresh zone starts from the run-time accounts of the state file; a
 * reload keeps the zone's, which are newer than any file.
 */

ngx_int_t
ngx_http_hris_shm_accounts_seed(ngx_http_hris_shm_ctx_t *ctx)
{
    char                      *text;
    json_t                    *accounts, *v, *t;
    ngx_str_t                  name, tenant;
    const char                *id;
    ngx_http_hris_shm_acct_t  *a;

    ngx_rbtree_init(&ctx->sh->accts, &ctx->sh->accts_sentinel,
                    ngx_http_hris_shm_acct_insert);
    ngx_queue_init(&ctx->sh->accts_order);
    ngx_queue_init(&ctx->sh->accts_dead);

    ctx->sh->dead_max = ngx_max(16, ctx->hmcf->shm_size
                                    / NGX_HTTP_HRIS_DEAD_ROOM);
    ctx->sh->accounts_gen = 1;

    /* snapshots go on numbering from the state file's last one */
    ctx->sh->state_serial = ctx->hmcf->state_serial;

    accounts = json_object_get(ctx->hmcf->state, "accounts");
    if (!json_is_object(accounts)) {
        return NGX_OK;
    }

    json_object_foreach(accounts, id, v) {
        name.data = (u_char *) id;
        name.len = ngx_strlen(id);

        if (!(json_is_object(v) || json_is_null(v))) {
            continue;
        }

        text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (text == NULL) {
            return NGX_ERROR;
        }

        a = ngx_http_hris_shm_acct_new(ctx, &name, 1);
        if (a) {
            a->text_len = ngx_strlen(text);
            a->text = ngx_slab_alloc(ctx->shpool, a->text_len);
        }

        if (a == NULL || a->text == NULL) {
            free(text);
            return NGX_ERROR;
        }

        ngx_memcpy(a->text, text, a->text_len);
        free(text);

        t = json_object_get(v, "tenant");

        if (json_is_string(t)) {
            tenant.data = (u_char *) json_string_value(t);
            tenant.len = json_string_length(t);
            ngx_http_hris_shm_tenant_digest(&tenant, a->tenant);
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


/*
 * The accounts changed after generation gen, into an array of
 * ngx_http_hris_shm_change_t (tombstones included), and the generation
 * they bring the caller to. With gen 0, or one older than the zone
 * remembers deletes for, *full is set and the array holds every account
 * (no tombstone): what is not in it is not there.
 */

ngx_int_t
ngx_http_hris_shm_accounts_since(ngx_http_hris_main_conf_t *hmcf,
    ngx_pool_t *pool, ngx_uint_t gen, ngx_array_t *changes, ngx_uint_t *now,
    ngx_uint_t *full)
{
    ngx_queue_t                 *q;
    ngx_http_hris_shm_ctx_t     *ctx = hmcf->shm->data;
    ngx_http_hris_shm_acct_t    *a;
    ngx_http_hris_shm_change_t  *c;

    if (ngx_array_init(changes, pool, 8, sizeof(ngx_http_hris_shm_change_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_shmtx_lock(&ctx->shpool->mutex);

    *now = ctx->sh->accounts_gen;
    *full = (gen == 0 || gen < ctx->sh->accts_floor);

    if (*full) {
        gen = 0;
    }

    for (q = ngx_queue_last(&ctx->sh->accts_order);
         q != ngx_queue_sentinel(&ctx->sh->accts_order);
         q = ngx_queue_prev(q))
    {
        a = ngx_queue_data(q, ngx_http_hris_shm_acct_t, order);

        if (a->gen <= gen) {
            break;          /* the rest is older still */
        }

        if (*full && a->text == NULL) {
            continue;
        }

        c = ngx_array_push(changes);
        if (c == NULL) {
            goto failed;
        }

        c->id.len = a->id_len;
        c->id.data = ngx_pnalloc(pool, a->id_len + a->text_len);
        if (c->id.data == NULL) {
            goto failed;
        }

        ngx_memcpy(c->id.data, a->id, a->id_len);

        c->text.len = a->text_len;
        c->text.data = a->text ? c->id.data + a->id_len : NULL;

        if (a->text) {
            ngx_memcpy(c->text.data, a->text, a->text_len);
        }
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;

failed:

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_ERROR;
}


/*
 * A copy of one account's text (text->data NULL: none) and the version
 * to give ngx_http_hris_shm_account_set() for a change made from it.
 */

ngx_int_t
ngx_http_hris_shm_account_get(ngx_http_hris_main_conf_t *hmcf,
    ngx_pool_t *pool, ngx_str_t *id, ngx_str_t *text, ngx_uint_t *version)
{
    ngx_int_t                  rc;
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_acct_t  *a;

    rc = NGX_OK;
    ngx_str_null(text);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    a = ngx_http_hris_shm_acct_find(ctx, id);
    *version = a ? a->gen : 0;

    if (a && a->text) {
        text->data = ngx_pnalloc(pool, a->text_len);

        if (text->data == NULL) {
            rc = NGX_ERROR;

        } else {
            ngx_memcpy(text->data, a->text, a->text_len);
            text->len = a->text_len;
        }
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


/*
 * Sets one account's text (NULL: a run-time account deleted) if nobody
 * changed it since its version was read: NGX_BUSY asks the caller to
 * read it again and redo its change; NGX_ERROR: the zone is full. The
 * entry counts in its tenant's share (tenant NULL: no tenant's); with
 * capped, NGX_HTTP_HRIS_OVER_COUNT or _BYTES refuse a change that would
 * take the tenant past it.
 */

ngx_int_t
ngx_http_hris_shm_account_set(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id, ngx_uint_t version, ngx_str_t *text, ngx_str_t *tenant,
    ngx_uint_t capped)
{
    u_char                    *p;
    ngx_int_t                  rc;
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_acct_t  *a;
    u_char                     digest[NGX_HTTP_HRIS_TENANT_DIGEST];

    ngx_memzero(digest, sizeof(digest));

    if (tenant && text) {
        ngx_http_hris_shm_tenant_digest(tenant, digest);
    }

    ngx_shmtx_lock(&ctx->shpool->mutex);

    a = ngx_http_hris_shm_acct_find(ctx, id);

    if ((a ? a->gen : 0) != version) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_BUSY;
    }

    if (capped && tenant && text) {
        rc = ngx_http_hris_shm_acct_share(ctx, a, id, digest, text->len);

        if (rc != NGX_OK) {
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            return rc;
        }
    }

    if (text == NULL) {
        if (a && a->text) {
            ngx_http_hris_shm_acct_bury(ctx, a);
        }

        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_OK;
    }

    p = ngx_http_hris_shm_alloc(ctx, text->len, NULL);

    if (p && a == NULL) {
        a = ngx_http_hris_shm_acct_new(ctx, id, 0);
        if (a == NULL) {
            ngx_slab_free_locked(ctx->shpool, p);
            p = NULL;
        }
    }

    if (p == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_ERROR;
    }

    if (a->text) {
        ngx_slab_free_locked(ctx->shpool, a->text);

    } else if (a->gen) {
        /* a tombstone comes back to life */
        ngx_queue_remove(&a->dead);
        ctx->sh->ndead--;
    }

    ngx_memcpy(p, text->data, text->len);
    a->text = p;
    a->text_len = text->len;
    ngx_memcpy(a->tenant, digest, sizeof(digest));

    a->gen = ++ctx->sh->accounts_gen;
    ngx_queue_remove(&a->order);
    ngx_queue_insert_tail(&ctx->sh->accts_order, &a->order);

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


/*
 * Whether the tenant has room for one more run-time account of that id
 * (NGX_OK, or NGX_HTTP_HRIS_OVER_COUNT or _BYTES): asked before work
 * that ends in a create, such as a connect link; the create is checked
 * again.
 */

ngx_int_t
ngx_http_hris_shm_tenant_room(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *tenant, ngx_str_t *id)
{
    ngx_int_t                 rc;
    ngx_http_hris_shm_ctx_t  *ctx = hmcf->shm->data;
    u_char                    digest[NGX_HTTP_HRIS_TENANT_DIGEST];

    ngx_http_hris_shm_tenant_digest(tenant, digest);

    ngx_shmtx_lock(&ctx->shpool->mutex);
    rc = ngx_http_hris_shm_acct_share(ctx, NULL, id, digest, 0);
    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


/*
 * A run-time account deleted: its text goes, a tombstone stays for the
 * workers that have not seen the delete; the oldest tombstone beyond
 * the bound goes, and the workers older than it read all again. With the
 * zone locked.
 */

static void
ngx_http_hris_shm_acct_bury(ngx_http_hris_shm_ctx_t *ctx,
    ngx_http_hris_shm_acct_t *a)
{
    ngx_queue_t               *q;
    ngx_http_hris_shm_acct_t  *old;

    ngx_slab_free_locked(ctx->shpool, a->text);
    a->text = NULL;
    a->text_len = 0;
    ngx_memzero(a->tenant, sizeof(a->tenant));

    a->gen = ++ctx->sh->accounts_gen;
    ngx_queue_remove(&a->order);
    ngx_queue_insert_tail(&ctx->sh->accts_order, &a->order);
    ngx_queue_insert_tail(&ctx->sh->accts_dead, &a->dead);

    if (++ctx->sh->ndead <= ctx->sh->dead_max) {
        return;
    }

    q = ngx_queue_head(&ctx->sh->accts_dead);
    old = ngx_queue_data(q, ngx_http_hris_shm_acct_t, dead);

    ctx->sh->accts_floor = old->gen;
    ctx->sh->ndead--;

    ngx_queue_remove(&old->dead);
    ngx_queue_remove(&old->order);
    ngx_rbtree_delete(&ctx->sh->accts, &old->node);
    ngx_slab_free_locked(ctx->shpool, old);
}


/*
 * Whether the tenant's run-time accounts, with entry a (NULL: a new one)
 * holding len bytes of text for it, stay within hris_tenant_accounts
 * and a quarter of the zone. A change that adds no account and does not
 * grow one passes even over the cap (a reload may lower it): it takes no
 * more room than before. With the zone locked.
 */

static ngx_int_t
ngx_http_hris_shm_acct_share(ngx_http_hris_shm_ctx_t *ctx,
    ngx_http_hris_shm_acct_t *a, ngx_str_t *id, u_char *tenant, size_t len)
{
    size_t                     bytes, had, cap;
    ngx_str_t                  name;
    ngx_uint_t                 count, mine;
    ngx_queue_t               *q;
    ngx_http_hris_shm_acct_t  *e;

    /* the operator's accounts, even changed by their tenant */
    if (ngx_http_hris_account_find(ctx->hmcf, id)) {
        return NGX_OK;
    }

    mine = a && a->text
           && ngx_memcmp(a->tenant, tenant, NGX_HTTP_HRIS_TENANT_DIGEST) == 0;
    had = mine ? ngx_http_hris_shm_account_bytes(a->id_len, a->text_len) : 0;

    count = 0;
    bytes = 0;

    for (q = ngx_queue_head(&ctx->sh->accts_order);
         q != ngx_queue_sentinel(&ctx->sh->accts_order);
         q = ngx_queue_next(q))
    {
        e = ngx_queue_data(q, ngx_http_hris_shm_acct_t, order);

        if (e->text == NULL
            || ngx_memcmp(e->tenant, tenant, NGX_HTTP_HRIS_TENANT_DIGEST)
               != 0)
        {
            continue;
        }

        name.data = e->id;
        name.len = e->id_len;

        if (ngx_http_hris_account_find(ctx->hmcf, &name)) {
            continue;
        }

        count++;
        bytes += ngx_http_hris_shm_account_bytes(e->id_len, e->text_len);
    }

    if (!mine && count + 1 > ctx->hmcf->tenant_accounts) {
        return NGX_HTTP_HRIS_OVER_COUNT;
    }

    len = ngx_http_hris_shm_account_bytes(id->len, len);
    cap = ngx_http_hris_shm_tenant_share(ctx->hmcf);

    if (len > had && bytes - had + len > cap) {
        return NGX_HTTP_HRIS_OVER_BYTES;
    }

    return NGX_OK;
}


/* the bytes a tenant's run-time accounts may take: a quarter of the zone */

size_t
ngx_http_hris_shm_tenant_share(ngx_http_hris_main_conf_t *hmcf)
{
    ngx_http_hris_shm_ctx_t  *ctx = hmcf->shm->data;

    return (size_t) (ctx->shpool->end - (u_char *) ctx->shpool) / 4;
}


/* an account's entry and text as the zone spends them */

size_t
ngx_http_hris_shm_account_bytes(size_t id_len, size_t text_len)
{
    return ngx_http_hris_slab_size(sizeof(ngx_http_hris_shm_acct_t) + id_len)
           + ngx_http_hris_slab_size(text_len);
}


void
ngx_http_hris_shm_tenant_digest(ngx_str_t *tenant, u_char *out)
{
    u_char        md[EVP_MAX_MD_SIZE];
    unsigned int  len;

    len = sizeof(md);
    EVP_Digest(tenant->data, tenant->len, md, &len, EVP_sha256(), NULL);

    ngx_memcpy(out, md, NGX_HTTP_HRIS_TENANT_DIGEST);
}


/* A new entry, with no text yet. With the zone locked. */

static ngx_http_hris_shm_acct_t *
ngx_http_hris_shm_acct_new(ngx_http_hris_shm_ctx_t *ctx, ngx_str_t *id,
    ngx_uint_t gen)
{
    ngx_http_hris_shm_acct_t  *a;

    a = ngx_http_hris_shm_alloc(ctx,
                                sizeof(ngx_http_hris_shm_acct_t) + id->len,
                                NULL);
    if (a == NULL) {
        return NULL;
    }

    ngx_memzero(a, sizeof(ngx_http_hris_shm_acct_t));

    a->node.key = ngx_crc32_short(id->data, id->len);
    a->gen = gen;
    a->id_len = id->len;
    ngx_memcpy(a->id, id->data, id->len);

    ngx_rbtree_insert(&ctx->sh->accts, &a->node);
    ngx_queue_insert_tail(&ctx->sh->accts_order, &a->order);

    return a;
}


/* With the zone locked. */

static ngx_http_hris_shm_acct_t *
ngx_http_hris_shm_acct_find(ngx_http_hris_shm_ctx_t *ctx, ngx_str_t *id)
{
    uint32_t                   hash;
    ngx_int_t                  rc;
    ngx_rbtree_node_t         *node, *sentinel;
    ngx_http_hris_shm_acct_t  *a;

    hash = ngx_crc32_short(id->data, id->len);

    node = ctx->sh->accts.root;
    sentinel = ctx->sh->accts.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        a = (ngx_http_hris_shm_acct_t *) node;
        rc = ngx_memn2cmp(id->data, a->id, id->len, a->id_len);

        if (rc == 0) {
            return a;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


void
ngx_http_hris_shm_acct_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t         **p;
    ngx_http_hris_shm_acct_t   *n, *t;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            n = (ngx_http_hris_shm_acct_t *) node;
            t = (ngx_http_hris_shm_acct_t *) temp;

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
 * The run-time accounts as one JSON object, one account a line for an
 * operator's eyes, {"<id>": text, ...}, for the state file: the texts are
 * JSON as stored; the ids, checked when stored, are escaped all the same.
 * With the zone locked, so only copies: the text is malloc'ed, as it is
 * handed to a thread of the pool.
 */

static ngx_int_t
ngx_http_hris_shm_accounts_text(ngx_http_hris_shm_ctx_t *ctx,
    ngx_str_t *text)
{
    u_char                    *p;
    size_t                     len;
    ngx_queue_t               *q;
    ngx_http_hris_shm_acct_t  *a;

    len = sizeof("{\n  }") - 1;

    for (q = ngx_queue_head(&ctx->sh->accts_order);
         q != ngx_queue_sentinel(&ctx->sh->accts_order);
         q = ngx_queue_next(q))
    {
        a = ngx_queue_data(q, ngx_http_hris_shm_acct_t, order);

        if (a->text) {
            len += sizeof(",\n    \"\": ") - 1 + a->id_len + a->text_len
                   + ngx_escape_json(NULL, a->id, a->id_len);
        }
    }

    p = ngx_alloc(len, ngx_cycle->log);
    if (p == NULL) {
        return NGX_ERROR;
    }

    text->data = p;
    *p++ = '{';

    for (q = ngx_queue_head(&ctx->sh->accts_order);
         q != ngx_queue_sentinel(&ctx->sh->accts_order);
         q = ngx_queue_next(q))
    {
        a = ngx_queue_data(q, ngx_http_hris_shm_acct_t, order);

        if (a->text == NULL) {
            continue;
        }

        if (p != text->data + 1) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, "\n    \"", sizeof("\n    \"") - 1);
        p = (u_char *) ngx_escape_json(p, a->id, a->id_len);
        p = ngx_cpymem(p, "\": ", sizeof("\": ") - 1);
        p = ngx_cpymem(p, a->text, a->text_len);
    }

    if (p != text->data + 1) {
        p = ngx_cpymem(p, "\n  ", sizeof("\n  ") - 1);
    }

    *p++ = '}';
    text->len = p - text->data;

    return NGX_OK;
}


/*
 * The tokens of every account that has a refresh token (and the state
 * file's entries still waiting for their accounts, as they were) as
 * records for the state file (ngx_http_hris.h), malloc'ed. With the zone
 * locked: copies only; the JSON is made in the thread that writes.
 */

static ngx_int_t
ngx_http_hris_shm_tokens_copy(ngx_http_hris_shm_ctx_t *ctx,
    ngx_http_hris_state_snap_t *snap)
{
    u_char                       *p;
    ngx_uint_t                    pass;
    ngx_rbtree_node_t            *node, *root, *sentinel;
    ngx_http_hris_shm_node_t     *n;
    ngx_http_hris_state_token_t   rec, *t;

    root = ctx->sh->rbtree.root;
    sentinel = ctx->sh->rbtree.sentinel;
    snap->tokens_len = 0;
    p = NULL;

    /* the first pass sizes, the second copies */
    for (pass = 0; pass < 2; pass++) {

        for (node = (root != sentinel) ? ngx_rbtree_min(root, sentinel)
                                       : NULL;
             node;
             node = ngx_rbtree_next(&ctx->sh->rbtree, node))
        {
            n = (ngx_http_hris_shm_node_t *) node;

            if (!n->has_base && n->saved == NULL) {
                continue;
            }

            ngx_memzero(&rec, sizeof(ngx_http_hris_state_token_t));
            rec.id_len = n->id_len;

            if (n->has_base) {
                rec.expires = n->expires;
                rec.refresh_len = n->refresh ? n->refresh_len : 0;
                rec.token_len = n->token ? n->token_len : 0;
                rec.needs_reauth = n->needs_reauth;
                ngx_memcpy(rec.base, n->base, 32);

            } else {
                rec.saved_len = n->saved_len;
            }

            if (pass == 0) {
                snap->tokens_len += ngx_http_hris_state_token_size(&rec);
                continue;
            }

            t = (ngx_http_hris_state_token_t *) p;
            *t = rec;

            /* what is absent is NULL: memcpy() must not see it */
            p = ngx_cpymem((u_char *) (t + 1), n->id, rec.id_len);

            if (rec.refresh_len) {
                p = ngx_cpymem(p, n->refresh, rec.refresh_len);
            }

            if (rec.token_len) {
                p = ngx_cpymem(p, n->token, rec.token_len);
            }

            if (rec.saved_len) {
                ngx_memcpy(p, n->saved, rec.saved_len);
            }

            p = (u_char *) t + ngx_http_hris_state_token_size(&rec);
        }

        if (pass == 0) {
            p = ngx_alloc(snap->tokens_len + 1, ngx_cycle->log);
            if (p == NULL) {
                return NGX_ERROR;
            }

            snap->tokens = p;
        }
    }

    return NGX_OK;
}


/* the used connect links, {"<hash>": expiry}, one a line; locked */

static ngx_int_t
ngx_http_hris_shm_links_text(ngx_http_hris_shm_ctx_t *ctx,
    ngx_str_t *text)
{
    u_char                    *p;
    ngx_queue_t               *q;
    ngx_http_hris_shm_link_t  *l;

    p = ngx_alloc(sizeof("{\n  }") + ctx->sh->nlinks
                  * (sizeof(",\n    \"\": ") + 2 * NGX_HTTP_HRIS_LINK_HASH
                     + NGX_TIME_T_LEN),
                  ngx_cycle->log);
    if (p == NULL) {
        return NGX_ERROR;
    }

    text->data = p;
    *p++ = '{';

    for (q = ngx_queue_head(&ctx->sh->links_expiry);
         q != ngx_queue_sentinel(&ctx->sh->links_expiry);
         q = ngx_queue_next(q))
    {
        l = ngx_queue_data(q, ngx_http_hris_shm_link_t, queue);

        if (p != text->data + 1) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, "\n    \"", sizeof("\n    \"") - 1);
        p = ngx_hex_dump(p, l->hash, NGX_HTTP_HRIS_LINK_HASH);
        p = ngx_sprintf(p, "\": %T", l->expires);
    }

    if (p != text->data + 1) {
        p = ngx_cpymem(p, "\n  ", sizeof("\n  ") - 1);
    }

    *p++ = '}';
    text->len = p - text->data;

    return NGX_OK;
}


/*
 * What the state file keeps, copied out under one lock so that a later
 * serial is always a later state (see ngx_http_hris_state_snap_t): the
 * tokens as records, the used connect links and the run-time accounts as
 * text. The caller frees it; the thread that writes seals the secrets.
 */

ngx_int_t
ngx_http_hris_shm_snapshot(ngx_http_hris_main_conf_t *hmcf,
    ngx_http_hris_state_snap_t *snap, ngx_uint_t *serial)
{
    ngx_int_t                 rc;
    ngx_http_hris_shm_ctx_t  *ctx = hmcf->shm->data;

    ngx_memzero(snap, sizeof(ngx_http_hris_state_snap_t));

    ngx_shmtx_lock(&ctx->shpool->mutex);

    rc = ngx_http_hris_shm_tokens_copy(ctx, snap);

    if (rc == NGX_OK) {
        rc = ngx_http_hris_shm_links_text(ctx, &snap->links);
    }

    if (rc == NGX_OK) {
        rc = ngx_http_hris_shm_accounts_text(ctx, &snap->accounts);
    }

    if (rc == NGX_OK) {
        *serial = ++ctx->sh->state_serial;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    if (rc != NGX_OK) {
        ngx_free(snap->tokens);
        ngx_free(snap->links.data);
        ngx_free(snap->accounts.data);
        ngx_memzero(snap, sizeof(ngx_http_hris_state_snap_t));
    }

    return rc;
}

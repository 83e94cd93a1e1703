/*
 * The shared zone's layout and the calls its files share (private to
 * ngx_http_hris_shm*.c; the rest of the module uses ngx_http_hris.h).
 */

#ifndef _NGX_HTTP_HRIS_SHM_H_INCLUDED_
#define _NGX_HTTP_HRIS_SHM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_hris.h"

/*
 * The zone's layout: bump NGX_HTTP_HRIS_SHM_LAYOUT with any change to
 * the structures below (see ngx_http_hris_shm_init()).
 */
#define NGX_HTTP_HRIS_SHM_MAGIC      0x73697268          /* "hris" */
#define NGX_HTTP_HRIS_SHM_LAYOUT     4

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

/*
 * deleted run-time accounts remembered: one per this many bytes, >= 16
 * (a tombstone takes 128 or 256 bytes: at most 3% of the zone)
 */
#define NGX_HTTP_HRIS_DEAD_ROOM      8192


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


/*
 * A run-time account: its JSON text as the store keeps it ("null": an
 * accounts file account deleted), and the zone generation of its latest
 * change. A run-time account deleted stays a while as a tombstone (text
 * NULL), so that workers that have not seen the delete yet learn of it.
 * Its tenant's digest (zeros: none) counts it in that tenant's share.
 */
typedef struct {
    ngx_rbtree_node_t         node;         /* key: crc32 of the id */
    ngx_queue_t               order;        /* by gen, the latest last */
    ngx_queue_t               dead;         /* tombstones, oldest first */
    ngx_uint_t                gen;
    u_char                   *text;         /* slab; NULL: a tombstone */
    size_t                    text_len;
    u_char                    tenant[NGX_HTTP_HRIS_TENANT_DIGEST];
    size_t                    id_len;
    u_char                    id[1];
} ngx_http_hris_shm_acct_t;


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
    ngx_atomic_t              accounts_gen; /* the latest change's */
    ngx_rbtree_t              accts;        /* run-time accounts */
    ngx_rbtree_node_t         accts_sentinel;
    ngx_queue_t               accts_order;  /* by gen, the latest last */
    ngx_queue_t               accts_dead;   /* tombstones, oldest first */
    ngx_uint_t                ndead;
    ngx_uint_t                dead_max;
    ngx_uint_t                accts_floor;  /* a worker at an older gen
                                               reads all accounts again */
    ngx_uint_t                state_serial; /* of the latest snapshot */
    time_t                    full_logged;
} ngx_http_hris_shm_sh_t;


typedef struct {
    ngx_http_hris_shm_sh_t     *sh;
    ngx_slab_pool_t            *shpool;
    ngx_http_hris_main_conf_t  *hmcf;
} ngx_http_hris_shm_ctx_t;


ngx_http_hris_shm_node_t *ngx_http_hris_shm_node(
    ngx_http_hris_shm_ctx_t *ctx, ngx_str_t *id, ngx_uint_t create);
void *ngx_http_hris_shm_alloc(ngx_http_hris_shm_ctx_t *ctx,
    size_t size, ngx_http_hris_shm_node_t *keep);
ngx_int_t ngx_http_hris_shm_store(ngx_http_hris_shm_ctx_t *ctx,
    ngx_http_hris_shm_node_t *n, u_char **p, size_t *len, size_t *size,
    ngx_str_t *value);
ngx_int_t ngx_http_hris_shm_accounts_seed(ngx_http_hris_shm_ctx_t *ctx);
void ngx_http_hris_shm_acct_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
ngx_int_t ngx_http_hris_shm_tokens_seed(ngx_http_hris_shm_ctx_t *ctx);
ngx_int_t ngx_http_hris_shm_links_seed(ngx_http_hris_shm_ctx_t *ctx);
void ngx_http_hris_link_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
void ngx_http_hris_links_expire(ngx_http_hris_shm_ctx_t *ctx);


#endif /* _NGX_HTTP_HRIS_SHM_H_INCLUDED_ */

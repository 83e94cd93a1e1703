/*
 * A per-request arena for jansson's allocations.
 *
 * Reading a provider's page and mapping its records built and freed some
 * 15,000 jansson nodes per 100-record page, each a malloc() and a free():
 * about 40% of a unified list request's instructions (bench/README.md).
 * Inside an arena window (ngx_http_hris_arena_enter() to _leave()),
 * jansson's allocations are carved from 64 KB chunks that belong to the
 * request's pool; freeing one of them does nothing, the chunks go when the
 * pool goes, after every other cleanup of that pool (so a tree released by
 * a cleanup is still readable while json_decref() walks it).
 *
 * jansson's allocator is process-wide (json_set_alloc_funcs()): outside a
 * window it is malloc(), and free() tells the two kinds apart by address:
 * chunks are aligned to their size, and a table of the live chunks is
 * consulted, so a block from malloc() is still given to free(), whenever
 * and wherever it was allocated. Released chunks are kept for the next
 * arena, up to NGX_HTTP_HRIS_ARENA_SPARE. Only trees that die with the
 * request may be built inside a window: a window is opened around the
 * parse of a provider's answer (the tree lives until the request's pool
 * goes) and around the mapping of a record read that way (its result
 * joins a request's answer). Windows are opened on a worker's event-loop
 * thread only: a thread of nginx's pool (offload.c's parse of a huge
 * answer) always gets malloc() and free().
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>

#include "ngx_http_hris_arena.h"


#define NGX_HTTP_HRIS_ARENA_SHIFT  16
#define NGX_HTTP_HRIS_ARENA_CHUNK  ((size_t) 1 << NGX_HTTP_HRIS_ARENA_SHIFT)

/* larger blocks (long strings, big arrays) still come from malloc() */
#define NGX_HTTP_HRIS_ARENA_BIG    (NGX_HTTP_HRIS_ARENA_CHUNK / 8)

/*
 * Chunks a released arena leaves for the next one (4 MB): a chunk given
 * back to malloc() after each request came back as fresh pages (an
 * aligned 64 KB block is mmap()ed, or the heap's top is trimmed), and the
 * kernel's page faults cost more than the arena saved.
 */
#define NGX_HTTP_HRIS_ARENA_SPARE  64


typedef struct ngx_http_hris_arena_chunk_s  ngx_http_hris_arena_chunk_t;

struct ngx_http_hris_arena_chunk_s {
    ngx_http_hris_arena_chunk_t  *next;
    ngx_http_hris_arena_t        *arena;
};


struct ngx_http_hris_arena_s {
    u_char                       *pos;
    u_char                       *end;
    ngx_http_hris_arena_chunk_t  *chunks;
    ngx_log_t                    *log;
};


static void *ngx_http_hris_arena_malloc(size_t size);
static void *ngx_http_hris_arena_more(ngx_http_hris_arena_t *a, size_t size)
    __attribute__((noinline));
static void ngx_http_hris_arena_free(void *p);
static ngx_int_t ngx_http_hris_arena_grow(ngx_http_hris_arena_t *a);
static void ngx_http_hris_arena_release(void *data);
static ngx_int_t ngx_http_hris_chunks_add(uintptr_t id);
static ngx_uint_t ngx_http_hris_chunks_find(uintptr_t id);
static void ngx_http_hris_chunks_remove(uintptr_t id);


static ngx_uint_t              ngx_http_hris_arena_hooked;

/*
 * Per thread: the worker's event-loop thread, the only one that uses
 * arenas, has "mine" set; a thread of the pool (a huge answer parsed
 * there) allocates with malloc() and frees with free() whatever window
 * the event loop has open meanwhile, and never reads the table of chunks,
 * which only the event loop's thread changes. So a tree built in an arena
 * must not be released by another thread. initial-exec: a thread-local
 * read is then one instruction (the hooks run for every node), at the
 * price of a few bytes of the static TLS that glibc reserves for modules
 * loaded with dlopen().
 */
#define NGX_HTTP_HRIS_ARENA_TLS  __attribute__((tls_model("initial-exec")))

static __thread ngx_http_hris_arena_t  *ngx_http_hris_arena_current
    NGX_HTTP_HRIS_ARENA_TLS;
static __thread ngx_uint_t              ngx_http_hris_arena_mine
    NGX_HTTP_HRIS_ARENA_TLS;

#define ngx_http_hris_arena_here()  ngx_http_hris_arena_mine

static ngx_http_hris_arena_chunk_t  *ngx_http_hris_arena_spare;
static ngx_uint_t                    ngx_http_hris_arena_nspare;

/* the live chunks: open addressing on the chunk's number, 0 is free */
static uintptr_t              *ngx_http_hris_chunks;
static ngx_uint_t              ngx_http_hris_chunks_size;   /* power of 2 */
static ngx_uint_t              ngx_http_hris_chunks_used;
static uintptr_t               ngx_http_hris_chunks_last;   /* a live one */


#define ngx_http_hris_chunk_id(p)                                            \
    ((uintptr_t) (p) >> NGX_HTTP_HRIS_ARENA_SHIFT)

#define ngx_http_hris_chunk_slot(id)                                         \
    ((ngx_uint_t) (((uint64_t) (id) * 0x9e3779b97f4a7c15ULL) >> 32)          \
     & (ngx_http_hris_chunks_size - 1))


/*
 * The pool's arena, made on first use; its cleanup goes to the end of the
 * pool's list, so it runs after every cleanup added before or after it.
 */

ngx_http_hris_arena_t *
ngx_http_hris_arena_get(ngx_pool_t *pool)
{
    ngx_pool_cleanup_t     *cln, **last;
    ngx_http_hris_arena_t  *a;

    for (cln = pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_hris_arena_release) {
            return cln->data;
        }
    }

    if (!ngx_http_hris_arena_hooked) {
        ngx_http_hris_arena_mine = 1;
        json_set_alloc_funcs(ngx_http_hris_arena_malloc,
                             ngx_http_hris_arena_free);
        ngx_http_hris_arena_hooked = 1;
    }

    a = ngx_pcalloc(pool, sizeof(ngx_http_hris_arena_t));
    if (a == NULL) {
        return NULL;
    }

    a->log = pool->log;

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_hris_arena_release;
    cln->data = a;

    /* ngx_pool_cleanup_add() put it first: move it last */
    pool->cleanup = cln->next;

    for (last = &pool->cleanup; *last; last = &(*last)->next) {
        /* void */
    }

    *last = cln;
    cln->next = NULL;

    return a;
}


/* the arena a block of jansson's lies in, or NULL (malloc()'s) */

ngx_http_hris_arena_t *
ngx_http_hris_arena_of(const void *p)
{
    uintptr_t  id;

    if (p == NULL || ngx_http_hris_chunks_used == 0
        || !ngx_http_hris_arena_here())
    {
        return NULL;
    }

    id = ngx_http_hris_chunk_id(p);

    if (ngx_http_hris_chunks[ngx_http_hris_chunks_find(id)] == 0) {
        return NULL;
    }

    return ((ngx_http_hris_arena_chunk_t *)
            (id << NGX_HTTP_HRIS_ARENA_SHIFT))->arena;
}


/* opens a window (a == NULL: malloc()); returns what to give _leave() */

ngx_http_hris_arena_t *
ngx_http_hris_arena_enter(ngx_http_hris_arena_t *a)
{
    ngx_http_hris_arena_t  *prev;

    prev = ngx_http_hris_arena_current;
    ngx_http_hris_arena_current = a;

    return prev;
}


void
ngx_http_hris_arena_leave(ngx_http_hris_arena_t *prev)
{
    ngx_http_hris_arena_current = prev;
}


/* called for every node: the common case calls nothing */

static void *
ngx_http_hris_arena_malloc(size_t size)
{
    void                   *p;
    ngx_http_hris_arena_t  *a = ngx_http_hris_arena_current;

    /* another thread's current arena is always NULL */
    if (a == NULL || size > NGX_HTTP_HRIS_ARENA_BIG) {
        return malloc(size);
    }

    size = ngx_align(size, sizeof(void *));

    if ((size_t) (a->end - a->pos) < size) {
        return ngx_http_hris_arena_more(a, size);
    }

    p = a->pos;
    a->pos += size;

    return p;
}


static void *
ngx_http_hris_arena_more(ngx_http_hris_arena_t *a, size_t size)
{
    void  *p;

    if (ngx_http_hris_arena_grow(a) != NGX_OK) {
        return malloc(size);
    }

    p = a->pos;
    a->pos += size;

    return p;
}


static void
ngx_http_hris_arena_free(void *p)
{
    uintptr_t  id;

    if (p == NULL) {
        return;
    }

    if (!ngx_http_hris_arena_here()) {
        free(p);
        return;
    }

    id = ngx_http_hris_chunk_id(p);

    /* a tree's nodes lie together: most often the chunk of the last one */
    if (id == ngx_http_hris_chunks_last) {
        return;
    }

    if (ngx_http_hris_chunks_used
        && ngx_http_hris_chunks[ngx_http_hris_chunks_find(id)])
    {
        /* an arena's block: it goes with its pool */
        ngx_http_hris_chunks_last = id;
        return;
    }

    free(p);
}


static ngx_int_t
ngx_http_hris_arena_grow(ngx_http_hris_arena_t *a)
{
    ngx_http_hris_arena_chunk_t  *c;

    c = ngx_http_hris_arena_spare;

    if (c) {
        ngx_http_hris_arena_spare = c->next;
        ngx_http_hris_arena_nspare--;

    } else {
        c = ngx_memalign(NGX_HTTP_HRIS_ARENA_CHUNK,
                         NGX_HTTP_HRIS_ARENA_CHUNK, a->log);
        if (c == NULL) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_hris_chunks_add(ngx_http_hris_chunk_id(c)) != NGX_OK) {
        ngx_free(c);
        return NGX_ERROR;
    }

    c->arena = a;
    c->next = a->chunks;
    a->chunks = c;

    a->pos = (u_char *) c + sizeof(ngx_http_hris_arena_chunk_t);
    a->end = (u_char *) c + NGX_HTTP_HRIS_ARENA_CHUNK;

    return NGX_OK;
}


static void
ngx_http_hris_arena_release(void *data)
{
    ngx_http_hris_arena_t        *a = data;
    ngx_http_hris_arena_chunk_t  *c, *next;

    if (ngx_http_hris_arena_current == a) {
        ngx_http_hris_arena_current = NULL;
    }

    for (c = a->chunks; c; c = next) {
        next = c->next;
        ngx_http_hris_chunks_remove(ngx_http_hris_chunk_id(c));

        if (ngx_http_hris_arena_nspare < NGX_HTTP_HRIS_ARENA_SPARE) {
            c->next = ngx_http_hris_arena_spare;
            ngx_http_hris_arena_spare = c;
            ngx_http_hris_arena_nspare++;
            continue;
        }

        ngx_free(c);
    }

    a->chunks = NULL;
    a->pos = NULL;
    a->end = NULL;
}


/*
 * Frees the spare chunks and the table, when no arena is left (the unit
 * test's exit, which valgrind checks for leaks).
 */

void
ngx_http_hris_arena_done(void)
{
    ngx_http_hris_arena_chunk_t  *c;

    while (ngx_http_hris_arena_spare) {
        c = ngx_http_hris_arena_spare;
        ngx_http_hris_arena_spare = c->next;
        ngx_free(c);
    }

    ngx_http_hris_arena_nspare = 0;

    if (ngx_http_hris_chunks_used == 0) {
        free(ngx_http_hris_chunks);
        ngx_http_hris_chunks = NULL;
        ngx_http_hris_chunks_size = 0;
    }
}


/* the slot of id, or of the free entry where it would go */

static ngx_uint_t
ngx_http_hris_chunks_find(uintptr_t id)
{
    ngx_uint_t  i;

    i = ngx_http_hris_chunk_slot(id);

    while (ngx_http_hris_chunks[i] && ngx_http_hris_chunks[i] != id) {
        i = (i + 1) & (ngx_http_hris_chunks_size - 1);
    }

    return i;
}


static ngx_int_t
ngx_http_hris_chunks_add(uintptr_t id)
{
    uintptr_t   *old;
    ngx_uint_t   i, size;

    if (2 * (ngx_http_hris_chunks_used + 1) > ngx_http_hris_chunks_size) {
        size = ngx_http_hris_chunks_size ? 2 * ngx_http_hris_chunks_size : 64;

        old = ngx_http_hris_chunks;
        ngx_http_hris_chunks = calloc(size, sizeof(uintptr_t));
        if (ngx_http_hris_chunks == NULL) {
            ngx_http_hris_chunks = old;
            return NGX_ERROR;
        }

        i = ngx_http_hris_chunks_size;
        ngx_http_hris_chunks_size = size;

        while (i--) {
            if (old[i]) {
                ngx_http_hris_chunks[ngx_http_hris_chunks_find(old[i])] =
                    old[i];
            }
        }

        free(old);
    }

    ngx_http_hris_chunks[ngx_http_hris_chunks_find(id)] = id;
    ngx_http_hris_chunks_used++;

    return NGX_OK;
}


/* linear probing's deletion: later entries of the run move up */

static void
ngx_http_hris_chunks_remove(uintptr_t id)
{
    ngx_uint_t  i, j, k, mask;

    mask = ngx_http_hris_chunks_size - 1;
    i = ngx_http_hris_chunks_find(id);

    if (ngx_http_hris_chunks[i] == 0) {
        return;
    }

    ngx_http_hris_chunks[i] = 0;
    ngx_http_hris_chunks_used--;

    if (ngx_http_hris_chunks_last == id) {
        ngx_http_hris_chunks_last = 0;
    }

    for (j = (i + 1) & mask; ngx_http_hris_chunks[j]; j = (j + 1) & mask) {
        k = ngx_http_hris_chunk_slot(ngx_http_hris_chunks[j]);

        /* the entry at j stays when its home k lies cyclically in (i, j] */
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) {
            continue;
        }

        ngx_http_hris_chunks[i] = ngx_http_hris_chunks[j];
        ngx_http_hris_chunks[j] = 0;
        i = j;
    }
}

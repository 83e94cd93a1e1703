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
 * joins a request's answer).
 *
 * A thread of nginx's pool (offload.c's parse of a huge answer) opens a
 * window on a thread arena of its own (ngx_http_hris_arena_thread()):
 * with malloc(), it took glibc's one arena lock for every node while the
 * event loop needed the same lock (bench/README.md: the worker's longest
 * waits). Thread arenas take their 1 MB chunks from one range of address
 * space reserved at start (ngx_http_hris_arena_init_range()), so that any
 * thread's free() tells their blocks by address alone, without a table
 * or a lock. Their blocks carry their size, and a block freed by the
 * thread that builds the arena, inside its window, is used again (a
 * "where" builds each record and frees most); freed anywhere else it
 * stays until the arena goes. A thread arena goes when its last
 * reference does: the walk's heap (its trees) and the request's pool
 * (the mapped records that borrow the trees' nodes) each hold one, their
 * cleanups run last in their pools, on whichever thread destroys them.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>
#include <pthread.h>
#include <sys/mman.h>

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

/*
 * Thread arenas: 1 MB chunks of a 4 GB range of address space (reserved,
 * not memory: pages are the kernel's until first touched). The chunks of
 * 32 MB of released arenas keep their pages for the next huge answer
 * (a fresh page's fault costs more than its parse); the others give them
 * back to the kernel.
 */
#define NGX_HTTP_HRIS_TARENA_SHIFT  20
#define NGX_HTTP_HRIS_TARENA_CHUNK  ((size_t) 1 << NGX_HTTP_HRIS_TARENA_SHIFT)
#define NGX_HTTP_HRIS_TARENA_RANGE  ((size_t) 4096 << 20)
#define NGX_HTTP_HRIS_TARENA_HOT    32

/* a thread arena's block: its size before it; free lists by size */
#define NGX_HTTP_HRIS_TARENA_HDR    sizeof(size_t)
#define NGX_HTTP_HRIS_TARENA_LISTS                                           \
    (NGX_HTTP_HRIS_ARENA_BIG / sizeof(void *) + 1)


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
    ngx_uint_t                    thread;   /* chunks of the range */
    ngx_atomic_t                  refs;     /* thread arenas */
    void                        **lists;    /* thread arenas: freed */
    ngx_uint_t                    mallocs;  /* blocks malloc() gave */
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
static void *ngx_http_hris_arena_talloc(ngx_http_hris_arena_t *a,
    size_t size);
static void ngx_http_hris_arena_tfree(void *p);
static ngx_http_hris_arena_chunk_t *ngx_http_hris_range_get(void);
static void ngx_http_hris_range_put(ngx_http_hris_arena_chunk_t *c);
static void ngx_http_hris_arena_unbind(void *data);
static ngx_inline void *ngx_http_hris_arena_cut(size_t size);
static ngx_uint_t ngx_http_hris_json_layout(void) __attribute__((cold));


static ngx_uint_t              ngx_http_hris_arena_hooked;


/* see ngx_http_hris_arena.h */
ngx_uint_t  ngx_http_hris_json_ours = NGX_CONF_UNSET_UINT;

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


/*
 * The range of thread arenas. Set once, before any thread runs (at
 * configuration), and read by every free(): range_size is 0 until then,
 * so that no block is taken for the range's.
 */
static u_char                       *ngx_http_hris_range_start;
static size_t                        ngx_http_hris_range_size;

/* the rest is the lock's, taken a few times per huge answer */
static pthread_mutex_t               ngx_http_hris_range_lock =
    PTHREAD_MUTEX_INITIALIZER;
/* where the chunks never used begin */
static u_char                       *ngx_http_hris_range_next;
static ngx_http_hris_arena_chunk_t  *ngx_http_hris_range_hot;
static ngx_uint_t                    ngx_http_hris_range_nhot;
static ngx_http_hris_arena_chunk_t  *ngx_http_hris_range_cold;

#define ngx_http_hris_range_has(p)                                           \
    ((size_t) ((uintptr_t) (p) - (uintptr_t) ngx_http_hris_range_start)     \
     < ngx_http_hris_range_size)


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

    /* the only thread that asks for a pool's arena is the event loop */
    ngx_http_hris_arena_mine = 1;

    if (!ngx_http_hris_arena_hooked) {
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


/*
 * How many blocks malloc() gave inside the arena's windows (too large, or
 * no chunk to be had): unchanged over a parse, every node it built lies
 * in the arena (see ngx_http_hris_arena_pin()).
 */

ngx_uint_t
ngx_http_hris_arena_mallocs(ngx_http_hris_arena_t *a)
{
    return a->mallocs;
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

    /* outside a window: NULL, in any thread */
    if (a == NULL) {
        return malloc(size);
    }

    if (size > NGX_HTTP_HRIS_ARENA_BIG) {
        a->mallocs++;
        return malloc(size);
    }

    if (a->thread) {
        return ngx_http_hris_arena_talloc(a, size);
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
        a->mallocs++;
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

    if (ngx_http_hris_range_has(p)) {
        ngx_http_hris_arena_tfree(p);
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


/*
 * A jansson string of len bytes (valid UTF-8, as json_stringn_nocheck()
 * takes) in the event loop's arena window: node and bytes in one block,
 * cut from the chunk. json_stringn_nocheck() made two blocks through the
 * allocator's hooks and copied the bytes through strndup(): a third of
 * the reader's time for a list's strings (bench/README.md). jansson frees
 * such a node as its own (the bytes, then the node): both addresses lie
 * in the chunk, which arena_free() passes over. Anywhere else (no window,
 * a thread's arena, a long string) it is jansson's.
 */

json_t *
ngx_http_hris_arena_string(const u_char *s, size_t len)
{
    ngx_http_hris_json_string_t  *str;

    str = ngx_http_hris_arena_cut(sizeof(ngx_http_hris_json_string_t)
                                  + len + 1);
    if (str == NULL) {
        return json_stringn_nocheck((const char *) s, len);
    }

    str->json.type = JSON_STRING;
    str->json.refcount = 1;
    str->value = (char *) (str + 1);
    str->length = len;

    ngx_memcpy(str->value, s, len);
    str->value[len] = '\0';

    return &str->json;
}


/*
 * A jansson array with room for n values, in one block as the string
 * above (ngx_http_hris_array_append() fills it without a call); jansson
 * grows it as its own if more come. Outside the window: json_array().
 */

json_t *
ngx_http_hris_arena_array(size_t n)
{
    ngx_http_hris_json_array_t  *arr;

    /*
     * jansson's own array starts with room for 8; n is at most a body's
     * length, the size cannot overflow
     */
    n = ngx_max(n, 8);

    arr = ngx_http_hris_arena_cut(sizeof(ngx_http_hris_json_array_t)
                                  + n * sizeof(json_t *));
    if (arr == NULL) {
        return json_array();
    }

    arr->json.type = JSON_ARRAY;
    arr->json.refcount = 1;
    arr->size = n;
    arr->entries = 0;
    arr->table = (json_t **) (arr + 1);

    return &arr->json;
}


/*
 * A block for a node of ours (the two above), cut from the event loop's
 * arena window: NULL outside a window, in a thread's arena, for a block
 * larger than the arena's, with no chunk to be had, or when jansson's
 * layouts are not ours.
 */

static ngx_inline void *
ngx_http_hris_arena_cut(size_t size)
{
    u_char                 *p;
    ngx_http_hris_arena_t  *a = ngx_http_hris_arena_current;

    if (a == NULL || a->thread || size > NGX_HTTP_HRIS_ARENA_BIG) {
        return NULL;
    }

    /* checked once: a load, not a call, for every node after that */
    if (ngx_http_hris_json_ours != 1 && !ngx_http_hris_json_layout()) {
        return NULL;
    }

    size = ngx_align(size, sizeof(void *));

    if ((size_t) (a->end - a->pos) < size
        && ngx_http_hris_arena_grow(a) != NGX_OK)
    {
        return NULL;
    }

    p = a->pos;
    a->pos += size;

    return p;
}


/*
 * Whether jansson's string and array nodes are laid out as ngx_http_
 * hris_json_string_t and _array_t: its functions read nodes of ours, and
 * its nodes read as ours. Checked once, on the event loop (the only
 * caller).
 */

static ngx_uint_t
ngx_http_hris_json_layout(void)
{
    json_t                       *v, *a, *table[2];
    ngx_uint_t                    ours;
    ngx_http_hris_json_array_t    aprobe, *arr;
    ngx_http_hris_json_string_t   sprobe, *str;

    if (ngx_http_hris_json_ours != NGX_CONF_UNSET_UINT) {
        return ngx_http_hris_json_ours;
    }

    sprobe.json.type = JSON_STRING;
    sprobe.json.refcount = 1;
    sprobe.value = (char *) "probe";
    sprobe.length = 3;

    table[0] = &sprobe.json;
    table[1] = json_null();

    aprobe.json.type = JSON_ARRAY;
    aprobe.json.refcount = 1;
    aprobe.size = 2;
    aprobe.entries = 2;
    aprobe.table = table;

    ours = json_is_string(&sprobe.json)
           && json_string_value(&sprobe.json) == sprobe.value
           && json_string_length(&sprobe.json) == 3
           && json_is_array(&aprobe.json)
           && json_array_size(&aprobe.json) == 2
           && json_array_get(&aprobe.json, 0) == &sprobe.json
           && json_array_get(&aprobe.json, 1) == json_null();

    v = json_stringn_nocheck("ab", 2);
    a = json_array();

    if (v && a && json_array_append(a, v) == 0) {
        str = (ngx_http_hris_json_string_t *) v;
        arr = (ngx_http_hris_json_array_t *) a;

        ours = ours && str->value == json_string_value(v)
               && str->length == 2 && ngx_strcmp(str->value, "ab") == 0
               && arr->entries == 1 && arr->size >= 1
               && arr->table[0] == v;

    } else {
        ours = 0;
    }

    json_decref(a);
    json_decref(v);

    ngx_http_hris_json_ours = ours;

    return ours;
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


/*
 * Reserves the range of thread arenas and hooks jansson's allocator, once
 * per process, before any thread of the pool runs (at configuration).
 * NGX_DECLINED: no range (an address space limit), threads use malloc().
 */

ngx_int_t
ngx_http_hris_arena_init_range(void)
{
    u_char  *p;

    if (!ngx_http_hris_arena_hooked) {
        json_set_alloc_funcs(ngx_http_hris_arena_malloc,
                             ngx_http_hris_arena_free);
        ngx_http_hris_arena_hooked = 1;
    }

    if (ngx_http_hris_range_size) {
        return NGX_OK;
    }

    /* one chunk more, to align the start to a chunk */
    p = mmap(NULL, NGX_HTTP_HRIS_TARENA_RANGE + NGX_HTTP_HRIS_TARENA_CHUNK,
             PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, -1, 0);

    if (p == MAP_FAILED) {
        return NGX_DECLINED;
    }

    ngx_http_hris_range_start = ngx_align_ptr(p, NGX_HTTP_HRIS_TARENA_CHUNK);
    ngx_http_hris_range_next = ngx_http_hris_range_start;
    ngx_http_hris_range_size = NGX_HTTP_HRIS_TARENA_RANGE;

    return NGX_OK;
}


ngx_uint_t
ngx_http_hris_arena_in_range(const void *p)
{
    return ngx_http_hris_range_has(p);
}


/*
 * A new thread arena, for the calling thread's window; one reference,
 * the caller's. NULL: no range or no chunk left (malloc() then).
 */

ngx_http_hris_arena_t *
ngx_http_hris_arena_thread(void)
{
    ngx_http_hris_arena_t        *a;
    ngx_http_hris_arena_chunk_t  *c;

    c = ngx_http_hris_range_get();
    if (c == NULL) {
        return NULL;
    }

    /* the arena and its free lists lie in its first chunk */
    a = (ngx_http_hris_arena_t *) (c + 1);
    ngx_memzero(a, sizeof(ngx_http_hris_arena_t)
                   + NGX_HTTP_HRIS_TARENA_LISTS * sizeof(void *));

    a->lists = (void **) (a + 1);
    a->thread = 1;
    a->refs = 1;
    a->chunks = c;
    a->pos = (u_char *) (a->lists + NGX_HTTP_HRIS_TARENA_LISTS);
    a->end = (u_char *) c + NGX_HTTP_HRIS_TARENA_CHUNK;

    c->arena = a;
    c->next = NULL;

    return a;
}


/*
 * One more reference to a thread arena, dropped when the pool goes,
 * after every other cleanup of the pool (added before or after).
 */

ngx_int_t
ngx_http_hris_arena_bind(ngx_http_hris_arena_t *a, ngx_pool_t *pool)
{
    ngx_pool_cleanup_t  *cln, **last;

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_hris_arena_unbind;
    cln->data = a;

    (void) ngx_atomic_fetch_add(&a->refs, 1);

    pool->cleanup = cln->next;

    for (last = &pool->cleanup; *last; last = &(*last)->next) {
        /* void */
    }

    *last = cln;
    cln->next = NULL;

    return NGX_OK;
}


static void
ngx_http_hris_arena_unbind(void *data)
{
    ngx_http_hris_arena_drop(data);
}


/* the last reference gives the chunks back, from any thread */

void
ngx_http_hris_arena_drop(ngx_http_hris_arena_t *a)
{
    if (ngx_atomic_fetch_add(&a->refs, -1) != 1) {
        return;
    }

    /* a is in its first chunk: read before they go */
    ngx_http_hris_range_put(a->chunks);
}


static void *
ngx_http_hris_arena_talloc(ngx_http_hris_arena_t *a, size_t size)
{
    u_char                       *p;
    void                        **list;
    ngx_http_hris_arena_chunk_t  *c;

    /* a freed block holds the next of its list */
    size = (size < sizeof(void *)) ? sizeof(void *)
                                   : ngx_align(size, sizeof(void *));

    list = &a->lists[size / sizeof(void *)];

    if (*list) {
        p = *list;
        *list = *(void **) p;
        return p;
    }

    if ((size_t) (a->end - a->pos) < NGX_HTTP_HRIS_TARENA_HDR + size) {
        c = ngx_http_hris_range_get();
        if (c == NULL) {
            return malloc(size);
        }

        c->arena = a;
        c->next = a->chunks;
        a->chunks = c;

        a->pos = (u_char *) (c + 1);
        a->end = (u_char *) c + NGX_HTTP_HRIS_TARENA_CHUNK;
    }

    *(size_t *) a->pos = size;
    p = a->pos + NGX_HTTP_HRIS_TARENA_HDR;
    a->pos = p + size;

    return p;
}


/*
 * A thread arena's block: used again when its arena is the window open in
 * this thread (the thread that builds it); nothing otherwise, it goes
 * with its arena.
 */

static void
ngx_http_hris_arena_tfree(void *p)
{
    size_t                        size;
    ngx_http_hris_arena_t        *a;
    ngx_http_hris_arena_chunk_t  *c;

    c = (ngx_http_hris_arena_chunk_t *)
            ((uintptr_t) p & ~(NGX_HTTP_HRIS_TARENA_CHUNK - 1));
    a = c->arena;

    if (a != ngx_http_hris_arena_current) {
        return;
    }

    size = *(size_t *) ((u_char *) p - NGX_HTTP_HRIS_TARENA_HDR);

    *(void **) p = a->lists[size / sizeof(void *)];
    a->lists[size / sizeof(void *)] = p;
}


static ngx_http_hris_arena_chunk_t *
ngx_http_hris_range_get(void)
{
    u_char                       *fresh;
    ngx_http_hris_arena_chunk_t  *c;

    if (ngx_http_hris_range_size == 0) {
        return NULL;
    }

    c = NULL;
    fresh = NULL;

    (void) pthread_mutex_lock(&ngx_http_hris_range_lock);

    if (ngx_http_hris_range_hot) {
        c = ngx_http_hris_range_hot;
        ngx_http_hris_range_hot = c->next;
        ngx_http_hris_range_nhot--;

    } else if (ngx_http_hris_range_cold) {
        c = ngx_http_hris_range_cold;
        ngx_http_hris_range_cold = c->next;

    } else if (ngx_http_hris_range_next
               < ngx_http_hris_range_start + ngx_http_hris_range_size)
    {
        fresh = ngx_http_hris_range_next;
        ngx_http_hris_range_next += NGX_HTTP_HRIS_TARENA_CHUNK;
    }

    (void) pthread_mutex_unlock(&ngx_http_hris_range_lock);

    /* the range's next chunk becomes memory (it stays so) */
    if (fresh
        && mprotect(fresh, NGX_HTTP_HRIS_TARENA_CHUNK, PROT_READ|PROT_WRITE)
           == 0)
    {
        c = (ngx_http_hris_arena_chunk_t *) fresh;
    }

    return c;
}


/* a released arena's chunks: hot ones first, the rest without pages */

static void
ngx_http_hris_range_put(ngx_http_hris_arena_chunk_t *c)
{
    ngx_http_hris_arena_chunk_t  *next, *cold;

    (void) pthread_mutex_lock(&ngx_http_hris_range_lock);

    while (c && ngx_http_hris_range_nhot < NGX_HTTP_HRIS_TARENA_HOT) {
        next = c->next;
        c->arena = NULL;
        c->next = ngx_http_hris_range_hot;
        ngx_http_hris_range_hot = c;
        ngx_http_hris_range_nhot++;
        c = next;
    }

    (void) pthread_mutex_unlock(&ngx_http_hris_range_lock);

    if (c == NULL) {
        return;
    }

    cold = c;

    for ( ;; ) {
        next = c->next;

        /* its pages go (zeroed at the next touch): the link again */
        (void) madvise(c, NGX_HTTP_HRIS_TARENA_CHUNK, MADV_DONTNEED);
        c->next = next;

        if (next == NULL) {
            break;
        }

        c = next;
    }

    (void) pthread_mutex_lock(&ngx_http_hris_range_lock);

    c->next = ngx_http_hris_range_cold;
    ngx_http_hris_range_cold = cold;

    (void) pthread_mutex_unlock(&ngx_http_hris_range_lock);
}

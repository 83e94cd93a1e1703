/*
 * Keeping a huge provider answer off the event loop.
 *
 * A provider may answer a list with every record in one body (PeopleHR:
 * all employees, 15 MB for a few thousand). Parsing that into a jansson
 * tree takes a few hundred milliseconds and freeing the tree about as
 * long again: on the event loop, every other request of the worker would
 * wait that long (bench/stall measures it). So an answer of at least
 * NGX_HTTP_HRIS_OFFLOAD_SIZE bytes is parsed by a thread of nginx's thread
 * pool ("default"), and the trees of a request that read that much are
 * freed by one too. What the walk does with the tree afterwards (select
 * at most 500 records, map them, write the page) stays on the event loop:
 * it is bounded by the page size, not by the provider's body.
 *
 * What the thread builds: when the walk says which records the page takes
 * (ctx->select, walk.c), only those of the records array, the rest read
 * and checked but not kept (ngx_http_hris_parse_select()): the tree of a
 * whole 15 MB body was 11 times the body, built by a malloc() per node
 * under the lock the worker's own malloc() takes too (bench/README.md).
 *
 * Why threads rather than slices of work between events: the reader is
 * one recursive descent over the whole body; cutting it into resumable
 * slices would make every value's parse carry its state. A thread needs
 * none of that: the parse touches only its input, jansson (thread safe,
 * atomic reference counts) and the request's "heap" pool, which nothing
 * else uses while the thread has it.
 *
 * The heap: the trees of a walk and the table of where their objects lie
 * in the answers (ngx_http_hris_spans_t) live in a pool of their own, not
 * in the request's, so that a thread may allocate from it and free it
 * all. The request's pool destroys it when the request ends.
 *
 * Request lifetime: while the parse runs, r->main->blocked is raised, as
 * nginx does for its own thread tasks: a client going away then only
 * marks the connection (ngx_http_terminate_request() defers to the
 * task), and the completion finalizes the request instead of going on.
 * The request's pool, the call and its buffer stay until then.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_unified.h"
#include "ngx_http_hris_arena.h"

#if (NGX_THREADS && defined __GLIBC__)
#include <malloc.h>
#endif


#if (NGX_THREADS)

typedef struct {
    ngx_http_hris_ctx_t       *ctx;
    ngx_http_hris_call_t      *call;
    ngx_http_hris_spans_t     *spans;
    ngx_http_hris_call_handler_pt  handler;
    ngx_http_hris_arena_t     *arena;      /* the tree's nodes */
} ngx_http_hris_parse_task_t;


static void ngx_http_hris_offload_parse_thread(void *data, ngx_log_t *log);
static void ngx_http_hris_offload_parsed(ngx_event_t *ev);
static void ngx_http_hris_offload_free_thread(void *data, ngx_log_t *log);
static void ngx_http_hris_offload_freed(ngx_event_t *ev);

#endif

static void ngx_http_hris_heap_release(void *data);


/* nginx's "default" thread pool (32 threads unless thread_pool says) */

ngx_int_t
ngx_http_hris_offload_init_conf(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf)
{
#if (NGX_THREADS)
    ngx_str_t  name = ngx_string("default");

    hmcf->thread_pool = ngx_thread_pool_add(cf, &name);
    if (hmcf->thread_pool == NULL) {
        return NGX_ERROR;
    }

#if (defined __GLIBC__ && defined M_ARENA_MAX)
    /*
     * glibc gives each thread that allocates an arena of its own, up to
     * eight per core, and an arena keeps what is freed in it: a tree
     * parsed by the next thread took fresh memory every time (RSS grew
     * by the tree's size per huge answer, bench/stall). One arena for
     * all: the freed tree is what the next one is built from.
     */
    mallopt(M_ARENA_MAX, 1);
#endif

#if (defined __GLIBC__ && defined M_MMAP_THRESHOLD)
    /*
     * A huge answer's buffer from the heap and kept there for the next:
     * glibc mapped the first one fresh, then, its thresholds raised by
     * that free, took the second from the heap's fresh top; each time the
     * event loop faulted 15 MB of new pages in while curl copied the body
     * (80 ms stretches of the worker, bench/README.md). These are the
     * values glibc's own would reach after a 32 MB answer.
     */
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
#endif

    /*
     * the thread's tree is built in an arena of its own: malloc()'s one
     * lock was taken for every node, the worker's waits on it its
     * longest stalls (arena.c); without the range, malloc() it is
     */
    if (ngx_http_hris_arena_init_range() != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_NOTICE, cf, 0,
                           "hris: no address range for the arenas of "
                           "huge answers' parses: malloc() then");
    }
#endif

    return NGX_OK;
}


/*
 * The walk's heap: the pool its trees and spans live in, destroyed with
 * the request's pool (by a thread when it holds a huge answer).
 */

ngx_int_t
ngx_http_hris_heap_create(ngx_http_hris_ctx_t *ctx)
{
    ngx_pool_cleanup_t  *cln;
    ngx_http_request_t  *r = ctx->request;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    /* its log outlives the connection: the pool may be freed later */
    ctx->heap = ngx_create_pool(4096, ngx_cycle->log);
    if (ctx->heap == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_hris_heap_release;
    cln->data = ctx;

    /*
     * in the heap, not in ctx: the spans' release runs when the heap is
     * destroyed, maybe by a thread after the request's pool is gone
     */
    ctx->spans = ngx_pcalloc(ctx->heap, sizeof(ngx_http_hris_spans_t));
    if (ctx->spans == NULL) {
        return NGX_ERROR;
    }

    ctx->spans->pool = ctx->heap;

    return NGX_OK;
}


static void
ngx_http_hris_heap_release(void *data)
{
    ngx_http_hris_ctx_t  *ctx = data;

#if (NGX_THREADS)
    ngx_pool_t          **heap;
    ngx_thread_task_t    *task;

    /*
     * a tree parsed on the event loop has its nodes in the request's
     * arena (arena.c): it must die on this thread, before the arena does
     */
    if (ctx->heap_bytes >= NGX_HTTP_HRIS_OFFLOAD_SIZE
        && !ctx->heap_arena && ctx->hmcf->thread_pool)
    {
        /* the request's pool goes: the task is the worker's */
        task = ngx_calloc(sizeof(ngx_thread_task_t) + sizeof(ngx_pool_t *),
                          ngx_cycle->log);

        if (task) {
            heap = (ngx_pool_t **) (task + 1);
            *heap = ctx->heap;
            task->ctx = heap;
            task->handler = ngx_http_hris_offload_free_thread;
            task->event.handler = ngx_http_hris_offload_freed;
            task->event.data = task;
            task->event.log = ngx_cycle->log;

            if (ngx_thread_task_post(ctx->hmcf->thread_pool, task) == NGX_OK)
            {
                return;
            }

            ngx_free(task);
        }
    }
#endif

    /* small, or no thread: at once */
    ngx_destroy_pool(ctx->heap);
}


/*
 * Parses call->resp in a thread when it is huge: NGX_OK, the parse is
 * under way and handler(call) runs when it ended (call->parsed set);
 * NGX_DECLINED, parse it here; NGX_ERROR.
 */

ngx_int_t
ngx_http_hris_offload_parse(ngx_http_hris_ctx_t *ctx,
    ngx_http_hris_call_t *call, ngx_http_hris_spans_t *spans,
    ngx_http_hris_call_handler_pt handler)
{
#if (NGX_THREADS)
    ngx_thread_task_t           *task;
    ngx_http_request_t          *r = ctx->request;
    ngx_http_hris_parse_task_t  *pt;

    if (call->resp_len < NGX_HTTP_HRIS_OFFLOAD_SIZE
        || ctx->hmcf->thread_pool == NULL)
    {
        return NGX_DECLINED;
    }

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_hris_parse_task_t));
    if (task == NULL) {
        return NGX_ERROR;
    }

    pt = task->ctx;
    pt->ctx = ctx;
    pt->call = call;
    pt->spans = spans;
    pt->handler = handler;

    task->handler = ngx_http_hris_offload_parse_thread;
    task->event.handler = ngx_http_hris_offload_parsed;
    task->event.data = task;
    task->event.log = r->connection->log;

    if (ngx_thread_task_post(ctx->hmcf->thread_pool, task) != NGX_OK) {
        /* a full queue: the parse runs here, slow but right */
        return NGX_DECLINED;
    }

    r->main->blocked++;

    /* a worker told to quit waits for the parse (slice.c) */
    ngx_http_hris_worker_hold();

    return NGX_OK;

#else

    return NGX_DECLINED;

#endif
}


#if (NGX_THREADS)

/* In a pool thread: the reader, jansson and the heap only; no logging. */

static void
ngx_http_hris_offload_parse_thread(void *data, ngx_log_t *log)
{
    ngx_http_hris_parse_task_t  *pt = data;
    ngx_http_hris_call_t        *call = pt->call;
    ngx_http_hris_arena_t       *prev;

    /* NULL (no chunk left): malloc() */
    pt->arena = ngx_http_hris_arena_thread();
    prev = ngx_http_hris_arena_enter(pt->arena);

    /* of the records, only those the page takes (ctx->select) */
    call->parsed_body = ngx_http_hris_parse_select(call->resp,
                                                   call->resp_len,
                                                   &call->parsed_line,
                                                   &call->parsed_column,
                                                   &call->parsed_error,
                                                   pt->spans,
                                                   pt->ctx->select);

    ngx_http_hris_arena_leave(prev);
}


static void
ngx_http_hris_offload_parsed(ngx_event_t *ev)
{
    ngx_connection_t            *c;
    ngx_thread_task_t           *task = ev->data;
    ngx_http_request_t          *r;
    ngx_http_hris_parse_task_t  *pt = task->ctx;
    ngx_http_hris_ctx_t         *ctx = pt->ctx;
    ngx_http_hris_call_t        *call = pt->call;

    r = ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;
    ngx_http_hris_worker_release();
    call->parsed = 1;
    ctx->heap_bytes += call->resp_len;

    /*
     * the tree's arena goes when both the heap (the tree) and the
     * request's pool (mapped records borrow its nodes) are gone; if a
     * reference cannot be handed over, the arena is never released: its
     * memory is lost, but nothing reads a released chunk
     */
    if (pt->arena
        && ngx_http_hris_arena_bind(pt->arena, ctx->heap) == NGX_OK
        && ngx_http_hris_arena_bind(pt->arena, r->pool) == NGX_OK)
    {
        ngx_http_hris_arena_drop(pt->arena);
    }

    /* the heap owns the tree, whatever comes next */
    if (call->parsed_body
        && ngx_http_hris_json_cleanup(ctx->heap, call->parsed_body)
           != NGX_OK)
    {
        json_decref(call->parsed_body);
        call->parsed_body = NULL;
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);

    } else if (c->error) {
        /* the client went away meanwhile: nothing more to do */
        ngx_http_finalize_request(r, NGX_ERROR);

    } else {
        pt->handler(call);
    }

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_hris_offload_free_thread(void *data, ngx_log_t *log)
{
    ngx_pool_t  **heap = data;

    ngx_destroy_pool(*heap);
}


static void
ngx_http_hris_offload_freed(ngx_event_t *ev)
{
    ngx_free(ev->data);
}

#endif

/*
 * Mapping and writing a large page in slices between events.
 *
 * A page of many records (500 of a huge answer) took the worker 6 ms to
 * map and 7 ms to write on a quiet machine, 26-39 ms at a stretch on a
 * busy one (bench/README.md, "Huge answers"): every other request of the
 * worker waited that long. So the records of a page are mapped, and once
 * the page has been sliced also written, a few at a time: after a time
 * budget the rest waits for the next turn of the event loop (a posted
 * event on ngx_posted_next_events: the loop looks at its sockets first;
 * ngx_posted_events would run it in the same turn, a 0 ms timer too).
 *
 * The common page stays on the straight path: the clock is not looked at
 * before NGX_HTTP_HRIS_SLICE_FIRST records, so a page of 100 records costs
 * no event and no second pass. Once a page is sliced, each slice writes
 * what it mapped into a chain (ngx_http_hris_json_write_part()); the
 * answer's writer links that chain in, and the records left, if any.
 *
 * Request lifetime, as offload.c does for its threads: while a slice is
 * posted r->main->blocked is raised, so a client that goes away only
 * marks the connection (ngx_http_terminate_request() defers) and the
 * slice then finalizes the request instead of going on.
 *
 * A worker told to quit leaves as soon as no timer is left: posted events
 * and thread tasks are not counted, and it left in the middle of a page
 * ("open socket left in connection", the client unanswered). While work
 * of a request goes on with no timer of its own (a posted slice, a parse
 * in a thread: offload.c), ngx_http_hris_worker_hold() keeps a timer set;
 * and a worker that is exiting maps the rest of a page at once.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_unified.h"
#include "ngx_http_hris_record.h"


/* records mapped before the clock is read: a common page of 100 is done */
#define NGX_HTTP_HRIS_SLICE_FIRST    128

/* the clock is read every this many records mapped or written */
#define NGX_HTTP_HRIS_SLICE_EVERY    8

/* the time of one slice, in microseconds (bench/README.md, "Slices") */
#define NGX_HTTP_HRIS_SLICE_BUDGET   2000

/* the holding timer: it does nothing but be there (set again if due) */
#define NGX_HTTP_HRIS_HOLD_TIMER     600000


struct ngx_http_hris_slice_s {
    ngx_http_hris_ctx_t        *ctx;
    ngx_event_t                 ev;         /* the next slice, posted */
    json_t                     *body;
    ngx_array_t                 recs;       /* a copy: the walk's is on
                                               its stack */
    ngx_uint_t                  raw;
    ngx_uint_t                  next;       /* in recs, to map next */
    ngx_uint_t                  to;
    ngx_http_hris_json_part_t   part;       /* records written */
};


static ngx_int_t ngx_http_hris_slice_run(ngx_http_hris_ctx_t *ctx,
    ngx_array_t *recs, ngx_uint_t *next, ngx_uint_t to, ngx_uint_t first);
static ngx_int_t ngx_http_hris_slice_post(ngx_http_hris_ctx_t *ctx);
static void ngx_http_hris_slice_handler(ngx_event_t *ev);
static void ngx_http_hris_hold_handler(ngx_event_t *ev);
static void ngx_http_hris_slice_cleanup(void *data);
static uint64_t ngx_http_hris_slice_usec(void);


static ngx_event_t  ngx_http_hris_hold_ev;
static ngx_uint_t   ngx_http_hris_holds;
/* fd -1: a debug log's "event timer add" reads the event's connection */
static ngx_connection_t  ngx_http_hris_hold_conn;


/*
 * Maps records [from, to) of recs into the page. NGX_OK: done, go on;
 * NGX_HTTP_HRIS_PENDING: the rest goes in slices, and the last one goes
 * on with ngx_http_hris_walk_took(); anything else, the rc to finalize.
 */

ngx_int_t
ngx_http_hris_slice_map(ngx_http_hris_ctx_t *ctx, json_t *body,
    ngx_array_t *recs, ngx_uint_t raw, ngx_uint_t from, ngx_uint_t to)
{
    ngx_int_t               rc;
    ngx_uint_t              next;
    ngx_http_hris_slice_t  *s;

    next = from;

    rc = ngx_http_hris_slice_run(ctx, recs, &next, to,
                                 NGX_HTTP_HRIS_SLICE_FIRST);
    if (rc != NGX_AGAIN) {
        return (rc == NGX_OK) ? NGX_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_hris_slice_post(ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    s = ctx->slice;
    s->body = body;
    s->recs = *recs;
    s->raw = raw;
    s->next = next;
    s->to = to;

    return NGX_HTTP_HRIS_PENDING;
}


/*
 * Maps (and, once sliced, writes) records until all are done (NGX_OK) or
 * the slice's time is out (NGX_AGAIN), or NGX_ERROR. "first" records go
 * before the clock is read; each call makes progress.
 */

static ngx_int_t
ngx_http_hris_slice_run(ngx_http_hris_ctx_t *ctx, ngx_array_t *recs,
    ngx_uint_t *next, ngx_uint_t to, ngx_uint_t first)
{
    json_t                 ***rec;
    uint64_t                  start;
    ngx_uint_t                n, i;
    ngx_http_hris_rec_t      *e;
    ngx_http_hris_slice_t    *s = ctx->slice;

    e = recs->elts;
    i = *next;
    start = ngx_http_hris_slice_usec();

    for (n = 0; /* void */ ; n++) {

        if (n >= first && n && n % NGX_HTTP_HRIS_SLICE_EVERY == 0
            && !ngx_exiting && !ngx_terminate
            && ngx_http_hris_slice_usec() - start
               >= NGX_HTTP_HRIS_SLICE_BUDGET)
        {
            *next = i;
            return NGX_AGAIN;
        }

        /* a sliced page writes what it mapped first */
        if (s && s->part.n < ctx->result.nelts) {
            rec = ctx->result.elts;

            if (ngx_http_hris_json_write_part(ctx->request->pool,
                                              ctx->spans, ctx->fields,
                                              rec[s->part.n], &s->part)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        if (i == to) {
            break;
        }

        if (ngx_http_hris_walk_map(ctx, &e[i++]) == NULL) {
            return NGX_ERROR;
        }
    }

    *next = i;

    return NGX_OK;
}


/* The next slice, after the event loop's next look at its sockets. */

static ngx_int_t
ngx_http_hris_slice_post(ngx_http_hris_ctx_t *ctx)
{
    ngx_pool_cleanup_t     *cln;
    ngx_http_request_t     *r = ctx->request;
    ngx_http_hris_slice_t  *s = ctx->slice;

    if (s == NULL) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        s = ngx_pcalloc(r->pool, sizeof(ngx_http_hris_slice_t));
        if (cln == NULL || s == NULL) {
            return NGX_ERROR;
        }

        s->ctx = ctx;
        s->ev.handler = ngx_http_hris_slice_handler;
        s->ev.data = s;
        s->ev.log = r->connection->log;

        cln->handler = ngx_http_hris_slice_cleanup;
        cln->data = s;

        ctx->slice = s;
    }

    ngx_post_event(&s->ev, &ngx_posted_next_events);
    ngx_http_hris_worker_hold();

    r->main->blocked++;

    return NGX_OK;
}


static void
ngx_http_hris_slice_handler(ngx_event_t *ev)
{
    ngx_int_t               rc;
    ngx_connection_t       *c;
    ngx_http_request_t     *r;
    ngx_http_hris_slice_t  *s = ev->data;
    ngx_http_hris_ctx_t    *ctx = s->ctx;

    r = ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;
    ngx_http_hris_worker_release();

    if (c->error) {
        /* the client went away meanwhile: nothing more to do */
        rc = NGX_ERROR;
        goto done;
    }

    switch (ngx_http_hris_slice_run(ctx, &s->recs, &s->next, s->to, 0)) {

    case NGX_AGAIN:
        ngx_post_event(&s->ev, &ngx_posted_next_events);
        ngx_http_hris_worker_hold();
        r->main->blocked++;
        goto posted;

    case NGX_OK:
        rc = ngx_http_hris_walk_took(ctx, s->body, &s->recs, s->raw, s->to);
        break;

    default:
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        break;
    }

done:

    if (rc != NGX_HTTP_HRIS_PENDING) {
        ngx_http_finalize_request(r, rc);
    }

posted:

    ngx_http_run_posted_requests(c);
}


/* the records a sliced page wrote, for the answer's writer; or NULL */

ngx_http_hris_json_part_t *
ngx_http_hris_slice_part(ngx_http_hris_ctx_t *ctx)
{
    return ctx->slice ? &ctx->slice->part : NULL;
}


/*
 * Keeps a worker that is told to quit in its loop until as many releases
 * as holds came: a timer that is not cancelable is set meanwhile.
 */

void
ngx_http_hris_worker_hold(void)
{
    ngx_event_t  *ev = &ngx_http_hris_hold_ev;

    if (ngx_http_hris_holds++ == 0) {
        ev->handler = ngx_http_hris_hold_handler;
        ev->log = ngx_cycle->log;
        ngx_http_hris_hold_conn.fd = (ngx_socket_t) -1;
        ev->data = &ngx_http_hris_hold_conn;
        ngx_add_timer(ev, NGX_HTTP_HRIS_HOLD_TIMER);
    }
}


void
ngx_http_hris_worker_release(void)
{
    if (ngx_http_hris_holds && --ngx_http_hris_holds == 0
        && ngx_http_hris_hold_ev.timer_set)
    {
        ngx_del_timer(&ngx_http_hris_hold_ev);
    }
}


static void
ngx_http_hris_hold_handler(ngx_event_t *ev)
{
    if (ngx_http_hris_holds) {
        ngx_add_timer(ev, NGX_HTTP_HRIS_HOLD_TIMER);
    }
}


/* the request's pool goes: nothing of the slices may stay in the loop */

static void
ngx_http_hris_slice_cleanup(void *data)
{
    ngx_http_hris_slice_t  *s = data;

    if (s->ev.posted) {
        ngx_delete_posted_event(&s->ev);
        ngx_http_hris_worker_release();
    }
}


static uint64_t
ngx_http_hris_slice_usec(void)
{
    struct timespec  ts;

    /* a vDSO call: no system call, unlike ngx_time_update() */
    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * The shared zone (ngx_http_hris_shm.c): per account, the rate-limit
 * window.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_shm.h"


static ngx_int_t ngx_http_hris_rate_take(ngx_http_hris_rate_t *rt,
    ngx_msec_t now, ngx_msec_t max_wait, ngx_msec_t *wait);


/*
 * Reserves the account's next upstream call under "calls per window"
 * (a sliding window, as PeopleHR counts). Returns NGX_OK with *wait, the
 * ms to wait before calling; NGX_BUSY with *wait, the ms after which a
 * call would be allowed, when that is longer than max_wait (nothing is
 * reserved then); NGX_ERROR when the zone is full.
 */

ngx_int_t
ngx_http_hris_rate_reserve(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id,
    ngx_uint_t calls, ngx_msec_t window, ngx_msec_t max_wait,
    ngx_msec_t *wait)
{
    ngx_int_t                  rc;
    ngx_msec_t                 now;
    ngx_http_hris_rate_t      *rt;
    ngx_http_hris_shm_ctx_t   *ctx = hmcf->shm->data;
    ngx_http_hris_shm_node_t  *n;

    now = ngx_current_msec;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_hris_shm_node(ctx, id, 1);
    if (n == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_ERROR;
    }

    if (n->rate == NULL) {
        n->rate = ngx_http_hris_shm_alloc(ctx, sizeof(ngx_http_hris_rate_t),
                                          n);
        if (n->rate == NULL) {
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            return NGX_ERROR;
        }

        n->rate->calls = 0;
    }

    rt = n->rate;

    if (rt->calls != calls || rt->window != window) {
        /* first use, or the limit changed with a reload: start afresh */
        ngx_memzero(rt, sizeof(ngx_http_hris_rate_t));
        rt->calls = calls;
        rt->window = window;
        rt->width = (window + NGX_HTTP_HRIS_RATE_BUCKETS - 1)
                    / NGX_HTTP_HRIS_RATE_BUCKETS;
        rt->span = (window + rt->width - 1) / rt->width;
        rt->low = now / rt->width;
        rt->low = (rt->low > rt->span) ? rt->low - rt->span : 0;
        rt->last = now - window;
    }

    rc = ngx_http_hris_rate_take(rt, now, max_wait, wait);

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


#define ngx_http_hris_rate_slot(rt, i)                                       \
    (&(rt)->slot[(i) % NGX_HTTP_HRIS_RATE_SLOTS])


/* When the latest call counted in bucket i was made (at the latest). */

static ngx_msec_t
ngx_http_hris_rate_last(ngx_http_hris_rate_t *rt, ngx_uint_t i)
{
    ngx_http_hris_rate_slot_t  *s = ngx_http_hris_rate_slot(rt, i);

    /* an offset that did not fit says "the bucket's end", which is later */
    if (s->last == NGX_MAX_UINT32_VALUE) {
        return (i + 1) * rt->width - 1;
    }

    return i * rt->width + s->last - 1;
}


/*
 * The window as buckets: a call in bucket j has in its window the calls
 * of buckets j - span + 1 .. j (counted whole: never more calls than the
 * provider allows, at the price of waiting up to a bucket longer), and
 * those of bucket j - span made less than a window before it. The call
 * takes the earliest time that keeps every window at "calls" or fewer.
 * Calls are placed in the order they come, so a call placed later never
 * lands before one placed earlier and the count it saw holds.
 */

static ngx_int_t
ngx_http_hris_rate_take(ngx_http_hris_rate_t *rt, ngx_msec_t now,
    ngx_msec_t max_wait, ngx_msec_t *wait)
{
    uint32_t                    last;
    ngx_uint_t                  i, j, k, first, end, in;
    ngx_msec_t                  at, off, free_at;
    ngx_http_hris_rate_slot_t  *s, *old;

    k = now / rt->width;
    first = (k > rt->span) ? k - rt->span : 0;

    /* buckets no window from now on reaches are emptied for reuse */
    for (i = rt->low; i < first && i < rt->low + NGX_HTTP_HRIS_RATE_SLOTS;
         i++)
    {
        s = ngx_http_hris_rate_slot(rt, i);
        s->count = 0;
        s->last = 0;
    }

    if (first > rt->low) {
        rt->low = first;
    }

    end = rt->low + NGX_HTTP_HRIS_RATE_SLOTS;

    in = 0;
    for (i = (k + 1 > rt->span) ? k + 1 - rt->span : 0; i <= k; i++) {
        in += ngx_http_hris_rate_slot(rt, i)->count;
    }

    for (j = k; j < end; j++) {

        if (j != k) {
            in += ngx_http_hris_rate_slot(rt, j)->count;

            if (j >= rt->span) {
                in -= ngx_http_hris_rate_slot(rt, j - rt->span)->count;
            }
        }

        if (in >= rt->calls) {
            continue;
        }

        at = ngx_max(now, j * rt->width);
        old = (j >= rt->span) ? ngx_http_hris_rate_slot(rt, j - rt->span)
                              : NULL;

        if (old && old->count && in + old->count >= rt->calls) {
            /* in this bucket only once the older calls have left */
            free_at = ngx_http_hris_rate_last(rt, j - rt->span) + rt->window;

            if (free_at >= (j + 1) * rt->width) {
                continue;
            }

            at = ngx_max(at, free_at);
        }

        *wait = at - now;

        if (*wait > max_wait) {
            return NGX_BUSY;
        }

        s = ngx_http_hris_rate_slot(rt, j);
        off = at - j * rt->width;

        last = (off < NGX_MAX_UINT32_VALUE - 1) ? (uint32_t) off + 1
                                                : NGX_MAX_UINT32_VALUE;
        s->count++;
        s->last = ngx_max(s->last, last);

        if ((ngx_msec_int_t) (at - rt->last) > 0) {
            rt->last = at;
        }

        return NGX_OK;
    }

    /* not within the window ahead: at least that long */
    *wait = end * rt->width - now;

    return NGX_BUSY;
}

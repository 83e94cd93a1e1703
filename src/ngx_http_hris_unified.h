/*
 * The unified API's request context, shared by ngx_http_hris_unified.c
 * (parsing the request, answering) and ngx_http_hris_walk.c (walking the
 * provider's pages).
 */

#ifndef _NGX_HTTP_HRIS_UNIFIED_H_INCLUDED_
#define _NGX_HTTP_HRIS_UNIFIED_H_INCLUDED_


#include "ngx_http_hris.h"
#include "ngx_http_hris_idem.h"
#include "ngx_http_hris_record.h"


/*
 * The conventions of ngx_http_hris_unified.c and ngx_http_hris_walk.c:
 *
 * - A function that may call out returns NGX_HTTP_HRIS_PENDING while an
 *   upstream call or a wait is under way (the walk finalizes the request
 *   when it ends). Anything else is the rc to finalize the request with:
 *   an HTTP status to answer, or the answer's own rc once it was sent
 *   (ngx_http_hris_send_json(): ngx_http_output_filter's), NGX_AGAIN
 *   included: nginx's writer then sends the rest of a large answer as
 *   the client reads it. The output filters never return NGX_DONE.
 *
 * - A check returns NGX_OK to go on; when it answered instead (an error
 *   sent), it returns that answer's rc, NGX_OK as often as not: callers
 *   go on only on NGX_OK with r->header_sent unset.
 */
#define NGX_HTTP_HRIS_PENDING  NGX_DONE


typedef struct {
    json_t                     *record;
    json_t                     *parent;
    ngx_http_hris_slot_rec_t   *slot;       /* record's, or NULL */
} ngx_http_hris_rec_t;


/* Where a list stands in the provider's data; sealed into next_cursor. */
typedef struct {
    ngx_uint_t                  each;       /* for_each value index */
    ngx_uint_t                  page;       /* offset or page number */
    ngx_uint_t                  size;       /* upstream page size */
    ngx_str_t                   cursor;     /* provider cursor */
    ngx_uint_t                  skip;       /* records already sent */
    unsigned                    started:1;  /* page/size set */
} ngx_http_hris_pos_t;


typedef struct ngx_http_hris_slice_s  ngx_http_hris_slice_t;


typedef struct {
    ngx_http_request_t         *request;
    ngx_http_hris_main_conf_t  *hmcf;
    ngx_http_hris_loc_conf_t   *hlcf;
    ngx_http_hris_account_t    *account;
    ngx_http_hris_resource_t   *res;
    ngx_http_hris_op_t         *op;         /* the upstream operation */
    ngx_http_hris_op_t         *call_op;    /* op of the call in flight */
    ngx_array_t                *fields;
    ngx_http_hris_expr_t       *id_expr;    /* get through the list */

    ngx_str_t                   id;         /* get */
    ngx_uint_t                  limit;
    ngx_uint_t                  remote_data;
    ngx_array_t                 filters;    /* ngx_keyval_t */
    ngx_str_t                   binding;

    ngx_http_hris_gate_t        gate;
    ngx_http_hris_pos_t         pos;
    ngx_http_hris_pos_t         ppos;       /* in the parent list */
    ngx_uint_t                  calls;      /* upstream calls this page */
    ngx_uint_t                  total_calls; /* of this request */
    size_t                      total_bytes; /* provider answers read */
    ngx_array_t                 result;     /* records of this page, or
                                               the get's: json_t **
                                               (record.h), held to the
                                               pool's end */
    json_t                    **found;      /* get: the record */
    ngx_array_t                 values;     /* for_each: ngx_str_t */
    ngx_array_t                 parents;    /* for_each: json_t * */
    ngx_http_hris_spans_t      *spans;      /* provider bytes per object */
    ngx_pool_t                 *heap;       /* trees and spans of the walk
                                               (ngx_http_hris_offload.c) */
    size_t                      heap_bytes; /* answers parsed into it */
    ngx_uint_t                  heap_arena; /* a tree of it is the
                                               arena's: freed here */
    ngx_http_hris_select_t     *select;     /* of a huge answer: what a
                                               thread's parse builds */
    uint64_t                   *cover;      /* field coverage counters,
                                               or NULL (metrics.c) */
    ngx_uint_t                  batch;      /* field batch of the call */
    json_t                     *batched;    /* its first batch's answer */
    ngx_http_hris_slice_t      *slice;      /* a large page's slices, or
                                               NULL (slice.c) */

    ngx_str_t                   name;       /* of the resource */
    ngx_int_t                   write;      /* write_kind_e, or -1: a read */

    unsigned                    is_get:1;
    unsigned                    is_meta:1;  /* GET {resource}/meta */
    unsigned                    has_values:1;
    unsigned                    more:1;     /* pos points at more data */
    unsigned                    release:1;  /* a mapped record must give
                                               its references back */
} ngx_http_hris_ctx_t;


/*
 * A write (ngx_http_hris_write.c): the unified input checked and turned
 * into the provider's values, the call that carries it, and the read of
 * the record afterwards.
 */
typedef struct {
    ngx_http_request_t         *request;
    ngx_http_hris_main_conf_t  *hmcf;
    ngx_http_hris_loc_conf_t   *hlcf;
    ngx_http_hris_account_t    *account;
    ngx_http_hris_resource_t   *res;
    ngx_http_hris_schema_resource_t  *sr;
    ngx_http_hris_write_op_t   *wop;
    ngx_str_t                   id;         /* the record's */
    ngx_uint_t                  remote_data;
    json_t                     *input;      /* the provider's values */
    ngx_array_t                 flat;       /* ngx_keyval_t: {{input.a.b}} */
    json_t                     *sent;       /* the JSON body sent, or NULL */
    ngx_http_hris_gate_t        gate;
    ngx_http_hris_call_t       *call;
    ngx_http_hris_op_t         *op;         /* the read back's, in flight */
    ngx_http_hris_idem_kept_t   kept;       /* an Idempotency-Key's answer */
    unsigned                    reading:1;
} ngx_http_hris_write_t;


/* ngx_http_hris_walk.c */
ngx_int_t ngx_http_hris_walk_start(ngx_http_hris_ctx_t *ctx);
ngx_int_t ngx_http_hris_walk_took(ngx_http_hris_ctx_t *ctx, json_t *body,
    ngx_array_t *recs, ngx_uint_t raw, ngx_uint_t to);
json_t **ngx_http_hris_walk_map(ngx_http_hris_ctx_t *ctx,
    ngx_http_hris_rec_t *e);

/* ngx_http_hris_slice.c */
ngx_int_t ngx_http_hris_slice_map(ngx_http_hris_ctx_t *ctx, json_t *body,
    ngx_array_t *recs, ngx_uint_t raw, ngx_uint_t from, ngx_uint_t to);
ngx_http_hris_json_part_t *ngx_http_hris_slice_part(
    ngx_http_hris_ctx_t *ctx);
void ngx_http_hris_worker_hold(void);
void ngx_http_hris_worker_release(void);

/*
 * ngx_http_hris_offload.c: an answer this large is parsed, and the trees
 * of a request that read that much freed, by a thread (about 1.5 ms of
 * parsing on the event loop at most)
 */
#define NGX_HTTP_HRIS_OFFLOAD_SIZE  (256 * 1024)

ngx_int_t ngx_http_hris_heap_create(ngx_http_hris_ctx_t *ctx);
ngx_int_t ngx_http_hris_offload_parse(ngx_http_hris_ctx_t *ctx,
    ngx_http_hris_call_t *call, ngx_http_hris_spans_t *spans,
    ngx_http_hris_call_handler_pt handler);

/* ngx_http_hris_batch.c */
ngx_array_t *ngx_http_hris_batch_query(ngx_http_hris_ctx_t *ctx,
    ngx_http_hris_op_t *op);
ngx_int_t ngx_http_hris_batch_answer(ngx_http_hris_ctx_t *ctx, json_t **body,
    ngx_uint_t empty);
ngx_int_t ngx_http_hris_batch_merge(ngx_pool_t *pool, ngx_http_hris_op_t *op,
    json_t *into, json_t *from, const char **why, json_t **key);

/* ngx_http_hris_write.c */
ngx_int_t ngx_http_hris_write_handler(ngx_http_hris_ctx_t *ctx,
    ngx_str_t *name, ngx_http_hris_write_kind_e kind);
ngx_int_t ngx_http_hris_meta_handler(ngx_http_hris_ctx_t *ctx,
    ngx_str_t *name);

/* ngx_http_hris_write_input.c */
ngx_int_t ngx_http_hris_write_check(ngx_http_hris_write_t *w, json_t *body);
json_t *ngx_http_hris_write_body(ngx_http_hris_write_t *w,
    ngx_http_hris_body_t *body, ngx_http_hris_tpl_vars_t *vars);
ngx_int_t ngx_http_hris_write_form(ngx_pool_t *pool, json_t *body,
    ngx_str_t *out);
json_t *ngx_http_hris_write_meta(ngx_http_hris_resource_t *res);

/* ngx_http_hris_unified.c */
ngx_int_t ngx_http_hris_unified_finish(ngx_http_hris_ctx_t *ctx);
ngx_int_t ngx_http_hris_not_found(ngx_http_hris_ctx_t *ctx);


#endif /* _NGX_HTTP_HRIS_UNIFIED_H_INCLUDED_ */

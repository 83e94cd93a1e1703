/*
 * A unified record as the list and get paths hold it: not a jansson
 * object but one value per schema field, in the schema's order, then
 * remote_data (NULL without it), written out with keys the schema
 * compiled once (ngx_http_hris_field_t.key). A record of 30 fields built
 * as an object cost 30 hash table insertions, read back by iteration.
 */

#ifndef _NGX_HTTP_HRIS_RECORD_H_INCLUDED_
#define _NGX_HTTP_HRIS_RECORD_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_parse.h"


/*
 * The first records of a list already written, between events, by the
 * slices of a large page (ngx_http_hris_slice.c): "[" and n records.
 */
typedef struct {
    ngx_chain_t                 *out;
    ngx_chain_t                **last;
    ngx_buf_t                   *b;           /* the last, maybe not full */
    size_t                       total;
    ngx_uint_t                   n;
} ngx_http_hris_json_part_t;


/*
 * The records of an answer, written where the answer's body holds the
 * node "at": a JSON array of them, or the first one alone ("single").
 */
typedef struct {
    json_t                      *at;
    ngx_array_t                 *fields;      /* ngx_http_hris_field_t */
    json_t                    ***records;
    ngx_uint_t                   n;
    ngx_uint_t                   single;
    ngx_http_hris_json_part_t   *part;        /* records written, or NULL */
} ngx_http_hris_records_t;


/* ngx_http_hris_schema.c */
json_t **ngx_http_hris_record_values(ngx_pool_t *pool, ngx_array_t *fields,
    json_t *record, json_t *parent, ngx_http_hris_slot_rec_t *slot,
    ngx_uint_t remote_data, uint64_t *cover, ngx_uint_t *arena_only);
void ngx_http_hris_record_release(ngx_array_t *fields, json_t **values);

/* ngx_http_hris_json.c */
ngx_int_t ngx_http_hris_json_key(ngx_pool_t *pool, ngx_str_t *name,
    ngx_str_t *key);
ngx_int_t ngx_http_hris_json_write_records(ngx_pool_t *pool, json_t *v,
    ngx_http_hris_spans_t *spans, ngx_http_hris_records_t *recs,
    ngx_chain_t **out, size_t *len);
ngx_int_t ngx_http_hris_json_write_part(ngx_pool_t *pool,
    ngx_http_hris_spans_t *spans, ngx_array_t *fields, json_t **values,
    ngx_http_hris_json_part_t *part);

/* ngx_http_hris_response.c */
ngx_int_t ngx_http_hris_send_records(ngx_http_request_t *r,
    ngx_uint_t status, json_t *body, ngx_http_hris_spans_t *spans,
    ngx_http_hris_records_t *recs);


#endif /* _NGX_HTTP_HRIS_RECORD_H_INCLUDED_ */

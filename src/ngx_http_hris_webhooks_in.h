/*
 * Provider webhooks in (CONTRACT section 8): a mapping table's "webhooks"
 * section, compiled (ngx_http_hris_table_webhooks.c), and the location
 * that receives them (ngx_http_hris_webhooks_in.c, "hris_webhooks").
 *
 * Everything provider-specific is the table's: how a request is verified
 * (an HMAC over parts of the request, or a token in a header, the path or
 * the query, compared with a credential of the account), where the events
 * are in the body, their names, and where each one's record id and
 * changed fields are. See mappings/README.md, "webhooks".
 */

#ifndef _NGX_HTTP_HRIS_WEBHOOKS_IN_H_INCLUDED_
#define _NGX_HTTP_HRIS_WEBHOOKS_IN_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_map.h"


typedef enum {
    NGX_HTTP_HRIS_WH_HMAC = 0,        /* a signature header */
    NGX_HTTP_HRIS_WH_TOKEN            /* a shared token */
} ngx_http_hris_wh_verify_e;


typedef enum {
    NGX_HTTP_HRIS_WH_IN_HEADER = 0,
    NGX_HTTP_HRIS_WH_IN_PATH,         /* /webhooks/{id}/{token} */
    NGX_HTTP_HRIS_WH_IN_QUERY
} ngx_http_hris_wh_in_e;


/* A part of the signed text: the raw body, or a header's value. */
typedef struct {
    ngx_str_t                    header;      /* empty: the body */
} ngx_http_hris_wh_part_t;


/* What a provider's event name becomes. */
typedef struct {
    ngx_str_t                    name;        /* the provider's */
    const char                  *type;        /* "record.updated", ... */
    ngx_str_t                    resource;    /* unified, null-terminated */
    ngx_http_hris_path_t        *id;          /* or the section's */
    ngx_http_hris_path_t        *changed;     /* or the section's, or NULL */
} ngx_http_hris_wh_event_t;


typedef struct {
    ngx_http_hris_wh_verify_e    verify;
    ngx_http_hris_wh_in_e        in;          /* for a token */
    ngx_str_t                    credential;  /* the account's, by name */
    ngx_str_t                    name;        /* header or query argument */
    ngx_str_t                    prefix;      /* before a header's token */
    ngx_array_t                  parts;       /* ngx_http_hris_wh_part_t */
    ngx_str_t                    timestamp;   /* header, or empty */
    time_t                       tolerance;   /* seconds, either way */

    ngx_http_hris_path_t        *events;      /* the array, or NULL: one */
    ngx_http_hris_path_t         event;       /* the event's name */
    ngx_http_hris_path_t        *event_id;    /* the provider's, or NULL */
    ngx_http_hris_path_t        *id;          /* the record's, default */
    ngx_http_hris_path_t        *changed;     /* changed fields, default */
    json_t                      *fields;      /* provider name -> unified */
    ngx_array_t                  map;         /* ngx_http_hris_wh_event_t */
} ngx_http_hris_webhooks_t;


/* webhooks_in.c */
ngx_int_t ngx_http_hris_webhooks_conf(ngx_conf_t *cf);

/* webhooks_verify.c: NULL when the request verifies, or what failed */
const char *ngx_http_hris_webhooks_verify(ngx_http_request_t *r,
    ngx_http_hris_webhooks_t *wh, ngx_str_t *token, ngx_str_t *secret,
    ngx_str_t *body);
ngx_str_t *ngx_http_hris_webhooks_header(ngx_http_request_t *r,
    ngx_str_t *name);
ngx_int_t ngx_http_hris_webhooks_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_HRIS_WEBHOOKS_IN_H_INCLUDED_ */

/*
 * The connect flow's pieces (ngx_http_hris_connect.c: the link opened,
 * the OAuth2 redirect and callback; ngx_http_hris_connect_link.c: links
 * made for the administration API; ngx_http_hris_connect_form.c: the
 * API-key form).
 */

#ifndef _NGX_HTTP_HRIS_CONNECT_H_INCLUDED_
#define _NGX_HTTP_HRIS_CONNECT_H_INCLUDED_


#include "ngx_http_hris.h"


/*
 * A link's JSON, sealed like a cursor: "t" tenant, "a" account id, "p"
 * provider, "r" redirect_uri, "m" method, "e" expiry (epoch seconds),
 * "n" a random nonce (two links never look alike), and when given "c"
 * context, "b" base_url, "u" token_url. A link completes once: the
 * shared zone remembers the hash of the used ones until they expire.
 */
typedef struct {
    json_t                      *json;
    u_char                       hash[NGX_HTTP_HRIS_LINK_HASH];
    time_t                       expires;
    ngx_str_t                    tenant;
    ngx_str_t                    id;
    ngx_str_t                    redirect;
    ngx_str_t                    method;
    ngx_http_hris_table_t       *table;
    ngx_http_hris_oauth_app_t   *app;
} ngx_http_hris_link_t;


typedef struct {
    ngx_http_hris_link_t         link;
    ngx_str_t                    redirect_uri;  /* ours, for the provider */
} ngx_http_hris_connect_ctx_t;


extern ngx_str_t  ngx_http_hris_link_binding;


ngx_int_t ngx_http_hris_connect_base(ngx_http_request_t *r,
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *base);
ngx_int_t ngx_http_hris_link_context(ngx_http_request_t *r,
    ngx_http_hris_link_t *link, ngx_array_t *context);
ngx_int_t ngx_http_hris_connect_store(ngx_http_request_t *r,
    ngx_http_hris_link_t *link, json_t *account);
ngx_int_t ngx_http_hris_query_add(ngx_pool_t *pool, ngx_str_t *url,
    const char *name, ngx_str_t *value);
ngx_int_t ngx_http_hris_connect_form(ngx_http_request_t *r,
    ngx_http_hris_link_t *link);
void ngx_http_hris_connect_posted(ngx_http_request_t *r);


#endif /* _NGX_HTTP_HRIS_CONNECT_H_INCLUDED_ */

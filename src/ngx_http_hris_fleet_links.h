/*
 * Connect-link use and credential cool-downs for a fleet (hris_redis):
 * see ngx_http_hris_fleet_links.c.
 */

#ifndef _NGX_HTTP_HRIS_FLEET_LINKS_H_INCLUDED_
#define _NGX_HTTP_HRIS_FLEET_LINKS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"


/*
 * What the store said of a link: NGX_OK (claimed by this request, or not
 * used when only asked), NGX_DECLINED (used already), NGX_ABORT (the store
 * could not answer).
 */
typedef void (*ngx_http_hris_fleet_link_pt)(ngx_http_request_t *r,
    void *data, ngx_int_t rc);


ngx_int_t ngx_http_hris_fleet_link_claim(ngx_http_request_t *r,
    u_char *hash, time_t expires, ngx_http_hris_fleet_link_pt handler,
    void *data);
ngx_int_t ngx_http_hris_fleet_link_check(ngx_http_request_t *r,
    u_char *hash, time_t expires, ngx_http_handler_pt resume);
void ngx_http_hris_fleet_link_release(ngx_http_hris_main_conf_t *hmcf,
    u_char *hash);

ngx_int_t ngx_http_hris_fleet_cooldown_init_process(ngx_cycle_t *cycle,
    ngx_http_hris_main_conf_t *hmcf);
void ngx_http_hris_fleet_cooldown_publish(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id, u_char *creds, time_t until, ngx_uint_t status);

ngx_str_t *ngx_http_hris_fleet_store_name(ngx_http_hris_main_conf_t *hmcf);


#endif /* _NGX_HTTP_HRIS_FLEET_LINKS_H_INCLUDED_ */

/*
 * The state interface's calls that choose their backend here (see
 * ngx_http_hris_state_if.h for the map of every operation).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_state_if.h"


ngx_int_t
ngx_http_hris_state_link_claim(ngx_http_request_t *r, u_char *hash,
    time_t expires, ngx_http_hris_fleet_link_pt handler, void *data)
{
    ngx_http_hris_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hris_module);

    if (hmcf->redis) {
        return ngx_http_hris_fleet_link_claim(r, hash, expires, handler,
                                              data);
    }

    return ngx_http_hris_link_claim(hmcf, hash, expires);
}


void
ngx_http_hris_state_link_release(ngx_http_hris_main_conf_t *hmcf,
    u_char *hash)
{
    ngx_http_hris_link_release(hmcf, hash);

    if (hmcf->redis) {
        ngx_http_hris_fleet_link_release(hmcf, hash);
    }
}


ngx_int_t
ngx_http_hris_state_cooldown_set(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id, u_char *creds, time_t until, ngx_uint_t status)
{
    ngx_int_t  rc;

    /* what the zone says (NGX_OK, or any other success it tells) */
    rc = ngx_http_hris_creds_refuse(hmcf, id, creds, until, status);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (hmcf->redis) {
        ngx_http_hris_fleet_cooldown_publish(hmcf, id, creds, until, status);
    }

    return rc;
}

/*
 * Idempotency keys of writes (CONTRACT.md §7): the first answer to a key
 * is kept 24 hours per tenant, account and key, and answered again to
 * the same request; another request with the key is refused.
 *
 * The interface is narrow on purpose: the store behind it (a shared
 * memory zone of its own plus a file in the state directory, for now)
 * can move behind the state interface (Redis for a fleet) unchanged.
 *
 *   ngx_http_hris_idem_key()      the request's Idempotency-Key, checked
 *   ngx_http_hris_idem_begin()    claims the key for this request, or says
 *                                 what the key already stands for
 *   ngx_http_hris_idem_keep()     whether the request's answer is kept: yes
 *                                 once its write may reach the provider, no
 *                                 again when it certainly did not
 *   ngx_http_hris_idem_answer()   the request answers (called as it sends,
 *                                 by ngx_http_hris_send_json()): the answer
 *                                 is kept, or the key let go
 *   ngx_http_hris_idem_finish()   keeps an answer for the key
 *   ngx_http_hris_idem_abandon()  lets the key go: nothing was written
 *
 * A request that ends without answering lets its key go, unless its write
 * went out: then "504, outcome unknown" is kept.
 */

#ifndef _NGX_HTTP_HRIS_IDEM_H_INCLUDED_
#define _NGX_HTTP_HRIS_IDEM_H_INCLUDED_


#include "ngx_http_hris.h"


#define NGX_HTTP_HRIS_IDEM_TTL  86400           /* seconds a key is kept */


typedef struct {
    ngx_uint_t                   status;
    ngx_str_t                    body;        /* in the request's pool */
} ngx_http_hris_idem_kept_t;


/*
 * With hris_redis, the claim is asked of Redis: the handler gets what
 * ngx_http_hris_idem_begin() returns, or NGX_ABORT when the store could
 * not answer.
 */
typedef void (*ngx_http_hris_idem_begun_pt)(void *data, ngx_int_t rc);

/* NGX_OK (key->len 0: none), or the rc of the 400 answered */
ngx_int_t ngx_http_hris_idem_key(ngx_http_request_t *r, ngx_str_t *key);

/* ngx_http_hris_idem_begin(): no room for one more key in the zone */
#define NGX_HTTP_HRIS_IDEM_FULL  NGX_HTTP_INSUFFICIENT_STORAGE

/*
 * The key of this tenant and account, for this method, path, query and
 * body. NGX_OK: claimed by this request. NGX_DONE: an answer is kept,
 * *kept holds it. NGX_BUSY: the first request is still running.
 * NGX_DECLINED: the key was used for another request.
 * NGX_HTTP_HRIS_IDEM_FULL: no room. (Callers go through
 * ngx_http_hris_state_idem_begin(), which chooses the store.)
 */
ngx_int_t ngx_http_hris_idem_begin(ngx_http_request_t *r, ngx_str_t *tenant,
    ngx_str_t *account, ngx_str_t *key, ngx_str_t *body,
    ngx_http_hris_idem_kept_t *kept);
ngx_int_t ngx_http_hris_idem_begin_fleet(ngx_http_request_t *r,
    ngx_str_t *tenant, ngx_str_t *account, ngx_str_t *key, ngx_str_t *body,
    ngx_http_hris_idem_kept_t *kept, ngx_http_hris_idem_begun_pt handler,
    void *data);
void ngx_http_hris_idem_keep(ngx_http_request_t *r, ngx_uint_t keep);
void ngx_http_hris_idem_answer(ngx_http_request_t *r, ngx_uint_t status,
    ngx_chain_t *out, size_t len);
ngx_int_t ngx_http_hris_idem_finish(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body);
void ngx_http_hris_idem_abandon(ngx_http_request_t *r);

/* configuration: the zone and the file (hris_idempotency_zone_size) */
ngx_int_t ngx_http_hris_idem_init_conf(ngx_conf_t *cf,
    ngx_http_hris_main_conf_t *hmcf);


#endif /* _NGX_HTTP_HRIS_IDEM_H_INCLUDED_ */

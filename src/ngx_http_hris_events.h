/*
 * Events (CONTRACT section 8): what happened to an account or a record,
 * told to the subscriptions of the account's tenant.
 *
 * Producers call ngx_http_hris_event_emit() where the change happens (the
 * administration API, the connect flow, a refused refresh, a provider's
 * webhook). The call never waits: the event is queued in the state (the
 * shared zone and its spool file, or Redis) and delivered later by the
 * workers' delivery timers, at least once.
 */

#ifndef _NGX_HTTP_HRIS_EVENTS_H_INCLUDED_
#define _NGX_HTTP_HRIS_EVENTS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>

#include "ngx_http_hris.h"


/*
 * type: "integrated_account.created", "record.updated", ...
 * data: the event's data object; the call takes the reference (it is
 * decref'd whatever happens). A failure to queue is logged, not returned:
 * the change that caused the event has happened already.
 */
void ngx_http_hris_event_emit(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *tenant, const char *type, json_t *data, ngx_log_t *log);

/*
 * The administration API's webhooks (rest: "webhooks" or "webhooks/{id}"
 * below the hris_admin location), for the tenant of the request's key.
 */
ngx_int_t ngx_http_hris_webhooks_admin(ngx_http_request_t *r,
    ngx_str_t *tenant, ngx_str_t *rest);


#endif /* _NGX_HTTP_HRIS_EVENTS_H_INCLUDED_ */

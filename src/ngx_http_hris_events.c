/*
 * Events: queued for the tenant's subscriptions (see events.h).
 *
 * For now an event is only said in the error log at the "info" level,
 * with its type and account: the queue and its delivery come next.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_events.h"


void
ngx_http_hris_event_emit(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *tenant,
    const char *type, json_t *data, ngx_log_t *log)
{
    const char  *id, *resource, *rid;

    id = json_string_value(json_object_get(data, "integrated_account_id"));
    resource = json_string_value(json_object_get(data, "resource"));
    rid = json_string_value(json_object_get(data, "id"));

    ngx_log_error(NGX_LOG_INFO, log, 0, "hris event %s for tenant \"%V\", "
                  "account \"%s\"%s%s%s%s", type, tenant, id ? id : "",
                  resource ? ", " : "", resource ? resource : "",
                  rid ? " " : "", rid ? rid : "");

    json_decref(data);
}

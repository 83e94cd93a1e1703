/*
 * Mapping overrides, Truto's three levels: the provider's table, then the
 * environment's overrides (hris_mapping_overrides, keyed by provider),
 * then an account's own "overrides". Each override names a key of the
 * table with a dotted path and replaces it whole (null removes it):
 *
 *     {"resources.employees.fields.custom_fields":
 *         {"object": {"shirt": "/attributes/dynamic_1203344/value"}}}
 *
 * They apply to the table's JSON before it is compiled, so an override is
 * checked as strictly as the table itself.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"


ngx_int_t
ngx_http_hris_overrides_load(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf)
{
    json_t        *v;
    const char    *key;
    json_error_t   jerr;

    if (hmcf->overrides_file.len == 0) {
        return NGX_OK;
    }

    if (ngx_conf_full_name(cf->cycle, &hmcf->overrides_file, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    hmcf->overrides = json_load_file((char *) hmcf->overrides_file.data, 0,
                                     &jerr);
    if (hmcf->overrides == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: %V: line %d: %s",
                           &hmcf->overrides_file, jerr.line, jerr.text);
        return NGX_ERROR;
    }

    if (ngx_http_hris_json_cleanup(cf->pool, hmcf->overrides) != NGX_OK) {
        json_decref(hmcf->overrides);
        return NGX_ERROR;
    }

    if (!json_is_object(hmcf->overrides)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: %V: must be an object "
                           "of providers", &hmcf->overrides_file);
        return NGX_ERROR;
    }

    json_object_foreach(hmcf->overrides, key, v) {
        if (!json_is_object(v)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: %V: \"%s\" must "
                               "be an object of overrides",
                               &hmcf->overrides_file, key);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * Applies {"dotted.key": value, ...} to root. Missing objects on the way
 * are created; a non-object on the way is an error naming the key.
 */

ngx_int_t
ngx_http_hris_overrides_apply(ngx_conf_t *cf, json_t *root, json_t *ov,
    ngx_str_t *what)
{
    json_t      *node, *next, *v;
    size_t       len;
    const char  *key, *p, *dot;
    char         part[256];

    if (ov == NULL) {
        return NGX_OK;
    }

    if (!json_is_object(ov)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: %V: overrides must be "
                           "an object of \"dotted.key\": value", what);
        return NGX_ERROR;
    }

    json_object_foreach(ov, key, v) {
        node = root;
        p = key;

        for ( ;; ) {
            dot = ngx_strchr(p, '.');
            len = dot ? (size_t) (dot - p) : ngx_strlen(p);

            if (len == 0 || len >= sizeof(part) || !json_is_object(node)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: %V: override "
                                   "\"%s\" does not name a key of the "
                                   "mapping table", what, key);
                return NGX_ERROR;
            }

            ngx_memcpy(part, p, len);
            part[len] = '\0';

            if (dot == NULL) {
                break;
            }

            next = json_object_get(node, part);
            if (next == NULL) {
                next = json_object();
                if (next == NULL || json_object_set_new(node, part, next)) {
                    return NGX_ERROR;
                }
            }

            node = next;
            p = dot + 1;
        }

        if (json_is_null(v)) {
            json_object_del(node, part);

        } else if (json_object_set_new(node, part, json_deep_copy(v)) != 0) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}

/*
 * Compiling "webhooks": how a provider's webhook requests are verified
 * and what their events become (ngx_http_hris_webhooks.h). The generic
 * mechanisms are here; which one a provider uses, its header names, event
 * names and where ids are, are the table's (mappings/README.md).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_table_int.h"
#include "ngx_http_hris_webhooks_in.h"


#define NGX_HTTP_HRIS_WH_NAME_MAX     128
#define NGX_HTTP_HRIS_WH_TOLERANCE    86400


static ngx_int_t ngx_http_hris_wh_verify(ngx_http_hris_tc_t *tc,
    json_t *js, ngx_http_hris_webhooks_t *wh);
static ngx_int_t ngx_http_hris_wh_parts(ngx_http_hris_tc_t *tc, json_t *js,
    ngx_http_hris_webhooks_t *wh);
static ngx_int_t ngx_http_hris_wh_map(ngx_http_hris_tc_t *tc, json_t *js,
    ngx_http_hris_webhooks_t *wh);
static ngx_int_t ngx_http_hris_wh_word(ngx_http_hris_tc_t *tc, json_t *js,
    const char *where, const char *allowed, ngx_str_t *out);
static ngx_int_t ngx_http_hris_wh_path(ngx_http_hris_tc_t *tc, json_t *js,
    const char *where, ngx_http_hris_path_t **path);


static const char  *ngx_http_hris_wh_keys[] = {
    "description", "verify", "events", "event", "event_id", "id",
    "changed_fields", "fields", "map", NULL
};

static const char  *ngx_http_hris_wh_verify_keys[] = {
    "type", "algorithm", "credential", "header", "encoding", "signed",
    "timestamp", "tolerance", "in", "name", "prefix", NULL
};

static const char  *ngx_http_hris_wh_event_keys[] = {
    "resource", "action", "id", "changed_fields", NULL
};

/* what an action becomes; the index is the action's */
static const char  *ngx_http_hris_wh_actions[] = {
    "created", "updated", "deleted", NULL
};

static const char  *ngx_http_hris_wh_types[] = {
    "record.created", "record.updated", "record.deleted"
};

/* characters of an HTTP header name (RFC 9110 token) */
#define NGX_HTTP_HRIS_WH_HEADER                                              \
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"         \
    "!#$%&'*+-.^_`|~"

#define NGX_HTTP_HRIS_WH_CREDENTIAL                                          \
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"


ngx_int_t
ngx_http_hris_webhooks_compile(ngx_http_hris_tc_t *tc, json_t *js)
{
    json_t                    *v;
    ngx_http_hris_webhooks_t  *wh;

    tc->table->webhooks = NULL;

    if (js == NULL) {
        return NGX_OK;
    }

    if (!json_is_object(js)) {
        ngx_http_hris_tc_error(tc, "webhooks", "must be an object");
        return NGX_ERROR;
    }

    if (ngx_http_hris_tc_keys(tc, js, "webhooks", ngx_http_hris_wh_keys)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    wh = ngx_pcalloc(tc->cf->pool, sizeof(ngx_http_hris_webhooks_t));
    if (wh == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_hris_wh_verify(tc, json_object_get(js, "verify"), wh)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    v = json_object_get(js, "event");
    if (v == NULL) {
        ngx_http_hris_tc_error(tc, "webhooks.event", "is required: the JSON "
                               "pointer to an event's name");
        return NGX_ERROR;
    }

    if (ngx_http_hris_tc_path(tc, v, "webhooks.event", &wh->event) != NGX_OK
        || ngx_http_hris_wh_path(tc, json_object_get(js, "events"),
                                 "webhooks.events", &wh->events)
           != NGX_OK
        || ngx_http_hris_wh_path(tc, json_object_get(js, "event_id"),
                                 "webhooks.event_id", &wh->event_id)
           != NGX_OK
        || ngx_http_hris_wh_path(tc, json_object_get(js, "id"),
                                 "webhooks.id", &wh->id)
           != NGX_OK
        || ngx_http_hris_wh_path(tc, json_object_get(js, "changed_fields"),
                                 "webhooks.changed_fields", &wh->changed)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    v = json_object_get(js, "fields");
    if (v) {
        const char  *key;
        json_t      *name;

        if (!json_is_object(v)) {
            ngx_http_hris_tc_error(tc, "webhooks.fields", "must be an object "
                                   "of provider field name: unified name");
            return NGX_ERROR;
        }

        json_object_foreach(v, key, name) {
            if (!json_is_string(name)) {
                ngx_http_hris_tc_error(tc, "webhooks.fields", "\"%s\" must "
                                       "name a unified field (a string)",
                                       key);
                return NGX_ERROR;
            }
        }

        /* the table's JSON lives as long as the configuration */
        wh->fields = v;
    }

    if (ngx_http_hris_wh_map(tc, json_object_get(js, "map"), wh) != NGX_OK) {
        return NGX_ERROR;
    }

    tc->table->webhooks = wh;

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_wh_verify(ngx_http_hris_tc_t *tc, json_t *js,
    ngx_http_hris_webhooks_t *wh)
{
    json_t     *v;
    ngx_str_t   type, word, in;

    if (!json_is_object(js)) {
        ngx_http_hris_tc_error(tc, "webhooks.verify", "is required: an "
                               "object saying how a request is verified "
                               "(\"type\": \"hmac\" or \"token\")");
        return NGX_ERROR;
    }

    if (ngx_http_hris_tc_keys(tc, js, "webhooks.verify",
                              ngx_http_hris_wh_verify_keys)
        != NGX_OK
        || ngx_http_hris_wh_word(tc, json_object_get(js, "type"),
                                 "webhooks.verify.type", NULL, &type)
           != NGX_OK
        || ngx_http_hris_wh_word(tc, json_object_get(js, "credential"),
                                 "webhooks.verify.credential",
                                 NGX_HTTP_HRIS_WH_CREDENTIAL,
                                 &wh->credential)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_strcmp(type.data, "token") == 0) {
        wh->verify = NGX_HTTP_HRIS_WH_TOKEN;

        in.data = (u_char *) "header";
        in.len = 6;

        if (json_object_get(js, "in")
            && ngx_http_hris_wh_word(tc, json_object_get(js, "in"),
                                     "webhooks.verify.in", NULL, &in)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_strcmp(in.data, "path") == 0) {
            wh->in = NGX_HTTP_HRIS_WH_IN_PATH;
            return NGX_OK;
        }

        if (ngx_strcmp(in.data, "header") == 0) {
            wh->in = NGX_HTTP_HRIS_WH_IN_HEADER;

        } else if (ngx_strcmp(in.data, "query") == 0) {
            wh->in = NGX_HTTP_HRIS_WH_IN_QUERY;

        } else {
            ngx_http_hris_tc_error(tc, "webhooks.verify.in", "must be "
                                   "\"header\", \"query\" or \"path\"");
            return NGX_ERROR;
        }

        if (ngx_http_hris_wh_word(tc, json_object_get(js, "name"),
                                  "webhooks.verify.name",
                                  NGX_HTTP_HRIS_WH_HEADER, &wh->name)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        v = json_object_get(js, "prefix");
        if (v && (!json_is_string(v)
                  || ngx_http_hris_tc_str(tc->cf->pool, json_string_value(v),
                                          json_string_length(v), &wh->prefix)
                     != NGX_OK))
        {
            ngx_http_hris_tc_error(tc, "webhooks.verify.prefix", "must be a "
                                   "string (e.g. \"Bearer \")");
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (ngx_strcmp(type.data, "hmac") != 0) {
        ngx_http_hris_tc_error(tc, "webhooks.verify.type", "must be "
                               "\"hmac\" or \"token\"");
        return NGX_ERROR;
    }

    wh->verify = NGX_HTTP_HRIS_WH_HMAC;

    /* the one algorithm and encoding the tables need; others can come */
    if (ngx_http_hris_wh_word(tc, json_object_get(js, "algorithm"),
                              "webhooks.verify.algorithm", NULL, &word)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_strcmp(word.data, "sha256") != 0) {
        ngx_http_hris_tc_error(tc, "webhooks.verify.algorithm", "must be "
                               "\"sha256\"");
        return NGX_ERROR;
    }

    if (ngx_http_hris_wh_word(tc, json_object_get(js, "encoding"),
                              "webhooks.verify.encoding", NULL, &word)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_strcmp(word.data, "hex") != 0) {
        ngx_http_hris_tc_error(tc, "webhooks.verify.encoding", "must be "
                               "\"hex\"");
        return NGX_ERROR;
    }

    if (ngx_http_hris_wh_word(tc, json_object_get(js, "header"),
                              "webhooks.verify.header",
                              NGX_HTTP_HRIS_WH_HEADER, &wh->name)
        != NGX_OK
        || ngx_http_hris_wh_parts(tc, json_object_get(js, "signed"), wh)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    v = json_object_get(js, "timestamp");
    if (v == NULL) {
        return NGX_OK;
    }

    if (ngx_http_hris_wh_word(tc, v, "webhooks.verify.timestamp",
                              NGX_HTTP_HRIS_WH_HEADER, &wh->timestamp)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    v = json_object_get(js, "tolerance");
    if (!json_is_integer(v) || json_integer_value(v) < 1
        || json_integer_value(v) > NGX_HTTP_HRIS_WH_TOLERANCE)
    {
        ngx_http_hris_tc_error(tc, "webhooks.verify.tolerance", "must be "
                               "the seconds a timestamp may be off, 1 to "
                               "%d", NGX_HTTP_HRIS_WH_TOLERANCE);
        return NGX_ERROR;
    }

    wh->tolerance = (time_t) json_integer_value(v);

    return NGX_OK;
}


/* "signed": ["body", "header:X-Timestamp", ...]: concatenated, no separator */

static ngx_int_t
ngx_http_hris_wh_parts(ngx_http_hris_tc_t *tc, json_t *js,
    ngx_http_hris_webhooks_t *wh)
{
    size_t                    i, len;
    json_t                   *v;
    const char               *s;
    ngx_http_hris_wh_part_t  *part;

    if (!json_is_array(js) || json_array_size(js) == 0
        || json_array_size(js) > 8)
    {
        ngx_http_hris_tc_error(tc, "webhooks.verify.signed", "must be an "
                               "array of 1 to 8 parts: \"body\" or "
                               "\"header:<name>\"");
        return NGX_ERROR;
    }

    if (ngx_array_init(&wh->parts, tc->cf->pool, json_array_size(js),
                       sizeof(ngx_http_hris_wh_part_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    json_array_foreach(js, i, v) {
        part = ngx_array_push(&wh->parts);
        if (part == NULL) {
            return NGX_ERROR;
        }

        ngx_str_null(&part->header);

        s = json_string_value(v);
        len = json_string_length(v);

        if (s && len == 4 && ngx_strcmp(s, "body") == 0) {
            continue;
        }

        if (s && len > 7 && len <= 7 + NGX_HTTP_HRIS_WH_NAME_MAX
            && ngx_strncmp(s, "header:", 7) == 0
            && strspn(s + 7, NGX_HTTP_HRIS_WH_HEADER) == len - 7)
        {
            if (ngx_http_hris_tc_str(tc->cf->pool, s + 7, len - 7,
                                     &part->header)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        ngx_http_hris_tc_error(tc, "webhooks.verify.signed", "part %uz must "
                               "be \"body\" or \"header:<name>\"", i);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* "map": {"<provider's event name>": {"resource", "action", ...}} */

static ngx_int_t
ngx_http_hris_wh_map(ngx_http_hris_tc_t *tc, json_t *js,
    ngx_http_hris_webhooks_t *wh)
{
    json_t                    *v;
    ngx_int_t                  idx;
    ngx_str_t                  word;
    ngx_uint_t                 a;
    const char                *key;
    ngx_http_hris_wh_event_t  *ev;
    ngx_http_hris_schema_resource_t  *sr;

    if (!json_is_object(js) || json_object_size(js) == 0) {
        ngx_http_hris_tc_error(tc, "webhooks.map", "must be an object of "
                               "event name: {\"resource\", \"action\"}");
        return NGX_ERROR;
    }

    if (ngx_array_init(&wh->map, tc->cf->pool, json_object_size(js),
                       sizeof(ngx_http_hris_wh_event_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sr = tc->hmcf->schema.elts;

    json_object_foreach(js, key, v) {
        ngx_snprintf((u_char *) tc->where, sizeof(tc->where) - 1,
                     "webhooks.map.%s%Z", key);
        tc->where[sizeof(tc->where) - 1] = '\0';

        ev = ngx_array_push(&wh->map);
        if (ev == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(ev, sizeof(ngx_http_hris_wh_event_t));

        if (!json_is_object(v)
            || ngx_http_hris_tc_keys(tc, v, tc->where,
                                     ngx_http_hris_wh_event_keys)
               != NGX_OK
            || ngx_http_hris_tc_str(tc->cf->pool, key, ngx_strlen(key),
                                    &ev->name)
               != NGX_OK
            || ngx_http_hris_wh_word(tc, json_object_get(v, "resource"),
                                     tc->where, NULL, &ev->resource)
               != NGX_OK
            || ngx_http_hris_wh_word(tc, json_object_get(v, "action"),
                                     tc->where, NULL, &word)
               != NGX_OK)
        {
            if (!json_is_object(v)) {
                ngx_http_hris_tc_error(tc, tc->where, "must be an object "
                                       "with \"resource\" and \"action\"");
            }

            return NGX_ERROR;
        }

        idx = ngx_http_hris_schema_index(tc->hmcf, &ev->resource);
        if (idx == NGX_ERROR) {
            ngx_http_hris_tc_error(tc, tc->where, "unknown resource \"%V\" "
                                   "(mappings/schema.json lists the unified "
                                   "resources)", &ev->resource);
            return NGX_ERROR;
        }

        ev->resource = sr[idx].name;

        for (a = 0; ngx_http_hris_wh_actions[a]; a++) {
            if (ngx_strcmp(word.data, ngx_http_hris_wh_actions[a]) == 0) {
                break;
            }
        }

        if (ngx_http_hris_wh_actions[a] == NULL) {
            ngx_http_hris_tc_error(tc, tc->where, "action must be "
                                   "\"created\", \"updated\" or "
                                   "\"deleted\"");
            return NGX_ERROR;
        }

        ev->type = ngx_http_hris_wh_types[a];
        ev->id = wh->id;
        ev->changed = wh->changed;

        if ((json_object_get(v, "id")
             && ngx_http_hris_wh_path(tc, json_object_get(v, "id"),
                                      tc->where, &ev->id)
                != NGX_OK)
            || (json_object_get(v, "changed_fields")
                && ngx_http_hris_wh_path(tc,
                                         json_object_get(v, "changed_fields"),
                                         tc->where, &ev->changed)
                   != NGX_OK))
        {
            return NGX_ERROR;
        }

        if (ev->id == NULL) {
            ngx_http_hris_tc_error(tc, tc->where, "says nowhere where the "
                                   "record id is: give \"id\" here or in "
                                   "webhooks");
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* A short string: of the allowed characters, or of printable ASCII. */

static ngx_int_t
ngx_http_hris_wh_word(ngx_http_hris_tc_t *tc, json_t *js, const char *where,
    const char *allowed, ngx_str_t *out)
{
    size_t       len, i;
    const char  *s;

    s = json_string_value(js);
    len = json_string_length(js);

    if (s == NULL || len == 0 || len > NGX_HTTP_HRIS_WH_NAME_MAX) {
        ngx_http_hris_tc_error(tc, where, "must be a string of 1 to %d "
                               "characters", NGX_HTTP_HRIS_WH_NAME_MAX);
        return NGX_ERROR;
    }

    for (i = 0; i < len; i++) {
        if (s[i] == '\0'
            || (allowed ? strchr(allowed, s[i]) == NULL
                        : (s[i] < 0x21 || s[i] > 0x7e)))
        {
            ngx_http_hris_tc_error(tc, where, "\"%s\" has a character it "
                                   "may not have", s);
            return NGX_ERROR;
        }
    }

    return ngx_http_hris_tc_str(tc->cf->pool, s, len, out);
}


/* An optional JSON pointer: *path stays as it is when js is NULL. */

static ngx_int_t
ngx_http_hris_wh_path(ngx_http_hris_tc_t *tc, json_t *js, const char *where,
    ngx_http_hris_path_t **path)
{
    if (js == NULL) {
        return NGX_OK;
    }

    *path = ngx_palloc(tc->cf->pool, sizeof(ngx_http_hris_path_t));
    if (*path == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_hris_tc_path(tc, js, where, *path) != NGX_OK) {
        return NGX_ERROR;
    }

    if ((*path)->parent) {
        ngx_http_hris_tc_error(tc, where, "\"$parent\" means nothing in a "
                               "webhook");
        return NGX_ERROR;
    }

    return NGX_OK;
}

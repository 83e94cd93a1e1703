/*
 * A write's input: the client's JSON object of unified fields, checked
 * against what the table's write operation takes (every error a 400 that
 * names the field, before any upstream call), then turned into the
 * provider's values (enumerations mapped back, dates in the provider's
 * format, ids as the provider types them) and put into the request body.
 * Also what a resource's writes take, for GET .../meta.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_unified.h"


static ngx_int_t ngx_http_hris_write_value(ngx_http_hris_write_t *w,
    ngx_http_hris_input_t *in, json_t *v, json_t **out);
static ngx_int_t ngx_http_hris_write_bad(ngx_http_hris_write_t *w,
    ngx_http_hris_input_t *in, json_t *extra, const char *fmt, ...);
static json_t *ngx_http_hris_write_as(ngx_http_hris_in_type_e as, json_t *v);
static json_t *ngx_http_hris_write_date(ngx_http_hris_input_t *in,
    json_t *v);
static ngx_uint_t ngx_http_hris_write_datetime(u_char *p, size_t len);
static ngx_int_t ngx_http_hris_write_flatten(ngx_http_hris_write_t *w);
static json_t *ngx_http_hris_write_lookup(ngx_http_hris_write_t *w,
    ngx_str_t *name);
static void ngx_http_hris_write_prune(json_t *root, ngx_array_t *gone);
static json_t *ngx_http_hris_write_names_of(ngx_http_hris_write_op_t *wop);
static json_t *ngx_http_hris_write_accepted(ngx_http_hris_input_t *in);


static const char  *ngx_http_hris_write_verbs[] = {
    "creating", "updating", "deleting"
};


/*
 * Checks the body and fills w->input with the provider's values. NGX_OK,
 * or the rc of the 400 answered (usually NGX_OK too: see header_sent).
 */

ngx_int_t
ngx_http_hris_write_check(ngx_http_hris_write_t *w, json_t *body)
{
    json_t                 *v, *out;
    ngx_int_t               rc;
    ngx_uint_t              i;
    const char             *key;
    ngx_http_hris_input_t  *in;
    ngx_http_request_t     *r = w->request;
    ngx_http_hris_write_op_t *wop = w->wop;
    ngx_str_t              *provider = &w->account->table->name;

    if (!json_is_object(body)) {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                   "the body must be a JSON object of unified %V fields "
                   "(it is %s)", &w->res->name,
                   json_is_array(body) ? "an array" : "another JSON value");
    }

    w->input = json_object();
    if (w->input == NULL
        || ngx_http_hris_json_cleanup(r->pool, w->input) != NGX_OK)
    {
        json_decref(w->input);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    in = wop->inputs.elts;

    json_object_foreach(body, key, v) {
        if (json_object_get(w->sr->types, key) == NULL) {
            return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST,
                       json_pack("{s:s,s:o}", "field", key, "writable",
                                 ngx_http_hris_write_names_of(wop)),
                       "unknown field \"%s\": it is not a field of the "
                       "unified %V resource", key, &w->res->name);
        }

        for (i = 0; i < wop->inputs.nelts; i++) {
            if (ngx_strcmp(in[i].name.data, key) == 0) {
                break;
            }
        }

        if (i == wop->inputs.nelts) {
            return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST,
                       json_pack("{s:s,s:s%,s:o}", "field", key, "provider",
                                 provider->data, provider->len, "writable",
                                 ngx_http_hris_write_names_of(wop)),
                       "field \"%s\" cannot be written when %s %V at "
                       "provider %V: GET %V/meta lists the fields it takes",
                       key, ngx_http_hris_write_verbs[wop->kind],
                       &w->res->name, provider, &w->res->name);
        }

        rc = ngx_http_hris_write_value(w, &in[i], v, &out);
        if (rc != NGX_OK || r->header_sent) {
            return rc;
        }

        if (json_object_set_new(w->input, key, out) != 0) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    for (i = 0; i < wop->inputs.nelts; i++) {
        if (in[i].required
            && json_object_get(w->input, (char *) in[i].name.data) == NULL)
        {
            return ngx_http_hris_write_bad(w, &in[i], NULL,
                       "is required when %s %V at provider %V",
                       ngx_http_hris_write_verbs[wop->kind], &w->res->name,
                       provider);
        }
    }

    if (wop->kind == NGX_HTTP_HRIS_WRITE_UPDATE && wop->inputs.nelts
        && json_object_size(w->input) == 0)
    {
        return ngx_http_hris_send_error(r, NGX_HTTP_BAD_REQUEST,
                   json_pack("{s:o}", "writable",
                             ngx_http_hris_write_names_of(wop)),
                   "nothing to update: the body names no field");
    }

    return ngx_http_hris_write_flatten(w);
}


/* One field's value: checked, then the provider's value in *out. */

static ngx_int_t
ngx_http_hris_write_value(ngx_http_hris_write_t *w,
    ngx_http_hris_input_t *in, json_t *v, json_t **out)
{
    json_t      *id, *e, *mapped;
    size_t       i;
    ngx_uint_t   ok;

    *out = NULL;

    switch (in->type) {

    case NGX_HTTP_HRIS_IN_STRING:
        ok = json_is_string(v);
        break;

    case NGX_HTTP_HRIS_IN_NUMBER:
        ok = json_is_number(v);
        break;

    case NGX_HTTP_HRIS_IN_INTEGER:
        ok = json_is_integer(v);
        break;

    case NGX_HTTP_HRIS_IN_BOOLEAN:
        ok = json_is_boolean(v);
        break;

    case NGX_HTTP_HRIS_IN_DATE:
    case NGX_HTTP_HRIS_IN_DATETIME:
        ok = json_is_string(v)
             && ngx_http_hris_write_datetime((u_char *) json_string_value(v),
                                             json_string_length(v));

        if (ok && in->type == NGX_HTTP_HRIS_IN_DATETIME
            && json_string_length(v) == 10)
        {
            ok = 0;
        }

        if (!ok) {
            return ngx_http_hris_write_bad(w, in, NULL,
                       "must be %s", in->type == NGX_HTTP_HRIS_IN_DATE
                       ? "a date, YYYY-MM-DD (or an RFC 3339 timestamp, "
                         "whose date is taken)"
                       : "an RFC 3339 timestamp, e.g. 2026-06-01T09:00:00Z");
        }

        *out = ngx_http_hris_write_date(in, v);
        return *out ? NGX_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;

    case NGX_HTTP_HRIS_IN_REFERENCE:
        id = json_object_get(v, "id");

        if (!json_is_object(v)
            || !((json_is_string(id) && json_string_length(id) > 0)
                 || json_is_integer(id)))
        {
            return ngx_http_hris_write_bad(w, in, NULL,
                       "must be a reference: an object with the record's "
                       "\"id\", e.g. {\"id\": \"42\"}");
        }

        id = ngx_http_hris_write_as(in->as, id);
        if (id == NULL) {
            return ngx_http_hris_write_bad(w, in, NULL,
                       "must be a reference whose \"id\" is a whole number "
                       "at this provider");
        }

        *out = json_pack("{s:o}", "id", id);
        return *out ? NGX_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;

    case NGX_HTTP_HRIS_IN_OBJECT:
        ok = json_is_object(v);
        break;

    case NGX_HTTP_HRIS_IN_ARRAY:
        ok = json_is_array(v);
        break;

    default:
        ok = 0;
    }

    if (!ok) {
        return ngx_http_hris_write_bad(w, in, NULL, "must be %s%s",
                   in->type == NGX_HTTP_HRIS_IN_INTEGER ? "a whole number"
                   : in->type == NGX_HTTP_HRIS_IN_NUMBER ? "a number"
                   : in->type == NGX_HTTP_HRIS_IN_BOOLEAN ? "true or false"
                   : in->type == NGX_HTTP_HRIS_IN_OBJECT ? "an object"
                   : in->type == NGX_HTTP_HRIS_IN_ARRAY ? "an array"
                   : "a string",
                   json_is_null(v) ? ", not null (leave the field out "
                                     "instead)" : "");
    }

    if (in->schema_enum || in->enum_map) {
        ok = (in->schema_enum == NULL);

        json_array_foreach(in->schema_enum, i, e) {
            if (json_equal(e, v)) {
                ok = 1;
            }
        }

        if (!ok) {
            return ngx_http_hris_write_bad(w, in,
                       json_pack("{s:O}", "allowed", in->schema_enum),
                       "must be one of the unified values of the field");
        }

        mapped = json_is_string(v)
                 ? json_object_get(in->enum_map, json_string_value(v)) : NULL;

        if (mapped == NULL) {
            return ngx_http_hris_write_bad(w, in,
                       json_pack("{s:o}", "allowed",
                                 ngx_http_hris_write_accepted(in)),
                       "value \"%s\" is not one provider %V takes for it",
                       json_is_string(v) ? json_string_value(v) : "?",
                       &w->account->table->name);
        }

        v = mapped;
    }

    *out = ngx_http_hris_write_as(in->as, v);
    if (*out == NULL) {
        return ngx_http_hris_write_bad(w, in, NULL, "must be %s at this "
                   "provider", in->as == NGX_HTTP_HRIS_IN_BOOLEAN
                   ? "true or false" : "a number");
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_write_bad(ngx_http_hris_write_t *w, ngx_http_hris_input_t *in,
    json_t *extra, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;
    json_t   *details;
    u_char    msg[512];

    va_start(args, fmt);
    p = ngx_vslprintf(msg, msg + sizeof(msg) - 1, fmt, args);
    va_end(args);
    *p = '\0';

    details = json_pack("{s:s}", "field", in->name.data);
    if (details && extra) {
        json_object_update(details, extra);
    }
    json_decref(extra);

    return ngx_http_hris_send_error(w->request, NGX_HTTP_BAD_REQUEST, details,
                                    "field \"%V\" %s", &in->name, msg);
}


/* A checked value as the provider types it; NULL: it cannot be. */

static json_t *
ngx_http_hris_write_as(ngx_http_hris_in_type_e as, json_t *v)
{
    char        *end;
    double       d;
    u_char       buf[64];
    ngx_int_t    n;
    const char  *s;

    s = json_string_value(v);

    switch (as) {

    case NGX_HTTP_HRIS_IN_STRING:
        if (json_is_integer(v)) {
            ngx_sprintf(buf, "%L%Z", (int64_t) json_integer_value(v));
            return json_string((char *) buf);
        }

        if (json_is_real(v)) {
            return json_sprintf("%.15g", json_real_value(v));
        }

        if (json_is_boolean(v)) {
            return json_string(json_is_true(v) ? "true" : "false");
        }

        return json_incref(v);

    case NGX_HTTP_HRIS_IN_INTEGER:
        if (json_is_integer(v)) {
            return json_incref(v);
        }

        if (s == NULL) {
            return NULL;
        }

        n = ngx_atoi((u_char *) s, ngx_strlen(s));
        return n == NGX_ERROR ? NULL : json_integer(n);

    case NGX_HTTP_HRIS_IN_NUMBER:
        if (json_is_number(v)) {
            return json_incref(v);
        }

        if (s == NULL || *s == '\0') {
            return NULL;
        }

        d = strtod(s, &end);
        return *end ? NULL : json_real(d);

    case NGX_HTTP_HRIS_IN_BOOLEAN:
        if (json_is_boolean(v)) {
            return json_incref(v);
        }

        if (s && ngx_strcmp(s, "true") == 0) {
            return json_true();
        }

        if (s && ngx_strcmp(s, "false") == 0) {
            return json_false();
        }

        return NULL;

    default:
        return json_incref(v);
    }
}


/*
 * YYYY-MM-DD, optionally followed by "T" and a time: hh:mm[:ss[.frac]]
 * and Z or an offset (RFC 3339). The date must exist.
 */

static ngx_uint_t
ngx_http_hris_write_datetime(u_char *p, size_t len)
{
    size_t      i;
    ngx_uint_t  y, m, d, days;

    static const char  *shape = "dddd-dd-dd";
    static ngx_uint_t   mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
                                    30, 31 };

    if (len < 10) {
        return 0;
    }

    for (i = 0; i < 10; i++) {
        if (shape[i] == 'd' ? (p[i] < '0' || p[i] > '9') : p[i] != '-') {
            return 0;
        }
    }

    y = ngx_atoi(p, 4);
    m = ngx_atoi(p + 5, 2);
    d = ngx_atoi(p + 8, 2);

    if (m < 1 || m > 12 || d < 1) {
        return 0;
    }

    days = mdays[m - 1]
           + (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0));

    if (d > days) {
        return 0;
    }

    if (len == 10) {
        return 1;
    }

    /* Thh:mm, then :ss and a fraction, then Z or +hh:mm */
    if (len < 16 || (p[10] != 'T' && p[10] != 't')
        || !isdigit(p[11]) || !isdigit(p[12]) || p[13] != ':'
        || !isdigit(p[14]) || !isdigit(p[15]))
    {
        return 0;
    }

    i = 16;

    if (i < len && p[i] == ':') {
        if (i + 2 >= len || !isdigit(p[i + 1]) || !isdigit(p[i + 2])) {
            return 0;
        }
        i += 3;

        if (i < len && p[i] == '.') {
            for (i++; i < len && isdigit(p[i]); i++) { /* void */ }
        }
    }

    if (i + 1 == len && (p[i] == 'Z' || p[i] == 'z')) {
        return 1;
    }

    return i + 6 == len && (p[i] == '+' || p[i] == '-')
           && isdigit(p[i + 1]) && isdigit(p[i + 2]) && p[i + 3] == ':'
           && isdigit(p[i + 4]) && isdigit(p[i + 5]);
}


/*
 * A date field takes a date or a timestamp and gives the provider the date
 * as written (a whole day is the client's day, whatever its offset), in
 * the table's "format" (YYYY, MM, DD) when it has one.
 */

static json_t *
ngx_http_hris_write_date(ngx_http_hris_input_t *in, json_t *v)
{
    u_char      *p, *end, *src;
    u_char       buf[64];

    src = (u_char *) json_string_value(v);

    if (in->type == NGX_HTTP_HRIS_IN_DATETIME) {
        return json_incref(v);
    }

    if (in->format.len == 0 || in->format.len > 32) {
        return json_stringn((char *) src, 10);
    }

    p = buf;
    end = in->format.data + in->format.len;

    for (src = in->format.data; src < end; /* void */) {
        if (end - src >= 4 && ngx_strncmp(src, "YYYY", 4) == 0) {
            p = ngx_cpymem(p, json_string_value(v), 4);
            src += 4;

        } else if (end - src >= 2 && ngx_strncmp(src, "MM", 2) == 0) {
            p = ngx_cpymem(p, json_string_value(v) + 5, 2);
            src += 2;

        } else if (end - src >= 2 && ngx_strncmp(src, "DD", 2) == 0) {
            p = ngx_cpymem(p, json_string_value(v) + 8, 2);
            src += 2;

        } else {
            *p++ = *src++;
        }
    }

    return json_stringn((char *) buf, p - buf);
}


/* {{input.a}} and {{input.a.id}} as text, for paths, queries and forms */

static ngx_int_t
ngx_http_hris_write_flatten(ngx_http_hris_write_t *w)
{
    json_t        *v, *id;
    ngx_str_t      text;
    const char    *key;
    ngx_keyval_t  *kv;
    ngx_pool_t    *pool = w->request->pool;

    if (ngx_array_init(&w->flat, pool, 8, sizeof(ngx_keyval_t)) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json_object_foreach(w->input, key, v) {
        id = json_object_get(v, "id");

        if (json_is_object(v) && id) {
            kv = ngx_array_push(&w->flat);
            if (kv == NULL
                || ngx_http_hris_json_text(pool, id, &kv->value) != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            kv->key.len = ngx_strlen(key) + 3;
            kv->key.data = ngx_pnalloc(pool, kv->key.len);
            if (kv->key.data == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
            ngx_sprintf(kv->key.data, "%s.id", key);

            text = kv->value;

        } else if (json_is_real(v) || json_is_boolean(v)) {
            v = ngx_http_hris_write_as(NGX_HTTP_HRIS_IN_STRING, v);
            if (v == NULL || ngx_http_hris_json_text(pool, v, &text) != NGX_OK)
            {
                json_decref(v);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
            json_decref(v);

        } else if (ngx_http_hris_json_text(pool, v, &text) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        kv = ngx_array_push(&w->flat);
        if (kv == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        kv->key.data = (u_char *) key;
        kv->key.len = ngx_strlen(key);
        kv->value = text;
    }

    return NGX_OK;
}


/*
 * The request body: the table's JSON with its templates rendered. A
 * string that is exactly "{{input.x}}" gets the provider's value of x as
 * it is typed (a number stays a number); a field the client left out
 * leaves its key out, and an object (or array element) whose inputs were
 * all left out goes with it, constants included (BambooHR's notes:
 * [{"from": "employee", "note": ...}] without a note).
 */

json_t *
ngx_http_hris_write_body(ngx_http_hris_write_t *w, ngx_http_hris_body_t *body,
    ngx_http_hris_tpl_vars_t *vars)
{
    json_t                     *out, *parent, *v, **p;
    ngx_str_t                   s;
    ngx_uint_t                  i, j, present;
    ngx_array_t                 gone;
    ngx_http_hris_tpl_t        *tpl;
    ngx_http_hris_path_t       *g;
    ngx_http_hris_body_slot_t  *slot;
    u_char                     *state;
    ngx_pool_t                 *pool = w->request->pool;

    out = json_deep_copy(body->json);
    if (out == NULL) {
        return NULL;
    }

    slot = body->slots.elts;

    /* per slot: 0 a template, 1 an input given, 2 an input left out */
    state = ngx_pcalloc(pool, body->slots.nelts + 1);
    p = ngx_pcalloc(pool, (body->slots.nelts + 1) * sizeof(json_t *));
    if (state == NULL || p == NULL
        || ngx_array_init(&gone, pool, 2, sizeof(ngx_http_hris_path_t))
           != NGX_OK)
    {
        json_decref(out);
        return NULL;
    }

    for (i = 0; i < body->slots.nelts; i++) {
        parent = ngx_http_hris_path_get(&slot[i].parent, out, NULL);
        p[i] = parent;

        if (parent == NULL) {
            continue;
        }

        tpl = slot[i].value;

        if (tpl->nparts == 1 && tpl->parts[0].type == NGX_HTTP_HRIS_TPL_INPUT) {
            v = ngx_http_hris_write_lookup(w, &tpl->parts[0].text);
            state[i] = v ? 1 : 2;
            v = v ? json_deep_copy(v) : NULL;

        } else {
            if (ngx_http_hris_tpl_render(pool, tpl, vars, 0, &s) != NGX_OK) {
                json_decref(out);
                return NULL;
            }

            v = s.len ? json_stringn((char *) s.data, s.len) : NULL;
        }

        if (v == NULL) {
            if (slot[i].key) {
                json_object_del(parent, slot[i].key);
            } else {
                json_array_set_new(parent, slot[i].index, json_null());
            }
            continue;
        }

        if (slot[i].key ? json_object_set_new(parent, slot[i].key, v)
                        : json_array_set_new(parent, slot[i].index, v))
        {
            json_decref(out);
            return NULL;
        }
    }

    /* objects below the top whose inputs were all left out: once each */
    for (i = 0; i < body->slots.nelts; i++) {
        if (state[i] != 2 || p[i] == NULL || p[i] == out
            || slot[i].parent.n == 0)
        {
            continue;
        }

        present = 0;
        for (j = 0; j < body->slots.nelts; j++) {
            if (p[j] == p[i] && (state[j] == 1 || (state[j] == 2 && j < i))) {
                present = 1;
            }
        }

        if (!present) {
            g = ngx_array_push(&gone);
            if (g == NULL) {
                json_decref(out);
                return NULL;
            }
            *g = slot[i].parent;
        }
    }

    ngx_http_hris_write_prune(out, &gone);

    return out;
}


/*
 * Takes out the containers at the paths in "gone", last first (array
 * indexes stay right), then arrays that were left empty by it.
 */

static void
ngx_http_hris_write_prune(json_t *root, ngx_array_t *gone)
{
    json_t                *up;
    ngx_int_t              idx;
    ngx_uint_t             i;
    ngx_http_hris_path_t   path, *g;

    g = gone->elts;

    for (i = gone->nelts; i-- > 0; /* void */) {
        path = g[i];
        path.n--;

        up = ngx_http_hris_path_get(&path, root, NULL);

        if (json_is_object(up)) {
            json_object_del(up, (char *) g[i].tokens[path.n].data);

        } else if (json_is_array(up)) {
            idx = ngx_atoi(g[i].tokens[path.n].data, g[i].tokens[path.n].len);
            if (idx != NGX_ERROR) {
                json_array_remove(up, idx);
            }

            /* an array left empty goes too: "notes": [] says nothing */
            if (json_array_size(up) == 0 && path.n > 0) {
                path.n--;
                up = ngx_http_hris_path_get(&path, root, NULL);
                if (json_is_object(up)) {
                    json_object_del(up,
                                    (char *) g[i].tokens[path.n].data);
                }
            }
        }
    }
}


/* "a" or "a.id" in the provider's values */

static json_t *
ngx_http_hris_write_lookup(ngx_http_hris_write_t *w, ngx_str_t *name)
{
    u_char  *dot;
    json_t  *v;
    u_char   key[256];

    if (name->len >= sizeof(key)) {
        return NULL;
    }

    dot = ngx_strlchr(name->data, name->data + name->len, '.');

    ngx_memcpy(key, name->data, dot ? (size_t) (dot - name->data)
                                    : name->len);
    key[dot ? (size_t) (dot - name->data) : name->len] = '\0';

    v = json_object_get(w->input, (char *) key);

    if (v && dot) {
        v = json_object_get(v, "id");
    }

    return v;
}


/*
 * A flat JSON object as application/x-www-form-urlencoded (or a query
 * string): strings and numbers as text, booleans as true and false.
 */

ngx_int_t
ngx_http_hris_write_form(ngx_pool_t *pool, json_t *body, ngx_str_t *out)
{
    u_char      *p;
    json_t      *v, *t;
    size_t       len;
    ngx_str_t    name, value, ename, evalue;
    const char  *key;

    len = 0;

    json_object_foreach(body, key, v) {
        len += 3 * (ngx_strlen(key) + 64) + 2;
        if (json_is_string(v)) {
            len += 3 * json_string_length(v);
        }
    }

    out->data = ngx_pnalloc(pool, len + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = out->data;

    json_object_foreach(body, key, v) {
        if (json_is_null(v)) {
            continue;
        }

        t = ngx_http_hris_write_as(NGX_HTTP_HRIS_IN_STRING, v);
        if (t == NULL) {
            return NGX_ERROR;
        }

        name.data = (u_char *) key;
        name.len = ngx_strlen(key);
        value.data = (u_char *) json_string_value(t);
        value.len = value.data ? json_string_length(t) : 0;

        if (ngx_http_hris_escape(pool, &name, &ename) != NGX_OK
            || ngx_http_hris_escape(pool, &value, &evalue) != NGX_OK)
        {
            json_decref(t);
            return NGX_ERROR;
        }

        if (p > out->data) {
            *p++ = '&';
        }

        /* evalue may be the string itself (nothing to escape): copy first */
        p = ngx_cpymem(p, ename.data, ename.len);
        *p++ = '=';
        p = ngx_cpymem(p, evalue.data, evalue.len);

        json_decref(t);
    }

    out->len = p - out->data;

    return NGX_OK;
}


static json_t *
ngx_http_hris_write_names_of(ngx_http_hris_write_op_t *wop)
{
    json_t                 *names;
    ngx_uint_t              i;
    ngx_http_hris_input_t  *in;

    names = json_array();
    in = wop->inputs.elts;

    for (i = 0; names && i < wop->inputs.nelts; i++) {
        json_array_append_new(names, json_string((char *) in[i].name.data));
    }

    return names;
}


/* the unified values a field takes at this provider, in schema order */

static json_t *
ngx_http_hris_write_accepted(ngx_http_hris_input_t *in)
{
    json_t      *out, *e;
    size_t       i;
    const char  *key;

    out = json_array();
    if (out == NULL) {
        return NULL;
    }

    if (in->schema_enum) {
        json_array_foreach(in->schema_enum, i, e) {
            if (json_is_string(e)
                && json_object_get(in->enum_map, json_string_value(e)))
            {
                json_array_append(out, e);
            }
        }

        return out;
    }

    json_object_foreach(in->enum_map, key, e) {
        json_array_append_new(out, json_string(key));
    }

    return out;
}


/*
 * What the resource's writes take at this provider: per operation, its
 * fields (type, required, the unified values an enumeration takes) and
 * the fields required.
 */

json_t *
ngx_http_hris_write_meta(ngx_http_hris_resource_t *res)
{
    json_t                    *ops, *op, *fields, *f, *required;
    ngx_uint_t                 k, i;
    ngx_http_hris_input_t     *in;
    ngx_http_hris_write_op_t  *wop;

    static const char  *paths[] = { "", "/{id}", "/{id}" };
    static const char  *methods[] = { "POST", "PATCH", "DELETE" };

    ops = json_object();

    for (k = 0; ops && res && k < 3; k++) {
        wop = res->writes[k];
        if (wop == NULL) {
            continue;
        }

        fields = json_object();
        required = json_array();
        in = wop->inputs.elts;

        for (i = 0; fields && required && i < wop->inputs.nelts; i++) {
            f = json_pack("{s:s,s:b}", "type",
                          ngx_http_hris_in_type_name(in[i].type),
                          "required", (int) in[i].required);
            if (f == NULL) {
                break;
            }

            if (in[i].enum_map) {
                json_object_set_new(f, "enum",
                                    ngx_http_hris_write_accepted(&in[i]));
            }

            if (in[i].type == NGX_HTTP_HRIS_IN_DATE) {
                json_object_set_new(f, "format", json_string("YYYY-MM-DD"));
            }

            if (in[i].required) {
                json_array_append_new(required,
                                      json_string((char *) in[i].name.data));
            }

            json_object_set_new(fields, (char *) in[i].name.data, f);
        }

        op = json_pack("{s:s,s:s++,s:o,s:o}", "method", methods[k],
                       "path", "hris/", (char *) res->name.data, paths[k],
                       "fields", fields ? fields : json_object(),
                       "required", required ? required : json_array());
        if (op == NULL) {
            json_decref(ops);
            return NULL;
        }

        json_object_set_new(ops, ngx_http_hris_write_names[k], op);
    }

    return ops;
}

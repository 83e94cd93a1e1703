/*
 * Compiling a resource's operations (list, get): the upstream call, where
 * its records are, how it paginates, its filters and fan-out.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_table_int.h"


static ngx_int_t ngx_http_hris_op_pagination(ngx_http_hris_tc_t *tc,
    ngx_http_hris_op_t *op, json_t *js, const char *where);
static ngx_int_t ngx_http_hris_op_for_each(ngx_http_hris_tc_t *tc,
    ngx_http_hris_op_t *op, json_t *js, const char *where);
static ngx_int_t ngx_http_hris_op_filters(ngx_http_hris_tc_t *tc,
    ngx_http_hris_op_t *op, json_t *js, const char *where);
static ngx_int_t ngx_http_hris_op_batches(ngx_http_hris_tc_t *tc,
    ngx_http_hris_op_t *op, json_t *js, json_t *query, const char *where);
static ngx_int_t ngx_http_hris_op_batch_split(ngx_http_hris_tc_t *tc,
    json_t *list, const char *where, ngx_array_t *names);
static ngx_int_t ngx_http_hris_op_batch_query(ngx_http_hris_tc_t *tc,
    ngx_http_hris_op_t *op, ngx_str_t *param, ngx_str_t *names,
    ngx_uint_t n, ngx_array_t *query);


static const char  *ngx_http_hris_op_keys[] = {
    "method", "path", "query", "body", "records", "where", "unnest",
    "pagination", "filters", "fields", "from_list", "for_each",
    "empty_statuses", "field_batches", NULL
};


static const char  *ngx_http_hris_batch_keys[] = {
    "param", "max", "merge_on", NULL
};


ngx_http_hris_op_t *
ngx_http_hris_op_compile(ngx_http_hris_tc_t *tc,
    ngx_http_hris_schema_resource_t *sr, json_t *js, const char *where)
{
    json_t                 *v, *list;
    size_t                  n;
    ngx_uint_t             *status;
    const char             *key, *s;
    ngx_http_hris_op_t     *op;
    ngx_http_hris_where_t  *w;
    char                    sub[256];

    if (!json_is_object(js)
        || ngx_http_hris_tc_keys(tc, js, where, ngx_http_hris_op_keys)
           != NGX_OK)
    {
        if (!json_is_object(js)) {
            ngx_http_hris_tc_error(tc, where, "must be an object");
        }
        return NULL;
    }

    op = ngx_pcalloc(tc->cf->pool, sizeof(ngx_http_hris_op_t));
    if (op == NULL) {
        return NULL;
    }

    if (json_is_true(json_object_get(js, "from_list"))) {
        op->from_list = 1;
        return op;
    }

    s = json_string_value(json_object_get(js, "method"));
    if (ngx_http_hris_tc_str(tc->cf->pool, s ? s : "GET", ngx_strlen(s ? s
                          : "GET"), &op->method) != NGX_OK)
    {
        return NULL;
    }

    ngx_snprintf((u_char *) sub, sizeof(sub), "%s.path%Z", where);
    op->path = ngx_http_hris_tc_tpl(tc, json_object_get(js, "path"), sub);
    if (op->path == NULL) {
        return NULL;
    }

    ngx_snprintf((u_char *) sub, sizeof(sub), "%s.query%Z", where);
    if (ngx_http_hris_tc_params(tc, json_object_get(js, "query"), sub,
                                     &op->query)
        != NGX_OK)
    {
        return NULL;
    }

    if (json_object_get(js, "field_batches")
        && ngx_http_hris_op_batches(tc, op,
                                    json_object_get(js, "field_batches"),
                                    json_object_get(js, "query"), where)
           != NGX_OK)
    {
        return NULL;
    }

    ngx_snprintf((u_char *) sub, sizeof(sub), "%s.records%Z", where);
    v = json_object_get(js, "records");
    if (v == NULL) {
        /* no "records": the answer itself is the array (or the record) */
        op->records.n = 0;

    } else if (ngx_http_hris_tc_path(tc, v, sub, &op->records) != NGX_OK) {
        return NULL;
    }

    if (json_object_get(js, "body")) {
        ngx_snprintf((u_char *) sub, sizeof(sub), "%s.body%Z", where);
        op->body = ngx_http_hris_tc_body(tc, json_object_get(js, "body"),
                                          sub);
        if (op->body == NULL) {
            return NULL;
        }
    }

    if (ngx_array_init(&op->empty, tc->cf->pool, 2, sizeof(ngx_uint_t))
        != NGX_OK)
    {
        return NULL;
    }

    json_array_foreach(json_object_get(js, "empty_statuses"), n, v) {
        if (!json_is_integer(v)) {
            ngx_snprintf((u_char *) sub, sizeof(sub), "%s.empty_statuses%Z",
                         where);
            ngx_http_hris_tc_error(tc, sub, "must be an array of HTTP "
                                   "statuses that mean \"no records\"");
            return NULL;
        }

        status = ngx_array_push(&op->empty);
        if (status == NULL) {
            return NULL;
        }
        *status = (ngx_uint_t) json_integer_value(v);
    }

    if (json_object_get(js, "for_each")
        && ngx_http_hris_op_for_each(tc, op, json_object_get(js, "for_each"),
                                     where)
           != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&op->where, tc->cf->pool, 1,
                       sizeof(ngx_http_hris_where_t))
        != NGX_OK)
    {
        return NULL;
    }

    json_object_foreach(json_object_get(js, "where"), key, list) {
        ngx_snprintf((u_char *) sub, sizeof(sub), "%s.where.%s%Z", where,
                     key);
        w = ngx_array_push(&op->where);
        if (w == NULL) {
            return NULL;
        }

        if (!json_is_array(list)) {
            ngx_http_hris_tc_error(tc, sub, "must be an array of allowed "
                                   "values");
            return NULL;
        }

        w->values = list;
        v = json_string(key);
        if (v == NULL) {
            return NULL;
        }
        if (ngx_http_hris_tc_path(tc, v, sub, &w->path) != NGX_OK) {
            json_decref(v);
            return NULL;
        }
        json_decref(v);
    }

    if (json_object_get(js, "unnest")) {
        ngx_snprintf((u_char *) sub, sizeof(sub), "%s.unnest%Z", where);
        if (ngx_http_hris_tc_path(tc, json_object_get(js, "unnest"), sub,
                                   &op->unnest)
            != NGX_OK)
        {
            return NULL;
        }
        op->has_unnest = 1;

        if (op->for_each) {
            ngx_http_hris_tc_error(tc, sub, "cannot be combined with "
                                   "\"for_each\"");
            return NULL;
        }
    }

    if (ngx_http_hris_op_pagination(tc, op, json_object_get(js, "pagination"),
                                    where) != NGX_OK
        || ngx_http_hris_op_filters(tc, op, json_object_get(js, "filters"),
                                    where) != NGX_OK)
    {
        return NULL;
    }

    if (json_object_get(js, "fields")) {
        op->fields = ngx_palloc(tc->cf->pool, sizeof(ngx_array_t));
        ngx_snprintf((u_char *) sub, sizeof(sub), "%s.fields%Z", where);

        if (op->fields == NULL
            || ngx_http_hris_fields_compile(tc, sr,
                                            json_object_get(js, "fields"),
                                            sub, op->fields)
               != NGX_OK)
        {
            return NULL;
        }
    }

    return op;
}


static ngx_int_t
ngx_http_hris_op_pagination(ngx_http_hris_tc_t *tc, ngx_http_hris_op_t *op,
    json_t *js, const char *where)
{
    json_t      *v;
    const char  *type;
    char         sub[256];

    op->page_type = NGX_HTTP_HRIS_PAGE_NONE;
    op->max_limit = NGX_HTTP_HRIS_MAX_LIMIT;

    if (js == NULL) {
        return NGX_OK;
    }

    ngx_snprintf((u_char *) sub, sizeof(sub), "%s.pagination%Z", where);

    type = json_string_value(json_object_get(js, "type"));

    if (type == NULL || ngx_strcmp(type, "none") == 0) {
        return NGX_OK;
    }

    if (ngx_strcmp(type, "cursor") == 0) {
        op->page_type = NGX_HTTP_HRIS_PAGE_CURSOR;

        ngx_snprintf((u_char *) sub, sizeof(sub), "%s.pagination.next%Z",
                     where);
        if (ngx_http_hris_tc_path(tc, json_object_get(js, "next"), sub,
                                  &op->page_next)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (ngx_strcmp(type, "offset") == 0
               || ngx_strcmp(type, "page") == 0)
    {
        op->page_type = (type[0] == 'o') ? NGX_HTTP_HRIS_PAGE_OFFSET
                                         : NGX_HTTP_HRIS_PAGE_NUMBER;

        v = json_object_get(js, "first");
        if (v && (!json_is_integer(v) || json_integer_value(v) < 0)) {
            ngx_snprintf((u_char *) sub, sizeof(sub),
                         "%s.pagination.first%Z", where);
            ngx_http_hris_tc_error(tc, sub, "must be 0 or 1");
            return NGX_ERROR;
        }
        op->page_first = v ? (ngx_uint_t) json_integer_value(v) : 0;

        /* without "total", a short page is the last one */
        if (json_object_get(js, "total")) {
            ngx_snprintf((u_char *) sub, sizeof(sub),
                         "%s.pagination.total%Z", where);
            if (ngx_http_hris_tc_path(tc, json_object_get(js, "total"), sub,
                                      &op->page_total)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
            op->has_total = 1;
        }

    } else {
        ngx_http_hris_tc_error(tc, sub, "unknown type \"%s\" (none, cursor, "
                               "offset or page)", type);
        return NGX_ERROR;
    }

    v = json_object_get(js, "max_limit");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 1) {
            ngx_snprintf((u_char *) sub, sizeof(sub),
                         "%s.pagination.max_limit%Z", where);
            ngx_http_hris_tc_error(tc, sub, "must be a positive integer");
            return NGX_ERROR;
        }
        op->max_limit = ngx_min((ngx_uint_t) json_integer_value(v),
                                NGX_HTTP_HRIS_MAX_LIMIT);
    }

    return NGX_OK;
}


/*
 * "for_each": {"values": [...]} or {"resource": "employees", "value":
 * "/id"}: the operation is called once per value, {{each.value}}.
 */

static ngx_int_t
ngx_http_hris_op_for_each(ngx_http_hris_tc_t *tc, ngx_http_hris_op_t *op,
    json_t *js, const char *where)
{
    json_t                    *v;
    ngx_str_t                  name;
    ngx_http_hris_for_each_t  *fe;
    char                       sub[256];

    ngx_snprintf((u_char *) sub, sizeof(sub), "%s.for_each%Z", where);

    fe = ngx_pcalloc(tc->cf->pool, sizeof(ngx_http_hris_for_each_t));
    if (fe == NULL) {
        return NGX_ERROR;
    }

    fe->resource = -1;
    fe->max_calls = 10;

    v = json_object_get(js, "max_calls");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 1) {
            ngx_http_hris_tc_error(tc, sub, "\"max_calls\" must be a "
                                   "positive integer");
            return NGX_ERROR;
        }
        fe->max_calls = (ngx_uint_t) json_integer_value(v);
    }

    if (json_is_array(json_object_get(js, "values"))) {
        fe->values = json_object_get(js, "values");

    } else if (json_is_string(json_object_get(js, "resource"))) {
        name.data = (u_char *) json_string_value(json_object_get(js,
                                                              "resource"));
        name.len = ngx_strlen(name.data);

        fe->resource = ngx_http_hris_schema_index(tc->hmcf, &name);
        if (fe->resource == NGX_ERROR) {
            ngx_http_hris_tc_error(tc, sub, "unknown resource \"%V\"",
                                   &name);
            return NGX_ERROR;
        }

        if (ngx_http_hris_tc_path(tc, json_object_get(js, "value"), sub,
                                  &fe->value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else {
        ngx_http_hris_tc_error(tc, sub, "needs \"values\" (an array) or "
                               "\"resource\" and \"value\"");
        return NGX_ERROR;
    }

    op->for_each = fe;

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_op_filters(ngx_http_hris_tc_t *tc, ngx_http_hris_op_t *op,
    json_t *js, const char *where)
{
    json_t                  *v, *d;
    const char              *key;
    ngx_http_hris_filter_t  *f;
    char                     sub[256];

    if (ngx_array_init(&op->filters, tc->cf->pool, 2,
                       sizeof(ngx_http_hris_filter_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    json_object_foreach(js, key, v) {
        ngx_snprintf((u_char *) sub, sizeof(sub), "%s.filters.%s%Z", where,
                     key);

        f = ngx_array_push(&op->filters);
        if (f == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(f, sizeof(ngx_http_hris_filter_t));

        if (ngx_http_hris_tc_str(tc->cf->pool, key, ngx_strlen(key), &f->name)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        d = json_object_get(v, "default");
        if (d && !json_is_string(d)) {
            ngx_http_hris_tc_error(tc, sub, "\"default\" must be a string");
            return NGX_ERROR;
        }

        if (d && ngx_http_hris_tc_str(tc->cf->pool, json_string_value(d),
                                   json_string_length(d), &f->dflt)
                 != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (json_object_get(v, "pattern")) {
            f->pattern = ngx_http_hris_tc_regex(tc,
                             json_object_get(v, "pattern"), sub,
                             &f->pattern_src);
            if (f->pattern == NULL) {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


/*
 * "field_batches": {"param": "fields", "max": 400, "merge_on": "/id"}.
 * The query parameter "param" is a literal comma-separated list of field
 * names; with more than "max" of them, each upstream page takes several
 * calls (ngx_http_hris_batch.c), each with its own copy of the query in
 * which "param" names at most "max" fields. With fewer, nothing changes.
 */

static ngx_int_t
ngx_http_hris_op_batches(ngx_http_hris_tc_t *tc, ngx_http_hris_op_t *op,
    json_t *js, json_t *query, const char *where)
{
    json_t                   *v, *list_js;
    ngx_str_t                *names;
    ngx_uint_t                i, k, from;
    ngx_array_t               list;
    ngx_http_hris_batches_t  *fb;
    char                      sub[256];

    ngx_snprintf((u_char *) sub, sizeof(sub), "%s.field_batches%Z", where);

    if (!json_is_object(js)) {
        ngx_http_hris_tc_error(tc, sub, "must be an object: {\"param\": "
                               "\"fields\", \"max\": 400, \"merge_on\": "
                               "\"/id\"}");
        return NGX_ERROR;
    }

    if (ngx_http_hris_tc_keys(tc, js, sub, ngx_http_hris_batch_keys)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    fb = ngx_pcalloc(tc->cf->pool, sizeof(ngx_http_hris_batches_t));
    if (fb == NULL) {
        return NGX_ERROR;
    }

    v = json_object_get(js, "max");
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
        ngx_snprintf((u_char *) sub, sizeof(sub), "%s.field_batches.max%Z",
                     where);
        ngx_http_hris_tc_error(tc, sub, "must be a positive integer: the "
                               "most fields the provider takes in one call");
        return NGX_ERROR;
    }

    fb->max = (ngx_uint_t) json_integer_value(v);

    ngx_snprintf((u_char *) sub, sizeof(sub), "%s.field_batches.merge_on%Z",
                 where);

    if (ngx_http_hris_tc_path(tc, json_object_get(js, "merge_on"), sub,
                              &fb->merge_on)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (fb->merge_on.parent || fb->merge_on.n == 0) {
        ngx_http_hris_tc_error(tc, sub, "must point at the record's own id, "
                               "e.g. \"/id\"");
        return NGX_ERROR;
    }

    ngx_snprintf((u_char *) sub, sizeof(sub), "%s.field_batches.param%Z",
                 where);

    v = json_object_get(js, "param");
    if (!json_is_string(v)) {
        ngx_http_hris_tc_error(tc, sub, "must name the query parameter that "
                               "lists the fields");
        return NGX_ERROR;
    }

    if (ngx_http_hris_tc_str(tc->cf->pool, json_string_value(v),
                             json_string_length(v), &fb->param)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    list_js = json_object_get(query, (const char *) fb->param.data);

    if (!json_is_string(list_js)) {
        ngx_http_hris_tc_error(tc, sub, "\"%V\" is not a parameter of "
                               "%s.query", &fb->param, where);
        return NGX_ERROR;
    }

    ngx_snprintf((u_char *) sub, sizeof(sub), "%s.query.%V%Z", where,
                 &fb->param);

    if (ngx_http_hris_op_batch_split(tc, list_js, sub, &list) != NGX_OK)
    {
        return NGX_ERROR;
    }

    fb->fields = list.nelts;
    fb->n = (fb->fields + fb->max - 1) / fb->max;

    if (fb->n <= 1) {
        /* one call takes them all */
        return NGX_OK;
    }

    if (fb->n > NGX_HTTP_HRIS_MAX_BATCHES) {
        ngx_http_hris_tc_error(tc, sub, "%ui fields would take %ui calls "
                               "per page at %ui a call, more than %d",
                               fb->fields, fb->n, fb->max,
                               NGX_HTTP_HRIS_MAX_BATCHES);
        return NGX_ERROR;
    }

    fb->queries = ngx_palloc(tc->cf->pool, fb->n * sizeof(ngx_array_t));
    if (fb->queries == NULL) {
        return NGX_ERROR;
    }

    names = list.elts;

    for (k = 0; k < fb->n; k++) {
        from = k * fb->max;
        i = ngx_min(fb->max, fb->fields - from);

        if (ngx_http_hris_op_batch_query(tc, op, &fb->param, &names[from],
                                         i, &fb->queries[k])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    op->batches = fb;

    return NGX_OK;
}


/*
 * The field names of the list: split at commas, blanks around them and
 * empty ones dropped. A {{placeholder}} could stand for any number of
 * fields, so the list must be literal to be counted.
 */

static ngx_int_t
ngx_http_hris_op_batch_split(ngx_http_hris_tc_t *tc, json_t *list,
    const char *where, ngx_array_t *names)
{
    u_char      *p, *end, *start, *last;
    ngx_str_t   *name;
    const char  *s;

    s = json_string_value(list);
    p = (u_char *) s;
    end = p + json_string_length(list);

    if (ngx_strlcasestrn(p, end, (u_char *) "{{", 2 - 1) != NULL) {
        ngx_http_hris_tc_error(tc, where, "must be a literal list of field "
                               "names to be split into field_batches (no "
                               "{{...}})");
        return NGX_ERROR;
    }

    if (ngx_array_init(names, tc->cf->pool, 64, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    while (p < end) {
        start = p;
        last = ngx_strlchr(p, end, ',');
        if (last == NULL) {
            last = end;
        }

        p = last + 1;

        while (start < last && (*start == ' ' || *start == '\t')) {
            start++;
        }

        while (last > start && (last[-1] == ' ' || last[-1] == '\t')) {
            last--;
        }

        if (last == start) {
            continue;
        }

        name = ngx_array_push(names);
        if (name == NULL) {
            return NGX_ERROR;
        }

        name->data = start;
        name->len = last - start;
    }

    return NGX_OK;
}


/* The operation's query with the batched parameter naming these fields. */

static ngx_int_t
ngx_http_hris_op_batch_query(ngx_http_hris_tc_t *tc, ngx_http_hris_op_t *op,
    ngx_str_t *param, ngx_str_t *names, ngx_uint_t n, ngx_array_t *query)
{
    u_char                 *p;
    size_t                  len;
    ngx_str_t               src;
    ngx_uint_t              i;
    const char             *err;
    ngx_http_hris_param_t  *q, *to;

    len = 0;
    for (i = 0; i < n; i++) {
        len += names[i].len + 1;
    }

    src.data = ngx_pnalloc(tc->cf->pool, len);
    if (src.data == NULL
        || ngx_array_init(query, tc->cf->pool, op->query.nelts,
                          sizeof(ngx_http_hris_param_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    p = src.data;
    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
        }
        p = ngx_cpymem(p, names[i].data, names[i].len);
    }
    src.len = p - src.data;

    q = op->query.elts;

    for (i = 0; i < op->query.nelts; i++) {
        to = ngx_array_push(query);
        if (to == NULL) {
            return NGX_ERROR;
        }

        *to = q[i];

        if (q[i].name.len == param->len
            && ngx_strncmp(q[i].name.data, param->data, param->len) == 0)
        {
            to->value = ngx_http_hris_tpl_compile(tc->cf->pool, &src, &err);
            if (to->value == NULL) {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}

/*
 * A selective parse (ngx_http_hris_parse_select(), for huge answers that
 * a thread reads): of the records array, only the elements the unified
 * page takes are built; the others are read by the same grammar without
 * building anything (the skip_ functions), so a malformed body fails
 * where and as a full parse does (ngx_http_hris_parse.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_hris_parse_int.h"


static ngx_int_t ngx_http_hris_parse_element(ngx_http_hris_parser_t *ps,
    json_t *arr, ngx_uint_t *seen, ngx_uint_t *kept, ngx_uint_t *more);
static ngx_int_t ngx_http_hris_skip_value(ngx_http_hris_parser_t *ps);
static ngx_int_t ngx_http_hris_skip_object(ngx_http_hris_parser_t *ps);
static ngx_int_t ngx_http_hris_skip_array(ngx_http_hris_parser_t *ps);


/* ngx_http_hris_parse(), building of sel's array only what it selects */

json_t *
ngx_http_hris_parse_select(const u_char *data, size_t len, int *line,
    int *column, const char **error, ngx_http_hris_spans_t *spans,
    ngx_http_hris_select_t *sel)
{
    ngx_http_hris_parser_t   ps;

    ngx_memzero(&ps, sizeof(ngx_http_hris_parser_t));
    ps.start = data;
    ps.p = data;
    ps.end = data + len;
    ps.spans = spans;
    ps.sel = sel;

    if (sel) {
        sel->list = NULL;
        ps.path = sel->keys;
        ps.npath = sel->nkeys;
    }

    return ngx_http_hris_parse_run(&ps, line, column, error);
}


/*
 * The selection's array: elements that yield records skip to skip + room
 * are built, the others skipped; their number is sel->raw. Ancestors of
 * the array get no span: their bytes are not what the tree holds.
 */

json_t *
ngx_http_hris_parse_selected(ngx_http_hris_parser_t *ps)
{
    json_t                  *arr;
    ngx_uint_t               raw, seen, kept, more;
    ngx_http_hris_select_t  *sel = ps->sel;
    ngx_int_t                rc;

    if (++ps->depth > NGX_HTTP_HRIS_JSON_MAX_DEPTH) {
        ps->error = NGX_HTTP_HRIS_PARSE_TOO_DEEP;
        return NULL;
    }

    arr = json_array();
    if (arr == NULL) {
        return NULL;
    }

    raw = 0;
    seen = 0;
    kept = 0;
    more = 0;
    sel->offset = 0;

    ps->p++;
    ngx_http_hris_skip_ws(ps);

    if (ps->p < ps->end && *ps->p == ']') {
        goto closed;
    }

    for ( ;; ) {
        raw++;

        if (ngx_http_hris_parse_element(ps, arr, &seen, &kept, &more)
            != NGX_OK)
        {
            json_decref(arr);
            return NULL;
        }

        rc = ngx_http_hris_parse_next(ps, ']');

        if (rc == NGX_AGAIN) {
            continue;
        }

        if (rc == NGX_OK) {
            goto closed;
        }

        json_decref(arr);
        return NULL;
    }

closed:

    ps->p++;
    ps->depth--;
    ps->dups++;

    sel->list = arr;
    sel->raw = raw;
    sel->more = more;

    if (kept == 0) {
        sel->offset = seen;
    }

    return arr;
}


/*
 * One element of the selection's array: *seen counts the records of the
 * elements before it, the first kept one's is the offset.
 */

static ngx_int_t
ngx_http_hris_parse_element(ngx_http_hris_parser_t *ps, json_t *arr,
    ngx_uint_t *seen, ngx_uint_t *kept, ngx_uint_t *more)
{
    json_t                  *v;
    ngx_int_t                n;
    const u_char            *start;
    ngx_http_hris_spans_t   *spans;
    ngx_http_hris_select_t  *sel = ps->sel;

    if (*seen >= sel->skip + sel->room) {
        /* past the window: is there one more record? */
        if (sel->count == NULL) {
            *more = 1;
        }

        if (*more) {
            return ngx_http_hris_skip_value(ps);
        }
    }

    if (sel->count == NULL) {
        if (*seen < sel->skip) {
            (*seen)++;
            return ngx_http_hris_skip_value(ps);
        }

        n = 1;
        v = NULL;

    } else {
        /* built without spans to be counted, and freed unless kept */
        start = ps->p;
        spans = ps->spans;
        ps->spans = NULL;

        v = ngx_http_hris_parse_value(ps);
        ps->spans = spans;

        if (v == NULL) {
            return NGX_ERROR;
        }

        n = sel->count(sel->data, v);

        if (n == NGX_ERROR) {
            json_decref(v);
            return NGX_ERROR;
        }

        if (*seen >= sel->skip + sel->room) {
            json_decref(v);
            *more = (n > 0);
            return NGX_OK;
        }

        if ((ngx_uint_t) n == 0 || *seen + n <= sel->skip) {
            json_decref(v);
            *seen += n;
            return NGX_OK;
        }

        if (spans) {
            /* kept: read again, its objects' spans this time */
            json_decref(v);
            ps->p = start;
            v = NULL;
        }
    }

    if (v == NULL) {
        v = ngx_http_hris_parse_value(ps);
        if (v == NULL) {
            return NGX_ERROR;
        }
    }

    if (json_array_append_new(arr, v) != 0) {
        return NGX_ERROR;
    }

    if ((*kept)++ == 0) {
        sel->offset = *seen;
    }

    *seen += n;

    return NGX_OK;
}


/*
 * Reading a value without building it: the same grammar, errors and
 * positions as ngx_http_hris_parse_value(), and no allocation (but the
 * buffer of unescaped strings, allocated once).
 */

static ngx_int_t
ngx_http_hris_skip_value(ngx_http_hris_parser_t *ps)
{
    size_t         len;
    const u_char  *s;

    if (ps->p == ps->end) {
        ps->error = "unexpected end of input";
        return NGX_ERROR;
    }

    switch (*ps->p) {

    case '{':
        return ngx_http_hris_skip_object(ps);

    case '[':
        return ngx_http_hris_skip_array(ps);

    case '"':
        return ngx_http_hris_parse_str(ps, &s, &len);

    case 't':
        return ngx_http_hris_parse_literal(ps, "true", 4);

    case 'f':
        return ngx_http_hris_parse_literal(ps, "false", 5);

    case 'n':
        return ngx_http_hris_parse_literal(ps, "null", 4);

    default:
        return ngx_http_hris_parse_number(ps, 0) ? NGX_OK : NGX_ERROR;
    }
}


static ngx_int_t
ngx_http_hris_skip_object(ngx_http_hris_parser_t *ps)
{
    size_t         klen;
    const u_char  *k;
    ngx_int_t      rc;

    if (++ps->depth > NGX_HTTP_HRIS_JSON_MAX_DEPTH) {
        ps->error = NGX_HTTP_HRIS_PARSE_TOO_DEEP;
        return NGX_ERROR;
    }

    ps->p++;
    ngx_http_hris_skip_ws(ps);

    if (ps->p < ps->end && *ps->p == '}') {
        goto closed;
    }

    for ( ;; ) {
        if (ps->p == ps->end || *ps->p != '"') {
            ps->error = "string or '}' expected";
            return NGX_ERROR;
        }

        if (ngx_http_hris_parse_str(ps, &k, &klen) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ngx_http_hris_parse_colon(ps) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ngx_http_hris_skip_value(ps) != NGX_OK) {
            return NGX_ERROR;
        }

        rc = ngx_http_hris_parse_next(ps, '}');

        if (rc == NGX_AGAIN) {
            continue;
        }

        if (rc == NGX_OK) {
            goto closed;
        }

        return NGX_ERROR;
    }

closed:

    ps->p++;
    ps->depth--;

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_skip_array(ngx_http_hris_parser_t *ps)
{
    ngx_int_t  rc;

    if (++ps->depth > NGX_HTTP_HRIS_JSON_MAX_DEPTH) {
        ps->error = NGX_HTTP_HRIS_PARSE_TOO_DEEP;
        return NGX_ERROR;
    }

    ps->p++;
    ngx_http_hris_skip_ws(ps);

    if (ps->p < ps->end && *ps->p == ']') {
        goto closed;
    }

    for ( ;; ) {
        if (ngx_http_hris_skip_value(ps) != NGX_OK) {
            return NGX_ERROR;
        }

        rc = ngx_http_hris_parse_next(ps, ']');

        if (rc == NGX_AGAIN) {
            continue;
        }

        if (rc == NGX_OK) {
            goto closed;
        }

        return NGX_ERROR;
    }

closed:

    ps->p++;
    ps->depth--;

    return NGX_OK;
}

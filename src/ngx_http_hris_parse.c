/*
 * Reading the provider's JSON answer into a jansson tree.
 *
 * jansson's parser reads its input one byte at a time through a stream
 * and checks UTF-8 character by character: over half of a unified list
 * request (bench/README.md). This reader checks the whole body's UTF-8 in
 * one pass, then scans runs of plain bytes at once, and builds the same
 * tree json_loadb() would (duplicate keys: the last wins; integers that
 * overflow are an error), through jansson's own constructors.
 *
 * It also records where each object lies in the input (spans), so that
 * an untouched one is written out as the provider's bytes. A span names
 * its object by address: the table holds a reference to every object it
 * names, so that no object it names is freed, and no other object can
 * take its address, while the table lives. A value a duplicate key
 * replaces is freed by jansson otherwise, and a record built later at its
 * address was written out as the replaced value's bytes.
 *
 * A selective parse (ngx_http_hris_parse_select(), for huge answers that
 * a thread reads) builds, of the records array, only the elements the
 * unified page takes: a provider that answers every record in one body
 * (15 MB for four thousand employees) made a tree of 11 times the body,
 * a malloc() per node, to map 500 records of it. The other elements are
 * read by the same grammar without building anything (the skip_
 * functions), so a malformed body fails where and as a full parse does.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_hris_parse.h"


typedef struct {
    const u_char  *start;
    const u_char  *p;
    const u_char  *end;
    u_char        *buf;           /* unescaped strings */
    size_t         size;
    const char    *error;
    ngx_uint_t     depth;
    ngx_uint_t     dups;          /* duplicate keys seen so far */
    ngx_uint_t     match;         /* keys of sel matched by the path here */
    ngx_http_hris_spans_t  *spans;
    ngx_http_hris_select_t *sel;
    ngx_http_hris_slots_t  *slots;
    ngx_str_t              *path;         /* sel's or slots' keys */
    ngx_uint_t              npath;

    /*
     * a slot record's members, and its keys by hash: the members' serial
     * numbers, counted over the parse; those up to seen_base are earlier
     * records' (empty), so that no record clears the table
     */
    ngx_http_hris_member_t *members;
    ngx_uint_t              nmembers;
    ngx_uint_t              nalloc;
    ngx_uint_t             *seen;
    ngx_uint_t              nseen;        /* a power of two, or 0 */
    ngx_uint_t              seen_base;
    ngx_uint_t              serial;
} ngx_http_hris_parser_t;


static json_t *ngx_http_hris_parse_value(ngx_http_hris_parser_t *ps);
static json_t *ngx_http_hris_parse_object(ngx_http_hris_parser_t *ps);
static json_t *ngx_http_hris_parse_array(ngx_http_hris_parser_t *ps);
static ngx_int_t ngx_http_hris_parse_string(ngx_http_hris_parser_t *ps,
    const u_char **s, size_t *len);
static json_t *ngx_http_hris_parse_number(ngx_http_hris_parser_t *ps,
    ngx_uint_t build);
static json_t *ngx_http_hris_parse_selected(ngx_http_hris_parser_t *ps);
static json_t *ngx_http_hris_parse_slot_array(ngx_http_hris_parser_t *ps);
static json_t *ngx_http_hris_parse_slot_record(ngx_http_hris_parser_t *ps,
    ngx_http_hris_slot_rec_t **recp);
static ngx_int_t ngx_http_hris_slot_member(ngx_http_hris_parser_t *ps,
    ngx_http_hris_slot_rec_t *rec, const u_char *k, size_t klen, json_t *v);
static ngx_int_t ngx_http_hris_slot_seen(ngx_http_hris_parser_t *ps,
    const u_char *k, size_t klen, ngx_uint_t h);
static void ngx_http_hris_slots_release(void *data);
static void *ngx_http_hris_slots_push(ngx_array_t *a);
static json_t *ngx_http_hris_parse_run(ngx_http_hris_parser_t *ps,
    int *line, int *column, const char **error);
static ngx_int_t ngx_http_hris_parse_element(ngx_http_hris_parser_t *ps,
    json_t *arr, ngx_uint_t *seen, ngx_uint_t *kept, ngx_uint_t *more);
static ngx_int_t ngx_http_hris_skip_value(ngx_http_hris_parser_t *ps);
static ngx_int_t ngx_http_hris_skip_object(ngx_http_hris_parser_t *ps);
static ngx_int_t ngx_http_hris_skip_array(ngx_http_hris_parser_t *ps);
static ngx_int_t ngx_http_hris_parse_literal(ngx_http_hris_parser_t *ps,
    const char *word, size_t len);
static ngx_int_t ngx_http_hris_utf8_valid(const u_char *p, size_t n);
static u_char *ngx_http_hris_put_utf8(u_char *d, uint32_t c);
static ngx_int_t ngx_http_hris_span_put(ngx_http_hris_spans_t *spans,
    json_t *v, const u_char *start, size_t len);
static void ngx_http_hris_spans_release(void *data);
static ngx_int_t ngx_http_hris_hex4(const u_char *p, uint32_t *c);


/*
 * The bytes a JSON string holds as they are: not '"', '\\' nor a control
 * character (the reader's runs, and the writer's, ngx_http_hris_json.c).
 */
const u_char  ngx_http_hris_json_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,     /* '"' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,     /* '\\' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
};


#define ngx_http_hris_skip_ws(ps)                                            \
    while ((ps)->p < (ps)->end                                               \
           && (*(ps)->p == ' ' || *(ps)->p == '\n' || *(ps)->p == '\r'      \
               || *(ps)->p == '\t'))                                         \
    {                                                                        \
        (ps)->p++;                                                           \
    }


/*
 * Returns a new tree, or NULL with *line, *column and *error telling
 * where and what, as json_error_t would.
 */

json_t *
ngx_http_hris_parse(const u_char *data, size_t len, int *line, int *column,
    const char **error, ngx_http_hris_spans_t *spans)
{
    return ngx_http_hris_parse_select(data, len, line, column, error, spans,
                                      NULL);
}


/* the same, building of sel's array only what it selects (sel may be NULL) */

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
 * The same, reading the objects of the array at slots' keys as slot
 * records (ngx_http_hris_parse.h); on the event loop only: the records
 * live in slots->pool, whose cleanup releases the values of those that
 * were not filled.
 */

json_t *
ngx_http_hris_parse_slots(const u_char *data, size_t len, int *line,
    int *column, const char **error, ngx_http_hris_spans_t *spans,
    ngx_http_hris_slots_t *slots)
{
    ngx_pool_cleanup_t      *cln;
    ngx_http_hris_parser_t   ps;

    ngx_memzero(&ps, sizeof(ngx_http_hris_parser_t));
    ps.start = data;
    ps.p = data;
    ps.end = data + len;
    ps.spans = spans;
    ps.slots = slots;
    ps.path = slots->keys;
    ps.npath = slots->nkeys;

    slots->list = NULL;

    cln = ngx_pool_cleanup_add(slots->pool, 0);
    if (cln == NULL
        || ngx_array_init(&slots->recs, slots->pool, 64, sizeof(void *))
           != NGX_OK
        || ngx_array_init(&slots->all, slots->pool, 64, sizeof(void *))
           != NGX_OK)
    {
        *line = 1;
        *column = 1;
        *error = "out of memory";
        return NULL;
    }

    cln->handler = ngx_http_hris_slots_release;
    cln->data = slots;

    return ngx_http_hris_parse_run(&ps, line, column, error);
}


static json_t *
ngx_http_hris_parse_run(ngx_http_hris_parser_t *ps, int *line, int *column,
    const char **error)
{
    json_t        *v;
    const u_char  *q, *data;

    data = ps->start;

    if (ngx_http_hris_utf8_valid(data, ps->end - data) != NGX_OK) {
        ps->error = "invalid UTF-8";
        v = NULL;
        goto failed;
    }

    ngx_http_hris_skip_ws(ps);

    /* as json_loadb() without JSON_DECODE_ANY: an object or an array */
    if (ps->p == ps->end || (*ps->p != '{' && *ps->p != '[')) {
        ps->error = "'[' or '{' expected";
        v = NULL;
        goto failed;
    }

    v = ngx_http_hris_parse_value(ps);

    if (v) {
        ngx_http_hris_skip_ws(ps);

        if (ps->p != ps->end) {
            ps->error = "end of file expected";
            json_decref(v);
            v = NULL;
        }
    }

failed:

    free(ps->buf);
    free(ps->members);
    free(ps->seen);

    /*
     * A failed parse leaves its objects in the table: it holds them, so
     * their addresses cannot come back, and nothing refers to them.
     */

    if (v == NULL) {
        *line = 1;
        *column = 1;

        for (q = data; q < ps->p && q < ps->end; q++) {
            if (*q == '\n') {
                (*line)++;
                *column = 1;

            } else {
                (*column)++;
            }
        }

        *error = ps->error ? ps->error : "out of memory";
    }

    return v;
}


static json_t *
ngx_http_hris_parse_value(ngx_http_hris_parser_t *ps)
{
    size_t         len;
    const u_char  *s;

    if (ps->p == ps->end) {
        ps->error = "unexpected end of input";
        return NULL;
    }

    /* the value at the selection's keys: the last one read is the tree's */
    if ((ps->sel || ps->slots)
        && ps->match == ps->npath && ps->depth == ps->npath)
    {

        if (ps->sel) {
            ps->sel->list = NULL;

            if (*ps->p == '[') {
                return ngx_http_hris_parse_selected(ps);
            }

        } else {
            ps->slots->list = NULL;
            ps->slots->recs.nelts = 0;

            if (*ps->p == '[') {
                return ngx_http_hris_parse_slot_array(ps);
            }
        }
    }

    switch (*ps->p) {

    case '{':
        return ngx_http_hris_parse_object(ps);

    case '[':
        return ngx_http_hris_parse_array(ps);

    case '"':
        if (ngx_http_hris_parse_string(ps, &s, &len) != NGX_OK) {
            return NULL;
        }
        return json_stringn_nocheck((const char *) s, len);

    case 't':
        return ngx_http_hris_parse_literal(ps, "true", 4) == NGX_OK
               ? json_true() : NULL;

    case 'f':
        return ngx_http_hris_parse_literal(ps, "false", 5) == NGX_OK
               ? json_false() : NULL;

    case 'n':
        return ngx_http_hris_parse_literal(ps, "null", 4) == NGX_OK
               ? json_null() : NULL;

    default:
        return ngx_http_hris_parse_number(ps, 1);
    }
}


static json_t *
ngx_http_hris_parse_object(ngx_http_hris_parser_t *ps)
{
    json_t        *obj, *v;
    size_t         klen, size;
    ngx_uint_t     dups, on;
    const u_char  *k, *start;
    ngx_str_t     *want;
    char          *key;

    if (++ps->depth > NGX_HTTP_HRIS_JSON_MAX_DEPTH) {
        ps->error = NGX_HTTP_HRIS_PARSE_TOO_DEEP;
        return NULL;
    }

    obj = json_object();
    if (obj == NULL) {
        return NULL;
    }

    start = ps->p++;
    dups = ps->dups;
    size = 0;

    ngx_http_hris_skip_ws(ps);

    if (ps->p < ps->end && *ps->p == '}') {
        goto closed;
    }

    for ( ;; ) {
        if (ps->p == ps->end || *ps->p != '"') {
            ps->error = "string or '}' expected";
            goto failed;
        }

        if (ngx_http_hris_parse_string(ps, &k, &klen) != NGX_OK) {
            goto failed;
        }

        /*
         * a key with escapes was unescaped into ps->buf, which the value
         * may reuse: copy it first; any other key lies in the input, and
         * jansson copies it (with its length) when it is set
         */
        key = NULL;

        if (k == ps->buf) {
            key = malloc(klen + 1);
            if (key == NULL) {
                goto failed;
            }

            ngx_memcpy(key, k, klen);
            key[klen] = '\0';
            k = (u_char *) key;
        }

        ngx_http_hris_skip_ws(ps);

        if (ps->p == ps->end || *ps->p != ':') {
            free(key);
            ps->error = "':' expected";
            goto failed;
        }

        ps->p++;
        ngx_http_hris_skip_ws(ps);

        /* one more key of the selection's path, along its path so far */
        on = 0;

        if ((ps->sel || ps->slots) && ps->match == ps->depth - 1
            && ps->match < ps->npath)
        {
            want = &ps->path[ps->match];
            on = (want->len == klen && ngx_memcmp(want->data, k, klen) == 0);
            ps->match += on;
        }

        v = ngx_http_hris_parse_value(ps);
        ps->match -= on;

        if (v == NULL
            || json_object_setn_new_nocheck(obj, (const char *) k, klen, v)
               != 0)
        {
            free(key);
            goto failed;
        }

        free(key);

        /* a key seen before: the last value wins, as in json_loadb() */
        if (json_object_size(obj) == size) {
            ps->dups++;
        }

        size = json_object_size(obj);

        ngx_http_hris_skip_ws(ps);

        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            ngx_http_hris_skip_ws(ps);
            continue;
        }

        if (ps->p < ps->end && *ps->p == '}') {
            goto closed;
        }

        ps->error = "',' or '}' expected";
        goto failed;
    }

closed:

    ps->p++;
    ps->depth--;

    /*
     * An object whose bytes hold a duplicate key (here or deeper) has no
     * span: a reader that keeps the first value would read its bytes as
     * another object than the one mapped, so it is written from the tree.
     */

    if (ps->spans == NULL
        || ps->dups != dups
        || ngx_http_hris_span_put(ps->spans, obj, start, ps->p - start)
           == NGX_OK)
    {
        return obj;
    }

failed:

    json_decref(obj);
    return NULL;
}


static json_t *
ngx_http_hris_parse_array(ngx_http_hris_parser_t *ps)
{
    json_t  *arr, *v;

    if (++ps->depth > NGX_HTTP_HRIS_JSON_MAX_DEPTH) {
        ps->error = NGX_HTTP_HRIS_PARSE_TOO_DEEP;
        return NULL;
    }

    arr = json_array();
    if (arr == NULL) {
        return NULL;
    }

    ps->p++;
    ngx_http_hris_skip_ws(ps);

    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        ps->depth--;
        return arr;
    }

    for ( ;; ) {
        v = ngx_http_hris_parse_value(ps);
        if (v == NULL || json_array_append_new(arr, v) != 0) {
            json_decref(arr);
            return NULL;
        }

        ngx_http_hris_skip_ws(ps);

        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            ngx_http_hris_skip_ws(ps);
            continue;
        }

        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            ps->depth--;
            return arr;
        }

        ps->error = "',' or ']' expected";
        json_decref(arr);
        return NULL;
    }
}


/*
 * The records array of a slots parse: its objects read as slot records,
 * anything else as usual (the walk then sees an ordinary element).
 */

static json_t *
ngx_http_hris_parse_slot_array(ngx_http_hris_parser_t *ps)
{
    json_t                    *arr, *v;
    ngx_http_hris_slot_rec_t  *rec, **p;

    if (++ps->depth > NGX_HTTP_HRIS_JSON_MAX_DEPTH) {
        ps->error = NGX_HTTP_HRIS_PARSE_TOO_DEEP;
        return NULL;
    }

    arr = json_array();
    if (arr == NULL) {
        return NULL;
    }

    ps->p++;
    ngx_http_hris_skip_ws(ps);

    if (ps->p < ps->end && *ps->p == ']') {
        goto closed;
    }

    for ( ;; ) {
        rec = NULL;

        if (ps->p < ps->end && *ps->p == '{') {
            v = ngx_http_hris_parse_slot_record(ps, &rec);

        } else {
            v = ngx_http_hris_parse_value(ps);
        }

        if (v == NULL || json_array_append_new(arr, v) != 0) {
            goto failed;
        }

        p = ngx_http_hris_slots_push(&ps->slots->recs);
        if (p == NULL) {
            goto failed;
        }

        *p = rec;

        ngx_http_hris_skip_ws(ps);

        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            ngx_http_hris_skip_ws(ps);
            continue;
        }

        if (ps->p < ps->end && *ps->p == ']') {
            goto closed;
        }

        ps->error = "',' or ']' expected";
        goto failed;
    }

closed:

    ps->p++;
    ps->depth--;
    ps->slots->list = arr;

    return arr;

failed:

    ps->slots->recs.nelts = 0;
    json_decref(arr);
    return NULL;
}


/*
 * One object of the records array as a slot record: *recp is set, or
 * left NULL when the object had to be filled as it was read (a duplicate
 * key, here or deeper: it gets no span, and is written from the tree).
 * The members point into the input, but a key that had escapes.
 */

static json_t *
ngx_http_hris_parse_slot_record(ngx_http_hris_parser_t *ps,
    ngx_http_hris_slot_rec_t **recp)
{
    json_t                     *obj, *v;
    size_t                      klen, size;
    ngx_uint_t                  dups, i;
    const u_char               *k, *start;
    u_char                     *key;
    ngx_pool_t                 *pool = ps->slots->pool;
    ngx_http_hris_slot_keys_t  *keys = ps->slots->slot_keys;
    ngx_http_hris_slot_rec_t   *rec, **all;

    if (++ps->depth > NGX_HTTP_HRIS_JSON_MAX_DEPTH) {
        ps->error = NGX_HTTP_HRIS_PARSE_TOO_DEEP;
        return NULL;
    }

    size = sizeof(ngx_http_hris_slot_rec_t) + keys->n * sizeof(json_t *);

    rec = ngx_palloc(pool, size);
    all = ngx_http_hris_slots_push(&ps->slots->all);
    obj = json_object();

    if (rec == NULL || all == NULL || obj == NULL) {
        json_decref(obj);
        return NULL;
    }

    ngx_memzero(rec, size);
    rec->obj = obj;
    rec->slot = (json_t **) (rec + 1);
    rec->keys = keys;
    rec->filled = 1;        /* nothing to release until the members are */
    *all = rec;

    start = ps->p++;
    dups = ps->dups;
    ps->nmembers = 0;

    ngx_http_hris_skip_ws(ps);

    if (ps->p < ps->end && *ps->p == '}') {
        goto closed;
    }

    ps->seen_base = ps->serial;

    for ( ;; ) {
        if (ps->p == ps->end || *ps->p != '"') {
            ps->error = "string or '}' expected";
            goto failed;
        }

        if (ngx_http_hris_parse_string(ps, &k, &klen) != NGX_OK) {
            goto failed;
        }

        /* a key with escapes lies in ps->buf, which the value may reuse */
        if (k == ps->buf) {
            key = ngx_pnalloc(pool, klen ? klen : 1);
            if (key == NULL) {
                goto failed;
            }

            ngx_memcpy(key, k, klen);
            k = key;
        }

        ngx_http_hris_skip_ws(ps);

        if (ps->p == ps->end || *ps->p != ':') {
            ps->error = "':' expected";
            goto failed;
        }

        ps->p++;
        ngx_http_hris_skip_ws(ps);

        v = ngx_http_hris_parse_value(ps);

        if (v == NULL || ngx_http_hris_slot_member(ps, rec, k, klen, v)
                         != NGX_OK)
        {
            goto failed;
        }

        ngx_http_hris_skip_ws(ps);

        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            ngx_http_hris_skip_ws(ps);
            continue;
        }

        if (ps->p < ps->end && *ps->p == '}') {
            goto closed;
        }

        ps->error = "',' or '}' expected";
        goto failed;
    }

closed:

    ps->p++;
    ps->depth--;

    rec->n = ps->nmembers;

    if (rec->n) {
        rec->members = ngx_palloc(pool,
                                  rec->n * sizeof(ngx_http_hris_member_t));
        if (rec->members == NULL) {
            goto failed;
        }

        ngx_memcpy(rec->members, ps->members,
                   rec->n * sizeof(ngx_http_hris_member_t));
    }

    /* the record holds its values now */
    rec->filled = 0;
    ps->nmembers = 0;

    /* as ngx_http_hris_parse_object(): no span over a duplicate key */

    if (ps->dups != dups) {
        return ngx_http_hris_slot_fill(rec) == NGX_OK ? obj : NULL;
    }

    if (ps->spans
        && ngx_http_hris_span_put(ps->spans, obj, start, ps->p - start)
           != NGX_OK)
    {
        return NULL;
    }

    *recp = rec;

    return obj;

failed:

    for (i = 0; i < ps->nmembers; i++) {
        json_decref(ps->members[i].value);
    }

    ps->nmembers = 0;
    json_decref(obj);

    return NULL;
}


/* one member of a slot record read: kept in order, and in its slot */

static ngx_int_t
ngx_http_hris_slot_member(ngx_http_hris_parser_t *ps,
    ngx_http_hris_slot_rec_t *rec, const u_char *k, size_t klen, json_t *v)
{
    size_t                   n;
    ngx_int_t                s;
    ngx_uint_t               h;
    ngx_http_hris_member_t  *m;

    if (ps->nmembers == ps->nalloc) {
        n = ps->nalloc ? 2 * ps->nalloc : 64;

        m = realloc(ps->members, n * sizeof(ngx_http_hris_member_t));
        if (m == NULL) {
            json_decref(v);
            return NGX_ERROR;
        }

        ps->members = m;
        ps->nalloc = n;
    }

    m = &ps->members[ps->nmembers++];
    m->key.data = (u_char *) k;
    m->key.len = klen;
    m->value = v;

    h = ngx_http_hris_slot_hash(k, klen);

    /* a key seen before: the last value wins, as in json_loadb() */
    switch (ngx_http_hris_slot_seen(ps, k, klen, h)) {

    case NGX_DECLINED:
        ps->dups++;
        break;

    case NGX_ERROR:
        return NGX_ERROR;

    default:
        break;
    }

    s = ngx_http_hris_slot_find(rec->keys, k, klen, h);

    if (s >= 0) {
        rec->slot[s] = v;
    }

    return NGX_OK;
}


/*
 * Whether the record's key (its member is the last one) was seen before
 * in the record: NGX_DECLINED if so. The table holds member numbers + 1
 * by hash and stays at most half full.
 */

static ngx_int_t
ngx_http_hris_slot_seen(ngx_http_hris_parser_t *ps, const u_char *k,
    size_t klen, ngx_uint_t h)
{
    ngx_uint_t               i, n, j, *seen, base;
    ngx_http_hris_member_t  *m;

    base = ps->seen_base;

    if (2 * ps->nmembers > ps->nseen) {
        n = ps->nseen ? 2 * ps->nseen : 128;

        seen = calloc(n, sizeof(ngx_uint_t));
        if (seen == NULL) {
            return NGX_ERROR;
        }

        free(ps->seen);
        ps->seen = seen;
        ps->nseen = n;

        /* again, the members before this one */
        for (j = 0; j + 1 < ps->nmembers; j++) {
            m = &ps->members[j];
            i = ngx_http_hris_slot_hash(m->key.data, m->key.len);

            while (seen[i & (n - 1)] > base) {
                i++;
            }

            seen[i & (n - 1)] = base + j + 1;
        }
    }

    n = ps->nseen - 1;

    for (i = h; ps->seen[i & n] > base; i++) {
        m = &ps->members[ps->seen[i & n] - base - 1];

        if (m->key.len == klen && ngx_memcmp(m->key.data, k, klen) == 0) {
            return NGX_DECLINED;
        }
    }

    ps->serial = base + ps->nmembers;
    ps->seen[i & n] = ps->serial;

    return NGX_OK;
}


/*
 * ngx_array_push() of a list of pointers, without nginx's ngx_array.c
 * (the unit tests link the reader alone)
 */

static void *
ngx_http_hris_slots_push(ngx_array_t *a)
{
    void  *elts;

    if (a->nelts == a->nalloc) {
        elts = ngx_palloc(a->pool, 2 * a->nalloc * a->size);
        if (elts == NULL) {
            return NULL;
        }

        ngx_memcpy(elts, a->elts, a->nelts * a->size);
        a->elts = elts;
        a->nalloc *= 2;
    }

    return (u_char *) a->elts + a->size * a->nelts++;
}


/* the pool's cleanup: the values of the records never filled */

static void
ngx_http_hris_slots_release(void *data)
{
    ngx_http_hris_slots_t *slots = data;

    ngx_uint_t                 i, j;
    ngx_http_hris_slot_rec_t **rec;

    rec = slots->all.elts;

    for (i = 0; i < slots->all.nelts; i++) {
        if (rec[i]->filled) {
            continue;
        }

        rec[i]->filled = 1;

        for (j = 0; j < rec[i]->n; j++) {
            json_decref(rec[i]->members[j].value);
        }
    }
}


/*
 * The selection's array: elements that yield records skip to skip + room
 * are built, the others skipped; their number is sel->raw. Ancestors of
 * the array get no span: their bytes are not what the tree holds.
 */

static json_t *
ngx_http_hris_parse_selected(ngx_http_hris_parser_t *ps)
{
    json_t                  *arr;
    ngx_uint_t               raw, seen, kept, more;
    ngx_http_hris_select_t  *sel = ps->sel;

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

        ngx_http_hris_skip_ws(ps);

        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            ngx_http_hris_skip_ws(ps);
            continue;
        }

        if (ps->p < ps->end && *ps->p == ']') {
            goto closed;
        }

        ps->error = "',' or ']' expected";
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
        return ngx_http_hris_parse_string(ps, &s, &len);

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

        if (ngx_http_hris_parse_string(ps, &k, &klen) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_http_hris_skip_ws(ps);

        if (ps->p == ps->end || *ps->p != ':') {
            ps->error = "':' expected";
            return NGX_ERROR;
        }

        ps->p++;
        ngx_http_hris_skip_ws(ps);

        if (ngx_http_hris_skip_value(ps) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_http_hris_skip_ws(ps);

        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            ngx_http_hris_skip_ws(ps);
            continue;
        }

        if (ps->p < ps->end && *ps->p == '}') {
            goto closed;
        }

        ps->error = "',' or '}' expected";
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

        ngx_http_hris_skip_ws(ps);

        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            ngx_http_hris_skip_ws(ps);
            continue;
        }

        if (ps->p < ps->end && *ps->p == ']') {
            goto closed;
        }

        ps->error = "',' or ']' expected";
        return NGX_ERROR;
    }

closed:

    ps->p++;
    ps->depth--;

    return NGX_OK;
}


/*
 * A string: without escapes it is used where it lies in the input;
 * with escapes it is unescaped into ps->buf.
 */

static ngx_int_t
ngx_http_hris_parse_string(ngx_http_hris_parser_t *ps, const u_char **s,
    size_t *len)
{
    u_char        *d;
    uint32_t       c, lo;
    uint64_t       stop;
    const u_char  *p, *run;

    p = ++ps->p;

#if (NGX_HAVE_LITTLE_ENDIAN)

    /* the word that holds a quote, a backslash or a control byte says where */
    while (ps->end - p >= 8) {
        stop = ngx_http_hris_json_stop8(p);

        if (stop) {
            p += __builtin_ctzll(stop) >> 3;
            goto stopped;
        }

        p += 8;
    }

#else

    while (ps->end - p >= 8 && ngx_http_hris_json_plain8(p)) {
        p += 8;
    }

#endif

    while (p < ps->end && ngx_http_hris_json_plain[*p]) {
        p++;
    }

#if (NGX_HAVE_LITTLE_ENDIAN)
stopped:
#endif

    if (p < ps->end && *p == '"') {
        *s = ps->p;
        *len = p - ps->p;
        ps->p = p + 1;
        return NGX_OK;
    }

    /*
     * an error before any escape needs no buffer: at the end of the input
     * the buffer would be empty, and copying nothing into no buffer
     * (memcpy with NULL) is undefined behaviour
     */

    if (p == ps->end) {
        ps->p = p;
        ps->error = "premature end of input in a string";
        return NGX_ERROR;
    }

    if (*p < 0x20) {
        ps->p = p;
        ps->error = "control character in a string";
        return NGX_ERROR;
    }

    /* escapes: unescape into a buffer as large as the rest */
    if (ps->size < (size_t) (ps->end - ps->p)) {
        free(ps->buf);
        ps->size = ps->end - ps->p;
        ps->buf = malloc(ps->size);
        if (ps->buf == NULL) {
            ps->size = 0;
            return NGX_ERROR;
        }
    }

    d = ps->buf;
    p = ps->p;

    for ( ;; ) {
        run = p;

        while (ps->end - p >= 8 && ngx_http_hris_json_plain8(p)) {
            p += 8;
        }

        while (p < ps->end && ngx_http_hris_json_plain[*p]) {
            p++;
        }

        d = ngx_cpymem(d, run, p - run);

        if (p == ps->end) {
            ps->p = p;
            ps->error = "premature end of input in a string";
            return NGX_ERROR;
        }

        if (*p == '"') {
            break;
        }

        if (*p < 0x20) {
            ps->p = p;
            ps->error = "control character in a string";
            return NGX_ERROR;
        }

        /* a backslash */
        if (++p == ps->end) {
            ps->p = p;
            ps->error = "premature end of input in a string";
            return NGX_ERROR;
        }

        switch (*p) {
        case '"': case '\\': case '/':
            *d++ = *p++;
            continue;
        case 'b': *d++ = '\b'; p++; continue;
        case 'f': *d++ = '\f'; p++; continue;
        case 'n': *d++ = '\n'; p++; continue;
        case 'r': *d++ = '\r'; p++; continue;
        case 't': *d++ = '\t'; p++; continue;
        case 'u':
            break;
        default:
            ps->p = p;
            ps->error = "invalid escape";
            return NGX_ERROR;
        }

        if (ps->end - p < 5 || ngx_http_hris_hex4(p + 1, &c) != NGX_OK) {
            ps->p = p;
            ps->error = "invalid \\u escape";
            return NGX_ERROR;
        }

        p += 5;

        if (c >= 0xd800 && c <= 0xdbff) {
            /* a high surrogate must be followed by a low one */
            if (ps->end - p < 6 || p[0] != '\\' || p[1] != 'u'
                || ngx_http_hris_hex4(p + 2, &lo) != NGX_OK
                || lo < 0xdc00 || lo > 0xdfff)
            {
                ps->p = p;
                ps->error = "invalid Unicode surrogate pair";
                return NGX_ERROR;
            }

            c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
            p += 6;

        } else if (c >= 0xdc00 && c <= 0xdfff) {
            ps->p = p;
            ps->error = "lone low surrogate";
            return NGX_ERROR;
        }

        if (c == 0) {
            ps->p = p;
            ps->error = "\\u0000 is not allowed";
            return NGX_ERROR;
        }

        d = ngx_http_hris_put_utf8(d, c);
    }

    *s = ps->buf;
    *len = d - ps->buf;
    ps->p = p + 1;

    return NGX_OK;
}


/* JSON's grammar for numbers; integers as json_integer, as jansson does */

static json_t *
ngx_http_hris_parse_number(ngx_http_hris_parser_t *ps, ngx_uint_t build)
{
    char           buf[64], *str, *end;
    size_t         n;
    double         d;
    json_t        *v;
    ngx_uint_t     real;
    const u_char  *p = ps->p;
    long long      i;

    real = 0;

    if (p < ps->end && *p == '-') {
        p++;
    }

    if (p == ps->end || *p < '0' || *p > '9') {
        ps->error = "invalid token";
        return NULL;
    }

    if (*p == '0') {
        p++;
        if (p < ps->end && *p >= '0' && *p <= '9') {
            ps->error = "invalid number: leading zero";
            return NULL;
        }

    } else {
        while (p < ps->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p < ps->end && *p == '.') {
        real = 1;
        p++;
        if (p == ps->end || *p < '0' || *p > '9') {
            ps->error = "invalid number";
            return NULL;
        }
        while (p < ps->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        real = 1;
        p++;
        if (p < ps->end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p == ps->end || *p < '0' || *p > '9') {
            ps->error = "invalid number";
            return NULL;
        }
        while (p < ps->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    /*
     * strtoll() and strtod() need a terminated copy; a number longer than
     * the buffer is valid JSON too (a real with many digits: jansson takes
     * it), and its copy is at most as long as the input
     */

    n = p - ps->p;
    str = buf;

    if (n >= sizeof(buf)) {
        str = malloc(n + 1);
        if (str == NULL) {
            ps->error = "out of memory";
            return NULL;
        }
    }

    ngx_memcpy(str, ps->p, n);
    str[n] = '\0';

    v = NULL;
    errno = 0;

    if (!real) {
        i = strtoll(str, &end, 10);
        if (errno == ERANGE) {
            ps->error = "too big integer";
            goto done;
        }

        v = build ? json_integer((json_int_t) i) : json_null();
        goto done;
    }

    d = strtod(str, &end);
    if (errno == ERANGE && (d > 1.0 || d < -1.0)) {
        ps->error = "real number overflow";
        goto done;
    }

    v = build ? json_real(d) : json_null();

done:

    if (str != buf) {
        free(str);
    }

    if (v != NULL) {
        ps->p = p;
    }

    return v;
}


static ngx_int_t
ngx_http_hris_parse_literal(ngx_http_hris_parser_t *ps, const char *word,
    size_t len)
{
    if ((size_t) (ps->end - ps->p) < len
        || ngx_strncmp(ps->p, word, len) != 0)
    {
        ps->error = "invalid token";
        return NGX_ERROR;
    }

    ps->p += len;

    return NGX_OK;
}


/* RFC 3629: shortest forms only, no surrogates, nothing past U+10FFFF */

static ngx_int_t
ngx_http_hris_utf8_valid(const u_char *p, size_t n)
{
    u_char         c;
    uint32_t       cp;
    uint64_t       word;
    ngx_uint_t     more, i;
    const u_char  *end = p + n;

    while (p < end) {

        /* ASCII, most of an answer: eight bytes at a time */
        while (end - p >= 8) {
            ngx_memcpy(&word, p, 8);

            if (word & 0x8080808080808080ULL) {
                break;
            }

            p += 8;
        }

        if (p == end) {
            break;
        }

        c = *p++;

        if (c < 0x80) {
            continue;
        }

        if (c >= 0xc2 && c <= 0xdf) {
            more = 1;
            cp = c & 0x1f;

        } else if (c >= 0xe0 && c <= 0xef) {
            more = 2;
            cp = c & 0x0f;

        } else if (c >= 0xf0 && c <= 0xf4) {
            more = 3;
            cp = c & 0x07;

        } else {
            return NGX_ERROR;
        }

        if ((size_t) (end - p) < more) {
            return NGX_ERROR;
        }

        for (i = 0; i < more; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                return NGX_ERROR;
            }
            cp = (cp << 6) | (p[i] & 0x3f);
        }

        p += more;

        if ((more == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
            || (more == 3 && (cp < 0x10000 || cp > 0x10ffff)))
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static u_char *
ngx_http_hris_put_utf8(u_char *d, uint32_t c)
{
    if (c < 0x80) {
        *d++ = (u_char) c;

    } else if (c < 0x800) {
        *d++ = (u_char) (0xc0 | (c >> 6));
        *d++ = (u_char) (0x80 | (c & 0x3f));

    } else if (c < 0x10000) {
        *d++ = (u_char) (0xe0 | (c >> 12));
        *d++ = (u_char) (0x80 | ((c >> 6) & 0x3f));
        *d++ = (u_char) (0x80 | (c & 0x3f));

    } else {
        *d++ = (u_char) (0xf0 | (c >> 18));
        *d++ = (u_char) (0x80 | ((c >> 12) & 0x3f));
        *d++ = (u_char) (0x80 | ((c >> 6) & 0x3f));
        *d++ = (u_char) (0x80 | (c & 0x3f));
    }

    return d;
}


static ngx_int_t
ngx_http_hris_hex4(const u_char *p, uint32_t *c)
{
    ngx_uint_t  i;
    u_char      h;

    *c = 0;

    for (i = 0; i < 4; i++) {
        h = p[i];

        if (h >= '0' && h <= '9') {
            *c = (*c << 4) | (h - '0');

        } else if ((h | 0x20) >= 'a' && (h | 0x20) <= 'f') {
            *c = (*c << 4) | ((h | 0x20) - 'a' + 10);

        } else {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The table is open addressing on the object's address. It holds a
 * reference to each object it names, released when its pool goes, so an
 * address cannot come back as another object while the table lives.
 */

static ngx_int_t
ngx_http_hris_span_put(ngx_http_hris_spans_t *spans, json_t *v,
    const u_char *start, size_t len)
{
    size_t              *lens;
    uintptr_t           *keys, key;
    ngx_uint_t           i, j, size;
    const u_char       **starts;
    ngx_pool_cleanup_t  *cln;

    if (spans->size == 0) {
        cln = ngx_pool_cleanup_add(spans->pool, 0);
        if (cln == NULL) {
            return NGX_ERROR;
        }

        cln->handler = ngx_http_hris_spans_release;
        cln->data = spans;
    }

    if (2 * (spans->used + 1) > spans->size) {
        size = spans->size ? 2 * spans->size : 256;

        keys = ngx_pcalloc(spans->pool, size * sizeof(uintptr_t));
        starts = ngx_palloc(spans->pool, size * sizeof(u_char *));
        lens = ngx_palloc(spans->pool, size * sizeof(size_t));
        if (keys == NULL || starts == NULL || lens == NULL) {
            return NGX_ERROR;
        }

        for (i = 0; i < spans->size; i++) {
            if (spans->keys[i] == 0) {
                continue;
            }

            j = (spans->keys[i] >> 4) & (size - 1);
            while (keys[j]) {
                j = (j + 1) & (size - 1);
            }

            keys[j] = spans->keys[i];
            starts[j] = spans->starts[i];
            lens[j] = spans->lens[i];
        }

        spans->keys = keys;
        spans->starts = starts;
        spans->lens = lens;
        spans->size = size;
    }

    key = (uintptr_t) v;
    j = (key >> 4) & (spans->size - 1);

    while (spans->keys[j] && spans->keys[j] != key) {
        j = (j + 1) & (spans->size - 1);
    }

    if (spans->keys[j] == 0) {
        /* held until the pool goes: see ngx_http_hris_spans_release() */
        json_incref(v);
        spans->used++;
    }

    spans->keys[j] = key;
    spans->starts[j] = start;
    spans->lens[j] = len;

    return NGX_OK;
}


ngx_int_t
ngx_http_hris_span_get(ngx_http_hris_spans_t *spans, json_t *v,
    const u_char **start, size_t *len)
{
    uintptr_t   key;
    ngx_uint_t  j;

    if (spans == NULL || spans->size == 0) {
        return NGX_DECLINED;
    }

    key = (uintptr_t) v;
    j = (key >> 4) & (spans->size - 1);

    while (spans->keys[j]) {
        if (spans->keys[j] == key) {
            *start = spans->starts[j];
            *len = spans->lens[j];
            return NGX_OK;
        }

        j = (j + 1) & (spans->size - 1);
    }

    return NGX_DECLINED;
}


/* the pool's cleanup: the objects the table held may go now */

static void
ngx_http_hris_spans_release(void *data)
{
    ngx_uint_t              i;
    ngx_http_hris_spans_t  *spans = data;

    for (i = 0; i < spans->size; i++) {
        if (spans->keys[i]) {
            json_decref((json_t *) spans->keys[i]);
        }
    }

    spans->keys = NULL;
    spans->size = 0;
    spans->used = 0;
}

/*
 * Writing JSON answers straight into nginx buffers.
 *
 * jansson's own serializer spent 40% of a unified list request (see
 * bench/README.md): it re-validates every string's UTF-8 character by
 * character and hands its output over in pieces of a few bytes. Every
 * string written here already passed jansson's parser or was built by
 * the gateway from such strings, so it is valid UTF-8; what remains is
 * escaping, done a run of plain bytes at a time. The output is what
 * json_dumps(JSON_COMPACT) writes, keys in insertion order (the same JSON,
 * not quite the same bytes: \u001f where jansson writes \u001F, a real's
 * exponent as printf() writes it, e+300 and e-08 for e300 and e-8), except
 * that an object the provider sent and nobody changed (remote_data) is
 * copied as the provider's own bytes when the caller kept them (spans):
 * written once more it was the largest part of a list answer.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_record.h"


#define NGX_HTTP_HRIS_JSON_BUF    32768

/*
 * A provider's value comes back at most NGX_HTTP_HRIS_JSON_MAX_DEPTH deep
 * (the parser's limit), inside the levels the answer adds around it: the
 * envelope, the record and the mapping table's own objects and arrays.
 */
#define NGX_HTTP_HRIS_JSON_WRAP   64


typedef struct {
    ngx_pool_t    *pool;
    ngx_chain_t   *out;
    ngx_chain_t  **last;
    ngx_buf_t     *b;
    size_t         total;
    ngx_http_hris_spans_t  *spans;
    ngx_http_hris_records_t  *recs;
} ngx_http_hris_jw_t;


static ngx_int_t ngx_http_hris_jw_value(ngx_http_hris_jw_t *w, json_t *v,
    ngx_uint_t depth);
static ngx_int_t ngx_http_hris_jw_object(ngx_http_hris_jw_t *w, json_t *v,
    ngx_uint_t depth) __attribute__((noinline));
static ngx_int_t ngx_http_hris_jw_array(ngx_http_hris_jw_t *w, json_t *v,
    ngx_uint_t depth) __attribute__((noinline));
static ngx_int_t ngx_http_hris_jw_integer(ngx_http_hris_jw_t *w,
    json_int_t i) __attribute__((noinline));
static ngx_int_t ngx_http_hris_jw_compact(ngx_http_hris_jw_t *w, json_t *v,
    ngx_http_hris_compact_t *compact, ngx_uint_t depth);
static ngx_int_t ngx_http_hris_jw_records(ngx_http_hris_jw_t *w,
    ngx_uint_t depth);
static ngx_int_t ngx_http_hris_jw_record(ngx_http_hris_jw_t *w,
    json_t **values, ngx_uint_t depth);
static ngx_int_t ngx_http_hris_jw_string(ngx_http_hris_jw_t *w,
    const u_char *s, size_t n);
static ngx_int_t ngx_http_hris_jw_string_runs(ngx_http_hris_jw_t *w,
    const u_char *s, size_t n) __attribute__((noinline));
static ngx_inline size_t ngx_http_hris_jw_plain_copy(u_char *d,
    const u_char *s, size_t n);
static u_char *ngx_http_hris_jw_string_rest(u_char *d, const u_char *s,
    size_t n) __attribute__((noinline));
static ngx_int_t ngx_http_hris_jw_bytes(ngx_http_hris_jw_t *w,
    const u_char *p, size_t n);
static ngx_int_t ngx_http_hris_jw_real(ngx_http_hris_jw_t *w, double d)
    __attribute__((noinline));
static u_char *ngx_http_hris_jw_escape(u_char *d, u_char c);


/* the room left in the buffer being written */
#define ngx_http_hris_jw_room(w)                                             \
    ((w)->b ? (size_t) ((w)->b->end - (w)->b->last) : 0)


/* one byte of punctuation: most often, room is there */

static ngx_inline ngx_int_t
ngx_http_hris_jw_char(ngx_http_hris_jw_t *w, u_char c)
{
    if (ngx_http_hris_jw_room(w)) {
        *w->b->last++ = c;
        w->total++;
        return NGX_OK;
    }

    return ngx_http_hris_jw_bytes(w, &c, 1);
}


/*
 * Copies n bytes: a record's key (",\"name\":") or a literal is short,
 * and two or four words that overlap copy it without a call of memcpy(),
 * which cost more than the copy.
 */

static ngx_inline void
ngx_http_hris_jw_copy(u_char *d, const u_char *s, size_t n)
{
    if (n < 8 || n > 32) {
        ngx_memcpy(d, s, n);
        return;
    }

    if (n > 16) {
        ngx_memcpy(d + n - 16, s + n - 16, 8);
        ngx_memcpy(d + 8, s + 8, 8);
    }

    ngx_memcpy(d, s, 8);
    ngx_memcpy(d + n - 8, s + n - 8, 8);
}


/* n bytes that most often fit in the buffer being written */

static ngx_inline ngx_int_t
ngx_http_hris_jw_put(ngx_http_hris_jw_t *w, const u_char *p, size_t n)
{
    if (ngx_http_hris_jw_room(w) >= n) {
        ngx_http_hris_jw_copy(w->b->last, p, n);
        w->b->last += n;
        w->total += n;
        return NGX_OK;
    }

    return ngx_http_hris_jw_bytes(w, p, n);
}


/* Writes v as compact JSON into a chain of pool buffers. */

ngx_int_t
ngx_http_hris_json_write(ngx_pool_t *pool, json_t *v,
    ngx_http_hris_spans_t *spans, ngx_chain_t **out, size_t *len)
{
    return ngx_http_hris_json_write_records(pool, v, spans, NULL, out, len);
}


/*
 * The same, with unified records (ngx_http_hris_record.h) in place of
 * the object recs->at of v: the bytes are those of the record as a
 * jansson object, its keys in the schema's order.
 */

ngx_int_t
ngx_http_hris_json_write_records(ngx_pool_t *pool, json_t *v,
    ngx_http_hris_spans_t *spans, ngx_http_hris_records_t *recs,
    ngx_chain_t **out, size_t *len)
{
    ngx_http_hris_jw_t  w;

    ngx_memzero(&w, sizeof(ngx_http_hris_jw_t));
    w.pool = pool;
    w.last = &w.out;
    w.spans = spans;
    w.recs = recs;

    if (ngx_http_hris_jw_value(&w, v, 0) != NGX_OK || w.out == NULL) {
        return NGX_ERROR;
    }

    *out = w.out;
    *len = w.total;

    return NGX_OK;
}


/*
 * One value. Called for every value of every record: the containers and
 * the numbers have functions of their own, so that this one keeps no
 * buffer on its stack (no stack protector's check per call).
 */

static ngx_int_t
ngx_http_hris_jw_value(ngx_http_hris_jw_t *w, json_t *v, ngx_uint_t depth)
{
    switch (json_typeof(v)) {

    case JSON_STRING:
        return ngx_http_hris_jw_string(w,
                                       (u_char *) ngx_http_hris_string_value(v),
                                       ngx_http_hris_string_length(v));

    case JSON_OBJECT:
        return ngx_http_hris_jw_object(w, v, depth);

    case JSON_ARRAY:
        return ngx_http_hris_jw_array(w, v, depth);

    case JSON_INTEGER:
        return ngx_http_hris_jw_integer(w, json_integer_value(v));

    case JSON_REAL:
        return ngx_http_hris_jw_real(w, json_real_value(v));

    case JSON_TRUE:
        return ngx_http_hris_jw_put(w, (u_char *) "true", 4);

    case JSON_FALSE:
        return ngx_http_hris_jw_put(w, (u_char *) "false", 5);

    default:
        return ngx_http_hris_jw_put(w, (u_char *) "null", 4);
    }
}


static ngx_int_t
ngx_http_hris_jw_object(ngx_http_hris_jw_t *w, json_t *v, ngx_uint_t depth)
{
    void          *it;
    size_t         i, n;
    const char    *key;
    const u_char  *raw;

    if (depth > NGX_HTTP_HRIS_JSON_MAX_DEPTH + NGX_HTTP_HRIS_JSON_WRAP) {
        return NGX_ERROR;
    }

    if (w->recs && v == w->recs->at) {
        return ngx_http_hris_jw_records(w, depth);
    }

    if (ngx_http_hris_span_get(w->spans, v, &raw, &n) == NGX_OK) {
        return ngx_http_hris_jw_bytes(w, raw, n);
    }

    if (ngx_http_hris_jw_char(w, '{') != NGX_OK) {
        return NGX_ERROR;
    }

    for (it = json_object_iter(v), i = 0;
         it;
         it = json_object_iter_next(v, it), i++)
    {
        key = json_object_iter_key(it);

        if ((i && ngx_http_hris_jw_char(w, ',') != NGX_OK)
            || ngx_http_hris_jw_string(w, (u_char *) key,
                                       json_object_iter_key_len(it))
               != NGX_OK
            || ngx_http_hris_jw_char(w, ':') != NGX_OK
            || ngx_http_hris_jw_value(w, json_object_iter_value(it),
                                      depth + 1)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_hris_jw_char(w, '}');
}


static ngx_int_t
ngx_http_hris_jw_array(ngx_http_hris_jw_t *w, json_t *v, ngx_uint_t depth)
{
    size_t                    i, n;
    ngx_http_hris_compact_t  *compact;

    if (depth > NGX_HTTP_HRIS_JSON_MAX_DEPTH + NGX_HTTP_HRIS_JSON_WRAP) {
        return NGX_ERROR;
    }

    compact = ngx_http_hris_compact_of(v);

    if (compact) {
        return ngx_http_hris_jw_compact(w, v, compact, depth);
    }

    if (ngx_http_hris_jw_char(w, '[') != NGX_OK) {
        return NGX_ERROR;
    }

    n = ngx_http_hris_array_size(v);

    for (i = 0; i < n; i++) {
        if ((i && ngx_http_hris_jw_char(w, ',') != NGX_OK)
            || ngx_http_hris_jw_value(w, ngx_http_hris_array_at(v, i),
                                      depth + 1)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_hris_jw_char(w, ']');
}


static ngx_int_t
ngx_http_hris_jw_integer(ngx_http_hris_jw_t *w, json_int_t i)
{
    u_char  num[NGX_INT64_LEN + 1];

    return ngx_http_hris_jw_put(w, num,
                                ngx_sprintf(num, "%L", (int64_t) i) - num);
}


/*
 * A compact object (ngx_http_hris_map.h): the values after the mark, each
 * after its key as compiled (",\"name\":"), the first without its comma.
 */

static ngx_int_t
ngx_http_hris_jw_compact(ngx_http_hris_jw_t *w, json_t *v,
    ngx_http_hris_compact_t *compact, ngx_uint_t depth)
{
    size_t      i, n;
    ngx_str_t  *k;

    if (ngx_http_hris_jw_char(w, '{') != NGX_OK) {
        return NGX_ERROR;
    }

    n = ngx_http_hris_array_size(v);
    k = compact->keys;

    for (i = 1; i < n; i++, k++) {
        if (ngx_http_hris_jw_put(w, k->data + (i == 1), k->len - (i == 1))
            != NGX_OK
            || ngx_http_hris_jw_value(w, ngx_http_hris_array_at(v, i),
                                      depth + 1)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_hris_jw_char(w, '}');
}


/* the unified records: [{...},...], or one {...} */

static ngx_int_t
ngx_http_hris_jw_records(ngx_http_hris_jw_t *w, ngx_uint_t depth)
{
    ngx_uint_t                  i;
    ngx_http_hris_records_t    *recs = w->recs;
    ngx_http_hris_json_part_t  *part = recs->part;

    if (recs->single) {
        return ngx_http_hris_jw_record(w, recs->records[0], depth);
    }

    if (part && part->n) {
        /* "[" and the first records, written by slices: linked as is */
        *w->last = part->out;
        w->last = part->last;
        w->b = part->b;
        w->total += part->total;
        i = part->n;

    } else {
        if (ngx_http_hris_jw_char(w, '[') != NGX_OK) {
            return NGX_ERROR;
        }

        i = 0;
    }

    for ( /* void */ ; i < recs->n; i++) {
        if ((i && ngx_http_hris_jw_char(w, ',') != NGX_OK)
            || ngx_http_hris_jw_record(w, recs->records[i], depth + 1)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_hris_jw_char(w, ']');
}


/*
 * Writes one more record of a list into part, "[" before the first: the
 * slices of a large page write as they map (ngx_http_hris_slice.c), and
 * jw_records() links what they wrote into the answer.
 */

ngx_int_t
ngx_http_hris_json_write_part(ngx_pool_t *pool, ngx_http_hris_spans_t *spans,
    ngx_array_t *fields, json_t **values, ngx_http_hris_json_part_t *part)
{
    ngx_int_t                rc;
    ngx_http_hris_jw_t       w;
    ngx_http_hris_records_t  recs;

    ngx_memzero(&w, sizeof(ngx_http_hris_jw_t));
    ngx_memzero(&recs, sizeof(ngx_http_hris_records_t));
    recs.fields = fields;

    w.pool = pool;
    w.out = part->out;
    w.last = part->out ? part->last : &w.out;
    w.b = part->b;
    w.spans = spans;
    w.recs = &recs;

    /* a list's records are 2 deep: {"result":[{...}]} */
    rc = ngx_http_hris_jw_char(&w, part->n ? ',' : '[');
    if (rc == NGX_OK) {
        rc = ngx_http_hris_jw_record(&w, values, 2);
    }

    /* what was written stays linked, even on an error */
    part->out = w.out;
    part->last = w.last;
    part->b = w.b;
    part->total += w.total;

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    part->n++;

    return NGX_OK;
}


/* one record: each field's key as compiled (",\"name\":"), its value */

static ngx_int_t
ngx_http_hris_jw_record(ngx_http_hris_jw_t *w, json_t **values,
    ngx_uint_t depth)
{
    ngx_uint_t              i, n;
    ngx_http_hris_field_t  *f;

    static u_char  remote[] = ",\"remote_data\":";

    f = w->recs->fields->elts;
    n = w->recs->fields->nelts;

    if (ngx_http_hris_jw_char(w, '{') != NGX_OK) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        /* the first key without its comma */
        if (ngx_http_hris_jw_put(w, f[i].key.data + (i == 0),
                                 f[i].key.len - (i == 0))
            != NGX_OK
            || ngx_http_hris_jw_value(w, values[i], depth + 1) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (values[n]
        && (ngx_http_hris_jw_put(w, remote + (n == 0),
                                 sizeof(remote) - 1 - (n == 0))
            != NGX_OK
            || ngx_http_hris_jw_value(w, values[n], depth + 1) != NGX_OK))
    {
        return NGX_ERROR;
    }

    return ngx_http_hris_jw_char(w, '}');
}


/*
 * A record's key as the writer puts it, compiled once: ,"name": (see
 * ngx_http_hris_jw_record()).
 */

ngx_int_t
ngx_http_hris_json_key(ngx_pool_t *pool, ngx_str_t *name, ngx_str_t *key)
{
    u_char  *p;
    size_t   i;

    /* every byte escaped at most to 6 */
    p = ngx_pnalloc(pool, 4 + 6 * name->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    key->data = p;
    *p++ = ',';
    *p++ = '"';

    for (i = 0; i < name->len; i++) {
        if (ngx_http_hris_json_plain[name->data[i]]) {
            *p++ = name->data[i];

        } else {
            p = ngx_http_hris_jw_escape(p, name->data[i]);
        }
    }

    *p++ = '"';
    *p++ = ':';

    key->len = p - key->data;

    return NGX_OK;
}


/* "...": runs of plain bytes copied at once, the rest escaped */

static ngx_int_t
ngx_http_hris_jw_string(ngx_http_hris_jw_t *w, const u_char *s, size_t n)
{
    u_char  *d;
    size_t  i, room;

    /*
     * the buffer holds the string even if every byte is escaped (6 bytes
     * each), as it does for nearly every string: written in one pass
     */

    room = ngx_http_hris_jw_room(w);

    /* n is at most hris_max_response_size: 6 * n cannot overflow */
    if (room < 6 * n + 2) {
        return ngx_http_hris_jw_string_runs(w, s, n);
    }

    d = w->b->last;
    *d++ = '"';

    i = ngx_http_hris_jw_plain_copy(d, s, n);
    d += i;

    if (i < n) {
        d = ngx_http_hris_jw_string_rest(d, s + i, n - i);
    }

    *d++ = '"';

    w->total += d - w->b->last;
    w->b->last = d;

    return NGX_OK;
}


/* the rest of a string from its first byte that is not plain */

static u_char *
ngx_http_hris_jw_string_rest(u_char *d, const u_char *s, size_t n)
{
    u_char  c;
    size_t  i;

    for (i = 0; i < n; i++) {
        c = s[i];

        if (ngx_http_hris_json_plain[c]) {
            *d++ = c;

        } else {
            d = ngx_http_hris_jw_escape(d, c);
        }
    }

    return d;
}


/*
 * Copies the plain bytes s starts with to d, 8 at a time, and says how
 * many: all n for nearly every string. The last 8 (or 4) bytes are read
 * as one word that overlaps those before: a short string's tail costs no
 * loop over its bytes, and nothing past s + n is read.
 */

static ngx_inline size_t
ngx_http_hris_jw_plain_copy(u_char *d, const u_char *s, size_t n)
{
    size_t    i;
    uint32_t  a, b;
    uint64_t  x;

    if (n < 4) {
        for (i = 0; i < n && ngx_http_hris_json_plain[s[i]]; i++) {
            d[i] = s[i];
        }

        return i;
    }

    if (n < 8) {
        ngx_memcpy(&a, s, 4);
        ngx_memcpy(&b, s + n - 4, 4);

        if (!ngx_http_hris_json_plain64((uint64_t) a << 32 | b)) {
            return 0;
        }

        ngx_memcpy(d, &a, 4);
        ngx_memcpy(d + n - 4, &b, 4);

        return n;
    }

    for (i = 0; i + 8 <= n; i += 8) {
        ngx_memcpy(&x, s + i, 8);

        if (!ngx_http_hris_json_plain64(x)) {
            return i;
        }

        ngx_memcpy(d + i, &x, 8);
    }

    if (i < n) {
        ngx_memcpy(&x, s + n - 8, 8);

        if (!ngx_http_hris_json_plain64(x)) {
            return i;
        }

        ngx_memcpy(d + n - 8, &x, 8);
    }

    return n;
}


/* near a buffer's end: runs of plain bytes, then each escape */

static ngx_int_t
ngx_http_hris_jw_string_runs(ngx_http_hris_jw_t *w, const u_char *s,
    size_t n)
{
    u_char  c, esc[6];
    size_t  i, run;

    if (ngx_http_hris_jw_char(w, '"') != NGX_OK) {
        return NGX_ERROR;
    }

    run = 0;

    for (i = 0; i < n; i++) {
        c = s[i];

        if (ngx_http_hris_json_plain[c]) {
            continue;
        }

        if (ngx_http_hris_jw_bytes(w, s + run, i - run) != NGX_OK
            || ngx_http_hris_jw_bytes(w, esc,
                                      ngx_http_hris_jw_escape(esc, c) - esc)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        run = i + 1;
    }

    if (ngx_http_hris_jw_bytes(w, s + run, n - run) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_hris_jw_char(w, '"');
}


/* the escape of a byte that is not plain: 2 or 6 bytes at d */

static u_char *
ngx_http_hris_jw_escape(u_char *d, u_char c)
{
    static u_char  hex[] = "0123456789abcdef";

    *d++ = '\\';

    switch (c) {
    case '"':  *d++ = '"'; break;
    case '\\': *d++ = '\\'; break;
    case '\b': *d++ = 'b'; break;
    case '\f': *d++ = 'f'; break;
    case '\n': *d++ = 'n'; break;
    case '\r': *d++ = 'r'; break;
    case '\t': *d++ = 't'; break;
    default:
        *d++ = 'u';
        *d++ = '0';
        *d++ = '0';
        *d++ = hex[c >> 4];
        *d++ = hex[c & 0xf];
    }

    return d;
}


/* as jansson writes reals: 17 significant digits, always a real */

static ngx_int_t
ngx_http_hris_jw_real(ngx_http_hris_jw_t *w, double d)
{
    int   n;
    char  buf[64];

    n = snprintf(buf, sizeof(buf) - 3, "%.17g", d);
    if (n <= 0 || (size_t) n >= sizeof(buf) - 3) {
        return NGX_ERROR;
    }

    if (strpbrk(buf, ".eEn") == NULL) {
        buf[n++] = '.';
        buf[n++] = '0';
    }

    return ngx_http_hris_jw_bytes(w, (u_char *) buf, n);
}


static ngx_int_t
ngx_http_hris_jw_bytes(ngx_http_hris_jw_t *w, const u_char *p, size_t n)
{
    size_t        room;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    w->total += n;

    while (n) {
        b = w->b;

        if (b == NULL || b->last == b->end) {
            b = ngx_create_temp_buf(w->pool, NGX_HTTP_HRIS_JSON_BUF);
            cl = ngx_alloc_chain_link(w->pool);
            if (b == NULL || cl == NULL) {
                return NGX_ERROR;
            }

            cl->buf = b;
            cl->next = NULL;
            *w->last = cl;
            w->last = &cl->next;
            w->b = b;
        }

        room = ngx_min(n, (size_t) (b->end - b->last));
        b->last = ngx_cpymem(b->last, p, room);
        p += room;
        n -= room;
    }

    return NGX_OK;
}

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
 * A selective parse (ngx_http_hris_parse_select.c, for huge answers that
 * a thread reads) builds, of the records array, only the elements the
 * unified page takes: a provider that answers every record in one body
 * (15 MB for four thousand employees) made a tree of 11 times the body,
 * a malloc() per node, to map 500 records of it. A list's records may be
 * read as slot records instead (ngx_http_hris_parse_slots.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_hris_parse_int.h"


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

static json_t *ngx_http_hris_parse_array(ngx_http_hris_parser_t *ps);
static ngx_int_t ngx_http_hris_utf8_valid(const u_char *p, size_t n);
static u_char *ngx_http_hris_put_utf8(u_char *d, uint32_t c);
static void ngx_http_hris_spans_release(void *data);
static ngx_int_t ngx_http_hris_hex4(const u_char *p, uint32_t *c);


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


json_t *
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


json_t *
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
        if (ngx_http_hris_parse_str(ps, &s, &len) != NGX_OK) {
            return NULL;
        }
        return ngx_http_hris_arena_string(s, len);

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


json_t *
ngx_http_hris_parse_object(ngx_http_hris_parser_t *ps)
{
    json_t        *obj, *v;
    size_t         klen, size;
    ngx_uint_t     dups, on;
    const u_char  *k, *start;
    ngx_str_t     *want;
    char          *key;
    ngx_int_t      rc;

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

        if (ngx_http_hris_parse_str(ps, &k, &klen) != NGX_OK) {
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

        if (ngx_http_hris_parse_colon(ps) != NGX_OK) {
            free(key);
            goto failed;
        }

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

        rc = ngx_http_hris_parse_next(ps, '}');

        if (rc == NGX_AGAIN) {
            continue;
        }

        if (rc == NGX_OK) {
            goto closed;
        }

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
    json_t     *arr, *v;
    ngx_int_t   rc;

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

        rc = ngx_http_hris_parse_next(ps, ']');

        if (rc == NGX_AGAIN) {
            continue;
        }

        if (rc == NGX_OK) {
            ps->p++;
            ps->depth--;
            return arr;
        }

        json_decref(arr);
        return NULL;
    }
}


/*
 * A string: without escapes it is used where it lies in the input;
 * with escapes it is unescaped into ps->buf.
 */

ngx_int_t
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

json_t *
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


/* RFC 3629: shortest forms only, no surrogates, nothing past U+10FFFF */

static ngx_int_t
ngx_http_hris_utf8_valid(const u_char *p, size_t n)
{
    u_char         c;
    uint32_t       cp;
    uint64_t       word;
    ngx_uint_t     more, i;
    const u_char  *end = p + n;
#if (defined __SSE2__)
    __m128i        x;
#endif

    while (p < end) {

#if (defined __SSE2__)
        /* ASCII, most of an answer: 32 bytes at a time, their high bits */
        while (end - p >= 32) {
            x = _mm_or_si128(_mm_loadu_si128((const __m128i *) p),
                             _mm_loadu_si128((const __m128i *) (p + 16)));

            if (_mm_movemask_epi8(x)) {
                break;
            }

            p += 32;
        }
#endif

        /* ASCII: eight bytes at a time */
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

ngx_int_t
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

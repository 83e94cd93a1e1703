/*
 * The JSON reader's state and what its files share:
 * ngx_http_hris_parse.c (the grammar, building jansson trees),
 * ngx_http_hris_parse_select.c (of a huge answer's records array, only
 * the page's elements built) and ngx_http_hris_parse_slots.c (a list's
 * records read as slot records).
 */

#ifndef _NGX_HTTP_HRIS_PARSE_INT_H_INCLUDED_
#define _NGX_HTTP_HRIS_PARSE_INT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_hris_parse.h"
#include "ngx_http_hris_arena.h"

#if (defined __SSE2__)
#include <emmintrin.h>
#endif


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
     * a slot record's members, and its keys by hash when they are checked
     * for duplicates: the members' serial numbers, counted over the parse;
     * those up to the record's first are earlier records' (empty), so
     * that no record clears the table
     */
    ngx_http_hris_member_t *members;
    ngx_uint_t              nmembers;
    ngx_uint_t              nalloc;
    ngx_uint_t             *seen;
    ngx_uint_t              nseen;        /* a power of two, or 0 */
    ngx_uint_t              serial;
    u_char                 *chunk;        /* the records' room left */
    u_char                 *chunk_end;

    /*
     * the previous slot record's members, the guess for this one's: a
     * list's records mostly have the same keys in the same order
     */
    ngx_http_hris_member_t *pred;
    ngx_uint_t              npred;
    unsigned                pred_distinct:1;  /* its keys were */
    unsigned                missed:1;     /* a key here was not the guess */
} ngx_http_hris_parser_t;


#define ngx_http_hris_skip_ws(ps)                                            \
    while ((ps)->p < (ps)->end                                               \
           && (*(ps)->p == ' ' || *(ps)->p == '\n' || *(ps)->p == '\r'      \
               || *(ps)->p == '\t'))                                         \
    {                                                                        \
        (ps)->p++;                                                           \
    }


/* the ':' after an object's key, with the whitespace around it */

static ngx_inline ngx_int_t
ngx_http_hris_parse_colon(ngx_http_hris_parser_t *ps)
{
    /* compact JSON, most answers: the ':', then no whitespace to skip */
    if (ps->end - ps->p >= 2 && ps->p[0] == ':' && ps->p[1] > ' ') {
        ps->p++;
        return NGX_OK;
    }

    ngx_http_hris_skip_ws(ps);

    if (ps->p == ps->end || *ps->p != ':') {
        ps->error = "':' expected";
        return NGX_ERROR;
    }

    ps->p++;
    ngx_http_hris_skip_ws(ps);

    return NGX_OK;
}


/*
 * After a member or an element: NGX_AGAIN past a ',' (another one
 * follows), NGX_OK at the closing byte (left for the caller to take),
 * NGX_ERROR otherwise. The same for the readers that build, keep slots
 * or skip, so that a malformed body fails alike in all of them.
 */

static ngx_inline ngx_int_t
ngx_http_hris_parse_next(ngx_http_hris_parser_t *ps, u_char close)
{
    /* compact JSON: the ',', then no whitespace to skip */
    if (ps->end - ps->p >= 2 && ps->p[0] == ',' && ps->p[1] > ' ') {
        ps->p++;
        return NGX_AGAIN;
    }

    ngx_http_hris_skip_ws(ps);

    if (ps->p < ps->end && *ps->p == ',') {
        ps->p++;
        ngx_http_hris_skip_ws(ps);
        return NGX_AGAIN;
    }

    if (ps->p < ps->end && *ps->p == close) {
        return NGX_OK;
    }

    ps->error = (close == '}') ? "',' or '}' expected"
                               : "',' or ']' expected";
    return NGX_ERROR;
}


json_t *ngx_http_hris_parse_value(ngx_http_hris_parser_t *ps);
json_t *ngx_http_hris_parse_object(ngx_http_hris_parser_t *ps);
ngx_int_t ngx_http_hris_parse_string(ngx_http_hris_parser_t *ps,
    const u_char **s, size_t *len);
json_t *ngx_http_hris_parse_number(ngx_http_hris_parser_t *ps,
    ngx_uint_t build);
json_t *ngx_http_hris_parse_selected(ngx_http_hris_parser_t *ps);
json_t *ngx_http_hris_parse_slot_array(ngx_http_hris_parser_t *ps);
json_t *ngx_http_hris_parse_run(ngx_http_hris_parser_t *ps,
    int *line, int *column, const char **error);
ngx_int_t ngx_http_hris_span_put(ngx_http_hris_spans_t *spans,
    json_t *v, const u_char *start, size_t len);


/*
 * true, false or null: inline, so that the word's length is a constant
 * and its compare a load or two, not a call of strncmp()
 */

static ngx_inline ngx_int_t
ngx_http_hris_parse_literal(ngx_http_hris_parser_t *ps, const char *word,
    size_t len)
{
    if ((size_t) (ps->end - ps->p) < len || ngx_memcmp(ps->p, word, len) != 0)
    {
        ps->error = "invalid token";
        return NGX_ERROR;
    }

    ps->p += len;

    return NGX_OK;
}


/*
 * The bytes of a string scanned a block at a time: a mask of those that
 * are not plain (ngx_http_hris_json_plain), from which the first one's
 * offset. x86-64 always has SSE2: sixteen bytes at once, so that most
 * strings of an answer take one block; elsewhere, eight in a word.
 */

#if (defined __SSE2__)

#define NGX_HTTP_HRIS_PARSE_BLOCK  16

/* '"', '\\', and the bytes below 0x20: their maximum with 0x1f is 0x1f */

static ngx_inline ngx_uint_t
ngx_http_hris_parse_stops(const u_char *p)
{
    __m128i  x, q, b, c;

    x = _mm_loadu_si128((const __m128i *) p);
    q = _mm_cmpeq_epi8(x, _mm_set1_epi8('"'));
    b = _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'));
    c = _mm_cmpeq_epi8(_mm_max_epu8(x, _mm_set1_epi8(0x1f)),
                       _mm_set1_epi8(0x1f));

    return (ngx_uint_t) _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(q, b),
                                                       c));
}

#define ngx_http_hris_parse_first(stops)  __builtin_ctz(stops)

#elif (NGX_HAVE_LITTLE_ENDIAN)

#define NGX_HTTP_HRIS_PARSE_BLOCK  8
#define ngx_http_hris_parse_stops(p)      ngx_http_hris_json_stop8(p)
#define ngx_http_hris_parse_first(stops)  (__builtin_ctzll(stops) >> 3)

#endif


/*
 * A string, the reader's most common token, with its most common kind
 * read inline by the loops that call this: no escape, closed before the
 * input's last block. It lies in the input: *s and *len say where.
 * Anything else (an escape, an error, the input's end near) is read by
 * ngx_http_hris_parse_string() from the string's start again, with the
 * same result as if it had been called first.
 */

static ngx_inline ngx_int_t
ngx_http_hris_parse_str(ngx_http_hris_parser_t *ps, const u_char **s,
    size_t *len)
{
#if (defined NGX_HTTP_HRIS_PARSE_BLOCK)
    uint64_t       stops;
    const u_char  *p;

    for (p = ps->p + 1;
         ps->end - p >= NGX_HTTP_HRIS_PARSE_BLOCK;
         p += NGX_HTTP_HRIS_PARSE_BLOCK)
    {
        stops = ngx_http_hris_parse_stops(p);

        if (stops == 0) {
            continue;
        }

        p += ngx_http_hris_parse_first(stops);

        if (*p != '"') {
            break;
        }

        *s = ps->p + 1;
        *len = p - *s;
        ps->p = p + 1;

        return NGX_OK;
    }
#endif

    return ngx_http_hris_parse_string(ps, s, len);
}


#endif /* _NGX_HTTP_HRIS_PARSE_INT_H_INCLUDED_ */

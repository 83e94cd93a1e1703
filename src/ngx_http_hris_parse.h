/*
 * Reading a provider's JSON answer into a jansson tree (see
 * ngx_http_hris_parse.c): json_loadb() without flags, faster.
 */

#ifndef _NGX_HTTP_HRIS_PARSE_H_INCLUDED_
#define _NGX_HTTP_HRIS_PARSE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>


/*
 * Where the objects a parse built lie in its input, so that an untouched
 * one (remote_data) is written out as those bytes. A request's parses may
 * share one table; the inputs must live as long as it does. The table
 * holds a reference to each object it names until its pool goes.
 */
typedef struct {
    ngx_pool_t    *pool;
    uintptr_t     *keys;       /* json_t pointers, 0: free */
    const u_char **starts;
    size_t        *lens;
    ngx_uint_t     size;       /* a power of two */
    ngx_uint_t     used;
} ngx_http_hris_spans_t;


/*
 * A selective parse (ngx_http_hris_parse_select()): of the array at the
 * object keys "keys" (none: the answer itself), only the elements that
 * yield the records skip to skip + room are built; the others are read,
 * checked as strictly as by a full parse, and not kept. Everything outside
 * that array is built as usual. count(data, element), when set, tells how
 * many records an element yields (a filter, an unnest): each element is
 * then built, counted and freed unless it is kept; without it, one each.
 * Called by the thread that parses: it must only read the element.
 */
typedef ngx_int_t (*ngx_http_hris_select_pt)(void *data, json_t *elem);

typedef struct {
    ngx_str_t                 *keys;
    ngx_uint_t                 nkeys;
    ngx_uint_t                 skip;
    ngx_uint_t                 room;      /* at least 1 */
    ngx_http_hris_select_pt    count;     /* or NULL */
    void                      *data;

    /* what the parse found (list NULL: no array there, all built) */
    json_t                    *list;      /* holds the kept elements */
    ngx_uint_t                 raw;       /* all its elements */
    ngx_uint_t                 offset;    /* records before the kept ones */
    unsigned                   more:1;    /* records after the window */
} ngx_http_hris_select_t;


/*
 * How deeply a provider's answer may nest, objects and arrays counted
 * (jansson's own parser allows as much). The writer takes this many
 * levels, plus the few that the gateway's answer puts around a provider's
 * value (ngx_http_hris_json.c): what was read can always be written.
 */
#define NGX_HTTP_HRIS_JSON_MAX_DEPTH   2048

/* the parser's error when an answer nests deeper */
#define NGX_HTTP_HRIS_PARSE_TOO_DEEP   "maximum parsing depth reached"


extern const u_char  ngx_http_hris_json_plain[256];


/*
 * Whether the 8 bytes of x (or at p) are all plain
 * (ngx_http_hris_json_plain): none is '"' (0x22) or '\\' (0x5c), none
 * below 0x20. A byte that equals c turns to zero in x ^ c; (v - 0x01..)
 * & ~v & 0x80.. has a high bit set wherever v has a zero byte (and, by
 * the borrow, possibly above it, never where all bytes below are
 * nonzero), and (x - 0x20..) & ~x the same for bytes below 0x20: no bit
 * set means no such byte.
 */

static ngx_inline ngx_uint_t
ngx_http_hris_json_plain64(uint64_t x)
{
    uint64_t  q, b;

    q = x ^ 0x2222222222222222ULL;
    b = x ^ 0x5c5c5c5c5c5c5c5cULL;

    return ((((q - 0x0101010101010101ULL) & ~q)
             | ((b - 0x0101010101010101ULL) & ~b)
             | ((x - 0x2020202020202020ULL) & ~x))
            & 0x8080808080808080ULL) == 0;
}


static ngx_inline ngx_uint_t
ngx_http_hris_json_plain8(const u_char *p)
{
    uint64_t  x;

    ngx_memcpy(&x, p, 8);

    return ngx_http_hris_json_plain64(x);
}


json_t *ngx_http_hris_parse(const u_char *data, size_t len, int *line,
    int *column, const char **error, ngx_http_hris_spans_t *spans);
json_t *ngx_http_hris_parse_select(const u_char *data, size_t len,
    int *line, int *column, const char **error,
    ngx_http_hris_spans_t *spans, ngx_http_hris_select_t *sel);
ngx_int_t ngx_http_hris_span_get(ngx_http_hris_spans_t *spans, json_t *v,
    const u_char **start, size_t *len);


#endif /* _NGX_HTTP_HRIS_PARSE_H_INCLUDED_ */

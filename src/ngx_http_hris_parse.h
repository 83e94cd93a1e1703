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
 * Slot records (ngx_http_hris_parse_slots()): the objects of a list's
 * records array read without a jansson hash table. Each is an empty
 * jansson object, "obj", that stands in the array (and names the
 * record's span), and the record's members kept flat, in the body's
 * order, with the values of the keys that field paths begin with
 * (ngx_http_hris_slot_keys_t) found by slot number. The object is
 * filled from the members (ngx_http_hris_slot_fill()) only when some
 * code needs the record as a whole; a record with a duplicate key
 * (there or deeper) is filled as it is read.
 */

typedef struct {
    ngx_str_t                  key;       /* in the body, or copied */
    json_t                    *value;
    ngx_int_t                  slot;      /* the key's number, or -1 */
} ngx_http_hris_member_t;


/* the first keys of the field paths, numbered (ngx_http_hris_path.c) */
typedef struct ngx_http_hris_slot_keys_s  ngx_http_hris_slot_keys_t;

struct ngx_http_hris_slot_keys_s {
    ngx_str_t                 *keys;      /* by slot number */
    ngx_uint_t                 n;
    ngx_uint_t                 nalloc;
    ngx_int_t                 *index;     /* hash: slot number, or -1 */
    ngx_uint_t                 mask;      /* index size - 1 */
};


typedef struct {
    json_t                    *obj;
    ngx_http_hris_member_t    *members;
    ngx_uint_t                 n;
    json_t                   **slot;      /* by slot number, or NULL */
    ngx_http_hris_slot_keys_t *keys;
    unsigned                   filled:1;
    unsigned                   pinned:1;  /* its parse's: see slots_t */
} ngx_http_hris_slot_rec_t;


/*
 * What ngx_http_hris_parse_slots() reads as slot records: the array at
 * the object keys "keys", on the event loop (pool: the request's).
 */
typedef struct {
    ngx_str_t                 *keys;
    ngx_uint_t                 nkeys;
    ngx_http_hris_slot_keys_t *slot_keys;
    ngx_pool_t                *pool;

    /* what the parse found (list NULL: no array there) */
    json_t                    *list;
    ngx_array_t                recs;      /* ngx_http_hris_slot_rec_t *,
                                             NULL: an ordinary element */
    ngx_array_t                all;       /* every slot record read */

    /*
     * Every node of the parse came from the request's arena, and its
     * strings and numbers are pinned (ngx_http_hris_pin_slots()): nothing
     * to give back at the pool's end, the arena's chunks go with it.
     */
    unsigned                   pinned:1;
} ngx_http_hris_slots_t;


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
 * set means no such byte, and the lowest bit set (in memory order: the
 * lowest byte on a little-endian machine) is the first such byte's.
 */

static ngx_inline uint64_t
ngx_http_hris_json_stop64(uint64_t x)
{
    uint64_t  q, b;

    q = x ^ 0x2222222222222222ULL;
    b = x ^ 0x5c5c5c5c5c5c5c5cULL;

    return (((q - 0x0101010101010101ULL) & ~q)
            | ((b - 0x0101010101010101ULL) & ~b)
            | ((x - 0x2020202020202020ULL) & ~x))
           & 0x8080808080808080ULL;
}


static ngx_inline uint64_t
ngx_http_hris_json_stop8(const u_char *p)
{
    uint64_t  x;

    ngx_memcpy(&x, p, 8);

    return ngx_http_hris_json_stop64(x);
}


static ngx_inline ngx_uint_t
ngx_http_hris_json_plain64(uint64_t x)
{
    return ngx_http_hris_json_stop64(x) == 0;
}


static ngx_inline ngx_uint_t
ngx_http_hris_json_plain8(const u_char *p)
{
    return ngx_http_hris_json_stop8(p) == 0;
}


/*
 * The hash of a key, for ngx_http_hris_slot_keys_t and the duplicate
 * keys of a slot record: eight bytes at a time (a byte at a time cost a
 * third of the slot records' reading), mixed by a multiplication.
 */

static ngx_inline ngx_uint_t
ngx_http_hris_slot_hash(const u_char *p, size_t len)
{
    uint64_t  h, w;

    h = len * 0x9e3779b97f4a7c15ULL;

    for ( /* void */ ; len >= 8; p += 8, len -= 8) {
        ngx_memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
    }

    if (len) {
        w = 0;
        ngx_memcpy(&w, p, len);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
    }

    return (ngx_uint_t) (h ^ (h >> 29));
}


/* the slot number of the key, or -1 */

static ngx_inline ngx_int_t
ngx_http_hris_slot_find(ngx_http_hris_slot_keys_t *keys, const u_char *k,
    size_t len, ngx_uint_t h)
{
    ngx_int_t  s;

    for ( ;; h++) {
        s = keys->index[h & keys->mask];

        if (s < 0
            || (keys->keys[s].len == len
                && ngx_memcmp(keys->keys[s].data, k, len) == 0))
        {
            return s;
        }
    }
}


/*
 * The record as the jansson object it stands for: its members set in
 * the body's order (a duplicate key keeps its first place and takes the
 * last value, as json_loadb() does), the object taking their references.
 */

static ngx_inline ngx_int_t
ngx_http_hris_slot_fill(ngx_http_hris_slot_rec_t *rec)
{
    ngx_uint_t               i;
    ngx_http_hris_member_t  *m;

    if (rec->filled) {
        return NGX_OK;
    }

    rec->filled = 1;
    m = rec->members;

    for (i = 0; i < rec->n; i++) {
        if (json_object_setn_new_nocheck(rec->obj, (const char *) m[i].key.data,
                                         m[i].key.len, m[i].value)
            != 0)
        {
            /* jansson released that value; the rest are still held */
            while (++i < rec->n) {
                json_decref(m[i].value);
            }

            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


json_t *ngx_http_hris_parse(const u_char *data, size_t len, int *line,
    int *column, const char **error, ngx_http_hris_spans_t *spans);
json_t *ngx_http_hris_parse_select(const u_char *data, size_t len,
    int *line, int *column, const char **error,
    ngx_http_hris_spans_t *spans, ngx_http_hris_select_t *sel);
json_t *ngx_http_hris_parse_slots(const u_char *data, size_t len,
    int *line, int *column, const char **error,
    ngx_http_hris_spans_t *spans, ngx_http_hris_slots_t *slots);
ngx_int_t ngx_http_hris_span_get(ngx_http_hris_spans_t *spans, json_t *v,
    const u_char **start, size_t *len);


#endif /* _NGX_HTTP_HRIS_PARSE_H_INCLUDED_ */

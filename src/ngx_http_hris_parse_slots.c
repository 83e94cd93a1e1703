/*
 * A list's records read as slot records (ngx_http_hris_parse_slots(),
 * ngx_http_hris_parse.h): each object of the records array kept as its
 * members in the body's order, the mapped keys' values by slot number,
 * a jansson object filled only when something needs the whole record.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_hris_parse_int.h"


static json_t *ngx_http_hris_parse_slot_record(ngx_http_hris_parser_t *ps,
    ngx_http_hris_slot_rec_t **recp);
static ngx_inline ngx_int_t ngx_http_hris_slot_key(
    ngx_http_hris_parser_t *ps, ngx_http_hris_slot_rec_t *rec,
    const u_char **key, size_t *len, ngx_int_t *slot);
static ngx_int_t ngx_http_hris_slot_member(ngx_http_hris_parser_t *ps,
    ngx_http_hris_slot_rec_t *rec, const u_char *k, size_t klen, json_t *v,
    ngx_int_t s);
static ngx_int_t ngx_http_hris_slot_dups(ngx_http_hris_parser_t *ps);
static void ngx_http_hris_slots_release(void *data);
static ngx_inline ngx_uint_t ngx_http_hris_slot_same(const u_char *a,
    const u_char *b, size_t len);
static void *ngx_http_hris_slots_push(ngx_array_t *a);
static void *ngx_http_hris_slots_alloc(ngx_http_hris_parser_t *ps,
    size_t size);


/*
 * ngx_http_hris_parse(), reading the objects of the array at slots' keys
 * as slot records (ngx_http_hris_parse.h); on the event loop only: the records
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


/*
 * The records array of a slots parse: its objects read as slot records,
 * anything else as usual (the walk then sees an ordinary element).
 */

json_t *
ngx_http_hris_parse_slot_array(ngx_http_hris_parser_t *ps)
{
    json_t                    *arr, *v;
    ngx_http_hris_slot_rec_t  *rec, **p;
    ngx_int_t                  rc;

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

        rc = ngx_http_hris_parse_next(ps, ']');

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
    size_t                      klen, slen, size;
    ngx_int_t                   slot;
    ngx_uint_t                  dups, top, i;
    const u_char               *k, *s, *start;
    ngx_http_hris_slot_keys_t  *keys = ps->slots->slot_keys;
    ngx_http_hris_slot_rec_t   *rec, **all;
    ngx_int_t                   rc;

    if (++ps->depth > NGX_HTTP_HRIS_JSON_MAX_DEPTH) {
        ps->error = NGX_HTTP_HRIS_PARSE_TOO_DEEP;
        return NULL;
    }

    size = sizeof(ngx_http_hris_slot_rec_t) + keys->n * sizeof(json_t *);

    rec = ngx_http_hris_slots_alloc(ps, size);
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
    ps->missed = 0;

    ngx_http_hris_skip_ws(ps);

    if (ps->p < ps->end && *ps->p == '}') {
        goto closed;
    }

    for ( ;; ) {
        if (ps->p == ps->end || *ps->p != '"') {
            ps->error = "string or '}' expected";
            goto failed;
        }

        if (ngx_http_hris_slot_key(ps, rec, &k, &klen, &slot) != NGX_OK) {
            goto failed;
        }

        if (ngx_http_hris_parse_colon(ps) != NGX_OK) {
            goto failed;
        }

        /* a string or null, most values of a list, without parse_value() */
        if (ps->p < ps->end && *ps->p == '"') {
            if (ngx_http_hris_parse_str(ps, &s, &slen) != NGX_OK) {
                goto failed;
            }

            v = ngx_http_hris_arena_string(s, slen);

        } else if (ps->p < ps->end && *ps->p == 'n') {
            v = (ngx_http_hris_parse_literal(ps, "null", 4) == NGX_OK)
                ? json_null() : NULL;

        } else {
            v = ngx_http_hris_parse_value(ps);
        }

        if (v == NULL
            || ngx_http_hris_slot_member(ps, rec, k, klen, v, slot) != NGX_OK)
        {
            goto failed;
        }

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

    rec->n = ps->nmembers;

    /*
     * the keys of the last record, in its order, are as distinct as
     * they were: only another record's keys are checked for duplicates
     */

    if (ps->missed || rec->n != ps->npred || !ps->pred_distinct) {
        top = ps->dups;

        if (ngx_http_hris_slot_dups(ps) != NGX_OK) {
            goto failed;
        }

        ps->pred_distinct = (ps->dups == top);
    }

    if (rec->n) {
        rec->members = ngx_http_hris_slots_alloc(ps,
                                   rec->n * sizeof(ngx_http_hris_member_t));
        if (rec->members == NULL) {
            goto failed;
        }

        ngx_memcpy(rec->members, ps->members,
                   rec->n * sizeof(ngx_http_hris_member_t));
    }

    ps->pred = rec->members;
    ps->npred = rec->n;

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


/*
 * A member's key, and its slot number. The key at the same place in the
 * last record most often is this one: when the input holds that key's
 * bytes with a '"' right after them, it is this one, taken with its slot
 * number without scanning it or hashing it (a key that lay in the input
 * has none of the bytes that end or escape a string; a key that had
 * escapes was copied, and is not tried so). Any other key is read as a
 * string, and looked up unless it still is the guess.
 */

static ngx_inline ngx_int_t
ngx_http_hris_slot_key(ngx_http_hris_parser_t *ps,
    ngx_http_hris_slot_rec_t *rec, const u_char **key, size_t *len,
    ngx_int_t *slot)
{
    size_t                   n;
    u_char                  *copy;
    const u_char            *k;
    ngx_http_hris_member_t  *g;

    g = (ps->nmembers < ps->npred) ? &ps->pred[ps->nmembers] : NULL;

    if (g) {
        n = g->key.len;
        k = ps->p + 1;

        if ((size_t) (ps->end - k) > n
            && k[n] == '"'
            && (uintptr_t) g->key.data >= (uintptr_t) ps->start
            && (uintptr_t) g->key.data < (uintptr_t) ps->end
            && ngx_http_hris_slot_same(g->key.data, k, n))
        {
            *key = k;
            *len = n;
            *slot = g->slot;
            ps->p = k + n + 1;

            return NGX_OK;
        }
    }

    if (ngx_http_hris_parse_str(ps, &k, &n) != NGX_OK) {
        return NGX_ERROR;
    }

    /* a key with escapes lies in ps->buf, which the value may reuse */
    if (k == ps->buf) {
        copy = ngx_pnalloc(ps->slots->pool, n ? n : 1);
        if (copy == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(copy, k, n);
        k = copy;
    }

    *key = k;
    *len = n;

    if (g && g->key.len == n && ngx_http_hris_slot_same(g->key.data, k, n)) {
        *slot = g->slot;
        return NGX_OK;
    }

    ps->missed = 1;
    *slot = ngx_http_hris_slot_find(rec->keys, k, n,
                                    ngx_http_hris_slot_hash(k, n));

    return NGX_OK;
}


/* One member of a slot record read: kept in order, and in its slot. */

static ngx_int_t
ngx_http_hris_slot_member(ngx_http_hris_parser_t *ps,
    ngx_http_hris_slot_rec_t *rec, const u_char *k, size_t klen, json_t *v,
    ngx_int_t s)
{
    size_t                   n;
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
    m->slot = s;

    /* a key seen before: the last value wins, as in json_loadb() */
    if (s >= 0) {
        rec->slot[s] = v;
    }

    return NGX_OK;
}


/*
 * Whether two keys of len bytes are the same: a word at a time, the last
 * one overlapping those before, and nothing read outside the keys. Most
 * keys are 6 to 25 bytes long: memcmp()'s call cost more than this.
 */

static ngx_inline ngx_uint_t
ngx_http_hris_slot_same(const u_char *a, const u_char *b, size_t len)
{
    size_t    i;
    uint32_t  h, l, x, y;
    uint64_t  u, v;

    if (len >= 8) {
        for (i = 0; i + 8 < len; i += 8) {
            ngx_memcpy(&u, a + i, 8);
            ngx_memcpy(&v, b + i, 8);

            if (u != v) {
                return 0;
            }
        }

        ngx_memcpy(&u, a + len - 8, 8);
        ngx_memcpy(&v, b + len - 8, 8);

        return u == v;
    }

    if (len >= 4) {
        ngx_memcpy(&h, a, 4);
        ngx_memcpy(&l, a + len - 4, 4);
        ngx_memcpy(&x, b, 4);
        ngx_memcpy(&y, b + len - 4, 4);

        return h == x && l == y;
    }

    /* 0 to 3 bytes: the first, middle and last cover them all */
    return len == 0
           || (a[0] == b[0] && a[len / 2] == b[len / 2]
               && a[len - 1] == b[len - 1]);
}


/*
 * Counts the keys of the record's members (ps->members) that an earlier
 * member has, into ps->dups. The table holds member numbers + 1 past the
 * record's first serial number, by hash, and stays at most half full.
 */

static ngx_int_t
ngx_http_hris_slot_dups(ngx_http_hris_parser_t *ps)
{
    ngx_uint_t               i, j, n, mask, base, *seen;
    ngx_http_hris_member_t  *m, *o;

    if (2 * ps->nmembers > ps->nseen) {
        n = ps->nseen ? 2 * ps->nseen : 128;

        while (2 * ps->nmembers > n) {
            n *= 2;
        }

        seen = calloc(n, sizeof(ngx_uint_t));
        if (seen == NULL) {
            return NGX_ERROR;
        }

        free(ps->seen);
        ps->seen = seen;
        ps->nseen = n;
    }

    seen = ps->seen;
    mask = ps->nseen - 1;
    base = ps->serial;

    for (j = 0; j < ps->nmembers; j++) {
        m = &ps->members[j];

        for (i = ngx_http_hris_slot_hash(m->key.data, m->key.len);
             seen[i & mask] > base;
             i++)
        {
            o = &ps->members[seen[i & mask] - base - 1];

            if (o->key.len == m->key.len
                && ngx_memcmp(o->key.data, m->key.data, m->key.len) == 0)
            {
                ps->dups++;
                break;
            }
        }

        if (seen[i & mask] <= base) {
            seen[i & mask] = base + j + 1;
        }
    }

    ps->serial = base + ps->nmembers;

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


/*
 * The records and their members, cut from chunks of the pool: two
 * ngx_palloc() calls per record, among the request's other blocks, cost
 * as much as reading a record's keys. A chunk is larger than a pool
 * block's room, and so a large allocation of its own.
 */

#define NGX_HTTP_HRIS_SLOTS_CHUNK  8192

static void *
ngx_http_hris_slots_alloc(ngx_http_hris_parser_t *ps, size_t size)
{
    u_char  *p;
    size_t   n;

    size = ngx_align(size, NGX_ALIGNMENT);

    if ((size_t) (ps->chunk_end - ps->chunk) < size) {
        n = ngx_max(size, NGX_HTTP_HRIS_SLOTS_CHUNK);

        p = ngx_palloc(ps->slots->pool, n);
        if (p == NULL) {
            return NULL;
        }

        ps->chunk = p;
        ps->chunk_end = p + n;
    }

    p = ps->chunk;
    ps->chunk += size;

    return p;
}


/* the pool's cleanup: the values of the records never filled */

static void
ngx_http_hris_slots_release(void *data)
{
    ngx_http_hris_slots_t *slots = data;

    ngx_uint_t                 i, j;
    ngx_http_hris_slot_rec_t **rec;

    if (slots->pinned) {
        /* a walk over cold memory that would free nothing */
        return;
    }

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

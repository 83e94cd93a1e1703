/*
 * libFuzzer target of the provider JSON reader (src/ngx_http_hris_parse.c).
 * Differential: what the reader accepts, jansson's json_loadb() accepts as
 * an equal tree, and what it refuses, jansson refuses too (the
 * differences allowed: a document nested deeper than the reader's limit,
 * and a NUL byte that jansson skips).
 * Every object's recorded span loads again as that object, unless the
 * input holds duplicate keys. The selective parse of the root array
 * (ngx_http_hris_parse_select()) fails exactly as the full one, or holds
 * the elements of its window. The slots parse of the root array
 * (ngx_http_hris_parse_slots()) fails exactly as the full one, its slot
 * records' slots hold what jansson's objects hold for their keys, and
 * filled they are jansson's objects, keys in the same order.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_hris_parse.h"


/* every object under v has a span that loads as an equal object */

static int
fuzz_spans_ok(ngx_http_hris_spans_t *spans, json_t *v)
{
    int            ok;
    size_t         i, len;
    json_t        *again, *child;
    const char    *key;
    const u_char  *start;

    if (json_is_array(v)) {
        for (i = 0; i < json_array_size(v); i++) {
            if (!fuzz_spans_ok(spans, json_array_get(v, i))) {
                return 0;
            }
        }

        return 1;
    }

    if (!json_is_object(v)) {
        return 1;
    }

    if (ngx_http_hris_span_get(spans, v, &start, &len) != NGX_OK) {
        return 0;
    }

    again = json_loadb((const char *) start, len, 0, NULL);
    ok = (again != NULL && json_equal(again, v));
    json_decref(again);

    json_object_foreach(v, key, child) {
        if (!fuzz_spans_ok(spans, child)) {
            return 0;
        }
    }

    return ok;
}


/* a window of the root array, picked from the input's size */

static void
fuzz_select(const uint8_t *data, size_t size, json_t *full, int line,
    int col, const char *err)
{
    int                      sline, scol, ok;
    size_t                   i, n;
    json_t                  *ours;
    const char              *serr;
    ngx_http_hris_select_t   sel;

    ngx_memzero(&sel, sizeof(ngx_http_hris_select_t));
    sel.skip = size % 5;
    sel.room = 1 + size % 3;

    serr = NULL;
    ours = ngx_http_hris_parse_select(data, size, &sline, &scol, &serr,
                                      NULL, &sel);

    if (full == NULL || ours == NULL) {
        ok = (full == NULL && ours == NULL && sline == line && scol == col
              && strcmp(serr, err) == 0);

    } else if (!json_is_array(full)) {
        ok = (sel.list == NULL && json_equal(ours, full));

    } else {
        n = json_array_size(full);
        ok = (sel.list == ours && sel.raw == n
              && sel.offset == ngx_min(sel.skip, n)
              && sel.more == (n > sel.skip + sel.room)
              && json_array_size(ours)
                 == ngx_min(n, sel.skip + sel.room) - sel.offset);

        for (i = 0; ok && i < json_array_size(ours); i++) {
            ok = json_equal(json_array_get(ours, i),
                            json_array_get(full, sel.offset + i));
        }
    }

    json_decref(ours);

    if (!ok) {
        fprintf(stderr, "the selective parse differs from the full one\n");
        abort();
    }
}


/* a few keys: one-letter ones (short inputs hit them), case, prefix */

static ngx_str_t  fuzz_names[] = {
    ngx_string("a"), ngx_string("b"), ngx_string("A"), ngx_string("ab"),
    ngx_string(""), ngx_string("id")
};

static ngx_int_t                  fuzz_index[16];
static ngx_http_hris_slot_keys_t  fuzz_keys;


static int
fuzz_same_text(json_t *a, json_t *b)
{
    int    ok;
    char  *x, *y;

    x = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY);
    y = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);
    ok = (x && y && strcmp(x, y) == 0);
    free(x);
    free(y);

    return ok;
}


static void
fuzz_slots(const uint8_t *data, size_t size, json_t *full, int line,
    int col, const char *err)
{
    int                         sline, scol, ok;
    size_t                      i, k;
    json_t                     *ours, *elem, *v;
    ngx_uint_t                  h;
    const char                 *serr;
    ngx_pool_t                 *pool;
    ngx_http_hris_slots_t       slots;
    ngx_http_hris_slot_rec_t  **rec;

    if (fuzz_keys.index == NULL) {
        fuzz_keys.keys = fuzz_names;
        fuzz_keys.n = sizeof(fuzz_names) / sizeof(fuzz_names[0]);
        fuzz_keys.index = fuzz_index;
        fuzz_keys.mask = 15;

        for (i = 0; i < 16; i++) {
            fuzz_index[i] = -1;
        }

        for (i = 0; i < fuzz_keys.n; i++) {
            h = ngx_http_hris_slot_hash(fuzz_names[i].data,
                                        fuzz_names[i].len);
            while (fuzz_index[h & 15] >= 0) {
                h++;
            }
            fuzz_index[h & 15] = i;
        }
    }

    pool = ngx_create_pool(1024, NULL);
    if (pool == NULL) {
        abort();
    }

    ngx_memzero(&slots, sizeof(ngx_http_hris_slots_t));
    slots.slot_keys = &fuzz_keys;
    slots.pool = pool;

    serr = NULL;
    ours = ngx_http_hris_parse_slots(data, size, &sline, &scol, &serr,
                                     NULL, &slots);

    if (full == NULL || ours == NULL) {
        ok = (full == NULL && ours == NULL && sline == line && scol == col
              && strcmp(serr, err) == 0);

    } else if (!json_is_array(full)) {
        ok = (slots.list == NULL && fuzz_same_text(ours, full));

    } else {
        ok = (slots.list == ours
              && slots.recs.nelts == json_array_size(full));
        rec = slots.recs.elts;

        for (i = 0; ok && i < json_array_size(full); i++) {
            elem = json_array_get(full, i);

            if (rec[i] == NULL) {
                continue;
            }

            ok = (rec[i]->obj == json_array_get(ours, i)
                  && json_object_size(rec[i]->obj) == 0);

            for (k = 0; ok && k < fuzz_keys.n; k++) {
                v = json_object_getn(elem, (char *) fuzz_names[k].data,
                                     fuzz_names[k].len);
                ok = (v == NULL) == (rec[i]->slot[k] == NULL)
                     && (v == NULL || fuzz_same_text(v, rec[i]->slot[k]));
            }

            /* every other one filled, the rest left to the pool */
            if (ok && (i % 2 == 0 || size % 2)) {
                ok = ngx_http_hris_slot_fill(rec[i]) == NGX_OK;
            }
        }

        if (ok && size % 2) {
            ok = fuzz_same_text(ours, full);
        }
    }

    json_decref(ours);
    ngx_destroy_pool(pool);

    if (!ok) {
        fprintf(stderr, "the slots parse differs from the full one\n");
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                     line, col, dups;
    json_t                 *ours, *theirs, *strict;
    const char             *err;
    ngx_pool_t             *pool;
    ngx_http_hris_spans_t   spans;

    pool = ngx_create_pool(1024, NULL);
    if (pool == NULL) {
        abort();
    }

    ngx_memzero(&spans, sizeof(ngx_http_hris_spans_t));
    spans.pool = pool;

    err = NULL;
    line = 0;
    col = 0;
    ours = ngx_http_hris_parse(data, size, &line, &col, &err, &spans);
    theirs = json_loadb((const char *) data, size, 0, NULL);

    if (ours != NULL && theirs == NULL) {
        fprintf(stderr, "the reader accepted what jansson refuses\n");
        abort();
    }

    /*
     * jansson drops a NUL byte that its lexer gives back (the byte after a
     * number: "[0\0]" loads as [0]); RFC 8259 allows none, and the reader
     * refuses it: stricter only there
     */

    if (ours == NULL && theirs != NULL
        && memchr(data, '\0', size) == NULL
        && (err == NULL || strcmp(err, NGX_HTTP_HRIS_PARSE_TOO_DEEP) != 0))
    {
        fprintf(stderr, "the reader refused what jansson accepts: %s\n",
                err ? err : "(no message)");
        abort();
    }

    if (ours != NULL && !json_equal(ours, theirs)) {
        fprintf(stderr, "the reader and jansson built different trees\n");
        abort();
    }

    if (ours != NULL) {
        strict = json_loadb((const char *) data, size,
                            JSON_REJECT_DUPLICATES, NULL);
        dups = (strict == NULL);
        json_decref(strict);

        if (!dups && !fuzz_spans_ok(&spans, ours)) {
            fprintf(stderr, "an object's span does not load as it\n");
            abort();
        }
    }

    fuzz_select(data, size, ours, line, col, err);
    fuzz_slots(data, size, ours, line, col, err);

    ngx_destroy_pool(pool);

    json_decref(ours);
    json_decref(theirs);

    return 0;
}

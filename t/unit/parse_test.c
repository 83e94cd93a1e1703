/*
 * Differential test of src/ngx_http_hris_parse.c against jansson's own
 * json_loadb(): for hand-written, generated and randomly damaged inputs,
 * both must fail, or both succeed with equal trees. Each object's span
 * (the input bytes remote_data is copied from) must load as that object,
 * without duplicate keys; only an object whose bytes hold a duplicate key
 * has none. Every object the span table names must be alive (valgrind
 * tells), and an object built after a parse never inherits a span.
 * The selective parse (ngx_http_hris_parse_select()) fails exactly where
 * and as the full one does, and of its array holds exactly the elements
 * a window selects (with and without a count of records per element),
 * everything else as jansson reads it. The slots parse (ngx_http_hris_
 * parse_slots()) fails where and as the full one does, and its slot
 * records hold in their slots and give when filled what jansson's
 * objects hold, in the same order. Prints TAP.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_hris_parse_int.h"


static int  tests, failed, selects;


/*
 * The input in a buffer of its exact size: a read past its end is an
 * error under valgrind or ASan (the reader reads words at a time)
 */

static char *
exact(const char *text, size_t len)
{
    char  *copy;

    copy = malloc(len ? len : 1);
    if (copy == NULL) {
        abort();
    }

    memcpy(copy, text, len);

    return copy;
}


/*
 * Every object in v has a span that jansson loads, refusing duplicate
 * keys, as an equal object; or, when dups_ok (the input has duplicate
 * keys), none at all.
 */

static int
spans_ok(ngx_http_hris_spans_t *spans, json_t *v, int dups_ok)
{
    int            ok;
    size_t         i, len;
    json_t        *again;
    const char    *key;
    const u_char  *start;

    if (json_is_array(v)) {
        for (i = 0; i < json_array_size(v); i++) {
            if (!spans_ok(spans, json_array_get(v, i), dups_ok)) {
                return 0;
            }
        }

        return 1;
    }

    if (!json_is_object(v)) {
        return 1;
    }

    if (ngx_http_hris_span_get(spans, v, &start, &len) != NGX_OK) {
        ok = dups_ok;

    } else {
        again = json_loadb((const char *) start, len, JSON_REJECT_DUPLICATES,
                           NULL);
        ok = again && json_equal(again, v);
        json_decref(again);
    }

    json_object_foreach(v, key, again) {
        if (!spans_ok(spans, again, dups_ok)) {
            return 0;
        }
    }

    return ok;
}


/*
 * Every object the table names is alive: under valgrind, reading a freed
 * one is an error that fails the run.
 */

static int
table_alive(ngx_http_hris_spans_t *spans)
{
    ngx_uint_t  i;

    for (i = 0; i < spans->size; i++) {
        if (spans->keys[i] && !json_is_object((json_t *) spans->keys[i])) {
            return 0;
        }
    }

    return 1;
}


/* objects built after a parse (at freed addresses, if any) have no span */

static int
fresh_objects_ok(ngx_http_hris_spans_t *spans)
{
    int            i, ok;
    size_t         len;
    json_t        *fresh[64];
    const u_char  *start;

    ok = 1;

    for (i = 0; i < 64; i++) {
        fresh[i] = json_object();
        if (fresh[i]
            && ngx_http_hris_span_get(spans, fresh[i], &start, &len)
               == NGX_OK)
        {
            ok = 0;
        }
    }

    for (i = 0; i < 64; i++) {
        json_decref(fresh[i]);
    }

    return ok;
}


static void
check(const char *name, const char *given, size_t len)
{
    int                     line, col, same, dups;
    char                   *text;
    json_t                 *ours, *theirs, *strict;
    const char             *err;
    ngx_pool_t             *pool;
    json_error_t            jerr;
    ngx_http_hris_spans_t   spans;

    pool = ngx_create_pool(1024, NULL);
    text = exact(given, len);
    if (pool == NULL) {
        abort();
    }

    memset(&spans, 0, sizeof(spans));
    spans.pool = pool;

    ours = ngx_http_hris_parse((const u_char *) text, len, &line, &col, &err,
                               &spans);
    theirs = json_loadb(text, len, 0, &jerr);

    strict = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    dups = (theirs != NULL && strict == NULL);
    json_decref(strict);

    same = (ours == NULL && theirs == NULL)
           || (ours && theirs && json_equal(ours, theirs));

    /* a failed parse keeps its objects in the table, alive */
    same = same && (ours == NULL || spans_ok(&spans, ours, dups))
           && table_alive(&spans) && fresh_objects_ok(&spans);

    ngx_destroy_pool(pool);

    tests++;
    if (!same) {
        failed++;
        printf("not ok %d - %s: ours %s, jansson %s (%.*s)\n", tests, name,
               ours ? "parsed" : err, theirs ? "parsed" : jerr.text,
               (int) (len > 60 ? 60 : len), text);
    }

    json_decref(ours);
    json_decref(theirs);
    free(text);
}


/* records per element, as an unnest would: an array's size, an object 1 */

static ngx_int_t
count_records(void *data, json_t *elem)
{
    (*(int *) data)++;

    if (json_is_array(elem)) {
        return json_array_size(elem);
    }

    return json_is_object(elem) ? 1 : 0;
}


/*
 * The selective parse of the array at "keys" (the root when nkeys is 0)
 * against the full one: the same failure and position, or the same tree
 * but for the array, which holds the elements jansson's tree has whose
 * records meet [skip, skip + room), and the counts that say where.
 */

static int
select_one(const char *given, size_t len, ngx_str_t *keys, ngx_uint_t nkeys,
    ngx_uint_t skip, ngx_uint_t room, ngx_uint_t counted)
{
    int                      line, col, fline, fcol, ok, calls;
    size_t                   i, n, seen, first, kept_n;
    json_t                  *ours, *full, *list, *elem, *want, *holder;
    char                    *text;
    const char              *err, *ferr;
    ngx_pool_t              *pool;
    ngx_uint_t               more, kept;
    ngx_http_hris_spans_t    spans;
    ngx_http_hris_select_t   sel;

    pool = ngx_create_pool(1024, NULL);
    text = exact(given, len);
    if (pool == NULL) {
        abort();
    }

    memset(&spans, 0, sizeof(spans));
    spans.pool = pool;
    memset(&sel, 0, sizeof(sel));
    sel.keys = keys;
    sel.nkeys = nkeys;
    sel.skip = skip;
    sel.room = room;
    calls = 0;

    if (counted) {
        sel.count = count_records;
        sel.data = &calls;
    }

    full = ngx_http_hris_parse((const u_char *) text, len, &fline, &fcol,
                               &ferr, NULL);
    ours = ngx_http_hris_parse_select((const u_char *) text, len, &line,
                                      &col, &err, &spans, &sel);

    if (full == NULL || ours == NULL) {
        ok = (full == NULL && ours == NULL && line == fline && col == fcol
              && strcmp(err, ferr) == 0);
        goto done;
    }

    holder = NULL;
    list = full;

    for (i = 0; i < nkeys && list; i++) {
        holder = list;
        list = json_is_object(list)
               ? json_object_getn(list, (char *) keys[i].data, keys[i].len)
               : NULL;
    }

    if (!json_is_array(list)) {
        /* no array there: everything built, nothing selected */
        ok = (sel.list == NULL && json_equal(ours, full));
        goto done;
    }

    /* what the window should keep, from the full tree */
    want = json_array();
    seen = 0;
    first = (size_t) -1;
    more = 0;

    json_array_foreach(list, i, elem) {
        n = counted ? (size_t) count_records(&calls, elem) : 1;

        if (seen >= skip + room) {
            more = more || n > 0;
            continue;
        }

        kept = (n > 0 && seen + n > skip);

        if (kept) {
            json_array_append(want, elem);
            if (first == (size_t) -1) {
                first = seen;
            }
        }

        seen += n;
    }

    kept_n = json_array_size(want);

    ok = sel.list != NULL && json_equal(sel.list, want)
         && sel.raw == json_array_size(list)
         && sel.offset == (kept_n ? first : seen)
         && sel.more == more
         && spans_ok(&spans, sel.list, 1)
         && table_alive(&spans);

    /* the rest of the tree: the full one with the array replaced */
    if (ok) {
        if (holder) {
            json_object_setn(holder, (char *) keys[nkeys - 1].data,
                             keys[nkeys - 1].len, want);
            ok = json_equal(ours, full);

        } else {
            ok = json_equal(ours, want);
        }
    }

    json_decref(want);

done:

    ngx_destroy_pool(pool);
    json_decref(ours);
    json_decref(full);

    free(text);
    selects++;

    return ok;
}


/*
 * The slot keys the slot parses read with: keys of the generated and
 * hand-written inputs, a key that differs from one only in case, keys
 * that are prefixes of others, the empty key, one with an escape.
 */

static ngx_str_t  slot_names[] = {
    ngx_string("k0"), ngx_string("k1"), ngx_string("k2"), ngx_string("k3"),
    ngx_string("k0\xc3\xa9"), ngx_string("K0"), ngx_string("k"),
    ngx_string(""), ngx_string("id"), ngx_string("firstName"),
    ngx_string("a"), ngx_string("r"), ngx_string("x"),

    /* check_guess()'s: as long as keys compared a word at a time */
    ngx_string("ab"), ngx_string("abc"), ngx_string("abcd"),
    ngx_string("abcdefg"), ngx_string("abcdefgh"),
    ngx_string("abcdefghi"), ngx_string("abcdefghijklmnop"),
    ngx_string("abcdefghijklmnopq"),
    ngx_string("abcdefghijklmnopqrstuvwxyz0123456")
};

static ngx_int_t                   slot_index[64];
static ngx_http_hris_slot_keys_t   slot_keys;


static void
slot_keys_init(void)
{
    ngx_uint_t  i, h;

    slot_keys.keys = slot_names;
    slot_keys.n = sizeof(slot_names) / sizeof(slot_names[0]);
    slot_keys.index = slot_index;
    slot_keys.mask = 63;

    for (i = 0; i < 64; i++) {
        slot_index[i] = -1;
    }

    for (i = 0; i < slot_keys.n; i++) {
        h = ngx_http_hris_slot_hash(slot_names[i].data, slot_names[i].len);

        while (slot_index[h & 63] >= 0) {
            h++;
        }

        slot_index[h & 63] = i;
    }
}


/* a's and b's compact JSON, keys in their order: the same text */

static int
same_text(json_t *a, json_t *b)
{
    int    ok;
    char  *x, *y;

    x = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY);
    y = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);
    ok = x && y && strcmp(x, y) == 0;
    free(x);
    free(y);

    return ok;
}


/*
 * One slot record against jansson's object: every slot holds what
 * json_object_getn() finds (the last of duplicate keys), the object is
 * empty until filled, and its span loads as jansson's object.
 */

static int
slot_rec_ok(ngx_http_hris_spans_t *spans, ngx_http_hris_slot_rec_t *rec,
    json_t *elem)
{
    size_t         len;
    json_t        *v, *again;
    ngx_uint_t     i;
    const u_char  *start;

    if (!json_is_object(elem) || rec->filled || json_object_size(rec->obj)
        || rec->keys != &slot_keys)
    {
        return 0;
    }

    for (i = 0; i < slot_keys.n; i++) {
        v = json_object_getn(elem, (char *) slot_names[i].data,
                             slot_names[i].len);

        if ((v == NULL) != (rec->slot[i] == NULL)
            || (v && !same_text(v, rec->slot[i])))
        {
            return 0;
        }
    }

    if (ngx_http_hris_span_get(spans, rec->obj, &start, &len) != NGX_OK) {
        return 0;
    }

    again = json_loadb((const char *) start, len, JSON_REJECT_DUPLICATES,
                       NULL);
    i = again && same_text(again, elem);
    json_decref(again);

    return i;
}


/*
 * The slots parse of the array at "keys" against the full one: the same
 * failure and position, or the same tree once the slot records are
 * filled (fill: all of them; else every other one, the rest released by
 * the pool's cleanup: valgrind tells a leak), in jansson's key order.
 * Elements that are not objects, and objects with a duplicate key, are
 * ordinary elements.
 */

static int
slots_one(const char *given, size_t len, ngx_str_t *keys, ngx_uint_t nkeys,
    ngx_uint_t fill)
{
    int                         line, col, fline, fcol, ok;
    size_t                      i, i2;
    json_t                     *ours, *full, *list, *elem, *mine;
    char                       *text;
    const char                 *err, *ferr;
    ngx_pool_t                 *pool;
    const u_char               *start;
    ngx_http_hris_spans_t       spans, fspans;
    ngx_http_hris_slots_t       slots;
    ngx_http_hris_slot_rec_t  **rec;

    pool = ngx_create_pool(1024, NULL);
    text = exact(given, len);
    if (pool == NULL) {
        abort();
    }

    memset(&spans, 0, sizeof(spans));
    spans.pool = pool;
    memset(&slots, 0, sizeof(slots));
    slots.keys = keys;
    slots.nkeys = nkeys;
    slots.slot_keys = &slot_keys;
    slots.pool = pool;

    memset(&fspans, 0, sizeof(fspans));
    fspans.pool = pool;

    full = ngx_http_hris_parse((const u_char *) text, len, &fline, &fcol,
                               &ferr, &fspans);
    ours = ngx_http_hris_parse_slots((const u_char *) text, len, &line,
                                     &col, &err, &spans, &slots);

    if (full == NULL || ours == NULL) {
        ok = (full == NULL && ours == NULL && line == fline && col == fcol
              && strcmp(err, ferr) == 0);
        goto done;
    }

    list = full;

    for (i = 0; i < nkeys && list; i++) {
        list = json_is_object(list)
               ? json_object_getn(list, (char *) keys[i].data, keys[i].len)
               : NULL;
    }

    if (!json_is_array(list)) {
        ok = (slots.list == NULL && same_text(ours, full));
        goto done;
    }

    ok = slots.list != NULL
         && slots.recs.nelts == json_array_size(list)
         && json_array_size(slots.list) == json_array_size(list);

    rec = slots.recs.elts;

    for (i = 0; ok && i < json_array_size(list); i++) {
        elem = json_array_get(list, i);
        mine = json_array_get(slots.list, i);

        /*
         * a slot record exactly for the objects without a duplicate key
         * (those the full parse gives a span)
         */
        if (json_is_object(elem)
            && (rec[i] != NULL)
               != (ngx_http_hris_span_get(&fspans, elem, &start, &i2)
                   == NGX_OK))
        {
            ok = 0;
            break;
        }

        if (rec[i] == NULL) {
            /* an ordinary element: as jansson reads it */
            ok = same_text(mine, elem);
            continue;
        }

        ok = rec[i]->obj == mine && slot_rec_ok(&spans, rec[i], elem);

        if (ok && (fill || i % 2 == 0)) {
            ok = ngx_http_hris_slot_fill(rec[i]) == NGX_OK
                 && rec[i]->filled && same_text(mine, elem);
        }
    }

    if (ok && fill) {
        ok = same_text(ours, full);
    }

done:

    /* the tree goes first, the unfilled records' values with the pool */
    json_decref(ours);
    ngx_destroy_pool(pool);
    json_decref(full);

    free(text);
    selects++;

    return ok;
}


static void
check_slots(const char *name, const char *text, size_t len)
{
    int          ok;
    char        *wrapped;
    size_t       wlen;
    ngx_uint_t   fill;
    ngx_str_t    keys[2] = { ngx_string("data"), ngx_string("Result") };

    ok = 1;
    wrapped = malloc(2 * len + 64);
    if (wrapped == NULL) {
        abort();
    }

    /* the array as a value among others, and a duplicate key after it */
    wlen = sprintf(wrapped, "{\"a\":1,\"data\":{\"Result\":");
    memcpy(wrapped + wlen, text, len);
    wlen += len;
    wlen += sprintf(wrapped + wlen, ",\"z\":[1]},\"b\":");
    memcpy(wrapped + wlen, text, len);
    wlen += len;
    wrapped[wlen++] = '}';

    for (fill = 0; ok && fill < 2; fill++) {
        ok = slots_one(text, len, NULL, 0, fill)
             && slots_one(wrapped, wlen, keys, 2, fill)
             && slots_one(wrapped, wlen, keys, 1, fill);
    }

    free(wrapped);

    tests++;
    if (!ok) {
        failed++;
        printf("not ok %d - %s, slot records (%.*s)\n", tests, name,
               (int) (len > 60 ? 60 : len), text);
    }
}


/* a few windows over the same input, the root array and one in an object */

static void
check_select(const char *name, const char *text, size_t len)
{
    int          ok;
    char        *wrapped;
    size_t       wlen;
    ngx_uint_t   w, counted;
    ngx_str_t    keys[2] = { ngx_string("data"), ngx_string("Result") };
    static const ngx_uint_t  windows[][2] = {
        { 0, 1 }, { 1, 1 }, { 2, 3 }, { 0, 500 }, { 7, 2 }
    };

    ok = 1;
    wrapped = malloc(2 * len + 64);
    if (wrapped == NULL) {
        abort();
    }

    /* the array as a value among others, and a duplicate key after it */
    wlen = sprintf(wrapped, "{\"a\":1,\"data\":{\"Result\":");
    memcpy(wrapped + wlen, text, len);
    wlen += len;
    wlen += sprintf(wrapped + wlen, ",\"z\":[1]},\"b\":");
    memcpy(wrapped + wlen, text, len);
    wlen += len;
    wrapped[wlen++] = '}';

    for (w = 0; ok && w < sizeof(windows) / sizeof(windows[0]); w++) {
        for (counted = 0; ok && counted < 2; counted++) {
            ok = select_one(text, len, NULL, 0, windows[w][0], windows[w][1],
                            counted)
                 && select_one(wrapped, wlen, keys, 2, windows[w][0],
                               windows[w][1], counted)
                 && select_one(wrapped, wlen, keys, 1, windows[w][0],
                               windows[w][1], counted);
        }
    }

    free(wrapped);

    tests++;
    if (!ok) {
        failed++;
        printf("not ok %d - %s, selective: window %lu (%.*s)\n", tests, name,
               (unsigned long) (w - 1), (int) (len > 60 ? 60 : len), text);
    }
}


static const char *cases[] = {
    "{}", "[]", " { \"a\" : 1 } ", "[1,2,3]", "{\"a\":[{\"b\":null}]}",
    "[true,false,null]", "[-0]", "[0]", "[-1]", "[1.5]", "[1e3]", "[1E-3]",
    "[-1.25e+10]", "[9223372036854775807]", "[-9223372036854775808]",
    "[9223372036854775808]", "[1e400]", "[1e-400]", "[01]", "[1.]", "[.5]",
    "[-]", "[+1]", "[1e]", "\"top\"", "1", "null", "", "   ", "[", "{",
    "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{1:2}", "[\"\\u00e9\"]",
    "[\"\\ud83d\\ude00\"]", "[\"\\ud83d\"]", "[\"\\ude00\"]",
    "[\"\\u0000\"]", "[\"a\\tb\\nc\\\\d\\/e\\\"f\"]", "[\"\\x\"]",
    "[\"caf\xc3\xa9\"]", "[\"\xc3\"]", "[\"\xe2\x82\xac\"]",
    "[\"\xed\xa0\x80\"]", "[\"\xf0\x9f\x98\x80\"]", "[\"\xc0\xaf\"]",
    "[\"a\x01b\"]", "{\"a\":1,\"a\":2}", "[tru]", "[nul]", "[falsey]",
    "{\"k\\u00e9y\":\"v\"}", "[1] x", "[[[[[]]]]]", "{\"\":\"\"}",

    /* numbers longer than the reader's stack buffer: reals are valid */
    "[3.14159265358979323846264338327950288419716939937510582097494459230781]",
    "[1234567890123456789012345678901234567890123456789012345678901234567.5]",
    "[0.00000000000000000000000000000000000000000000000000000000000000000001]",
    "[12345678901234567890123456789012345678901234567890123456789012345678]",
    "{\"", "[\"",

    /* duplicate keys: the replaced value must not leave its span behind */
    "{\"data\":[{\"id\":\"1\",\"firstName\":\"real\"}],"
        "\"x\":{\"firstName\":\"INJECTED\",\"id\":\"999\"},\"x\":{\"k\":1}}",
    "{\"a\":{\"b\":{\"c\":{}}},\"a\":[{\"d\":{}}],\"a\":{\"e\":1}}",
    "[{\"r\":{\"k\":1,\"k\":{\"z\":2}}},{\"s\":{\"t\":3}}]",
    "{\"k\":{},\"k\":{},\"k\":{},\"k\":{}}",
    "{\"x\":{\"y\":1},\"x\":{\"y\":1}, \"x\"",
    "{\"x\":{\"y\":1},\"x\":{\"y\":2}} trailing",

    /* records read as slot records: duplicates, case, prefixes, escapes */
    "[{\"k0\":1,\"k1\":2,\"k0\":3}]",
    "[{\"k0\":1,\"zz\":2,\"zz\":{\"q\":1},\"k1\":[]}]",
    "[{\"k0\":{\"a\":1,\"a\":2}}]",
    "[{\"K0\":1,\"k0\":2,\"k\":3,\"k00\":4,\"\":5}]",
    "[{\"k\\u0030\":\"esc\",\"k0\\u00e9\":{\"x\":[1,{}]}}]",
    "[\"str\",null,[{\"k0\":1}],{},{\"k1\":true},7]",
    "[{\"id\":\"1\",\"firstName\":\"A\"},{\"id\":\"2\"},{}]",
    "[{\"k0\":1},{\"k0\":2,\"k0\":",
    "{\"data\":[{\"k0\":1}],\"data\":[{\"k1\":2}]}",
    "{\"data\":[{\"k0\":1}],\"data\":{\"Result\":[{\"k2\":2}]}}",

    /* the last record's keys as the guess: kept, left, duplicated */
    "[{\"k0\":1,\"k1\":2},{\"k0\":3,\"k1\":4},{\"k0\":5,\"k0\":6}]",
    "[{\"k0\":1,\"k1\":2},{\"k0\":3,\"k1\":4,\"k0\":5}]",
    "[{\"k0\":1,\"k0\":2},{\"k0\":3,\"k0\":4},{\"k0\":5,\"k1\":6}]",
    "[{\"k0\":1,\"zz\":2},{\"k0\":1,\"zz\":2,\"zz\":3},{\"k0\":1}]",
    "[{\"k1\":1,\"k0\":2},{\"k0\":3,\"k1\":4},{},{\"k1\":5,\"k0\":6}]",
    "[{\"k\\u0030\":1},{\"k0\":2},{\"k\\u0030\":3,\"k0\":4}]",

    /* whitespace right after ':' and ',' (compact JSON has none) */
    "{\"a\": 1, \"b\" :2 ,\"c\":\t3,\n\"d\":\r\n[1, 2,\t3 ,4]}",
    "[{\"k0\": \"x\", \"k1\":\n1}, {\"k0\":\"y\" ,\"k1\":\r2}]",
    "[{\"k0\":\"x\",\"k1\":1},\t{\"k0\":\"y\", \"k1\": 2} ]",
    "{\"a\":\v1}", "[1,\v2]", "[1,\f2]", "{\"a\":\f1}", "[1, ]",
    "{\"a\": }", "[1,", "[1, ", "{\"a\":", "{\"a\": ",

    /* literals in slot records, whole, damaged and cut */
    "[{\"k0\":null,\"k1\":true,\"k2\":false},{\"k0\":null}]",
    "[{\"k0\":nul}]", "[{\"k0\":nulL}]", "[{\"k0\":nullx}]",
    "[{\"k0\":n", "[{\"k0\":nu", "[{\"k0\":nul", "[{\"k0\":null",
    "[{\"k0\":fals", "[{\"k0\":tru", "[{\"k0\":n}]",
    NULL
};


/* random documents: nested values with awkward strings and numbers */

static void
gen(char **p, char *end, int depth)
{
    int          k, n, i;
    const char  *atoms[] = { "true", "false", "null", "0", "-12", "3.25",
                             "1e5", "-0.0", "12345678901234", "\"\"",
                             "\"plain\"", "\"esc\\\"aped\\\\\"",
                             "\"\\u00fc\\u4e2d\"", "\"\xc3\xbc\xe4\xb8\xad\"",
                             "\"tab\\t\\nnl\"", "\"\\ud83d\\ude00\"" };

    if (end - *p < 64) {
        *p += sprintf(*p, "0");
        return;
    }

    k = depth > 6 ? 2 : rand() % 3;

    if (k == 0) {
        n = rand() % 5;
        *(*p)++ = '{';
        for (i = 0; i < n && end - *p > 80; i++) {
            *p += sprintf(*p, "%s\"k%d%s\":", i ? "," : "", rand() % 4,
                          rand() % 2 ? "\\u00e9" : "");
            gen(p, end, depth + 1);
        }
        *(*p)++ = '}';

    } else if (k == 1) {
        n = rand() % 5;
        *(*p)++ = '[';
        for (i = 0; i < n && end - *p > 80; i++) {
            if (i) {
                *(*p)++ = ',';
            }
            gen(p, end, depth + 1);
        }
        *(*p)++ = ']';

    } else {
        *p += sprintf(*p, "%s", atoms[rand() % 16]);
    }
}


/*
 * The strings the reader reads inline (ngx_http_hris_parse_str()) and
 * those it leaves to ngx_http_hris_parse_string(): 0 to 33 plain bytes,
 * then bytes that stop the scan or not (none, an escape, control bytes,
 * the plain bytes next to those that are not, UTF-8, a quote after the
 * closing one, a backslash at the input's end), as keys and values of slot
 * records, closing 0 to 9 bytes before the input ends, or the input cut
 * in its last bytes.
 */

static void
check_edges(void)
{
    int          n, k, where, pad, cut;
    char         doc[128], str[64], *p;
    size_t       len;
    static const char  *tails[] = { "", "\\n", "\\u00e9x", "\x01",
                                     "\x1f", " !#[]\x7f", "\xc3\xa9",
                                     "\"\"", "\\" };

    for (n = 0; n <= 33; n++) {
        for (k = 0; k < (int) (sizeof(tails) / sizeof(tails[0])); k++) {
            memset(str, 'a' + n % 26, n);
            strcpy(str + n, tails[k]);

            for (where = 0; where < 2; where++) {
                p = doc;
                p += sprintf(p, where ? "[{\"k0\":\"%s\"}]"
                                      : "[{\"%s\":1}]", str);

                for (pad = 0; pad <= 9; pad++) {
                    len = p - doc + pad;
                    memset(p, ' ', pad);
                    check("edges", doc, len);
                    check_slots("edges", doc, len);

                    if (pad < 2) {
                        check_select("edges", doc, len);
                    }
                }

                for (cut = 1; cut <= 12 && cut <= p - doc; cut++) {
                    check("edges cut", doc, p - doc - cut);
                    check_slots("edges cut", doc, p - doc - cut);
                }
            }
        }
    }
}


/*
 * UTF-8, valid or not, after 0 to 70 ASCII bytes and before 0 to 3 more:
 * every place in and across the blocks of the ASCII check, the input's
 * end included. jansson rejects exactly the invalid ones.
 */

static void
check_utf8(void)
{
    int          n, m, k;
    char         doc[128], *p;
    static const char  *seqs[] = {
        "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\x80", "\xff",
        "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\xc3"
    };

    for (n = 0; n <= 70; n++) {
        for (m = 0; m <= 3; m++) {
            for (k = 0; k < (int) (sizeof(seqs) / sizeof(seqs[0])); k++) {
                p = doc;
                *p++ = '[';
                *p++ = '"';
                memset(p, 'u', n);
                p += n;
                p += sprintf(p, "%s", seqs[k]);
                memset(p, 'v', m);
                p += m;
                p += sprintf(p, "\"]");

                check("utf-8", doc, p - doc);

                /* the sequence at the input's very end */
                check("utf-8 end", doc, p - doc - 2 - m);
            }
        }
    }
}


/*
 * A key that differs from the last record's at the same place in one
 * byte only, wherever that byte is, in keys of every length that the
 * compare with the guess handles differently: it is not the guess, and
 * gets its own slot or none; the other way round as well.
 */

static const char *guess_cases[] = {
    "[{\"a\\\"b\":1},{\"a\"b\":2}]",
    "[{\"a\\u0001\":1},{\"a\x01\":2}]",
    "[{\"a\\\\\":1},{\"a\\\":2}]",
    "[{\"a\\\\\":1},{\"a\\\":2}]  ",
    "[{\"a\\u0062\":1},{\"ab\":2},{\"ab\":3}]",
    "[{\"ab\":1},{\"a\\u0062\":2},{\"ab\":3}]",
    NULL
};


static void
check_guess(void)
{
    char        doc[256], key[64];
    size_t      i, j, len;
    ngx_str_t  *name;

    for (i = 0; i < sizeof(slot_names) / sizeof(slot_names[0]); i++) {
        name = &slot_names[i];

        for (j = 0; j < name->len; j++) {
            memcpy(key, name->data, name->len);
            key[j] = 'Z';

            len = sprintf(doc, "[{\"%.*s\":1,\"k0\":2},{\"%.*s\":3,"
                          "\"k0\":4}]", (int) name->len,
                          (char *) name->data, (int) name->len, key);
            check_slots("guess", doc, len);

            len = sprintf(doc, "[{\"%.*s\":1,\"k0\":2},{\"%.*s\":3,"
                          "\"k0\":4}]", (int) name->len, key,
                          (int) name->len, (char *) name->data);
            check_slots("guess", doc, len);

            /* the guess taken, a duplicate after it */
            len = sprintf(doc, "[{\"%.*s\":1,\"k1\":2},{\"%.*s\":3,"
                          "\"%.*s\":4}]", (int) name->len,
                          (char *) name->data, (int) name->len,
                          (char *) name->data, (int) name->len, key);
            check_slots("guess", doc, len);
        }
    }

    /*
     * a guess that had escapes is not matched against the input's bytes:
     * its unescaped bytes would take a quote, a backslash or a control
     * byte there for its own
     */
    for (i = 0; guess_cases[i]; i++) {
        check_slots("guess escaped", guess_cases[i], strlen(guess_cases[i]));
    }

    /* the guess taken near the input's end, and cut there */
    len = sprintf(doc, "[{\"abcdefghi\":1,\"k0\":\"v\"},"
                  "{\"abcdefghi\":2,\"k0\":\"w\"}]");

    for (j = 1; j <= len; j++) {
        check_slots("guess cut", doc, j);
    }
}


/*
 * The eight-byte test of plain string bytes against the byte table: every
 * byte value at every position among plain bytes of all kinds, and every
 * pair of bytes that are not plain (the borrow of one must not hide the
 * other, nor flag a plain word).
 */

static int
plain8_ok(void)
{
    int     b, c, i, k;
    u_char  w[8];
    static const u_char  fill[] = { 'a', 0x20, 0x21, 0x23, 0x5b, 0x5d,
                                    0x7f, 0x80, 0xff };

    for (k = 0; k < (int) sizeof(fill); k++) {
        for (b = 0; b < 256; b++) {
            for (i = 0; i < 8; i++) {
                memset(w, fill[k], 8);
                w[i] = (u_char) b;

                if (!ngx_http_hris_json_plain8(w) != !ngx_http_hris_json_plain[b]) {
                    return 0;
                }

#if (NGX_HAVE_LITTLE_ENDIAN)
                /* the reader's stop: the first byte that is not plain */
                if (!ngx_http_hris_json_plain[b]
                    && ngx_http_hris_json_plain[fill[k]]
                    && __builtin_ctzll(ngx_http_hris_json_stop8(w)) >> 3
                       != i)
                {
                    return 0;
                }
#endif
            }
        }
    }

    for (b = 0; b < 256; b++) {
        for (c = 0; c < 256; c++) {
            if (ngx_http_hris_json_plain[b] && ngx_http_hris_json_plain[c]) {
                continue;
            }

            for (i = 0; i < 7; i++) {
                memset(w, 'a', 8);
                w[i] = (u_char) b;
                w[i + 1] = (u_char) c;

                if (ngx_http_hris_json_plain8(w)) {
                    return 0;
                }

#if (NGX_HAVE_LITTLE_ENDIAN)
                if (__builtin_ctzll(ngx_http_hris_json_stop8(w)) >> 3
                    != (ngx_http_hris_json_plain[b] ? i + 1 : i))
                {
                    return 0;
                }
#endif
            }
        }
    }

    return 1;
}


/*
 * The reader's block of string bytes (ngx_http_hris_parse_stops(): 16 at
 * once with SSE2) against the byte table: every byte value at every
 * position among plain bytes of all kinds, and its offset as the first.
 */

static int
stops_ok(void)
{
#if (defined NGX_HTTP_HRIS_PARSE_BLOCK)
    int       b, i, k, n;
    u_char    w[NGX_HTTP_HRIS_PARSE_BLOCK];
    uint64_t  stops;
    static const u_char  fill[] = { 'a', 0x20, 0x21, 0x23, 0x5b, 0x5d,
                                    0x7f, 0x80, 0xff };

    n = NGX_HTTP_HRIS_PARSE_BLOCK;

    for (k = 0; k < (int) sizeof(fill); k++) {
        memset(w, fill[k], n);

        if (ngx_http_hris_parse_stops(w) != 0) {
            return 0;
        }

        for (b = 0; b < 256; b++) {
            for (i = 0; i < n; i++) {
                memset(w, fill[k], n);
                w[i] = (u_char) b;
                stops = ngx_http_hris_parse_stops(w);

                if ((stops == 0) != (ngx_http_hris_json_plain[b] != 0)
                    || (stops && ngx_http_hris_parse_first(stops) != i))
                {
                    return 0;
                }

                /* a stop byte after it: the first is still the first */
                if (i + 1 < n && stops) {
                    w[i + 1] = '"';
                    stops = ngx_http_hris_parse_stops(w);

                    if (ngx_http_hris_parse_first(stops) != i) {
                        return 0;
                    }
                }
            }
        }
    }
#endif

    return 1;
}


int
main(void)
{
    int     i, j;
    char    doc[8192], *p;
    size_t  len, k;


    slot_keys_init();

    for (i = 0; cases[i]; i++) {
        check("case", cases[i], strlen(cases[i]));
        check_select("case", cases[i], strlen(cases[i]));
        check_slots("case", cases[i], strlen(cases[i]));
    }

    check_edges();
    check_guess();
    check_utf8();

    /*
     * records with many keys after small ones: the table of keys seen
     * grows, a duplicate found after it did, and none before it lost;
     * the last has more members than a chunk of records holds
     */
    for (i = 0; i < 4; i++) {
        p = doc;
        p += sprintf(p, "[{\"k0\":1,\"k1\":2},{");
        for (j = 0; j < (i == 3 ? 400 : 300); j++) {
            p += sprintf(p, "%s\"key%d\":%d", j ? "," : "", j, j);
        }
        if (i == 1) {
            p += sprintf(p, ",\"key7\":\"again\"");
        }
        if (i == 2) {
            p += sprintf(p, ",\"key299\":[],\"k0\":{}");
        }
        p += sprintf(p, "},{\"k0\":3,\"key7\":4,\"k0\":5},{\"k1\":6}]");
        len = p - doc;

        check("many keys", doc, len);
        check_slots("many keys", doc, len);
    }

    srand(20261122);

    for (i = 0; i < 3000; i++) {
        p = doc;
        *p++ = '[';
        gen(&p, doc + sizeof(doc) - 8, 0);
        *p++ = ']';
        len = p - doc;

        check("generated", doc, len);

        if (i % 12 == 0) {
            check_select("generated", doc, len);
        }

        if (i % 6 == 0) {
            check_slots("generated", doc, len);
        }

        /* the same document damaged: a byte changed, cut, or doubled */
        for (j = 0; j < 3; j++) {
            char  bad[8192];

            memcpy(bad, doc, len);
            switch (rand() % 3) {
            case 0:
                bad[rand() % len] = "\"\\{}[],:0e-\x80\xff u"[rand() % 15];
                check("damaged", bad, len);
                if (i % 12 == 0) {
                    check_select("damaged", bad, len);
                }
                if (i % 6 == 0) {
                    check_slots("damaged", bad, len);
                }
                break;
            case 1:
                k = rand() % len;
                check("cut", bad, k);
                if (i % 12 == 0) {
                    check_select("cut", bad, k);
                }
                if (i % 6 == 0) {
                    check_slots("cut", bad, k);
                }
                break;
            default:
                if (2 * len < sizeof(bad)) {
                    memcpy(bad + len, doc, len);
                    check("doubled", bad, 2 * len);
                }
                break;
            }
        }
    }

    printf("ok %d - the reader agrees with json_loadb() on %d inputs\n",
           tests + 1, tests);

    i = plain8_ok();
    printf("%sok %d - eight bytes at once: plain exactly as byte by byte, "
           "and where the first byte that is not\n",
           i ? "" : "not ", tests + 2);
    j = stops_ok();
    printf("%sok %d - a block of string bytes at once: the same stops as "
           "byte by byte, the first first\n", j ? "" : "not ", tests + 3);
    printf("1..%d\n", tests + 3);

    return (failed || !i || !j) ? 1 : 0;
}

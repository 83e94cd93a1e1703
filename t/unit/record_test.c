/*
 * Differential test of the unified records' writer (src/ngx_http_hris_
 * json.c, ngx_http_hris_json_write_records(); ngx_http_hris_record.h):
 * a page of records held as arrays of values, with keys compiled by
 * ngx_http_hris_json_key(), must come out byte for byte as the same
 * records built as jansson objects (keys in the schema's order, then
 * remote_data) and written by ngx_http_hris_json_write(), and, without
 * remote_data's provider bytes, as json_dumps(JSON_COMPACT) writes them.
 * Field names and values hold what must be escaped, reals, nesting; the
 * pages cross the writer's 32 KB buffers. Prints TAP.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_parse.h"
#include "ngx_http_hris_record.h"


static int          tests, failed;
static ngx_pool_t  *pool;

static int sliced(ngx_pool_t *p, ngx_http_hris_spans_t *spans,
    ngx_http_hris_records_t *recs, json_t *fast, char *a, size_t alen,
    const char *what);


/* nginx's buffer functions json.c writes with (ngx_buf.c) */

ngx_buf_t *
ngx_create_temp_buf(ngx_pool_t *p, size_t size)
{
    ngx_buf_t  *b;

    b = ngx_pcalloc(p, sizeof(ngx_buf_t));
    if (b == NULL) {
        return NULL;
    }

    b->start = ngx_palloc(p, size);
    if (b->start == NULL) {
        return NULL;
    }

    b->pos = b->start;
    b->last = b->start;
    b->end = b->start + size;
    b->temporary = 1;

    return b;
}


ngx_chain_t *
ngx_alloc_chain_link(ngx_pool_t *p)
{
    return ngx_palloc(p, sizeof(ngx_chain_t));
}


static void
ok(int cond, const char *what)
{
    tests++;

    if (!cond) {
        failed++;
    }

    printf("%sok %d - %s\n", cond ? "" : "not ", tests, what);
}


/* the chain's bytes as one NUL-terminated string */

static char *
flatten(ngx_chain_t *cl, size_t len)
{
    char    *s, *p;
    size_t   n;

    s = malloc(len + 1);
    if (s == NULL) {
        return NULL;
    }

    p = s;
    n = 0;

    for ( /* void */ ; cl; cl = cl->next) {
        n += cl->buf->last - cl->buf->pos;
        if (n > len) {
            free(s);
            return NULL;
        }

        p = (char *) ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    *p = '\0';

    return (n == len) ? s : NULL;
}


static ngx_array_t *
schema_fields(const char **names, ngx_uint_t n)
{
    ngx_uint_t              i;
    ngx_array_t            *fields;
    ngx_http_hris_field_t  *f;

    fields = ngx_pcalloc(pool, sizeof(ngx_array_t));
    f = ngx_pcalloc(pool, (n ? n : 1) * sizeof(ngx_http_hris_field_t));
    if (fields == NULL || f == NULL) {
        return NULL;
    }

    fields->elts = f;
    fields->nelts = n;
    fields->size = sizeof(ngx_http_hris_field_t);
    fields->nalloc = n;
    fields->pool = pool;

    for (i = 0; i < n; i++) {
        f[i].name.data = (u_char *) names[i];
        f[i].name.len = ngx_strlen(names[i]);

        if (ngx_http_hris_json_key(pool, &f[i].name, &f[i].key) != NGX_OK) {
            return NULL;
        }
    }

    return fields;
}


/* a value of field i of record k: a bit of everything a mapping gives */

static json_t *
value(ngx_uint_t k, ngx_uint_t i)
{
    static const char  *strings[] = {
        "Ana", "O'Brien \"the\" \\ Great", "tab\there\nnew line\r",
        "\x01\x1f\x7f control", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
        "", "a/b</script>", "\xe2\x80\xa8 line separator",
        "a long value, longer than the eight bytes the writer reads at once"
    };

    /*
     * no exponent: the module's writer puts one as printf() does
     * (1e+300), jansson as 1e300, since before records were arrays
     */
    static const double  reals[] = {
        0.1, 1.0, -0.0, 1234567.25, 123456.789, 0.000125, 100.0
    };

    switch ((k * 7 + i) % 11) {
    case 0:
        return json_string(strings[(k + i) % 9]);
    case 1:
        return json_integer((json_int_t) k * 1000003 - 500000 * (k & 1));
    case 2:
        return json_real(reals[(k + i) % 7]);
    case 3:
        return json_null();
    case 4:
        return (k & 1) ? json_true() : json_false();
    case 5:
        return json_array();
    case 6:
        return json_pack("[s,i,{s:s,s:[]}]", strings[(k + 2) % 9],
                         (int) k, "city", strings[(i + 1) % 9], "tags");
    case 7:
        return json_pack("{s:s,s:n,s:f}", "type", "work", "primary",
                         "share", 0.25);
    case 8:
        return json_object();
    case 9:
        return json_integer(-9223372036854775807LL - 1);
    default:
        return json_string(strings[(k * 3 + i) % 9]);
    }
}


/*
 * jansson writes \u001F where the module's writer, from the start, writes
 * \u001f: the same JSON
 */

static void
lower_hex(char *s)
{
    size_t  i;

    while (s && *s) {
        if (s[0] != '\\') {
            s++;
            continue;
        }

        if (s[1] == 'u') {
            for (i = 2; i < 6 && s[i]; i++) {
                s[i] = ngx_tolower(s[i]);
            }
        }

        s += (s[1] ? 2 : 1);
    }
}


/*
 * n records of the fields, as values and as objects; remote_data, when
 * asked, is an object read by the reader, whose span is written as is.
 */

static int
page(ngx_array_t *fields, ngx_uint_t n, ngx_uint_t remote,
    ngx_uint_t single, const char *what)
{
    int                       same, same_dump;
    char                     *a, *b, *d, msg[256];
    json_t                 ***values, *objs, *obj, *v, *raw, *at;
    json_t                   *fast, *slow, *bare;
    size_t                    alen, blen;
    ngx_uint_t                k, i, nf;
    ngx_pool_t               *p;
    ngx_chain_t              *aout, *bout;
    ngx_http_hris_spans_t     spans;
    ngx_http_hris_records_t   recs;
    ngx_http_hris_field_t    *f;
    const char               *error;
    int                       line, column;
    u_char                    text[256];

    /* the spans' table holds its objects until this page's pool goes */
    p = ngx_create_pool(4096, NULL);
    if (p == NULL) {
        return 0;
    }

    ngx_memzero(&spans, sizeof(ngx_http_hris_spans_t));
    spans.pool = p;

    nf = fields->nelts;
    f = fields->elts;

    values = ngx_palloc(pool, (n ? n : 1) * sizeof(json_t **));
    objs = json_array();
    bare = json_array();

    for (k = 0; k < n; k++) {
        values[k] = ngx_palloc(pool, (nf + 1) * sizeof(json_t *));
        obj = json_object();
        v = json_object();

        for (i = 0; i < nf; i++) {
            values[k][i] = value(k, i);
            json_object_set(obj, (char *) f[i].name.data, values[k][i]);
            json_object_set(v, (char *) f[i].name.data, values[k][i]);
        }

        json_array_append_new(bare, v);

        values[k][nf] = NULL;

        if (remote) {
            /* the provider's spacing: written as the provider sent it */
            ngx_sprintf(text, "{ \"id\" : %ui, \"n\\u00e9\": [1, 2.50] }%Z",
                        k);
            raw = ngx_http_hris_parse(text, ngx_strlen(text), &line, &column,
                                      &error, &spans);
            if (raw == NULL) {
                return 0;
            }

            values[k][nf] = raw;
            json_object_set(obj, "remote_data", raw);
        }

        json_array_append_new(objs, obj);
    }

    at = json_object();

    if (single) {
        fast = json_pack("{s:o}", "result", at);
        slow = json_pack("{s:O}", "result", json_array_get(objs, 0));
        obj = json_pack("{s:O}", "result", json_array_get(bare, 0));

    } else {
        fast = json_pack("{s:o,s:s,s:I}", "result", at, "next_cursor",
                         "c\"1", "result_count", (json_int_t) n);
        slow = json_pack("{s:O,s:s,s:I}", "result", objs, "next_cursor",
                         "c\"1", "result_count", (json_int_t) n);
        obj = json_pack("{s:O,s:s,s:I}", "result", bare, "next_cursor",
                        "c\"1", "result_count", (json_int_t) n);
    }

    recs.at = at;
    recs.fields = fields;
    recs.records = values;
    recs.n = n;
    recs.single = single;
    recs.part = NULL;

    a = b = d = NULL;

    if (ngx_http_hris_json_write_records(p, fast, &spans, &recs, &aout,
                                         &alen)
        == NGX_OK
        && ngx_http_hris_json_write(p, slow, &spans, &bout, &blen)
           == NGX_OK)
    {
        a = flatten(aout, alen);
        b = flatten(bout, blen);
    }

    same = a && b && strcmp(a, b) == 0;

    snprintf(msg, sizeof(msg), "%s: as the objects' bytes (%zu bytes)",
             what, alen);
    ok(same, msg);

    if (!same && a && b) {
        for (i = 0; a[i] && a[i] == b[i]; i++) { /* void */ }
        printf("#  first difference at byte %zu:\n#  records: %.60s\n"
               "#  objects: %.60s\n", (size_t) i, a + i, b + i);
    }

    if (!single && !sliced(p, &spans, &recs, fast, a, alen, what)) {
        return 0;
    }

    /* without remote_data's spans, the reference is jansson's own dump */
    if (!remote) {
        d = json_dumps(obj, JSON_COMPACT);
        lower_hex(d);
        same_dump = a && d && strcmp(a, d) == 0;

        snprintf(msg, sizeof(msg), "%s: as json_dumps(JSON_COMPACT)", what);
        ok(same_dump, msg);

        if (!same_dump && a && d) {
            for (i = 0; a[i] && a[i] == d[i]; i++) { /* void */ }
            printf("#  first difference at byte %zu:\n#  records: %.60s\n"
                   "#  jansson: %.60s\n", (size_t) i, a + i, d + i);
        }
    }

    free(a);
    free(b);
    free(d);

    for (k = 0; k < n; k++) {
        for (i = 0; i <= nf; i++) {
            json_decref(values[k][i]);
        }
    }

    json_decref(fast);
    json_decref(slow);
    json_decref(obj);
    json_decref(objs);
    json_decref(bare);

    ngx_destroy_pool(p);

    return 1;
}


/*
 * The same page with its first half written by slices (slice.c) and
 * linked in by the answer's writer: the same bytes as written at once.
 */

static int
sliced(ngx_pool_t *p, ngx_http_hris_spans_t *spans,
    ngx_http_hris_records_t *recs, json_t *fast, char *a, size_t alen,
    const char *what)
{
    int                         same;
    char                       *c, msg[256];
    size_t                      clen;
    ngx_uint_t                  k, half;
    ngx_chain_t                *cout;
    ngx_http_hris_json_part_t   part;

    ngx_memzero(&part, sizeof(ngx_http_hris_json_part_t));
    half = (recs->n + 1) / 2;

    for (k = 0; k < half; k++) {
        if (ngx_http_hris_json_write_part(p, spans, recs->fields,
                                          recs->records[k], &part)
            != NGX_OK)
        {
            return 0;
        }
    }

    recs->part = &part;
    c = NULL;

    if (ngx_http_hris_json_write_records(p, fast, spans, recs, &cout, &clen)
        == NGX_OK)
    {
        c = flatten(cout, clen);
    }

    recs->part = NULL;

    same = a && c && clen == alen && strcmp(a, c) == 0;

    snprintf(msg, sizeof(msg), "%s: the same with its first %u records "
             "written in slices", what, (unsigned) half);
    ok(same, msg);

    free(c);

    return 1;
}


/* the bytes of one record whose keys were compiled from the names */

static char *
one(ngx_array_t *fields)
{
    char                     *s;
    size_t                    len;
    json_t                  **values, *body, *at;
    ngx_uint_t                i;
    ngx_chain_t              *out;
    ngx_http_hris_records_t   recs;

    values = ngx_palloc(pool, (fields->nelts + 1) * sizeof(json_t *));

    for (i = 0; i < fields->nelts; i++) {
        values[i] = json_integer(i);
    }

    values[i] = NULL;

    at = json_object();
    body = json_pack("{s:o}", "result", at);

    recs.at = at;
    recs.fields = fields;
    recs.records = &values;
    recs.n = 1;
    recs.single = 1;
    recs.part = NULL;

    s = NULL;

    if (ngx_http_hris_json_write_records(pool, body, NULL, &recs, &out, &len)
        == NGX_OK)
    {
        s = flatten(out, len);
    }

    for (i = 0; i < fields->nelts; i++) {
        json_decref(values[i]);
    }

    json_decref(body);

    return s;
}


/*
 * Every string length up to 40 with one byte that needs escaping (or a
 * UTF-8 sequence) at each position, written alone and as json_dumps()
 * writes it: the writer copies plain bytes 8 (or 4) at a time, with
 * words that overlap at a string's end, so each length and position
 * takes another path.
 */

static void
strings_at_each_position(void)
{
    int           bad;
    char         *a, *d, buf[64];
    size_t        n, pos, k, len, alen;
    json_t       *v;
    ngx_pool_t   *p;
    ngx_chain_t  *out;

    static const char  *specials[] = {
        "\"", "\\", "\n", "\x01", "\x1f", "/", "\xc3\xa9", "\x7f"
    };

    bad = 0;

    for (n = 0; n <= 40; n++) {
        for (pos = 0; pos <= n; pos++) {
            for (k = 0; k < sizeof(specials) / sizeof(specials[0]); k++) {

                /* pos == n: plain bytes only */
                if (pos == n && k) {
                    break;
                }

                memset(buf, 'a' + (int) (n % 26), n);
                len = n;

                if (pos < n) {
                    len = pos + strlen(specials[k]);
                    memcpy(buf + pos, specials[k], len - pos);

                    if (len < n) {
                        len = n;
                    }
                }

                /* in an array: the "[" gives the writer its buffer */
                v = json_pack("[s#]", buf, (int) len);
                p = ngx_create_pool(4096, NULL);

                if (v == NULL || p == NULL
                    || ngx_http_hris_json_write(p, v, NULL, &out, &alen)
                       != NGX_OK)
                {
                    bad++;
                    json_decref(v);
                    if (p) {
                        ngx_destroy_pool(p);
                    }
                    continue;
                }

                a = flatten(out, alen);
                d = json_dumps(v, JSON_COMPACT);
                lower_hex(d);

                if (a == NULL || d == NULL || strcmp(a, d) != 0) {
                    bad++;
                    if (bad < 5) {
                        printf("# length %zu, byte %zu: %s against %s\n",
                               len, pos, a ? a : "(null)",
                               d ? d : "(null)");
                    }
                }

                free(a);
                free(d);
                json_decref(v);
                ngx_destroy_pool(p);
            }
        }
    }

    ok(bad == 0, "strings of every length to 40, an escape at each byte:"
                 " as json_dumps()");
}


int
main(void)
{
    char         *s;
    ngx_array_t  *fields, *none;

    static const char  *names[] = {
        "id", "first_name", "last_name", "quote\"d", "back\\slash",
        "caf\xc3\xa9", "tab\tkey", "ctl\x01", "remote", "work_email",
        "employment_status", "start_date", "manager", "addresses",
        "phone_numbers", "custom"
    };

    static const char  *order[] = { "b", "a", "c\"" };

    pool = ngx_create_pool(4096, NULL);
    if (pool == NULL) {
        return 1;
    }

    fields = schema_fields(names, sizeof(names) / sizeof(names[0]));
    none = schema_fields(NULL, 0);

    if (fields == NULL || none == NULL) {
        return 1;
    }

    page(fields, 3, 0, 0, "a page of 3, no remote_data");
    page(fields, 3, 1, 0, "a page of 3 with remote_data");
    page(fields, 0, 1, 0, "an empty page");
    page(fields, 1, 0, 1, "a get");
    page(fields, 1, 1, 1, "a get with remote_data");
    page(fields, 500, 0, 0, "a page of 500 across buffers");
    page(fields, 500, 1, 0, "a page of 500 with remote_data");
    page(none, 2, 1, 0, "no field but remote_data");
    page(none, 2, 0, 0, "no field at all");
    page(none, 1, 1, 1, "a get of no field but remote_data");

    strings_at_each_position();

    /* what the comparisons above rest on: the keys' order and escapes */
    s = one(schema_fields(order, 3));
    ok(s && strcmp(s, "{\"result\":{\"b\":0,\"a\":1,\"c\\\"\":2}}") == 0,
       "keys in the schema's order, escaped");
    free(s);

    ngx_destroy_pool(pool);

    printf("1..%d\n", tests);

    return failed ? 1 : 0;
}

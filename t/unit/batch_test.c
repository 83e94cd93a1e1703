/*
 * Unit tests of merging the answers of field batches
 * (ngx_http_hris_batch_merge() in src/ngx_http_hris_batch.c): records
 * matched by their merge_on value whatever their order, answers that
 * disagree refused. Prints TAP. JSON is written with ' for ".
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris_unified.h"


static int          tests, failed;
static ngx_pool_t  *pool;


/* the request-side helpers batch.c calls on its error path: not tested here */

ngx_int_t
ngx_http_hris_send_error(ngx_http_request_t *r, ngx_uint_t status,
    json_t *details, const char *fmt, ...)
{
    json_decref(details);
    return NGX_ERROR;
}


ngx_int_t
ngx_http_hris_json_text(ngx_pool_t *p, json_t *v, ngx_str_t *out)
{
    return NGX_ERROR;
}


static json_t *
J(const char *text)
{
    char          *s, *p;
    json_t        *v;
    json_error_t   err;

    s = strdup(text);

    for (p = s; *p; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }

    v = json_loads(s, JSON_DECODE_ANY, &err);
    if (v == NULL) {
        printf("# bad JSON in test: %s: %s\n", s, err.text);
        exit(2);
    }

    free(s);

    return v;
}


static void
ok(int cond, const char *name)
{
    tests++;

    if (!cond) {
        failed++;
    }

    printf("%sok %d - %s\n", cond ? "" : "not ", tests, name);
}


static void
pointer(const char *text, ngx_http_hris_path_t *path)
{
    ngx_str_t  s;

    s.data = (u_char *) text;
    s.len = strlen(text);

    if (ngx_http_hris_path_compile(pool, &s, path) != NGX_OK) {
        printf("# bad pointer in test: %s\n", text);
        exit(2);
    }
}


/*
 * Merges "from" into "into" with records at "records", merge_on "/id".
 * expected: the merged "into", or NULL when the merge must be refused
 * with a reason containing "why" (and the offending key "key", if any).
 */

static void
t_merge(const char *name, const char *records, const char *into,
    const char *from, const char *expected, const char *why,
    const char *key)
{
    int                       good;
    json_t                   *a, *b, *want, *k;
    ngx_int_t                 rc;
    const char               *reason;
    ngx_http_hris_op_t        op;
    ngx_http_hris_batches_t   fb;

    ngx_memzero(&op, sizeof(ngx_http_hris_op_t));
    ngx_memzero(&fb, sizeof(ngx_http_hris_batches_t));
    op.batches = &fb;
    pointer(records, &op.records);
    pointer("/id", &fb.merge_on);

    a = J(into);
    b = J(from);
    reason = NULL;
    k = NULL;

    rc = ngx_http_hris_batch_merge(pool, &op, a, b, &reason, &k);

    if (expected) {
        want = J(expected);
        good = (rc == NGX_OK && json_equal(a, want));
        json_decref(want);

    } else {
        good = (rc == NGX_DECLINED && reason && strstr(reason, why) != NULL);

        if (key) {
            want = J(key);
            good = good && k && json_equal(k, want);
            json_decref(want);
        }
    }

    ok(good, name);

    if (!good) {
        char  *s = json_dumps(a, JSON_ENCODE_ANY);
        printf("#   rc %d, reason \"%s\", into now %s\n", (int) rc,
               reason ? reason : "", s ? s : "?");
        free(s);
    }

    json_decref(a);
    json_decref(b);
}


int
main(void)
{
    pool = ngx_create_pool(4096, NULL);
    if (pool == NULL) {
        return 2;
    }

    t_merge("same order: fields added per record", "/data",
            "{'data': [{'id': '1', 'a': 1}, {'id': '2', 'a': 2}], 'next': 'x'}",
            "{'data': [{'id': '1', 'b': 10}, {'id': '2', 'b': 20}],"
            " 'next': 'x'}",
            "{'data': [{'id': '1', 'a': 1, 'b': 10},"
            " {'id': '2', 'a': 2, 'b': 20}], 'next': 'x'}", NULL, NULL);

    t_merge("another order: matched by merge_on, not by position", "/data",
            "{'data': [{'id': '1', 'a': 1}, {'id': '2', 'a': 2},"
            " {'id': '3', 'a': 3}]}",
            "{'data': [{'id': '3', 'b': 30}, {'id': '1', 'b': 10},"
            " {'id': '2', 'b': 20}]}",
            "{'data': [{'id': '1', 'a': 1, 'b': 10},"
            " {'id': '2', 'a': 2, 'b': 20}, {'id': '3', 'a': 3, 'b': 30}]}",
            NULL, NULL);

    t_merge("a field both answers have keeps the first one's value", "/data",
            "{'data': [{'id': '1', 'a': 1, 'status': 'Active'}]}",
            "{'data': [{'id': '1', 'b': 2, 'status': 'changed'}]}",
            "{'data': [{'id': '1', 'a': 1, 'status': 'Active', 'b': 2}]}",
            NULL, NULL);

    t_merge("nulls are values too", "/data",
            "{'data': [{'id': '1', 'a': null}]}",
            "{'data': [{'id': '1', 'b': null}]}",
            "{'data': [{'id': '1', 'a': null, 'b': null}]}", NULL, NULL);

    t_merge("one record as an object (a get)", "",
            "{'id': '7', 'a': 1}", "{'id': '7', 'b': 2}",
            "{'id': '7', 'a': 1, 'b': 2}", NULL, NULL);

    t_merge("no records in either answer", "/data",
            "{'data': null}", "{'other': 1}", "{'data': null}", NULL, NULL);

    t_merge("empty arrays", "/data", "{'data': []}", "{'data': []}",
            "{'data': []}", NULL, NULL);

    t_merge("another number of records: refused", "/data",
            "{'data': [{'id': '1'}, {'id': '2'}]}",
            "{'data': [{'id': '1'}]}", NULL, "another number of records",
            NULL);

    t_merge("a record the first answer does not have: refused", "/data",
            "{'data': [{'id': '1'}, {'id': '2'}]}",
            "{'data': [{'id': '1'}, {'id': '3'}]}", NULL,
            "a record the first does not have", "'3'");

    t_merge("the same record twice: refused", "/data",
            "{'data': [{'id': '1'}, {'id': '2'}]}",
            "{'data': [{'id': '1'}, {'id': '1'}]}", NULL,
            "a record the first does not have", "'1'");

    t_merge("a record without merge_on value: refused", "/data",
            "{'data': [{'id': '1'}]}", "{'data': [{'name': 'x'}]}", NULL,
            "without a merge_on value", NULL);

    t_merge("merge_on null: refused", "/data",
            "{'data': [{'id': '1'}]}", "{'data': [{'id': null}]}", NULL,
            "without a merge_on value", NULL);

    t_merge("the first answer's record lacks merge_on: refused", "/data",
            "{'data': [{'x': '1'}]}", "{'data': [{'id': '1'}]}", NULL,
            "a record the first does not have", "'1'");

    t_merge("1 and \"1\" are different records", "/data",
            "{'data': [{'id': '1'}]}", "{'data': [{'id': 1}]}", NULL,
            "a record the first does not have", "1");

    t_merge("records in one answer only: refused", "/data",
            "{'data': [{'id': '1'}]}", "{'data': null}", NULL,
            "has records where the first has none", NULL);

    t_merge("an array against an object: refused", "/data",
            "{'data': [{'id': '1'}]}", "{'data': {'id': '1'}}", NULL,
            "another shape", NULL);

    t_merge("another single record: refused", "",
            "{'id': '7', 'a': 1}", "{'id': '8', 'b': 2}", NULL,
            "another record than the first", "'8'");

    t_merge("records that are not objects: refused", "/data",
            "{'data': ['1', '2']}", "{'data': ['1', '2']}", NULL,
            "without a merge_on value", NULL);

    ngx_destroy_pool(pool);

    printf("1..%d\n", tests);

    return failed ? 1 : 0;
}

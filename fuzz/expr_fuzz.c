/*
 * libFuzzer target of the mapping tables' field expressions
 * (src/ngx_http_hris_map.c, _eval.c, _convert.c, _path.c). The input is a
 * JSON array [spec, record, parent]: a spec either compiles or is refused
 * with a message, and a compiled one evaluates over any record to a value
 * (never NULL: that means out of memory), the same value twice.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_hris_map.h"


extern char  stub_last_error[];


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                     *dump;
    json_t                   *in, *spec, *record, *parent, *got, *again;
    ngx_pool_t               *pool;
    ngx_http_hris_expr_t     *expr;
    ngx_http_hris_map_ctx_t   mc;

    in = json_loadb((const char *) data, size, JSON_DECODE_ANY, NULL);

    if (!json_is_array(in) || json_array_size(in) < 2) {
        json_decref(in);
        return 0;
    }

    spec = json_array_get(in, 0);
    record = json_array_get(in, 1);
    parent = json_array_get(in, 2);   /* NULL when absent */

    pool = ngx_create_pool(1024, NULL);
    if (pool == NULL) {
        abort();
    }

    mc.cf = NULL;
    mc.pool = pool;
    mc.file = "fuzz.json";
    mc.slot_keys = NULL;

    stub_last_error[0] = '\0';
    expr = ngx_http_hris_expr_compile(&mc, spec, "resources.x.fields.y");

    if (expr == NULL) {
        if (stub_last_error[0] == '\0') {
            fprintf(stderr, "a spec refused without a message\n");
            abort();
        }

        goto done;
    }

    got = ngx_http_hris_expr_eval(expr, record, parent);
    again = ngx_http_hris_expr_eval(expr, record, parent);

    if (got == NULL || again == NULL || !json_equal(got, again)) {
        fprintf(stderr, "evaluation failed or changed between two runs\n");
        abort();
    }

    dump = json_dumps(got, JSON_ENCODE_ANY);
    if (dump == NULL) {
        fprintf(stderr, "the value cannot be written\n");
        abort();
    }

    free(dump);
    json_decref(got);
    json_decref(again);

done:

    ngx_destroy_pool(pool);
    json_decref(in);

    return 0;
}

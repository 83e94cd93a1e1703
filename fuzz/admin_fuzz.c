/*
 * libFuzzer target of the administration API's account check
 * (ngx_http_hris_store_check() in src/ngx_http_hris_store.c, with the
 * account compile of src/ngx_http_hris_accounts.c behind it): the body of
 * POST /admin/accounts as a tenant sends it, around the one table of
 * fuzz/admin_stubs.c. The first byte: bit 0 sets hris_secrets_key (the
 * credentials are sealed), bit 1 gives the body a "tenant" of another.
 *
 * What must hold: the check answers OK, DECLINED with a sentence, or
 * ERROR; an account it lets through has a valid id, the caller's tenant,
 * the table, an http(s) base URL, no control character in its context or
 * credentials, and (with the key) every credential sealed.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "admin_stubs.h"


static ngx_str_t  fuzz_tenant = ngx_string("acme");


static void
fuzz_check_kv(ngx_array_t *kv, ngx_uint_t sealed)
{
    ngx_uint_t     i;
    ngx_keyval_t  *e;

    e = kv->elts;

    for (i = 0; i < kv->nelts; i++) {
        if (!ngx_http_hris_value_safe(e[i].key.data, e[i].key.len)
            || !ngx_http_hris_value_safe(e[i].value.data, e[i].value.len))
        {
            fprintf(stderr, "a control character got through\n");
            abort();
        }

        if (sealed && e[i].value.len && !ngx_http_hris_is_sealed(&e[i].value))
        {
            fprintf(stderr, "a credential stored in clear\n");
            abort();
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t                   *js, *id;
    ngx_int_t                 rc;
    ngx_str_t                 err;
    ngx_pool_t               *pool;
    ngx_http_request_t        r;
    ngx_http_hris_account_t   acc;

    if (size == 0) {
        return 0;
    }

    fuzz_setup();
    fuzz_hmcf.has_secrets_key = data[0] & 1;

    js = json_loadb((const char *) data + 1, size - 1, 0, NULL);
    if (!json_is_object(js)) {
        json_decref(js);
        return 0;
    }

    if (data[0] & 2) {
        json_object_set_new(js, "tenant", json_string("globex"));
    }

    pool = ngx_create_pool(4096, NULL);
    if (pool == NULL) {
        abort();
    }

    fuzz_request(&r, pool);
    ngx_memzero(&acc, sizeof(ngx_http_hris_account_t));
    ngx_str_null(&err);

    rc = ngx_http_hris_store_check(&r, &fuzz_hmcf, &fuzz_tenant, js, &acc,
                                   &err);

    switch (rc) {

    case NGX_OK:
        id = json_object_get(js, "id");

        if (!ngx_http_hris_account_id_valid(id)
            || acc.id.len != json_string_length(id)
            || (data[0] & 2)
            || !ngx_http_hris_str_eq(&acc.tenant, &fuzz_tenant)
            || acc.table == NULL
            || !(ngx_strncmp(acc.base_url.data, "http://", 7) == 0
                 || ngx_strncmp(acc.base_url.data, "https://", 8) == 0)
            || acc.auth == NULL)
        {
            fprintf(stderr, "an account got through that should not\n");
            abort();
        }

        fuzz_check_kv(&acc.context, 0);
        fuzz_check_kv(&acc.credentials, fuzz_hmcf.has_secrets_key);
        break;

    case NGX_DECLINED:
        if (err.len == 0 || err.data == NULL) {
            fprintf(stderr, "refused without a reason\n");
            abort();
        }
        break;

    case NGX_ERROR:
        break;

    default:
        fprintf(stderr, "store_check: %d\n", (int) rc);
        abort();
    }

    json_decref(js);
    ngx_destroy_pool(pool);

    return 0;
}

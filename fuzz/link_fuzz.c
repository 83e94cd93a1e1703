/*
 * libFuzzer target of connect links (src/ngx_http_hris_connect_link.c):
 * made from the body of POST /admin/connect_links a tenant sends, then
 * opened as the connect location opens them (ngx_http_hris_cursor_open()
 * with the link binding). The first byte picks:
 *
 *   0  a body: the answer is 201 or a 4xx; a link made opens under the
 *      link binding (and no other) as exactly what was asked: the
 *      caller's tenant, the id, provider, redirect URI, method, context,
 *      an expiry in the future
 *   1  a link as a browser brings it: opening never crashes, and what
 *      opens is an object
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_connect.h"
#include "admin_stubs.h"


static ngx_str_t  fuzz_tenant = ngx_string("acme");
static ngx_str_t  fuzz_other = ngx_string("hris-cursor");


static void
fuzz_same(json_t *link, const char *lkey, json_t *body, const char *bkey)
{
    json_t  *want;

    want = json_object_get(body, bkey);

    if (want && !json_equal(want, json_object_get(link, lkey))) {
        fprintf(stderr, "the link's \"%s\" is not the body's \"%s\"\n", lkey,
                bkey);
        abort();
    }
}


static void
fuzz_made(ngx_pool_t *pool, json_t *body)
{
    json_t       *res, *link, *m;
    ngx_str_t     url, token;
    const char   *s;

    res = json_object_get(fuzz_answer, "result");
    s = json_string_value(json_object_get(res, "url"));

    if (s == NULL
        || ngx_strncmp(s, fuzz_hmcf.connect_url.data,
                       fuzz_hmcf.connect_url.len) != 0)
    {
        fprintf(stderr, "a link without its URL\n");
        abort();
    }

    url.data = (u_char *) s;
    url.len = ngx_strlen(s);
    token.data = url.data + fuzz_hmcf.connect_url.len;
    token.len = url.len - fuzz_hmcf.connect_url.len;

    if (ngx_http_hris_cursor_open(pool, fuzz_hmcf.cursor_key, &fuzz_other,
                                  &token, &link)
        != NGX_DECLINED)
    {
        fprintf(stderr, "a link opened as something else\n");
        abort();
    }

    if (ngx_http_hris_cursor_open(pool, fuzz_hmcf.cursor_key,
                                  &ngx_http_hris_link_binding, &token, &link)
        != NGX_OK)
    {
        fprintf(stderr, "a link made does not open\n");
        abort();
    }

    m = json_object_get(link, "m");

    if (!json_is_string(json_object_get(link, "t"))
        || ngx_strcmp(json_string_value(json_object_get(link, "t")), "acme")
           != 0
        || !json_is_string(m)
        || (ngx_strcmp(json_string_value(m), "form") != 0
            && ngx_strcmp(json_string_value(m), "oauth2") != 0)
        || json_integer_value(json_object_get(link, "e")) <= ngx_time()
        || !ngx_http_hris_account_id_valid(json_object_get(link, "a")))
    {
        fprintf(stderr, "a link opened wrongly\n");
        abort();
    }

    fuzz_same(link, "a", body, "integrated_account_id");
    fuzz_same(link, "p", body, "provider");
    fuzz_same(link, "r", body, "redirect_uri");
    fuzz_same(link, "c", body, "context");
    fuzz_same(link, "b", body, "base_url");
    fuzz_same(link, "u", body, "token_url");
    fuzz_same(link, "m", body, "method");

    json_decref(link);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t              *body, *link;
    ngx_int_t            rc;
    ngx_str_t            in;
    ngx_pool_t          *pool;
    ngx_http_request_t   r;

    if (size == 0) {
        return 0;
    }

    fuzz_setup();

    pool = ngx_create_pool(4096, NULL);
    if (pool == NULL) {
        abort();
    }

    fuzz_request(&r, pool);

    if (data[0] & 1) {
        /* a copy of exactly size bytes: ASan sees any read past the end */
        in.len = size - 1;
        in.data = malloc(in.len ? in.len : 1);
        if (in.data == NULL) {
            abort();
        }
        ngx_memcpy(in.data, data + 1, in.len);

        rc = ngx_http_hris_cursor_open(pool, fuzz_hmcf.cursor_key,
                                       &ngx_http_hris_link_binding, &in,
                                       &link);
        free(in.data);

        if (rc == NGX_OK) {
            if (!json_is_object(link)) {
                abort();
            }
            json_decref(link);
        }

        ngx_destroy_pool(pool);
        return 0;
    }

    body = json_loadb((const char *) data + 1, size - 1, 0, NULL);

    if (!json_is_object(body)) {
        json_decref(body);
        ngx_destroy_pool(pool);
        return 0;
    }

    rc = ngx_http_hris_connect_link(&r, &fuzz_tenant, body);

    if (fuzz_status == NGX_HTTP_CREATED && rc == NGX_OK) {
        fuzz_made(pool, body);

    } else if (fuzz_status < 400 || fuzz_status >= 600
               || rc != (ngx_int_t) fuzz_status)
    {
        if (!(rc == NGX_HTTP_INTERNAL_SERVER_ERROR && fuzz_status == 0)) {
            fprintf(stderr, "connect_link: rc %d, status %d\n", (int) rc,
                    (int) fuzz_status);
            abort();
        }
    }

    json_decref(body);
    ngx_destroy_pool(pool);

    return 0;
}

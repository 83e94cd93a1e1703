/*
 * libFuzzer target of the mapping tables' string templates
 * (src/ngx_http_hris_template.c). The input is flags, then the template's
 * source up to the first NUL byte, then the value every variable takes.
 * What compiles renders: escaped always, unescaped unless the value holds
 * a control character; escaped variables hold only RFC 3986 unreserved
 * characters and percent escapes.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_hris_template.h"


/* nginx's, for what the renderer logs: nothing is written here */

void ngx_cdecl
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
}


/* a case-insensitive search of s2 (n + 1 bytes) in [s1, last) */

u_char *
ngx_strlcasestrn(u_char *s1, u_char *last, u_char *s2, size_t n)
{
    u_char  *p;

    for (p = s1; (size_t) (last - p) >= n + 1; p++) {
        if (strncasecmp((char *) p, (char *) s2, n + 1) == 0) {
            return p;
        }
    }

    return NULL;
}


static ngx_array_t *
fuzz_keyvals(ngx_pool_t *pool, ngx_str_t *value)
{
    ngx_uint_t     i;
    ngx_array_t   *a;
    ngx_keyval_t  *kv;
    static char   *keys[] = { "key", "company", "subdomain", "a.b",
                              "status", "k", NULL };

    a = ngx_pcalloc(pool, sizeof(ngx_array_t));
    if (a == NULL || ngx_array_init(a, pool, 8, sizeof(ngx_keyval_t))
                     != NGX_OK)
    {
        abort();
    }

    /* filled in place: ngx_array_push() is in no stub */
    kv = a->elts;

    for (i = 0; keys[i]; i++) {
        kv[i].key.data = (u_char *) keys[i];
        kv[i].key.len = strlen(keys[i]);
        kv[i].value = *value;
    }

    a->nelts = i;

    return a;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                    *copy, *nul;
    size_t                     i;
    ngx_int_t                  rc;
    ngx_log_t                  log;
    ngx_str_t                  src, value, out;
    ngx_uint_t                 escape;
    const char                *err;
    ngx_pool_t                *pool;
    ngx_http_hris_tpl_t       *tpl;
    ngx_http_hris_tpl_vars_t   vars;

    if (size == 0) {
        return 0;
    }

    escape = data[0] & 1;

    /* a copy of exactly the rest: ASan sees any read past the end */
    copy = malloc(size);
    if (copy == NULL) {
        abort();
    }

    memcpy(copy, data + 1, size - 1);

    src.data = copy;
    nul = memchr(copy, '\0', size - 1);
    src.len = nul ? (size_t) (nul - copy) : size - 1;

    value.data = nul ? nul + 1 : copy + src.len;
    value.len = copy + size - 1 - value.data;

    ngx_memzero(&log, sizeof(ngx_log_t));
    pool = ngx_create_pool(1024, NULL);
    if (pool == NULL) {
        abort();
    }

    pool->log = &log;

    err = NULL;
    tpl = ngx_http_hris_tpl_compile(pool, &src, &err);

    if (tpl == NULL) {
        if (err == NULL) {
            fprintf(stderr, "a template refused without a message\n");
            abort();
        }

        goto done;
    }

    ngx_memzero(&vars, sizeof(ngx_http_hris_tpl_vars_t));
    vars.context = fuzz_keyvals(pool, &value);
    vars.credentials = fuzz_keyvals(pool, &value);
    vars.filters = fuzz_keyvals(pool, &value);
    vars.input = fuzz_keyvals(pool, &value);
    vars.id = value;
    vars.page_limit = value;
    vars.page_cursor = value;
    vars.page_offset = value;
    vars.page_number = value;
    vars.each = value;
    vars.token = value;
    vars.refresh_token = value;
    ngx_str_set(&vars.base_url, "https://api.example.com");
    ngx_str_set(&vars.token_url, "https://auth.example.com/token");

    rc = ngx_http_hris_tpl_render(pool, tpl, &vars, escape, &out);

    if (rc == NGX_DECLINED && !escape
        && !ngx_http_hris_value_safe(value.data, value.len))
    {
        goto done;
    }

    if (rc != NGX_OK) {
        fprintf(stderr, "a compiled template did not render: rc %d, "
                "%u parts\n", (int) rc, (unsigned) tpl->nparts);
        abort();
    }

    if (out.data[out.len] != '\0') {
        abort();
    }

    /* an escaped value renders as its escape, whatever it holds */
    if (escape && src.len == sizeof("{{id}}") - 1
        && ngx_strncmp(src.data, "{{id}}", src.len) == 0)
    {
        for (i = 0; i < out.len; i++) {
            if (!(isalnum(out.data[i]) || out.data[i] == '%'
                  || strchr("-._~", out.data[i]) != NULL)
                || out.data[i] == '\0')
            {
                fprintf(stderr, "an escaped value kept '%c'\n", out.data[i]);
                abort();
            }
        }
    }

done:

    ngx_destroy_pool(pool);
    free(copy);

    return 0;
}

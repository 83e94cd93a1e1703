
/*
 * Stand-ins for the few nginx core functions the mapping engine calls, so
 * that it can be tested without an nginx binary: pools over malloc (every
 * block is freed by ngx_destroy_pool(), which keeps valgrind meaningful),
 * a subset of nginx's printf formats, and regexes over PCRE2 directly.
 */


#include <ngx_config.h>
#include <ngx_core.h>


/* the last message given to ngx_conf_log_error(), for the tests */
char  stub_last_error[NGX_MAX_CONF_ERRSTR];


static void *
stub_alloc(ngx_pool_t *pool, size_t size)
{
    ngx_pool_large_t  *l;

    l = malloc(sizeof(ngx_pool_large_t));
    if (l == NULL) {
        return NULL;
    }

    /* nginx never returns NULL for a zero-sized allocation */

    l->alloc = malloc(size ? size : 1);
    if (l->alloc == NULL) {
        free(l);
        return NULL;
    }

    l->next = pool->large;
    pool->large = l;

    return l->alloc;
}


ngx_pool_t *
ngx_create_pool(size_t size, ngx_log_t *log)
{
    ngx_pool_t  *pool;

    pool = calloc(1, sizeof(ngx_pool_t));
    if (pool == NULL) {
        return NULL;
    }

    pool->log = log;

    return pool;
}


void
ngx_destroy_pool(ngx_pool_t *pool)
{
    ngx_pool_large_t    *l, *next;
    ngx_pool_cleanup_t  *c, *cnext;

    for (c = pool->cleanup; c; c = cnext) {
        cnext = c->next;

        if (c->handler) {
            c->handler(c->data);
        }
    }

    for (l = pool->large; l; l = next) {
        next = l->next;
        free(l->alloc);
        free(l);
    }

    free(pool);
}


void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    return stub_alloc(pool, size);
}


void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    return stub_alloc(pool, size);
}


void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    void  *p;

    p = stub_alloc(pool, size);
    if (p) {
        memset(p, 0, size);
    }

    return p;
}


ngx_pool_cleanup_t *
ngx_pool_cleanup_add(ngx_pool_t *p, size_t size)
{
    ngx_pool_cleanup_t  *c;

    c = stub_alloc(p, sizeof(ngx_pool_cleanup_t));
    if (c == NULL) {
        return NULL;
    }

    c->data = size ? stub_alloc(p, size) : NULL;
    c->handler = NULL;
    c->next = p->cleanup;
    p->cleanup = c;

    return c;
}


void *
ngx_memalign(size_t alignment, size_t size, ngx_log_t *log)
{
    void  *p;

    return posix_memalign(&p, alignment, size) == 0 ? p : NULL;
}


/*
 * %s %V %*s %c %d %i %ui %uz %L %Z %%: what the module's messages use;
 * %d with a width, zero-padded or not ("%02d", "%4d"), as dates need
 */

u_char *
ngx_vslprintf(u_char *buf, u_char *last, const char *fmt, va_list args)
{
    char        num[32];
    size_t      len;
    u_char     *s;
    ngx_str_t  *v;
    ngx_uint_t  star, unsig, zero, width;

    while (*fmt && buf < last) {

        if (*fmt != '%') {
            *buf++ = *fmt++;
            continue;
        }

        fmt++;
        star = 0;
        unsig = 0;
        s = NULL;
        len = 0;

        if (*fmt == '*') {
            star = 1;
            fmt++;
        }

        zero = (*fmt == '0');
        width = 0;

        while (*fmt >= '0' && *fmt <= '9' && width < 20) {
            width = width * 10 + (*fmt++ - '0');
        }

        if (*fmt == 'u') {
            unsig = 1;
            fmt++;
        }

        switch (*fmt++) {

        case 's':
            if (star) {
                len = va_arg(args, size_t);
                s = va_arg(args, u_char *);

            } else {
                s = va_arg(args, u_char *);
                len = strlen((char *) s);
            }

            break;

        case 'V':
            v = va_arg(args, ngx_str_t *);
            s = v->data;
            len = v->len;
            break;

        case 'c':
            num[0] = (char) va_arg(args, int);
            s = (u_char *) num;
            len = 1;
            break;

        case 'd':
            len = snprintf(num, sizeof(num),
                           unsig ? (zero ? "%0*u" : "%*u")
                                 : (zero ? "%0*d" : "%*d"),
                           (int) width, va_arg(args, int));
            s = (u_char *) num;
            break;

        case 'i':
            len = snprintf(num, sizeof(num), unsig ? "%lu" : "%ld",
                           (long) va_arg(args, ngx_int_t));
            s = (u_char *) num;
            break;

        case 'z':
            len = snprintf(num, sizeof(num), unsig ? "%zu" : "%zd",
                           va_arg(args, size_t));
            s = (u_char *) num;
            break;

        case 'L':
            len = snprintf(num, sizeof(num), "%lld",
                           (long long) va_arg(args, int64_t));
            s = (u_char *) num;
            break;

        case 'Z':
            num[0] = '\0';
            s = (u_char *) num;
            len = 1;
            break;

        default:
            num[0] = '%';
            s = (u_char *) num;
            len = 1;
            break;
        }

        if (len > (size_t) (last - buf)) {
            len = last - buf;
        }

        if (len) {
            buf = ngx_cpymem(buf, s, len);
        }
    }

    return buf;
}


u_char * ngx_cdecl
ngx_sprintf(u_char *buf, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, (void *) -1, fmt, args);
    va_end(args);

    return p;
}


u_char * ngx_cdecl
ngx_snprintf(u_char *buf, size_t max, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + max, fmt, args);
    va_end(args);

    return p;
}


void ngx_cdecl
ngx_conf_log_error(ngx_uint_t level, ngx_conf_t *cf, ngx_err_t err,
    const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf((u_char *) stub_last_error,
                      (u_char *) stub_last_error + NGX_MAX_CONF_ERRSTR - 1,
                      fmt, args);
    va_end(args);

    *p = '\0';

    if (getenv("STUB_VERBOSE")) {
        fprintf(stderr, "nginx: [emerg] %s\n", stub_last_error);
    }
}


static void
stub_regex_cleanup(void *data)
{
    pcre2_code_free(data);
}


ngx_int_t
ngx_regex_compile(ngx_regex_compile_t *rc)
{
    int                  errcode;
    size_t               erroff;
    u_char               errstr[128];
    pcre2_code          *re;
    ngx_pool_cleanup_t  *cln;

    re = pcre2_compile(rc->pattern.data, rc->pattern.len, 0, &errcode,
                       &erroff, NULL);

    if (re == NULL) {
        pcre2_get_error_message(errcode, errstr, sizeof(errstr));
        rc->err.len = ngx_snprintf(rc->err.data, rc->err.len,
                                   "pcre2_compile() failed: %s in \"%V\"",
                                   errstr, &rc->pattern)
                      - rc->err.data;
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(rc->pool, 0);
    if (cln == NULL) {
        pcre2_code_free(re);
        return NGX_ERROR;
    }

    cln->handler = stub_regex_cleanup;
    cln->data = re;

    rc->regex = re;

    pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &rc->captures);

    return NGX_OK;
}


ngx_int_t
ngx_regex_exec(ngx_regex_t *re, ngx_str_t *s, int *captures, ngx_uint_t size)
{
    int                rc;
    size_t            *ov;
    ngx_uint_t         i, n;
    pcre2_match_data  *md;

    md = pcre2_match_data_create(size / 3 ? size / 3 : 1, NULL);
    if (md == NULL) {
        return PCRE2_ERROR_NOMEMORY;
    }

    rc = pcre2_match(re, s->data, s->len, 0, 0, md, NULL);

    if (rc >= 0) {
        n = pcre2_get_ovector_count(md);
        ov = pcre2_get_ovector_pointer(md);

        if (n > size / 3) {
            n = size / 3;
        }

        for (i = 0; i < n; i++) {
            captures[i * 2] = ov[i * 2];
            captures[i * 2 + 1] = ov[i * 2 + 1];
        }
    }

    pcre2_match_data_free(md);

    return rc;
}


/*
 * The arena's string and array makers (src/ngx_http_hris_arena.c), for
 * the tests built without that file: jansson's own, and its layouts
 * unused. arena_test, which links it, gets the real ones.
 */

#include <jansson.h>

json_t *ngx_http_hris_arena_string(const u_char *s, size_t len)
    __attribute__((weak));

json_t *
ngx_http_hris_arena_string(const u_char *s, size_t len)
{
    return json_stringn_nocheck((const char *) s, len);
}

json_t *ngx_http_hris_arena_array(size_t n) __attribute__((weak));
ngx_uint_t  ngx_http_hris_json_ours __attribute__((weak)) = 0;

json_t *
ngx_http_hris_arena_array(size_t n)
{
    return json_array();
}

/*
 * What the administration API's body checks need around them when they
 * run outside nginx (fuzz/admin_fuzz.c, fuzz/link_fuzz.c): one mapping
 * table made by hand ("sandboxhr": two context keys with patterns, two
 * ways to authenticate, a connect form), a request whose answers are
 * recorded instead of sent, no shared zone (so no run-time accounts), and
 * the few nginx core functions t/unit/stubs.c does not give, written to
 * nginx's contract.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_events.h"
#include "admin_stubs.h"


ngx_module_t                ngx_http_hris_module;
ngx_str_t                   ngx_http_hris_link_binding =
                                ngx_string("hris-connect-link");

ngx_uint_t                  fuzz_status;      /* the last answer's */
json_t                     *fuzz_answer;      /* its JSON (the pool owns it) */
ngx_http_hris_main_conf_t   fuzz_hmcf;

static ngx_time_t           fuzz_time = { 1780000000, 0, 0 };
volatile ngx_time_t        *ngx_cached_time = &fuzz_time;

static ngx_log_t            fuzz_log;
static ngx_open_file_t      fuzz_log_file = { NGX_INVALID_FILE, ngx_null_string,
                                              NULL, NULL };
static ngx_cycle_t          fuzz_cycle;
volatile ngx_cycle_t       *ngx_cycle = &fuzz_cycle;

static ngx_pool_t              *fuzz_pool;   /* the table's, for good */
static ngx_http_hris_table_t    fuzz_table;
static ngx_http_hris_account_t  fuzz_file_account;
static void                  *fuzz_main_conf[1];
static ngx_connection_t       fuzz_conn;


static ngx_http_hris_tpl_t *
fuzz_tpl(ngx_pool_t *pool, char *s)
{
    ngx_str_t             src;
    const char           *err;
    ngx_http_hris_tpl_t  *tpl;

    src.data = (u_char *) s;
    src.len = ngx_strlen(s);

    tpl = ngx_http_hris_tpl_compile(pool, &src, &err);
    if (tpl == NULL) {
        fprintf(stderr, "template %s: %s\n", s, err);
        abort();
    }

    return tpl;
}


static void
fuzz_context_key(ngx_pool_t *pool, char *name, char *pattern,
    ngx_uint_t required)
{
    u_char                        errstr[NGX_MAX_CONF_ERRSTR];
    ngx_regex_compile_t           rc;
    ngx_http_hris_context_key_t  *ck;

    ck = &((ngx_http_hris_context_key_t *)
           fuzz_table.context.elts)[fuzz_table.context.nelts++];

    ck->name.data = (u_char *) name;
    ck->name.len = ngx_strlen(name);
    ck->required = required;
    ck->pattern_src.data = (u_char *) pattern;
    ck->pattern_src.len = ngx_strlen(pattern);

    ngx_memzero(&rc, sizeof(ngx_regex_compile_t));
    rc.pattern = ck->pattern_src;
    rc.pool = pool;
    rc.err.data = errstr;
    rc.err.len = sizeof(errstr);

    if (ngx_regex_compile(&rc) != NGX_OK) {
        abort();
    }

    ck->pattern = rc.regex;
}


static void
fuzz_auth(ngx_pool_t *pool, char *a, char *b)
{
    ngx_str_t             *need;
    ngx_http_hris_auth_t  *auth;

    auth = &((ngx_http_hris_auth_t *)
             fuzz_table.auths.elts)[fuzz_table.auths.nelts++];

    ngx_memzero(auth, sizeof(ngx_http_hris_auth_t));

    need = ngx_palloc(pool, 2 * sizeof(ngx_str_t));
    if (need == NULL) {
        abort();
    }

    need[0].data = (u_char *) a;
    need[0].len = ngx_strlen(a);
    need[1].data = (u_char *) b;
    need[1].len = b ? ngx_strlen(b) : 0;

    auth->requires.elts = need;
    auth->requires.nelts = b ? 2 : 1;
    auth->requires.size = sizeof(ngx_str_t);
}


/* Once per process: the table and the main configuration. */

void
fuzz_setup(void)
{
    ngx_pool_t  *pool;

    if (fuzz_table.name.len) {
        return;
    }

    fuzz_log.log_level = NGX_LOG_WARN;
    fuzz_log.file = &fuzz_log_file;
    fuzz_cycle.log = &fuzz_log;
    fuzz_conn.log = &fuzz_log;

    pool = ngx_create_pool(4096, NULL);     /* never destroyed */
    if (pool == NULL) {
        abort();
    }

    fuzz_pool = pool;

    ngx_str_set(&fuzz_table.name, "sandboxhr");
    ngx_str_set(&fuzz_table.file, "sandboxhr.json");
    fuzz_table.base_url = fuzz_tpl(pool,
        "https://{{context.subdomain}}.hr.example/api");
    fuzz_table.token_url = fuzz_tpl(pool,
        "https://{{context.subdomain}}.hr.example/oauth/token");

    fuzz_table.context.elts = ngx_pcalloc(pool,
                                  2 * sizeof(ngx_http_hris_context_key_t));
    fuzz_table.context.size = sizeof(ngx_http_hris_context_key_t);
    fuzz_table.context.nalloc = 2;
    fuzz_context_key(pool, "subdomain", "^[a-z0-9-]{1,63}$", 1);
    fuzz_context_key(pool, "region", "^(eu|us)$", 0);

    fuzz_table.auths.elts = ngx_pcalloc(pool,
                                        2 * sizeof(ngx_http_hris_auth_t));
    fuzz_table.auths.size = sizeof(ngx_http_hris_auth_t);
    fuzz_table.auths.nalloc = 2;
    fuzz_auth(pool, "api_key", NULL);
    fuzz_auth(pool, "client_id", "client_secret");

    /* a form exists: the links' "form" method is allowed */
    fuzz_table.connect_form.nelts = 1;
    fuzz_table.connect_form.elts = ngx_pcalloc(pool,
                                       sizeof(ngx_http_hris_connect_field_t));

    ngx_str_set(&fuzz_hmcf.accounts_file, "/etc/nginx/hris/accounts.json");
    ngx_str_set(&fuzz_hmcf.mappings, "/usr/share/nginx-hris/mappings");
    ngx_str_set(&fuzz_hmcf.connect_url, "https://gw.example/connect/");
    ngx_memset(fuzz_hmcf.cursor_key, 'k', sizeof(fuzz_hmcf.cursor_key));
    ngx_memset(fuzz_hmcf.secrets_key, 's', sizeof(fuzz_hmcf.secrets_key));
    fuzz_hmcf.cursor_key_ready = 1;

    ngx_str_set(&fuzz_hmcf.secrets_key_file, "/etc/nginx/hris/secrets.key");

    /* an account of the accounts file, another tenant's, with overrides
     * only the file may give */
    fuzz_file_account.table = &fuzz_table;
    ngx_str_set(&fuzz_file_account.id, "globex-1");
    ngx_str_set(&fuzz_file_account.tenant, "globex");
    ngx_str_set(&fuzz_file_account.provider, "sandboxhr");
    fuzz_file_account.source = json_pack("{s:s, s:{s:s}}", "id", "globex-1",
                                         "overrides",
                                         "resources.employees.list.path",
                                         "/v2/people");

    fuzz_hmcf.accounts.elts = &fuzz_file_account;
    fuzz_hmcf.accounts.nelts = 1;
    fuzz_hmcf.accounts.size = sizeof(ngx_http_hris_account_t);
    fuzz_hmcf.oauth_apps.elts = ngx_pcalloc(pool, 1);
    fuzz_hmcf.file_urls.elts = ngx_pcalloc(pool, 1);

    fuzz_hmcf.tables.elts = &fuzz_table;
    fuzz_hmcf.tables.nelts = 1;
    fuzz_hmcf.tables.size = sizeof(ngx_http_hris_table_t);

    fuzz_main_conf[0] = &fuzz_hmcf;
}


/* A request of the tenant's API key: answers land in fuzz_status. */

void
fuzz_request(ngx_http_request_t *r, ngx_pool_t *pool)
{
    ngx_memzero(r, sizeof(ngx_http_request_t));
    r->pool = pool;
    r->main_conf = fuzz_main_conf;
    r->connection = &fuzz_conn;

    fuzz_status = 0;
    fuzz_answer = NULL;
}


/* the module's functions outside the files under test */

ngx_http_hris_table_t *
ngx_http_hris_table_find(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *name)
{
    if (name->len == fuzz_table.name.len
        && ngx_strncmp(name->data, fuzz_table.name.data, name->len) == 0)
    {
        return &fuzz_table;
    }

    return NULL;
}


/* overrides are mapping code (fuzzed by expr_fuzz): taken as they are */

ngx_http_hris_table_t *
ngx_http_hris_table_variant(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf,
    ngx_http_hris_table_t *base, json_t *overrides, ngx_str_t *what)
{
    return json_is_object(overrides) ? base : NULL;
}


ngx_int_t
ngx_http_hris_send_error(ngx_http_request_t *r, ngx_uint_t status,
    json_t *details, const char *fmt, ...)
{
    u_char   buf[1024];
    va_list  args;

    va_start(args, fmt);
    (void) ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    json_decref(details);
    fuzz_status = status;

    return status;
}


ngx_int_t
ngx_http_hris_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body, ngx_http_hris_spans_t *spans)
{
    fuzz_status = status;
    fuzz_answer = body;

    return NGX_OK;
}


static void
fuzz_json_free(void *data)
{
    json_decref(data);
}


ngx_int_t
ngx_http_hris_json_cleanup(ngx_pool_t *pool, json_t *js)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = fuzz_json_free;
    cln->data = js;

    return NGX_OK;
}


ngx_int_t
ngx_http_hris_cursor_key_wait(ngx_http_request_t *r,
    ngx_http_handler_pt resume)
{
    return NGX_OK;
}


ngx_int_t
ngx_http_hris_state_account(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf,
    ngx_http_hris_account_t *acc)
{
    return NGX_OK;
}


ngx_int_t
ngx_http_hris_arg(ngx_http_request_t *r, const char *name, ngx_str_t *value)
{
    return NGX_DECLINED;
}


/* no shared zone: these are never reached (store_current stops first) */

ngx_uint_t
ngx_http_hris_shm_accounts_gen(ngx_http_hris_main_conf_t *hmcf)
{
    abort();
}


ngx_int_t
ngx_http_hris_shm_accounts_since(ngx_http_hris_main_conf_t *hmcf,
    ngx_pool_t *pool, ngx_uint_t gen, ngx_array_t *changes, ngx_uint_t *now,
    ngx_uint_t *full)
{
    abort();
}


ngx_int_t
ngx_http_hris_shm_account_get(ngx_http_hris_main_conf_t *hmcf,
    ngx_pool_t *pool, ngx_str_t *id, ngx_str_t *text, ngx_uint_t *version)
{
    abort();
}


ngx_int_t
ngx_http_hris_shm_account_set(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id, ngx_uint_t version, ngx_str_t *text, ngx_str_t *tenant,
    ngx_uint_t capped)
{
    abort();
}


/* no shared zone: every tenant has room for one more account */

ngx_int_t
ngx_http_hris_shm_tenant_room(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *tenant, ngx_str_t *id)
{
    return NGX_OK;
}


ngx_int_t
ngx_http_hris_admin_over(ngx_http_request_t *r, ngx_int_t rc)
{
    abort();
}


void
ngx_http_hris_shm_forget(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id)
{
    abort();
}


void
ngx_http_hris_state_save(ngx_http_hris_main_conf_t *hmcf, ngx_pool_t *pool,
    ngx_log_t *log)
{
    abort();
}


/* no shared zone: no credentials' marks to clear */

ngx_uint_t
ngx_http_hris_creds_reset(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id)
{
    return 0;
}


/* no event queue: the call takes the data's reference, as the real one */

void
ngx_http_hris_event_emit(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *tenant,
    const char *type, json_t *data, ngx_log_t *log)
{
    json_decref(data);
}


ngx_uint_t
ngx_http_hris_token_rebase(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id,
    u_char *base)
{
    abort();
}


void
ngx_http_hris_accounts_publish(ngx_http_hris_main_conf_t *hmcf,
    ngx_pool_t *pool, ngx_str_t *id, json_t *value, ngx_str_t *tenant)
{
    abort();
}


/* nginx core, as nginx's own functions behave */

void
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
    u_char   buf[NGX_MAX_ERROR_STR];
    va_list  args;

    va_start(args, fmt);
    (void) ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    if (log && log->writer) {
        log->writer(log, level, buf, ngx_strlen(buf));
    }
}


void *
ngx_array_push(ngx_array_t *a)
{
    void  *new;

    if (a->nelts == a->nalloc) {
        new = ngx_palloc(a->pool, 2 * a->nalloc * a->size + a->size);
        if (new == NULL) {
            return NULL;
        }

        ngx_memcpy(new, a->elts, a->nelts * a->size);
        a->elts = new;
        a->nalloc = 2 * a->nalloc + 1;
    }

    return (u_char *) a->elts + a->size * a->nelts++;
}


ngx_array_t *
ngx_array_create(ngx_pool_t *p, ngx_uint_t n, size_t size)
{
    ngx_array_t  *a;

    a = ngx_palloc(p, sizeof(ngx_array_t));
    if (a == NULL || ngx_array_init(a, p, n, size) != NGX_OK) {
        return NULL;
    }

    return a;
}


void *
ngx_list_push(ngx_list_t *l)
{
    abort();
}


ngx_int_t
ngx_strncasecmp(u_char *s1, u_char *s2, size_t n)
{
    return strncasecmp((char *) s1, (char *) s2, n);
}


ngx_int_t
ngx_memn2cmp(u_char *s1, u_char *s2, size_t n1, size_t n2)
{
    int  m;

    m = memcmp(s1, s2, ngx_min(n1, n2));

    if (m || n1 == n2) {
        return m;
    }

    return n1 < n2 ? -1 : 1;
}


u_char *
ngx_strlcasestrn(u_char *s1, u_char *last, u_char *s2, size_t n)
{
    size_t  len = n + 1;

    for (/* void */; s1 + len <= last; s1++) {
        if (strncasecmp((char *) s1, (char *) s2, len) == 0) {
            return s1;
        }
    }

    return NULL;
}


u_char *
ngx_pstrdup(ngx_pool_t *pool, ngx_str_t *src)
{
    u_char  *dst;

    dst = ngx_pnalloc(pool, src->len);
    if (dst) {
        ngx_memcpy(dst, src->data, src->len);
    }

    return dst;
}


u_char *
ngx_hex_dump(u_char *dst, u_char *src, size_t len)
{
    static const u_char  hex[] = "0123456789abcdef";

    while (len--) {
        *dst++ = hex[*src >> 4];
        *dst++ = hex[*src++ & 0xf];
    }

    return dst;
}


ngx_int_t
ngx_atoi(u_char *line, size_t n)
{
    ngx_int_t  value;

    if (n == 0) {
        return NGX_ERROR;
    }

    for (value = 0; n--; line++) {
        if (*line < '0' || *line > '9'
            || value >= (NGX_MAX_INT_T_VALUE - (*line - '0')) / 10)
        {
            return NGX_ERROR;
        }

        value = value * 10 + (*line - '0');
    }

    return value;
}


ngx_int_t
ngx_hextoi(u_char *line, size_t n)
{
    u_char     c;
    ngx_int_t  value;

    if (n == 0) {
        return NGX_ERROR;
    }

    for (value = 0; n--; line++) {
        if (value > NGX_MAX_INT_T_VALUE / 16) {
            return NGX_ERROR;
        }

        c = (u_char) (*line | 0x20);

        if (*line >= '0' && *line <= '9') {
            value = value * 16 + (*line - '0');

        } else if (c >= 'a' && c <= 'f') {
            value = value * 16 + (c - 'a' + 10);

        } else {
            return NGX_ERROR;
        }
    }

    return value;
}


/* "30s", "5m", "1h", "250ms", or a number of seconds; is_sec as nginx */

ngx_int_t
ngx_parse_time(ngx_str_t *line, ngx_uint_t is_sec)
{
    size_t     i;
    ngx_int_t  n, scale;

    for (i = 0; i < line->len && line->data[i] >= '0' && line->data[i] <= '9';
         i++)
    {
        /* void */
    }

    n = ngx_atoi(line->data, i);
    if (n == NGX_ERROR || n > 1000000000) {
        return NGX_ERROR;
    }

    if (i == line->len) {
        scale = is_sec ? 1 : 1000;

    } else if (line->len - i == 2 && line->data[i] == 'm'
               && line->data[i + 1] == 's')
    {
        return is_sec ? NGX_ERROR : n;

    } else if (line->len - i == 1 && line->data[i] == 's') {
        scale = is_sec ? 1 : 1000;

    } else if (line->len - i == 1 && line->data[i] == 'm') {
        scale = is_sec ? 60 : 60000;

    } else if (line->len - i == 1 && line->data[i] == 'h') {
        scale = is_sec ? 3600 : 3600000;

    } else {
        return NGX_ERROR;
    }

    return n * scale;
}


void
ngx_gmtime(time_t t, ngx_tm_t *tp)
{
    struct tm  tm;

    gmtime_r(&t, &tm);

    tp->ngx_tm_sec = tm.tm_sec;
    tp->ngx_tm_min = tm.tm_min;
    tp->ngx_tm_hour = tm.tm_hour;
    tp->ngx_tm_mday = tm.tm_mday;
    tp->ngx_tm_mon = tm.tm_mon + 1;
    tp->ngx_tm_year = tm.tm_year + 1900;
    tp->ngx_tm_wday = tm.tm_wday;
}


ngx_int_t
ngx_conf_full_name(ngx_cycle_t *cycle, ngx_str_t *name, ngx_uint_t conf_prefix)
{
    return NGX_OK;
}

/*
 * Accounts changed at run time: created, changed or deleted through the
 * administration API or linked by the connect flow. The accounts file is
 * the static base; the changes are one JSON object in the shared zone,
 * {"<id>": account, or null for a deleted file account}, persisted in
 * the state file. An entry replaces the file's account of the same id.
 *
 * Each worker makes its own "generation" (the changes sorted by id) the
 * first time it looks an account up after the zone's generation number
 * moved. An account is compiled once, into an entry of its own (a pool
 * and a reference count): a new generation reads from the zone only the
 * accounts changed since the worker's previous one, takes that one's
 * entries for the others as they are, and compiles only what changed, so
 * a change costs each worker one read and one compile, not one per
 * account. Requests hold a reference on the entry of their account (or,
 * for a list, on the generation), so a change never frees an account
 * under a request that uses it.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_events.h"


#define NGX_HTTP_HRIS_STORE_TRIES  16


/* one run-time account, compiled once */
typedef struct {
    ngx_pool_t                  *pool;
    ngx_uint_t                   refs;        /* generations, requests */
    json_t                      *json;        /* as the zone has it */
    ngx_http_hris_account_t      acc;         /* deleted: no table */
} ngx_http_hris_store_entry_t;


typedef struct {
    ngx_pool_t                  *pool;
    ngx_array_t                  entries;     /* of entry *, sorted by id */
    ngx_uint_t                   gen;
    ngx_uint_t                   refs;
    unsigned                     old:1;
} ngx_http_hris_store_gen_t;


/* a log that keeps the first error of a compile, for the client */
typedef struct {
    ngx_log_t                    log;
    ngx_str_t                    file;        /* the accounts file */
    ngx_str_t                    dir;         /* the mappings directory */
    u_char                       text[512];
    size_t                       len;
} ngx_http_hris_store_errlog_t;


static ngx_http_hris_store_gen_t *ngx_http_hris_store_current(
    ngx_http_hris_main_conf_t *hmcf, ngx_log_t *log);
static ngx_http_hris_store_gen_t *ngx_http_hris_store_build(
    ngx_http_hris_main_conf_t *hmcf, ngx_http_hris_store_gen_t *prev,
    ngx_log_t *log);
static ngx_http_hris_store_entry_t *ngx_http_hris_store_change_entry(
    ngx_http_hris_main_conf_t *hmcf, ngx_http_hris_store_entry_t *prev,
    ngx_http_hris_shm_change_t *c, ngx_uint_t *compiled, ngx_log_t *log);
static ngx_http_hris_store_entry_t *ngx_http_hris_store_entry(
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id, json_t *js,
    ngx_log_t *log);
static ngx_http_hris_store_entry_t *ngx_http_hris_store_find(
    ngx_http_hris_store_gen_t *g, ngx_str_t *id);
static void ngx_http_hris_store_gen_free(ngx_http_hris_store_gen_t *g);
static ngx_int_t ngx_http_hris_store_hold(ngx_http_request_t *r,
    ngx_http_hris_store_gen_t *g);
static void ngx_http_hris_store_release(void *data);
static ngx_int_t ngx_http_hris_store_hold_entry(ngx_http_request_t *r,
    ngx_http_hris_store_entry_t *e);
static void ngx_http_hris_store_release_entry(void *data);
static void ngx_http_hris_store_unref(ngx_http_hris_store_entry_t *e);
static void ngx_http_hris_store_log_writer(ngx_log_t *log, ngx_uint_t level,
    u_char *buf, size_t len);
static ngx_uint_t ngx_http_hris_store_rebase(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *id, json_t *account);
static ngx_int_t ngx_http_hris_store_overrides(ngx_http_request_t *r,
    ngx_http_hris_main_conf_t *hmcf, json_t *js, ngx_str_t *err);
static ngx_int_t ngx_http_hris_store_text(ngx_pool_t *pool, json_t *v,
    ngx_str_t *s);
static ngx_uint_t ngx_http_hris_store_override_ok(const char *key,
    json_t *v);
static int ngx_http_hris_store_entry_cmp(const void *a, const void *b);
static int ngx_http_hris_store_change_cmp(const void *a, const void *b);
static int ngx_http_hris_store_ptr_cmp(const void *a, const void *b);


/*
 * Compiles an account from its JSON as the accounts file would, but at
 * run time: with a configuration context of its own, whose errors are
 * kept in err (a sentence for the client) instead of failing nginx -t.
 */

ngx_int_t
ngx_http_hris_store_compile(ngx_http_hris_main_conf_t *hmcf, ngx_pool_t *pool,
    json_t *js, ngx_http_hris_account_t *acc, ngx_str_t *err)
{
    ngx_int_t                      rc;
    ngx_conf_t                     cf;
    ngx_http_hris_store_errlog_t  *el;

    el = ngx_pcalloc(pool, sizeof(ngx_http_hris_store_errlog_t));
    if (el == NULL) {
        return NGX_ERROR;
    }

    el->log.log_level = NGX_LOG_WARN;
    el->log.file = ngx_cycle->log->file;
    el->log.writer = ngx_http_hris_store_log_writer;
    el->log.wdata = el;

    el->file = hmcf->accounts_file;
    el->dir = hmcf->mappings;

    ngx_memzero(&cf, sizeof(ngx_conf_t));
    cf.name = "hris_store";
    cf.pool = pool;
    cf.temp_pool = pool;
    cf.cycle = (ngx_cycle_t *) ngx_cycle;
    cf.log = &el->log;
    cf.module_type = NGX_HTTP_MODULE;
    cf.cmd_type = NGX_HTTP_MAIN_CONF;

    rc = ngx_http_hris_account_compile(&cf, hmcf, js, acc);

    if (rc == NGX_OK) {
        acc->source = js;
        acc->runtime = 1;

        /* checked again for every generation: the configuration may say no */
        acc->refused_url = ngx_http_hris_account_urls(pool, hmcf, acc);

        return NGX_OK;
    }

    if (el->len == 0) {
        ngx_str_set(err, "the account could not be compiled");
        return NGX_DECLINED;
    }

    err->len = el->len;
    err->data = el->text;

    return NGX_DECLINED;
}


static void
ngx_http_hris_store_log_writer(ngx_log_t *log, ngx_uint_t level, u_char *buf,
    size_t len)
{
    u_char                        *p, *last;
    ngx_http_hris_store_errlog_t  *el = log->wdata;

    if (el->len) {
        return;
    }

    last = buf + len;

    while (last > buf && (last[-1] == LF || last[-1] == CR)) {
        last--;
    }

    /*
     * the message without time, level, pid and the accounts file's path,
     * which is the server's business: "account "x": ...", "account "x"
     * overrides: ..."
     */
    p = ngx_strlcasestrn(buf, last, (u_char *) "hris: ", 6 - 1);
    p = p ? p + 6 : buf;

    if ((size_t) (last - p) >= el->file.len + 2
        && ngx_strncmp(p, el->file.data, el->file.len) == 0
        && (p[el->file.len] == ':' || p[el->file.len] == ',')
        && p[el->file.len + 1] == ' ')
    {
        p += el->file.len + 2;
    }

    /* mapping tables by their file name, without the directory */
    while (p < last && el->len < sizeof(el->text)) {
        if ((size_t) (last - p) > el->dir.len
            && ngx_strncmp(p, el->dir.data, el->dir.len) == 0
            && p[el->dir.len] == '/')
        {
            p += el->dir.len + 1;
            continue;
        }

        el->text[el->len++] = *p++;
    }
}


/*
 * Before a change is stored: the tenant is the caller's, the id is one
 * that URLs carry as it is, the provider has a table, secrets are sealed
 * when hris_secrets_key is set, and the account compiles. NGX_DECLINED
 * with err (a sentence for the client) when it is not so.
 */

ngx_int_t
ngx_http_hris_store_check(ngx_http_request_t *r,
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *tenant, json_t *js,
    ngx_http_hris_account_t *acc, ngx_str_t *err)
{
    u_char      *p;
    json_t      *v, *creds;
    ngx_int_t    rc;
    ngx_str_t    s, sealed;
    const char  *key;
    char         bad[128];

    v = json_object_get(js, "tenant");

    if (v && !(json_is_string(v) && json_string_length(v) == tenant->len
               && ngx_strncmp(json_string_value(v), tenant->data,
                              tenant->len) == 0))
    {
        ngx_str_set(err, "\"tenant\" must be the API key's own tenant, or "
                    "left out");
        return NGX_DECLINED;
    }

    if (!ngx_http_hris_account_id_valid(json_object_get(js, "id"))) {
        ngx_str_set(err, "\"id\" must be a string of 1 to 128 letters, "
                    "digits, \"-\", \"_\" or \".\"");
        return NGX_DECLINED;
    }

    v = json_object_get(js, "provider");
    s.data = (u_char *) json_string_value(v);
    s.len = json_string_length(v);

    if (s.data == NULL || ngx_http_hris_table_find(hmcf, &s) == NULL) {
        p = ngx_pnalloc(r->pool, 64 + s.len);
        if (p == NULL) {
            return NGX_ERROR;
        }
        err->data = p;
        err->len = ngx_snprintf(p, 64 + s.len, "\"provider\" must name a "
                                "mapping table, not \"%V\"", &s) - p;
        return NGX_DECLINED;
    }

    /* before sealing: a sealed value is not looked into again */
    if (ngx_http_hris_account_values(js, bad, sizeof(bad)) != NGX_OK) {
        p = ngx_pnalloc(r->pool, 256);
        if (p == NULL) {
            return NGX_ERROR;
        }
        err->data = p;
        err->len = ngx_snprintf(p, 256, "%s holds a control character (CR, "
                                "LF, ...), which could end a header line: "
                                "remove it", bad) - p;
        return NGX_DECLINED;
    }

    rc = ngx_http_hris_store_overrides(r, hmcf, js, err);
    if (rc != NGX_OK) {
        return rc;
    }

    if (json_object_set_new(js, "tenant", json_stringn((char *) tenant->data,
                                                   tenant->len)) != 0)
    {
        return NGX_ERROR;
    }

    /* sealed at rest, like the accounts file can be */
    creds = json_object_get(js, "credentials");

    json_object_foreach(creds, key, v) {
        if (!hmcf->has_secrets_key) {
            break;
        }

        /*
         * the compile takes a number or a boolean as its text: so is it
         * sealed (fuzz/admin_fuzz.c found one kept in clear)
         */
        if (ngx_http_hris_store_text(r->pool, v, &s) != NGX_OK) {
            return NGX_ERROR;
        }

        if (s.data == NULL || s.len == 0 || ngx_http_hris_is_sealed(&s)) {
            continue;
        }

        if (ngx_http_hris_secret_seal(r->pool, hmcf->secrets_key, &s,
                                      &sealed)
            != NGX_OK
            || json_object_set_new(creds, key,
                                   json_stringn((char *) sealed.data,
                                                sealed.len))
               != 0)
        {
            return NGX_ERROR;
        }
    }

    rc = ngx_http_hris_store_compile(hmcf, r->pool, js, acc, err);

    if (rc == NGX_OK && acc->refused_url) {
        p = ngx_pnalloc(r->pool, 512);
        if (p == NULL) {
            return NGX_ERROR;
        }
        err->data = p;
        err->len = ngx_snprintf(p, 512, "\"%s\" is not a URL this gateway "
                                "allows for tenants: use the provider's own "
                                "host (the %V mapping table's), a base URL "
                                "of the accounts file, or ask the operator "
                                "to allow its prefix with "
                                "\"hris_allowed_urls\"",
                                acc->refused_url, &acc->provider) - p;
        return NGX_DECLINED;
    }

    return rc;
}


/* A credential's text: a string as it is, a number or boolean as JSON. */

static ngx_int_t
ngx_http_hris_store_text(ngx_pool_t *pool, json_t *v, ngx_str_t *s)
{
    char  *text;

    if (!json_is_number(v) && !json_is_boolean(v)) {
        s->data = (u_char *) json_string_value(v);
        s->len = json_string_length(v);
        return NGX_OK;
    }

    text = json_dumps(v, JSON_ENCODE_ANY);
    if (text == NULL) {
        return NGX_ERROR;
    }

    s->len = ngx_strlen(text);
    s->data = ngx_pnalloc(pool, s->len);

    if (s->data == NULL) {
        free(text);
        return NGX_ERROR;
    }

    ngx_memcpy(s->data, text, s->len);
    free(text);

    return NGX_OK;
}


/*
 * A tenant's "overrides" may change how records are mapped, never where
 * or how the gateway calls: a path, a header, the auth or the base URL
 * of the table are the operator's (the accounts file, or
 * hris_mapping_overrides). Overrides the accounts file gave the account
 * of that id pass as they are (a PATCH of such an account keeps them).
 */

static ngx_int_t
ngx_http_hris_store_overrides(ngx_http_request_t *r,
    ngx_http_hris_main_conf_t *hmcf, json_t *js, ngx_str_t *err)
{
    u_char                   *p;
    json_t                   *ov, *v;
    ngx_str_t                 id;
    const char               *key;
    ngx_http_hris_account_t  *file;

    ov = json_object_get(js, "overrides");

    if (!json_is_object(ov)) {
        /* absent, null, or wrong: the compile says what it must be */
        return NGX_OK;
    }

    id.data = (u_char *) json_string_value(json_object_get(js, "id"));
    id.len = json_string_length(json_object_get(js, "id"));
    file = ngx_http_hris_account_find(hmcf, &id);

    if (file && json_equal(ov, json_object_get(file->source, "overrides"))) {
        return NGX_OK;
    }

    json_object_foreach(ov, key, v) {
        if (ngx_http_hris_store_override_ok(key, v)) {
            continue;
        }

        p = ngx_pnalloc(r->pool, 512);
        if (p == NULL) {
            return NGX_ERROR;
        }

        err->data = p;
        err->len = ngx_snprintf(p, 512, "overrides: \"%*s\" is not for "
                                "this API to change: an account's overrides "
                                "here may change field mappings "
                                "(resources.<resource>.fields.<field>, "
                                "resources.<resource>.list.fields...) and "
                                "query parameters "
                                "(resources.<resource>.list.query.<name>, a "
                                "string); the rest is the operator's "
                                "(the accounts file, hris_mapping_overrides)",
                                ngx_http_hris_printable((u_char *) key), key)
                   - p;
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_hris_store_override_ok(const char *key, json_t *v)
{
    size_t       n, len[5];
    const char  *part[5], *p, *dot;

    /* up to five dotted parts: resources.<r>.<op>.query.<name> */
    for (n = 0, p = key; n < 5; n++) {
        dot = ngx_strchr(p, '.');
        part[n] = p;
        len[n] = dot ? (size_t) (dot - p) : ngx_strlen(p);

        if (dot == NULL) {
            n++;
            break;
        }

        p = dot + 1;
    }

#define ngx_http_hris_part_is(i, s)                                          \
    (len[i] == sizeof(s) - 1 && ngx_strncmp(part[i], s, len[i]) == 0)

    if (n < 3 || !ngx_http_hris_part_is(0, "resources")) {
        return 0;
    }

    /* resources.<r>.fields[.<field>...]: a field expression */
    if (ngx_http_hris_part_is(2, "fields")) {
        return 1;
    }

    if (n < 4
        || !(ngx_http_hris_part_is(2, "list")
             || ngx_http_hris_part_is(2, "get")))
    {
        return 0;
    }

    if (ngx_http_hris_part_is(3, "fields")) {
        return 1;
    }

    /*
     * resources.<r>.<op>.query.<name>: a query parameter; its text goes
     * into the URL as it is, so nothing that ends or splits it
     */
    if (n != 5 || !ngx_http_hris_part_is(3, "query")
        || ngx_strchr(part[4], '.') != NULL)
    {
        return 0;
    }

#undef ngx_http_hris_part_is

    if (json_is_null(v)) {
        return 1;
    }

    if (!json_is_string(v)) {
        return 0;
    }

    for (p = json_string_value(v); *p; p++) {
        if ((u_char) *p <= ' ' || *p == '#' || (u_char) *p == 0x7f) {
            return 0;
        }
    }

    for (p = part[4]; *p; p++) {
        if ((u_char) *p <= ' ' || *p == '#' || *p == '&' || *p == '='
            || (u_char) *p == 0x7f)
        {
            return 0;
        }
    }

    return 1;
}


/* An id that URLs and the state file carry as it is. */

ngx_uint_t
ngx_http_hris_account_id_valid(json_t *id)
{
    size_t       i, len;
    const char  *s;

    s = json_string_value(id);
    len = json_string_length(id);

    if (s == NULL || len == 0 || len > 128) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!(isalnum((u_char) s[i]) || s[i] == '-' || s[i] == '_'
              || s[i] == '.'))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * The account of that id as the caller sees it now: a run-time change
 * first, then the accounts file; NULL when there is none or it was
 * deleted. The request keeps what it got until it ends.
 */

ngx_http_hris_account_t *
ngx_http_hris_account_get(ngx_http_request_t *r,
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id)
{
    ngx_http_hris_store_gen_t    *g;
    ngx_http_hris_store_entry_t  *e;

    g = ngx_http_hris_store_current(hmcf, r->connection->log);
    e = g ? ngx_http_hris_store_find(g, id) : NULL;

    if (e) {
        if (e->acc.table == NULL
            || ngx_http_hris_store_hold_entry(r, e) != NGX_OK)
        {
            return NULL;
        }

        return &e->acc;
    }

    return ngx_http_hris_account_find(hmcf, id);
}


/* Every account as the caller sees it now, sorted by id. */

ngx_int_t
ngx_http_hris_account_list(ngx_http_request_t *r,
    ngx_http_hris_main_conf_t *hmcf, ngx_array_t *out)
{
    ngx_uint_t                     i;
    ngx_http_hris_account_t       *acc, **p;
    ngx_http_hris_store_gen_t     *g;
    ngx_http_hris_store_entry_t  **e;

    if (ngx_array_init(out, r->pool, hmcf->accounts.nelts + 8,
                       sizeof(ngx_http_hris_account_t *))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    g = ngx_http_hris_store_current(hmcf, r->connection->log);

    if (g && ngx_http_hris_store_hold(r, g) != NGX_OK) {
        return NGX_ERROR;
    }

    acc = hmcf->accounts.elts;

    for (i = 0; i < hmcf->accounts.nelts; i++) {
        if (g && ngx_http_hris_store_find(g, &acc[i].id)) {
            continue;
        }

        p = ngx_array_push(out);
        if (p == NULL) {
            return NGX_ERROR;
        }
        *p = &acc[i];
    }

    e = g ? g->entries.elts : NULL;

    for (i = 0; g && i < g->entries.nelts; i++) {
        if (e[i]->acc.table == NULL) {
            continue;
        }

        p = ngx_array_push(out);
        if (p == NULL) {
            return NGX_ERROR;
        }
        *p = &e[i]->acc;
    }

    ngx_qsort(out->elts, out->nelts, sizeof(ngx_http_hris_account_t *),
              ngx_http_hris_store_ptr_cmp);

    return NGX_OK;
}


/*
 * Changes the account of that id for a tenant, for every worker, and
 * writes the state file. NGX_DECLINED: a create found the id taken, or
 * the account is not the tenant's (or absent, for a delete or replace);
 * NGX_HTTP_HRIS_OVER_COUNT or _BYTES: the tenant's cap refused it.
 */

ngx_int_t
ngx_http_hris_store_change(ngx_http_request_t *r,
    ngx_http_hris_main_conf_t *hmcf, ngx_str_t *tenant, ngx_str_t *id,
    json_t *account, ngx_http_hris_store_op_e op)
{
    char                     *dump;
    json_t                   *cur, *t;
    ngx_int_t                 rc;
    ngx_str_t                 text, owner, provider;
    ngx_uint_t                version, tries, present, renewed;
    ngx_http_hris_account_t  *file;

    file = ngx_http_hris_account_find(hmcf, id);

    for (tries = 0; tries < NGX_HTTP_HRIS_STORE_TRIES; tries++) {

        if (ngx_http_hris_shm_account_get(hmcf, r->pool, id, &text, &version)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* the account, JSON null (a file account deleted), or none */
        cur = NULL;

        if (text.data) {
            cur = json_loadb((char *) text.data, text.len, JSON_DECODE_ANY,
                             NULL);
            if (cur == NULL) {
                return NGX_ERROR;
            }
        }

        present = json_is_object(cur) || (cur == NULL && file);

        if (json_is_object(cur)) {
            t = json_object_get(cur, "tenant");
            owner.data = (u_char *) json_string_value(t);
            owner.len = json_string_length(t);

        } else {
            owner = file ? file->tenant : (ngx_str_t) ngx_null_string;
        }

        if (present && (owner.len != tenant->len
                        || ngx_strncmp(owner.data, tenant->data, tenant->len)
                           != 0))
        {
            /* another tenant's: only a create may say the id is taken */
            json_decref(cur);
            return NGX_DECLINED;
        }

        if ((op == NGX_HTTP_HRIS_STORE_CREATE && present)
            || (op != NGX_HTTP_HRIS_STORE_CREATE
                && op != NGX_HTTP_HRIS_STORE_UPSERT && !present))
        {
            json_decref(cur);
            return NGX_DECLINED;
        }

        /* new credentials for an account there already: a reactivation? */
        t = json_is_object(cur) ? cur : (file ? file->source : NULL);
        renewed = present && account
                  && !json_equal(json_object_get(t, "credentials"),
                                 json_object_get(account, "credentials"));

        json_decref(cur);

        if (op != NGX_HTTP_HRIS_STORE_DELETE) {
            dump = json_dumps(account, JSON_COMPACT);
            if (dump == NULL) {
                return NGX_ERROR;
            }

            text.data = (u_char *) dump;
            text.len = ngx_strlen(dump);

            /* the tenant's cap: the operator's accounts are not in it */
            rc = ngx_http_hris_shm_account_set(hmcf, id, version, &text,
                                               tenant, file == NULL);
            free(dump);

        } else if (file) {
            ngx_str_set(&text, "null");
            rc = ngx_http_hris_shm_account_set(hmcf, id, version, &text,
                                               NULL, 0);

        } else {
            rc = ngx_http_hris_shm_account_set(hmcf, id, version, NULL,
                                               NULL, 0);
        }

        if (rc == NGX_OK) {
            /*
             * the zone's marks go: the one worker that lifts a needs-reauth
             * mark (of a refused refresh, or refused credentials) says so
             */
            if ((ngx_http_hris_store_rebase(hmcf, id, account)
                 | (renewed ? ngx_http_hris_creds_reset(hmcf, id) : 0))
                && renewed)
            {
                t = json_object_get(account, "provider");
                provider.data = (u_char *) json_string_value(t);
                provider.len = json_string_length(t);

                ngx_http_hris_account_event(hmcf, tenant, id, &provider,
                                            "integrated_account.reactivated",
                                            NULL, r->connection->log);
            }

            /* and every gateway on the same Redis, and the fleet's count */
            ngx_http_hris_accounts_publish(hmcf, r->pool, id,
                       op != NGX_HTTP_HRIS_STORE_DELETE ? account
                       : (file ? json_null() : NULL),
                       file ? NULL : tenant);

            ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                          "hris: integrated account \"%V\" of tenant \"%V\" "
                          "%s", id, tenant,
                          op == NGX_HTTP_HRIS_STORE_DELETE ? "deleted"
                                                           : "stored");
            ngx_http_hris_state_save(hmcf, r->pool, r->connection->log);
            return NGX_OK;
        }

        if (rc == NGX_HTTP_HRIS_OVER_COUNT) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "hris: integrated account \"%V\" of tenant "
                          "\"%V\" refused: the tenant is at its limit of "
                          "%ui run-time accounts, \"hris_tenant_accounts\"",
                          id, tenant, hmcf->tenant_accounts);
            return rc;
        }

        if (rc == NGX_HTTP_HRIS_OVER_BYTES) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "hris: integrated account \"%V\" of tenant "
                          "\"%V\" refused: the tenant's run-time accounts "
                          "take its quarter of \"hris_zone_size\"", id,
                          tenant);
            return rc;
        }

        if (rc != NGX_BUSY) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "hris: no room for run-time accounts in the "
                          "shared zone: raise \"hris_zone_size\"");
            return NGX_ERROR;
        }

        /* another worker changed that account meanwhile: redo on its text */
    }

    return NGX_ERROR;
}


/*
 * a new refresh token: the shared zone forgets the old one's tokens; a
 * deleted account: everything
 */

static ngx_uint_t
ngx_http_hris_store_rebase(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id,
    json_t *account)
{
    json_t        *v;
    u_char         base[32];
    unsigned int   len;

    /* deleted: its tokens, rate window and marks go from the zone */
    if (account == NULL) {
        ngx_http_hris_shm_forget(hmcf, id);
        return 0;
    }

    v = json_object_get(json_object_get(account, "credentials"),
                        "refresh_token");

    if (!json_is_string(v)) {
        return 0;
    }

    /* as ngx_http_hris_state_account() derives it from the configuration */
    len = sizeof(base);
    EVP_Digest(json_string_value(v), json_string_length(v), base, &len,
               EVP_sha256(), NULL);

    return ngx_http_hris_token_rebase(hmcf, id, base);
}


/*
 * An integrated_account.* event (CONTRACT section 8): data
 * {integrated_account_id, provider} and, for needs_reauth, a reason.
 */

void
ngx_http_hris_account_event(ngx_http_hris_main_conf_t *hmcf,
    ngx_str_t *tenant, ngx_str_t *id, ngx_str_t *provider, const char *type,
    const char *reason, ngx_log_t *log)
{
    json_t  *data;

    data = json_pack("{s:s%,s:s%}", "integrated_account_id", id->data,
                     id->len, "provider", provider->data, provider->len);

    if (data && reason
        && json_object_set_new(data, "reason", json_string(reason)) != 0)
    {
        json_decref(data);
        data = NULL;
    }

    if (data == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "hris: no memory for the event "
                      "%s of integrated account \"%V\"", type, id);
        return;
    }

#if (NGX_DEBUG)
    if (log->log_level & NGX_LOG_DEBUG_HTTP) {
        char  *text = json_dumps(data, JSON_COMPACT|JSON_SORT_KEYS);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0, "hris account event %s: %s",
                       type, text ? text : "");
        free(text);
    }
#endif

    ngx_http_hris_event_emit(hmcf, tenant, type, data, log);
}


static ngx_http_hris_store_gen_t *
ngx_http_hris_store_current(ngx_http_hris_main_conf_t *hmcf, ngx_log_t *log)
{
    ngx_http_hris_store_gen_t  *g, *old;

    old = hmcf->store;

    if (hmcf->shm == NULL || hmcf->shm->data == NULL) {
        return NULL;
    }

    if (old && old->gen == ngx_http_hris_shm_accounts_gen(hmcf)) {
        return old;
    }

    g = ngx_http_hris_store_build(hmcf, old, log);
    if (g == NULL) {
        /* the previous generation is better than none */
        return old;
    }

    if (old) {
        old->old = 1;

        if (old->refs == 0) {
            ngx_http_hris_store_gen_free(old);
        }
    }

    hmcf->store = g;

    return g;
}


/*
 * The zone's accounts as a new generation: the accounts changed since
 * prev are read and compiled (unless their JSON is the same), prev's
 * entries taken for the others. Both lists are sorted by id and merged.
 * A full read (the first, or prev too old for the zone) lists every
 * account: prev's entries not in it are gone.
 */

static ngx_http_hris_store_gen_t *
ngx_http_hris_store_build(ngx_http_hris_main_conf_t *hmcf,
    ngx_http_hris_store_gen_t *prev, ngx_log_t *log)
{
    ngx_int_t                      cmp;
    ngx_uint_t                     i, j, n, full, compiled;
    ngx_pool_t                    *pool;
    ngx_array_t                    changes;
    ngx_http_hris_store_gen_t     *g;
    ngx_http_hris_shm_change_t    *c;
    ngx_http_hris_store_entry_t   *e, **old, **p;

    /* it outlives the connection that made it: the cycle's log, not its */
    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    g = ngx_pcalloc(pool, sizeof(ngx_http_hris_store_gen_t));
    if (g == NULL
        || ngx_http_hris_shm_accounts_since(hmcf, pool, prev ? prev->gen : 0,
                                            &changes, &g->gen, &full)
           != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return NULL;
    }

    g->pool = pool;

    n = prev ? prev->entries.nelts : 0;
    old = prev ? prev->entries.elts : NULL;

    if (ngx_array_init(&g->entries, pool, n + changes.nelts + 1,
                       sizeof(ngx_http_hris_store_entry_t *))
        != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return NULL;
    }

    ngx_qsort(changes.elts, changes.nelts, sizeof(ngx_http_hris_shm_change_t),
              ngx_http_hris_store_change_cmp);

    c = changes.elts;
    compiled = 0;
    i = 0;
    j = 0;

    while (i < n || j < changes.nelts) {

        if (i == n) {
            cmp = 1;

        } else if (j == changes.nelts) {
            cmp = -1;

        } else {
            cmp = ngx_memn2cmp(old[i]->acc.id.data, c[j].id.data,
                               old[i]->acc.id.len, c[j].id.len);
        }

        if (cmp < 0) {
            /* unchanged; after a full read, gone */
            e = full ? NULL : old[i];
            i++;

        } else {
            e = ngx_http_hris_store_change_entry(hmcf, cmp == 0 ? old[i]
                                                               : NULL,
                                                 &c[j], &compiled, log);
            if (e == (void *) NGX_CONF_ERROR) {
                goto failed;
            }

            i += (cmp == 0);
            j++;
        }

        if (e == NULL) {
            continue;
        }

        p = ngx_array_push(&g->entries);
        if (p == NULL) {
            if (e->refs == 0) {
                ngx_destroy_pool(e->pool);
            }
            goto failed;
        }

        e->refs++;
        *p = e;
    }

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, log, 0,
                   "hris: run-time accounts, generation %ui: %ui read%s, "
                   "%ui of %ui compiled", g->gen, changes.nelts,
                   full ? " (all)" : "", compiled, g->entries.nelts);

    return g;

failed:

    ngx_http_hris_store_gen_free(g);
    return NULL;
}


/*
 * The entry for one account read from the zone: prev's, when its JSON is
 * the same, else a new one (compiled, no reference yet); NULL: a
 * tombstone, no entry; NGX_CONF_ERROR: no memory.
 */

static ngx_http_hris_store_entry_t *
ngx_http_hris_store_change_entry(ngx_http_hris_main_conf_t *hmcf,
    ngx_http_hris_store_entry_t *prev, ngx_http_hris_shm_change_t *c,
    ngx_uint_t *compiled, ngx_log_t *log)
{
    json_t                       *js;
    ngx_http_hris_store_entry_t  *e;

    if (c->text.data == NULL) {
        return NULL;
    }

    js = json_loadb((char *) c->text.data, c->text.len, JSON_DECODE_ANY,
                    NULL);

    if (!(json_is_object(js) || json_is_null(js))) {
        json_decref(js);
        ngx_log_error(NGX_LOG_ERR, log, 0, "hris: run-time account \"%V\" "
                      "is left out: its text in the shared zone is not a "
                      "JSON object", &c->id);
        return prev;
    }

    if (prev && json_equal(prev->json, js)) {
        json_decref(js);
        return prev;
    }

    e = ngx_http_hris_store_entry(hmcf, &c->id, js, log);
    json_decref(js);

    if (e == NULL) {
        return (void *) NGX_CONF_ERROR;
    }

    (*compiled)++;

    return e;
}


/* One account compiled into a pool of its own (no reference yet). */

static ngx_http_hris_store_entry_t *
ngx_http_hris_store_entry(ngx_http_hris_main_conf_t *hmcf, ngx_str_t *id,
    json_t *js, ngx_log_t *log)
{
    ngx_str_t                     err;
    ngx_pool_t                   *pool;
    ngx_http_hris_store_entry_t  *e;

    /* small: an account takes a few blocks, thousands of them add up */
    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    e = ngx_pcalloc(pool, sizeof(ngx_http_hris_store_entry_t));
    if (e == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    /* kept for the next generation's comparison (and what compile keeps) */
    if (ngx_http_hris_json_cleanup(pool, json_incref(js)) != NGX_OK) {
        json_decref(js);
        ngx_destroy_pool(pool);
        return NULL;
    }

    e->pool = pool;
    e->json = js;

    if (json_is_object(js)
        && ngx_http_hris_store_compile(hmcf, pool, js, &e->acc, &err)
           == NGX_OK)
    {
        /* generations are sorted by the zone's id: the account's own */
        if (e->acc.id.len == id->len
            && ngx_strncmp(e->acc.id.data, id->data, id->len) == 0)
        {
            return e;
        }

        ngx_str_set(&err, "its \"id\" is not the id it is stored under");
    }

    if (json_is_object(js)) {
        /* e.g. its mapping table went away with a reload */
        ngx_log_error(NGX_LOG_ERR, log, 0, "hris: run-time account "
                      "\"%V\" is left out: %V", id, &err);
    }

    /* deleted, or unusable: either way no account of that id */
    ngx_memzero(&e->acc, sizeof(ngx_http_hris_account_t));
    e->acc.id.len = id->len;
    e->acc.id.data = ngx_pnalloc(pool, id->len);
    if (e->acc.id.data == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }
    ngx_memcpy(e->acc.id.data, id->data, id->len);

    return e;
}


static ngx_http_hris_store_entry_t *
ngx_http_hris_store_find(ngx_http_hris_store_gen_t *g, ngx_str_t *id)
{
    ngx_http_hris_store_entry_t   key, *k, **e;

    key.acc.id = *id;
    k = &key;

    e = bsearch(&k, g->entries.elts, g->entries.nelts,
                sizeof(ngx_http_hris_store_entry_t *),
                ngx_http_hris_store_entry_cmp);

    return e ? *e : NULL;
}


static void
ngx_http_hris_store_gen_free(ngx_http_hris_store_gen_t *g)
{
    ngx_uint_t                     i;
    ngx_http_hris_store_entry_t  **e;

    e = g->entries.elts;

    for (i = 0; i < g->entries.nelts; i++) {
        ngx_http_hris_store_unref(e[i]);
    }

    ngx_destroy_pool(g->pool);
}


static void
ngx_http_hris_store_unref(ngx_http_hris_store_entry_t *e)
{
    if (--e->refs == 0) {
        ngx_destroy_pool(e->pool);
    }
}


/* a list: every account of the generation stays until the request ends */

static ngx_int_t
ngx_http_hris_store_hold(ngx_http_request_t *r, ngx_http_hris_store_gen_t *g)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_hris_store_release;
    cln->data = g;
    g->refs++;

    return NGX_OK;
}


static void
ngx_http_hris_store_release(void *data)
{
    ngx_http_hris_store_gen_t  *g = data;

    if (--g->refs == 0 && g->old) {
        ngx_http_hris_store_gen_free(g);
    }
}


/* one account: it stays until the request ends, whatever changes */

static ngx_int_t
ngx_http_hris_store_hold_entry(ngx_http_request_t *r,
    ngx_http_hris_store_entry_t *e)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_hris_store_release_entry;
    cln->data = e;
    e->refs++;

    return NGX_OK;
}


static void
ngx_http_hris_store_release_entry(void *data)
{
    ngx_http_hris_store_unref(data);
}


static int
ngx_http_hris_store_entry_cmp(const void *a, const void *b)
{
    const ngx_http_hris_store_entry_t  *x, *y;

    x = *(ngx_http_hris_store_entry_t **) a;
    y = *(ngx_http_hris_store_entry_t **) b;

    return ngx_memn2cmp(x->acc.id.data, y->acc.id.data, x->acc.id.len,
                        y->acc.id.len);
}


static int
ngx_http_hris_store_change_cmp(const void *a, const void *b)
{
    const ngx_http_hris_shm_change_t  *x = a, *y = b;

    return ngx_memn2cmp(x->id.data, y->id.data, x->id.len, y->id.len);
}


static int
ngx_http_hris_store_ptr_cmp(const void *a, const void *b)
{
    const ngx_http_hris_account_t  *x, *y;

    x = *(ngx_http_hris_account_t **) a;
    y = *(ngx_http_hris_account_t **) b;

    return ngx_memn2cmp(x->id.data, y->id.data, x->id.len, y->id.len);
}

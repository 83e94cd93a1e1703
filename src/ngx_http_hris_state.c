/*
 * The state file (hris_state_file): what the gateway learns at run time
 * and must not lose on a restart: OAuth2 refresh tokens rotated by the
 * provider, the access tokens that go with them, accounts marked as
 * needing re-authorization, and the accounts created, changed or deleted
 * through the administration API or the connect flow:
 *
 *     {"version": 2, "tokens": {"<id>": {...}}, "accounts": {"<id>": {...}
 *      or null for a deleted file account}, "links": {"<hash>": expiry}}
 *
 * ("links": the connect links completed, which must not complete again
 * until they expire; a file without it has none).
 * (a file without "version" is the first format: tokens only, at the top
 * level). Snapshots are numbered; "<file>.lock" holds the number of the
 * one in the file, so that writes racing in threads of several workers
 * never put an older snapshot over a newer one. It is read when nginx
 * reads its configuration
 * and written, whole, after a change: to a temporary file renamed
 * over the old one, by a thread of nginx's thread pool, so no worker
 * waits for the disk. The event loop only copies the zone out; the
 * thread seals the tokens and makes the text, one entry a line (the
 * run-time accounts as stored), and a burst of changes makes one write
 * more, not one each. Secrets in it are sealed when hris_secrets_key is
 * set.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ngx_http_hris.h"
#include "ngx_http_hris_metrics.h"


#define NGX_HTTP_HRIS_STATE_RETRY_MIN  1000     /* ms */
#define NGX_HTTP_HRIS_STATE_RETRY_MAX  60000

#define NGX_HTTP_HRIS_STATE_HEAD       "{\n  \"version\": 2,\n  \"tokens\": {"
#define NGX_HTTP_HRIS_STATE_LINKS      ",\n  \"links\": "
#define NGX_HTTP_HRIS_STATE_ACCOUNTS   ",\n  \"accounts\": "

/* a token's entry but its strings */
#define NGX_HTTP_HRIS_STATE_TOKEN                                           \
    ",\n    \"\": {\"base\": \"\", \"refresh_token\": \"\", "                  \
    "\"access_token\": \"\", \"expires_at\": , \"needs_reauth\": false}"


/*
 * A snapshot on its way to the thread that makes the file's text: what
 * the zone held, copied out, and the key that seals its secrets.
 */
typedef struct {
    ngx_http_hris_state_snap_t   snap;
    u_char                      *key;          /* or NULL: not sealed */
} ngx_http_hris_state_text_t;


static ngx_int_t ngx_http_hris_state_post(ngx_http_hris_main_conf_t *hmcf,
    ngx_http_hris_file_t *out, ngx_log_t *log);
static char *ngx_http_hris_state_build(void *data);
static ngx_int_t ngx_http_hris_state_seal(ngx_http_hris_state_text_t *st,
    ngx_pool_t *pool, ngx_str_t *secrets);
static u_char *ngx_http_hris_state_token(u_char *p,
    ngx_http_hris_state_token_t *t, ngx_str_t *secrets);
static void ngx_http_hris_state_drop(void *data);
static void ngx_http_hris_state_done(ngx_http_hris_file_t *file,
    ngx_uint_t serial, ngx_err_t err, const char *what, ngx_log_t *log);
static ngx_msec_t ngx_http_hris_state_retry_next(void);
static void ngx_http_hris_state_failed(ngx_http_hris_main_conf_t *hmcf);
static void ngx_http_hris_state_retry(ngx_event_t *ev);
static time_t ngx_http_hris_parse_time(ngx_str_t *s);


/* a worker's retry of a failed write */
static ngx_event_t   ngx_http_hris_state_retry_ev;
static ngx_msec_t    ngx_http_hris_state_retry_delay;

/*
 * A worker's write under way, and a change it lacks: a burst of changes
 * makes one write, and one more once that is over, not one each.
 */
static ngx_uint_t    ngx_http_hris_state_writing;
static ngx_uint_t    ngx_http_hris_state_dirty;


ngx_int_t
ngx_http_hris_state_load(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf)
{
    json_error_t     jerr;
    ngx_file_info_t  fi;
#if (NGX_THREADS)
    ngx_str_t        pool = ngx_string("default");
#endif

    if (hmcf->state_file.len == 0) {
        return NGX_OK;
    }

    if (ngx_conf_full_name(cf->cycle, &hmcf->state_file, 1) != NGX_OK) {
        return NGX_ERROR;
    }

#if (NGX_THREADS)
    hmcf->thread_pool = ngx_thread_pool_add(cf, &pool);
    if (hmcf->thread_pool == NULL) {
        return NGX_ERROR;
    }
#endif

    hmcf->state_out.path = hmcf->state_file;
    hmcf->state_out.thread_pool = hmcf->thread_pool;
    hmcf->state_out.done = ngx_http_hris_state_done;
    hmcf->state_out.data = hmcf;
    hmcf->state_out.ordered = 1;

    hmcf->state_serial = ngx_http_hris_file_serial(cf->pool,
                                                   &hmcf->state_file);

    /* no file yet is a fresh start */
    if (ngx_file_info(hmcf->state_file.data, &fi) == NGX_FILE_ERROR
        && ngx_errno == NGX_ENOENT)
    {
        return NGX_OK;
    }

    hmcf->state = json_load_file((char *) hmcf->state_file.data, 0, &jerr);
    if (hmcf->state == NULL || !json_is_object(hmcf->state)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: %V: line %d: %s",
                           &hmcf->state_file, jerr.line,
                           hmcf->state ? "must be an object" : jerr.text);
        json_decref(hmcf->state);
        hmcf->state = NULL;
        return NGX_ERROR;
    }

    return ngx_http_hris_json_cleanup(cf->pool, hmcf->state);
}


/*
 * An account whose auth refreshes OAuth2 tokens: where the shared zone
 * starts from. The configured refresh token defines the "base"; a state
 * file entry made from the same base is newer and wins.
 */

ngx_int_t
ngx_http_hris_state_account(ngx_conf_t *cf, ngx_http_hris_main_conf_t *hmcf,
    ngx_http_hris_account_t *acc)
{
    json_t      *e, *v;
    ngx_str_t    key, *configured, *at, *exp;
    u_char       hex[65];
    unsigned int len;

    if (acc->auth->token == NULL || !acc->auth->token->has_refresh) {
        return NGX_OK;
    }

    ngx_str_set(&key, "refresh_token");
    configured = ngx_http_hris_keyval_get(&acc->credentials, &key);
    if (configured == NULL || configured->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: %V: account \"%V\" "
                           "needs credentials.refresh_token",
                           &hmcf->accounts_file, &acc->id);
        return NGX_ERROR;
    }

    len = sizeof(acc->refresh_base);
    EVP_Digest(configured->data, configured->len, acc->refresh_base, &len,
               EVP_sha256(), NULL);

    acc->refresh_initial = *configured;

    ngx_str_set(&key, "access_token");
    at = ngx_http_hris_keyval_get(&acc->credentials, &key);
    ngx_str_set(&key, "expires_at");
    exp = ngx_http_hris_keyval_get(&acc->credentials, &key);

    if (at && exp) {
        acc->seed_token = *at;
        acc->seed_expires = ngx_http_hris_parse_time(exp);
    }

    e = json_object_getn(ngx_http_hris_state_tokens(hmcf),
                         (char *) acc->id.data, acc->id.len);
    ngx_hex_dump(hex, acc->refresh_base, 32);
    hex[64] = '\0';

    v = json_object_get(e, "base");
    if (!json_is_string(v) || ngx_strcmp(json_string_value(v), hex) != 0) {
        return NGX_OK;
    }

    /* the state file's rotation descends from this configuration */
    v = json_object_get(e, "refresh_token");
    if (json_is_string(v)) {
        acc->refresh_initial.data = (u_char *) json_string_value(v);
        acc->refresh_initial.len = json_string_length(v);
    }

    v = json_object_get(e, "access_token");
    if (json_is_string(v) && json_string_length(v)) {
        acc->seed_token.data = (u_char *) json_string_value(v);
        acc->seed_token.len = json_string_length(v);
        v = json_object_get(e, "expires_at");
        acc->seed_expires = json_is_integer(v)
                            ? (time_t) json_integer_value(v) : 0;
    }

    acc->state_reauth = json_is_true(json_object_get(e, "needs_reauth"));

    return NGX_OK;
}


/* The state file's tokens (the first format had them at the top level). */

json_t *
ngx_http_hris_state_tokens(ngx_http_hris_main_conf_t *hmcf)
{
    if (json_object_get(hmcf->state, "version") == NULL) {
        return hmcf->state;
    }

    return json_object_get(hmcf->state, "tokens");
}


/*
 * Writes the zone's state out, off the event loop. A write that fails is
 * said in the error log and tried again (with a fresh snapshot) after a
 * while, and again, until one goes through: a rotated refresh token that
 * only the zone holds must reach the disk even when nothing else changes.
 * While this worker's write is under way, a change only marks the state
 * dirty: the write's end takes a fresh snapshot then.
 */

void
ngx_http_hris_state_save(ngx_http_hris_main_conf_t *hmcf, ngx_pool_t *pool,
    ngx_log_t *log)
{
    if (hmcf->state_file.len == 0) {
        return;
    }

    if (ngx_http_hris_state_writing) {
        ngx_http_hris_state_dirty = 1;
        return;
    }

    if (ngx_http_hris_state_post(hmcf, &hmcf->state_out, log) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "hris: the state file \"%V\" "
                      "could not be written: no memory for its snapshot",
                      &hmcf->state_file);
        ngx_http_hris_metrics_state_error(NGX_HTTP_HRIS_STORE_FILE);
        ngx_http_hris_state_failed(hmcf);
    }
}


/*
 * The worker exits: a change its last write lacked (or a failed write
 * waiting for its retry) is written now, in the worker: the thread pool
 * is gone by now, and nothing else waits for it.
 */

void
ngx_http_hris_state_exit(ngx_http_hris_main_conf_t *hmcf, ngx_log_t *log)
{
    ngx_http_hris_file_t  now;

    if (hmcf->state_file.len == 0 || hmcf->shm == NULL
        || !(ngx_http_hris_state_dirty
             || ngx_http_hris_state_retry_ev.timer_set))
    {
        return;
    }

    now = hmcf->state_out;
    now.thread_pool = NULL;
    now.done = NULL;

    ngx_http_hris_state_dirty = 0;

    if (ngx_http_hris_state_post(hmcf, &now, log) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "hris: the state file \"%V\" "
                      "could not be written as the worker exits: no memory "
                      "for its snapshot", &hmcf->state_file);
    }
}


static ngx_int_t
ngx_http_hris_state_post(ngx_http_hris_main_conf_t *hmcf,
    ngx_http_hris_file_t *out, ngx_log_t *log)
{
    ngx_int_t                     rc;
    ngx_uint_t                    serial;
    ngx_http_hris_state_text_t   *st;

    st = ngx_alloc(sizeof(ngx_http_hris_state_text_t), log);
    if (st == NULL) {
        return NGX_ERROR;
    }

    /* on the event loop, only what needs the zone's lock: copies */
    if (ngx_http_hris_shm_snapshot(hmcf, &st->snap, &serial) != NGX_OK) {
        ngx_free(st);
        return NGX_ERROR;
    }

    st->key = hmcf->has_secrets_key ? hmcf->secrets_key : NULL;

    /* done, when called at once (no thread pool), ends the write */
    ngx_http_hris_state_writing = (out->done != NULL);
    ngx_http_hris_state_dirty = 0;

    rc = ngx_http_hris_file_write_built(out, ngx_http_hris_state_build,
                                        ngx_http_hris_state_drop, st, serial,
                                        log);
    if (rc != NGX_OK) {
        ngx_http_hris_state_writing = 0;
    }

    return rc;
}


/*
 * In a pool thread (or in the worker, without one): the file's text, one
 * entry a line; tokens sealed, run-time accounts as stored (their secrets
 * sealed already). No jansson here: its allocator is the worker's.
 */

static char *
ngx_http_hris_state_build(void *data)
{
    u_char                       *text, *p, *r;
    size_t                        len;
    ngx_str_t                    *secrets;
    ngx_uint_t                    i, n;
    ngx_pool_t                   *pool;
    ngx_http_hris_state_text_t   *st = data;
    ngx_http_hris_state_token_t  *t;

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    n = 0;
    for (r = st->snap.tokens; r < st->snap.tokens + st->snap.tokens_len;
         r += ngx_http_hris_state_token_size(t))
    {
        t = (ngx_http_hris_state_token_t *) r;
        n++;
    }

    secrets = ngx_pcalloc(pool, (2 * n + 1) * sizeof(ngx_str_t));
    if (secrets == NULL || ngx_http_hris_state_seal(st, pool, secrets)
                           != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return NULL;
    }

    len = sizeof(NGX_HTTP_HRIS_STATE_HEAD) + sizeof("\n  }")
          + sizeof(NGX_HTTP_HRIS_STATE_LINKS) + st->snap.links.len
          + sizeof(NGX_HTTP_HRIS_STATE_ACCOUNTS) + st->snap.accounts.len
          + sizeof("\n}\n");

    i = 0;
    for (r = st->snap.tokens; r < st->snap.tokens + st->snap.tokens_len;
         r += ngx_http_hris_state_token_size(t))
    {
        t = (ngx_http_hris_state_token_t *) r;

        len += sizeof(NGX_HTTP_HRIS_STATE_TOKEN) + 64 + NGX_TIME_T_LEN
               + t->id_len + ngx_escape_json(NULL, (u_char *) (t + 1),
                                             t->id_len)
               + t->saved_len;

        for (n = 0; n < 2; n++, i++) {
            len += secrets[i].len
                   + ngx_escape_json(NULL, secrets[i].data, secrets[i].len);
        }
    }

    text = malloc(len);
    if (text == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    p = ngx_cpymem(text, NGX_HTTP_HRIS_STATE_HEAD,
                   sizeof(NGX_HTTP_HRIS_STATE_HEAD) - 1);

    i = 0;
    for (r = st->snap.tokens; r < st->snap.tokens + st->snap.tokens_len;
         r += ngx_http_hris_state_token_size(t))
    {
        t = (ngx_http_hris_state_token_t *) r;

        if (r != st->snap.tokens) {
            *p++ = ',';
        }

        p = ngx_http_hris_state_token(p, t, &secrets[i]);
        i += 2;
    }

    if (st->snap.tokens_len) {
        p = ngx_cpymem(p, "\n  ", sizeof("\n  ") - 1);
    }

    *p++ = '}';
    p = ngx_cpymem(p, NGX_HTTP_HRIS_STATE_LINKS,
                   sizeof(NGX_HTTP_HRIS_STATE_LINKS) - 1);
    p = ngx_cpymem(p, st->snap.links.data, st->snap.links.len);
    p = ngx_cpymem(p, NGX_HTTP_HRIS_STATE_ACCOUNTS,
                   sizeof(NGX_HTTP_HRIS_STATE_ACCOUNTS) - 1);
    p = ngx_cpymem(p, st->snap.accounts.data, st->snap.accounts.len);
    ngx_memcpy(p, "\n}\n", sizeof("\n}\n"));

    /* the sealed copies go; the plain ones are the snapshot's, dropped */
    ngx_destroy_pool(pool);

    return (char *) text;
}


/*
 * Each token's refresh and access token, two by two, sealed when a key
 * is set (entries carried on from the file are sealed already). A value
 * that cannot be sealed fails the write: it is never written in clear.
 */

static ngx_int_t
ngx_http_hris_state_seal(ngx_http_hris_state_text_t *st, ngx_pool_t *pool,
    ngx_str_t *secrets)
{
    u_char                       *r, *v;
    ngx_uint_t                    i, k;
    ngx_str_t                     plain;
    ngx_http_hris_state_token_t  *t;

    i = 0;
    for (r = st->snap.tokens; r < st->snap.tokens + st->snap.tokens_len;
         r += ngx_http_hris_state_token_size(t))
    {
        t = (ngx_http_hris_state_token_t *) r;
        v = (u_char *) (t + 1) + t->id_len;

        for (k = 0; k < 2; k++, i++) {
            plain.data = v;
            plain.len = k ? t->token_len : t->refresh_len;
            v += plain.len;

            if (st->key == NULL || plain.len == 0
                || ngx_http_hris_is_sealed(&plain))
            {
                secrets[i] = plain;
                continue;
            }

            if (ngx_http_hris_secret_seal(pool, st->key, &plain, &secrets[i])
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


/* one token's line: the file's entry as it was, or the zone's */

static u_char *
ngx_http_hris_state_token(u_char *p, ngx_http_hris_state_token_t *t,
    ngx_str_t *secrets)
{
    u_char  *id;

    id = (u_char *) (t + 1);

    p = ngx_cpymem(p, "\n    \"", sizeof("\n    \"") - 1);
    p = (u_char *) ngx_escape_json(p, id, t->id_len);
    p = ngx_cpymem(p, "\": ", sizeof("\": ") - 1);

    if (t->saved_len) {
        return ngx_cpymem(p, id + t->id_len + t->refresh_len + t->token_len,
                          t->saved_len);
    }

    p = ngx_cpymem(p, "{\"base\": \"", sizeof("{\"base\": \"") - 1);
    p = ngx_hex_dump(p, t->base, 32);
    p = ngx_cpymem(p, "\", \"refresh_token\": \"",
                   sizeof("\", \"refresh_token\": \"") - 1);
    p = (u_char *) ngx_escape_json(p, secrets[0].data, secrets[0].len);
    p = ngx_cpymem(p, "\", \"access_token\": \"",
                   sizeof("\", \"access_token\": \"") - 1);
    p = (u_char *) ngx_escape_json(p, secrets[1].data, secrets[1].len);

    return ngx_sprintf(p, "\", \"expires_at\": %T, \"needs_reauth\": %s}",
                       t->expires, t->needs_reauth ? "true" : "false");
}


static void
ngx_http_hris_state_drop(void *data)
{
    ngx_http_hris_state_text_t  *st = data;

    ngx_free(st->snap.tokens);
    ngx_free(st->snap.links.data);
    ngx_free(st->snap.accounts.data);
    ngx_free(st);
}


/* In the worker again: the outcome said, a failure tried again later. */

static void
ngx_http_hris_state_done(ngx_http_hris_file_t *file, ngx_uint_t serial,
    ngx_err_t err, const char *what, ngx_log_t *log)
{
    ngx_pool_t  *pool;

    ngx_http_hris_state_writing = 0;

    if (err == 0) {
        /* this snapshot, or a newer one, is in the file */
        ngx_http_hris_state_retry_delay = 0;

        if (ngx_http_hris_state_retry_ev.timer_set) {
            ngx_del_timer(&ngx_http_hris_state_retry_ev);
        }

        if (!ngx_http_hris_state_dirty) {
            return;
        }

        /* the changes made while it was written */
        pool = ngx_create_pool(4096, log);
        if (pool == NULL) {
            ngx_http_hris_state_failed(file->data);
            return;
        }

        ngx_http_hris_state_save(file->data, pool, log);
        ngx_destroy_pool(pool);

        return;
    }

    ngx_log_error(NGX_LOG_ERR, log, err, "hris: %s the state file \"%V\" "
                  "failed: the state is written again in %M ms", what,
                  &file->path, ngx_http_hris_state_retry_next());
    ngx_http_hris_metrics_state_error(NGX_HTTP_HRIS_STORE_FILE);

    ngx_http_hris_state_failed(file->data);
}


static ngx_msec_t
ngx_http_hris_state_retry_next(void)
{
    return ngx_http_hris_state_retry_delay
           ? ngx_min(2 * ngx_http_hris_state_retry_delay,
                     NGX_HTTP_HRIS_STATE_RETRY_MAX)
           : NGX_HTTP_HRIS_STATE_RETRY_MIN;
}


static void
ngx_http_hris_state_failed(ngx_http_hris_main_conf_t *hmcf)
{
    ngx_event_t  *ev = &ngx_http_hris_state_retry_ev;

    if (ev->timer_set || ngx_exiting) {
        return;
    }

    ngx_http_hris_state_retry_delay = ngx_http_hris_state_retry_next();

    ev->handler = ngx_http_hris_state_retry;
    ev->data = hmcf;
    ev->log = ngx_cycle->log;
    ev->cancelable = 1;

    ngx_add_timer(ev, ngx_http_hris_state_retry_delay);
}


static void
ngx_http_hris_state_retry(ngx_event_t *ev)
{
    ngx_pool_t  *pool;

    pool = ngx_create_pool(4096, ev->log);
    if (pool == NULL) {
        ngx_http_hris_state_failed(ev->data);
        return;
    }

    ngx_http_hris_state_save(ev->data, pool, ev->log);

    ngx_destroy_pool(pool);
}


/* expires_at: seconds since the epoch, or RFC 3339 */

static time_t
ngx_http_hris_parse_time(ngx_str_t *s)
{
    int         off;
    char        buf[64], sign;
    struct tm   tm;
    time_t      t;
    ngx_int_t   n;

    n = ngx_atotm(s->data, s->len);
    if (n != NGX_ERROR) {
        return (time_t) n;
    }

    if (s->len >= sizeof(buf)) {
        return 0;
    }

    ngx_memcpy(buf, s->data, s->len);
    buf[s->len] = '\0';
    ngx_memzero(&tm, sizeof(struct tm));

    if (sscanf(buf, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
    {
        return 0;
    }

    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    t = timegm(&tm);

    /* a zone other than Z: +HH:MM or -HH:MM after the seconds */
    off = 0;
    if (s->len >= 25) {
        sign = buf[s->len - 6];
        if (sign == '+' || sign == '-') {
            off = ((buf[s->len - 5] - '0') * 10 + buf[s->len - 4] - '0') * 3600
                  + ((buf[s->len - 2] - '0') * 10 + buf[s->len - 1] - '0')
                    * 60;
            off = (sign == '+') ? off : -off;
        }
    }

    return t - off;
}

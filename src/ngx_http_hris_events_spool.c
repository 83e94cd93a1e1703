/*
 * The webhooks spool: webhooks.json in the state directory, the zone's
 * subscriptions and undelivered events, so that they survive a restart
 * (a reload keeps the zone itself). Read when nginx reads its
 * configuration; written whole after each change, by one worker at a
 * time, through the state directory's writer (ngx_http_hris_file.c: the
 * thread pool, a temporary file renamed over the old one, mode 0600), as
 * idempotency.json is.
 *
 * Secrets are sealed with hris_secrets_key when it is set; without it
 * they are written as they are, in a directory only the workers' user
 * reads (mode 0700), like the run-time accounts of state.json.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/crypto.h>

#include "ngx_http_hris_webhooks.h"
#include "ngx_http_hris_file.h"


#define NGX_HTTP_HRIS_WH_FILE    "webhooks.json"


static ngx_int_t ngx_http_hris_wh_spool_open(ngx_conf_t *cf,
    ngx_http_hris_wh_conf_t *conf);
static char *ngx_http_hris_wh_snapshot(ngx_http_hris_wh_conf_t *conf,
    ngx_pool_t *pool, ngx_uint_t *serial);
static void ngx_http_hris_wh_file_done(ngx_http_hris_file_t *file,
    ngx_uint_t serial, ngx_err_t err, const char *what, ngx_log_t *log);
static void ngx_http_hris_wh_writer_free(ngx_http_hris_wh_conf_t *conf);
static ngx_uint_t ngx_http_hris_wh_spool_due(ngx_http_hris_wh_conf_t *conf);


ngx_int_t
ngx_http_hris_wh_spool_read(ngx_conf_t *cf, ngx_http_hris_wh_conf_t *conf)
{
    ngx_path_t       *dir;
    json_error_t      jerr;
    ngx_file_info_t   fi;
#if (NGX_THREADS)
    ngx_str_t         pool = ngx_string("default");
#endif

    dir = conf->hmcf->state_path;

    if (dir) {
        conf->file.len = dir->name.len + sizeof("/" NGX_HTTP_HRIS_WH_FILE) - 1;
        conf->file.data = ngx_pnalloc(cf->pool, conf->file.len + 1);
        if (conf->file.data == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(conf->file.data, "%V/" NGX_HTTP_HRIS_WH_FILE "%Z",
                    &dir->name);
    }

#if (NGX_THREADS)
    conf->out.thread_pool = ngx_thread_pool_add(cf, &pool);
    if (conf->out.thread_pool == NULL) {
        return NGX_ERROR;
    }
#endif

    conf->out.path = conf->file;
    conf->out.done = ngx_http_hris_wh_file_done;
    conf->out.data = conf;

    /*
     * Numbered snapshots: a worker's last write as it exits (below) may
     * run alongside another's; the older never replaces the newer, and
     * the numbers go on from the file's over a restart.
     */
    conf->out.ordered = 1;
    conf->serial = conf->file.len ? ngx_http_hris_file_serial(cf->pool,
                                                              &conf->file)
                                  : 0;

    if (conf->file.len == 0
        || (ngx_file_info(conf->file.data, &fi) == NGX_FILE_ERROR
            && ngx_errno == NGX_ENOENT))
    {
        return NGX_OK;
    }

    conf->initial = json_load_file((char *) conf->file.data, 0, &jerr);

    if (conf->initial == NULL
        || !json_is_array(json_object_get(conf->initial, "subscriptions"))
        || !json_is_array(json_object_get(conf->initial, "events")))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: %V: line %d: %s "
                           "(the webhook subscriptions and undelivered "
                           "events: remove the file to start without them)",
                           &conf->file, jerr.line,
                           conf->initial ? "\"subscriptions\" and \"events\" "
                                           "must be arrays"
                                         : jerr.text);
        json_decref(conf->initial);
        conf->initial = NULL;
        return NGX_ERROR;
    }

    if (ngx_http_hris_json_cleanup(cf->pool, conf->initial) != NGX_OK) {
        json_decref(conf->initial);
        conf->initial = NULL;
        return NGX_ERROR;
    }

    return ngx_http_hris_wh_spool_open(cf, conf);
}


/* the sealed secrets of the file opened (the zone holds them open) */

static ngx_int_t
ngx_http_hris_wh_spool_open(ngx_conf_t *cf, ngx_http_hris_wh_conf_t *conf)
{
    json_t     *e, *subs, *v;
    size_t      i;
    ngx_int_t   rc;
    ngx_str_t   in, out;

    subs = json_object_get(conf->initial, "subscriptions");

    json_array_foreach(subs, i, e) {
        v = json_object_get(e, "secret");
        if (!json_is_string(v)) {
            continue;
        }

        in.data = (u_char *) json_string_value(v);
        in.len = json_string_length(v);

        rc = ngx_http_hris_secret_unseal(cf->temp_pool, conf->hmcf, &in,
                                         &out);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: %V: the secret "
                               "of webhook subscription %uz is sealed and "
                               "does not open with \"hris_secrets_key\"",
                               &conf->file, i);
            return NGX_ERROR;
        }

        if (out.data != in.data) {
            json_object_set_new(e, "secret",
                                json_stringn((char *) out.data, out.len));
            OPENSSL_cleanse(out.data, out.len);
        }
    }

    return NGX_OK;
}


/* A snapshot of the zone is written unless one is being written. */

void
ngx_http_hris_wh_spool_save(ngx_http_hris_wh_conf_t *conf, ngx_log_t *log)
{
    char        *text;
    ngx_pool_t  *pool;
    ngx_uint_t   serial;

    if (conf->file.len == 0 || !ngx_http_hris_wh_spool_due(conf)) {
        return;
    }

    /* for the sealed secrets */
    pool = ngx_create_pool(4096, log);
    if (pool == NULL) {
        return;
    }

    ngx_shmtx_lock(&conf->shpool->mutex);

    if (!ngx_http_hris_file_mark_take(&conf->sh->mark)) {
        ngx_shmtx_unlock(&conf->shpool->mutex);
        ngx_destroy_pool(pool);
        return;
    }

    text = ngx_http_hris_wh_snapshot(conf, pool, &serial);

    if (text == NULL) {
        ngx_http_hris_file_mark_release(&conf->sh->mark);
    }

    ngx_shmtx_unlock(&conf->shpool->mutex);

    ngx_destroy_pool(pool);

    if (text == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "hris: no memory for a snapshot "
                      "of the webhooks for \"%V\"", &conf->file);
        return;
    }

    if (ngx_http_hris_file_write(&conf->out, text, serial, log) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "hris: no memory to write the "
                      "webhooks to \"%V\"", &conf->file);
        ngx_http_hris_wh_writer_free(conf);
    }
}


/*
 * A worker exits: what changed since the file was last written (a write
 * skipped while another was under way) is written now, in the worker:
 * the thread pool is gone by now, and nothing else waits for it.
 */

void
ngx_http_hris_wh_spool_exit(ngx_http_hris_wh_conf_t *conf, ngx_log_t *log)
{
    char                  *text;
    ngx_pool_t            *pool;
    ngx_uint_t             serial = 0;
    ngx_http_hris_file_t   now;

    if (conf->file.len == 0 || conf->sh == NULL) {
        return;
    }

    pool = ngx_create_pool(4096, log);
    if (pool == NULL) {
        return;
    }

    ngx_shmtx_lock(&conf->shpool->mutex);

    text = ngx_http_hris_file_mark_exit(&conf->sh->mark)
           ? ngx_http_hris_wh_snapshot(conf, pool, &serial) : NULL;

    ngx_shmtx_unlock(&conf->shpool->mutex);

    ngx_destroy_pool(pool);

    if (text == NULL) {
        return;
    }

    now = conf->out;
    now.thread_pool = NULL;
    now.done = NULL;

    (void) ngx_http_hris_file_write(&now, text, serial, log);
}


/* a change not in the file yet, and no live writer */

static ngx_uint_t
ngx_http_hris_wh_spool_due(ngx_http_hris_wh_conf_t *conf)
{
    ngx_uint_t  due;

    ngx_shmtx_lock(&conf->shpool->mutex);
    due = ngx_http_hris_file_mark_due(&conf->sh->mark);
    ngx_shmtx_unlock(&conf->shpool->mutex);

    return due;
}


/* the zone as JSON text (malloc'ed); the lock is held */

static char *
ngx_http_hris_wh_snapshot(ngx_http_hris_wh_conf_t *conf, ngx_pool_t *pool,
    ngx_uint_t *serial)
{
    char                    *text;
    json_t                  *subs, *dlvs, *e, *file;
    ngx_str_t                plain, secret;
    ngx_queue_t             *q;
    ngx_http_hris_wh_sub_t  *s;
    ngx_http_hris_wh_dlv_t  *d;

    subs = json_array();
    dlvs = json_array();
    file = json_pack("{s:i,s:o,s:o}", "version", 1, "subscriptions", subs,
                     "events", dlvs);
    if (file == NULL) {
        return NULL;
    }

    for (q = ngx_queue_head(&conf->sh->subs);
         q != ngx_queue_sentinel(&conf->sh->subs);
         q = ngx_queue_next(q))
    {
        s = ngx_queue_data(q, ngx_http_hris_wh_sub_t, queue);

        plain.data = s->secret;
        plain.len = s->secret_len;
        secret = plain;

        if (conf->hmcf->has_secrets_key
            && ngx_http_hris_secret_seal(pool, conf->hmcf->secrets_key,
                                         &plain, &secret)
               != NGX_OK)
        {
            goto failed;
        }

        e = json_pack("{s:s#,s:s#,s:s#,s:s#,s:s#,s:I}",
                      "id", s->id, (int) NGX_HTTP_HRIS_WH_ID_LEN,
                      "tenant", s->tenant.data, (int) s->tenant.len,
                      "url", s->url.data, (int) s->url.len,
                      "events", s->events.data, (int) s->events.len,
                      "secret", secret.data, (int) secret.len,
                      "created", (json_int_t) s->created);

        if (e == NULL || json_array_append_new(subs, e) != 0) {
            goto failed;
        }
    }

    for (q = ngx_queue_head(&conf->sh->dlvs);
         q != ngx_queue_sentinel(&conf->sh->dlvs);
         q = ngx_queue_next(q))
    {
        d = ngx_queue_data(q, ngx_http_hris_wh_dlv_t, queue);

        e = json_pack("{s:s#,s:s#,s:s#,s:s#,s:I,s:I,s:I}",
                      "id", d->evt, (int) NGX_HTTP_HRIS_EVT_ID_LEN,
                      "sub", d->sub, (int) NGX_HTTP_HRIS_WH_ID_LEN,
                      "tenant", d->tenant.data, (int) d->tenant.len,
                      "body", d->body.data, (int) d->body.len,
                      "created", (json_int_t) d->created,
                      "due", (json_int_t) d->due,
                      "attempts", (json_int_t) d->attempts);

        if (e == NULL || json_array_append_new(dlvs, e) != 0) {
            goto failed;
        }
    }

    *serial = conf->sh->mark.serial;

    text = json_dumps(file, JSON_COMPACT);
    json_decref(file);

    return text;

failed:

    json_decref(file);
    return NULL;
}


static void
ngx_http_hris_wh_writer_free(ngx_http_hris_wh_conf_t *conf)
{
    ngx_shmtx_lock(&conf->shpool->mutex);
    ngx_http_hris_file_mark_release(&conf->sh->mark);
    ngx_shmtx_unlock(&conf->shpool->mutex);
}


/* In the worker: the writer's mark let go, and a newer snapshot written */

static void
ngx_http_hris_wh_file_done(ngx_http_hris_file_t *file, ngx_uint_t serial,
    ngx_err_t err, const char *what, ngx_log_t *log)
{
    ngx_uint_t                again;
    ngx_http_hris_wh_conf_t  *conf = file->data;

    if (conf->sh == NULL) {
        return;
    }

    if (err) {
        ngx_log_error(NGX_LOG_ERR, log, err, "hris: %s \"%V\" failed: "
                      "the webhook subscriptions and events changed since "
                      "the last write would not survive a restart",
                      what, &file->path);
    }

    ngx_shmtx_lock(&conf->shpool->mutex);
    again = ngx_http_hris_file_mark_done(&conf->sh->mark, serial, err);
    ngx_shmtx_unlock(&conf->shpool->mutex);

    if (again) {
        ngx_http_hris_wh_spool_save(conf, log);
    }
}

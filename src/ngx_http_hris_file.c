/*
 * Whole-file writes of the state directory through nginx's thread pool
 * (see ngx_http_hris_file.h).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <sys/file.h>
#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif

#include "ngx_http_hris_file.h"


typedef struct {
    ngx_http_hris_file_t        *file;
    ngx_str_t                    path;
    char                        *text;
    ngx_http_hris_file_build_pt  build;
    ngx_http_hris_file_drop_pt   drop;
    void                        *ctx;
    ngx_uint_t                   serial;
    ngx_pid_t                    pid;
    ngx_uint_t                   ordered;
    ngx_err_t                    err;
    const char                  *what;
} ngx_http_hris_file_task_t;


static ngx_int_t ngx_http_hris_file_post(ngx_http_hris_file_t *file,
    char *text, ngx_http_hris_file_build_pt build,
    ngx_http_hris_file_drop_pt drop, void *ctx, ngx_uint_t serial,
    ngx_log_t *log);
static void ngx_http_hris_file_thread(void *data, ngx_log_t *log);
static void ngx_http_hris_file_free(char *text,
    ngx_http_hris_file_drop_pt drop, void *ctx);
static void ngx_http_hris_file_replace(ngx_http_hris_file_task_t *t,
    u_char *tmp);
static ngx_int_t ngx_http_hris_file_number(u_char *buf, ssize_t n);
static void ngx_http_hris_file_end(ngx_http_hris_file_task_t *t,
    ngx_log_t *log);
#if (NGX_THREADS)
static void ngx_http_hris_file_written(ngx_event_t *ev);
#endif


ngx_int_t
ngx_http_hris_file_write(ngx_http_hris_file_t *file, char *text,
    ngx_uint_t serial, ngx_log_t *log)
{
    return ngx_http_hris_file_post(file, text, NULL, NULL, NULL, serial, log);
}


ngx_int_t
ngx_http_hris_file_write_built(ngx_http_hris_file_t *file,
    ngx_http_hris_file_build_pt build, ngx_http_hris_file_drop_pt drop,
    void *ctx, ngx_uint_t serial, ngx_log_t *log)
{
    return ngx_http_hris_file_post(file, NULL, build, drop, ctx, serial, log);
}


static ngx_int_t
ngx_http_hris_file_post(ngx_http_hris_file_t *file, char *text,
    ngx_http_hris_file_build_pt build, ngx_http_hris_file_drop_pt drop,
    void *ctx, ngx_uint_t serial, ngx_log_t *log)
{
    ngx_http_hris_file_task_t  *t;
#if (NGX_THREADS)
    ngx_thread_task_t          *task;

    task = ngx_calloc(sizeof(ngx_thread_task_t)
                      + sizeof(ngx_http_hris_file_task_t), log);
    if (task == NULL) {
        ngx_http_hris_file_free(text, drop, ctx);
        return NGX_ERROR;
    }

    t = (ngx_http_hris_file_task_t *) (task + 1);
    task->ctx = t;
    task->handler = ngx_http_hris_file_thread;
    task->event.handler = ngx_http_hris_file_written;
    task->event.data = task;
    /* the task may end after the connection that asked for it */
    task->event.log = ngx_cycle->log;
#else
    t = ngx_calloc(sizeof(ngx_http_hris_file_task_t), log);
    if (t == NULL) {
        ngx_http_hris_file_free(text, drop, ctx);
        return NGX_ERROR;
    }
#endif

    t->file = file;
    t->path = file->path;
    t->text = text;
    t->build = build;
    t->drop = drop;
    t->ctx = ctx;
    t->serial = serial;
    t->pid = ngx_pid;
    t->ordered = file->ordered;

#if (NGX_THREADS)
    if (file->thread_pool
        && ngx_thread_task_post(file->thread_pool, task) == NGX_OK)
    {
        return NGX_OK;
    }

    if (file->thread_pool) {
        ngx_log_error(NGX_LOG_ALERT, log, 0, "hris: \"%V\" is written in "
                      "this worker: the thread pool refused the task",
                      &file->path);
    }
#endif

    /* without threads: a small file, written at once */
    ngx_http_hris_file_thread(t, log);
    ngx_http_hris_file_end(t, log);
#if (NGX_THREADS)
    ngx_free(task);
#else
    ngx_free(t);
#endif

    return NGX_OK;
}


/*
 * In a pool thread: no nginx calls but file system ones, no logging
 * (the caller's build() keeps to pure ones and its own memory).
 */

static void
ngx_http_hris_file_thread(void *data, ngx_log_t *log)
{
    size_t                      len;
    ngx_fd_t                    fd;
    ngx_http_hris_file_task_t  *t = data;
    u_char                      tmp[NGX_MAX_PATH];

    if (t->build) {
        t->text = t->build(t->ctx);
        t->drop(t->ctx);
        t->build = NULL;

        if (t->text == NULL) {
            t->what = "making the text of";
            t->err = NGX_ENOMEM;
            return;
        }
    }

    len = ngx_strlen(t->text);

    if (ngx_snprintf(tmp, sizeof(tmp) - 1, "%V.%P.%ui%Z", &t->path, t->pid,
                     t->serial)
        == tmp + sizeof(tmp) - 1)
    {
        t->what = "naming the temporary file of";
        t->err = NGX_ENAMETOOLONG;
        return;
    }

    fd = ngx_open_file(tmp, NGX_FILE_WRONLY, NGX_FILE_TRUNCATE, 0600);
    if (fd == NGX_INVALID_FILE) {
        t->what = "opening the temporary file of";
        t->err = ngx_errno;
        return;
    }

    if (ngx_write_fd(fd, t->text, len) != (ssize_t) len || fsync(fd) != 0) {
        t->what = "writing";
        t->err = ngx_errno;
        ngx_close_file(fd);
        ngx_delete_file(tmp);
        return;
    }

    ngx_close_file(fd);

    if (!t->ordered) {
        if (ngx_rename_file(tmp, t->path.data) == NGX_FILE_ERROR) {
            t->what = "renaming over";
            t->err = ngx_errno;
            ngx_delete_file(tmp);
        }

        return;
    }

    ngx_http_hris_file_replace(t, tmp);
}


static void
ngx_http_hris_file_free(char *text, ngx_http_hris_file_drop_pt drop,
    void *ctx)
{
    free(text);

    if (drop) {
        drop(ctx);
    }
}


/* rename is atomic; the lock file orders snapshots of several workers */

static void
ngx_http_hris_file_replace(ngx_http_hris_file_task_t *t, u_char *tmp)
{
    u_char      lock[NGX_MAX_PATH], buf[NGX_INT_T_LEN + 1];
    ssize_t     n;
    ngx_fd_t    fd;
    ngx_int_t   last;

    if (ngx_snprintf(lock, sizeof(lock) - 1, "%V.lock%Z", &t->path)
        == lock + sizeof(lock) - 1)
    {
        t->what = "naming the lock file of";
        t->err = NGX_ENAMETOOLONG;
        ngx_delete_file(tmp);
        return;
    }

    fd = ngx_open_file(lock, NGX_FILE_RDWR, NGX_FILE_CREATE_OR_OPEN, 0600);
    if (fd == NGX_INVALID_FILE || flock(fd, LOCK_EX) != 0) {
        t->what = "locking";
        t->err = ngx_errno;
        if (fd != NGX_INVALID_FILE) {
            ngx_close_file(fd);
        }
        ngx_delete_file(tmp);
        return;
    }

    last = ngx_http_hris_file_number(buf, pread(fd, buf, NGX_INT_T_LEN, 0));

    if (last != NGX_ERROR && (ngx_uint_t) last >= t->serial) {
        /* a newer snapshot is there already */
        ngx_delete_file(tmp);

    } else if (ngx_rename_file(tmp, t->path.data) == NGX_FILE_ERROR) {
        t->what = "renaming over";
        t->err = ngx_errno;
        ngx_delete_file(tmp);

    } else {
        n = ngx_sprintf(buf, "%ui\n", t->serial) - buf;

        if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, n, 0) != n) {
            t->what = "writing the number of the snapshot in";
            t->err = ngx_errno;
        }
    }

    (void) flock(fd, LOCK_UN);
    ngx_close_file(fd);
}


/* "<number>\n" as the lock file holds it; 0 when empty */

static ngx_int_t
ngx_http_hris_file_number(u_char *buf, ssize_t n)
{
    u_char  *nl;

    if (n <= 0) {
        return 0;
    }

    nl = ngx_strlchr(buf, buf + n, '\n');

    return ngx_atoi(buf, nl ? (size_t) (nl - buf) : (size_t) n);
}


ngx_uint_t
ngx_http_hris_file_serial(ngx_pool_t *pool, ngx_str_t *path)
{
    u_char     buf[NGX_INT_T_LEN + 1], *name;
    ngx_fd_t   fd;
    ngx_int_t  last;

    name = ngx_pnalloc(pool, path->len + sizeof(".lock"));
    if (name == NULL) {
        return 0;
    }

    ngx_sprintf(name, "%V.lock%Z", path);

    fd = ngx_open_file(name, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        return 0;
    }

    last = ngx_http_hris_file_number(buf, ngx_read_fd(fd, buf,
                                                      NGX_INT_T_LEN));
    ngx_close_file(fd);

    return last == NGX_ERROR ? 0 : (ngx_uint_t) last;
}


/* In the worker again: the text freed, the caller told. */

static void
ngx_http_hris_file_end(ngx_http_hris_file_task_t *t, ngx_log_t *log)
{
    free(t->text);
    t->text = NULL;

    if (t->file->done) {
        t->file->done(t->file, t->serial, t->err, t->what, log);
    }
}


#if (NGX_THREADS)

static void
ngx_http_hris_file_written(ngx_event_t *ev)
{
    ngx_thread_task_t  *task = ev->data;

    ngx_http_hris_file_end(task->ctx, ev->log);

    ngx_free(task);
}

#endif


void
ngx_http_hris_file_mark_init(ngx_http_hris_file_mark_t *m, ngx_uint_t serial)
{
    m->serial = serial;
    m->written = serial;
    m->writer = 0;
    m->writing = 0;
}


void
ngx_http_hris_file_mark_dirty(ngx_http_hris_file_mark_t *m)
{
    m->serial++;
}


void
ngx_http_hris_file_mark_clean(ngx_http_hris_file_mark_t *m)
{
    m->written = m->serial;
}


ngx_uint_t
ngx_http_hris_file_mark_due(ngx_http_hris_file_mark_t *m)
{
    return m->written < m->serial
           && !(m->writer
                && m->writing + NGX_HTTP_HRIS_FILE_WRITER > ngx_time());
}


ngx_uint_t
ngx_http_hris_file_mark_take(ngx_http_hris_file_mark_t *m)
{
    if (!ngx_http_hris_file_mark_due(m)) {
        return 0;
    }

    m->writer = ngx_pid;
    m->writing = ngx_time();

    return 1;
}


void
ngx_http_hris_file_mark_release(ngx_http_hris_file_mark_t *m)
{
    if (m->writer == ngx_pid) {
        m->writer = 0;
    }
}


ngx_uint_t
ngx_http_hris_file_mark_done(ngx_http_hris_file_mark_t *m, ngx_uint_t serial,
    ngx_err_t err)
{
    if (!err && serial > m->written) {
        m->written = serial;
    }

    ngx_http_hris_file_mark_release(m);

    return !err && m->written < m->serial;
}


ngx_uint_t
ngx_http_hris_file_mark_exit(ngx_http_hris_file_mark_t *m)
{
    return m->written < m->serial;
}

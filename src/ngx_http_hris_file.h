/*
 * Files of the state directory written whole, off the event loop: the
 * text goes to a temporary file of its own, is synced, and is renamed
 * over the file by a thread of nginx's thread pool, so a reader (or a
 * restart) sees the old file or the new one, never half of one, and no
 * worker waits for the disk.
 *
 * Snapshots made by several workers may finish in any order. With
 * "ordered" set, each carries a number and "<file>.lock" holds the
 * number of the one in the file: an older snapshot never replaces a
 * newer one. Without it, the caller makes sure one write at a time runs.
 */

#ifndef _NGX_HTTP_HRIS_FILE_H_INCLUDED_
#define _NGX_HTTP_HRIS_FILE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


typedef struct ngx_http_hris_file_s  ngx_http_hris_file_t;

/*
 * In the worker, once the write is over: err is 0 when this snapshot (or
 * a newer one) is in the file; otherwise what failed, to be logged.
 */
typedef void (*ngx_http_hris_file_done_pt)(ngx_http_hris_file_t *file,
    ngx_uint_t serial, ngx_err_t err, const char *what, ngx_log_t *log);

struct ngx_http_hris_file_s {
    ngx_str_t                    path;         /* null-terminated */
    void                        *thread_pool;  /* or NULL: written at once */
    ngx_http_hris_file_done_pt   done;         /* or NULL */
    void                        *data;         /* the caller's */
    unsigned                     ordered:1;
};


/*
 * Takes "text" (malloc'ed, null-terminated: freed here whatever happens).
 * NGX_ERROR: no memory for the task; nothing is written and done is not
 * called.
 */
ngx_int_t ngx_http_hris_file_write(ngx_http_hris_file_t *file, char *text,
    ngx_uint_t serial, ngx_log_t *log);

/*
 * A text too long to make on the event loop: build() makes it in the pool
 * thread (no nginx calls but pure ones, no jansson: its allocator is the
 * worker's), from ctx, and returns it malloc'ed and null-terminated, or
 * NULL (no memory). drop() frees ctx, in the thread after build(), or in
 * the worker when the task could not be made (NGX_ERROR; done is not
 * called then).
 */
typedef char *(*ngx_http_hris_file_build_pt)(void *ctx);
typedef void (*ngx_http_hris_file_drop_pt)(void *ctx);

ngx_int_t ngx_http_hris_file_write_built(ngx_http_hris_file_t *file,
    ngx_http_hris_file_build_pt build, ngx_http_hris_file_drop_pt drop,
    void *ctx, ngx_uint_t serial, ngx_log_t *log);

/* The number of the snapshot in an ordered file: 0 when none. */
ngx_uint_t ngx_http_hris_file_serial(ngx_pool_t *pool, ngx_str_t *path);


/*
 * The writer's mark of a file that holds a snapshot of a shared zone: it
 * lives in the zone, and every call below is made with the zone's lock
 * held. Each change the file lacks is counted (dirty); one worker at a
 * time takes the mark and writes a snapshot, numbered with the count it
 * holds; once that is in the file (done) the worker writes again if more
 * changed meanwhile. A writer that died is taken over after
 * NGX_HTTP_HRIS_FILE_WRITER seconds.
 */

#define NGX_HTTP_HRIS_FILE_WRITER  10           /* s */

typedef struct {
    ngx_uint_t                   serial;       /* changes so far */
    ngx_uint_t                   written;      /* the file's serial */
    ngx_pid_t                    writer;       /* writing the file, or 0 */
    time_t                       writing;      /* since */
} ngx_http_hris_file_mark_t;


/* the zone made: what the file holds, numbered on from the file's */
void ngx_http_hris_file_mark_init(ngx_http_hris_file_mark_t *m,
    ngx_uint_t serial);

/* a change the file lacks */
void ngx_http_hris_file_mark_dirty(ngx_http_hris_file_mark_t *m);

/* the file holds every change so far (the zone was filled from it) */
void ngx_http_hris_file_mark_clean(ngx_http_hris_file_mark_t *m);

/* a change the file lacks, and no live writer */
ngx_uint_t ngx_http_hris_file_mark_due(ngx_http_hris_file_mark_t *m);

/* 1: due, and this worker now writes (the mark is its own) */
ngx_uint_t ngx_http_hris_file_mark_take(ngx_http_hris_file_mark_t *m);

/* the write will not happen: another worker may take the mark at once */
void ngx_http_hris_file_mark_release(ngx_http_hris_file_mark_t *m);

/*
 * The write of the snapshot "serial" is over (err 0: it, or a newer one,
 * is in the file); the mark let go. 1: more changed meanwhile, write
 * again.
 */
ngx_uint_t ngx_http_hris_file_mark_done(ngx_http_hris_file_mark_t *m,
    ngx_uint_t serial, ngx_err_t err);

/*
 * The worker exits: 1 when the file lacks a change, to be written now, at
 * once. A mark it holds lapses as a dead writer's does.
 */
ngx_uint_t ngx_http_hris_file_mark_exit(ngx_http_hris_file_mark_t *m);


#endif /* _NGX_HTTP_HRIS_FILE_H_INCLUDED_ */

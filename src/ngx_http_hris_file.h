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

/* The number of the snapshot in an ordered file: 0 when none. */
ngx_uint_t ngx_http_hris_file_serial(ngx_pool_t *pool, ngx_str_t *path);


#endif /* _NGX_HTTP_HRIS_FILE_H_INCLUDED_ */

/*
 * The Redis client (see ngx_http_hris_redis.h): commands queued, written,
 * their replies read and handed to their handlers, their deadlines.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include <openssl/evp.h>

#include "ngx_http_hris_redis.h"
#include "ngx_http_hris_redis_client.h"


static ngx_str_t  ngx_http_hris_redis_not_error = ngx_string("(not an error)");


static ngx_int_t ngx_http_hris_redis_read(ngx_http_hris_redis_t *rd);
static ngx_int_t ngx_http_hris_redis_replies(ngx_http_hris_redis_t *rd);
static void ngx_http_hris_redis_dispatch(ngx_http_hris_redis_t *rd,
    ngx_http_hris_redis_reply_t *reply);
static void ngx_http_hris_redis_cancel_cleanup(void *data);
static ngx_int_t ngx_http_hris_redis_encode(ngx_http_hris_redis_cmd_t *cmd,
    ngx_uint_t total, ngx_str_t *head, ngx_uint_t nhead, ngx_uint_t argc,
    ngx_str_t *argv, ngx_str_t *tail);


void
ngx_http_hris_redis_write_handler(ngx_event_t *wev)
{
    ngx_err_t               err;
    ngx_connection_t       *c = wev->data;
    ngx_http_hris_redis_t  *rd = c->data;

    if (rd->state == NGX_HTTP_HRIS_REDIS_CONNECTING) {
        if (wev->timedout) {
            ngx_http_hris_redis_fail(rd, NGX_HTTP_HRIS_REDIS_UNREACHABLE,
                                     NGX_ETIMEDOUT, "connect() timed out");
            return;
        }

        err = ngx_http_hris_redis_test_connect(c);
        if (err) {
            ngx_http_hris_redis_fail(rd, NGX_HTTP_HRIS_REDIS_UNREACHABLE,
                                     err, "connect() failed");
            return;
        }

        ngx_http_hris_redis_connected(rd);
        return;
    }

    if (ngx_http_hris_redis_flush(rd) == NGX_OK) {
        ngx_http_hris_redis_timer(rd);
    }
}


void
ngx_http_hris_redis_read_handler(ngx_event_t *rev)
{
    ngx_err_t               err;
    ngx_connection_t       *c = rev->data;
    ngx_http_hris_redis_t  *rd = c->data;
    u_char                  why[64];

    if (rev->timedout) {
        rev->timedout = 0;
        *ngx_snprintf(why, sizeof(why) - 1, "no answer in %M ms "
                      "(hris_redis_timeout)", rd->conf->timeout) = '\0';
        ngx_http_hris_redis_fail(rd, NGX_HTTP_HRIS_REDIS_TIMEOUT, 0,
                                 (char *) why);
        return;
    }

    if (rd->state == NGX_HTTP_HRIS_REDIS_CONNECTING) {
        err = ngx_http_hris_redis_test_connect(c);
        if (err) {
            ngx_http_hris_redis_fail(rd, NGX_HTTP_HRIS_REDIS_UNREACHABLE,
                                     err, "connect() failed");
            return;
        }

        ngx_http_hris_redis_connected(rd);

        if (rd->state != NGX_HTTP_HRIS_REDIS_HANDSHAKE) {
            return;
        }
    }

    if (ngx_http_hris_redis_read(rd) == NGX_OK) {
        ngx_http_hris_redis_timer(rd);
    }
}


/*
 * Sends what is unsent of the "sent" queue in one writev. Returns NGX_OK,
 * or NGX_ERROR once the connection has failed.
 */

ngx_int_t
ngx_http_hris_redis_flush(ngx_http_hris_redis_t *rd)
{
    ngx_queue_t                *q;
    ngx_chain_t                *out, **ll, *rest;
    ngx_connection_t           *c = rd->peer.connection;
    ngx_http_hris_redis_cmd_t  *cmd;

    out = NULL;
    ll = &out;

    for (q = ngx_queue_head(&rd->sent);
         q != ngx_queue_sentinel(&rd->sent);
         q = ngx_queue_next(q))
    {
        cmd = ngx_queue_data(q, ngx_http_hris_redis_cmd_t, queue);

        if (cmd->buf.pos < cmd->buf.last) {
            cmd->cl.buf = &cmd->buf;
            cmd->cl.next = NULL;
            *ll = &cmd->cl;
            ll = &cmd->cl.next;
        }
    }

    if (out == NULL || !c->write->ready) {
        return NGX_OK;
    }

    rest = c->send_chain(c, out, 0);

    if (rest == NGX_CHAIN_ERROR) {
        ngx_http_hris_redis_fail(rd, NGX_HTTP_HRIS_REDIS_UNREACHABLE,
                                 ngx_socket_errno, "send failed");
        return NGX_ERROR;
    }

    if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
        ngx_http_hris_redis_fail(rd, NGX_HTTP_HRIS_REDIS_UNREACHABLE, 0,
                                 "could not wait to send");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* Returns NGX_OK, or NGX_ERROR once the connection has failed. */

static ngx_int_t
ngx_http_hris_redis_read(ngx_http_hris_redis_t *rd)
{
    size_t             size;
    u_char            *p;
    ssize_t            n;
    ngx_connection_t  *c = rd->peer.connection;

    for ( ;; ) {

        if (rd->last == rd->end) {
            if (rd->pos > rd->start) {
                rd->last = ngx_movemem(rd->start, rd->pos,
                                       rd->last - rd->pos);
                rd->pos = rd->start;

            } else {
                size = rd->end - rd->start;

                if (size >= NGX_HTTP_HRIS_RESP_MAX_REPLY) {
                    ngx_http_hris_redis_fail(rd,
                                             NGX_HTTP_HRIS_REDIS_UNREACHABLE,
                                             0, "a reply is larger than "
                                             "4 MB");
                    return NGX_ERROR;
                }

                p = ngx_alloc(size * 2, rd->log);
                if (p == NULL) {
                    ngx_http_hris_redis_fail(rd,
                                             NGX_HTTP_HRIS_REDIS_UNREACHABLE,
                                             0, "out of memory");
                    return NGX_ERROR;
                }

                ngx_memcpy(p, rd->start, size);
                ngx_free(rd->start);
                rd->pos = p;
                rd->start = p;
                rd->last = p + size;
                rd->end = p + size * 2;
            }
        }

        n = c->recv(c, rd->last, rd->end - rd->last);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0 || n == NGX_ERROR) {
            ngx_http_hris_redis_fail(rd, NGX_HTTP_HRIS_REDIS_UNREACHABLE, 0,
                                     n == 0 ? "the connection was closed"
                                            : "recv() failed");
            return NGX_ERROR;
        }

        rd->last += n;

        if (ngx_http_hris_redis_replies(rd) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_http_hris_redis_fail(rd, NGX_HTTP_HRIS_REDIS_UNREACHABLE, 0,
                                 "could not wait to read");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* Every complete reply in the buffer, in order. */

static ngx_int_t
ngx_http_hris_redis_replies(ngx_http_hris_redis_t *rd)
{
    u_char                       *p, *big;
    ngx_int_t                     rc;
    ngx_uint_t                    generation;
    ngx_pool_t                   *pool;
    const char                   *err;
    ngx_http_hris_redis_reply_t   reply;

    generation = rd->generation;

    while (rd->pos < rd->last) {

        p = rd->pos;
        rc = ngx_http_hris_resp_parse(&p, rd->last, NULL, NULL, &err);

        if (rc == NGX_AGAIN) {
            break;
        }

        if (rc == NGX_ERROR) {
            ngx_log_error(NGX_LOG_ERR, rd->log, 0, "hris_redis: %V sent a "
                          "reply this client refuses: %s", &rd->conf->name,
                          err);
            ngx_http_hris_redis_fail(rd, NGX_HTTP_HRIS_REDIS_UNREACHABLE, 0,
                                     "reconnecting");
            return NGX_ERROR;
        }

        /* whole: built in a pool of its own, gone when its handler returns */
        pool = ngx_create_pool(1024, rd->log);
        p = rd->pos;

        if (pool == NULL
            || ngx_http_hris_resp_parse(&p, rd->last, pool, &reply, &err)
               != NGX_OK)
        {
            if (pool) {
                ngx_destroy_pool(pool);
            }
            ngx_http_hris_redis_fail(rd, NGX_HTTP_HRIS_REDIS_UNREACHABLE, 0,
                                     "out of memory");
            return NGX_ERROR;
        }

        rd->pos = p;

        ngx_http_hris_redis_dispatch(rd, &reply);
        ngx_destroy_pool(pool);

        /* a handler or a refused handshake may have closed the connection */
        if (rd->generation != generation) {
            return NGX_ERROR;
        }
    }

    if (rd->pos == rd->last) {
        rd->pos = rd->start;
        rd->last = rd->start;

        /* a large reply's buffer is not kept */
        if (rd->end - rd->start > NGX_HTTP_HRIS_REDIS_BUF) {
            big = ngx_alloc(NGX_HTTP_HRIS_REDIS_BUF, rd->log);
            if (big) {
                ngx_free(rd->start);
                rd->start = big;
                rd->pos = big;
                rd->last = big;
                rd->end = big + NGX_HTTP_HRIS_REDIS_BUF;
            }
        }
    }

    return NGX_OK;
}


static void
ngx_http_hris_redis_dispatch(ngx_http_hris_redis_t *rd,
    ngx_http_hris_redis_reply_t *reply)
{
    void                            *data;
    ngx_str_t                        head[2];
    ngx_queue_t                     *q;
    ngx_http_hris_redis_cmd_t       *cmd;
    ngx_http_hris_redis_handler_pt   handler;
    ngx_str_t                        tail;
    u_char                          *old;

    if (ngx_queue_empty(&rd->sent)) {
        /* e.g. "-ERR max number of clients reached" before closing */
        ngx_log_error(NGX_LOG_ERR, rd->log, 0, "hris_redis: %V sent a reply "
                      "to no command: %V", &rd->conf->name,
                      reply->type == NGX_HTTP_HRIS_REDIS_ERROR
                      ? &reply->str : &ngx_http_hris_redis_not_error);
        ngx_http_hris_redis_fail(rd, NGX_HTTP_HRIS_REDIS_UNREACHABLE, 0,
                                 "reconnecting");
        return;
    }

    q = ngx_queue_head(&rd->sent);
    ngx_queue_remove(q);
    cmd = ngx_queue_data(q, ngx_http_hris_redis_cmd_t, queue);

    /* the script is not in this Redis's cache (yet, or any more): send it */
    if (cmd->script && cmd->handler
        && reply->type == NGX_HTTP_HRIS_REDIS_ERROR
        && reply->str.len >= 8
        && ngx_strncmp(reply->str.data, "NOSCRIPT", 8) == 0)
    {
        old = cmd->buf.start;

        ngx_str_set(&head[0], "EVAL");
        head[1] = cmd->script->text;
        tail.data = old + cmd->tail;
        tail.len = cmd->buf.last - tail.data;

        cmd->script = NULL;

        if (ngx_http_hris_redis_encode(cmd, cmd->nargs, head, 2, 0, NULL,
                                       &tail)
            == NGX_OK)
        {
            ngx_free(old);
            ngx_http_hris_redis_enqueue(rd, cmd);
            return;
        }

        /* out of memory: the NOSCRIPT error goes to the caller */
    }

    handler = cmd->handler;
    data = cmd->data;

    if (cmd->cln) {
        cmd->cln->handler = NULL;
    }

    ngx_http_hris_redis_cmd_free(cmd);

    ngx_http_hris_metrics_redis(reply->type == NGX_HTTP_HRIS_REDIS_ERROR
                                ? NGX_HTTP_HRIS_REDIS_CMD_ERROR
                                : NGX_HTTP_HRIS_REDIS_CMD_OK);

    if (handler) {
        handler(NGX_HTTP_HRIS_REDIS_REPLY, reply, data);
    }
}


/* The oldest command on the wire sets the read timer. */

void
ngx_http_hris_redis_timer(ngx_http_hris_redis_t *rd)
{
    ngx_msec_int_t              left;
    ngx_connection_t           *c = rd->peer.connection;
    ngx_http_hris_redis_cmd_t  *cmd;

    if (c == NULL) {
        return;
    }

    if (ngx_queue_empty(&rd->sent)) {
        if (c->read->timer_set) {
            ngx_del_timer(c->read);
        }
        return;
    }

    cmd = ngx_queue_data(ngx_queue_head(&rd->sent), ngx_http_hris_redis_cmd_t,
                         queue);

    left = (ngx_msec_int_t) (cmd->deadline - ngx_current_msec);

    /*
     * A worker quitting gracefully waits for the replies that requests
     * wait for (at most hris_redis_timeout), not for its own (handshake,
     * worker-wide commands): nginx quits when only cancelable timers
     * are left.
     */
    c->read->cancelable = !ngx_http_hris_redis_awaited(rd);
    ngx_add_timer(c->read, left > 0 ? (ngx_msec_t) left : 1);
}


/* Is a command of a caller with a pool (a request) on its way? */

ngx_uint_t
ngx_http_hris_redis_awaited(ngx_http_hris_redis_t *rd)
{
    ngx_queue_t                *q, *queues[2];
    ngx_uint_t                  i;
    ngx_http_hris_redis_cmd_t  *cmd;

    queues[0] = &rd->sent;
    queues[1] = &rd->waiting;

    for (i = 0; i < 2; i++) {
        for (q = ngx_queue_head(queues[i]);
             q != ngx_queue_sentinel(queues[i]);
             q = ngx_queue_next(q))
        {
            cmd = ngx_queue_data(q, ngx_http_hris_redis_cmd_t, queue);
            if (cmd->cln) {
                return 1;
            }
        }
    }

    return 0;
}


/* -- commands ------------------------------------------------------------ */


ngx_http_hris_redis_cmd_t *
ngx_http_hris_redis_command(ngx_http_hris_redis_t *rd, ngx_pool_t *pool,
    ngx_uint_t argc, ngx_str_t *argv, ngx_http_hris_redis_handler_pt handler,
    void *data)
{
    ngx_http_hris_redis_cmd_t  *cmd;

    cmd = ngx_http_hris_redis_cmd_new(rd, pool, argc, argv, handler, data);
    if (cmd == NULL) {
        return NULL;
    }

    ngx_http_hris_redis_enqueue(rd, cmd);

    return cmd;
}


/*
 * EVALSHA sha1 nkeys keys... args... (argv holds the keys, then the
 * arguments); on NOSCRIPT the same command is sent again as EVAL with the
 * script's text, and the handler sees only that second reply.
 */

ngx_http_hris_redis_cmd_t *
ngx_http_hris_redis_eval(ngx_http_hris_redis_t *rd, ngx_pool_t *pool,
    ngx_http_hris_redis_script_t *script, ngx_uint_t nkeys, ngx_uint_t argc,
    ngx_str_t *argv, ngx_http_hris_redis_handler_pt handler, void *data)
{
    u_char                     *p;
    ngx_str_t                   head[3];
    ngx_http_hris_redis_cmd_t  *cmd;
    u_char                      n[NGX_INT_T_LEN];

    cmd = ngx_http_hris_redis_cmd_new(rd, pool, 0, NULL, handler, data);
    if (cmd == NULL) {
        return NULL;
    }

    ngx_str_set(&head[0], "EVALSHA");
    head[1].data = script->sha1;
    head[1].len = sizeof(script->sha1);
    head[2].data = n;
    head[2].len = ngx_sprintf(n, "%ui", nkeys) - n;

    cmd->nargs = 3 + argc;

    if (ngx_http_hris_redis_encode(cmd, cmd->nargs, head, 3, argc, argv, NULL)
        != NGX_OK)
    {
        ngx_http_hris_redis_cancel(cmd);
        ngx_http_hris_redis_cmd_free(cmd);
        return NULL;
    }

    /* where nkeys starts: what EVAL reuses after its own two arguments */
    p = ngx_strlchr(cmd->buf.start, cmd->buf.last, '\n') + 1;

    cmd->tail = p - cmd->buf.start + ngx_http_hris_resp_size(2, head);
    cmd->script = script;

    ngx_http_hris_redis_enqueue(rd, cmd);

    return cmd;
}


/* The handler will not be called; the reply, when it comes, is dropped. */

void
ngx_http_hris_redis_cancel(ngx_http_hris_redis_cmd_t *cmd)
{
    cmd->handler = NULL;
    cmd->data = NULL;

    if (cmd->cln) {
        cmd->cln->handler = NULL;
        cmd->cln = NULL;
    }
}


static void
ngx_http_hris_redis_cancel_cleanup(void *data)
{
    ngx_http_hris_redis_cmd_t  *cmd = data;

    cmd->cln = NULL;
    ngx_http_hris_redis_cancel(cmd);
}


ngx_http_hris_redis_cmd_t *
ngx_http_hris_redis_cmd_new(ngx_http_hris_redis_t *rd, ngx_pool_t *pool,
    ngx_uint_t argc, ngx_str_t *argv, ngx_http_hris_redis_handler_pt handler,
    void *data)
{
    ngx_http_hris_redis_cmd_t  *cmd;

    if (rd == NULL) {
        return NULL;
    }

    cmd = ngx_calloc(sizeof(ngx_http_hris_redis_cmd_t), rd->log);
    if (cmd == NULL) {
        return NULL;
    }

    cmd->handler = handler;
    cmd->data = data;

    if (argc
        && ngx_http_hris_redis_encode(cmd, argc, NULL, 0, argc, argv, NULL)
           != NGX_OK)
    {
        ngx_free(cmd);
        return NULL;
    }

    if (pool) {
        cmd->cln = ngx_pool_cleanup_add(pool, 0);
        if (cmd->cln == NULL) {
            ngx_http_hris_redis_cmd_free(cmd);
            return NULL;
        }

        cmd->cln->handler = ngx_http_hris_redis_cancel_cleanup;
        cmd->cln->data = cmd;
    }

    return cmd;
}


/*
 * *total, then head and argv as bulk strings, then tail as it is: the
 * arguments of an EVALSHA already encoded, when it is sent again as EVAL.
 */

static ngx_int_t
ngx_http_hris_redis_encode(ngx_http_hris_redis_cmd_t *cmd, ngx_uint_t total,
    ngx_str_t *head, ngx_uint_t nhead, ngx_uint_t argc, ngx_str_t *argv,
    ngx_str_t *tail)
{
    u_char  *p;
    size_t   len;

    len = sizeof("*\r\n") - 1 + NGX_INT_T_LEN
          + ngx_http_hris_resp_size(nhead, head)
          + ngx_http_hris_resp_size(argc, argv) + (tail ? tail->len : 0);

    p = ngx_alloc(len, ngx_cycle->log);
    if (p == NULL) {
        return NGX_ERROR;
    }

    cmd->buf.start = p;
    cmd->buf.pos = p;
    cmd->buf.temporary = 1;

    p = ngx_sprintf(p, "*%ui\r\n", total);
    p = ngx_http_hris_resp_write(p, nhead, head);
    p = ngx_http_hris_resp_write(p, argc, argv);

    if (tail) {
        p = ngx_cpymem(p, tail->data, tail->len);
    }

    cmd->buf.last = p;
    cmd->buf.end = p;

    return NGX_OK;
}


void
ngx_http_hris_redis_enqueue(ngx_http_hris_redis_t *rd,
    ngx_http_hris_redis_cmd_t *cmd)
{
    switch (rd->state) {

    case NGX_HTTP_HRIS_REDIS_READY:
        cmd->deadline = ngx_current_msec + rd->conf->timeout;
        ngx_queue_insert_tail(&rd->sent, &cmd->queue);

        /* everything queued in this turn of the event loop: one write */
        ngx_post_event(rd->peer.connection->write, &ngx_posted_events);
        break;

    case NGX_HTTP_HRIS_REDIS_CONNECTING:
    case NGX_HTTP_HRIS_REDIS_HANDSHAKE:
        ngx_queue_insert_tail(&rd->waiting, &cmd->queue);

        /* a request's command: a graceful quit waits for it (see timer()) */
        if (cmd->cln) {
            rd->peer.connection->write->cancelable = 0;
            rd->peer.connection->read->cancelable = 0;
        }
        break;

    default: /* DOWN: no waiting for the next attempt */
        cmd->status = NGX_HTTP_HRIS_REDIS_UNREACHABLE;
        ngx_queue_insert_tail(&rd->failed, &cmd->queue);
        ngx_post_event(&rd->deliver, &ngx_posted_next_events);
        break;
    }
}


void
ngx_http_hris_redis_cmd_free(ngx_http_hris_redis_cmd_t *cmd)
{
    if (cmd->buf.start) {
        ngx_free(cmd->buf.start);
    }

    ngx_free(cmd);
}

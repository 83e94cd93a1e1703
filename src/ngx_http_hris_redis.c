/*
 * A Redis client on nginx's event loop (see ngx_http_hris_redis.h).
 *
 * The connection is nginx's own (ngx_event_connect_peer, timers, posted
 * events); addresses are resolved when the configuration is read, as
 * nginx's upstreams are. RESP2 is encoded and parsed by
 * ngx_http_hris_resp.c (why not hiredis: see there).
 *
 * Commands move through three queues: "waiting" (queued while connecting
 * or authenticating), "sent" (on the wire or about to be, in order: each
 * reply goes to the head) and "failed" (handlers to call with a status,
 * from a posted event, never from inside ngx_http_hris_redis_command()).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include <openssl/evp.h>

#include "ngx_http_hris_redis.h"
#include "ngx_http_hris_redis_client.h"


static void ngx_http_hris_redis_connect(ngx_http_hris_redis_t *rd);
static void ngx_http_hris_redis_reconnect_handler(ngx_event_t *ev);
static void ngx_http_hris_redis_handshake_reply(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);
static void ngx_http_hris_redis_ready(ngx_http_hris_redis_t *rd);
static void ngx_http_hris_redis_deliver_handler(ngx_event_t *ev);


/* -- the connection ------------------------------------------------------ */


ngx_int_t
ngx_http_hris_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_hris_redis_conf_t *rcf)
{
    ngx_http_hris_redis_t  *rd;

    rd = ngx_pcalloc(cycle->pool, sizeof(ngx_http_hris_redis_t));
    if (rd == NULL) {
        return NGX_ERROR;
    }

    rd->conf = rcf;
    rd->log = cycle->log;
    rd->backoff = NGX_HTTP_HRIS_REDIS_BACKOFF_MIN;

    ngx_queue_init(&rd->waiting);
    ngx_queue_init(&rd->sent);
    ngx_queue_init(&rd->failed);

    rd->reconnect.handler = ngx_http_hris_redis_reconnect_handler;
    rd->reconnect.data = rd;
    rd->reconnect.log = rd->log;
    /* a pause between attempts must not hold up a graceful quit */
    rd->reconnect.cancelable = 1;

    rd->deliver.handler = ngx_http_hris_redis_deliver_handler;
    rd->deliver.data = rd;
    rd->deliver.log = rd->log;

    rd->start = ngx_alloc(NGX_HTTP_HRIS_REDIS_BUF, rd->log);
    if (rd->start == NULL) {
        return NGX_ERROR;
    }

    rd->pos = rd->start;
    rd->last = rd->start;
    rd->end = rd->start + NGX_HTTP_HRIS_REDIS_BUF;

    rcf->client = rd;

    ngx_http_hris_redis_connect(rd);

    return NGX_OK;
}


/* Worker exit: no handler is called; callers' pools go with the process. */

void
ngx_http_hris_redis_exit_process(ngx_http_hris_redis_conf_t *rcf)
{
    ngx_queue_t                *q, *queues[3];
    ngx_uint_t                  i;
    ngx_http_hris_redis_t      *rd = rcf->client;
    ngx_http_hris_redis_cmd_t  *cmd;

    if (rd == NULL) {
        return;
    }

    if (rd->peer.connection) {
        ngx_close_connection(rd->peer.connection);
        rd->peer.connection = NULL;
    }

    if (rd->reconnect.timer_set) {
        ngx_del_timer(&rd->reconnect);
    }

    if (rd->deliver.posted) {
        ngx_delete_posted_event(&rd->deliver);
    }

    queues[0] = &rd->waiting;
    queues[1] = &rd->sent;
    queues[2] = &rd->failed;

    for (i = 0; i < 3; i++) {
        while (!ngx_queue_empty(queues[i])) {
            q = ngx_queue_head(queues[i]);
            ngx_queue_remove(q);
            cmd = ngx_queue_data(q, ngx_http_hris_redis_cmd_t, queue);
            ngx_http_hris_redis_cancel(cmd);
            ngx_http_hris_redis_cmd_free(cmd);
        }
    }

    ngx_free(rd->start);
    rd->start = NULL;
    rcf->client = NULL;
}


void
ngx_http_hris_redis_on_connect(ngx_http_hris_redis_t *rd,
    void (*handler)(void *data), void *data)
{
    rd->on_connect = handler;
    rd->on_connect_data = data;
}


ngx_str_t *
ngx_http_hris_redis_name(ngx_http_hris_redis_t *rd)
{
    return &rd->conf->name;
}


static void
ngx_http_hris_redis_connect(ngx_http_hris_redis_t *rd)
{
    ngx_int_t                    rc;
    ngx_addr_t                  *addr;
    ngx_connection_t            *c;
    ngx_http_hris_redis_conf_t  *rcf = rd->conf;

    addr = &rcf->addrs[rd->addr++ % rcf->naddrs];

    ngx_memzero(&rd->peer, sizeof(ngx_peer_connection_t));

    rd->peer.sockaddr = addr->sockaddr;
    rd->peer.socklen = addr->socklen;
    rd->peer.name = &addr->name;
    rd->peer.get = ngx_event_get_peer;
    rd->peer.log = rd->log;
    rd->peer.log_error = NGX_ERROR_ERR;
    rd->peer.tries = 1;

    rd->state = NGX_HTTP_HRIS_REDIS_CONNECTING;
    rd->generation++;

    rc = ngx_event_connect_peer(&rd->peer);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        rd->peer.connection = NULL;
        ngx_http_hris_redis_fail(rd, NGX_HTTP_HRIS_REDIS_UNREACHABLE, 0,
                                 "could not connect");
        return;
    }

    c = rd->peer.connection;
    c->data = rd;
    c->read->handler = ngx_http_hris_redis_read_handler;
    c->write->handler = ngx_http_hris_redis_write_handler;

    if (rc == NGX_AGAIN) {
        /* as the read timer: a quit waits only for requests' commands */
        c->write->cancelable = !ngx_http_hris_redis_awaited(rd);
        ngx_add_timer(c->write, rcf->connect_timeout);
        return;
    }

    ngx_http_hris_redis_connected(rd);
}


static void
ngx_http_hris_redis_reconnect_handler(ngx_event_t *ev)
{
    ngx_http_hris_redis_t  *rd = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_http_hris_redis_connect(rd);
}


ngx_int_t
ngx_http_hris_redis_test_connect(ngx_connection_t *c)
{
    int        err;
    socklen_t  len;

    err = 0;
    len = sizeof(int);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len) == -1) {
        err = ngx_socket_errno;
    }

    return err;
}


void
ngx_http_hris_redis_connected(ngx_http_hris_redis_t *rd)
{
    ngx_str_t                    argv[3];
    ngx_uint_t                   n;
    ngx_msec_t                   deadline;
    ngx_connection_t            *c = rd->peer.connection;
    ngx_http_hris_redis_cmd_t   *cmd;
    ngx_http_hris_redis_conf_t  *rcf = rd->conf;
    u_char                       db[NGX_INT_T_LEN];

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    c->write->cancelable = 0;

    if (rd->peer.sockaddr->sa_family != AF_UNIX) {
        /* pipelined small commands must not wait for ACKs (Nagle) */
        (void) ngx_tcp_nodelay(c);
    }

    rd->state = NGX_HTTP_HRIS_REDIS_HANDSHAKE;
    rd->handshake = 0;
    deadline = ngx_current_msec + rcf->timeout;

    /*
     * AUTH and SELECT go first and their replies are awaited before any
     * queued command is sent: a command after a failed SELECT would run
     * in database 0. PING makes a Redis that wants a password say so.
     */
    if (rcf->password.len) {
        ngx_str_set(&argv[0], "AUTH");
        n = 1;
        if (rcf->user.len) {
            argv[n++] = rcf->user;
        }
        argv[n++] = rcf->password;

        rd->steps[rd->handshake++] = "AUTH";
        cmd = ngx_http_hris_redis_cmd_new(rd, NULL, n, argv,
                                          ngx_http_hris_redis_handshake_reply,
                                          rd);
        if (cmd == NULL) {
            goto failed;
        }
        cmd->deadline = deadline;
        ngx_queue_insert_tail(&rd->sent, &cmd->queue);
    }

    if (rcf->db) {
        ngx_str_set(&argv[0], "SELECT");
        argv[1].data = db;
        argv[1].len = ngx_sprintf(db, "%ui", rcf->db) - db;

        rd->steps[rd->handshake++] = "SELECT";
        cmd = ngx_http_hris_redis_cmd_new(rd, NULL, 2, argv,
                                          ngx_http_hris_redis_handshake_reply,
                                          rd);
        if (cmd == NULL) {
            goto failed;
        }
        cmd->deadline = deadline;
        ngx_queue_insert_tail(&rd->sent, &cmd->queue);
    }

    ngx_str_set(&argv[0], "PING");

    rd->steps[rd->handshake++] = "PING";
    cmd = ngx_http_hris_redis_cmd_new(rd, NULL, 1, argv,
                                      ngx_http_hris_redis_handshake_reply, rd);
    if (cmd == NULL) {
        goto failed;
    }
    cmd->deadline = deadline;
    ngx_queue_insert_tail(&rd->sent, &cmd->queue);

    if (ngx_http_hris_redis_flush(rd) != NGX_OK) {
        return;
    }

    ngx_http_hris_redis_timer(rd);

    return;

failed:

    ngx_http_hris_redis_fail(rd, NGX_HTTP_HRIS_REDIS_UNREACHABLE, 0,
                             "out of memory");
}


static void
ngx_http_hris_redis_handshake_reply(ngx_http_hris_redis_status_e status,
    ngx_http_hris_redis_reply_t *reply, void *data)
{
    ngx_http_hris_redis_t  *rd = data;

    ngx_uint_t   level;
    const char  *step;

    if (status != NGX_HTTP_HRIS_REDIS_REPLY) {
        return;                     /* the connection is failing already */
    }

    step = rd->steps[0];
    rd->steps[0] = rd->steps[1];
    rd->steps[1] = rd->steps[2];

    if (reply->type == NGX_HTTP_HRIS_REDIS_ERROR) {
        /* Redis's messages name no credential ("WRONGPASS invalid ...") */
        level = rd->failures ? NGX_LOG_INFO : NGX_LOG_ERR;

        if (reply->str.len >= 6
            && ngx_strncmp(reply->str.data, "NOAUTH", 6) == 0)
        {
            ngx_log_error(level, rd->log, 0, "hris_redis: %V wants a "
                          "password and hris_redis gives none "
                          "(redis://:PASSWORD@host): %V", &rd->conf->name,
                          &reply->str);

        } else if (step[0] == 'A') {
            ngx_log_error(level, rd->log, 0, "hris_redis: %V refused the "
                          "%s of hris_redis: %V", &rd->conf->name,
                          rd->conf->user.len ? "user and password"
                                             : "password", &reply->str);

        } else {
            ngx_log_error(level, rd->log, 0, "hris_redis: %V refused %s: %V",
                          &rd->conf->name, step, &reply->str);
        }

        ngx_http_hris_redis_fail(rd, NGX_HTTP_HRIS_REDIS_UNREACHABLE, 0,
                                 NULL);
        return;
    }

    if (--rd->handshake == 0) {
        ngx_http_hris_redis_ready(rd);
    }
}


static void
ngx_http_hris_redis_ready(ngx_http_hris_redis_t *rd)
{
    ngx_uint_t                  level;
    ngx_queue_t                *q;
    ngx_http_hris_redis_cmd_t  *cmd;

    level = rd->failures ? NGX_LOG_NOTICE : NGX_LOG_INFO;

    ngx_log_error(level, rd->log, 0,
                  "hris_redis: connected to %V%s", rd->peer.name,
                  rd->failures ? " again" : "");

    rd->state = NGX_HTTP_HRIS_REDIS_READY;
    rd->failures = 0;
    rd->backoff = NGX_HTTP_HRIS_REDIS_BACKOFF_MIN;

    while (!ngx_queue_empty(&rd->waiting)) {
        q = ngx_queue_head(&rd->waiting);
        ngx_queue_remove(q);
        cmd = ngx_queue_data(q, ngx_http_hris_redis_cmd_t, queue);
        ngx_http_hris_redis_enqueue(rd, cmd);
    }

    if (rd->on_connect) {
        rd->on_connect(rd->on_connect_data);
    }
}


/*
 * The connection is given up: every command on it or waiting for it
 * fails (handlers run from a posted event), a reconnect is scheduled.
 */

void
ngx_http_hris_redis_fail(ngx_http_hris_redis_t *rd,
    ngx_http_hris_redis_status_e status, ngx_err_t err, const char *why)
{
    ngx_uint_t                  level;
    ngx_msec_t                  delay;
    ngx_queue_t                *q;
    ngx_http_hris_redis_cmd_t  *cmd;

    if (rd->peer.connection) {
        ngx_close_connection(rd->peer.connection);
        rd->peer.connection = NULL;
    }

    rd->generation++;

    while (!ngx_queue_empty(&rd->sent)) {
        q = ngx_queue_head(&rd->sent);
        ngx_queue_remove(q);
        cmd = ngx_queue_data(q, ngx_http_hris_redis_cmd_t, queue);
        cmd->status = status;
        ngx_queue_insert_tail(&rd->failed, q);
    }

    while (!ngx_queue_empty(&rd->waiting)) {
        q = ngx_queue_head(&rd->waiting);
        ngx_queue_remove(q);
        cmd = ngx_queue_data(q, ngx_http_hris_redis_cmd_t, queue);
        cmd->status = NGX_HTTP_HRIS_REDIS_UNREACHABLE;
        ngx_queue_insert_tail(&rd->failed, q);
    }

    if (!ngx_queue_empty(&rd->failed)) {
        ngx_post_event(&rd->deliver, &ngx_posted_next_events);
    }

    rd->pos = rd->start;
    rd->last = rd->start;
    rd->state = NGX_HTTP_HRIS_REDIS_DOWN;

    /* 100 ms doubling to 5 s, each between half and all of it */
    delay = rd->backoff / 2 + (ngx_msec_t) ngx_random() % (rd->backoff / 2 + 1);
    rd->backoff = ngx_min(rd->backoff * 2, NGX_HTTP_HRIS_REDIS_BACKOFF_MAX);

    if (why) {
        level = rd->failures ? NGX_LOG_INFO : NGX_LOG_ERR;
        ngx_log_error(level, rd->log, err,
                      "hris_redis: %V: %s; retrying in %M ms",
                      &rd->conf->name, why, delay);
    }

    rd->failures++;
    ngx_http_hris_metrics_state_error(NGX_HTTP_HRIS_STORE_REDIS);

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_add_timer(&rd->reconnect, delay);
}


static void
ngx_http_hris_redis_deliver_handler(ngx_event_t *ev)
{
    void                            *data;
    ngx_queue_t                     *q, now;
    ngx_http_hris_redis_t           *rd = ev->data;
    ngx_http_hris_redis_cmd_t       *cmd;
    ngx_http_hris_redis_status_e     status;
    ngx_http_hris_redis_handler_pt   handler;

    /*
     * Only those failed so far: a handler that sends again at once while
     * Redis is down fails in the next turn of the event loop (the event
     * is posted there), not in a loop inside this one.
     */
    ngx_queue_init(&now);

    if (!ngx_queue_empty(&rd->failed)) {
        ngx_queue_add(&now, &rd->failed);
        ngx_queue_init(&rd->failed);
    }

    while (!ngx_queue_empty(&now)) {
        q = ngx_queue_head(&now);
        ngx_queue_remove(q);
        cmd = ngx_queue_data(q, ngx_http_hris_redis_cmd_t, queue);

        handler = cmd->handler;
        data = cmd->data;
        status = cmd->status;

        if (cmd->cln) {
            cmd->cln->handler = NULL;
        }

        ngx_http_hris_redis_cmd_free(cmd);

        ngx_http_hris_metrics_redis(NGX_HTTP_HRIS_REDIS_CMD_UNREACHABLE);

        if (handler) {
            handler(status, NULL, data);
        }
    }
}

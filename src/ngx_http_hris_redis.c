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
#include "ngx_http_hris_metrics.h"


#define NGX_HTTP_HRIS_REDIS_PORT         6379
#define NGX_HTTP_HRIS_REDIS_BUF          4096
#define NGX_HTTP_HRIS_REDIS_BACKOFF_MIN  100
#define NGX_HTTP_HRIS_REDIS_BACKOFF_MAX  5000


typedef enum {
    NGX_HTTP_HRIS_REDIS_DOWN = 0,     /* no connection: a reconnect is due */
    NGX_HTTP_HRIS_REDIS_CONNECTING,
    NGX_HTTP_HRIS_REDIS_HANDSHAKE,    /* AUTH, SELECT, PING on the wire */
    NGX_HTTP_HRIS_REDIS_READY
} ngx_http_hris_redis_state_e;


struct ngx_http_hris_redis_cmd_s {
    ngx_queue_t                      queue;
    ngx_http_hris_redis_handler_pt   handler;   /* NULL: cancelled */
    void                            *data;
    ngx_pool_cleanup_t              *cln;       /* in the caller's pool */
    ngx_http_hris_redis_script_t    *script;    /* EVALSHA: EVAL on NOSCRIPT */
    size_t                           tail;      /* EVALSHA: after the sha */
    ngx_uint_t                       nargs;     /* EVALSHA: *N */
    ngx_http_hris_redis_status_e     status;    /* when it failed */
    ngx_msec_t                       deadline;
    ngx_buf_t                        buf;       /* the command, in RESP */
    ngx_chain_t                      cl;
};


struct ngx_http_hris_redis_s {
    ngx_http_hris_redis_conf_t      *conf;
    ngx_log_t                       *log;
    ngx_peer_connection_t            peer;
    ngx_http_hris_redis_state_e      state;
    ngx_uint_t                       generation; /* +1 per connection */
    ngx_uint_t                       addr;       /* next address to try */
    ngx_uint_t                       failures;   /* in a row */
    ngx_msec_t                       backoff;

    ngx_queue_t                      waiting;
    ngx_queue_t                      sent;
    ngx_queue_t                      failed;
    ngx_uint_t                       handshake;  /* replies still due */
    const char                      *steps[3];   /* their commands */

    ngx_event_t                      reconnect;
    ngx_event_t                      deliver;

    u_char                          *start;      /* read buffer */
    u_char                          *pos;
    u_char                          *last;
    u_char                          *end;

    void                           (*on_connect)(void *data);
    void                            *on_connect_data;
};


static ngx_str_t  ngx_http_hris_redis_not_error = ngx_string("(not an error)");


static char *ngx_http_hris_redis_tcp_url(ngx_conf_t *cf,
    ngx_http_hris_redis_conf_t *rcf, ngx_str_t *url, ngx_str_t *hostport);
static char *ngx_http_hris_redis_unix_url(ngx_conf_t *cf,
    ngx_http_hris_redis_conf_t *rcf, ngx_str_t *url, ngx_str_t *path);
static ngx_int_t ngx_http_hris_redis_unescape(ngx_pool_t *pool, u_char *p,
    u_char *last, ngx_str_t *out);

static void ngx_http_hris_redis_connect(ngx_http_hris_redis_t *rd);
static void ngx_http_hris_redis_reconnect_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_hris_redis_test_connect(ngx_connection_t *c);
static void ngx_http_hris_redis_connected(ngx_http_hris_redis_t *rd);
static void ngx_http_hris_redis_handshake_reply(
    ngx_http_hris_redis_status_e status, ngx_http_hris_redis_reply_t *reply,
    void *data);
static void ngx_http_hris_redis_ready(ngx_http_hris_redis_t *rd);
static void ngx_http_hris_redis_fail(ngx_http_hris_redis_t *rd,
    ngx_http_hris_redis_status_e status, ngx_err_t err, const char *why);
static void ngx_http_hris_redis_deliver_handler(ngx_event_t *ev);
static void ngx_http_hris_redis_write_handler(ngx_event_t *wev);
static void ngx_http_hris_redis_read_handler(ngx_event_t *rev);
static ngx_int_t ngx_http_hris_redis_flush(ngx_http_hris_redis_t *rd);
static ngx_int_t ngx_http_hris_redis_read(ngx_http_hris_redis_t *rd);
static ngx_int_t ngx_http_hris_redis_replies(ngx_http_hris_redis_t *rd);
static void ngx_http_hris_redis_dispatch(ngx_http_hris_redis_t *rd,
    ngx_http_hris_redis_reply_t *reply);
static void ngx_http_hris_redis_timer(ngx_http_hris_redis_t *rd);
static ngx_uint_t ngx_http_hris_redis_awaited(ngx_http_hris_redis_t *rd);
static ngx_http_hris_redis_cmd_t *ngx_http_hris_redis_cmd_new(
    ngx_http_hris_redis_t *rd, ngx_pool_t *pool, ngx_uint_t argc,
    ngx_str_t *argv, ngx_http_hris_redis_handler_pt handler, void *data);
static ngx_int_t ngx_http_hris_redis_encode(ngx_http_hris_redis_cmd_t *cmd,
    ngx_uint_t total, ngx_str_t *head, ngx_uint_t nhead, ngx_uint_t argc,
    ngx_str_t *argv, ngx_str_t *tail);
static void ngx_http_hris_redis_enqueue(ngx_http_hris_redis_t *rd,
    ngx_http_hris_redis_cmd_t *cmd);
static void ngx_http_hris_redis_cmd_free(ngx_http_hris_redis_cmd_t *cmd);
static void ngx_http_hris_redis_cancel_cleanup(void *data);


/* -- configuration ------------------------------------------------------- */


/*
 * hris_redis redis://[user:password@]host[:port][/db]
 * hris_redis unix:/path/to/socket[?db=N&user=U&password=P]
 *
 * No message below quotes the whole URL: it may hold a password.
 */

char *
ngx_http_hris_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char                        *rv;
    ngx_str_t                   *value, url, rest;
    ngx_http_hris_redis_conf_t  *rcf, **slot;

    slot = (ngx_http_hris_redis_conf_t **) ((char *) conf + cmd->offset);
    if (*slot != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;
    url = value[1];

    rcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_hris_redis_conf_t));
    if (rcf == NULL) {
        return NGX_CONF_ERROR;
    }

    if (url.len > 8 && ngx_strncasecmp(url.data, (u_char *) "redis://", 8)
                       == 0)
    {
        rest.data = url.data + 8;
        rest.len = url.len - 8;
        rv = ngx_http_hris_redis_tcp_url(cf, rcf, &url, &rest);

    } else if (url.len > 5
               && ngx_strncasecmp(url.data, (u_char *) "unix:", 5) == 0)
    {
        rest.data = url.data + 5;
        rest.len = url.len - 5;
        rv = ngx_http_hris_redis_unix_url(cf, rcf, &url, &rest);

    } else if (url.len >= 9
               && ngx_strncasecmp(url.data, (u_char *) "rediss://", 9) == 0)
    {
        rv = "does not support TLS (rediss://) yet: use redis:// on a "
             "trusted network, or unix:/path/to/socket";

    } else {
        rv = "must be redis://[user:password@]host[:port][/db] or "
             "unix:/path/to/socket[?db=N&user=U&password=P]";
    }

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    *slot = rcf;

    return NGX_CONF_OK;
}


static char *
ngx_http_hris_redis_tcp_url(ngx_conf_t *cf, ngx_http_hris_redis_conf_t *rcf,
    ngx_str_t *url, ngx_str_t *rest)
{
    u_char     *p, *last, *at, *colon, *slash;
    ngx_int_t   db;
    ngx_url_t   u;

    p = rest->data;
    last = p + rest->len;

    if (ngx_strlchr(p, last, '?') || ngx_strlchr(p, last, '#')) {
        return "takes no query in a redis:// URL: the database goes in "
               "the path (redis://host:6379/2)";
    }

    slash = ngx_strlchr(p, last, '/');
    if (slash == NULL) {
        slash = last;
    }

    /* the password may contain "@" when escaped as %40: the last one ends it */
    at = NULL;
    for (colon = p; colon < slash; colon++) {
        if (*colon == '@') {
            at = colon;
        }
    }

    if (at) {
        colon = ngx_strlchr(p, at, ':');

        if (colon == NULL) {
            return "takes a password as redis://:PASSWORD@host or "
                   "redis://USER:PASSWORD@host";
        }

        if (colon + 1 == at) {
            return "has an empty password: leave out \"user:password@\" "
                   "when Redis needs none";
        }

        if (ngx_http_hris_redis_unescape(cf->pool, p, colon, &rcf->user)
            != NGX_OK
            || ngx_http_hris_redis_unescape(cf->pool, colon + 1, at,
                                            &rcf->password)
               != NGX_OK)
        {
            return "has a bad %-escape in its user or password";
        }

        p = at + 1;
    }

    if (p == slash) {
        return "has no host: redis://host[:port][/db]";
    }

    if (slash + 1 < last) {
        db = ngx_atoi(slash + 1, last - slash - 1);
        if (db == NGX_ERROR || db > 0x7fffffff) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: \"hris_redis\" "
                               "database \"%*s\" is not a number: the path "
                               "of a redis:// URL is the database (0, 1, ...)",
                               (size_t) ngx_min(last - slash - 1, 32),
                               slash + 1);
            return NGX_CONF_ERROR;
        }
        rcf->db = db;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url.data = p;
    u.url.len = slash - p;
    u.default_port = NGX_HTTP_HRIS_REDIS_PORT;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: \"hris_redis\": %s "
                           "in \"%V\"", u.err ? u.err : "host not found",
                           &u.url);
        return NGX_CONF_ERROR;
    }

    rcf->name = u.url;
    rcf->addrs = u.addrs;
    rcf->naddrs = u.naddrs;

    return NGX_CONF_OK;
}


static char *
ngx_http_hris_redis_unix_url(ngx_conf_t *cf, ngx_http_hris_redis_conf_t *rcf,
    ngx_str_t *url, ngx_str_t *rest)
{
    u_char     *p, *last, *q, *amp, *eq;
    ngx_int_t   db;
    ngx_str_t   name, value;
    ngx_url_t   u;

    p = rest->data;
    last = p + rest->len;

    q = ngx_strlchr(p, last, '?');
    if (q == NULL) {
        q = last;
    }

    if (p == q || *p != '/' || (q - p > 1 && p[1] == '/')) {
        return "takes a socket's absolute path: unix:/path/to/socket";
    }

    /* db=N, user=U, password=P */
    for (amp = q; amp < last; /* void */) {
        name.data = amp + 1;
        amp = ngx_strlchr(name.data, last, '&');
        if (amp == NULL) {
            amp = last;
        }

        eq = ngx_strlchr(name.data, amp, '=');
        if (eq == NULL) {
            eq = amp;
        }
        name.len = eq - name.data;

        if (ngx_http_hris_redis_unescape(cf->pool, eq < amp ? eq + 1 : amp,
                                         amp, &value)
            != NGX_OK)
        {
            return "has a bad %-escape in its query";
        }

        if (name.len == 2 && ngx_strncmp(name.data, "db", 2) == 0) {
            db = ngx_atoi(value.data, value.len);
            if (db == NGX_ERROR || db > 0x7fffffff) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: "
                                   "\"hris_redis\" database \"%*s\" is not "
                                   "a number (0, 1, ...)",
                                   ngx_min(value.len, 32), value.data);
                return NGX_CONF_ERROR;
            }
            rcf->db = db;

        } else if (name.len == 4 && ngx_strncmp(name.data, "user", 4) == 0) {
            rcf->user = value;

        } else if (name.len == 8
                   && ngx_strncmp(name.data, "password", 8) == 0)
        {
            rcf->password = value;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: \"hris_redis\" "
                               "unix: URL has an unknown parameter \"%*s\": "
                               "it takes db, user and password",
                               ngx_min(name.len, 32), name.data);
            return NGX_CONF_ERROR;
        }
    }

    if (rcf->user.len && rcf->password.len == 0) {
        return "names a user without a password";
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url.data = url->data;
    u.url.len = q - url->data;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: \"hris_redis\": %s "
                           "in \"%V\"", u.err ? u.err : "no address",
                           &u.url);
        return NGX_CONF_ERROR;
    }

    rcf->name = u.url;
    rcf->addrs = u.addrs;
    rcf->naddrs = u.naddrs;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_hris_redis_unescape(ngx_pool_t *pool, u_char *p, u_char *last,
    ngx_str_t *out)
{
    u_char  *dst, *src;

    for (src = p; src < last; src++) {
        if (*src == '%'
            && (last - src < 3 || !isxdigit(src[1]) || !isxdigit(src[2])))
        {
            return NGX_ERROR;
        }
    }

    out->data = ngx_pnalloc(pool, last - p + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    src = p;
    dst = out->data;
    ngx_unescape_uri(&dst, &src, last - p, 0);
    out->len = dst - out->data;
    *dst = '\0';

    return NGX_OK;
}


/*
 * After the http block: nothing is contacted here. "nginx -t" and a
 * reload must not wait on a store that may be down (CONTRACT.md §9:
 * the gateway starts without it), so -t says when it will be checked.
 */

ngx_int_t
ngx_http_hris_redis_check(ngx_conf_t *cf, ngx_http_hris_redis_conf_t *rcf)
{
    if (rcf->timeout == 0 || rcf->connect_timeout == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: \"hris_redis_timeout\""
                           " and \"hris_redis_connect_timeout\" must be more "
                           "than 0");
        return NGX_ERROR;
    }

    if (ngx_test_config) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0, "hris: \"hris_redis\" %V is "
                           "not contacted by \"nginx -t\": workers connect at "
                           "run time and keep retrying; until it answers, "
                           "what needs the store answers 503", &rcf->name);
    }

    return NGX_OK;
}


void
ngx_http_hris_redis_script_init(ngx_http_hris_redis_script_t *script,
    char *text)
{
    unsigned int  len;
    u_char        md[EVP_MAX_MD_SIZE];

    script->text.data = (u_char *) text;
    script->text.len = ngx_strlen(text);

    EVP_Digest(script->text.data, script->text.len, md, &len, EVP_sha1(),
               NULL);
    ngx_hex_dump(script->sha1, md, 20);
}


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


static ngx_int_t
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


static void
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

static void
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


static void
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


static void
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

static ngx_int_t
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

static void
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

static ngx_uint_t
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


static ngx_http_hris_redis_cmd_t *
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


static void
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


static void
ngx_http_hris_redis_cmd_free(ngx_http_hris_redis_cmd_t *cmd)
{
    if (cmd->buf.start) {
        ngx_free(cmd->buf.start);
    }

    ngx_free(cmd);
}

/*
 * Upstream calls through libcurl's multi-socket API on nginx's event loop.
 *
 * One CURLM per worker, created in init_process. curl tells us which
 * sockets to watch (socket callback) and when to wake it (timer callback);
 * we watch them with real nginx connection slots, level-triggered, because
 * curl does not promise to drain a socket per call. Finished transfers are
 * collected with curl_multi_info_read() after curl_multi_socket_action()
 * has returned, never inside a curl callback, and only there do calls
 * complete, retry or start new transfers.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hris.h"


/* one of curl's sockets, watched by an nginx connection slot */
typedef struct {
    ngx_connection_t  *c;
    ino_t              ino;          /* which socket: fd numbers are reused */
} ngx_http_hris_sock_t;


typedef struct {
    CURLM             *multi;
    ngx_event_t        timer;
    ngx_connection_t   timer_conn;   /* fd -1: only for debug ngx_event_ident */
    ngx_log_t         *log;
    ngx_uint_t         active;       /* transfers in the multi handle */

    /*
     * Curl's sockets, by fd. curl's own per-socket pointer
     * (curl_multi_assign) is not used: curl may hand it back after the
     * socket was closed, when the slot may serve another connection.
     */
    ngx_http_hris_sock_t  *socks;
    ngx_uint_t             nsocks;

    /* calls whose socket could not be watched, finished by drain() */
    ngx_queue_t        failed;

    /* counts the times curl is driven: a new count starts a new turn */
    ngx_uint_t         turn;
} ngx_http_hris_curl_t;


/*
 * The bytes of an answer taken in one turn of the event loop. curl reads
 * up to 100 times its buffer per socket event while the socket has data,
 * and each piece is copied into the answer: megabytes in one stretch of
 * the worker. Beyond this, the transfer is paused to the loop's next turn
 * (bench/README.md, "Huge answers: stall and memory").
 */
#define NGX_HTTP_HRIS_TURN_BYTES  (256 * 1024)

/* curl's receive buffer (see ngx_http_hris_call_setup()) */
#define NGX_HTTP_HRIS_CURL_BUFFER  (128 * 1024L)


static int ngx_http_hris_socket_cb(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp);
static int ngx_http_hris_timer_cb(CURLM *multi, long ms, void *userp);
static void ngx_http_hris_timer_handler(ngx_event_t *ev);
static void ngx_http_hris_io_handler(ngx_event_t *ev);
static ngx_http_hris_sock_t *ngx_http_hris_sock(ngx_http_hris_curl_t *hc,
    curl_socket_t s);
static ngx_uint_t ngx_http_hris_sock_same(ngx_http_hris_sock_t *sk);
static ngx_http_hris_sock_t *ngx_http_hris_watch(ngx_http_hris_curl_t *hc,
    curl_socket_t s);
static ngx_int_t ngx_http_hris_watch_events(ngx_connection_t *c, int what);
static void ngx_http_hris_watch_failed(ngx_http_hris_curl_t *hc, CURL *easy,
    curl_socket_t s);
static int ngx_http_hris_close_cb(void *clientp, curl_socket_t s);
static void ngx_http_hris_release_connection(ngx_http_hris_sock_t *sk);
static void ngx_http_hris_drain(void);
static void ngx_http_hris_call_finished(ngx_http_hris_call_t *call,
    CURLcode cc);
static ngx_int_t ngx_http_hris_call_should_retry(ngx_http_hris_call_t *call,
    ngx_msec_t *delay);
static void ngx_http_hris_call_complete(ngx_http_hris_call_t *call);
static void ngx_http_hris_retry_handler(ngx_event_t *ev);
static void ngx_http_hris_resume_handler(ngx_event_t *ev);
static void ngx_http_hris_call_unpost(ngx_http_hris_call_t *call);
static ngx_int_t ngx_http_hris_call_add(ngx_http_hris_call_t *call);
static ngx_int_t ngx_http_hris_call_setup(ngx_http_hris_call_t *call);
static void ngx_http_hris_call_cleanup(void *data);
static size_t ngx_http_hris_write_cb(char *ptr, size_t size, size_t nmemb,
    void *userdata);
static size_t ngx_http_hris_header_cb(char *ptr, size_t size, size_t nmemb,
    void *userdata);
static void ngx_http_hris_call_reset(ngx_http_hris_call_t *call);
static ngx_uint_t ngx_http_hris_method_idempotent(ngx_str_t *method);
static time_t ngx_http_hris_retry_after(u_char *p, u_char *end);
static ngx_uint_t ngx_http_hris_call_sent(ngx_http_hris_call_t *call,
    CURLcode cc);
static void ngx_http_hris_call_removed(void);
static uint64_t ngx_http_hris_call_time(ngx_http_hris_call_t *call);


/* per worker: created in init_process, destroyed in exit_process */
static ngx_http_hris_curl_t  ngx_http_hris_curl;


ngx_int_t
ngx_http_hris_upstream_init_process(ngx_cycle_t *cycle)
{
    curl_version_info_data  *vi;
    ngx_http_hris_curl_t    *hc = &ngx_http_hris_curl;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "hris: curl_global_init() failed");
        return NGX_ERROR;
    }

    /* a synchronous resolver would block the worker on every lookup */
    vi = curl_version_info(CURLVERSION_NOW);
    if (!(vi->features & CURL_VERSION_ASYNCHDNS)) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "hris: libcurl %s lacks asynchronous DNS", vi->version);
        return NGX_ERROR;
    }

    /* CURLOPT_QUICK_EXIT (see ngx_http_hris_call_setup()) came in 7.87 */
    if (vi->version_num < 0x075700) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "hris: libcurl %s is older than 7.87.0: a call that "
                      "ends while its provider's name is being resolved "
                      "blocks the worker until the lookup ends", vi->version);
    }

    hc->log = cycle->log;
    hc->timer_conn.fd = (ngx_socket_t) -1;
    hc->timer.data = &hc->timer_conn;
    hc->timer.handler = ngx_http_hris_timer_handler;
    hc->timer.log = cycle->log;
    /*
     * curl keeps timers for idle connections: they must not hold up a
     * graceful quit; while transfers run, the timer is made non-cancelable
     * (see ngx_http_hris_call_add()), as nginx's own upstream timers are
     */
    hc->timer.cancelable = 1;

    ngx_queue_init(&hc->failed);

    hc->multi = curl_multi_init();
    if (hc->multi == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "hris: curl_multi_init() failed");
        return NGX_ERROR;
    }

    curl_multi_setopt(hc->multi, CURLMOPT_SOCKETFUNCTION,
                      ngx_http_hris_socket_cb);
    curl_multi_setopt(hc->multi, CURLMOPT_SOCKETDATA, hc);
    curl_multi_setopt(hc->multi, CURLMOPT_TIMERFUNCTION,
                      ngx_http_hris_timer_cb);
    curl_multi_setopt(hc->multi, CURLMOPT_TIMERDATA, hc);

    /*
     * curl's default cache holds four connections per transfer in flight,
     * so it shrinks as transfers finish and closes idle connections a
     * provider would have kept: new TLS handshakes every few dozen calls
     */
    curl_multi_setopt(hc->multi, CURLMOPT_MAXCONNECTS, 64L);

    return NGX_OK;
}


void
ngx_http_hris_upstream_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_hris_curl_t  *hc = &ngx_http_hris_curl;

    if (hc->multi == NULL) {
        return;
    }

    /*
     * Runs before nginx scans for leaked connections; the socket callback
     * still releases the slots of curl's cached connections from here.
     */
    curl_multi_cleanup(hc->multi);
    hc->multi = NULL;

    if (hc->timer.timer_set) {
        ngx_del_timer(&hc->timer);
    }

    if (hc->socks) {
        ngx_free(hc->socks);
        hc->socks = NULL;
        hc->nsocks = 0;
    }

    curl_global_cleanup();
}


/*
 * curl says which of its sockets to watch. This never returns -1: that
 * would abort every transfer of the worker. A socket that cannot be
 * watched fails its own transfer only (see drain()).
 */

static int
ngx_http_hris_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp,
    void *socketp)
{
    ngx_http_hris_curl_t  *hc = userp;
    ngx_http_hris_sock_t  *sk;

    sk = ngx_http_hris_sock(hc, s);

    /*
     * curl 7.88 closes the socket of a connect attempt without a word
     * (cf-socket.c, "we did never publish it"); the fd may be another
     * socket now: the old one is forgotten, and the new one watched
     */
    if (sk && (what == CURL_POLL_REMOVE || !ngx_http_hris_sock_same(sk))) {
        ngx_http_hris_release_connection(sk);
        sk = NULL;
    }

    if (what == CURL_POLL_REMOVE) {
        return 0;
    }

    if (sk == NULL) {
        sk = ngx_http_hris_watch(hc, s);
        if (sk == NULL) {
            ngx_http_hris_watch_failed(hc, easy, s);
            return 0;
        }
    }

    if (ngx_http_hris_watch_events(sk->c, what) != NGX_OK) {
        ngx_http_hris_release_connection(sk);
        ngx_http_hris_watch_failed(hc, easy, s);
    }

    return 0;
}


static ngx_http_hris_sock_t *
ngx_http_hris_sock(ngx_http_hris_curl_t *hc, curl_socket_t s)
{
    if (s < 0 || (ngx_uint_t) s >= hc->nsocks || hc->socks[s].c == NULL) {
        return NULL;
    }

    return &hc->socks[s];
}


/* Whether the fd still is the socket that was watched. */

static ngx_uint_t
ngx_http_hris_sock_same(ngx_http_hris_sock_t *sk)
{
    ngx_file_info_t  fi;

    return ngx_fd_info(sk->c->fd, &fi) != NGX_FILE_ERROR
           && fi.st_ino == sk->ino;
}


/* A connection slot for one of curl's sockets, in the fd map. */

static ngx_http_hris_sock_t *
ngx_http_hris_watch(ngx_http_hris_curl_t *hc, curl_socket_t s)
{
    size_t                 size;
    ngx_uint_t             n;
    ngx_file_info_t        fi;
    ngx_connection_t      *c;
    ngx_http_hris_sock_t  *socks;

    if (s < 0 || ngx_fd_info(s, &fi) == NGX_FILE_ERROR) {
        return NULL;
    }

    if ((ngx_uint_t) s >= hc->nsocks) {
        n = ngx_max(ngx_max(hc->nsocks * 2, (ngx_uint_t) s + 1), 256);
        size = n * sizeof(ngx_http_hris_sock_t);

        socks = ngx_alloc(size, hc->log);
        if (socks == NULL) {
            return NULL;
        }

        ngx_memzero(socks, size);

        if (hc->socks) {
            ngx_memcpy(socks, hc->socks,
                       hc->nsocks * sizeof(ngx_http_hris_sock_t));
            ngx_free(hc->socks);
        }

        hc->socks = socks;
        hc->nsocks = n;
    }

    c = ngx_get_connection(s, hc->log);
    if (c == NULL) {
        return NULL;
    }

    c->data = hc;
    c->read->handler = ngx_http_hris_io_handler;
    c->read->log = hc->log;
    c->write->handler = ngx_http_hris_io_handler;
    c->write->log = hc->log;

    hc->socks[s].c = c;
    hc->socks[s].ino = fi.st_ino;

    return &hc->socks[s];
}


/* level-triggered (flags 0): curl may leave data in the socket */

static ngx_int_t
ngx_http_hris_watch_events(ngx_connection_t *c, int what)
{
    if ((what & CURL_POLL_IN) && !c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (!(what & CURL_POLL_IN) && c->read->active) {
        if (ngx_del_event(c->read, NGX_READ_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if ((what & CURL_POLL_OUT) && !c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (!(what & CURL_POLL_OUT) && c->write->active) {
        if (ngx_del_event(c->write, NGX_WRITE_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The transfer of a socket that cannot be watched (no free connection
 * slot, an epoll failure) is failed once curl has returned: no curl
 * function may be called from its callback.
 */

static void
ngx_http_hris_watch_failed(ngx_http_hris_curl_t *hc, CURL *easy,
    curl_socket_t s)
{
    ngx_http_hris_call_t  *call;

    call = NULL;

    /* curl also has sockets for transfers of its own */
    if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &call)
        != CURLE_OK
        || call == NULL)
    {
        ngx_log_error(NGX_LOG_ERR, hc->log, 0,
                      "hris: cannot watch curl's socket %d", (int) s);
        return;
    }

    if (call->failed) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, call->log, 0,
                  "hris: cannot watch the connection to \"%V\", the call "
                  "fails", ngx_http_hris_call_host(call));

    call->failed = 1;
    ngx_queue_insert_tail(&hc->failed, &call->failed_link);
}


/*
 * curl closes one of its sockets. It says CURL_POLL_REMOVE first when it
 * knows the socket is watched, but not always (see socket_cb()): a socket
 * still watched stops being watched here, while its fd is still its own.
 */

static int
ngx_http_hris_close_cb(void *clientp, curl_socket_t s)
{
    ngx_http_hris_sock_t  *sk;

    sk = ngx_http_hris_sock(clientp, s);

    if (sk) {
        ngx_http_hris_release_connection(sk);
    }

    return (ngx_close_socket(s) == -1) ? 1 : 0;
}


/* ngx_close_connection() without close(): the socket is curl's */

static void
ngx_http_hris_release_connection(ngx_http_hris_sock_t *sk)
{
    ngx_connection_t  *c = sk->c;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (c->read->active || c->write->active) {
        /*
         * the socket is still open (REMOVE, the close callback): a real
         * EPOLL_CTL_DEL; one closed behind our back has left epoll with
         * its close, and its fd may be another socket's now
         */
        ngx_del_conn(c, ngx_http_hris_sock_same(sk) ? 0 : NGX_CLOSE_EVENT);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    c->read->closed = 1;
    c->write->closed = 1;

    ngx_free_connection(c);

    /* late events for this slot are dropped as stale */
    c->fd = (ngx_socket_t) -1;

    sk->c = NULL;
}


static int
ngx_http_hris_timer_cb(CURLM *multi, long ms, void *userp)
{
    ngx_http_hris_curl_t  *hc = userp;

    /* delete first: ngx_add_timer() ignores changes under 300 ms */
    if (hc->timer.timer_set) {
        ngx_del_timer(&hc->timer);
    }

    /* 0 fires on the next loop turn: no recursion into curl */
    if (ms >= 0) {
        ngx_add_timer(&hc->timer, (ngx_msec_t) ms);
    }

    return 0;
}


static void
ngx_http_hris_timer_handler(ngx_event_t *ev)
{
    int  running;

    if (ngx_http_hris_curl.multi == NULL) {
        return;
    }

    ngx_http_hris_curl.turn++;
    curl_multi_socket_action(ngx_http_hris_curl.multi, CURL_SOCKET_TIMEOUT, 0,
                             &running);
    ngx_http_hris_drain();
}


static void
ngx_http_hris_io_handler(ngx_event_t *ev)
{
    int                running, mask;
    ngx_socket_t       fd;
    ngx_connection_t  *c = ev->data;

    /* c may be released inside socket_action: keep the fd */
    fd = c->fd;
    mask = ev->write ? CURL_CSELECT_OUT : CURL_CSELECT_IN;

    ngx_http_hris_curl.turn++;
    curl_multi_socket_action(ngx_http_hris_curl.multi, fd, mask, &running);
    ngx_http_hris_drain();
}


static void
ngx_http_hris_drain(void)
{
    int                    left;
    CURL                  *easy;
    CURLcode               cc;
    CURLMsg               *msg;
    ngx_queue_t           *q;
    ngx_http_hris_call_t  *call;

    /* first the calls whose socket could not be watched: they fail */
    while (!ngx_queue_empty(&ngx_http_hris_curl.failed)) {
        q = ngx_queue_head(&ngx_http_hris_curl.failed);
        ngx_queue_remove(q);
        ngx_queue_init(q);

        call = ngx_queue_data(q, ngx_http_hris_call_t, failed_link);

        if (call->in_multi) {
            curl_multi_remove_handle(ngx_http_hris_curl.multi, call->easy);
            call->in_multi = 0;
            ngx_http_hris_call_removed();
        }

        ngx_http_hris_call_finished(call, CURLE_ABORTED_BY_CALLBACK);
    }

    while ((msg = curl_multi_info_read(ngx_http_hris_curl.multi, &left))) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        /* msg is invalid once the handle is removed */
        easy = msg->easy_handle;
        cc = msg->data.result;

        call = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &call);

        curl_multi_remove_handle(ngx_http_hris_curl.multi, easy);

        if (call == NULL) {
            continue;
        }

        call->in_multi = 0;
        ngx_http_hris_call_removed();
        ngx_http_hris_call_finished(call, cc);
    }
}


static void
ngx_http_hris_call_finished(ngx_http_hris_call_t *call, CURLcode cc)
{
    long                 status;
    ngx_uint_t           retry;
    ngx_msec_t           delay;

    /* a paused transfer may end (its timeout): nothing left to resume */
    ngx_http_hris_call_unpost(call);

    status = 0;
    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
    call->status = (ngx_uint_t) status;

    switch (cc) {

    case CURLE_OK:
        call->result = NGX_HTTP_HRIS_CALL_OK;
        break;

    case CURLE_OPERATION_TIMEDOUT:
        call->result = NGX_HTTP_HRIS_CALL_TIMEOUT;
        break;

    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
        call->result = NGX_HTTP_HRIS_CALL_UNREACHABLE;
        break;

    case CURLE_WRITE_ERROR:
        call->result = (call->resp_len > call->conf->max_response)
                       ? NGX_HTTP_HRIS_CALL_TOO_LARGE
                       : NGX_HTTP_HRIS_CALL_ERROR;
        break;

    case CURLE_ABORTED_BY_CALLBACK:
        /* see ngx_http_hris_watch_failed(): this worker's trouble */
        call->result = ngx_http_hris_call_sent(call, cc)
                       ? NGX_HTTP_HRIS_CALL_BROKEN
                       : NGX_HTTP_HRIS_CALL_UNREACHABLE;
        call->final = 1;
        ngx_cpystrn((u_char *) call->errbuf, (u_char *) "nginx could not "
                    "watch the connection (are worker_connections enough?)",
                    CURL_ERROR_SIZE);
        break;

    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_UNSUPPORTED_PROTOCOL:
        /* a refused certificate or scheme stays refused */
        call->result = NGX_HTTP_HRIS_CALL_UNREACHABLE;
        call->final = 1;
        break;

    default:
        call->result = NGX_HTTP_HRIS_CALL_BROKEN;
        break;
    }

    if (cc != CURLE_OK) {
        call->error.data = (u_char *) (call->errbuf[0] ? call->errbuf
                                       : curl_easy_strerror(cc));
        call->error.len = ngx_strlen(call->error.data);

        ngx_log_error(NGX_LOG_ERR, call->log, 0,
                      "hris: upstream call to \"%V\" failed (attempt %ui): %V",
                      ngx_http_hris_call_host(call), call->attempts,
                      &call->error);
    }

    /* a write that went out and got no answer may have been carried out */
    call->unknown = !call->idempotent
                    && (call->result == NGX_HTTP_HRIS_CALL_TIMEOUT
                        || call->result == NGX_HTTP_HRIS_CALL_BROKEN)
                    && ngx_http_hris_call_sent(call, cc);

    retry = (ngx_http_hris_call_should_retry(call, &delay) == NGX_OK);

    /* each try counts: metrics, $hris_upstream_status (a request's) */
    if (call->request) {
        ngx_http_hris_observe_try(call, ngx_http_hris_call_time(call),
                                  retry);
    }

    if (retry) {
        ngx_log_error(NGX_LOG_WARN, call->log, 0,
                      "hris: retrying upstream call to \"%V\" in %M ms "
                      "(status %ui, attempt %ui)",
                      ngx_http_hris_call_host(call), delay, call->status,
                      call->attempts);
        ngx_add_timer(&call->retry_ev, delay);
        return;
    }

    ngx_http_hris_call_complete(call);
}


/* this try's time, from resolving the provider's name to the last byte */

static uint64_t
ngx_http_hris_call_time(ngx_http_hris_call_t *call)
{
    curl_off_t  us;

    us = 0;

    if (curl_easy_getinfo(call->easy, CURLINFO_TOTAL_TIME_T, &us) != CURLE_OK
        || us < 0)
    {
        return 0;
    }

    return (uint64_t) us;
}


/*
 * Decides whether to try again, with exponential backoff and jitter,
 * honouring Retry-After up to the cap; a Retry-After over the cap ends
 * the call as RATE_LIMITED.
 *
 * What may be retried depends on whether a second delivery is harmless.
 * Any call: a provider that could not be reached (name resolution or
 * connect failed: nothing was sent), and, with call->retry, a throttling
 * answer (429, or 503 with Retry-After: the provider says it did not do
 * it). An idempotent call also: a broken answer, and 502, 503 and 504.
 * A write is never sent again once the provider may have carried it out:
 * a rotating refresh token or an authorization code would be spent twice,
 * a record created twice.
 */

static ngx_int_t
ngx_http_hris_call_should_retry(ngx_http_hris_call_t *call, ngx_msec_t *delay)
{
    ngx_msec_t  base;
    ngx_uint_t  retryable, throttled;

    switch (call->result) {

    case NGX_HTTP_HRIS_CALL_OK:
        throttled = call->status == 429
                    || (call->status == 503 && call->retry_after >= 0);

        retryable = call->retry
                    && (throttled
                        || (call->idempotent
                            && (call->status == 502 || call->status == 503
                                || call->status == 504)));
        break;

    case NGX_HTTP_HRIS_CALL_UNREACHABLE:
        retryable = !call->final;
        break;

    case NGX_HTTP_HRIS_CALL_BROKEN:
        retryable = call->idempotent && !call->final;
        break;

    default:
        retryable = 0;
    }

    if (!retryable) {
        return NGX_DECLINED;
    }

    /* in seconds: a huge Retry-After times 1000 would wrap around */
    if (call->retry_after >= 0
        && call->retry_after > (time_t) (call->conf->retry_after_max / 1000))
    {
        call->result = NGX_HTTP_HRIS_CALL_RATE_LIMITED;
        return NGX_DECLINED;
    }

    if (call->attempts > call->conf->retries) {
        return NGX_DECLINED;
    }

    if (call->retry_after >= 0) {
        *delay = (ngx_msec_t) call->retry_after * 1000;
        return NGX_OK;
    }

    base = call->conf->backoff << (call->attempts - 1);
    *delay = base + (base ? (ngx_msec_t) ngx_random() % (base / 2 + 1) : 0);

    return NGX_OK;
}


/* RFC 9110, 9.2.2 */

static ngx_uint_t
ngx_http_hris_method_idempotent(ngx_str_t *method)
{
    static const char  *idempotent[] = {
        "GET", "HEAD", "PUT", "DELETE", "OPTIONS", NULL
    };

    ngx_uint_t  i;

    for (i = 0; idempotent[i]; i++) {
        if (ngx_strcmp(method->data, idempotent[i]) == 0) {
            return 1;
        }
    }

    return 0;
}


/*
 * Whether the request may have reached the provider: curl counts the
 * request's bytes once it starts sending them, and a failed name lookup
 * or connect sent nothing.
 */

static ngx_uint_t
ngx_http_hris_call_sent(ngx_http_hris_call_t *call, CURLcode cc)
{
    long  n;

    if (cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_CONNECT) {
        return 0;
    }

    n = 0;

    if (curl_easy_getinfo(call->easy, CURLINFO_REQUEST_SIZE, &n)
        != CURLE_OK)
    {
        return 1;
    }

    return n > 0;
}


static void
ngx_http_hris_call_complete(ngx_http_hris_call_t *call)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r = call->request;

    call->done = 1;

    if (r == NULL) {
        /* a background call (ngx_http_hris_call_create_bg()) */
        call->handler(call);
        return;
    }

    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    call->handler(call);

    /* as nginx's upstream handlers do after resuming a request */
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_hris_retry_handler(ngx_event_t *ev)
{
    ngx_http_hris_call_t  *call;

    call = (ngx_http_hris_call_t *)
               ((u_char *) ev - offsetof(ngx_http_hris_call_t, retry_ev));

    ngx_http_hris_call_reset(call);

    if (ngx_http_hris_call_add(call) != NGX_OK) {
        call->result = NGX_HTTP_HRIS_CALL_ERROR;
        ngx_http_hris_call_complete(call);
    }
}


/*
 * A transfer paused by the write callback reads on, a loop turn later:
 * the loop has looked at every other socket and timer meanwhile. curl
 * may give the kept piece inside curl_easy_pause(); then it is driven as
 * after a socket event, so that reading goes on in this turn, not after
 * a timer's turn more. The call may be finished and freed in drain().
 */

static void
ngx_http_hris_resume_handler(ngx_event_t *ev)
{
    int                    running;
    CURLcode               cc;
    ngx_http_hris_call_t  *call = ev->data;

    call->paused = 0;

    if (!call->in_multi || ngx_http_hris_curl.multi == NULL) {
        return;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, call->log, 0,
                   "hris: upstream transfer resumed");

    ngx_http_hris_curl.turn++;
    cc = curl_easy_pause(call->easy, CURLPAUSE_CONT);

    if (cc != CURLE_OK) {
        /*
         * the kept piece refused (over hris_max_response_size, no
         * memory): curl 7.88 returns at once, the transfer neither ended
         * nor watched any more; it would wait for its timeout
         */
        curl_multi_remove_handle(ngx_http_hris_curl.multi, call->easy);
        call->in_multi = 0;
        ngx_http_hris_call_removed();
        ngx_http_hris_call_finished(call, cc);
        return;
    }

    curl_multi_socket_action(ngx_http_hris_curl.multi, CURL_SOCKET_TIMEOUT, 0,
                             &running);
    ngx_http_hris_drain();
}


static void
ngx_http_hris_call_unpost(ngx_http_hris_call_t *call)
{
    if (call->resume_ev.posted) {
        ngx_delete_posted_event(&call->resume_ev);
    }

    call->paused = 0;
}


ngx_http_hris_call_t *
ngx_http_hris_call_create(ngx_http_request_t *r,
    ngx_http_hris_upstream_conf_t *conf)
{
    ngx_http_hris_call_t  *call;

    call = ngx_http_hris_call_create_bg(r->pool, r->connection->log, conf);
    if (call == NULL) {
        return NULL;
    }

    call->request = r;
    call->retry_ev.data = r->connection;

    return call;
}


/*
 * A call that belongs to no client request (a webhook delivery): its
 * memory is the pool's, and destroying the pool ends it.
 */

ngx_http_hris_call_t *
ngx_http_hris_call_create_bg(ngx_pool_t *pool, ngx_log_t *log,
    ngx_http_hris_upstream_conf_t *conf)
{
    ngx_pool_cleanup_t    *cln;
    ngx_http_hris_call_t  *call;

    if (ngx_http_hris_curl.multi == NULL) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "hris: upstream client is not initialized");
        return NULL;
    }

    call = ngx_pcalloc(pool, sizeof(ngx_http_hris_call_t));
    if (call == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    call->easy = curl_easy_init();
    if (call->easy == NULL) {
        return NULL;
    }

    /* whatever ends the request (done, error, client abort) frees the call */
    cln->handler = ngx_http_hris_call_cleanup;
    cln->data = call;

    call->pool = pool;
    call->log = log;
    call->conf = conf;
    call->retry = 1;
    call->idempotent = NGX_CONF_UNSET;
    call->retry_after = -1;
    ngx_str_set(&call->method, "GET");

    call->retry_ev.handler = ngx_http_hris_retry_handler;
    call->retry_ev.data = call;
    call->retry_ev.log = log;

    call->resume_ev.handler = ngx_http_hris_resume_handler;
    call->resume_ev.data = call;
    call->resume_ev.log = log;

    return call;
}


ngx_int_t
ngx_http_hris_call_header(ngx_http_hris_call_t *call, ngx_str_t *name,
    ngx_str_t *value)
{
    u_char             *line, *p;
    struct curl_slist  *sl;

    /* the last guard: one header is one line, whatever made its value */
    if (!ngx_http_hris_value_safe(name->data, name->len)
        || !ngx_http_hris_header_safe(value->data, value->len))
    {
        ngx_log_error(NGX_LOG_ERR, call->log, 0,
                      "hris: header \"%V\" holds a control character: not "
                      "sent", name);
        return NGX_ERROR;
    }

    line = ngx_pnalloc(call->pool, name->len + value->len + 3);
    if (line == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(line, name->data, name->len);
    *p++ = ':';

    /* "Name;" is curl's way to send a header with an empty value */
    if (value->len == 0) {
        p[-1] = ';';

    } else {
        *p++ = ' ';
        p = ngx_cpymem(p, value->data, value->len);
    }

    *p = '\0';

    sl = curl_slist_append(call->slist, (char *) line);
    if (sl == NULL) {
        return NGX_ERROR;
    }

    call->slist = sl;

    return NGX_OK;
}


ngx_int_t
ngx_http_hris_call_start(ngx_http_hris_call_t *call)
{
    if (ngx_http_hris_call_setup(call) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_hris_call_add(call);
}


static ngx_int_t
ngx_http_hris_call_setup(ngx_http_hris_call_t *call)
{
    CURL                           *e = call->easy;
    struct curl_blob                blob;
    struct curl_slist              *sl;
    ngx_http_hris_upstream_conf_t  *conf = call->conf;

    curl_easy_setopt(e, CURLOPT_URL, call->url.data);
    curl_easy_setopt(e, CURLOPT_PRIVATE, call);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, ngx_http_hris_close_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, &ngx_http_hris_curl);

#if (LIBCURL_VERSION_NUM >= 0x075700)
    /*
     * A transfer that ends during name resolution (a connect timeout, a
     * client gone) would otherwise wait for curl's resolver thread to
     * finish its name lookup: the whole worker blocked on a slow DNS
     * server. The thread is left to finish and free itself.
     */
    curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
#endif
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long) conf->connect_timeout);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) conf->timeout);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, ngx_http_hris_write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, ngx_http_hris_header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, call);

    /* no redirects, no other schemes: a provider cannot send us elsewhere */
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");

    /*
     * curl reads 16 KB at a time by default, each read followed by a
     * poll() of the socket to see whether more is waiting: a 79 KB page
     * took 6 recv() and 6 poll() calls, a fifth of the request's CPU in
     * curl (bench/README.md). 128 KB takes most pages in one read; the
     * buffer lives as long as the transfer.
     */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, NGX_HTTP_HRIS_CURL_BUFFER);

    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, conf->ssl_verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, conf->ssl_verify ? 2L : 0L);

    if (conf->ca_pem.len) {
        /* read when nginx read its configuration: no file work here */
        blob.data = conf->ca_pem.data;
        blob.len = conf->ca_pem.len;
        blob.flags = CURL_BLOB_NOCOPY;
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
    }

    if (ngx_strcmp(call->method.data, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, call->method.data);
    }

    if (call->idempotent == NGX_CONF_UNSET) {
        call->idempotent = ngx_http_hris_method_idempotent(&call->method);
    }

    /*
     * curl silently sends a request again on a fresh connection when a
     * reused one dies before any answer; the provider may have carried
     * the first one out: a call that must go out once takes a new one
     */
    if (!call->idempotent) {
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    }

    if (ngx_strcmp(call->method.data, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);

    } else if (call->body.len) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long) call->body.len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body.data);

        /* no "Expect: 100-continue" round trip */
        sl = curl_slist_append(call->slist, "Expect:");
        if (sl == NULL) {
            return NGX_ERROR;
        }
        call->slist = sl;
    }

    /* W3C trace context, when the client sent one */
    if (call->request && ngx_http_hris_trace_headers(call) != NGX_OK) {
        return NGX_ERROR;
    }

    curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->slist);

    return NGX_OK;
}


static ngx_int_t
ngx_http_hris_call_add(ngx_http_hris_call_t *call)
{
    CURLMcode  mc;

    call->attempts++;

    mc = curl_multi_add_handle(ngx_http_hris_curl.multi, call->easy);
    if (mc != CURLM_OK) {
        ngx_log_error(NGX_LOG_ERR, call->log, 0,
                      "hris: curl_multi_add_handle() failed: %s",
                      curl_multi_strerror(mc));
        return NGX_ERROR;
    }

    call->in_multi = 1;

    /*
     * a worker quits gracefully once only cancelable timers are left:
     * curl's timer (a running transfer always has its timeout in it) must
     * keep the worker until the answer is sent
     */
    ngx_http_hris_curl.active++;
    ngx_http_hris_curl.timer.cancelable = 0;

    return NGX_OK;
}


static void
ngx_http_hris_call_removed(void)
{
    if (--ngx_http_hris_curl.active == 0) {
        ngx_http_hris_curl.timer.cancelable = 1;
    }
}


/* forget the previous attempt's answer */

static void
ngx_http_hris_call_reset(ngx_http_hris_call_t *call)
{
    call->resp_len = 0;
    call->status = 0;
    call->retry_after = -1;
    call->content_type.len = 0;
    call->errbuf[0] = '\0';
    call->error.len = 0;
    call->unknown = 0;

    if (call->headers_out.elts) {
        call->headers_out.nelts = 0;
    }
}


static void
ngx_http_hris_call_cleanup(void *data)
{
    ngx_http_hris_call_t  *call = data;

    if (call->failed) {
        /* still in the queue, or taken out of it (then linked to itself) */
        ngx_queue_remove(&call->failed_link);
    }

    if (call->in_multi && ngx_http_hris_curl.multi) {
        curl_multi_remove_handle(ngx_http_hris_curl.multi, call->easy);
        call->in_multi = 0;
        ngx_http_hris_call_removed();
    }

    if (call->retry_ev.timer_set) {
        ngx_del_timer(&call->retry_ev);
    }

    /* a client gone while paused: the posted event must not outlive us */
    ngx_http_hris_call_unpost(call);

    if (call->easy) {
        curl_easy_cleanup(call->easy);
        call->easy = NULL;
    }

    if (call->slist) {
        curl_slist_free_all(call->slist);
        call->slist = NULL;
    }

    if (call->resp) {
        ngx_free(call->resp);
        call->resp = NULL;
    }
}


/*
 * The first size of an answer's buffer: its Content-Length when it has one
 * (below hris_max_response_size), so that a page is read into one block
 * instead of growing 16k, 32k, 64k, 128k and copying 112 KB on the way,
 * and a huge answer's megabytes are not copied again and again into
 * fresh pages on the event loop (bench/README.md, "Huge answers"). A
 * provider that announces more than it sends costs address space, not
 * memory: pages are only touched as bytes arrive.
 */

static size_t
ngx_http_hris_resp_hint(ngx_http_hris_call_t *call)
{
    curl_off_t  cl;

    if (call->resp_size == 0
        && curl_easy_getinfo(call->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
                             &cl)
           == CURLE_OK
        && cl > 0 && (size_t) cl < call->conf->max_response)
    {
        return (size_t) cl + 1;
    }

    return 16384;
}


static size_t
ngx_http_hris_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    u_char                *p;
    size_t                 n, want;
    ngx_http_hris_call_t  *call = userdata;

    n = size * nmemb;

    if (call->turn != ngx_http_hris_curl.turn) {
        call->turn = ngx_http_hris_curl.turn;
        call->turn_bytes = 0;

    } else if (call->turn_bytes >= NGX_HTTP_HRIS_TURN_BYTES) {
        /* curl keeps this piece and gives it again when resumed */
        if (!call->paused) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, call->log, 0,
                           "hris: upstream transfer paused, %uz bytes "
                           "read in this turn", call->turn_bytes);

            call->paused = 1;
            ngx_post_event(&call->resume_ev, &ngx_posted_next_events);
        }

        return CURL_WRITEFUNC_PAUSE;
    }

    call->turn_bytes += n;

    if (call->resp_len + n > call->conf->max_response) {
        call->resp_len += n;
        return 0;                       /* CURLE_WRITE_ERROR */
    }

    if (call->resp_len + n + 1 > call->resp_size) {
        want = ngx_max(call->resp_size * 2, call->resp_len + n + 1);
        want = ngx_max(want, ngx_http_hris_resp_hint(call));

        p = realloc(call->resp, want);
        if (p == NULL) {
            return 0;
        }

        call->resp = p;
        call->resp_size = want;
    }

    ngx_memcpy(call->resp + call->resp_len, ptr, n);
    call->resp_len += n;
    call->resp[call->resp_len] = '\0';

    return n;
}


static size_t
ngx_http_hris_header_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    u_char                *p, *end, *colon, *v;
    size_t                 n;
    ngx_keyval_t          *kv;
    ngx_http_hris_call_t  *call = userdata;
    ngx_pool_t            *pool = call->pool;

    n = size * nmemb;
    p = (u_char *) ptr;
    end = p + n;

    while (end > p && (end[-1] == '\r' || end[-1] == '\n')) {
        end--;
    }

    /* a new status line starts a new header block (100 Continue etc.) */
    if (end - p > 5 && ngx_strncmp(p, "HTTP/", 5) == 0) {
        ngx_http_hris_call_reset(call);
        return n;
    }

    colon = ngx_strlchr(p, end, ':');
    if (colon == NULL) {
        return n;
    }

    v = colon + 1;
    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }

    if ((size_t) (colon - p) == sizeof("Content-Type") - 1
        && ngx_strncasecmp(p, (u_char *) "Content-Type", colon - p) == 0)
    {
        call->content_type.data = ngx_pstrdup(pool, &(ngx_str_t)
                                              { end - v, v });
        call->content_type.len = call->content_type.data ? end - v : 0;

    } else if ((size_t) (colon - p) == sizeof("Retry-After") - 1
               && ngx_strncasecmp(p, (u_char *) "Retry-After", colon - p)
                  == 0)
    {
        call->retry_after = ngx_http_hris_retry_after(v, end);
    }

    if (!call->keep_headers) {
        return n;
    }

    if (call->headers_out.elts == NULL
        && ngx_array_init(&call->headers_out, pool, 8, sizeof(ngx_keyval_t))
           != NGX_OK)
    {
        return 0;
    }

    kv = ngx_array_push(&call->headers_out);
    if (kv == NULL) {
        return 0;
    }

    kv->key.len = colon - p;
    kv->key.data = p;
    kv->key.data = ngx_pstrdup(pool, &kv->key);
    kv->value.len = end - v;
    kv->value.data = v;
    kv->value.data = ngx_pstrdup(pool, &kv->value);

    if (kv->key.data == NULL || kv->value.data == NULL) {
        return 0;
    }

    return n;
}


/*
 * Retry-After: seconds, or an HTTP date; -1 when it is neither. Seconds
 * beyond 2^31 - 1 (even beyond time_t) are taken as that: still far past
 * any hris_retry_after_max, and a value every client can read back.
 */

static time_t
ngx_http_hris_retry_after(u_char *p, u_char *end)
{
    time_t   t;
    u_char  *d;

    if (p == end) {
        return -1;
    }

    t = 0;

    for (d = p; d < end && *d >= '0' && *d <= '9'; d++) {
        if (t < NGX_MAX_INT32_VALUE) {
            t = t * 10 + (*d - '0');
        }
    }

    if (d == end) {
        return ngx_min(t, (time_t) NGX_MAX_INT32_VALUE);
    }

    t = ngx_parse_http_time(p, end - p);
    if (t == NGX_ERROR) {
        return -1;
    }

    return (t > ngx_time()) ? t - ngx_time() : 0;
}


/* The host of the call's URL, for messages: never its path or query. */

ngx_str_t *
ngx_http_hris_call_host(ngx_http_hris_call_t *call)
{
    u_char      *p, *end, *host;
    ngx_str_t   *s;

    s = ngx_palloc(call->pool, sizeof(ngx_str_t));
    if (s == NULL) {
        static ngx_str_t  unknown = ngx_string("?");
        return &unknown;
    }

    p = call->url.data;
    end = p + call->url.len;

    host = ngx_strlcasestrn(p, end, (u_char *) "://", 3 - 1);
    host = host ? host + 3 : p;

    for (p = host; p < end && *p != '/' && *p != '?'; p++) { /* void */ }

    s->data = host;
    s->len = p - host;

    return s;
}


/*
 * hris_ssl_trusted_certificate: the CA bundle is read here, when nginx
 * reads its configuration (as the master, which may read files the
 * workers cannot), so no upstream call touches the file system.
 */

ngx_int_t
ngx_http_hris_upstream_ca_load(ngx_conf_t *cf,
    ngx_http_hris_upstream_conf_t *conf)
{
    off_t            size;
    ssize_t          n;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    if (conf->ca_file.len == 0 || conf->ca_pem.len) {
        return NGX_OK;
    }

    if (ngx_conf_full_name(cf->cycle, &conf->ca_file, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = conf->ca_file;
    file.log = cf->log;

    file.fd = ngx_open_file(conf->ca_file.data, NGX_FILE_RDONLY,
                            NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno, "hris: cannot open "
                           "hris_ssl_trusted_certificate \"%V\"",
                           &conf->ca_file);
        return NGX_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        ngx_close_file(file.fd);
        return NGX_ERROR;
    }

    size = ngx_file_size(&fi);

    conf->ca_pem.data = ngx_pnalloc(cf->pool, (size_t) size + 1);
    if (conf->ca_pem.data == NULL) {
        ngx_close_file(file.fd);
        return NGX_ERROR;
    }

    n = ngx_read_file(&file, conf->ca_pem.data, (size_t) size, 0);
    ngx_close_file(file.fd);

    if (n != size || ngx_strlcasestrn(conf->ca_pem.data,
                                      conf->ca_pem.data + n,
                                      (u_char *) "-----BEGIN", 10 - 1)
                     == NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hris: "
                           "hris_ssl_trusted_certificate \"%V\" holds no "
                           "PEM certificate", &conf->ca_file);
        return NGX_ERROR;
    }

    conf->ca_pem.len = (size_t) n;

    return NGX_OK;
}

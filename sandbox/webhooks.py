"""Outgoing webhooks of the sandbox providers (shared by bamboohr.py,
personio.py and peoplehr.py).

A provider builds the event (its own body and headers) and hands it to an
`Outbox`; the outbox delivers from one background thread, so the write that
caused the event is answered at once and never waits for the receiver.
Each attempt is logged for the control endpoint

    GET    /_sandbox/webhooks/deliveries  {"deliveries": [{id, delivery, webhook_id,
                                           event, url, attempt, status, error,
                                           at, retry_in}, ...]} (oldest first)
    DELETE /_sandbox/webhooks/deliveries  forget the log and every pending retry
    POST   /_sandbox/webhooks/fire        provider-specific: send an event for
                                          a record without a write

Retries follow the provider's schedule (a list of waits in seconds); the
`--webhook-time-scale` option multiplies every wait, so a test can see
BambooHR's 5-minute retry after 0.3 s with `--webhook-time-scale 0.001`.
The receiver's answer time is not scaled: it is a network timeout.

Only the Python standard library is used.
"""

import datetime
import heapq
import http.client
import ipaddress
import itertools
import ssl
import threading
import time
from urllib.parse import urlsplit

import common

LOG_LIMIT = 500          # attempts kept for GET /_sandbox/webhooks/deliveries
PENDING_LIMIT = 1000     # deliveries waiting at once; more are dropped (logged)
ANSWER_LIMIT = 65536     # bytes of a receiver's answer read before hanging up
URL_LIMIT = 2048


def add_arguments(parser):
    group = parser.add_argument_group("outgoing webhooks")
    group.add_argument("--webhook-time-scale", type=float, default=1.0, metavar="F",
                       help="multiply every retry wait by F (default 1: the provider's "
                            "real schedule; 0.001 turns minutes into tenths of seconds)")
    group.add_argument("--webhooks-allow-http", action="store_true",
                       help="accept http:// webhook URLs on any host (default: https, "
                            "or http to a loopback address only)")
    group.add_argument("--webhooks-https-only", action="store_true",
                       help="refuse every http:// webhook URL, loopback included, as "
                            "the real API does")


def check_arguments(args):
    if not args.webhook_time_scale >= 0:
        raise SystemExit("--webhook-time-scale must not be negative")
    if args.webhooks_allow_http and args.webhooks_https_only:
        raise SystemExit("--webhooks-allow-http and --webhooks-https-only exclude each other")


def _loopback(host):
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url, args):
    """None when `url` may receive webhooks, else why not (for an error text).
    The real APIs take https only; the sandbox also takes http to a loopback
    address (a test's receiver) unless --webhooks-https-only, and any http
    with --webhooks-allow-http."""
    if not isinstance(url, str) or not url:
        return "url is required"
    if len(url) > URL_LIMIT or any(ord(c) <= 32 or ord(c) == 127 for c in url):
        return "url is not a valid URL"
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        return "url is not a valid URL"
    if parts.scheme not in ("http", "https") or not host or parts.username is not None \
            or port == 0:
        return "url is not a valid URL"
    if parts.scheme == "http":
        if args.webhooks_https_only or not (args.webhooks_allow_http or _loopback(host)):
            return "url must use https"
    return None


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


class Outbox:
    """Deliveries waiting to be sent, one sender thread, the attempt log.

    `schedule`: the waits (seconds, before scaling) between attempts: its
    length is the number of retries. `retryable(status)`: whether an answer
    (None: no answer at all) is tried again. `timeout`: seconds the receiver
    has to answer. `on_success(webhook_id, when)`: called after a 2xx."""

    def __init__(self, schedule, retryable, timeout, time_scale, on_success=None):
        self.schedule = list(schedule)
        self.retryable = retryable
        self.timeout = timeout
        self.time_scale = time_scale
        self.on_success = on_success
        self._cond = threading.Condition()
        self._heap = []                     # (due, seq, delivery)
        self._seq = itertools.count(1)
        self._log = []
        self._log_ids = itertools.count(1)
        self._generation = 0
        self._thread = None

    # -- producers --

    def post(self, webhook_id, event, url, build):
        """Queue one delivery. `build()` returns (body bytes, [(header, value)])
        and is called for every attempt (a signature may carry the time)."""
        delivery = {"id": next(self._seq), "webhook_id": webhook_id, "event": event,
                    "url": url, "build": build, "attempt": 0}
        with self._cond:
            if len(self._heap) >= PENDING_LIMIT:
                self._append_log(delivery, 0, None, "dropped: too many pending deliveries",
                                 None)
                return None
            heapq.heappush(self._heap, (time.monotonic(), delivery["id"], delivery))
            delivery["generation"] = self._generation
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="webhooks",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()
        return delivery["id"]

    def deliveries(self):
        with self._cond:
            return [dict(entry) for entry in self._log]

    def clear(self):
        """Forget the log and every pending delivery (POST /_sandbox/reset,
        DELETE /_sandbox/webhooks/deliveries). An attempt already on the wire
        finishes but is neither logged nor retried."""
        with self._cond:
            cleared = len(self._log)
            self._log = []
            self._heap = []
            self._generation += 1
            return cleared

    def drop_webhook(self, webhook_id):
        """A deleted registration gets no more retries."""
        with self._cond:
            self._heap = [item for item in self._heap if item[2]["webhook_id"] != webhook_id]
            heapq.heapify(self._heap)

    # -- the sender thread --

    def _run(self):
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        delivery = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
            self._attempt(delivery)

    def _attempt(self, delivery):
        delivery["attempt"] += 1
        attempt = delivery["attempt"]
        try:
            body, headers = delivery["build"]()
            status, error = self._send(delivery["url"], body, headers)
        except Exception as err:            # a bug in a builder: log it, never die
            status, error = None, "sandbox error: %s" % err
        retry_in = None
        if not (status is not None and 200 <= status < 300) and self.retryable(status) \
                and attempt <= len(self.schedule):
            retry_in = self.schedule[attempt - 1] * self.time_scale
        with self._cond:
            if delivery["generation"] != self._generation:
                return                      # cleared meanwhile
            self._append_log(delivery, attempt, status, error, retry_in)
            if retry_in is not None:
                heapq.heappush(self._heap, (time.monotonic() + retry_in, delivery["id"],
                                            delivery))
        if status is not None and 200 <= status < 300 and self.on_success:
            self.on_success(delivery["webhook_id"], utc_now())

    def _append_log(self, delivery, attempt, status, error, retry_in):
        self._log.append({"id": next(self._log_ids), "delivery": delivery["id"],
                          "webhook_id": delivery["webhook_id"], "event": delivery["event"],
                          "url": delivery["url"], "attempt": attempt, "status": status,
                          "error": error,
                          "at": utc_now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                          "retry_in": None if retry_in is None else round(retry_in, 3)})
        del self._log[:-LOG_LIMIT]

    def _send(self, url, body, headers):
        """POST once: (status, None), or (None, why) without an answer."""
        parts = urlsplit(url)
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname, parts.port,
                                               timeout=self.timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port,
                                              timeout=self.timeout)
        try:
            conn.putrequest("POST", target, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            answer = conn.getresponse()
            answer.read(ANSWER_LIMIT)
            return answer.status, None
        except (OSError, http.client.HTTPException) as err:
            return None, "%s: %s" % (type(err).__name__, err)
        finally:
            conn.close()


def control(req, outbox, fire):
    """The /_sandbox/webhooks/... control endpoints common to the providers;
    `fire(body)` answers POST /_sandbox/webhooks/fire. None: not ours."""
    path = req.path.rstrip("/")
    prefix = common.CONTROL_PREFIX + "/webhooks/"
    if not path.startswith(prefix):
        return None
    route = (req.method, path[len(prefix):])
    if route == ("GET", "deliveries"):
        return common.json_response({"deliveries": outbox.deliveries()})
    if route == ("DELETE", "deliveries"):
        return common.json_response({"cleared": outbox.clear()})
    if route == ("POST", "fire"):
        try:
            body = req.json_body()
        except (ValueError, UnicodeDecodeError):
            return common.json_response({"error": "the body must be a JSON object"}, 400)
        if not isinstance(body, dict):
            return common.json_response({"error": "the body must be a JSON object"}, 400)
        return fire(body)
    return None


def fired(ids):
    """Answer of POST /_sandbox/webhooks/fire: the deliveries queued."""
    ids = [i for i in ids if i is not None]
    return common.json_response({"queued": len(ids), "deliveries": ids}, 202)

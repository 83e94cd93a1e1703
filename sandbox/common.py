"""Shared infrastructure for the sandbox HRIS providers.

Every provider (sandbox/bamboohr.py, and later Personio, PeopleHR, HeavenHR,
ClayHR) is a subclass of `Provider` run by `serve()`. This module gives them:

  * a threaded HTTP/1.1 server with keep-alive (every answer carries a
    Content-Length, so a client can reuse the connection);
  * `Request` / `Response` objects and a small path `Router`;
  * quiet logging: nothing per request unless --verbose;
  * CLI helpers: --host (default 127.0.0.1), --port (required), --verbose,
    --watch-stdin; one line `listening on http://HOST:PORT` on stdout once
    the socket is bound;
  * the FAULT SWITCHES and request statistics, driven through the control
    endpoints under /_sandbox/ (no authentication):

      POST   /_sandbox/faults   queue a fault (JSON object, or an array of them)
      GET    /_sandbox/faults   list the queued faults
      DELETE /_sandbox/faults   clear the queue
      GET    /_sandbox/stats    {"requests", "by_path", "faults_served"}
      GET    /_sandbox/requests the last requests' method, target and headers
      POST   /_sandbox/reset    clear faults and stats (and provider state)

Only the Python standard library is used.
"""

import argparse
import json
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, urlsplit

CONTROL_PREFIX = "/_sandbox"

JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=UTF-8"


# ---------------------------------------------------------------------------
# Request and response
# ---------------------------------------------------------------------------

class Request:
    """One parsed HTTP request, as the provider handlers see it."""

    def __init__(self, method, target, headers, body, server_port):
        parts = urlsplit(target)
        self.method = method
        self.target = target               # path + query, exactly as sent
        self.path = parts.path             # still percent-encoded
        self.query_string = parts.query
        # keep_blank_values: `?fields=` must be seen as "present but empty".
        self.query = parse_qs(parts.query, keep_blank_values=True)
        self.query_pairs = parse_qsl(parts.query, keep_blank_values=True)
        self.headers = headers             # email.message.Message (case-insensitive)
        self.body = body
        self.server_port = server_port
        self.params = {}                   # filled by the Router
        self.context = {}                  # free space for providers (e.g. prefix)

    def arg(self, name, default=None):
        """First value of a query parameter, or `default`."""
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def host(self):
        """Host header as the client sent it (used to build absolute links)."""
        return self.header("Host") or "127.0.0.1:%d" % self.server_port

    def json_body(self):
        """Decoded JSON body; raises ValueError when it is not JSON."""
        return json.loads(self.body.decode("utf-8"))


class Response:
    """Status, headers and body bytes. Content-Length is added when sent."""

    def __init__(self, status=200, body=b"", content_type=None, headers=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")
        self.headers = list(headers or [])
        if content_type:
            self.headers.append(("Content-Type", content_type))

    def header(self, name, value):
        self.headers.append((name, value))
        return self

    def get_header(self, name):
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def dump_json(obj):
    """Compact UTF-8 JSON (non-ASCII kept raw, as real providers send it)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_response(obj, status=200, headers=None):
    return Response(status, dump_json(obj), JSON_TYPE, headers)


# ---------------------------------------------------------------------------
# Router
# ---------------------------------------------------------------------------

class Router:
    """Maps (method, path) to a handler; `{name}` segments become req.params."""

    def __init__(self):
        self._routes = []

    def add(self, method, pattern, handler):
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append((method, re.compile("^" + regex + "$"), handler))

    def match(self, method, path):
        """Return (handler, params), or (None, 404|405) when nothing matches.
        HEAD uses the GET routes (the server leaves the body out)."""
        wanted = "GET" if method == "HEAD" else method
        path_matched = False
        for route_method, regex, handler in self._routes:
            found = regex.match(path)
            if not found:
                continue
            if route_method == wanted:
                return handler, found.groupdict()
            path_matched = True
        return None, (405 if path_matched else 404)


# ---------------------------------------------------------------------------
# Fault switches and statistics
# ---------------------------------------------------------------------------

STATUS_FAULTS = {"429": 429, "500": 500, "502": 502, "503": 503, "504": 504}
OTHER_FAULTS = {"slow", "truncated", "truncated_json", "html", "html500", "reset", "json"}
REQUEST_LOG = 64                   # requests kept for GET /_sandbox/requests
# The normal answer with every record made larger or deeper (any provider).
RECORD_FAULTS = {"pad": 10000, "deep": 100}
# Pagination that misbehaves: each provider answers them in apply_fault();
# the value is the default of "size".
PROVIDER_FAULTS = {"repeat_cursor": 0, "endless_pages": 0, "long_cursor": 6000}
FAULT_KINDS = set(STATUS_FAULTS) | OTHER_FAULTS | set(RECORD_FAULTS) | set(PROVIDER_FAULTS)


class FaultError(ValueError):
    """A fault specification posted to /_sandbox/faults is invalid."""


def normalise_fault(spec):
    """Validate one posted fault spec and fill in the defaults."""
    if not isinstance(spec, dict):
        raise FaultError("a fault must be a JSON object")
    kind = str(spec.get("fault", ""))
    if kind not in FAULT_KINDS:
        raise FaultError("unknown fault %r (known: %s)" % (kind, ", ".join(sorted(FAULT_KINDS))))
    count = spec.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or (count < 1 and count != -1):
        raise FaultError("count must be a positive integer or -1 (until cleared)")
    path = spec.get("path")
    if path is not None and not isinstance(path, str):
        raise FaultError("path must be a string")
    retry_after = spec.get("retry_after")
    if retry_after is not None:
        if isinstance(retry_after, bool) or not isinstance(retry_after, (str, int, float)):
            raise FaultError("retry_after must be a string or a number")
        retry_after = str(retry_after)
    delay_ms = spec.get("delay_ms", 1000 if kind == "slow" else 0)
    if not isinstance(delay_ms, int) or isinstance(delay_ms, bool) or delay_ms < 0:
        raise FaultError("delay_ms must be a non-negative integer")
    status = spec.get("status", 200)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise FaultError("status must be an HTTP status")
    size = spec.get("size", RECORD_FAULTS.get(kind, PROVIDER_FAULTS.get(kind, 0)))
    if not isinstance(size, int) or isinstance(size, bool) or size < 0 or size > 100000000:
        raise FaultError("size must be an integer from 0 to 100000000")
    return {"fault": kind, "count": count, "path": path,
            "retry_after": retry_after, "delay_ms": delay_ms,
            "body": spec.get("body"), "status": status, "size": size}


class SandboxState:
    """Fault queue and request counters, shared by all handler threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self._faults = []
        self._requests = 0
        self._by_path = {}
        self._faults_served = 0
        self._log = []

    # -- faults --
    def add_faults(self, specs):
        with self._lock:
            self._faults.extend(specs)
            return [dict(f) for f in self._faults]

    def list_faults(self):
        with self._lock:
            return [dict(f) for f in self._faults]

    def clear_faults(self):
        with self._lock:
            cleared = len(self._faults)
            self._faults = []
            return cleared

    def take_fault(self, target):
        """First queued fault whose `path` is a substring of the request target
        (path and query); its count is decremented and it is dropped at 0."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault["path"] and fault["path"] not in target:
                    continue
                if fault["count"] > 0:
                    fault["count"] -= 1
                    if fault["count"] == 0:
                        del self._faults[index]
                self._faults_served += 1
                return dict(fault)
            return None

    # -- stats --
    def record(self, path, req=None):
        with self._lock:
            self._requests += 1
            self._by_path[path] = self._by_path.get(path, 0) + 1
            if req is not None:
                # headers as received: an injected line shows as a header of its own
                self._log.append({"method": req.method, "target": req.target,
                                  "headers": [[k, v] for k, v in req.headers.items()]})
                del self._log[:-REQUEST_LOG]

    def requests(self):
        with self._lock:
            return [dict(r) for r in self._log]

    def stats(self):
        with self._lock:
            return {"requests": self._requests, "by_path": dict(self._by_path),
                    "faults_served": self._faults_served}

    def reset(self):
        with self._lock:
            self._faults = []
            self._requests = 0
            self._by_path = {}
            self._faults_served = 0
            self._log = []


DEEP_MARK = "\u0000sandbox-deep\u0000"


def record_fault(resp, kind, size):
    """`pad`: every record gets "sandboxPadding", `size` bytes of text;
    `deep`: "sandboxDeep", arrays and objects nested `size` levels deep
    (written out by hand: Python's own JSON writer stops near 1000).
    Records are the objects inside arrays, else the answer's object.
    Answers that are not JSON pass unchanged."""
    if "json" not in (resp.get_header("Content-Type") or ""):
        return resp
    try:
        body = json.loads(resp.body.decode("utf-8"))
    except ValueError:
        return resp
    value = "x" * size if kind == "pad" else DEEP_MARK
    key = "sandboxPadding" if kind == "pad" else "sandboxDeep"
    records = []

    def collect(node, in_list):
        if isinstance(node, dict):
            if in_list:
                records.append(node)
            for child in node.values():
                collect(child, False)
        elif isinstance(node, list):
            for child in node:
                collect(child, True)

    collect(body, False)
    if not records and isinstance(body, dict):
        records.append(body)
    for record in records:
        record[key] = value
    text = dump_json(body)
    if kind == "deep":
        opens = "".join("[" if n % 2 == 0 else '{"d":' for n in range(size))
        closes = "".join("]" if n % 2 == 0 else "}" for n in reversed(range(size)))
        text = text.replace(dump_json(DEEP_MARK), (opens + "1" + closes).encode("ascii"))
    resp.body = text
    return resp


def generic_html_page(status):
    """What a load balancer or maintenance page looks like: not JSON at all."""
    title = {200: "Scheduled Maintenance", 500: "500 Internal Server Error"}.get(
        status, "%d Error" % status)
    return ("<!DOCTYPE html>\n<html><head><title>%s</title></head>\n"
            "<body><h1>%s</h1><p>The service is temporarily unavailable. "
            "Please try again later.</p></body></html>\n" % (title, title)).encode("utf-8")


# ---------------------------------------------------------------------------
# Provider base class
# ---------------------------------------------------------------------------

class Provider:
    """Base class of a sandbox provider. Subclasses implement handle()."""

    name = "provider"

    def __init__(self, args):
        self.args = args

    @staticmethod
    def add_arguments(parser):
        """Hook: add provider-specific CLI options."""

    def handle(self, req):
        """Answer one provider request with a Response."""
        raise NotImplementedError

    def reset(self):
        """Hook: forget mutable state (called by POST /_sandbox/reset)."""

    def fault_response(self, req, status, retry_after):
        """Answer of a status fault (429, 5xx). Default: empty body."""
        resp = Response(status, b"", HTML_TYPE)
        if retry_after is not None:
            resp.header("Retry-After", retry_after)
        return resp

    def html_page(self, status):
        """Body of the `html` / `html500` faults."""
        return generic_html_page(status)

    def apply_fault(self, req, fault):
        """Answer of a PROVIDER_FAULTS kind; a provider without pagination
        of that kind says so."""
        return json_response({"error": "the %s sandbox has no fault %r"
                                       % (self.name, fault["fault"])}, 501)


# ---------------------------------------------------------------------------
# HTTP handler
# ---------------------------------------------------------------------------

# A fault that produced its own answer on the socket (reset, truncated):
# the dispatcher must not send anything else.
ALREADY_ANSWERED = object()


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"      # keep-alive by default
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle plus
    # the client's delayed ACK stalls every keep-alive answer by ~40 ms.
    disable_nagle_algorithm = True
    server_version = "hris-sandbox/1.0"
    sys_version = ""

    # Every method goes through the same dispatcher.
    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("%s %s\n" % (self.server.provider.name, fmt % args))

    # -- request plumbing --
    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self):
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass                        # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()               # CRLF after each chunk

    def _dispatch(self):
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        req = Request(self.command, self.path, self.headers, body, self.server.server_address[1])
        try:
            if req.path == CONTROL_PREFIX or req.path.startswith(CONTROL_PREFIX + "/"):
                resp = control_request(self.server, req)
            else:
                resp = self._provider_request(req)
        except Exception:                       # a bug: say so loudly, answer 500
            traceback.print_exc()
            resp = json_response({"error": "sandbox internal error"}, 500)
        if resp is not ALREADY_ANSWERED:
            self._send(resp)

    def _provider_request(self, req):
        state = self.server.state
        state.record(req.path, req)
        fault = state.take_fault(req.target)
        if fault is None:
            return self.server.provider.handle(req)
        if self.server.verbose:
            sys.stderr.write("fault %s served for %s\n" % (fault["fault"], req.target))
        return self._apply_fault(req, fault)

    def _apply_fault(self, req, fault):
        provider = self.server.provider
        kind = fault["fault"]
        if kind in STATUS_FAULTS:
            return provider.fault_response(req, STATUS_FAULTS[kind], fault["retry_after"])
        if kind == "slow":
            time.sleep(fault["delay_ms"] / 1000.0)
            return provider.handle(req)
        if kind in RECORD_FAULTS:
            return record_fault(provider.handle(req), kind, fault["size"])
        if kind in PROVIDER_FAULTS:
            return provider.apply_fault(req, fault)
        if kind == "html":
            return Response(200, provider.html_page(200), HTML_TYPE)
        if kind == "html500":
            return Response(500, provider.html_page(500), HTML_TYPE)
        if kind == "reset":
            self._reset_connection()
            return ALREADY_ANSWERED
        if kind == "json":
            return json_response(fault["body"], fault["status"])
        full = self._json_body_for_truncation(req)
        if kind == "truncated_json":
            return Response(200, cut_json(full), JSON_TYPE)
        # "truncated": promise the full length, deliver half, hang up.
        self._send(Response(200, full, JSON_TYPE), body=full[: len(full) // 2])
        self.close_connection = True
        return ALREADY_ANSWERED

    def _json_body_for_truncation(self, req):
        """The body the request would have had, so truncation looks real."""
        body = self.server.provider.handle(req).body
        if len(body) < 16:
            body = dump_json({"data": [{"id": str(n), "name": "filler %d" % n} for n in range(20)]})
        return body

    def _reset_connection(self):
        """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        # rfile holds a reference to the socket; both must go for a real close.
        self.connection.close()
        self.rfile.close()

    def _send(self, resp, body=None):
        payload = resp.body if body is None else body
        self.send_response(resp.status)
        for name, value in resp.headers:
            self.send_header(name, value)
        # Content-Length always describes resp.body, even when we send less.
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def cut_json(body):
    """A syntactically broken prefix of a JSON document."""
    cut = body[: max(1, len(body) // 2)]
    # A prefix that happens to be complete JSON (e.g. `{}` halves) is extended
    # with an unterminated string so the result is never valid.
    try:
        json.loads(cut.decode("utf-8", "replace"))
        return cut + b'"'
    except ValueError:
        return cut


# ---------------------------------------------------------------------------
# Control endpoints
# ---------------------------------------------------------------------------

def control_request(server, req):
    # A provider's own control endpoints (OAuth grants, webhooks) come first:
    # its control_request(server, req) answers, or returns None to leave the
    # request to the common ones below.
    hook = getattr(server.provider, "control_request", None)
    resp = hook(server, req) if hook is not None else None
    if resp is not None:
        return resp
    state = server.state
    route = (req.method, req.path.rstrip("/"))
    if route == ("POST", CONTROL_PREFIX + "/faults"):
        return _post_faults(state, req)
    if route == ("GET", CONTROL_PREFIX + "/faults"):
        return json_response({"faults": state.list_faults()})
    if route == ("DELETE", CONTROL_PREFIX + "/faults"):
        return json_response({"cleared": state.clear_faults()})
    if route == ("GET", CONTROL_PREFIX + "/stats"):
        return json_response(state.stats())
    if route == ("GET", CONTROL_PREFIX + "/requests"):
        return json_response({"requests": state.requests()})
    if route == ("POST", CONTROL_PREFIX + "/reset"):
        state.reset()
        server.provider.reset()
        return json_response({"reset": True})
    return json_response({"error": "unknown control endpoint %s %s" % route}, 404)


def _post_faults(state, req):
    try:
        posted = req.json_body()
        specs = posted if isinstance(posted, list) else [posted]
        faults = [normalise_fault(spec) for spec in specs]
    except (ValueError, UnicodeDecodeError) as err:   # FaultError is a ValueError
        return json_response({"error": str(err)}, 400)
    return json_response({"queued": faults, "faults": state.add_faults(faults)}, 201)


# ---------------------------------------------------------------------------
# Server and CLI
# ---------------------------------------------------------------------------

class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True          # a hung client never blocks shutdown
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, provider, verbose):
        self.provider = provider
        self.verbose = verbose
        self.state = SandboxState()
        super().__init__(address, SandboxHandler)

    def handle_error(self, request, client_address):
        # A client that hangs up mid-answer (the gateway refusing an answer
        # over its size limit, a test aborting) is expected: no traceback.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)) \
                and not self.verbose:
            return
        super().handle_error(request, client_address)


def base_parser(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="port to bind (0 = any free port)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument("--watch-stdin", action="store_true",
                        help="exit when stdin reaches EOF (the parent process died)")
    return parser


def _watch_stdin():
    """Exit as soon as the parent closes our stdin (test harness safety net).
    Reads the raw descriptor: a thread blocked inside sys.stdin's buffered
    reader would make interpreter shutdown abort."""
    try:
        while os.read(0, 4096):
            pass
    finally:
        os._exit(0)


def serve(provider_class, argv=None, description=None):
    """Parse the CLI, bind, print `listening on ...`, serve until SIGTERM/SIGINT."""
    parser = base_parser(description or provider_class.__doc__)
    provider_class.add_arguments(parser)
    args = parser.parse_args(argv)
    provider = provider_class(args)
    server = SandboxServer((args.host, args.port), provider, args.verbose)
    host, port = server.server_address[:2]
    print("listening on http://%s:%d" % (host, port), flush=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.watch_stdin:
        threading.Thread(target=_watch_stdin, daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()

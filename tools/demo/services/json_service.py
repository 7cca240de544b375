"""What the demo's python services share: a quiet HTTP/1.1 JSON handler, downstream calls, serving.

A service subclasses JsonHandler, defines do_GET/do_POST, and calls serve(Handler, description).
Serving prints "ready" once the socket listens and exits with status 0 on SIGTERM or SIGINT.
"""

import argparse
import http.client
import json
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

DOWNSTREAM_TIMEOUT_S = 10


class DownstreamError(Exception):
    """A downstream call failed: no connection, a timeout, a non-2xx status or a body not JSON."""


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a proxy in front may reuse its connections
    server_version = "zerotrace-demo/1.0"
    disable_nagle_algorithm = True  # head and body go in one write anyway; no delayed-ACK stalls

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def path_only(self):
        return urlsplit(self.path).path

    def read_body(self):
        """The request body as bytes (Content-Length or chunked; none when neither is sent)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailer fields
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def read_json(self):
        """The request body parsed as a JSON object; None when it is not one."""
        try:
            value = json.loads(self.read_body() or b"null")
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def send_json(self, status, value):
        """Head and body in one write, always with Content-Length."""
        body = json.dumps(value, separators=(",", ":")).encode()
        head = ("HTTP/1.1 %d %s\r\nServer: %s\r\nDate: %s\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\n\r\n" %
                (status, self.responses.get(status, ("",))[0], self.server_version,
                 self.date_time_string(), len(body)))
        self.wfile.write(head.encode("latin-1") + body)

    def not_found(self):
        self.read_body()  # keep the connection usable for the next request
        self.send_json(404, {"error": "not found", "path": self.path_only()})


class Downstream:
    """One downstream service, called over a fresh connection per request."""

    def __init__(self, url):
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError("expected http://HOST:PORT, got %r" % url)
        self.host, self.port = parts.hostname, parts.port
        self.base_path = parts.path.rstrip("/")

    def call(self, method, path, value=None):
        """Sends `value` as a JSON body (if any); returns the JSON answer of a 2xx response."""
        body = None if value is None else json.dumps(value, separators=(",", ":")).encode()
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=DOWNSTREAM_TIMEOUT_S)
        try:
            conn.request(method, self.base_path + path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise DownstreamError("%s %s:%d%s: %s" % (method, self.host, self.port, path, e))
        finally:
            conn.close()
        if not 200 <= resp.status < 300:
            raise DownstreamError("%s %s:%d%s: status %d" %
                                  (method, self.host, self.port, path, resp.status))
        try:
            return json.loads(data)
        except ValueError:
            raise DownstreamError("%s %s:%d%s: body is not JSON" %
                                  (method, self.host, self.port, path))


class Server(ThreadingHTTPServer):
    daemon_threads = True  # SIGTERM ends the process without waiting for idle keep-alive peers
    block_on_close = False  # server_close must not join threads parked on idle connections
    allow_reuse_address = True
    request_queue_size = 128  # 50 connections arriving at once must not overflow the backlog

    def handle_error(self, request, client_address):
        pass  # a peer that vanishes mid-request is not worth a traceback


def parse_args(description, downstreams=()):
    """--port, plus one --NAME-url option per downstream name (all required)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True, help="listen on 127.0.0.1:PORT")
    for name in downstreams:
        parser.add_argument("--%s-url" % name, required=True, metavar="URL",
                            help="the %s service, http://127.0.0.1:PORT" % name)
    return parser.parse_args()


def serve(handler, port):
    """Listens on 127.0.0.1:port, prints "ready" and serves until SIGTERM or SIGINT."""
    def stop(signum, frame):
        raise SystemExit(0)  # raised in the main thread, out of serve_forever

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server = Server(("127.0.0.1", port), handler)
    print("ready", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    sys.exit(0)

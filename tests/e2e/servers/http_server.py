#!/usr/bin/python3
"""HTTP/1.1 test server for the e2e tests: one route per framing rule the agent must follow.

Usage: http_server.py PORT [HOST] [--tls CERT KEY]   (listens on HOST:PORT, default
127.0.0.1, prints "ready" once listening; with --tls it speaks HTTPS through python's ssl
module, which uses the system's libssl)

Every response is deterministic so a test can predict its status and body size exactly:
  /hello               200, HELLO_BODY, Content-Length
  /items/<n>           200, item_body(n) (10 + n bytes), Content-Length; ?status=S overrides
  /chunked             200, chunked: CHUNKS (3 chunks) then a trailer
  /nocontent           204, no body
  /notmodified         304 with a Content-Length describing the unsent representation
  /big?n=BYTES         200 with BYTES bytes, written in 64 KiB pieces
  /upload (POST)       200, body is the request's byte count (100 Continue when asked)
  /close               200, Connection: close, no length: the body ends at close
  /error               500, /missing 404 (and any unknown path)
  /ws                  101 to websocket, then echoes raw bytes until the peer closes
  /reset               reads the request, then closes with SO_LINGER 0 (RST), no response
  /slow?ms=M           sleeps M ms, then 200 with HELLO_BODY
HEAD works on every GET route: same head, no body.
"""

import hashlib
import base64
import socket
import ssl
import struct
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HELLO_BODY = b"hello, world\n"
CHUNKS = [b"first\n", b"second chunk\n", b"third\n"]
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def item_body(n):
    """Body of /items/<n>: 10 + n bytes, so every item's size names it."""
    return (b"item %d:" % n).ljust(10 + n, b"x")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, pipelining and 100-continue
    server_version = "ztest/1.0"
    disable_nagle_algorithm = True  # header and body writes must not wait for delayed ACKs

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()  # in the handler's thread, not the accept loop
        super().setup()

    # --- helpers -------------------------------------------------------------------------

    def reply(self, status, body=b"", headers=(), length=True):
        """Writes the whole response in one write (HEAD: the head only)."""
        head = ["HTTP/1.1 %d %s\r\n" % (status, self.responses.get(status, ("",))[0]),
                "Server: %s\r\n" % self.server_version,
                "Date: %s\r\n" % self.date_time_string()]
        for k, v in headers:
            head.append("%s: %s\r\n" % (k, v))
        if length:
            head.append("Content-Length: %d\r\n" % len(body))
        head.append("\r\n")
        out = "".join(head).encode("latin-1")
        if self.command != "HEAD":
            out += body
        self.wfile.write(out)

    def query(self):
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}

    def route(self):
        return urlsplit(self.path).path

    # --- routes --------------------------------------------------------------------------

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.route()
        q = self.query()
        if path == "/hello":
            self.reply(200, HELLO_BODY, [("Content-Type", "text/plain")])
        elif path.startswith("/items/") and path[len("/items/"):].isdigit():
            self.reply(int(q.get("status", "200")), item_body(int(path[len("/items/"):])))
        elif path == "/chunked":
            self.send_chunked()
        elif path == "/nocontent":
            self.reply(204, length=False)
        elif path == "/notmodified":
            # RFC 9110 8.6: a 304 may carry the length of the body it does not send.
            self.reply(304, length=False,
                       headers=[("ETag", '"v1"'), ("Content-Length", str(len(HELLO_BODY)))])
        elif path == "/big":
            self.send_big(int(q.get("n", "0")))
        elif path == "/close":
            self.close_connection = True
            self.reply(200, b"closing body, framed by the end of the connection\n",
                       [("Connection", "close")], length=False)
        elif path == "/error":
            self.reply(500, b"internal error\n")
        elif path == "/ws":
            self.upgrade_websocket()
        elif path == "/reset":
            self.reset()
        elif path == "/slow":
            time.sleep(int(q.get("ms", "100")) / 1000.0)
            self.reply(200, HELLO_BODY)
        else:
            self.reply(404, b"not found\n")

    def do_POST(self):
        if self.route() != "/upload":
            self.drain_body()
            self.reply(404, b"not found\n")
            return
        count = self.drain_body()
        self.reply(200, b"%d\n" % count)

    # --- framing variants ----------------------------------------------------------------

    def send_chunked(self):
        self.wfile.write(("HTTP/1.1 200 OK\r\nServer: %s\r\nTransfer-Encoding: chunked\r\n"
                          "Trailer: X-Checksum\r\n\r\n" % self.server_version).encode())
        if self.command == "HEAD":
            return
        for c in CHUNKS:  # one write per chunk, as a streaming server would
            self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
        self.wfile.write(b"0\r\nX-Checksum: %s\r\n\r\n" %
                         hashlib.md5(b"".join(CHUNKS)).hexdigest().encode())

    def send_big(self, n):
        self.wfile.write(("HTTP/1.1 200 OK\r\nServer: %s\r\nContent-Length: %d\r\n\r\n" %
                          (self.server_version, n)).encode())
        if self.command == "HEAD":
            return
        piece = b"0123456789abcdef" * 4096
        while n > 0:
            chunk = piece[:min(n, len(piece))]
            self.wfile.write(chunk)
            n -= len(chunk)

    def drain_body(self):
        """Reads the request body (Content-Length or chunked); returns its decoded size."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return total
                total += len(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0"))
        got = 0
        while got < n:
            data = self.rfile.read(min(65536, n - got))
            if not data:
                break
            got += len(data)
        return got

    def upgrade_websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.wfile.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" %
                          accept).encode())
        self.close_connection = True
        # Not HTTP any more: echo whatever arrives until the peer closes.
        while True:
            data = self.rfile.read1(65536)
            if not data:
                return
            self.wfile.write(data)

    def reset(self):
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.wfile.close()
        self.connection.close()  # linger 0: RST instead of FIN, no response


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # bursts of parallel clients must not overflow the listen backlog

    tls = None  # ssl.SSLContext when serving HTTPS

    def handle_error(self, request, client_address):
        pass  # peers that vanish mid-response (killed clients, resets) are expected

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr


def main():
    args = sys.argv[1:]
    tls = None
    if "--tls" in args:
        at = args.index("--tls")
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args[at + 1], args[at + 2])
        del args[at:at + 3]
    port = int(args[0])
    host = args[1] if len(args) > 1 else "127.0.0.1"
    if ":" in host:
        Server.address_family = socket.AF_INET6
    Server.tls = tls
    server = Server((host, port), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

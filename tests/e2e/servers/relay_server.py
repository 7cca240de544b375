#!/usr/bin/python3
"""One hop of a call chain, for the two-namespace tests: GET /r/<id> calls the next hop (if any)
with GET /r/<id> on a new connection, in the handler's thread, then answers 200 with
"<name> <id>\\n" followed by the next hop's body (so the client sees the whole chain).

Usage: relay_server.py NAME HOST PORT [NEXT_HOST:NEXT_PORT]
Prints "ready" once it listens. One thread per connection; no trace headers are read or sent,
but each body line says which traceparent the request carried ("tp=-" when none), so a test
can see what the wire carried.
"""

import http.client
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    name = ""
    next_hop = None

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_GET(self):
        if not self.path.startswith("/r/"):
            self.reply(404, b"no such route\n")
            return
        rid = self.path[3:]
        body = b"%s %s tp=%s\n" % (self.name.encode(), rid.encode(),
                                   (self.headers.get("traceparent") or "-").encode())
        if self.next_hop:
            host, port = self.next_hop.rsplit(":", 1)
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            try:
                conn.request("GET", "/r/" + rid)
                resp = conn.getresponse()
                downstream = resp.read()
                if resp.status != 200:
                    self.reply(502, b"downstream %d\n" % resp.status)
                    return
                body += downstream
            except OSError as e:
                self.reply(502, ("downstream failed: %s\n" % e).encode())
                return
            finally:
                conn.close()
        self.reply(200, body)

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    Handler.name = sys.argv[1]
    Handler.next_hop = sys.argv[4] if len(sys.argv) > 4 else None
    server = ThreadingHTTPServer((sys.argv[2], int(sys.argv[3])), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

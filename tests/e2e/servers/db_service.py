#!/usr/bin/python3
"""A threaded HTTP service that queries PostgreSQL and Redis per request (e2e tests).

usage: db_service.py PORT PG_PORT REDIS_PORT   (prints "ready" once listening on 127.0.0.1)
ThreadingHTTPServer: one thread per connection; each thread has its own psycopg2 connection
and its own Redis connection. GET /order/<n> runs, on the request's thread,
"SELECT g FROM generate_series(1, n) g" (n rows) and then Redis "INCRBY order:<n> 1", so each
database call names the request it belongs to. Anything else is 404.
"""
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
import redis

PG_PORT = 0
REDIS_PORT = 0
local = threading.local()


def clients():
    if not hasattr(local, "pg"):
        local.pg = psycopg2.connect(host="127.0.0.1", port=PG_PORT, user="postgres",
                                    dbname="postgres")
        local.pg.autocommit = True
        local.redis = redis.Redis(host="127.0.0.1", port=REDIS_PORT)
    return local.pg, local.redis


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_GET(self):
        parts = self.path.split("/")
        if len(parts) != 3 or parts[1] != "order" or not parts[2].isdigit():
            self.send_error(404)
            return
        n = int(parts[2])
        pg, r = clients()
        with pg.cursor() as cur:
            cur.execute("SELECT g FROM generate_series(1, %s) g", (n,))
            rows = len(cur.fetchall())
        count = r.incr("order:%d" % n)
        body = b"%d %d\n" % (rows, count)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    global PG_PORT, REDIS_PORT
    port, PG_PORT, REDIS_PORT = (int(a) for a in sys.argv[1:4])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

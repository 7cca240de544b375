#!/usr/bin/python3
"""Browser-like client of the demo: places orders through GET /checkout and reports each one.

Usage: client.py --url http://127.0.0.1:PORT/checkout [--orders K] [--concurrency C]

Order i (1..K) is GET <url>?order=i&user=<one of a few names>, sent with a browser's
User-Agent, Accept headers and a session cookie over a keep-alive connection. With C > 1,
C threads each keep their own connection and take the next order as they finish one.
Prints one line per order as it completes, then a summary; exits 1 if any order failed
(a transport error or a status other than 200).
"""

import argparse
import http.client
import json
import queue
import secrets
import sys
import threading
import time
from urllib.parse import urlencode, urlsplit

USERS = ["alice", "bob", "carol", "dave", "erin"]
BROWSER_HEADERS = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.5",
    "Accept-Encoding": "gzip, deflate",
    "Upgrade-Insecure-Requests": "1",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "none",
}


class Browser:
    """One keep-alive connection, reopened after any error, as a browser tab would."""

    def __init__(self, host, port, timeout, cookie):
        self.host, self.port, self.timeout = host, port, timeout
        self.headers = dict(BROWSER_HEADERS, Cookie=cookie)
        self.conn = None

    def get(self, path):
        """Returns (status, body bytes); raises OSError or HTTPException on transport errors."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.conn.request("GET", path, headers=self.headers)
            resp = self.conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if resp.will_close:
            self.close()
        return resp.status, body

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def describe(order, user, status, latency_ms, body):
    """One report line; the request id comes from the frontend's JSON answer when present."""
    request_id = "-"
    try:
        request_id = json.loads(body).get("request_id") or "-"
    except (ValueError, AttributeError):
        pass
    return "order %d user=%s status=%s latency=%.1fms request_id=%s" % (
        order, user, status, latency_ms, request_id)


def main():
    parser = argparse.ArgumentParser(description="Browser-like client of the zerotrace demo.")
    parser.add_argument("--url", required=True, help="http://HOST:PORT/checkout")
    parser.add_argument("--orders", type=int, default=3, help="how many orders (default 3)")
    parser.add_argument("--concurrency", type=int, default=1, help="orders in flight at once")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per order")
    args = parser.parse_args()
    url = urlsplit(args.url)
    if url.scheme != "http" or not url.hostname:
        parser.error("--url must be http://HOST:PORT/PATH")
    cookie = "session=%s" % secrets.token_hex(16)

    todo = queue.Queue()
    for i in range(1, args.orders + 1):
        todo.put(i)
    lock = threading.Lock()
    failures = []

    def worker():
        browser = Browser(url.hostname, url.port or 80, args.timeout, cookie)
        while True:
            try:
                order = todo.get_nowait()
            except queue.Empty:
                break
            user = USERS[(order - 1) % len(USERS)]
            path = "%s?%s" % (url.path or "/", urlencode({"order": order, "user": user}))
            start = time.monotonic()
            try:
                status, body = browser.get(path)
            except (OSError, http.client.HTTPException) as e:
                status, body = "error(%s)" % (e or type(e).__name__), b""
            line = describe(order, user, status, (time.monotonic() - start) * 1e3, body)
            with lock:
                print(line, flush=True)
                if status != 200:
                    failures.append(order)
        browser.close()

    threads = [threading.Thread(target=worker) for _ in range(max(1, args.concurrency))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("%d/%d orders ok" % (args.orders - len(failures), args.orders), flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

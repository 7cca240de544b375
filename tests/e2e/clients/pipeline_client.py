#!/usr/bin/python3
"""Pipelining: writes N requests in ONE send, then reads the N responses in order.

Usage: pipeline_client.py PORT N
Requests are GET /items/i (i = 0..N-1) with the same status query as keepalive_client.py.
Prints "local_port P", then "done" once every response matched its request.
"""

import socket
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from keepalive_client import item_path, item_status


def read_response(f, has_body=True):
    """(status, body) of the next response; has_body=False for a HEAD request's answer, whose
    Content-Length announces a body that is not sent. Exits on a malformed or short answer."""
    status_line = f.readline()
    if not status_line.startswith(b"HTTP/1."):
        sys.exit("bad status line %r" % status_line)
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = f.read(length) if has_body else b""
    if has_body and len(body) != length:
        sys.exit("short body")
    return int(status_line.split()[1]), body


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    print("local_port %d" % sock.getsockname()[1], flush=True)
    batch = b"".join(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: zt-pipeline/1.0\r\n\r\n"
                     % (item_path(i).encode(), port) for i in range(n))
    if sock.send(batch) != len(batch):  # one write, so every request precedes every response
        sys.exit("short send")
    f = sock.makefile("rb")
    for i in range(n):
        status, body = read_response(f)
        if status != item_status(i) or not body.startswith(b"item %d:" % i) or len(body) != 10 + i:
            sys.exit("response %d does not answer request %d: %d %r" % (i, i, status, body[:20]))
    sock.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()

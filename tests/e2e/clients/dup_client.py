#!/usr/bin/python3
"""Sends GET /items/0 .. /items/N-1 on ONE connection that it first moves with dup2() onto
another fd (the fd connect() made is closed before the first request).

Usage: dup_client.py PORT N
Prints "local_port P", then "done" once every response matched its request.
"""

import os
import socket
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from keepalive_client import item_path, item_status

DUP_FD = 100


def read_response(f):
    status = int(f.readline().split()[1])
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, f.read(length)


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    first = socket.create_connection(("127.0.0.1", port))
    print("local_port %d" % first.getsockname()[1], flush=True)
    os.dup2(first.fileno(), DUP_FD)
    first.close()
    sock = socket.socket(fileno=DUP_FD)
    f = sock.makefile("rb")
    for i in range(n):
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: zt-dup/1.0\r\n\r\n"
                     % (item_path(i).encode(), port))
        status, body = read_response(f)
        if status != item_status(i) or len(body) != 10 + i:
            sys.exit("bad answer to %s: %d, %d bytes" % (item_path(i), status, len(body)))
    f.close()
    sock.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()

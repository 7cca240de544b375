#!/usr/bin/python3
"""Requests on ONE keep-alive connection, in steps the test drives from stdin.

Usage: stepped_client.py [--tls CAFILE] PORT   (--tls: HTTPS, python's ssl module: libssl)
Sends GET /r/1 at once and prints "response 1" once its response is complete. Then, per
line "N" on stdin, sends the next N requests one after another (/r/2, /r/3, ...), printing
"response K" for each; per line "P N", sends the next N requests in one write (pipelined),
then reads their N responses. Exits at EOF on stdin.
"""

import socket
import ssl
import sys


def read_response(s, buf):
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, v = line.split(b":", 1)
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(rest) < length:
        rest += s.recv(65536)
    return rest[length:]


def main():
    argv = sys.argv[1:]
    tls = None
    if argv[0] == "--tls":
        tls = ssl.create_default_context(cafile=argv[1])
        argv = argv[2:]
    s = socket.create_connection(("127.0.0.1", int(argv[0])))
    if tls:
        s = tls.wrap_socket(s, server_hostname="127.0.0.1")
    buf = b""
    n = 1
    s.sendall(b"GET /r/1 HTTP/1.1\r\nHost: x\r\n\r\n")
    print("sent 1", flush=True)
    buf = read_response(s, buf)
    print("response 1", flush=True)
    for line in sys.stdin:
        if line.startswith("P "):
            first, count = n + 1, int(line[2:])
            n += count
            s.sendall(b"".join(b"GET /r/%d HTTP/1.1\r\nHost: x\r\n\r\n" % k
                               for k in range(first, n + 1)))
            for k in range(first, n + 1):
                buf = read_response(s, buf)
                print("response %d" % k, flush=True)
            continue
        for _ in range(int(line)):
            n += 1
            s.sendall(b"GET /r/%d HTTP/1.1\r\nHost: x\r\n\r\n" % n)
            buf = read_response(s, buf)
            print("response %d" % n, flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""A keep-alive HTTP/1.1 server on one connection whose first response the test paces.

Usage: stepped_server.py PORT MODE
  MODE split:  the first response's head and half of its body go at once; the other half
               when a line arrives on stdin ("go"). The agent can start in between.
  MODE whole:  every response goes at once (a thread then blocks reading the next request).

Request /r/N is answered 200 with a body of 10 + N bytes, so a span's body size tells which
request it answers. Prints "listening", then "served N" per response sent in full.
"""

import socket
import sys


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1)
    print("listening", flush=True)
    conn, _ = ls.accept()
    buf = b""
    first = True
    while True:
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(65536)  # a thread-per-connection server blocks here
            if not chunk:
                return
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        n = int(head.split(b" ")[1].rsplit(b"/", 1)[1])
        body = b"b" * (10 + n)
        resp = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        if first and mode == "split":
            cut = len(resp) - len(body) // 2
            conn.sendall(resp[:cut])
            sys.stdin.readline()  # the test starts the agent, then says go
            conn.sendall(resp[cut:])
        else:
            conn.sendall(resp)
        first = False
        print("served %d" % n, flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""A keep-alive HTTP/1.1 server on one connection whose first response the test paces.

Usage: stepped_server.py [--tls CERT KEY] PORT MODE [BODY_BASE [PAD_FROM]]
  MODE split:  the first response's head and half of its body go at once; the other half
               when a line arrives on stdin ("go"). The agent can start in between.
  MODE whole:  every response goes at once (a thread then blocks reading the next request).

Request /r/N is answered 200 with a body of BODY_BASE (default 10) + N bytes, so a span's body
size tells which request it answers. From request PAD_FROM on, the head also carries a
1000-byte X-Pad field. With --tls it speaks HTTPS (python's ssl module: libssl). Prints
"listening", then "served N" per response sent in full.
"""

import socket
import ssl
import sys


def main():
    argv = sys.argv[1:]
    tls = None
    if argv[0] == "--tls":
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(argv[1], argv[2])
        argv = argv[3:]
    port, mode = int(argv[0]), argv[1]
    body_base = int(argv[2]) if len(argv) > 2 else 10
    pad_from = int(argv[3]) if len(argv) > 3 else 0
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1)
    print("listening", flush=True)
    conn, _ = ls.accept()
    if tls:
        conn = tls.wrap_socket(conn, server_side=True)
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
        body = b"b" * (body_base + n)
        pad = b"X-Pad: %s\r\n" % (b"p" * 1000) if pad_from and n >= pad_from else b""
        resp = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), pad) + body
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

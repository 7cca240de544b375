#!/usr/bin/python3
"""HTTPS requests over a NON-BLOCKING ssl socket: reads and writes that would block fail with
SSLWantReadError/SSLWantWriteError (SSL_read returning <= 0) and are retried after select().

Usage: nonblocking_tls_client.py PORT CAFILE N
Sends GET /items/0 .. /items/N-1 on one keep-alive connection, one at a time.
Prints "local_port P", then "STATUS BODY_BYTES" per response, then "done".
"""

import select
import socket
import ssl
import sys


def wait(sock, for_write):
    select.select([], [sock], [], 10) if for_write else select.select([sock], [], [], 10)


def send_all(sock, data):
    while data:
        try:
            n = sock.send(data)
            data = data[n:]
        except ssl.SSLWantWriteError:
            wait(sock, True)
        except ssl.SSLWantReadError:
            wait(sock, False)


def recv_some(sock):
    while True:
        try:
            data = sock.recv(16384)
            if not data:
                raise EOFError("server closed")
            return data
        except ssl.SSLWantReadError:
            wait(sock, False)
        except ssl.SSLWantWriteError:
            wait(sock, True)


def main():
    port, cafile, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    ctx = ssl.create_default_context(cafile=cafile)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")  # blocking handshake
    sock.setblocking(False)
    print("local_port %d" % sock.getsockname()[1], flush=True)
    buf = b""
    for i in range(n):
        send_all(sock, b"GET /items/%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                       b"User-Agent: zt-nonblocking/1.0\r\n\r\n" % (i, port))
        while b"\r\n\r\n" not in buf:
            buf += recv_some(sock)
        head, _, buf = buf.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1])
        length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                     [0].split(b":")[1])
        while len(buf) < length:
            buf += recv_some(sock)
        buf = buf[length:]
        print("%d %d" % (status, length), flush=True)
    sock.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()

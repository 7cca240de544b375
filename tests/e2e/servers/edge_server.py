#!/usr/bin/python3
"""A keep-alive HTTP/1.1 server over raw sockets that reads and writes in unusual ways.

Usage: edge_server.py PORT MODE
  peek        peeks (recv MSG_PEEK) at the queued bytes before each read, as Envoy's inspectors do
  splice      takes each request body out of the socket with splice() into a pipe, and writes
              its response body with splice() from a pipe (heads use recv/send)
  dup         serves each connection on a dup2()'d copy of its fd (the accepted fd is closed)
Routes: GET or POST /items/<n>[?status=S]: status S (default 200), body item_body(n) (10 + n bytes).
Prints "ready" once it listens; serves one connection at a time until the process is killed.
"""

import os
import socket
import sys

REASONS = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}
DUP_FD = 200  # where "dup" moves each accepted connection


def item_body(n):
    return (b"item %d:" % n).ljust(10 + n, b"x")


def response_to(head):
    """(status line and headers, body) for a request head."""
    target = head.split(b" ")[1].decode()
    path, _, query = target.partition("?")
    status = int(query.split("status=")[1]) if "status=" in query else 200
    body = item_body(int(path[len("/items/"):]))
    return b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\n\r\n" % (
        status, REASONS[status].encode(), len(body)), body


def content_length(head):
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def next_head(conn, mode, buf):
    """Reads until a whole request head is in buf; returns (head, rest) or None."""
    while b"\r\n\r\n" not in buf:
        if mode in ("peek", "splice"):
            peeked = conn.recv(65536, socket.MSG_PEEK)  # seen, left queued
            if not peeked:
                return None
            if mode == "splice":  # take exactly the head: its body is spliced
                end = peeked.find(b"\r\n\r\n")
                data = conn.recv(end + 4 if end >= 0 else len(peeked))
                buf += data
                continue
        data = conn.recv(65536)
        if not data:
            return None
        buf += data
    end = buf.index(b"\r\n\r\n") + 4
    return buf[:end], buf[end:]


def splice_in(conn, n):
    """n body bytes taken from the socket by splice() through a pipe."""
    r, w = os.pipe()
    try:
        got = b""
        while len(got) < n:
            moved = os.splice(conn.fileno(), w, n - len(got))
            if moved == 0:
                raise ConnectionError("EOF in a body")
            got += os.read(r, moved)
        return got
    finally:
        os.close(r)
        os.close(w)


def splice_out(conn, data):
    """data written into the socket by splice() from a pipe."""
    r, w = os.pipe()
    try:
        os.write(w, data)
        sent = 0
        while sent < len(data):
            sent += os.splice(r, conn.fileno(), len(data) - sent)
    finally:
        os.close(r)
        os.close(w)


def serve(conn, mode):
    buf = b""
    while True:
        got = next_head(conn, mode, buf)
        if got is None:
            return
        head, buf = got
        status_and_headers, body = response_to(head)
        length = content_length(head)
        if mode == "splice" and length:  # the body both ways through a pipe, as proxies do
            splice_in(conn, length)
            conn.sendall(status_and_headers)
            splice_out(conn, body)
        else:
            conn.sendall(status_and_headers + body)


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(16)
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if mode == "dup":
            os.dup2(conn.fileno(), DUP_FD)
            conn.close()
            conn = socket.socket(fileno=DUP_FD)
        try:
            serve(conn, mode)
        except ConnectionError:
            pass
        conn.close()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Upgrades to websocket, then sends bytes that look like HTTP through the tunnel.

Usage: websocket_client.py PORT PATH
After the 101 it sends a masked text frame, an HTTP request and an HTTP response (raw bytes,
which the server echoes), so a tracer that kept parsing HTTP would report extra exchanges.
Prints "local_port P", then "done" once the echo came back.
"""

import base64
import hashlib
import os
import socket
import sys

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TUNNEL_BYTES = (
    b"\x81\x85\x01\x02\x03\x04" + bytes(b ^ m for b, m in zip(b"hello", b"\x01\x02\x03\x04\x01")) +
    b"GET /inside-websocket HTTP/1.1\r\nHost: x\r\n\r\n" +
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    key = base64.b64encode(os.urandom(16)).decode()
    sock = socket.create_connection(("127.0.0.1", port))
    print("local_port %d" % sock.getsockname()[1], flush=True)
    sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: zt-websocket/1.0\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n" % (path, port, key)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(1)
        if not data:
            sys.exit("closed before the 101")
        head += data
    expect = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest())
    if not head.startswith(b"HTTP/1.1 101 ") or expect not in head:
        sys.exit("bad upgrade answer: %r" % head)
    sock.sendall(TUNNEL_BYTES)
    echoed = b""
    while len(echoed) < len(TUNNEL_BYTES):
        data = sock.recv(65536)
        if not data:
            break
        echoed += data
    if echoed != TUNNEL_BYTES:
        sys.exit("echo mismatch: %r" % echoed)
    sock.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()

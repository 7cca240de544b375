#!/usr/bin/python3
"""Sends one GET, reads part of the answer, then waits to be killed (or exits abruptly).

Usage: killed_client.py PORT PATH BYTES [--exit]
Prints "local_port P", then "half" once BYTES response bytes arrived (BYTES 0: right after
sending). Then sleeps until SIGKILL, or with --exit leaves through os._exit (no close()).
"""

import os
import socket
import sys
import time


def main():
    port, path, want = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # keep the server mid-write
    print("local_port %d" % sock.getsockname()[1], flush=True)
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: zt-killed/1.0\r\n\r\n"
                 % (path.encode(), port))
    got = 0
    while got < want:
        data = sock.recv(min(65536, want - got))
        if not data:
            sys.exit("server closed after %d bytes" % got)
        got += len(data)
    print("half", flush=True)
    if "--exit" in sys.argv:
        os._exit(0)
    time.sleep(3600)


if __name__ == "__main__":
    main()

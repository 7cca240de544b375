#!/usr/bin/python3
"""One GET per NEW connection, in steps the test drives from stdin, under a chosen name.

Usage: new_conn_client.py PORT NAME
Sets its process name (/proc/self/comm) to NAME, then GETs /c/1 on a new connection and
prints "response 1". Per line "N" on stdin it makes N more requests, each on a new
connection, printing "response K" for each. Exits at "q" or EOF.
"""

import ctypes
import socket
import sys


def get(port, k):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /c/%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % k)
        while s.recv(65536):
            pass
    print("response %d" % k, flush=True)


def main():
    port, name = int(sys.argv[1]), sys.argv[2].encode()
    ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name), 0, 0, 0)  # PR_SET_NAME
    k = 1
    get(port, k)
    for line in sys.stdin:
        if line.strip() == "q":
            break
        for _ in range(int(line)):
            k += 1
            get(port, k)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Sends request lines as given (any method token, raw target bytes), one connection each.

Usage: request_line_client.py PORT LINE...
  LINE  "METHOD TARGET" with \\xNN escapes for raw bytes, e.g. "QUERY /search" or "GET /caf\\xc3\\xa9"
Each goes as "LINE HTTP/1.1" with Host and Connection: close; the response is read to the end.
Prints "local_port P" per connection, then "status CODE" per response, then "done".
"""

import socket
import sys


def main():
    port = int(sys.argv[1])
    for line in sys.argv[2:]:
        raw = line.encode("latin-1").decode("unicode_escape").encode("latin-1")
        sock = socket.create_connection(("127.0.0.1", port))
        print("local_port %d" % sock.getsockname()[1], flush=True)
        sock.sendall(raw + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        got = b""
        sock.settimeout(10)
        while True:
            data = sock.recv(65536)
            if not data:
                break
            got += data
        sock.close()
        print("status %s" % got.split(b" ", 2)[1].decode(), flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main()

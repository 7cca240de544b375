#!/usr/bin/python3
"""Sends bytes that are not a (complete) HTTP request, then reads until the server closes.

Usage: raw_client.py PORT MODE
  garbage            binary bytes (a TLS-like prefix, then every byte value) and a blank line
  truncated-line     half a request line: "GET /items/1", then end of stream
  truncated-headers  a request line and part of the header block, then end of stream
Prints "local_port P", then "done BYTES" with the number of bytes the server sent back.
"""

import socket
import sys

PAYLOADS = {
    "garbage": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(256)) + b"\r\n\r\n",
    "truncated-line": b"GET /items/1",
    "truncated-headers": b"GET /items/2 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Ag",
}


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    sock = socket.create_connection(("127.0.0.1", port))
    print("local_port %d" % sock.getsockname()[1], flush=True)
    sock.sendall(PAYLOADS[mode])
    sock.shutdown(socket.SHUT_WR)  # the request ends here
    got = 0
    sock.settimeout(10)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            got += len(data)
    except ConnectionResetError:
        pass
    sock.close()
    print("done %d" % got, flush=True)


if __name__ == "__main__":
    main()

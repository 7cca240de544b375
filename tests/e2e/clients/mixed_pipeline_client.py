#!/usr/bin/python3
"""Pipelining with HEAD: writes GET and HEAD requests for PATHs in ONE send, then reads the
responses in order (a HEAD response has a Content-Length but no body).

Usage: mixed_pipeline_client.py PORT METHOD:PATH ...
Prints "local_port P", then "METHOD PATH STATUS BODY_BYTES" per response, then "done".
Exits 1 on a short or malformed answer.
"""

import socket
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from pipeline_client import read_response


def main():
    port = int(sys.argv[1])
    specs = [a.split(":", 1) for a in sys.argv[2:]]
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    print("local_port %d" % sock.getsockname()[1], flush=True)
    reqs = b"".join(b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: zt-pipeline/1.0\r\n\r\n"
                    % (m.encode(), p.encode()) for m, p in specs)
    sock.sendall(reqs)
    f = sock.makefile("rb")
    out = []
    for m, p in specs:
        status, body = read_response(f, has_body=m != "HEAD")
        out.append("%s %s %d %d" % (m, p, status, len(body)))
    print("\n".join(out), flush=True)
    sock.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Sends requests one after another on ONE keep-alive connection (http.client).

Usage: keepalive_client.py PORT [--tls CAFILE] [--items N] [SPEC ...]
  --tls CAFILE  speak HTTPS (python's ssl module), trusting the certificates in CAFILE
  SPEC       METHOD:PATH or METHOD:PATH:BODY_BYTES (e.g. HEAD:/hello, POST:/upload:40960)
  --items N  then GET /items/0 .. /items/N-1, with a status query as item_path(i) says
  --expect-continue  requests with a body carry "Expect: 100-continue"

Prints "local_port P", then "METHOD PATH STATUS BODY_BYTES" per request, then "done".
Exits 1 if the connection was not reused or an /items response is not the expected one.
"""

import http.client
import ssl
import sys


def item_status(i):
    """The status the e2e tests ask /items/<i> for (the C++ side mirrors this)."""
    return {3: 404, 7: 503}.get(i % 10, 200)


def item_path(i):
    s = item_status(i)
    return "/items/%d" % i if s == 200 else "/items/%d?status=%d" % (i, s)


def main():
    port = int(sys.argv[1])
    args = sys.argv[2:]
    specs = []
    expect_continue = False
    tls = None
    while args:
        a = args.pop(0)
        if a == "--tls":
            tls = ssl.create_default_context(cafile=args.pop(0))
        elif a == "--expect-continue":
            expect_continue = True
        elif a == "--items":
            specs += [("GET", item_path(i), None) for i in range(int(args.pop(0)))]
        else:
            parts = a.split(":")
            specs.append((parts[0], parts[1], int(parts[2]) if len(parts) > 2 else None))

    if tls is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=20, context=tls)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.connect()
    sock = conn.sock
    print("local_port %d" % sock.getsockname()[1], flush=True)
    out = []
    for method, path, body_len in specs:
        body = b"u" * body_len if body_len is not None else None
        headers = {"User-Agent": "zt-keepalive/1.0"}
        if expect_continue and body is not None:
            headers["Expect"] = "100-continue"
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if conn.sock is not sock:
            print("connection was not reused before %s %s" % (method, path), file=sys.stderr)
            sys.exit(1)
        if path.startswith("/items/"):
            n = int(path[len("/items/"):].split("?")[0])
            status = int(path.split("status=")[1]) if "status=" in path else 200
            if resp.status != status or len(data) != 10 + n:
                print("bad answer to %s: %d, %d bytes" % (path, resp.status, len(data)),
                      file=sys.stderr)
                sys.exit(1)
        out.append("%s %s %d %d" % (method, path, resp.status, len(data)))
    print("\n".join(out), flush=True)
    conn.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()

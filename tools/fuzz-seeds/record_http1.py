#!/usr/bin/python3
"""Records real HTTP/1 traffic (curl, python, node against python's http.server) through a
loopback proxy, and writes each connection as a seed for tests/fuzz/protocols/http1's raw
target, in the FuzzedDataProvider layout RunRaw reads.

Usage: record_http1.py OUT_DIR
"""

import http.server
import os
import socket
import socketserver
import subprocess
import sys
import threading


def fdp_seed(records):
    """records: [(direction 0 request / 1 response, bytes)]. RunRaw takes per record: an op
    (0..7, from the end; op & 1 is the direction, < 6 means data), a time step (0..100, end),
    the bytes (ConsumeRandomLengthString from the front: backslashes doubled, "\\" + other
    byte ends it), then an expire choice (0..31, end; 1 means no expiry)."""
    front, tail = b"", b""
    for direction, data in records:
        for i in range(0, len(data), 300):  # ConsumeRandomLengthString(300)
            chunk = data[i:i + 300]
            front += chunk.replace(b"\\", b"\\\\") + b"\\x"
            tail = bytes([1]) + bytes([10]) + bytes([direction]) + tail  # read backwards
    return front + tail


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        last = self.path.split("?")[0].rsplit("/", 1)[-1]
        body = b"x" * (int(last) if last.isdigit() else 5)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        self.rfile.read(n)
        self.send_response(201)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(b"5\r\nhello\r\n0\r\n\r\n")

    def log_message(self, *args):
        pass


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = socket.socket()
    proxy.bind(("127.0.0.1", 0))
    proxy.listen(16)
    port = proxy.getsockname()[1]
    sessions = []

    def relay():
        while True:
            client, _ = proxy.accept()
            upstream = socket.create_connection(server.server_address)
            records = []
            sessions.append(records)
            lock = threading.Lock()

            def pump(src, dst, direction):
                while True:
                    data = src.recv(65536)
                    if not data:
                        dst.shutdown(socket.SHUT_WR)
                        return
                    with lock:
                        records.append((direction, data))
                    dst.sendall(data)

            threading.Thread(target=pump, args=(client, upstream, 0), daemon=True).start()
            threading.Thread(target=pump, args=(upstream, client, 1), daemon=True).start()

    threading.Thread(target=relay, daemon=True).start()
    base = "http://127.0.0.1:%d" % port
    runs = [
        ["curl", "-s", "-o", "/dev/null", base + "/a/3", base + "/b?x=1&y=2"],
        ["curl", "-s", "-o", "/dev/null", "-X", "POST", "-d", "payload=1", base + "/post"],
        ["curl", "-s", "-o", "/dev/null", "-I", base + "/head/7"],
        ["curl", "-s", "-o", "/dev/null", "-H", "Cookie: a=" + "c" * 400, base + "/cookie/2"],
        ["/usr/bin/python3", "-c", "import http.client as h; c=h.HTTPConnection('127.0.0.1',%d);"
         "[ (c.request('GET','/p/%%d'%%i), c.getresponse().read()) for i in range(4)]" % port],
        ["node", "-e", "const h=require('http');const a=new h.Agent({keepAlive:true});"
         "let n=0;const go=()=>h.get('%s/n/'+n,{agent:a},r=>{r.resume();"
         "r.on('end',()=>{if(++n<3)go();else a.destroy();});});go();" % base],
    ]
    for argv in runs:
        subprocess.run(argv, timeout=20, check=False)
    for i, records in enumerate(sessions):
        if records:
            with open(os.path.join(out, "real-%02d" % i), "wb") as f:
                f.write(fdp_seed(records))
    print("%d seeds" % len([s for s in sessions if s]))


if __name__ == "__main__":
    main()

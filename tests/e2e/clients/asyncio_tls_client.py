#!/usr/bin/python3
"""HTTPS over asyncio streams: python's SSLObject runs OpenSSL over memory BIOs, so its
SSL_read_ex/SSL_write_ex make no socket syscalls (the event loop's recv/send do).

Usage: asyncio_tls_client.py PORT CAFILE N
GETs /items/0 .. /items/N-1 (status queries as keepalive_client.item_path) on ONE connection.
Prints "local_port P", then "STATUS BODY_BYTES" per request, then "done"; exits 1 when a
response is not the expected one.
"""

import asyncio
import ssl
import sys


def item_status(i):
    return {3: 404, 7: 503}.get(i % 10, 200)


def item_path(i):
    s = item_status(i)
    return "/items/%d" % i if s == 200 else "/items/%d?status=%d" % (i, s)


async def main(port, cafile, n):
    ctx = ssl.create_default_context(cafile=cafile)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    print("local_port %d" % writer.get_extra_info("sockname")[1], flush=True)
    for i in range(n):
        writer.write(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: zt-asyncio/1.0\r\n"
                      "Accept: */*\r\n\r\n" % (item_path(i), port)).encode())
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        length = 0
        for line in head[1:]:
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        body = await reader.readexactly(length)
        if status != item_status(i) or len(body) != 10 + i:
            print("unexpected response to item %d: %d %d" % (i, status, len(body)))
            return 1
        print("%d %d" % (status, len(body)), flush=True)
    writer.close()
    await writer.wait_closed()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]))))

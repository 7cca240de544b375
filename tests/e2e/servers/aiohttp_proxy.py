"""Reverse proxy on python asyncio (aiohttp) for the e2e tests.

Usage: python3 aiohttp_proxy.py PORT UPSTREAM_PORT
  (listens on 127.0.0.1:PORT, prints "ready" once listening, exits with 0 on SIGTERM)
  GET /api/<rest>  forwarded as GET /<rest> to 127.0.0.1:UPSTREAM_PORT over a keep-alive pool of
                   at most 8 connections, no header copied; answered with the upstream's status
                   and body, or 502 if the call fails.
  anything else    404
"""
import asyncio
import signal
import sys

from aiohttp import ClientSession, TCPConnector, web


async def main(port, upstream_port):
    session = ClientSession(connector=TCPConnector(limit=8))

    async def forward(request):
        rest = request.path_qs[len("/api"):]
        try:
            async with session.get(f"http://127.0.0.1:{upstream_port}{rest}") as up:
                return web.Response(status=up.status, body=await up.read())
        except Exception:  # the upstream failed: the client is told so
            return web.Response(status=502)

    app = web.Application()
    app.router.add_get("/api/{rest:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await session.close()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))

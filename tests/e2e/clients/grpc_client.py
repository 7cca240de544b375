"""A gRPC client over h2c (generic stubs, no generated code) for the HTTP/2 e2e tests.

Usage: grpc_client.py PORT [CMD...]. Runs each CMD on one channel (one connection), printing
"done CMD CODE" after each; with no CMD it reads them from stdin, one a line, so a test can
pause it between calls. CMDs: echo, fail, count:N, big:N, sum:N, slow:MS (the server sleeps MS
milliseconds; the call's deadline is 200 ms), relay:PORT (the server calls Echo on PORT),
call:METHOD:ARG (unary zt.test.Echo/METHOD with ARG; "+rid=V" and "+tp=V" at its end send V as
x-request-id or traceparent metadata), sync:PORT:K:N (waits, at most 10 s, until N calls wait in
the gather of K calls of the server on PORT: see grpc_server.py).
With --parallel before the CMDs, each call starts without waiting for the ones before it (a
sync still waits), each on a connection of its own (grpcio writes the HEADERS of calls started
together on one connection in one sendmsg of ~23 iovecs each, past what the agent captures:
see the README); "done" lines come in CMD order once all are done.
"""
import sys
import time

import grpc


def run(channel, cmd, parallel=False):
    name, _, arg = cmd.partition(":")
    try:
        if name == "echo":
            channel.unary_unary("/zt.test.Echo/Echo")(b"hello", timeout=10)
        elif name == "fail":
            channel.unary_unary("/zt.test.Echo/Echo")(b"fail please", timeout=10)
        elif name == "big":
            reply = channel.unary_unary("/zt.test.Echo/Big")(arg.encode(), timeout=10)
            assert len(reply) == int(arg)
        elif name == "slow":
            channel.unary_unary("/zt.test.Echo/Slow")(arg.encode(), timeout=0.2)
        elif name == "relay":
            assert channel.unary_unary("/zt.test.Echo/Relay")(arg.encode(), timeout=10) == b"relayed"
        elif name == "count":
            replies = list(channel.unary_stream("/zt.test.Echo/Count")(arg.encode(), timeout=10))
            assert len(replies) == int(arg)
        elif name == "call":
            method, _, arg = arg.partition(":")
            arg, *extra = arg.split("+")
            meta = tuple(("x-request-id" if k == "rid" else "traceparent", v)
                         for k, _, v in (e.partition("=") for e in extra))
            call = channel.unary_unary("/zt.test.Echo/" + method)
            if parallel:
                return call.future(arg.encode(), timeout=15, metadata=meta)
            call(arg.encode(), timeout=15, metadata=meta)
        elif name == "sync":
            port, k, n = arg.split(":")
            with grpc.insecure_channel("127.0.0.1:" + port) as other:
                waiting = other.unary_unary("/zt.test.Echo/Gather")
                deadline = time.monotonic() + 10
                while waiting(b"waiting:" + k.encode(), timeout=10) != n.encode():
                    if time.monotonic() > deadline:
                        return "SYNC_TIMEOUT"
                    time.sleep(0.02)
        elif name == "sum":
            channel.stream_unary("/zt.test.Echo/Sum")(iter([b"x"] * int(arg)), timeout=10)
        else:
            raise SystemExit("unknown command " + cmd)
        return "OK"
    except grpc.RpcError as e:
        return e.code().name


def main():
    port = int(sys.argv[1])
    opts = [("grpc.max_send_message_length", 16 << 20),
            ("grpc.max_receive_message_length", 16 << 20)]
    with grpc.insecure_channel("127.0.0.1:%d" % port, options=opts) as channel:
        cmds = sys.argv[2:]
        if cmds and cmds[0] == "--parallel":
            own = opts + [("grpc.use_local_subchannel_pool", 1)]
            channels = [grpc.insecure_channel("127.0.0.1:%d" % port, options=own) for _ in cmds]
            started = [(cmd, run(c, cmd, parallel=True)) for c, cmd in zip(channels, cmds[1:])]
            for cmd, result in started:
                if not isinstance(result, str):
                    try:
                        result.result()
                        result = "OK"
                    except grpc.RpcError as e:
                        result = e.code().name
                print("done", cmd, result, flush=True)
            for c in channels:
                c.close()
            return
        if cmds:
            for cmd in cmds:
                print("done", cmd, run(channel, cmd), flush=True)
            return
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "quit":
                break
            print("done", cmd, run(channel, cmd), flush=True)


if __name__ == "__main__":
    main()

"""A gRPC client over h2c (generic stubs, no generated code) for the HTTP/2 e2e tests.

Usage: grpc_client.py PORT [CMD...]. Runs each CMD on one channel (one connection), printing
"done CMD CODE" after each; with no CMD it reads them from stdin, one a line, so a test can
pause it between calls. CMDs: echo, fail, count:N, big:N, sum:N, slow:MS (the server sleeps MS
milliseconds; the call's deadline is 200 ms), relay:PORT (the server calls Echo on PORT).
"""
import sys

import grpc


def run(channel, cmd):
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

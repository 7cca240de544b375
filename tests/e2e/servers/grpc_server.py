"""A gRPC server over h2c with generic handlers (no generated code), for the HTTP/2 e2e tests.

Service zt.test.Echo: Echo (unary; a request starting with b"fail" is aborted with NOT_FOUND,
"no such key"), Big (unary; answers the number of bytes the request names, in one message),
Count (server streaming; answers that many messages), Sum (client streaming), Slow (unary;
sleeps the milliseconds the request names, then echoes it), Relay (unary; calls Echo on the
server at the port the request names, from the handler's thread, and answers its reply).
Prints "ready".
"""
import sys
import time
from concurrent import futures

import grpc


def echo(request, context):
    if request.startswith(b"fail"):
        context.abort(grpc.StatusCode.NOT_FOUND, "no such key")
    return request


def big(request, context):
    return b"b" * int(request)


def slow(request, context):
    time.sleep(int(request) / 1000.0)
    return request


def relay(request, context):
    with grpc.insecure_channel("127.0.0.1:%d" % int(request)) as channel:
        return channel.unary_unary("/zt.test.Echo/Echo")(b"relayed", timeout=10)


def count(request, context):
    for i in range(int(request)):
        yield b"m%d" % i


def total(request_iterator, context):
    return b"%d" % sum(len(r) for r in request_iterator)


def main():
    port = int(sys.argv[1])
    handler = grpc.method_handlers_generic_handler("zt.test.Echo", {
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "Big": grpc.unary_unary_rpc_method_handler(big),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
        "Relay": grpc.unary_unary_rpc_method_handler(relay),
        "Count": grpc.unary_stream_rpc_method_handler(count),
        "Sum": grpc.stream_unary_rpc_method_handler(total),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                         options=[("grpc.max_send_message_length", 16 << 20),
                                  ("grpc.max_receive_message_length", 16 << 20)])
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port("127.0.0.1:%d" % port)
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()

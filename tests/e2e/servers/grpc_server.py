"""A gRPC server over h2c with generic handlers (no generated code), for the HTTP/2 e2e tests.

Service zt.test.Echo: Echo (unary; a request starting with b"fail" is aborted with NOT_FOUND,
"no such key"), Big (unary; answers the number of bytes the request names, in one message),
Count (server streaming; answers that many messages), Sum (client streaming), Slow (unary;
sleeps the milliseconds the request names, then echoes it), Relay (unary; calls Echo on the
server at the port the request names, from the handler's thread, and answers its reply).
For the linking tests, any method named by a prefix and a suffix (Relay3, Gather3, Forward3):
  RelayN: the request is "PORT/METHOD/ARG": calls METHOD on PORT with ARG.
  ForwardN: the request is "PORT/ARG": calls ForwardN (the same method) on PORT with ARG; any
    other request is answered here, as GatherN answers it.
  GatherN: "gather:K" waits until K calls wait at once (at most 10 s), then answers; "waiting:K"
    answers how many calls wait for K now.
Relay and Forward pass on the x-request-id and traceparent metadata they were given.
Prints "ready".
"""
import sys
import threading
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


_barriers = {}
_barriers_lock = threading.Lock()


def gather(request, context):
    kind, _, k = request.decode().partition(":")
    with _barriers_lock:
        barrier = _barriers.setdefault(int(k), threading.Barrier(int(k)))
    if kind == "waiting":
        return b"%d" % barrier.n_waiting
    try:
        barrier.wait(timeout=10)
    except threading.BrokenBarrierError:
        context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "too few calls gathered")
    return b"gathered"


def call_out(port, method, arg, context):
    passed = tuple((k, v) for k, v in context.invocation_metadata()
                   if k in ("x-request-id", "traceparent"))
    # A connection of its own (see grpc_client.py's --parallel).
    with grpc.insecure_channel("127.0.0.1:%d" % int(port),
                               options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        return channel.unary_unary("/zt.test.Echo/" + method)(arg, timeout=10, metadata=passed)


def relay_to(request, context):
    port, method, arg = request.split(b"/", 2)
    return call_out(port, method.decode(), arg, context)


class LinkingHandlers(grpc.GenericRpcHandler):
    """RelayN, ForwardN and GatherN for any suffix N (see the module's comment)."""

    def service(self, details):
        name = details.method.rpartition("/")[2]
        if name.startswith("Relay") and name != "Relay":
            return grpc.unary_unary_rpc_method_handler(relay_to)
        if name.startswith("Gather"):
            return grpc.unary_unary_rpc_method_handler(gather)
        if name.startswith("Forward"):
            def forward(request, context):
                port, slash, arg = request.partition(b"/")
                if slash and port.isdigit():
                    return call_out(port, name, arg, context)
                return gather(request, context)
            return grpc.unary_unary_rpc_method_handler(forward)
        return None


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
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=12),
                         options=[("grpc.max_send_message_length", 16 << 20),
                                  ("grpc.max_receive_message_length", 16 << 20)])
    server.add_generic_rpc_handlers((handler, LinkingHandlers()))
    server.add_insecure_port("127.0.0.1:%d" % port)
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Records real Redis conversations as seeds for tests/fuzz/protocols/redis (redis_fuzz).

Usage: tools/fuzz-seeds/record_redis.py REDIS_PORT PROXY_PORT OUT_DIR
A recording proxy on PROXY_PORT forwards to a running redis-server on REDIS_PORT while the
e2e client scenarios (tests/e2e/clients/redis_client.py) and redis-cli talk through it. Each
connection becomes one seed: the bytes the client sent, then the bytes it received, then a
final byte that makes the fuzzer read the seed as raw streams.
"""
import os
import socket
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.join(HERE, "..", "..", "tests", "e2e", "clients", "redis_client.py")


def pump(src, dst, buf):
    while True:
        data = src.recv(65536)
        if not data:
            dst.shutdown(socket.SHUT_WR)
            return
        buf.append(data)
        dst.sendall(data)


def serve(listener, redis_port, out_dir, counter):
    while True:
        c, _ = listener.accept()
        s = socket.create_connection(("127.0.0.1", redis_port))
        sent, received = [], []
        a = threading.Thread(target=pump, args=(c, s, sent))
        b = threading.Thread(target=pump, args=(s, c, received))
        a.start()
        b.start()

        def finish(a=a, b=b, sent=sent, received=received):
            a.join()
            b.join()
            counter[0] += 1
            with open(os.path.join(out_dir, f"real-{counter[0]:03d}"), "wb") as f:
                f.write(b"".join(sent)[:8192] + b"".join(received)[:8192] + b"\x01")

        threading.Thread(target=finish, daemon=True).start()


def main():
    redis_port, proxy_port, out_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    listener = socket.socket()
    listener.bind(("127.0.0.1", proxy_port))
    listener.listen()
    threading.Thread(target=serve, args=(listener, redis_port, out_dir, [0]), daemon=True).start()
    for args in (["basic"], ["pipeline", "5"], ["multi"], ["blpop"], ["pubsub", "3"],
                 ["resp3"], ["big", "300"]):
        subprocess.run(["/usr/bin/python3", "-B", CLIENT, args[0], str(proxy_port)] + args[1:],
                       check=True, stdout=subprocess.DEVNULL)
    for args in (["SET", "k", "v"], ["-3", "HGETALL", "h"], ["INCR", "k"]):
        cli = ["redis-cli", "-p", str(proxy_port)]
        subprocess.run(cli[:1] + [a for a in args if a == "-3"] + cli[1:] +
                       [a for a in args if a != "-3"], check=True, stdout=subprocess.DEVNULL)
    import time
    time.sleep(1)


if __name__ == "__main__":
    main()

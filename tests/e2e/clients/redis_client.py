#!/usr/bin/python3
"""Redis client scenarios for the e2e tests (python3-redis, and a raw RESP3 socket client).

Usage: redis_client.py SCENARIO PORT [ARGS...]
Every scenario prints "done" when it finished as expected, after the lines it documents.
"""

import os
import socket
import sys
import threading
import time

import redis

SECRET = "s3cr3t-value-7d1f"  # must never appear in any span


def basic(port):
    r = redis.Redis(host="127.0.0.1", port=port)
    r.set("user:1", SECRET)
    assert r.get("user:1").decode() == SECRET
    r.incr("counter")  # redis-py sends INCRBY counter 1
    try:
        r.lpush("user:1", "x")
        raise SystemExit("expected WRONGTYPE")
    except redis.ResponseError:
        pass
    try:
        r.execute_command("NOSUCHCMD", SECRET)
        raise SystemExit("expected ERR")
    except redis.ResponseError:
        pass
    r.execute_command("SELECT", 2)
    assert r.get("user:1") is None


def auth(port):
    password = os.environ["REDIS_PASSWORD"]  # not on the command line: that is exported
    r = redis.Redis(host="127.0.0.1", port=port, password=password)
    r.set("k", SECRET)
    r.get("k")


def pipeline(port, n):
    """n rounds of SET/INCR/GET in one pipeline: distinct reply types, paired in order."""
    r = redis.Redis(host="127.0.0.1", port=port)
    p = r.pipeline(transaction=False)
    for i in range(n):
        p.set(f"k{i}", SECRET)
        p.incr(f"n{i}")
        p.get(f"k{i}")
    out = p.execute()
    assert len(out) == 3 * n and out[1] == 1 and out[2].decode() == SECRET


def multi(port):
    r = redis.Redis(host="127.0.0.1", port=port)
    r.delete("a", "n")
    p = r.pipeline(transaction=True)
    p.set("a", SECRET)
    p.lpush("a", "x")  # fails inside EXEC: WRONGTYPE
    p.incr("n")
    try:
        p.execute()
        raise SystemExit("expected WRONGTYPE in EXEC")
    except redis.ResponseError:
        pass


def blpop(port):
    """BLPOP that times out after 1 s, then one that a second connection answers."""
    r = redis.Redis(host="127.0.0.1", port=port)
    r.delete("q1", "q2")
    t0 = time.monotonic()
    assert r.blpop("q1", timeout=1) is None
    print(f"blpop_timeout_ms {int((time.monotonic() - t0) * 1000)}", flush=True)

    def push():
        time.sleep(0.5)
        redis.Redis(host="127.0.0.1", port=port).rpush("q2", SECRET)

    threading.Thread(target=push).start()
    t0 = time.monotonic()
    assert r.blpop("q2", timeout=10)[1].decode() == SECRET
    print(f"blpop_pushed_ms {int((time.monotonic() - t0) * 1000)}", flush=True)
    r.get("after")


def pubsub(port, n):
    """A subscriber gets n messages; PING and UNSUBSCRIBE on its connection pair exactly."""
    r = redis.Redis(host="127.0.0.1", port=port)
    p = r.pubsub()
    p.subscribe("news")
    assert p.get_message(timeout=5)["type"] == "subscribe"
    pub = redis.Redis(host="127.0.0.1", port=port)
    for i in range(n):
        pub.publish("news", f"{SECRET}-{i}")
    got = 0
    deadline = time.monotonic() + 10
    while got < n and time.monotonic() < deadline:
        m = p.get_message(timeout=1)
        if m and m["type"] == "message":
            got += 1
    assert got == n, got
    p.ping()
    p.unsubscribe("news")
    seen = set()
    while time.monotonic() < deadline and not {"pong", "unsubscribe"} <= seen:
        m = p.get_message(timeout=1)
        if m:
            seen.add(m["type"])
    r.set("after", "1")


def big(port, elements):
    """A 1 MB value each way, then a list reply far beyond the capture, then a small GET."""
    r = redis.Redis(host="127.0.0.1", port=port)
    r.delete("list")
    r.set("big", SECRET * (1 << 16))
    assert len(r.get("big")) == len(SECRET) << 16
    p = r.pipeline(transaction=False)
    for i in range(0, elements, 100):
        p.rpush("list", *[f"element-{j}" for j in range(i, i + 100)])
    p.execute()
    assert len(r.lrange("list", 0, -1)) == elements
    assert r.get("missing") is None
    r.set("after", "1")


class Resp3:
    """A raw RESP3 connection: commands out, replies and pushes in."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.f = self.s.makefile("rb")

    def send(self, *words):
        out = b"*%d\r\n" % len(words)
        for w in words:
            w = w.encode() if isinstance(w, str) else w
            out += b"$%d\r\n%s\r\n" % (len(w), w)
        self.s.sendall(out)

    def read(self):
        line = self.f.readline()
        t, rest = line[:1], line[1:-2]
        if t in b"$=!":
            data = self.f.read(int(rest) + 2)[:-2]
            return (t, data)
        if t in b"*~>":
            return (t, [self.read() for _ in range(int(rest))])
        if t == b"%":
            return (t, [self.read() for _ in range(2 * int(rest))])
        return (t, rest)


def resp3(port):
    """HELLO 3; a tracked key's invalidation push arrives before a PING's reply."""
    c = Resp3(port)
    c.send("HELLO", "3")
    assert c.read()[0] == b"%"
    c.send("CLIENT", "TRACKING", "on")
    assert c.read() == (b"+", b"OK")
    c.send("SET", "tracked", SECRET)
    c.read()
    c.send("GET", "tracked")
    c.read()
    redis.Redis(host="127.0.0.1", port=port).set("tracked", "changed")  # the server pushes an invalidation
    c.send("PING")
    kinds = [c.read()[0], c.read()[0]]
    assert sorted(kinds) == [b"+", b">"], kinds
    c.send("HGETALL", "nohash")
    assert c.read()[0] == b"%"


def midstream(port):
    """A connection in use before the agent starts: a BLPOP is still blocked then, and a GET
    is sent behind it before its reply comes."""
    r = redis.Redis(host="127.0.0.1", port=port)
    r.delete("mq")
    r.set("a", "1")
    done = threading.Event()

    def blocked():
        redis_conn = r.connection_pool.get_connection("BLPOP")
        redis_conn.send_command("BLPOP", "mq", "0")
        print("ready", flush=True)
        sys.stdin.readline()  # the agent is running now
        # GET goes out while the BLPOP is still blocked: the BLPOP's reply comes first.
        redis_conn.send_command("GET", "a")
        redis.Redis(host="127.0.0.1", port=port).rpush("mq", SECRET)
        assert redis_conn.read_response()[1].decode() == SECRET
        assert redis_conn.read_response() == b"1"
        redis_conn.send_command("INCR", "mn")
        redis_conn.read_response()
        done.set()

    threading.Thread(target=blocked).start()
    done.wait(30)
    assert done.is_set()


def main():
    scenario, port = sys.argv[1], int(sys.argv[2])
    args = sys.argv[3:]
    if scenario == "basic":
        basic(port)
    elif scenario == "auth":
        auth(port)
    elif scenario == "pipeline":
        pipeline(port, int(args[0]))
    elif scenario == "multi":
        multi(port)
    elif scenario == "blpop":
        blpop(port)
    elif scenario == "pubsub":
        pubsub(port, int(args[0]))
    elif scenario == "big":
        big(port, int(args[0]))
    elif scenario == "resp3":
        resp3(port)
    elif scenario == "midstream":
        midstream(port)
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    print("done", flush=True)


if __name__ == "__main__":
    main()

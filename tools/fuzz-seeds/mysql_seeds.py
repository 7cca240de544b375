#!/usr/bin/env python3
"""Writes the seeds of my_fuzz (tests/fuzz/protocols/mysql/corpus/my_fuzz): MariaDB-shaped
conversations in the harness's record format (control byte, 16-bit big-endian length, bytes).

usage: tools/fuzz-seeds/mysql_seeds.py OUT_DIR
"""
import os
import struct
import sys

REQ, RESP, GAP, ADV, RESYNC = 0, 1, 2, 4, 8


def le(v, n):
    return v.to_bytes(n, "little")


def lenenc(v):
    if v < 0xFB:
        return le(v, 1)
    if v < 0x10000:
        return b"\xfc" + le(v, 2)
    return b"\xfd" + le(v, 3)


def lstr(s):
    return lenenc(len(s)) + s


def pkt(seq, payload):
    return le(len(payload), 3) + le(seq & 0xFF, 1) + payload


def greeting():
    b = b"\x0a" + b"10.11.19-MariaDB\0" + le(7, 4) + b"abcdefgh\0" + le(0xFFFF, 2) + b"\x2d"
    return pkt(0, b + le(2, 2) + le(0x81FF, 2) + b"\x15" + bytes(10) + b"ijklmnopqrst\0"
               + b"mysql_native_password\0")


def handshake(deprecate, db=b"shop"):
    caps = 0x200 | 0x8000 | 0x200000 | 0x80000 | 0x8 | (0x1000000 if deprecate else 0)
    return pkt(1, le(caps, 4) + le(1 << 24, 4) + b"\x2d" + bytes(23) + b"app\0" + lenenc(20)
               + b"p" * 20 + db + b"\0mysql_native_password\0")


def ok(seq, affected=0, status=2, head=b"\0"):
    return pkt(seq, head + lenenc(affected) + lenenc(0) + le(status, 2) + le(0, 2))


def eof(seq, status=2):
    return pkt(seq, b"\xfe" + le(0, 2) + le(status, 2))


def err(seq, code, msg=b"error"):
    return pkt(seq, b"\xff" + le(code, 2) + b"#42S02" + msg)


def coldef(seq, name):
    b = lstr(b"def") + lstr(b"shop") + lstr(b"t") + lstr(b"t") + lstr(name) + lstr(name)
    return pkt(seq, b + b"\x0c" + le(45, 2) + le(200, 4) + b"\xfd" + bytes(5))


def result(rows, deprecate, seq=1, width=3, status=2):
    out = pkt(seq, lenenc(1)) + coldef(seq + 1, b"a")
    seq += 2
    if not deprecate:
        out += eof(seq)
        seq += 1
    for _ in range(rows):
        out += pkt(seq, lstr(b"r" * width))
        seq += 1
    return out + (ok(seq, status=status, head=b"\xfe") if deprecate else eof(seq, status))


def query(q, cmd=3):
    return pkt(0, bytes([cmd]) + q)


def rec(ctl, b):
    out = b""
    while True:
        out += bytes([ctl | ADV]) + struct.pack(">H", min(len(b), 0xFFFF)) + b[:0xFFFF]
        b = b[0xFFFF:]
        if not b:
            return out


def gap(dir_, n):
    return bytes([dir_ | GAP | ADV]) + struct.pack(">H", (n - 1) // 2)


def connect(deprecate):
    return rec(RESP, greeting()) + rec(REQ, handshake(deprecate)) + rec(RESP, ok(2))


def seeds():
    s = {}
    for dep in (False, True):
        name = "deprecate_eof" if dep else "eof"
        s["queries_" + name] = (connect(dep)
                                + rec(REQ, query(b"SELECT a FROM t WHERE b = 'secret'"))
                                + rec(RESP, result(3, dep))
                                + rec(REQ, query(b"INSERT INTO t VALUES (1, 'x')"))
                                + rec(RESP, ok(1, 1))
                                + rec(REQ, query(b"SELECT * FROM missing")) + rec(RESP, err(1, 1146))
                                + rec(REQ, query(b"shop2", cmd=2)) + rec(RESP, ok(1)))
        prep = pkt(1, b"\0" + le(5, 4) + le(1, 2) + le(1, 2) + b"\0" + le(0, 2)) + coldef(2, b"?")
        seq = 3
        if not dep:
            prep += eof(seq)
            seq += 1
        prep += coldef(seq, b"a")
        if not dep:
            prep += eof(seq + 1)
        execute = pkt(0, b"\x17" + le(5, 4) + b"\0" + le(1, 4))
        s["prepared_" + name] = (connect(dep)
                                 + rec(REQ, query(b"SELECT a FROM t WHERE id = ?", cmd=0x16))
                                 + rec(RESP, prep) + rec(REQ, execute) + rec(RESP, result(1, dep))
                                 + rec(REQ, pkt(0, b"\x19" + le(5, 4))) + rec(REQ, execute)
                                 + rec(RESP, err(1, 1243)))
    big = result(40, False, width=300)
    s["reads_and_gaps"] = (connect(False) + rec(REQ, query(b"SELECT a FROM big"))
                           + rec(RESP, big[:700]) + rec(RESP, big[700:1000]) + gap(RESP, 301)
                           + rec(RESP, big[1301:]))
    row = pkt(4, lstr(b"z" * 69999))
    s["long_row_gap"] = (connect(True) + rec(REQ, query(b"SELECT blob FROM b"))
                         + rec(RESP, pkt(1, lenenc(1)) + coldef(2, b"blob")) + rec(RESP, row[:4])
                         + gap(RESP, len(row) - 4) + rec(RESP, ok(5, head=b"\xfe")))
    s["multi_result"] = (connect(True) + rec(REQ, query(b"SELECT 1; SELECT 2"))
                         + rec(RESP, result(1, True, status=0x0A) + result(1, True, seq=5)))
    s["resync"] = (bytes([RESYNC | REQ | ADV]) + rec(REQ, query(b"SELECT a FROM t"))[1:]
                   + rec(RESP, result(2, False)) + rec(REQ, query(b"UPDATE t SET a = 1"))
                   + rec(RESP, ok(1, 2)))
    return s


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()

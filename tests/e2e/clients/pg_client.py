"""PostgreSQL client for the e2e tests (psycopg2, i.e. libpq).

usage: pg_client.py PORT MODE [ARGS]
  queries FILE     one connection: queries, errors, a batch, COPY, a big result, a timeout
  stepped          one query, then "ready"; one more query per "go" line on stdin; "quit" ends
  tls FILE         two queries with sslmode=require
FILE holds a secret that the queries carry as literals (not on the command line, which the
agent reports as process.command_args).
Prints "local_port P" once connected and "done" at the end.
"""
import io
import sys

import psycopg2


def connect(port, **kw):
    conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", **kw)
    conn.autocommit = True
    print("local_port", local_port(conn), flush=True)
    return conn


def local_port(conn):
    import socket
    s = socket.socket(fileno=conn.fileno())
    try:
        return s.getsockname()[1]
    finally:
        s.detach()


def queries(conn, secret):
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS orders")
    cur.execute("CREATE TABLE orders (id int, note text)")
    cur.execute("INSERT INTO orders VALUES (%s, %s)", (1, secret))  # client-side literal
    cur.execute("SELECT id FROM orders WHERE note = %s", (secret,))
    assert cur.fetchall() == [(1,)]
    cur.execute("INSERT INTO orders VALUES (2, 'a'); INSERT INTO orders VALUES (3, 'b')")
    try:
        cur.execute("SELECT * FROM missing_table WHERE k = %s", (secret,))
    except psycopg2.errors.UndefinedTable:
        pass
    cur.copy_expert("COPY orders FROM STDIN", io.StringIO("4\tc\n5\td\n6\te\n"))
    cur.execute("SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g")
    assert len(cur.fetchall()) == 20000
    cur.execute("SET statement_timeout = 50")
    try:
        cur.execute("SELECT pg_sleep(5)")
    except psycopg2.errors.QueryCanceled:
        pass


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    if mode == "queries":
        conn = connect(port, sslmode="disable")
        queries(conn, open(sys.argv[3]).read().strip())
    elif mode == "tls":
        conn = connect(port, sslmode="require")
        cur = conn.cursor()
        cur.execute("SELECT %s::text AS secret", (open(sys.argv[3]).read().strip(),))
        try:
            cur.execute("SELECT * FROM missing_table")
        except psycopg2.errors.UndefinedTable:
            pass
    elif mode == "stepped":
        conn = connect(port, sslmode="disable")
        cur = conn.cursor()
        cur.execute("SELECT 0")
        print("ready", flush=True)
        n = 0
        for line in sys.stdin:
            if line.strip() != "go":
                break
            n += 1
            cur.execute("SELECT relname FROM pg_class LIMIT %s" % n)
            print("query", n, flush=True)
    conn.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()

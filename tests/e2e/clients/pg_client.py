"""PostgreSQL client for the e2e tests (psycopg2, i.e. libpq).

usage: pg_client.py PORT MODE [ARGS]
  queries FILE     one connection: queries, errors, a batch, COPY, a big result, a timeout
  stepped          one query, then "ready"; one more query per "go" line on stdin; "quit" ends
  tls FILE         two queries with sslmode=require
  cancel           a query cancelled (CancelRequest, psycopg2's conn.cancel()) in the middle
                   of its result, then one more query on that connection
FILE holds a secret that the queries carry as literals (not on the command line, which the
agent reports as process.command_args).
Prints "local_port P" once connected and "done" at the end.
"""
import io
import sys
import threading
import time

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


def cancel_mid_result(conn, port):
    """Row 2000 of the result sleeps; once the server reports it sleeping (rows 1-1999 are on
    the wire), another thread cancels it through libpq's CancelRequest connection."""
    watcher = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                               sslmode="disable")
    watcher.autocommit = True
    backend = conn.get_backend_pid()
    outcome = []

    def cancel():
        cur = watcher.cursor()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            cur.execute("SELECT count(*) FROM pg_stat_activity"
                        " WHERE pid = %s AND wait_event = 'PgSleep'", (backend,))
            if cur.fetchone()[0] == 1:
                conn.cancel()
                outcome.append("cancelled")
                return
            time.sleep(0.02)  # poll interval
        outcome.append("the query never slept")

    t = threading.Thread(target=cancel)
    t.start()
    cur = conn.cursor()
    try:
        cur.execute("SELECT g, repeat('x', 200), CASE WHEN g = 2000 THEN pg_sleep(30) END"
                    " FROM generate_series(1, 4000) g")
        raise AssertionError("the query was not cancelled")
    except psycopg2.errors.QueryCanceled:
        pass
    t.join()
    assert outcome == ["cancelled"], outcome
    watcher.close()
    cur.execute("SELECT 7 AS after_cancel")
    assert cur.fetchall() == [(7,)]


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
    elif mode == "cancel":
        conn = connect(port, sslmode="disable")
        cancel_mid_result(conn, port)
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

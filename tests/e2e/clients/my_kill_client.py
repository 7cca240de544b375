"""MySQL/MariaDB query killed mid-result, for the e2e tests (pymysql).

usage: my_kill_client.py PORT
Connection A streams a result (unbuffered cursor) whose row 2000 sleeps; once A has read 1000
rows and the server reports A's query sleeping, connection B runs KILL QUERY. A's query then
fails (1317, after rows), and A runs one more query on the same connection.
Prints "local_port P" (A's), "rows N" (rows A read before the error) and "done".
"""
import sys
import time

import pymysql
import pymysql.cursors

DEADLINE_S = 10


def connect(port):
    return pymysql.connect(host="127.0.0.1", port=port, user="root", password="", database="test",
                           autocommit=True)


def main():
    port = int(sys.argv[1])
    a = connect(port)
    print("local_port", a._sock.getsockname()[1], flush=True)
    b = connect(port)
    cur = a.cursor(pymysql.cursors.SSCursor)
    cur.execute("SELECT seq, IF(seq = 2000, SLEEP(30), 0), REPEAT('x', 200) FROM seq_1_to_4000")
    rows = 0
    for _ in range(1000):
        assert cur.fetchone() is not None
        rows += 1
    bc = b.cursor()
    deadline = time.monotonic() + DEADLINE_S
    while True:  # wait until A's query sleeps (in the middle of its result)
        bc.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST"
                   " WHERE ID = %s AND STATE = 'User sleep'", (a.thread_id(),))
        if bc.fetchone()[0] == 1:
            break
        assert time.monotonic() < deadline, "the query never slept"
        time.sleep(0.02)  # poll interval
    bc.execute("KILL QUERY %d" % a.thread_id())
    try:
        while cur.fetchone() is not None:
            rows += 1
        raise AssertionError("the killed query ended without an error")
    except pymysql.err.OperationalError as e:
        assert e.args[0] == 1317, e
    print("rows", rows, flush=True)
    ac = a.cursor()
    ac.execute("SELECT 7 AS after_kill")
    assert ac.fetchall() == ((7,),)
    b.close()
    a.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()

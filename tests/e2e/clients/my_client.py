"""MySQL/MariaDB client for the e2e tests (pymysql, pure python).

usage: my_client.py PORT SECRET_FILE
One connection: USE-less connect to database "test", a table, a literal that must never be
exported, an error, a large result set, COM_INIT_DB. Prints "local_port P" and "done".
"""
import sys

import pymysql


def main():
    port, secret = int(sys.argv[1]), open(sys.argv[2]).read().strip()
    conn = pymysql.connect(host="127.0.0.1", port=port, user="root", password="", database="test",
                           autocommit=True)
    print("local_port", conn._sock.getsockname()[1], flush=True)
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS orders")
    cur.execute("CREATE TABLE orders (id INT, note TEXT)")
    cur.execute("INSERT INTO orders VALUES (%s, %s)", (1, secret))
    cur.execute("SELECT id FROM orders WHERE note = %s", (secret,))
    assert cur.fetchall() == ((1,),)
    try:
        cur.execute("SELECT * FROM missing_table WHERE k = %s", (secret,))
    except pymysql.err.ProgrammingError:
        pass
    cur.execute("SELECT seq, REPEAT('x', 200) FROM seq_1_to_20000")
    assert len(cur.fetchall()) == 20000
    conn.select_db("mysql")
    cur.execute("SELECT COUNT(*) FROM user")
    conn.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()

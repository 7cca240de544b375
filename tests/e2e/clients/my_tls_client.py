"""MySQL/MariaDB over TLS for the e2e tests (pymysql over python's ssl, i.e. OpenSSL).

usage: my_tls_client.py PORT CA_FILE SECRET_FILE
One connection that switches to TLS in its handshake (verified against CA_FILE), then a
literal that must never be exported, a result, an error. Prints "local_port P", "cipher C"
(the session's, so the test knows TLS was used) and "done".
"""
import sys

import pymysql


def main():
    port, ca, secret = int(sys.argv[1]), sys.argv[2], open(sys.argv[3]).read().strip()
    conn = pymysql.connect(host="127.0.0.1", port=port, user="root", password="", database="test",
                           autocommit=True, ssl={"ca": ca})
    print("local_port", conn._sock.getsockname()[1], flush=True)
    print("cipher", conn._sock.cipher()[0], flush=True)
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS tls_orders")
    cur.execute("CREATE TABLE tls_orders (id INT, note TEXT)")
    cur.execute("INSERT INTO tls_orders VALUES (%s, %s)", (1, secret))
    cur.execute("SELECT id FROM tls_orders WHERE note = %s", (secret,))
    assert cur.fetchall() == ((1,),)
    try:
        cur.execute("SELECT * FROM missing_table WHERE k = %s", (secret,))
    except pymysql.err.ProgrammingError:
        pass
    conn.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()

"""The cross-language workload, with psycopg 3.

Connects with the libpq DSN in PAMTRAIL_WORKLOAD_DSN and prints one JSON
document of what the client saw, so a run through pamtrail can be compared
with a direct one. The statements' wire text is the same in every language
(placeholders become $1..$n), so the Go test can check the records.
"""
import datetime
import decimal
import hashlib
import json
import os
import sys
import threading
import time

import psycopg

INSERT = "insert into w values (%s, %s, %s, %s, %s, %s)"
ROWS = [
    (1, "one", decimal.Decimal("1.50"), datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc), True, b"\x00\x01"),
    (2, "it's", decimal.Decimal("-2.25"), datetime.datetime(2024, 2, 29, 23, 59, 59, tzinfo=datetime.timezone.utc), False, b"\xff"),
    (3, None, None, None, None, None),
]
BATCH = [(10 + i, "batch %d" % i, decimal.Decimal(i), None, i % 2 == 0, None) for i in range(3)]


def sqlstate(err):
    return {"error": err.sqlstate}


def main():
    out = []
    conn = psycopg.connect(os.environ["PAMTRAIL_WORKLOAD_DSN"], autocommit=True)
    cur = conn.cursor()

    cur.execute("select 1 as one, 'two' as two")
    out.append({"step": "simple", "rows": [list(map(str, r)) for r in cur.fetchall()]})

    cur.execute("create temp table w(id int primary key, name text, amount numeric, at timestamptz, ok bool, data bytea)")
    for r in ROWS:
        cur.execute(INSERT, r)
    cur.execute("select id, name, amount, at, ok, data from w where id = %s", (2,))
    out.append({"step": "prepared", "rows": [list(map(str, r)) for r in cur.fetchall()]})

    with conn.pipeline():
        for r in BATCH:
            cur.execute(INSERT, r)
    out.append({"step": "pipeline", "count": cur.execute("select count(*) from w").fetchone()[0]})

    with cur.copy("copy w (id, name) from stdin") as copy:
        for i in range(1000, 2000):
            copy.write_row((i, "copied %d" % i))
    data = bytearray()
    with cur.copy("copy (select id, name from w order by id) to stdout") as copy:
        for chunk in copy:
            data += chunk
    out.append({"step": "copy", "bytes": len(data), "md5": hashlib.md5(data).hexdigest()})

    tx = []
    cur.execute("begin")
    cur.execute("insert into w (id, name) values (20, 'tx')")
    try:
        cur.execute("insert into w (id, name) values (20, 'dup')")
    except psycopg.Error as e:
        tx.append(sqlstate(e))
    cur.execute("rollback")
    tx.append(cur.execute("select count(*) from w where id = 20").fetchone()[0])
    out.append({"step": "transaction", "result": tx})

    h = hashlib.md5()
    n = 0
    for g, m in cur.execute("select g, md5(g::text) from generate_series(1, 100000) g"):
        h.update(("%d %s\n" % (g, m)).encode())
        n += 1
    out.append({"step": "large", "rows": n, "md5": h.hexdigest()})

    timer = threading.Timer(0.3, conn.cancel)
    timer.start()
    start = time.monotonic()
    try:
        cur.execute("select pg_sleep(30)")
        out.append({"step": "cancel", "result": "not cancelled"})
    except psycopg.Error as e:
        out.append({"step": "cancel", "result": sqlstate(e), "quick": time.monotonic() - start < 10})
    timer.join()

    out.append({"step": "final", "count": cur.execute("select count(*) from w").fetchone()[0]})
    conn.close()
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

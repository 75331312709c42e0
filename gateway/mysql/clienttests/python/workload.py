"""PyMySQL workload: run the same statements direct and through the
gateway; what it prints must be identical. Connection settings come from
PAMTRAIL_WORKLOAD_{HOST,PORT,USER,PASSWORD,DBNAME} and, for TLS,
PAMTRAIL_WORKLOAD_CA."""
import datetime
import decimal
import os

import pymysql

env = os.environ
ssl = {"ca": env["PAMTRAIL_WORKLOAD_CA"]} if env.get("PAMTRAIL_WORKLOAD_CA") else None
conn = pymysql.connect(
    host=env["PAMTRAIL_WORKLOAD_HOST"], port=int(env["PAMTRAIL_WORKLOAD_PORT"]),
    user=env["PAMTRAIL_WORKLOAD_USER"], password=env["PAMTRAIL_WORKLOAD_PASSWORD"],
    database=env["PAMTRAIL_WORKLOAD_DBNAME"], ssl=ssl, charset="utf8mb4",
    client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS, connect_timeout=10)


def show(label, cur):
    print(label, "rowcount", cur.rowcount, "lastrowid", cur.lastrowid)
    if cur.description:
        print("  columns", [d[0] for d in cur.description])
        for row in cur.fetchall():
            print("  ", repr(row))


with conn.cursor() as cur:
    cur.execute("DROP TABLE IF EXISTS py_items")
    cur.execute("CREATE TABLE py_items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40), "
                "price DECIMAL(8,2), seen DATETIME(6), data BLOB)")
    cur.execute("INSERT INTO py_items (name, price, seen, data) VALUES (%s, %s, %s, %s)",
                ("café", decimal.Decimal("12.50"), datetime.datetime(2026, 12, 3, 10, 0, 0, 123000), b"\x00\x01\x02"))
    show("insert", cur)
    cur.executemany("INSERT INTO py_items (name, price) VALUES (%s, %s)", [("b", 1), ("c", 2), ("d", None)])
    show("executemany", cur)
    cur.execute("SELECT id, name, price, seen, data FROM py_items ORDER BY id")
    show("select", cur)
    cur.execute("UPDATE py_items SET price = price + 1 WHERE price IS NOT NULL")
    show("update", cur)
    cur.execute("SELECT COUNT(*) AS n FROM py_items; SELECT name FROM py_items WHERE id = 2")
    show("multi 1", cur)
    cur.nextset()
    show("multi 2", cur)
    try:
        cur.execute("SELECT * FROM py_no_such_table")
    except pymysql.MySQLError as e:
        print("error", e.args)
    conn.begin()
    cur.execute("DELETE FROM py_items WHERE name = 'd'")
    show("delete in transaction", cur)
    conn.rollback()
    cur.execute("SELECT COUNT(*) FROM py_items")
    show("after rollback", cur)
    conn.ping()
    print("ping ok")
conn.close()

"""Backend-identity checks with psycopg 3 (libpq): what a client does with
the backend PID it was told. Connects with PAMTRAIL_WORKLOAD_DSN and prints
one JSON document; the Go test compares it with what a direct connection
sees.

    fidelity.py terminate-self | terminate-pid | notify-self | cancel-own
"""
import json
import os
import sys
import threading
import time

import psycopg

DSN = os.environ["PAMTRAIL_WORKLOAD_DSN"]


def terminate(use_client_pid):
    conn = psycopg.connect(DSN, autocommit=True)
    pid = conn.info.backend_pid
    server_pid = conn.execute("select pg_backend_pid()").fetchone()[0]
    target = str(pid) if use_client_pid else "pg_backend_pid()"
    out = {"pid_matches_server": pid == server_pid}
    try:
        conn.execute("select pg_terminate_backend(%s)" % target)
        out["sqlstate"] = None
    except psycopg.Error as err:
        out["sqlstate"] = err.sqlstate
    out["closed"] = conn.closed
    return out


def notify_self():
    conn = psycopg.connect(DSN, autocommit=True)
    pid = conn.info.backend_pid
    conn.execute("listen fidelity_ch")
    conn.execute("notify fidelity_ch, 'hello'")
    got = list(conn.notifies(timeout=10, stop_after=1))
    conn.close()
    return {"count": len(got), "payload": got[0].payload if got else None,
            "own_pid": bool(got) and got[0].pid == pid}


def cancel_own():
    """Two connections sleep at once; cancelling the first must not touch
    the second."""
    victim = psycopg.connect(DSN, autocommit=True)
    other = psycopg.connect(DSN, autocommit=True)
    results = {}

    def run(name, conn, seconds):
        try:
            conn.execute("select pg_sleep(%s)" % seconds)
            results[name] = "ok"
        except psycopg.Error as err:
            results[name] = err.sqlstate

    threads = [threading.Thread(target=run, args=("cancelled", victim, 30)),
               threading.Thread(target=run, args=("other", other, 2))]
    for th in threads:
        th.start()
    deadline = time.time() + 10
    while time.time() < deadline:
        # Wait until the victim's statement is running before cancelling.
        if victim.pgconn.transaction_status == psycopg.pq.TransactionStatus.ACTIVE:
            break
        time.sleep(0.05)
    time.sleep(0.2)
    victim.cancel_safe()
    for th in threads:
        th.join(30)
    return results


def main():
    cmd = sys.argv[1]
    if cmd == "terminate-self":
        out = terminate(False)
    elif cmd == "terminate-pid":
        out = terminate(True)
    elif cmd == "notify-self":
        out = notify_self()
    elif cmd == "cancel-own":
        out = cancel_own()
    else:
        sys.exit("unknown check %r" % cmd)
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A client that writes through HAProxy the way an application does, and reports what it saw.

    <python with psycopg> lab/writer.py --dsn "host=10.213.0.5 port=5000 ..." --interval 0.05 --out result.json

It keeps one live connection, writes a row every --interval seconds, reconnects after a failure, and runs until it
gets SIGTERM or SIGINT; then it writes a JSON summary: writes tried, succeeded and failed, the longest gap between
two successful writes, which servers took the writes and whether any was in recovery (a write can never land on a
replica, but the check makes that claim visible), and the first failures with their errors. Run it with the lab's
Patroni virtualenv Python, which has psycopg (Debian's 3.0.2 lab: /usr/bin/python3 with python3-psycopg2).
"""
from __future__ import annotations

import argparse
import json
import signal
import time

try:
    import psycopg as driver
except ImportError:  # Debian's Patroni 3.0.2 comes with psycopg2
    import psycopg2 as driver

SQL_SETUP = "CREATE TABLE IF NOT EXISTS pgha_writes (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())"
SQL_WRITE = "INSERT INTO pgha_writes DEFAULT VALUES RETURNING host(inet_server_addr()), pg_is_in_recovery()"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    tried = ok = 0
    failures: list[dict] = []
    servers: dict[str, int] = {}
    on_replica = 0
    last_ok = None
    longest_gap = 0.0
    started = time.monotonic()
    conn = None
    next_at = time.monotonic()
    while not stop:
        now = time.monotonic()
        if now < next_at:
            time.sleep(next_at - now)
        next_at += args.interval
        tried += 1
        try:
            if conn is None:
                conn = driver.connect(args.dsn + " connect_timeout=2")
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(SQL_SETUP)
            with conn.cursor() as cur:
                cur.execute(SQL_WRITE)
                server, in_recovery = cur.fetchone()
            ok += 1
            servers[server] = servers.get(server, 0) + 1
            on_replica += bool(in_recovery)
            done = time.monotonic()
            if last_ok is not None:
                longest_gap = max(longest_gap, done - last_ok)
            last_ok = done
        except Exception as exc:  # every failure is data here: count it, reconnect, go on
            failures.append({"t": round(time.monotonic() - started, 3), "error": str(exc).strip().splitlines()[0]})
            try:
                if conn is not None:
                    conn.close()
            except Exception:
                pass
            conn = None
    summary = {"tried": tried, "ok": ok, "failed": len(failures), "longest_gap_s": round(longest_gap, 3),
               "servers": servers, "on_replica": on_replica, "duration_s": round(time.monotonic() - started, 1),
               "first_failures": failures[:10]}
    with open(args.out, "w") as fh:
        json.dump(summary, fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

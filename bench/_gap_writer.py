#!/usr/bin/env python3
"""The write-gap bench's client: lab/writer.py's loop, but it keeps every successful write, not only a summary.

    <python with psycopg> bench/_gap_writer.py --dsn "..." --out log.json [--interval 0.05]

bench/write_gap.py cuts one long run into events (a switchover, a crash) and needs, per event, the longest gap and
the moment the first write landed on the new primary, so this writes on SIGTERM/SIGINT a JSON document
{"ok": [[monotonic seconds, server address, in recovery], ...], "failed": [[monotonic seconds, error], ...]}.
CLOCK_MONOTONIC is one clock for every process on the machine (lab hosts are network namespaces, not VMs), so
the bench can put these times next to its own.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time

TABLE = "CREATE TABLE IF NOT EXISTS pgha_gap (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())"
INSERT = "INSERT INTO pgha_gap DEFAULT VALUES RETURNING host(inet_server_addr()), pg_is_in_recovery()"


def connect(driver, dsn: str):
    conn = driver.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute(TABLE)
    cur.close()
    return conn


def insert_psycopg2(conn) -> tuple:
    cur = conn.cursor()
    cur.execute(INSERT)
    row = cur.fetchone()
    cur.close()
    return row


def close_quietly(conn) -> None:
    """Drop a connection that just failed; closing a broken one may fail too, and that changes nothing."""
    if conn is not None:
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - see the docstring
            pass


def run(dsn: str, interval: float, stopping: list) -> tuple[list, list]:
    # imported here: scripts/bench.sh starts this file with a Python that has no PostgreSQL driver
    try:
        import psycopg as driver
    except ImportError:  # Debian's Patroni 3.0.2 comes with psycopg2
        import psycopg2 as driver
    ok: list = []
    failed: list = []
    conn = None
    due = time.monotonic()
    while not stopping:
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        due += interval
        try:
            conn = conn or connect(driver, dsn)
            row = conn.execute(INSERT).fetchone() if hasattr(conn, "execute") else insert_psycopg2(conn)
            ok.append([round(time.monotonic(), 4), row[0], bool(row[1])])
        except Exception as exc:  # a failed write is a data point: note it, drop the connection, try again next tick
            failed.append([round(time.monotonic(), 4), (str(exc).strip().splitlines() or [type(exc).__name__])[0]])
            conn = close_quietly(conn)
        # a write that took longer than one interval must not be followed by a burst of catch-up writes
        due = max(due, time.monotonic())
    return ok, failed


def main() -> int:
    # scripts/bench.sh runs every bench/*.py without arguments; this helper is not a bench, so it does nothing then
    if len(sys.argv) == 1:
        print("bench/_gap_writer.py: a helper of bench/write_gap.py, not a bench; nothing to do without --dsn")
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    stopping: list = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    ok, failed = run(args.dsn, args.interval, stopping)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump({"ok": ok, "failed": failed}, fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

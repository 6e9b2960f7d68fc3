"""Benchmark: wall time of playbooks/rolling_restart.yml for 1 cluster, and for 3 clusters rolled at once.

On a lab of 3 clusters x 3 members with HAProxy on lb1 (playbooks/lab_haproxy.yml: cluster k writes on port
5000 + 100 * k, reads from replicas on +1 with lag limit 16MB), every PostgreSQL is restarted
(pgha_rolling_restart_mode=all) while, per rolled cluster, a writer writes through the write port every 50 ms
and a reader reads through the replica port every 100 ms (one probe process), and a watcher polls every member's
GET /patroni every 0.2 s to see when each switchover happens:
  - baseline: cluster c1 alone;
  - fleet: c1, c2 and c3 with pgha_rolling_restart_batch=3;
taking turns, --rounds times (default 5); the ratio is of the medians. One turn's ratio on this 2-core machine
ranges over about +-0.15 around the median (1.28 to 1.59 in 15 turns), so 5 turns, not 3, decide the verdict.
Figures per cluster: failed writes, failed writes outside the switchover (from when the old primary stops being a
running primary to 3 s after the new one runs as primary), longest gap between two good writes, switchovers seen,
reads, reads served by a replica that was not streaming or lagged more than 16MB behind the primary.
Targets (exit 1 if missed): median fleet wall time <= 1.5 x median baseline; in every run, failed writes only
inside the one switchover per cluster; no read from a lagging or non-streaming replica; the playbook succeeds.

    bench/rolling_restart.py            # uses the lab at PGHA_LAB_DIR if it has 3 clusters, else its own
The module also holds the clients the integration test (tests/integration/test_rolling_restart.py) uses, and the
probe itself: `<python with psycopg> bench/rolling_restart.py --read DSN --primary DSN --out FILE` (writes go to
the --primary DSN). Times are CLOCK_MONOTONIC, one clock for every process on the machine (lab hosts are network
namespaces), so the probes' times and the watcher's line up.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROLLING_RESTART = REPO / "playbooks" / "rolling_restart.yml"
LAB_HAPROXY = REPO / "playbooks" / "lab_haproxy.yml"
READ_LAG_LIMIT = 16 * 1024 * 1024  # the replica listeners' lag limit in playbooks/lab_haproxy.yml
AFTER_SWITCHOVER = 3.0  # seconds after the new primary runs that failed writes still count as the switchover's
TARGET_RATIO = 1.5

WRITE_TABLE = "CREATE TABLE IF NOT EXISTS pgha_rolling (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())"
WRITE_SQL = "INSERT INTO pgha_rolling DEFAULT VALUES RETURNING host(inet_server_addr()), pg_is_in_recovery()"
READ_SQL = ("select host(inet_server_addr()), pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
            "(select status from pg_stat_wal_receiver)")


def lsn_bytes(lsn: str | None) -> int | None:
    if not lsn:
        return None
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def write_loop(dsn: str, interval: float, stopping: list, log: dict) -> None:
    """A write every `interval` on one live connection, reconnecting after a failure, as an application does."""
    import psycopg  # only in the lab's Patroni virtualenv, which runs the probe

    conn = None
    due = time.monotonic()
    while not stopping:
        time.sleep(max(0.0, due - time.monotonic()))
        # a write slower than one interval is not followed by a burst of catch-up writes
        due = max(due + interval, time.monotonic())
        try:
            if conn is None:
                conn = psycopg.connect(dsn, autocommit=True)
                conn.execute(WRITE_TABLE)
            server, recovery = conn.execute(WRITE_SQL).fetchone()
            log["ok"].append([round(time.monotonic(), 4), server, bool(recovery)])
        except Exception as exc:  # a failed write is a data point: note it, reconnect next tick
            log["failed"].append([round(time.monotonic(), 4), (str(exc).strip().splitlines() or [type(exc).__name__])[0]])
            conn = None


def read_loop(read_dsn: str, primary_dsn: str, interval: float, stopping: list, writes: dict,
              ready_file: str | None) -> tuple[list, list]:
    """Read through the replica port; after each read ask the primary for its WAL position (an upper bound of lag)."""
    import psycopg  # only in the lab's Patroni virtualenv, which runs this mode

    reads: list = []
    failed: list = []
    conns: dict = {}
    due = time.monotonic()
    while not stopping:
        time.sleep(max(0.0, due - time.monotonic()))
        due = max(due + interval, time.monotonic())
        try:
            if conns.get("read") is None:
                conns["read"] = psycopg.connect(read_dsn, autocommit=True)
            server, recovery, replayed, receiver = conns["read"].execute(READ_SQL).fetchone()
        except Exception as exc:  # a failed read is a data point: note it, reconnect next tick
            failed.append([round(time.monotonic(), 4), (str(exc).strip().splitlines() or [type(exc).__name__])[0]])
            conns.pop("read", None)
            continue
        at = round(time.monotonic(), 4)
        lag = None
        try:
            if conns.get("primary") is None:
                conns["primary"] = psycopg.connect(primary_dsn, autocommit=True)
            current = conns["primary"].execute("select pg_current_wal_lsn()::text").fetchone()[0]
            if recovery and replayed:
                lag = max(0, lsn_bytes(current) - lsn_bytes(replayed))
        except Exception:  # the primary may be switching over; the read still counts, with unknown lag
            conns.pop("primary", None)
        reads.append([at, server, bool(recovery), receiver, lag])
        if ready_file and writes["ok"]:
            Path(ready_file).touch()
            ready_file = None
    return reads, failed


class Clients:
    """Per cluster a probe (this file's --read mode: a writer and a reader) through HAProxy on lb1."""

    def __init__(self, lab, scopes: list[str], tag: str):
        creds = json.loads(Path(lab.data["passwords_file"]).read_text())["superuser"]
        patroni_bin = Path(lab.data["patroni"]["bin"])
        self.python = str(patroni_bin.parent / "python")
        self.env = {"PGPASSWORD": creds["password"], "PATH": "/usr/bin:/bin"}
        base = f"host={lab.ip('lb1')} dbname=postgres user={creds['username']} connect_timeout=2"
        self.files: dict[str, Path] = {}
        self.cmds: list[list[str]] = []
        all_scopes = sorted(lab.clusters)
        for scope in scopes:
            port = 5000 + 100 * all_scopes.index(scope)
            # in the lab's own state dir: labs side by side (CI lanes, a developer's and a benchmark's) never share them
            self.files[scope] = Path(lab.dir) / f"rr-{tag}-{scope}.json"
            self.cmds.append([self.python, __file__, "--read", f"{base} port={port + 1}",
                              "--primary", f"{base} port={port}", "--out", str(self.files[scope])])
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> "Clients":
        self.procs = [subprocess.Popen(cmd, env=self.env) for cmd in self.cmds]
        # the change starts once every probe has written and read once (a loaded machine takes seconds to start)
        deadline = time.monotonic() + 60
        while not all(Path(f"{path}.ready").exists() for path in self.files.values()):
            if time.monotonic() > deadline:
                raise AssertionError(f"probes not writing and reading through lb1 within 60 s: {self.cmds}")
            time.sleep(0.2)
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(1)  # a gap at the very end still counts
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            proc.wait(timeout=30)

    def results(self) -> dict[str, dict]:
        out = {}
        for scope, path in self.files.items():
            out[scope] = json.loads(path.read_text())
            path.unlink()
            Path(f"{path}.ready").unlink()
        return out


class Watcher(threading.Thread):
    """Polls every member's own GET /patroni; records, per cluster, when its running primary changed."""

    def __init__(self, lab, scopes: list[str], interval: float = 0.2):
        super().__init__(daemon=True)
        self.lab, self.scopes, self.interval = lab, scopes, interval
        self.stop = threading.Event()
        # per scope: list of (lost, gained, old, new): monotonic time the old primary stopped being a running
        # primary, time a new member ran as primary
        self.switchovers: dict[str, list] = {scope: [] for scope in scopes}

    def primary(self, session, scope: str, known: str | None = None) -> str | None:
        # the member last seen as primary first: one GET per cluster and tick while nothing changes, so the watcher
        # does not load 3 clusters' members (and the measured run) three times as much as one cluster's
        members = self.lab.members(scope)
        for host in ([known] if known in members else []) + [m for m in members if m != known]:
            try:
                doc = session.get(self.lab.api(host) + "/patroni", timeout=0.5).json()
            except Exception:  # noqa: BLE001 - a member restarting may not answer; it is not the primary then
                continue
            if doc.get("role") in ("primary", "master") and doc.get("state") == "running":
                return host
        return None

    def run(self) -> None:
        import requests

        session = requests.Session()
        last = {scope: (self.primary(session, scope), None) for scope in self.scopes}
        while not self.stop.is_set():
            for scope in self.scopes:
                known, lost = last[scope]
                now_primary = self.primary(session, scope, known)
                if now_primary == known:
                    continue
                now = time.monotonic()
                if now_primary is None and lost is None:
                    last[scope] = (known, now)
                elif now_primary is not None:
                    self.switchovers[scope].append((lost or now, now, known, now_primary))
                    last[scope] = (now_primary, None)
            time.sleep(self.interval)


def within(at: float, windows: list[tuple[float, float]]) -> bool:
    return any(start <= at <= end for start, end in windows)


def analyse(results: dict[str, dict], switchovers: dict[str, list]) -> dict[str, dict]:
    figures = {}
    for scope, data in results.items():
        ok, failed = data["writes"]["ok"], data["writes"]["failed"]
        windows = [(lost - 1.0, gained + AFTER_SWITCHOVER) for lost, gained, _old, _new in switchovers.get(scope, [])]
        outside = [f for f in failed if not within(f[0], windows)]
        times = sorted(w[0] for w in ok)
        gap = max((b - a for a, b in zip(times, times[1:])), default=0.0)
        reads, read_failed = data["reads"]
        # While the primary changes, every replica's WAL receiver reconnects to the new one: a read then finds no
        # receiver, on a replica that is as fresh as the last WAL the old primary sent. Outside a switchover a
        # replica without a streaming receiver is one that restarted and came back into the pool too early.
        lagging = [r for r in reads if r[2] and r[4] is not None and r[4] > READ_LAG_LIMIT]
        bad = lagging + [r for r in reads if r[2] and r[3] != "streaming" and not within(r[0], windows) and r not in lagging]
        reconnecting = [r for r in reads if r[2] and r[3] != "streaming" and within(r[0], windows)]
        figures[scope] = {
            "writes_ok": len(ok), "writes_failed": len(failed), "failed_outside_switchover": len(outside),
            "first_outside": outside[:3], "longest_gap_s": round(gap, 2),
            "writes_on_replica": sum(1 for w in ok if w[2]),
            "switchovers": [f"{old}->{new}" for _lost, _gained, old, new in switchovers.get(scope, [])],
            "reads": len(reads), "reads_failed": len(read_failed), "reads_lagging_or_not_streaming": len(bad),
            "first_bad_reads": bad[:3], "reads_during_switchover_receiver_reconnecting": len(reconnecting),
            "max_read_lag_bytes": max((r[4] for r in reads if r[4] is not None), default=0),
        }
    return figures


def figures_ok(figures: dict[str, dict]) -> list[str]:
    """What misses the per-cluster targets, as sentences; empty when everything is on target."""
    missed = []
    for scope, fig in figures.items():
        if fig["failed_outside_switchover"]:
            missed.append(f"{scope}: {fig['failed_outside_switchover']} failed writes outside the switchover, "
                          f"first {fig['first_outside']}")
        if len(fig["switchovers"]) > 1:
            missed.append(f"{scope}: {len(fig['switchovers'])} primary changes {fig['switchovers']}, expected one")
        if fig["reads_lagging_or_not_streaming"]:
            missed.append(f"{scope}: {fig['reads_lagging_or_not_streaming']} reads from a lagging or non-streaming "
                          f"replica, first {fig['first_bad_reads']}")
        if fig["writes_on_replica"]:
            missed.append(f"{scope}: {fig['writes_on_replica']} writes answered by a replica")
    return missed


def cpu_times() -> list[int]:
    """The machine's CPU time so far, in clock ticks: user nice system idle iowait irq softirq steal (/proc/stat)."""
    with open("/proc/stat", encoding="ascii") as stat:
        return [int(x) for x in stat.readline().split()[1:9]]


def machine_use(before: list[int], after: list[int], wall: float) -> str:
    """How busy the machine was over a run, and how much CPU the hypervisor took from it (steal): a fleet run on a
    2-core machine is bound by CPU, so a slow turn with steal or a busy machine says why."""
    ticks = [b - a for a, b in zip(before, after)]
    hz = os.sysconf("SC_CLK_TCK")
    busy = (sum(ticks) - ticks[3] - ticks[4] - ticks[7]) / hz
    return f"machine busy {busy / wall:.2f} cores on average, iowait {ticks[4] / hz:.1f} s, steal {ticks[7] / hz:.1f} s"


def rollout(lab, scopes: list[str], extra_vars: dict, tag: str) -> tuple[float, object, dict]:
    """Run rolling_restart.yml on `scopes` under clients and the watcher: (wall seconds, run, figures); the run's
    `machine` attribute says how busy the machine was meanwhile."""
    from labkit import run_playbook

    for scope in scopes:
        lab.settled(scope)
    watcher = Watcher(lab, scopes)
    watcher.start()
    with Clients(lab, scopes, tag) as clients:
        started, cpu_before = time.monotonic(), cpu_times()
        run = run_playbook(lab.inventory, ROLLING_RESTART, extra_vars=extra_vars, timeout=3600)
        wall = time.monotonic() - started
        run.machine = machine_use(cpu_before, cpu_times(), wall)
    watcher.stop.set()
    watcher.join(5)
    return wall, run, analyse(clients.results(), watcher.switchovers)


def report(name: str, wall: float, run, figures: dict) -> list[str]:
    """Print one rollout's figures; what missed the per-cluster targets."""
    print(f"{name}: wall {wall:.1f} s, playbook rc {run.rc}; {getattr(run, 'machine', '')}")
    for scope, fig in figures.items():
        print(f"  {scope}: switchovers {fig['switchovers']}, writes ok {fig['writes_ok']} failed "
              f"{fig['writes_failed']} (outside the switchover {fig['failed_outside_switchover']}), longest gap "
              f"{fig['longest_gap_s']} s; reads {fig['reads']} (failed {fig['reads_failed']}, from a lagging or "
              f"non-streaming replica {fig['reads_lagging_or_not_streaming']}, during the switchover with the "
              f"WAL receiver reconnecting {fig['reads_during_switchover_receiver_reconnecting']}, max lag "
              f"{fig['max_read_lag_bytes']} B)")
    missed = [f"{name}: the playbook failed:\n{run}"] if run.rc != 0 else []
    return missed + [f"{name}: {line}" for line in figures_ok(figures)]


def bench(rounds: int) -> int:
    sys.path.insert(0, str(REPO / "lab"))
    from labkit import OwnLab, run_playbook

    walls: dict[str, list[float]] = {"1 cluster": [], "3 clusters": []}
    missed: list[str] = []
    load = []
    with OwnLab(clusters=3, name="brr", net="10.213.12.0/24", lab_dir=Path("/tmp/pgha-bench-rolling")) as lab:
        haproxy = run_playbook(lab.inventory, LAB_HAPROXY)
        if haproxy.rc != 0:
            print(f"lab_haproxy.yml failed:\n{haproxy}")
            return 1
        scopes = sorted(lab.clusters)[:3]
        # One cluster and the fleet take turns, so a change in the machine's load (or in the lab) between runs
        # weighs on both sides of the ratio alike; a single pair swung by +-0.2x on this 2-core machine.
        for turn in range(1, rounds + 1):
            for name, members, batch in (("1 cluster", f"cluster_{scopes[0]}", 1), ("3 clusters", "patroni", 3)):
                load.append(os.getloadavg()[0])
                wall, run, figures = rollout(
                    lab, scopes[:1] if batch == 1 else scopes,
                    {"pgha_rolling_restart_mode": "all", "pgha_rolling_restart_batch": batch,
                     "pgha_rolling_restart_members": members}, f"{batch}-{turn}")
                walls[name].append(wall)
                missed += report(f"{name}, turn {turn}", wall, run, figures)
        load.append(os.getloadavg()[0])
    one, fleet = (statistics.median(walls[name]) for name in ("1 cluster", "3 clusters"))
    ratio = fleet / one
    print(f"median of {rounds} turns: 1 cluster {one:.1f} s ({', '.join(f'{w:.1f}' for w in walls['1 cluster'])}), "
          f"3 clusters {fleet:.1f} s ({', '.join(f'{w:.1f}' for w in walls['3 clusters'])})")
    print(f"3 clusters / 1 cluster wall time: {ratio:.2f}x (target <= {TARGET_RATIO}x; 3 clusters one after another "
          f"would be about 3x); per turn: {', '.join(f'{f / o:.2f}x' for o, f in zip(walls['1 cluster'], walls['3 clusters']))}")
    print("1-minute load average before each run and at the end: " + ", ".join(f"{x:.2f}" for x in load))
    if ratio > TARGET_RATIO:
        missed.append(f"3 clusters took {ratio:.2f}x one cluster (medians), target <= {TARGET_RATIO}x")
    for line in missed:
        print(f"MISSED: {line}")
    return 1 if missed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--read", help="reader mode: DSN of the replica port")
    parser.add_argument("--primary", help="reader mode: DSN of the write port, for the writes and to measure lag")
    parser.add_argument("--out", help="reader mode: JSON file written on SIGTERM")
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=5, help="turns of 1 cluster then 3 clusters (default 5)")
    args = parser.parse_args()
    if not args.read:
        return bench(args.rounds)
    stopping: list = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    writes: dict = {"ok": [], "failed": []}
    writer = threading.Thread(target=write_loop, args=(args.primary, 0.05, stopping, writes), daemon=True)
    writer.start()
    reads, failed = read_loop(args.read, args.primary, args.interval, stopping, writes, f"{args.out}.ready")
    writer.join(10)
    Path(args.out).write_text(json.dumps({"writes": writes, "reads": [reads, failed]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

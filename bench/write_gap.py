#!/usr/bin/env python3
"""Benchmark: how long do writes stop when the primary moves, through HAProxy and without it?

Four writers run side by side for the whole bench, each writing a row every 50 ms on a live connection and
reconnecting after a failure (bench/_gap_writer.py, which logs every write with the server that took it and
pg_is_in_recovery()):
  (1) example   Patroni's example HAProxy config (inter 3s fall 3 rise 2, on-marked-down shutdown-sessions,
                OPTIONS /), in a second HAProxy process on the lab's load balancer, port 5010;
  (2) plain     the patroni_haproxy role with its default settings, listener c1_plain (port 5001);
  (3) coord     the same role config, listener c1_coord (port 5000), which the role's coordinated switchover
                (tasks_from: switchover) drives through HAProxy's runtime API; on a crash it is just (2) again;
  (4) libpq     no HAProxy: a libpq multi-host DSN with target_session_attrs=read-write straight to the members.
Every event hits all four at once, so they are compared on the very same switchovers and crashes: --rounds (5)
planned switchovers, run through the role's switchover entry point, then as many crash failovers (kill -9 of
Patroni and of the postmaster on the primary). Per event and writer we take the longest gap between two
successful writes and, for crashes, how long after the new primary first answered GET /read-write 200 (polled
every 50 ms per member) the writer's first write landed there.
Targets: switchover through (3): median longest gap <= 1.2x that of (4); crash: (2) and (3) put writes on the new
primary within 1 s of its first /read-write 200 in every round; no write ever lands on a replica.
Run time with 5 rounds: about 10 minutes on a quiet machine (crash failovers wait for Patroni's ttl of 30 s).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lab"))
from labkit import OwnLab, run_playbook  # noqa: E402

HERE = Path(__file__).resolve().parent
LAB_SCRIPT = REPO / "lab" / "pgha_lab.py"
POLL = 0.05
ROUTE_TARGET = 1.0
GAP_RATIO_TARGET = 1.2

SETUPS = {
    "example": "(1) Patroni example config",
    "plain": "(2) role defaults",
    "coord": "(3) coordinated switchover",
    "libpq": "(4) libpq multi-host",
}
ROLE_PORTS = {"coord": 5000, "plain": 5001}
EXAMPLE_PORT = 5010
EXAMPLE_CFG = "/etc/haproxy/pgha-bench-example.cfg"
EXAMPLE_PID = "/run/haproxy/pgha-bench-example.pid"

# Patroni's haproxy.cfg (section 8 of the REST API reference), with the lab's members as servers.
EXAMPLE_TEMPLATE = """global
    maxconn 100
defaults
    mode tcp
    retries 2
    timeout client 30m
    timeout connect 4s
    timeout server 30m
    timeout check 5s
listen batman
    bind *:{port}
    option httpchk
    http-check expect status 200
    default-server inter 3s fall 3 rise 2 on-marked-down shutdown-sessions
{servers}
"""


class GapWriter:
    """bench/_gap_writer.py in the background; its log is read once it has stopped."""

    def __init__(self, lab, name: str, dsn: str, tmp: Path, interval: float):
        creds = json.loads(Path(lab.data["passwords_file"]).read_text())["superuser"]
        patroni_bin = Path(lab.data["patroni"]["bin"])
        python = patroni_bin.parent / "python"
        if not python.exists():  # Debian's Patroni: /usr/bin/python3 has python3-psycopg2
            python = Path("/usr/bin/python3")
        self.name, self.out = name, tmp / f"{name}.json"
        cmd = [str(python), str(HERE / "_gap_writer.py"), "--interval", str(interval), "--out", str(self.out),
               "--dsn", f"{dsn} dbname=postgres user={creds['username']} connect_timeout=2"]
        self.proc = subprocess.Popen(cmd, env={"PGPASSWORD": creds["password"], "PATH": "/usr/bin:/bin"})
        self.ok: list = []
        self.failed: list = []

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        if not self.out.exists():
            raise SystemExit(f"writer {self.name} wrote no log {self.out} (exit code {self.proc.returncode})")
        data = json.loads(self.out.read_text())
        self.ok, self.failed = data["ok"], data["failed"]


def first_read_write(lab, members: list[str], stop: threading.Event) -> dict[str, float]:
    """Start one poller per member; the dict fills with the moment each first answers GET /read-write 200."""
    seen: dict[str, float] = {}

    def poll(member: str) -> None:
        url = lab.api(member) + "/read-write"
        while not stop.is_set():
            try:
                if requests.get(url, timeout=0.3).status_code == 200:
                    seen.setdefault(member, time.monotonic())
                    return
            except requests.RequestException:
                pass
            time.sleep(POLL)

    for member in members:
        threading.Thread(target=poll, args=(member,), daemon=True).start()
    return seen


def lab_script(lab, *args: str) -> None:
    proc = subprocess.run([sys.executable, str(LAB_SCRIPT), *args, "--dir", str(lab.dir)], capture_output=True,
                          text=True, check=False, timeout=180)
    if proc.returncode != 0:
        raise SystemExit(f"lab/pgha_lab.py {' '.join(args)} failed: {proc.stdout}{proc.stderr}")


def start_example_haproxy(lab) -> None:
    servers = "\n".join(f"    server {m} {lab.ip(m)}:5432 maxconn 100 check port 8008" for m in lab.members())
    cfg = EXAMPLE_TEMPLATE.format(port=EXAMPLE_PORT, servers=servers)
    # a previous run that died may have left its process behind: it is ours, stop it by its own pid file
    lab.ssh("lb1", f"test -s {EXAMPLE_PID} && kill $(cat {EXAMPLE_PID}) 2>/dev/null; rm -f {EXAMPLE_PID}; "
                   f"cat > {EXAMPLE_CFG} <<'EOF'\n{cfg}EOF\n"
                   f"/usr/sbin/haproxy -c -q -f {EXAMPLE_CFG} && /usr/sbin/haproxy -D -f {EXAMPLE_CFG} -p {EXAMPLE_PID}")


def stop_example_haproxy(lab) -> None:
    lab.ssh("lb1", f"test -s {EXAMPLE_PID} && kill $(cat {EXAMPLE_PID}); rm -f {EXAMPLE_PID} {EXAMPLE_CFG}",
            check=False)


def window(writes: list, start: float, end: float) -> list:
    """Successful writes in (start, end], preceded by the last one before start (the gap starts there)."""
    before = [w for w in writes if w[0] <= start][-1:]
    return before + [w for w in writes if start < w[0] <= end]


def longest_gap(writes: list) -> float:
    return max((b[0] - a[0] for a, b in zip(writes, writes[1:])), default=float("inf"))


def run_event(lab, kind: str, rounds: int, index: int, marks: list, args) -> None:
    leader = lab.settled(timeout=240)
    others = [m for m in lab.members() if m != leader]
    candidate = others[index % len(others)]
    time.sleep(args.quiet)  # every writer steady on the primary before the event (the example needs 6 s to rise)
    stop = threading.Event()
    first_200 = first_read_write(lab, others, stop)
    start = time.monotonic()
    if kind == "switchover":
        run = run_playbook(lab.inventory, HERE / "playbooks" / "write_gap_switchover.yml", extra_vars={
            "patroni_haproxy_switchover_api_url": lab.api(leader),
            "patroni_haproxy_switchover_leader": leader,
            "patroni_haproxy_switchover_candidate": candidate})
        if run.rc != 0:
            raise SystemExit(f"coordinated switchover {leader} -> {candidate} failed:\n{run}")
    else:
        lab_script(lab, "patroni", leader, "kill")
        lab_script(lab, "postgres", leader, "kill")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not first_200:
        time.sleep(0.2)
    if not first_200:
        raise SystemExit(f"{kind} {index + 1}: no member answered /read-write 200 within 120 s after the event")
    # the slowest setup, Patroni's example, needs up to rise 2 x inter 3s = 6 s after the first 200
    time.sleep(args.settle)
    stop.set()
    new = min(first_200, key=first_200.get)
    marks.append({"kind": kind, "start": start, "end": time.monotonic(), "old": leader, "new": new,
                  "first_200": first_200[new]})
    print(f"  {kind} {index + 1}/{rounds}: {leader} -> {new}, /read-write 200 after "
          f"{first_200[new] - start:.2f} s", flush=True)
    if kind == "crash":
        lab_script(lab, "patroni", leader, "start")


def summarise(lab, writers: dict[str, GapWriter], marks: list) -> dict:
    """Per event kind and setup: longest gaps, delays to the first write on the new primary, misplaced writes."""
    result: dict = {}
    for mark in marks:
        new_ip = lab.ip(mark["new"])
        for name, writer in writers.items():
            span = window(writer.ok, mark["start"], mark["end"])
            first_new = next((w[0] for w in span if w[1] == new_ip and w[0] > mark["start"]), None)
            entry = result.setdefault(mark["kind"], {}).setdefault(name, {"gap": [], "route": []})
            # no write on the new primary inside the window: the gap had not even ended
            entry["gap"].append(longest_gap(span) if first_new is not None else float("inf"))
            entry["route"].append(first_new - mark["first_200"] if first_new is not None else float("inf"))
    return result


def spread(values: list[float]) -> str:
    return (f"median {statistics.median(values):6.2f}  min {min(values):6.2f}  max {max(values):6.2f}  "
            f"({' '.join(f'{v:.2f}' for v in values)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=5, help="switchovers and crash failovers, each (default 5)")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between two writes (default 0.05)")
    parser.add_argument("--settle", type=float, default=9.0,
                        help="seconds every writer gets after the first /read-write 200 to reach the new primary")
    parser.add_argument("--quiet", type=float, default=8.0, help="seconds of steady writes before each event")
    args = parser.parse_args()
    os.environ.setdefault("ANSIBLE_PIPELINING", "True")
    began = time.monotonic()
    marks: list = []
    with OwnLab(clusters=1) as lab, tempfile.TemporaryDirectory() as tmp:
        lab.settled(timeout=240)
        run = run_playbook(lab.inventory, HERE / "playbooks" / "write_gap_haproxy.yml")
        if run.rc != 0:
            raise SystemExit(f"applying the patroni_haproxy role on lb1 failed:\n{run}")
        start_example_haproxy(lab)
        lb = lab.ip("lb1")
        members = ",".join(lab.ip(m) for m in lab.members())
        dsns = {"example": f"host={lb} port={EXAMPLE_PORT}",
                "plain": f"host={lb} port={ROLE_PORTS['plain']}",
                "coord": f"host={lb} port={ROLE_PORTS['coord']}",
                "libpq": f"host={members} port=5432 target_session_attrs=read-write"}
        writers = {name: GapWriter(lab, name, dsn, Path(tmp), args.interval) for name, dsn in dsns.items()}
        try:
            for kind in ("switchover", "crash"):
                for index in range(args.rounds):
                    run_event(lab, kind, args.rounds, index, marks, args)
        finally:
            for writer in writers.values():
                writer.stop()
            stop_example_haproxy(lab)
        if marks and marks[-1]["kind"] == "crash":
            lab.settled(timeout=240)
    result = summarise(lab, writers, marks)
    tables = (("gap", f"longest gap between two successful writes (s), {args.rounds} events each, a write every "
                      f"{args.interval * 1000:.0f} ms:"),
              ("route", f"first write on the new primary after it first answered /read-write 200 (s; poller every "
                        f"{POLL * 1000:.0f} ms; negative: the writer got there before the poller saw the 200):"))
    for key, title in tables:
        print(title)
        for kind in ("switchover", "crash"):
            for name, label in SETUPS.items():
                label = "(3) = role defaults, 2nd listener" if (kind, name) == ("crash", "coord") else label
                print(f"  {kind:10s} {label:34s} {spread(result[kind][name][key])}")
    on_replica = {name: sum(1 for w in writer.ok if w[2]) for name, writer in writers.items()}
    print("writes: " + ", ".join(f"{name} {len(w.ok)} ok / {len(w.failed)} failed / {on_replica[name]} on a replica"
                                 for name, w in writers.items()))
    coord = statistics.median(result["switchover"]["coord"]["gap"])
    libpq = statistics.median(result["switchover"]["libpq"]["gap"])
    route = max(result["crash"]["plain"]["route"] + result["crash"]["coord"]["route"])
    targets = [
        (f"switchover: coordinated median gap {coord:.2f} s <= {GAP_RATIO_TARGET}x libpq {libpq:.2f} s "
         f"(ratio {coord / libpq:.2f})", coord <= GAP_RATIO_TARGET * libpq),
        (f"crash: role defaults route writes to the new primary within {ROUTE_TARGET:.0f} s of /read-write 200 "
         f"in every round (worst {route:.2f} s)", route <= ROUTE_TARGET),
        (f"no write on a replica ({sum(on_replica.values())} seen)", sum(on_replica.values()) == 0),
    ]
    for text, met in targets:
        print(f"  target {text}: {'MET' if met else 'MISSED'}")
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; run time {(time.monotonic() - began) / 60:.1f} min")
    return 0 if all(met for _text, met in targets) else 1


if __name__ == "__main__":
    sys.exit(main())

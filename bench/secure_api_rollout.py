"""Benchmark: wall time of playbooks/secure_api.yml for 1 cluster, and for 3 clusters secured in parallel.

Each run starts from a fresh plain-HTTP lab (HAProxy on lb1 with plain checks, as `make demo` starts), so the two
rollouts do the same work per cluster:
  - baseline: a 1-cluster lab, secure_api.yml with the default batch of 1 (one member at a time);
  - parallel: a 3-cluster lab, pgha_secure_api_batch=3 (one member of each cluster at a time, the clusters in step).
Throughout each rollout a writer per cluster writes through that cluster's HAProxy write port (5000 + 100 * k).
Figures: wall time, writes tried/failed, longest gap between two good writes, leader and timeline per cluster
before/after, PostgreSQL's postmaster start time per member before/after, load average.
Targets: zero failed writes, every leader, timeline and postmaster start time unchanged (exit 1 otherwise). The
3-vs-1 ratio of wall times is reported (the parallel run also carries 3 times the writers and Patroni processes).

    .venv/ac221/bin/python bench/secure_api_rollout.py [--name bsa --net 10.213.11.0/24 --dir /tmp/pgha-bench-secure-api] [--keep]
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lab"))
from labkit import Lab, Writer, run_playbook  # noqa: E402

PLAIN_HAPROXY = REPO / "playbooks" / "lab_haproxy.yml"
# secure_api.yml after a no-op lab_haproxy.yml in the same run, as `make demo` does (see the playbook for why)
SECURE_API = REPO / "bench" / "playbooks" / "secure_api_on_lab.yml"


def lab_cmd(*args: str) -> None:
    subprocess.run([str(REPO / "lab" / "pgha_lab.py"), *args], check=True, stdout=subprocess.DEVNULL)


def cluster_view(lab: Lab, scope: str) -> dict:
    leader = lab.leader(scope)
    timeline = requests.get(lab.api(leader) + "/patroni", timeout=5).json()["timeline"]
    started = {host: lab.ssh(host, "head -3 /var/lib/postgresql/15/main/postmaster.pid | tail -1").stdout.strip()
               for host in lab.members(scope)}
    return {"leader": leader, "timeline": timeline, "started": started}


def cluster_view_after(lab: Lab, scope: str, leader: str) -> dict:
    # the API is HTTPS with the lab CA now; the leader must still be the one from before
    ca = str(lab.dir / "pki" / "ca.crt")
    doc = requests.get(f"https://{lab.ip(leader)}:8008/patroni", verify=ca, timeout=5).json()
    started = {host: lab.ssh(host, "head -3 /var/lib/postgresql/15/main/postmaster.pid | tail -1").stdout.strip()
               for host in lab.members(scope)}
    return {"leader": leader if doc.get("role") == "primary" else None, "timeline": doc.get("timeline"),
            "started": started}


def rollout(args, clusters: int, batch: int) -> dict:
    """A fresh lab of `clusters` clusters, plain HAProxy, then secure_api.yml timed under one writer per cluster."""
    lab_cmd("up", "--clusters", str(clusters), "--name", args.name, "--net", args.net, "--dir", args.dir)
    lab = Lab(Path(args.dir))
    try:
        plain = run_playbook(lab.inventory, PLAIN_HAPROXY)
        if plain.rc != 0:
            raise SystemExit(f"lab_haproxy.yml failed on {args.dir}:\n{plain}")
        scopes = sorted(lab.clusters)
        before = {scope: cluster_view(lab, scope) for scope in scopes}
        # the password lives in a 0600 vars file, as a vault would hold it; it is never printed
        varsfile = lab.dir / "bench-secure-api-vars.json"
        varsfile.touch(mode=0o600)
        varsfile.write_text(json.dumps({
            "pgha_secure_api_password": secrets.token_urlsafe(18),
            "pgha_secure_api_ca_dir": str(lab.dir / "pki"),
            "pgha_secure_api_batch": batch,
            # lab hosts share /etc/nftables.d; /etc/pgha is private to each of them (as in playbooks/demo.yml)
            "patroni_firewall_nftables_file": "/etc/pgha/pgha_patroni.nft",
        }))
        writers = [Writer(lab, port=5000 + 100 * k) for k in range(len(scopes))]
        for writer in writers:
            writer.__enter__()
        load_before = os.getloadavg()
        t0 = time.monotonic()
        try:
            run = run_playbook(lab.inventory, SECURE_API, extra_args=["-e", f"@{varsfile}"], timeout=1800)
        finally:
            wall = time.monotonic() - t0
            load_after = os.getloadavg()
            for writer in writers:
                writer.__exit__(None, None, None)
        if run.rc != 0:
            print(f"secure_api.yml failed on the {clusters}-cluster lab:\n{run}")
        after = {scope: cluster_view_after(lab, scope, before[scope]["leader"]) for scope in scopes}
        return {"clusters": clusters, "batch": batch, "rc": run.rc, "wall_s": round(wall, 1),
                "writers": {scope: w.summary for scope, w in zip(scopes, writers)},
                "before": before, "after": after,
                "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in load_after]}
    finally:
        if not args.keep:
            lab_cmd("down", "--dir", args.dir)


def report(result: dict) -> list[str]:
    """Print one run's figures; return the targets it missed."""
    missed = []
    name = f"{result['clusters']} cluster(s), batch {result['batch']}"
    print(f"\n== {name}: wall time {result['wall_s']} s, playbook rc {result['rc']}, "
          f"load average {result['load_before']} -> {result['load_after']}")
    if result["rc"] != 0:
        missed.append(f"{name}: secure_api.yml failed (rc {result['rc']})")
    for scope, summary in result["writers"].items():
        before, after = result["before"][scope], result["after"][scope]
        print(f"  {scope}: writes tried {summary.get('tried')} ok {summary.get('ok')} failed {summary.get('failed')}"
              f", longest gap {summary.get('longest_gap_s')} s; leader {before['leader']} -> {after['leader']}, "
              f"timeline {before['timeline']} -> {after['timeline']}, postmaster start times "
              f"{'unchanged' if before['started'] == after['started'] else 'CHANGED'}")
        if summary.get("failed", 1) != 0:
            missed.append(f"{name} {scope}: {summary.get('failed')} failed writes "
                          f"(first: {summary.get('first_failures', [])[:1]})")
        if after["leader"] != before["leader"] or after["timeline"] != before["timeline"]:
            missed.append(f"{name} {scope}: leader/timeline moved")
        if after["started"] != before["started"]:
            missed.append(f"{name} {scope}: PostgreSQL restarted ({before['started']} -> {after['started']})")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--name", default=os.environ.get("PGHA_BENCH_LAB_NAME", "bsa"))
    parser.add_argument("--net", default=os.environ.get("PGHA_BENCH_LAB_NET", "10.213.11.0/24"))
    parser.add_argument("--dir", default=os.environ.get("PGHA_BENCH_LAB_DIR", "/tmp/pgha-bench-secure-api"))
    parser.add_argument("--keep", action="store_true", help="leave the last lab up for a look")
    args = parser.parse_args()
    one = rollout(args, clusters=1, batch=1)
    three = rollout(args, clusters=3, batch=3)
    missed = report(one) + report(three)
    ratio = three["wall_s"] / one["wall_s"] if one["wall_s"] else float("nan")
    print(f"\n3 clusters in parallel vs 1 cluster: {three['wall_s']} s / {one['wall_s']} s = {ratio:.2f}x "
          f"(3 sequential rollouts would take about 3.00x); load average now {[round(x, 2) for x in os.getloadavg()]}")
    for line in missed:
        print(f"TARGET MISSED: {line}")
    print("targets (zero failed writes; leader, timeline and postmaster unchanged): "
          + ("met" if not missed else "MISSED"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Benchmark: gather every member's Patroni state on a 3-cluster lab with patroni_facts vs ansible.builtin.uri.

The baseline is what peers do today: one `uri` task per endpoint (node status, every health check, cluster,
config, history), run on each member. Both playbooks run over real SSH against the same lab in the same run, with
the same forks and pipelining, three times each; we report the median wall time and the ratio.
Target (issue 2): patroni_facts at most 0.5x the uri version's wall time.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))
from labkit import OwnLab, run_playbook  # noqa: E402

ROUNDS = 3
HEALTH = ["primary", "replica", "read-write", "read-only", "synchronous", "asynchronous", "quorum", "health",
          "liveness", "readiness"]

FACTS_PLAY = """
- hosts: patroni
  gather_facts: false
  tasks:
    - pgha.patroni.patroni_facts:
        api_url: "{{ patroni_api_url }}"
"""

URI_PLAY = """
- hosts: patroni
  gather_facts: false
  tasks:
    - ansible.builtin.uri:
        url: "{{ patroni_api_url }}/patroni"
      register: node
""" + "".join(f"""
    - ansible.builtin.uri:
        url: "{{{{ patroni_api_url }}}}/{path}"
        status_code: [200, 503]
      register: health_{path.replace('-', '_')}
""" for path in HEALTH) + """
    - ansible.builtin.uri:
        url: "{{ patroni_api_url }}/cluster"
      register: cluster
    - ansible.builtin.uri:
        url: "{{ patroni_api_url }}/config"
      register: config
    - ansible.builtin.uri:
        url: "{{ patroni_api_url }}/history"
      register: history
"""


def timed(lab, playbook: Path) -> float:
    started = time.monotonic()
    # forks 10 covers every member at once; pipelining on for both so SSH costs are the same shape
    run = run_playbook(lab.inventory, playbook, extra_args=["--forks", "10"])
    elapsed = time.monotonic() - started
    if run.rc != 0 or run.failed():
        raise SystemExit(f"{playbook.name} failed:\n{run!r}")
    return elapsed


def main() -> int:
    import os
    os.environ["ANSIBLE_PIPELINING"] = "True"
    with OwnLab(clusters=3) as lab, tempfile.TemporaryDirectory() as tmp:
        facts, uri = Path(tmp, "facts.yml"), Path(tmp, "uri.yml")
        facts.write_text(FACTS_PLAY)
        uri.write_text(URI_PLAY)
        members = sum(len(m) for m in lab.clusters.values())
        timed(lab, facts)  # warm-up: SSH control sockets, module caches
        times = {"patroni_facts": [], "uri": []}
        for _round in range(ROUNDS):
            times["patroni_facts"].append(timed(lab, facts))
            times["uri"].append(timed(lab, uri))
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["patroni_facts"] / med["uri"]
    print(f"facts for {members} members in {len(lab.clusters)} clusters, {ROUNDS} rounds, forks 10")
    for name, values in times.items():
        print(f"  {name:14s} median {med[name]:6.2f} s  runs " + " ".join(f"{v:.2f}" for v in values))
    print(f"  ratio patroni_facts/uri = {ratio:.2f} (target <= 0.50): {'MET' if ratio <= 0.5 else 'MISSED'}")
    return 0 if ratio <= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Benchmark: how soon after a switchover does patroni_wait_primary name the new primary?

Ground truth is an independent poller per member that asks GET /read-write every 50 ms and records when the new
primary first answers 200. Against that moment we measure, over 5 planned switchovers in the same run:
  - the patroni_wait_primary module, run the way users run it (an ansible process on the controller), at the
    moment Ansible prints the module's result (what a playbook's next task would see), and, for reference, when
    that process has finished exiting (interpreter teardown, which no following task waits for);
  - the module's wait logic alone, in this process (what the module does minus Ansible's own start/stop);
  - the baseline users write today: an ansible.builtin.uri task on the candidate's /read-write with
    `until: status == 200`, `delay: 1` (the peers' loops use 1 to 5 s).
Target (issue 2): the module returns within 0.5 s of the poller's first 200, median of 5.
"""
from __future__ import annotations

import json
import os
import shutil
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
from labkit import ANSIBLE_VENV, BUILD_DIR, OwnLab, ansible_env  # noqa: E402

sys.path.insert(0, str(BUILD_DIR))
from ansible_collections.pgha.patroni.plugins.module_utils._api_client import PatroniClient  # noqa: E402
from ansible_collections.pgha.patroni.plugins.module_utils._wait_primary import wait_for_primary  # noqa: E402

SWITCHOVERS = 5
POLL = 0.05

URI_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.uri:
        url: "{{ url }}/read-write"
        status_code: [200, 503, -1]
      register: rw
      until: rw.status == 200
      retries: 120
      delay: 1
"""


def first_200(url: str, stop: threading.Event, box: dict, key: str) -> None:
    while not stop.is_set():
        try:
            if requests.get(url + "/read-write", timeout=0.3).status_code == 200:
                box.setdefault(key, time.monotonic())
                return
        except requests.RequestException:
            pass
        time.sleep(POLL)


def process_end(cmd: list[str], env: dict, box: dict, key: str, result_marker: str | None = None) -> None:
    """Run an ansible command; record when it printed `result_marker` (the result is in Ansible's hands) and exit."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out = []
    for line in proc.stdout:
        if result_marker and result_marker in line:
            box.setdefault(key + "_result", time.monotonic())
        out.append(line)
    err = proc.stderr.read()
    box[key + "_rc"] = proc.wait()
    box[key] = time.monotonic()
    box[key + "_out"] = "".join(out)[-2000:] + err[-2000:]


def running_module(tmpdir: Path, name: str, timeout: float) -> None:
    """Wait until Ansible runs module `name` in a process whose TMPDIR is `tmpdir` (its AnsiballZ payload is there)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(tmpdir.glob(f"ansible_*{name}_payload_*")):
            return
        time.sleep(0.05)
    raise SystemExit(f"ansible did not start module {name} within {timeout} s")


def one_switchover(lab, uri_play: Path) -> dict[str, float]:
    leader = lab.leader()
    members = lab.members()
    candidate = members[(members.index(leader) + 1) % len(members)]
    box: dict = {}
    stop = threading.Event()
    env = ansible_env()
    threads = [threading.Thread(target=first_200, args=(lab.api(m), stop, box, "truth")) for m in members
               if m != leader]
    module_cmd = [str(ANSIBLE_VENV / "bin" / "ansible"), "localhost", "-o", "-m", "pgha.patroni.patroni_wait_primary",
                  "-a", json.dumps({"api_url": lab.api(leader), "not_member": leader, "wait_sleep": 0.1,
                                    "wait_timeout": 90})]
    uri_cmd = [str(ANSIBLE_VENV / "bin" / "ansible-playbook"), str(uri_play), "-e", f"url={lab.api(candidate)}"]
    # `ansible -o` prints one line per host the moment the module's result reaches the controller
    env_module = dict(env, TMPDIR=tempfile.mkdtemp(prefix="bench-wait-"))
    env_uri = dict(env, TMPDIR=tempfile.mkdtemp(prefix="bench-uri-"))
    threads.append(threading.Thread(target=process_end, args=(module_cmd, env_module, box, "module", "localhost | ")))
    threads.append(threading.Thread(target=process_end, args=(uri_cmd, env_uri, box, "uri")))

    def in_process():
        wait_for_primary(PatroniClient(lab.api(leader)), not_member=leader, wait_sleep=0.1, wait_timeout=90)
        box["library"] = time.monotonic()

    threads.append(threading.Thread(target=in_process))
    for thread in threads:
        thread.start()
    # Switch over only once both ansible processes run their module (under load their start-up alone takes
    # seconds, which would otherwise be measured as latency)
    running_module(Path(env_module["TMPDIR"]), "patroni_wait_primary", 120)
    running_module(Path(env_uri["TMPDIR"]), "uri", 120)
    time.sleep(1)
    response = requests.post(lab.api(leader) + "/switchover", json={"leader": leader, "candidate": candidate},
                             timeout=90)
    if response.status_code != 200:
        raise SystemExit(f"switchover {leader} -> {candidate} failed: {response.status_code} {response.text}")
    for thread in threads:
        thread.join(timeout=120)
    stop.set()
    for tmp in (env_module["TMPDIR"], env_uri["TMPDIR"]):
        shutil.rmtree(tmp, ignore_errors=True)
    for key in ("module", "uri"):
        if box.get(key + "_rc") != 0:
            raise SystemExit(f"{key} run failed:\n{box.get(key + '_out')}")
    # let the old primary rejoin as a streaming replica before the next round
    wait_for_primary(PatroniClient(lab.api(candidate)), min_replicas=len(members) - 1, max_lag="16MB",
                     wait_timeout=120)
    return {key: box[key] - box["truth"] for key in ("module_result", "module", "library", "uri")}


def main() -> int:
    os.environ.setdefault("ANSIBLE_PIPELINING", "True")
    rounds = []
    with OwnLab(clusters=1) as lab, tempfile.TemporaryDirectory() as tmp:
        uri_play = Path(tmp, "uri.yml")
        uri_play.write_text(URI_PLAY)
        for i in range(SWITCHOVERS):
            rounds.append(one_switchover(lab, uri_play))
            print(f"  switchover {i + 1}: " + ", ".join(f"{k} +{v:.3f} s" for k, v in rounds[-1].items()),
                  flush=True)
    print(f"latency after the new primary first answers /read-write 200 (poller every {POLL * 1000:.0f} ms), "
          f"{SWITCHOVERS} switchovers:")
    medians = {}
    for key, label in (("module_result", "patroni_wait_primary (result printed)"),
                       ("module", "patroni_wait_primary (ansible process exit)"),
                       ("library", "patroni_wait_primary logic in-process"),
                       ("uri", "baseline: uri until 200, delay 1")):
        values = [r[key] for r in rounds]
        medians[key] = statistics.median(values)
        print(f"  {label:45s} median {medians[key]:+.3f} s  min {min(values):+.3f}  max {max(values):+.3f}")
    met = medians["module_result"] <= 0.5
    print(f"  target: module result median <= 0.500 s: {'MET' if met else 'MISSED'}; "
          f"baseline/module = {medians['uri'] / max(medians['module_result'], 1e-3):.1f}x; "
          f"load average {os.getloadavg()[0]:.1f}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

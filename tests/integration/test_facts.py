"""patroni_facts against the real lab: what it reports must be what Patroni itself (patronictl) says."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import labkit

REPO = Path(__file__).resolve().parents[2]

FACTS = "pgha.patroni.patroni_facts"


def test_facts_match_patronictl(lab, run_module):
    leader = lab.leader()
    ctl = {m["Member"]: m for m in lab.patronictl_list(leader)}
    assert sorted(ctl) == sorted(lab.members())
    for host in lab.members():
        res = run_module(host, FACTS, {"api_url": lab.api(host)})
        assert not res.failed, res.get("msg", res)
        facts = res["ansible_facts"]["patroni"]
        assert facts["name"] == host
        assert facts["scope"] == "c1"
        assert facts["role"] == ("primary" if host == leader else "replica")
        assert facts["state"] == "running"
        assert facts["timeline"] == ctl[host]["TL"]
        assert facts["version"].startswith(lab.data["patroni"]["version"][:3])
        assert facts["paused"] is False
        cluster = facts["cluster"]
        assert cluster["leader"] == leader
        assert sorted(m["name"] for m in cluster["members"]) == sorted(ctl)
        for member in cluster["members"]:
            row = ctl[member["name"]]
            assert row["Host"].split(":")[0] == member["host"] == lab.ip(member["name"])
            assert member["role"] == ("primary" if row["Role"] == "Leader" else "replica")
            assert member["api_url"] == f"{lab.api(member['name'])}/patroni"
            if member["role"] == "replica":
                assert row["State"] == "streaming" and member["streaming"] is True
                assert isinstance(member["lag"], int) and member["lag"] >= 0
        health = facts["health"]
        if host == leader:
            assert health["primary"] and health["read_write"] and health["read_only"]
            assert not health["replica"]
        else:
            assert health["replica"] and health["read_only"]
            assert not health["primary"] and not health["read_write"]
        assert health["health"] and health["liveness"] and health["readiness"]


def test_facts_are_the_same_in_check_mode_and_change_nothing(lab, run_module):
    host = lab.members()[0]
    res = run_module(host, FACTS, {"api_url": lab.api(host), "gather_subset": ["!all", "node"]}, check=True)
    assert not res.failed, res.get("msg", res)
    assert res["changed"] is False
    facts = res["ansible_facts"]["patroni"]
    assert facts["name"] == host
    # only the node subset was asked for
    assert "cluster" not in facts and "history" not in facts


def test_facts_from_the_controller_cover_every_member(lab, run_module):
    """One task on the controller can describe a member it is not running on (delegate_to: localhost style)."""
    leader = lab.leader()
    replica = next(h for h in lab.members() if h != leader)
    res = run_module("localhost", FACTS, {"api_url": lab.api(replica)})
    assert not res.failed, res.get("msg", res)
    facts = res["ansible_facts"]["patroni"]
    assert facts["name"] == replica and facts["role"] == "replica"
    assert facts["cluster"]["leader"] == leader
    assert isinstance(facts["config"], dict) and facts["config"]["ttl"] == 30
    assert isinstance(facts["history"], list)


def test_on_the_controller_the_module_runs_in_ansibles_worker_with_the_same_answer(lab):
    """A task on the controller runs the module's main() in the worker Ansible forked for it (no second Python, 0.4 s
    of CPU less per task); pgha_patroni_in_process=false runs it in its own Python. Both must answer the same."""
    leader = lab.leader()
    results, pythons = {}, {}
    for in_process in (True, False):
        proc = subprocess.run(
            [str(labkit.ANSIBLE_VENV / "bin" / "ansible"), "localhost", "-o", "-vvv", "-m", FACTS,
             "-a", json.dumps({"api_url": lab.api(leader), "api_username": "nobody", "api_password": "n0t-logged"}),
             "-e", json.dumps({"pgha_patroni_in_process": in_process})],
            capture_output=True, text=True, env=labkit.ansible_env(), timeout=120, check=False)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("localhost | ")), None)
        assert proc.returncode == 0 and line, (proc.stdout, proc.stderr)
        assert "n0t-logged" not in proc.stdout + proc.stderr
        results[in_process] = json.loads(line.split(" => ", 1)[1])["ansible_facts"]["patroni"]
        # -vvv shows every command Ansible starts on the host; the module's own Python is one of them
        pythons[in_process] = [ln for ln in proc.stdout.splitlines() if "EXEC" in ln and "python" in ln]
    assert pythons[True] == [], pythons[True]
    assert pythons[False], "the module's own Python run was not seen in the -vvv output"
    for facts in results.values():
        assert (facts["name"], facts["role"], facts["cluster"]["leader"]) == (leader, "primary", leader)
    volatile = ("dcs_last_seen", "xlog", "wal", "lag", "receive", "replay", "lsn", "postmaster_start_time")

    def steady(value):
        if isinstance(value, dict):
            return {k: steady(v) for k, v in value.items() if not any(word in k for word in volatile)}
        if isinstance(value, list):
            return [steady(v) for v in value]
        return value

    assert steady(results[True]) == steady(results[False])


def test_a_hung_member_is_reported_not_fatal(lab, run_module):
    """A member whose Patroni stops answering (SIGSTOP) shows up as unreachable; the facts still come back."""
    leader = lab.leader()
    replica = next(h for h in lab.members() if h != leader)
    started = time.monotonic()
    normal = run_module(leader, FACTS, {"api_url": lab.api(leader), "timeout": 2})
    baseline = time.monotonic() - started
    assert not normal.failed and normal["ansible_facts"]["patroni"]["unreachable"] == []
    lab.ssh(replica, "kill -STOP $(cat /run/patroni/patroni.pid)")
    try:
        started = time.monotonic()
        res = run_module(leader, FACTS, {"api_url": lab.api(leader), "timeout": 2})
        elapsed = time.monotonic() - started
    finally:
        lab.ssh(replica, "kill -CONT $(cat /run/patroni/patroni.pid)")
    assert not res.failed, res.get("msg", res)
    facts = res["ansible_facts"]["patroni"]
    assert facts["role"] == "primary"
    unreachable = {u["name"]: u for u in facts["unreachable"]}
    assert replica in unreachable, facts["unreachable"]
    assert "2" in unreachable[replica]["reason"] and lab.ip(replica) in unreachable[replica]["reason"]
    # the hung member costs about one request timeout (2 s), not a timeout per endpoint or per retry
    assert elapsed - baseline < 8, (elapsed, baseline)


def test_unreachable_node_fails_with_the_reason(lab, run_module):
    host = lab.members()[0]
    res = run_module("localhost", FACTS, {"api_url": f"http://{lab.ip(host)}:8009"})
    assert res.failed
    assert f"http://{lab.ip(host)}:8009" in res["msg"]
    assert "refused" in res["msg"].lower()


def test_topology_report_playbook_prints_what_patroni_says(lab, run_playbook):
    """The report `make demo` prints: one table per cluster, leader and every member's role as Patroni has them."""
    leader = lab.leader()
    run = run_playbook(str(REPO / "playbooks" / "topology_report.yml"))
    assert run.rc == 0, run
    assert run.changed() == 0, run
    assert f"Cluster c1: leader {leader}, timeline" in run.stdout, run
    for host in lab.members():
        role = "primary" if host == leader else "replica"
        line = next(ln for ln in run.stdout.splitlines() if ln.strip().strip('",').startswith(host + " "))
        assert f"{lab.ip(host)}:5432" in line and role in line, line

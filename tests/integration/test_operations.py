"""The operation modules against the lab, each in the order a user trusts them: check mode (predicts a change,
changes nothing), real run, verify on the cluster, rerun (no change).

The tests run in file order on one cluster and leave it healthy (no pause, one leader, replicas streaming)."""
from __future__ import annotations

import time

import requests

NS = "pgha.patroni."


def _cluster(lab):
    return requests.get(lab.api(lab.leader()) + "/cluster", timeout=5).json()


def _status(lab, host):
    return requests.get(lab.api(host) + "/patroni", timeout=5).json()


def _show(lab, host, setting):
    out = lab.ssh(host, f"cd /tmp && runuser -u postgres -- psql -tAc 'show {setting}'")
    return out.stdout.strip()


def _eventually(check, timeout=30.0, step=0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def _streaming(lab):
    members = _cluster(lab)["members"]
    return len(members) == 3 and sum(m["state"] == "streaming" for m in members) == 2


def test_failover_is_refused_while_the_leader_is_healthy(lab, run_module):
    leader = lab.leader()
    candidate = next(h for h in lab.members() if h != leader)
    args = {"api_url": lab.api(candidate), "candidate": candidate}
    for check in (True, False):
        res = run_module("localhost", NS + "patroni_failover", args, check=check)
        assert res.failed, res
        assert res["msg"].startswith(f"cluster c1 has a healthy leader ({leader}, running)"), res["msg"]
    assert lab.leader() == leader


def test_switchover(lab, run_module):
    leader = lab.leader()
    timeline = _status(lab, leader)["timeline"]
    args = {"api_url": lab.api(leader), "leader": leader, "wait_sleep": 0.2}

    res = run_module("localhost", NS + "patroni_switchover", args, check=True)
    assert not res.failed and res["changed"] is True, res
    candidate = res["candidate"]
    assert candidate != leader and res["msg"] == f"would switch cluster c1 over from {leader} to {candidate}"
    assert lab.leader() == leader and _status(lab, leader)["timeline"] == timeline

    started = time.monotonic()
    res = run_module("localhost", NS + "patroni_switchover", args)
    assert not res.failed and res["changed"] is True, res
    assert (res["previous_primary"], res["primary"], res["timeline"]) == (leader, candidate, timeline + 1)
    print(f"switchover {leader} -> {candidate}: module waited {res['elapsed']} s, task {time.monotonic() - started:.1f} s")

    assert lab.leader() == candidate
    new = _status(lab, candidate)
    assert (new["role"], new["state"], new["timeline"]) == ("primary", "running", timeline + 1)
    assert _eventually(lambda: _streaming(lab)), _cluster(lab)

    res = run_module("localhost", NS + "patroni_switchover", args)
    assert not res.failed and res["changed"] is False, res
    assert res["msg"] == f"{leader} does not lead cluster c1 ({candidate} does)"
    res = run_module("localhost", NS + "patroni_switchover", dict(args, leader=None, candidate=candidate))
    assert not res.failed and res["changed"] is False and res["msg"] == f"{candidate} already leads cluster c1"


def test_config_work_mem_is_reloaded_everywhere(lab, run_module):
    current = _show(lab, lab.leader(), "work_mem")
    wanted = "6MB" if current != "6MB" else "5MB"
    args = {"api_url": lab.api(lab.members()[0]), "config": {"postgresql": {"parameters": {"work_mem": wanted}}}}

    res = run_module("localhost", NS + "patroni_config", args, check=True)
    assert not res.failed and res["changed"] is True, res
    assert res["patch"] == {"postgresql": {"parameters": {"work_mem": wanted}}}
    assert res["restart_parameters"] == []
    assert requests.get(lab.api(lab.leader()) + "/config", timeout=5).json()["postgresql"]["parameters"].get(
        "work_mem") != wanted

    res = run_module("localhost", NS + "patroni_config", args)
    assert not res.failed and res["changed"] is True, res
    assert res["config"]["postgresql"]["parameters"]["work_mem"] == wanted and res["restart_parameters"] == []
    for host in lab.members():
        assert _eventually(lambda h=host: _show(lab, h, "work_mem") == wanted), host

    res = run_module("localhost", NS + "patroni_config", args)
    assert not res.failed and res["changed"] is False and res["patch"] == {}, res


def test_config_max_connections_leaves_members_pending_restart(lab, run_module):
    params = requests.get(lab.api(lab.leader()) + "/config", timeout=5).json()["postgresql"]["parameters"]
    wanted = int(params.get("max_connections", 100)) + 10
    args = {"api_url": lab.api(lab.members()[0]),
            "config": {"postgresql": {"parameters": {"max_connections": wanted}}}}

    res = run_module("localhost", NS + "patroni_config", args, check=True)
    assert not res.failed and res["changed"] is True and res["restart_parameters"] == ["max_connections"], res
    assert res["pending_restart"] == []

    res = run_module("localhost", NS + "patroni_config", args)
    assert not res.failed and res["changed"] is True, res
    assert res["restart_parameters"] == ["max_connections"]
    assert sorted(res["pending_restart"]) == sorted(lab.members())
    for host in lab.members():
        status = _status(lab, host)
        assert status.get("pending_restart") is True, (host, status)
        assert "max_connections" in status.get("pending_restart_reason", {}), (host, status)

    # As a string this time: Patroni compares values as strings, so nothing differs.
    res = run_module("localhost", NS + "patroni_config",
                     dict(args, config={"postgresql": {"parameters": {"max_connections": str(wanted)}}}))
    assert not res.failed and res["changed"] is False, res


def test_restart_pending_only(lab, run_module):
    members = lab.members()
    pending = [m["name"] for m in _cluster(lab)["members"] if m.get("pending_restart")]
    assert sorted(pending) == sorted(members), "run after the max_connections test"
    wanted = requests.get(lab.api(lab.leader()) + "/config", timeout=5).json()["postgresql"]["parameters"][
        "max_connections"]
    starts = {h: _status(lab, h)["postmaster_start_time"] for h in members}
    leader = lab.leader()
    # each member back (a replica streaming within 1MB) before the next goes down
    args = {"api_url": lab.api(members[0]), "all_members": True, "pending_only": True, "wait_healthy": True,
            "expected_members": len(members), "max_lag": "1MB"}

    res = run_module("localhost", NS + "patroni_restart", args, check=True)
    assert not res.failed and res["changed"] is True, res
    assert res["restarted"][-1] == leader and sorted(res["restarted"]) == sorted(members)
    assert {h: _status(lab, h)["postmaster_start_time"] for h in members} == starts

    started = time.monotonic()
    res = run_module("localhost", NS + "patroni_restart", args)
    assert not res.failed and res["changed"] is True, res
    assert res["restarted"][-1] == leader, "the primary goes last"
    print(f"pending-only restart of {res['restarted']}: {time.monotonic() - started:.1f} s")
    for host in members:
        status = _status(lab, host)
        assert status["postmaster_start_time"] != starts[host], host
        assert not status.get("pending_restart"), (host, status)
        assert _show(lab, host, "max_connections") == str(wanted)
    assert lab.leader() == leader, "restarting PostgreSQL through Patroni keeps the leader"
    # the task ended with the cluster whole again, as each member said about itself; /cluster (each member's last
    # HA loop) may still show a replica's reconnect after the primary's restart for a moment
    health = res["health"]
    assert health["healthy"] is True and health["leader"] == leader and health["member_status"]["name"] == leader
    assert {name: (s["state"], s["replication_state"]) for name, s in health["member_statuses"].items()
            if name != leader} == {name: ("running", "streaming") for name in members if name != leader}, health
    assert _eventually(lambda: _streaming(lab)), _cluster(lab)

    res = run_module("localhost", NS + "patroni_restart", args)
    assert not res.failed and res["changed"] is False and res["restarted"] == [], res
    assert "health" not in res, "nothing restarted, nothing to wait for"


def test_maintenance_pause_and_resume(lab, run_module):
    api = lab.api(lab.members()[1])
    paused = {"api_url": api, "state": "paused", "wait_sleep": 0.2}
    resumed = dict(paused, state="resumed")

    res = run_module("localhost", NS + "patroni_maintenance", paused, check=True)
    assert not res.failed and res["changed"] is True and res["was_paused"] is False, res
    assert not _cluster(lab).get("pause")

    try:
        res = run_module("localhost", NS + "patroni_maintenance", paused)
        assert not res.failed and res["changed"] is True, res
        assert sorted(res["members"]) == sorted(lab.members())
        assert _cluster(lab).get("pause") is True
        assert all(_status(lab, h).get("pause") is True for h in lab.members())

        res = run_module("localhost", NS + "patroni_maintenance", paused)
        assert not res.failed and res["changed"] is False, res
    finally:
        res = run_module("localhost", NS + "patroni_maintenance", resumed)
    assert not res.failed and res["changed"] is True, res
    assert not _cluster(lab).get("pause")
    assert not any(_status(lab, h).get("pause") for h in lab.members())
    res = run_module("localhost", NS + "patroni_maintenance", resumed)
    assert not res.failed and res["changed"] is False, res


def test_reinit_of_a_replica(lab, run_module):
    leader = lab.leader()
    replica = next(h for h in lab.members() if h != leader)
    start = _status(lab, replica)["postmaster_start_time"]
    args = {"api_url": lab.api(leader), "member": replica, "wait_sleep": 0.5, "wait_timeout": 300}

    res = run_module("localhost", NS + "patroni_reinit", dict(args, member=leader), check=True)
    assert res.failed and res["msg"].startswith(f"{leader} is the leader of cluster c1"), res

    res = run_module("localhost", NS + "patroni_reinit", args, check=True)
    assert not res.failed and res["changed"] is True, res
    assert _status(lab, replica)["postmaster_start_time"] == start

    started = time.monotonic()
    res = run_module("localhost", NS + "patroni_reinit", args)
    assert not res.failed and res["changed"] is True and res["state"] == "streaming", res
    print(f"reinit of {replica}: module waited {res['elapsed']} s, task {time.monotonic() - started:.1f} s")
    status = _status(lab, replica)
    assert status["postmaster_start_time"] != start
    assert (status["state"], status.get("replication_state")) == ("running", "streaming")
    assert next(m for m in _cluster(lab)["members"] if m["name"] == replica)["state"] == "streaming"

    res = run_module("localhost", NS + "patroni_reinit", dict(args, only_if_unhealthy=True))
    assert not res.failed and res["changed"] is False, res
    assert lab.leader() == leader


def test_noloadbalance_tag_takes_a_replica_out_of_the_read_pool_and_back(lab, run_module):
    replica = next(h for h in lab.members() if h != lab.leader())
    path = "/etc/patroni/patroni.yml"
    original = lab.ssh(replica, f"cat {path}").stdout

    def replica_check():
        return requests.get(lab.api(replica) + "/replica", timeout=5).status_code

    def tags():
        return _status(lab, replica).get("tags", {})

    assert replica_check() == 200
    current = original
    for wanted, code in (({"noloadbalance": True}, 503), ({"noloadbalance": None}, 200)):
        args = {"path": path, "tags": wanted, "backup": False}
        res = run_module(replica, NS + "patroni_yml", args, check=True)
        assert not res.failed and res["changed"] and res["changed_keys"] == ["tags.noloadbalance"], res
        assert lab.ssh(replica, f"cat {path}").stdout == current, "check mode wrote the file"
        res = run_module(replica, NS + "patroni_yml", args)
        assert not res.failed and res["changed"], res
        current = lab.ssh(replica, f"cat {path}").stdout
        # Patroni truth-tests the tag, so it must be a YAML boolean, never a quoted string
        assert ("noloadbalance: true\n" in current) == (code == 503), current
        reload = run_module("localhost", NS + "patroni_reload", {"api_url": lab.api(replica)})
        assert not reload.failed, reload
        assert _eventually(lambda: replica_check() == code), f"GET /replica on {replica} never answered {code}"
        assert tags().get("noloadbalance", False) is (code == 503), tags()
        again = run_module(replica, NS + "patroni_yml", args)
        assert not again.failed and not again["changed"], again
    assert lab.ssh(replica, f"cat {path}").stdout == original
    assert _streaming(lab)

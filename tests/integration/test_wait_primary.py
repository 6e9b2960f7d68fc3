"""patroni_wait_primary against real switchovers and crashes in the lab."""
from __future__ import annotations

import threading
import time

import requests

WAIT = "pgha.patroni.patroni_wait_primary"


def _timeline(lab, host):
    return requests.get(lab.api(host) + "/patroni", timeout=5).json()["timeline"]


def _switchover_in_background(lab, leader, candidate):
    """POST /switchover blocks until Patroni is done; run it beside the module so the module really waits."""
    box = {}

    def go():
        box["response"] = requests.post(lab.api(leader) + "/switchover",
                                        json={"leader": leader, "candidate": candidate}, timeout=90)

    thread = threading.Thread(target=go)
    thread.start()
    return thread, box


def test_planned_switchover_names_the_new_primary(lab, run_module):
    leader = lab.leader()
    candidate = next(h for h in lab.members() if h != leader)
    timeline = _timeline(lab, leader)
    thread, box = _switchover_in_background(lab, leader, candidate)
    try:
        res = run_module("localhost", WAIT, {
            "api_url": lab.api(leader), "not_member": leader, "member": candidate,
            "min_timeline": timeline + 1, "wait_timeout": 90, "wait_sleep": 0.2,
        })
    finally:
        thread.join()
    assert box["response"].status_code == 200, box["response"].text
    assert not res.failed, res.get("msg", res)
    assert res["changed"] is False
    assert res["primary"] == candidate
    assert res["host"] == lab.ip(candidate) and res["port"] == 5432
    assert res["api_url"].startswith(lab.api(candidate))
    assert res["timeline"] == timeline + 1
    assert res["elapsed"] < 90
    # and Patroni agrees
    assert lab.leader() == candidate


def test_crash_of_the_primary_is_followed_by_a_new_one(lab, run_module):
    leader = lab.settled()
    survivor = next(h for h in lab.members() if h != leader)
    timeline = _timeline(lab, leader)
    # kill -9 Patroni first so it cannot demote cleanly, then the postmaster
    lab.ssh(leader, "kill -9 $(cat /run/patroni/patroni.pid); "
                    "kill -9 $(head -1 /var/lib/postgresql/15/main/postmaster.pid)")
    try:
        res = run_module("localhost", WAIT, {
            "api_url": lab.api(survivor), "not_member": leader, "min_timeline": timeline + 1,
            "wait_timeout": 120, "wait_sleep": 0.5,
        })
        assert not res.failed, res.get("msg", res)
        assert res["primary"] != leader and res["primary"] in lab.members()
        assert res["timeline"] > timeline
    finally:
        lab.ssh(leader, "service patroni start")
    # the crashed member comes back as a streaming replica of the new primary
    res = run_module("localhost", WAIT, {
        "api_url": lab.api(survivor), "min_replicas": len(lab.members()) - 1, "max_lag": "16MB",
        "wait_timeout": 120, "wait_sleep": 1,
    })
    assert not res.failed, res.get("msg", res)
    back = {m["name"]: m for m in res["members"]}[leader]
    assert back["role"] == "replica" and back["streaming"] is True


def test_member_that_never_leads_times_out_with_the_state_seen(lab, run_module):
    leader = lab.leader()
    replica = next(h for h in lab.members() if h != leader)
    started = time.monotonic()
    res = run_module("localhost", WAIT, {"api_url": lab.api(leader), "member": replica,
                                         "wait_timeout": 3, "wait_sleep": 0.2})
    elapsed = time.monotonic() - started
    assert res.failed
    msg = res["msg"]
    assert "3" in msg and replica in msg and leader in msg
    assert "member" in msg
    assert elapsed < 30


def test_not_member_that_stays_primary_times_out(lab, run_module):
    leader = lab.leader()
    res = run_module("localhost", WAIT, {"api_url": lab.api(leader), "not_member": leader,
                                         "wait_timeout": 2, "wait_sleep": 0.2})
    assert res.failed
    assert leader in res["msg"] and "not_member" in res["msg"]


def test_min_replicas_counts_only_streaming_replicas_within_lag(lab, run_module):
    leader = lab.leader()
    ok = run_module("localhost", WAIT, {"api_url": lab.api(leader), "min_replicas": 2, "max_lag": "16MB",
                                        "wait_timeout": 30})
    assert not ok.failed, ok
    assert ok["primary"] == leader
    too_many = run_module("localhost", WAIT, {"api_url": lab.api(leader), "min_replicas": 3,
                                              "wait_timeout": 2, "wait_sleep": 0.2})
    assert too_many.failed
    assert "2" in too_many["msg"] and "3" in too_many["msg"]


def test_wrong_port_keeps_waiting_then_names_the_url(lab, run_module):
    url = f"http://{lab.ip(lab.members()[0])}:8009"
    started = time.monotonic()
    res = run_module("localhost", WAIT, {"api_url": url, "wait_timeout": 2, "wait_sleep": 0.2})
    elapsed = time.monotonic() - started
    assert res.failed
    assert url in res["msg"] and "refused" in res["msg"].lower()
    assert elapsed >= 2


def test_bad_url_fails_at_once(run_module):
    started = time.monotonic()
    res = run_module("localhost", WAIT, {"api_url": "ftp://user:secret@10.213.0.11:8008", "wait_timeout": 60})
    elapsed = time.monotonic() - started
    assert res.failed
    assert "ftp://10.213.0.11:8008" in res["msg"]
    assert "secret" not in res["_stdout"]
    assert elapsed < 30

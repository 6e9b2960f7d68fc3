"""Cancelling what is scheduled (state=absent of patroni_switchover and patroni_restart) against the lab, each in the
order a user trusts it: schedule an hour ahead, check mode (says what it would cancel, cancels nothing), cancel
(gone from /cluster), rerun (no change).

The tests leave the cluster as they found it: nothing scheduled, the same leader, nothing restarted."""
from __future__ import annotations

import datetime
import time

import requests

NS = "pgha.patroni."


def _cluster(lab):
    return requests.get(lab.api(lab.leader()) + "/cluster", timeout=5).json()


def _cluster_when(lab, ready, timeout=15.0):
    """GET /cluster until ready(doc) (a read may trail a write by a moment), and the last doc either way."""
    deadline = time.monotonic() + timeout
    while not ready(doc := _cluster(lab)) and time.monotonic() < deadline:
        time.sleep(0.3)
    return doc


def _in_an_hour():
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).replace(microsecond=0)


def _scheduled_restart(doc, member):
    return next(m for m in doc["members"] if m["name"] == member).get("scheduled_restart")


def test_cancel_a_scheduled_switchover(lab, run_module):
    started = time.monotonic()
    leader = lab.leader()
    candidate = next(h for h in lab.members() if h != leader)
    when = _in_an_hour()
    args = {"api_url": lab.api(leader)}

    res = run_module("localhost", NS + "patroni_switchover",
                     dict(args, candidate=candidate, scheduled_at=when.isoformat()))
    assert not res.failed and res["changed"] is True, res
    scheduled = _cluster_when(lab, lambda doc: doc.get("scheduled_switchover")).get("scheduled_switchover")
    assert scheduled and scheduled["to"] == candidate, _cluster(lab)
    # Patroni 3.0.2 (the Debian lab) leaves the scope out of /cluster.
    label = "cluster c1" if _cluster(lab).get("scope") else "the cluster"
    what = f"the switchover of {label} scheduled at {scheduled['at']} from {scheduled['from']} to {candidate}"

    # The filters, written differently from Patroni's echo, must still match the real scheduled switchover.
    absent = dict(args, state="absent", candidate=candidate, scheduled_at=when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    res = run_module("localhost", NS + "patroni_switchover", absent, check=True)
    assert not res.failed and res["changed"] is True, res
    assert res["msg"] == f"would cancel {what}"
    assert _cluster(lab).get("scheduled_switchover") == scheduled

    res = run_module("localhost", NS + "patroni_switchover", absent)
    assert not res.failed and res["changed"] is True, res
    assert res["msg"] == f"cancelled {what}" and res["answer"] == "scheduled switchover deleted"
    assert "scheduled_switchover" not in _cluster_when(lab, lambda doc: "scheduled_switchover" not in doc)

    res = run_module("localhost", NS + "patroni_switchover", absent)
    assert not res.failed and res["changed"] is False, res
    assert res["msg"] == f"no switchover of {label} is scheduled"
    assert lab.leader() == leader
    print(f"switchover schedule -> check -> cancel -> rerun: {time.monotonic() - started:.1f} s")


def test_cancel_a_scheduled_restart_on_one_replica(lab, run_module):
    started = time.monotonic()
    leader = lab.leader()
    replica = next(h for h in lab.members() if h != leader)
    start_time = requests.get(lab.api(replica) + "/patroni", timeout=5).json()["postmaster_start_time"]
    args = {"api_url": lab.api(leader), "members": [replica]}

    res = run_module("localhost", NS + "patroni_restart", dict(args, scheduled_at=_in_an_hour().isoformat()))
    assert not res.failed and res["scheduled"] == [replica], res
    scheduled = _scheduled_restart(_cluster_when(lab, lambda doc: _scheduled_restart(doc, replica)), replica)
    assert scheduled, _cluster(lab)

    # Every member selected, as a user cancelling "whatever is scheduled" would: only the replica has something.
    absent = {"api_url": lab.api(leader), "all_members": True, "state": "absent"}
    res = run_module("localhost", NS + "patroni_restart", absent, check=True)
    assert not res.failed and res["changed"] is True and res["cancelled"] == [replica], res
    assert res["msg"] == f"would cancel the scheduled restart of {replica} (at {scheduled['schedule']})"
    assert _scheduled_restart(_cluster(lab), replica) == scheduled

    res = run_module("localhost", NS + "patroni_restart", absent)
    assert not res.failed and res["changed"] is True and res["cancelled"] == [replica], res
    assert res["messages"] == {replica: "scheduled restart deleted"}
    assert all(reason == "no restart scheduled" for reason in res["not_cancelled"].values()), res
    assert _scheduled_restart(_cluster_when(lab, lambda doc: not _scheduled_restart(doc, replica)), replica) is None

    res = run_module("localhost", NS + "patroni_restart", absent)
    assert not res.failed and res["changed"] is False and res["cancelled"] == [], res

    assert requests.get(lab.api(replica) + "/patroni", timeout=5).json()["postmaster_start_time"] == start_time
    print(f"restart schedule -> check -> cancel -> rerun: {time.monotonic() - started:.1f} s")

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy
import datetime

import pytest
import requests

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import PatroniClient, PatroniError
from ansible_collections.pgha.patroni.plugins.module_utils._facts import build_cluster
from ansible_collections.pgha.patroni.plugins.module_utils._operations import (
    PatroniOperationError,
    PatroniOperationTimeout,
)
from ansible_collections.pgha.patroni.plugins.module_utils._switchover import (
    FailoverRunner,
    SwitchoverRunner,
    best_candidate,
)
from ansible_collections.pgha.patroni.tests.unit.helpers.fake_http import GET, Call
from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import fake  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.module import load_fixture

M1, M2, M3 = "http://10.213.0.11:8008", "http://10.213.0.12:8008", "http://10.213.0.13:8008"
FUTURE = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)).replace(microsecond=0)


def cluster_doc(leader="c1m1", sync=False, paused=False, scheduled=None, timeline=2, leader_state="running"):
    """The 4.1 fixture with c1m3 untagged and asynchronous unless asked, and the leader moved where wanted."""
    doc = copy.deepcopy(load_fixture("patroni-4.1", "cluster.json"))
    for member in doc["members"]:
        member.pop("tags", None)
        member.pop("pending_restart", None)
        member.pop("pending_restart_reason", None)
        member["timeline"] = timeline
        if member["name"] == leader:
            member["role"], member["state"] = "leader", leader_state
            for key in ("lag", "lsn", "receive_lag", "replay_lag", "receive_lsn", "replay_lsn"):
                member.pop(key, None)
        else:
            member["role"], member["state"] = ("sync_standby" if sync and member["name"] == "c1m3" else "replica",
                                               "streaming")
            member["lag"] = {"c1m1": 0, "c1m2": 500, "c1m3": 100}[member["name"]]
    if leader is None:
        doc["members"] = [m for m in doc["members"] if m["name"] != "c1m1"]
    if paused:
        doc["pause"] = True
    if scheduled:
        doc["scheduled_switchover"] = scheduled
    return doc


def primary_status(name, timeline):
    doc = copy.deepcopy(load_fixture("patroni-4.1", "primary-patroni.json"))
    doc["patroni"]["name"] = name
    doc["timeline"] = timeline
    return doc


def new_primary_calls(name, url, timeline=3):
    """What PrimaryWaiter asks once the switchover is done."""
    return [GET(M1 + "/cluster", json_body=cluster_doc(leader=name, timeline=timeline), repeat=True),
            GET(url + "/patroni", json_body=primary_status(name, timeline), repeat=True),
            GET(url + "/read-write", json_body={}, repeat=True)]


def client():
    return PatroniClient(M1)


# ------------------------------------------------------------------------------------------------------------
# Candidate choice


def test_best_candidate_is_the_least_lagging_healthy_replica():
    assert best_candidate(build_cluster(cluster_doc()), None)["name"] == "c1m3"


def test_best_candidate_skips_nofailover_and_noloadbalance():
    doc = cluster_doc()
    doc["members"][2]["tags"] = {"nofailover": True}
    assert best_candidate(build_cluster(doc), None)["name"] == "c1m2"
    doc["members"][1]["tags"] = {"noloadbalance": "true"}
    with pytest.raises(PatroniOperationError) as info:
        best_candidate(build_cluster(doc), None)
    assert info.value.msg == ("no replica of cluster c1 can take over: c1m2 is tagged noloadbalance; c1m3 is tagged "
                              "nofailover. Wait until a replica streams, or name a candidate")


def test_best_candidate_only_sync_standbys_in_synchronous_mode():
    doc = cluster_doc(sync=True)
    doc["members"][2]["lag"] = 9999
    assert best_candidate(build_cluster(doc), None)["name"] == "c1m3"
    doc["members"][2]["state"] = "stopped"
    with pytest.raises(PatroniOperationError) as info:
        best_candidate(build_cluster(doc), None)
    assert info.value.msg.startswith("no synchronous standby of cluster c1 can take over: c1m3 is stopped, not "
                                     "streaming.")


def test_best_candidate_skips_unknown_lag_and_old_timeline():
    doc = cluster_doc()
    doc["members"][1]["lag"] = "unknown"
    doc["members"][2]["timeline"] = 1
    cluster = build_cluster(doc)
    with pytest.raises(PatroniOperationError) as info:
        best_candidate(cluster, cluster["members"][0])
    assert "c1m2 has an unknown lag; c1m3 is on timeline 1, behind the leader's 2" in info.value.msg


# ------------------------------------------------------------------------------------------------------------
# Switchover decisions


def test_candidate_already_leads_is_a_no_op(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster_doc()))
    result = SwitchoverRunner(client(), candidate="c1m1").run()
    assert result["changed"] is False and result["msg"] == "c1m1 already leads cluster c1"


def test_leader_that_no_longer_leads_is_a_no_op(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster_doc(leader="c1m2")))
    result = SwitchoverRunner(client(), leader="c1m1").run()
    assert result["changed"] is False and result["msg"] == "c1m1 does not lead cluster c1 (c1m2 does)"


def test_unknown_candidate_fails_before_any_post(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster_doc()))
    with pytest.raises(PatroniOperationError) as info:
        SwitchoverRunner(client(), candidate="c9m9").run()
    assert info.value.msg == "candidate 'c9m9' is not a member of cluster c1 (members: c1m1, c1m2, c1m3): fix the name"


def test_leaderless_cluster_points_to_failover(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster_doc(leader=None)))
    with pytest.raises(PatroniOperationError) as info:
        SwitchoverRunner(client(), candidate="c1m2").run()
    assert info.value.msg == ("cluster c1 has no leader, so there is nothing to switch over from: use "
                              "patroni_failover with a candidate")


def test_check_mode_predicts_without_posting(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster_doc()))
    result = SwitchoverRunner(client(), check_mode=True).run()
    assert result["changed"] is True and result["candidate"] == "c1m3"
    assert result["msg"] == "would switch cluster c1 over from c1m1 to c1m3"


def test_switchover_posts_to_the_leader_and_waits(fake):
    post = Call("POST", M1 + "/switchover", 200, body='Successfully switched over to "c1m3"')
    fake.expect(GET(M1 + "/cluster", json_body=cluster_doc()), post, *new_primary_calls("c1m3", M3))
    result = SwitchoverRunner(client(), wait_sleep=0.05).run()
    assert post.seen[0]["json"] == {"leader": "c1m1", "candidate": "c1m3"}
    assert post.seen[0]["timeout"] >= 30
    assert (result["changed"], result["primary"], result["previous_primary"], result["timeline"]) == \
        (True, "c1m3", "c1m1", 3)
    assert result["msg"] == "cluster c1 switched over from c1m1 to c1m3"
    assert result["answer"] == 'Successfully switched over to "c1m3"'


def test_status_unknown_is_waited_out(fake):
    post = Call("POST", M1 + "/switchover", 503, body="Switchover status unknown")
    fake.expect(GET(M1 + "/cluster", json_body=cluster_doc()), post, *new_primary_calls("c1m2", M2))
    result = SwitchoverRunner(client(), candidate="c1m2", wait_sleep=0.05).run()
    assert result["primary"] == "c1m2"


def test_post_timeout_then_no_new_primary_says_status_unknown(fake):
    post = Call("POST", M1 + "/switchover", raises=requests.exceptions.ReadTimeout("read timed out"))
    fake.expect(GET(M1 + "/cluster", json_body=cluster_doc()), post,
                GET(M1 + "/cluster", json_body=cluster_doc(), repeat=True),
                GET(M1 + "/patroni", json_body=primary_status("c1m1", 2), repeat=True),
                GET(M1 + "/read-write", json_body={}, repeat=True))
    with pytest.raises(PatroniOperationTimeout) as info:
        SwitchoverRunner(client(), candidate="c1m2", wait_timeout=0.2, wait_sleep=0.05).run()
    assert info.value.msg.startswith(f"Patroni did not confirm the switchover (no answer within 30 s from POST "
                                     f"{M1}/switchover")
    assert "c1m1 is primary, not c1m2 (member)" in info.value.msg


SAFE = "HTTP {status} {text!r}"
ANSWERS = [
    (412, "candidate name does not match with sync_standby",
     "synchronous_mode is on and Patroni only switches over to a synchronous standby; name the sync standby as "
     "candidate, or leave candidate unset so the module picks it"),
    (412, "switchover is not possible: can not find sync_standby",
     "synchronous_mode is on but no member is a synchronous standby right now; wait until a replica is synchronous "
     "(patroni_facts shows it) or turn synchronous_mode off"),
    (412, "candidate does not exists",
     "Patroni does not know the candidate as a member of this cluster; check the name against /cluster"),
    (412, "switchover is not possible: cluster does not have members except leader",
     "the cluster has no replica to switch over to"),
    (412, "switchover is not possible: no good candidates have been found",
     "no member can take over: each replica is unreachable, tagged nofailover, or has a failed watchdog"),
    (412, "leader name does not match", "the leader changed while the task ran; rerun it to act on the current leader"),
    (400, "Switchover is possible only to a specific candidate in a paused state",
     "the cluster is paused (maintenance mode); name a candidate"),
    (400, "Switchover target and source are the same", "the candidate already is the leader"),
    (400, "Switchover could be performed only from a specific leader",
     "Patroni needs the current leader's name; rerun the task"),
    (422, "Cannot schedule switchover in the past",
     "scheduled_at is in the past by the member's clock; check the clocks and the time zone"),
    (503, "failed to write failover key into DCS",
     "the member could not write the failover key into the DCS; check that etcd/Consul/ZooKeeper is healthy"),
    (503, "Switchover failed",
     "the candidate did not take over in time (it may lag more than maximum_lag_on_failover, be unhealthy or not "
     "stream); the old leader stays primary. Check its lag with patroni_facts and the candidate's Patroni log"),
]


@pytest.mark.parametrize("status,text,why", ANSWERS)
def test_refusals_say_why(fake, status, text, why):
    fake.expect(GET(M1 + "/cluster", json_body=cluster_doc()),
                Call("POST", M1 + "/switchover", status, body=text, headers={"Content-Type": "text/html"}))
    with pytest.raises(PatroniOperationError) as info:
        SwitchoverRunner(client(), candidate="c1m2").run()
    assert info.value.msg == (f"switchover of cluster c1 from c1m1 to c1m2 refused by {M1}/switchover "
                              f"(HTTP {status} {text!r}): {why}")
    assert info.value.status == status


def test_unparsable_schedule_answer(fake):
    when = FUTURE.isoformat()
    fake.expect(GET(M1 + "/cluster", json_body=cluster_doc()),
                Call("POST", M1 + "/switchover", 422, body="Unable to parse scheduled timestamp"))
    with pytest.raises(PatroniOperationError) as info:
        SwitchoverRunner(client(), candidate="c1m2", scheduled_at=when).run()
    assert info.value.msg.endswith("Patroni could not read scheduled_at; use ISO 8601 with a time zone, e.g. "
                                   "2026-11-25T03:00:00+00:00")


# ------------------------------------------------------------------------------------------------------------
# Scheduled switchovers


def test_scheduled_switchover_202(fake):
    when = FUTURE.isoformat()
    post = Call("POST", M1 + "/switchover", 202, body="Switchover scheduled")
    fake.expect(GET(M1 + "/cluster", json_body=cluster_doc()), post)
    result = SwitchoverRunner(client(), candidate="c1m2", scheduled_at=when).run()
    assert post.seen[0]["json"] == {"leader": "c1m1", "candidate": "c1m2", "scheduled_at": when}
    assert result["changed"] is True
    assert result["msg"] == f"switchover of cluster c1 from c1m1 to c1m2 scheduled at {when}"


def test_same_schedule_is_not_sent_again(fake):
    when = FUTURE.isoformat()
    echoed = FUTURE.astimezone(datetime.timezone(datetime.timedelta(hours=1))).isoformat()
    fake.expect(GET(M1 + "/cluster", json_body=cluster_doc(scheduled={"at": echoed, "from": "c1m1", "to": "c1m2"})))
    result = SwitchoverRunner(client(), candidate="c1m2", scheduled_at=when).run()
    assert result["changed"] is False and result["scheduled_at"] == echoed


def test_other_schedule_fails(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster_doc(scheduled={"at": "2030-01-01T00:00:00+00:00",
                                                                      "to": "c1m3"})))
    with pytest.raises(PatroniOperationError) as info:
        SwitchoverRunner(client(), candidate="c1m2", scheduled_at=FUTURE.isoformat()).run()
    assert info.value.msg == ("another switchover of cluster c1 is scheduled at 2030-01-01T00:00:00+00:00 (to c1m3): "
                              "cancel it first (patroni_switchover state=absent)")


def test_paused_refuses_a_schedule(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster_doc(paused=True)))
    with pytest.raises(PatroniOperationError) as info:
        SwitchoverRunner(client(), candidate="c1m2", scheduled_at=FUTURE.isoformat()).run()
    assert info.value.msg == ("cluster c1 is paused (maintenance mode) and Patroni does not schedule switchovers "
                              "then: resume it or leave scheduled_at unset")


@pytest.mark.parametrize("value,msg", [
    ("2026-11-25T03:00:00", "scheduled_at='2026-11-25T03:00:00' has no time zone: Patroni refuses naive times. Add "
                            "one, e.g. 2026-11-25T03:00:00+00:00 or 2026-11-25T03:00:00Z"),
    ("2001-01-01T00:00:00Z", "scheduled_at='2001-01-01T00:00:00Z' is in the past"),
    ("tomorrow+01:00", "scheduled_at='tomorrow+01:00' is not an ISO 8601 date and time: use e.g. "
                       "2026-11-25T03:00:00+00:00"),
])
def test_bad_schedules_fail_before_any_request(fake, value, msg):
    with pytest.raises(PatroniError) as info:
        SwitchoverRunner(client(), candidate="c1m2", scheduled_at=value)
    assert info.value.msg.startswith(msg) and info.value.kind == "bad_option"


def test_leader_and_candidate_the_same():
    with pytest.raises(PatroniError) as info:
        SwitchoverRunner(client(), candidate="c1m2", leader="c1m2")
    assert info.value.msg.startswith("leader and candidate are both 'c1m2'")


# ------------------------------------------------------------------------------------------------------------
# Failover


def test_failover_refused_with_a_healthy_leader(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster_doc()))
    with pytest.raises(PatroniOperationError) as info:
        FailoverRunner(client(), "c1m2").run()
    assert info.value.msg == ("cluster c1 has a healthy leader (c1m1, running): a failover is for a cluster without "
                              "one. Use patroni_switchover for a planned change, or force=true to fail over anyway")


def test_failover_to_the_healthy_leader_is_a_no_op(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster_doc(leader="c1m2")))
    result = FailoverRunner(client(), "c1m2").run()
    assert result["changed"] is False and result["msg"] == "c1m2 already leads cluster c1"


def test_failover_of_a_leaderless_cluster_asks_the_candidate(fake):
    post = Call("POST", M2 + "/failover", 200, body='Successfully failed over to "c1m2"')
    fake.expect(GET(M1 + "/cluster", json_body=cluster_doc(leader=None)), post, *new_primary_calls("c1m2", M2))
    result = FailoverRunner(client(), "c1m2", wait_sleep=0.05).run()
    assert post.seen[0]["json"] == {"candidate": "c1m2"}
    assert result["changed"] is True and result["primary"] == "c1m2" and result["previous_primary"] is None


def test_failover_with_a_stopped_leader_goes_to_the_leader(fake):
    post = Call("POST", M1 + "/failover", 200, body='Successfully failed over to "c1m2"')
    fake.expect(GET(M1 + "/cluster", json_body=cluster_doc(leader_state="stopped")), post)
    result = FailoverRunner(client(), "c1m2", wait=False).run()
    assert result["changed"] is True and result["answer"] == 'Successfully failed over to "c1m2"'


def test_forced_failover_check_mode(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster_doc()))
    result = FailoverRunner(client(), "c1m3", force=True, check_mode=True).run()
    assert result["changed"] is True and result["msg"] == "would fail cluster c1 over to c1m3"


@pytest.mark.parametrize("status,text,why", [
    (400, "Failover could be performed only to a specific candidate", "a failover needs a candidate"),
    (412, "candidate does not exists",
     "Patroni does not know the candidate as a member of this cluster; check the name against /cluster"),
    (503, "Failover failed",
     "the candidate did not take over in time (it may be unhealthy or not reachable); read its Patroni log"),
])
def test_failover_refusals(fake, status, text, why):
    fake.expect(GET(M1 + "/cluster", json_body=cluster_doc(leader=None)),
                Call("POST", M2 + "/failover", status, body=text))
    with pytest.raises(PatroniOperationError) as info:
        FailoverRunner(client(), "c1m2").run()
    assert info.value.msg == f"failover of cluster c1 to c1m2 refused by {M2}/failover (HTTP {status} {text!r}): {why}"

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy
import datetime

import pytest
import requests

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import PatroniClient, PatroniError
from ansible_collections.pgha.patroni.plugins.module_utils._operations import (
    PatroniOperationError,
    PatroniOperationTimeout,
    ReinitRunner,
    ReloadRunner,
    RestartRunner,
    parse_schedule,
    run_operation,
    same_time,
)
from ansible_collections.pgha.patroni.tests.unit.helpers.fake_http import GET, Call
from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import fake  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.module import AnsibleFailJson, load_fixture

M1, M2, M3 = "http://10.213.0.11:8008", "http://10.213.0.12:8008", "http://10.213.0.13:8008"
FUTURE = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)).replace(microsecond=0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def cluster(pending=(), paused=False, scheduled=None, states=None):
    doc = copy.deepcopy(load_fixture("patroni-4.1", "cluster.json"))
    for member in doc["members"]:
        member.pop("pending_restart", None)
        member.pop("pending_restart_reason", None)
        member.pop("tags", None)
        if member["name"] in pending:
            member["pending_restart"] = True
        if scheduled and member["name"] in scheduled:
            member["scheduled_restart"] = {"schedule": scheduled[member["name"]]}
        if states and member["name"] in states:
            member["state"] = states[member["name"]]
    if paused:
        doc["pause"] = True
    return doc


def restart_call(url, status=200, text="restarted successfully"):
    return Call("POST", url + "/restart", status, body=text)


# ------------------------------------------------------------------------------------------------------------
# Schedules


def test_parse_schedule_normalises_z():
    now = datetime.datetime(2026, 11, 25, tzinfo=datetime.timezone.utc)
    assert parse_schedule("2026-11-26T03:00:00Z", now=now) == "2026-11-26T03:00:00+00:00"
    assert parse_schedule(None) is None


def test_same_time_compares_instants():
    assert same_time("2026-11-26T03:00:00+00:00", "2026-11-26T04:00:00+01:00")
    assert not same_time("2026-11-26T03:00:00+00:00", "2026-11-26T03:00:00+01:00")
    assert not same_time(None, "2026-11-26T03:00:00+00:00")


# ------------------------------------------------------------------------------------------------------------
# Restart


def test_restart_all_goes_replicas_first_primary_last(fake):
    calls = [restart_call(M2), restart_call(M3), restart_call(M1)]
    fake.expect(GET(M1 + "/cluster", json_body=cluster()), *calls)
    fake.ordered = True
    result = RestartRunner(PatroniClient(M1), all_members=True).run()
    assert result["restarted"] == ["c1m2", "c1m3", "c1m1"]
    assert result["messages"] == {n: "restarted successfully" for n in ("c1m1", "c1m2", "c1m3")}
    assert calls[0].seen[0]["json"] == {} and calls[0].seen[0]["timeout"] == 330


def test_restart_without_members_means_the_member_at_api_url(fake):
    call = restart_call(M2)
    fake.expect(GET(M2 + "/cluster", json_body=cluster()), call)
    result = RestartRunner(PatroniClient(M2), restart_timeout=60).run()
    assert result["restarted"] == ["c1m2"] and call.seen[0]["json"] == {"timeout": 60}
    assert call.seen[0]["timeout"] == 90


def test_api_url_that_is_no_member(fake):
    fake.expect(GET("http://127.0.0.1:8008/cluster", json_body=cluster()))
    with pytest.raises(PatroniOperationError) as info:
        RestartRunner(PatroniClient("http://127.0.0.1:8008")).run()
    assert info.value.msg == ("http://127.0.0.1:8008 is not the api_url of any member of cluster c1 (members: c1m1, "
                              "c1m2, c1m3): point api_url at the member itself (restapi.connect_address), or name it "
                              "in members")


def test_unknown_member_name(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster()))
    with pytest.raises(PatroniOperationError) as info:
        RestartRunner(PatroniClient(M1), members=["c1m9"]).run()
    assert info.value.msg == "member 'c1m9' is not in cluster c1 (members: c1m1, c1m2, c1m3): fix the name in members"


def test_pending_only_and_role_filter_before_sending(fake):
    call = restart_call(M3)
    fake.expect(GET(M1 + "/cluster", json_body=cluster(pending=("c1m1", "c1m3"))), call)
    result = RestartRunner(PatroniClient(M1), all_members=True, pending_only=True, role="replica").run()
    assert result["restarted"] == ["c1m3"] and call.seen[0]["json"] == {"restart_pending": True}
    assert result["not_restarted"] == {"c1m1": "not a replica (role=replica)",
                                       "c1m2": "no pending restart (pending_only)"}


def test_role_primary(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster()))
    result = RestartRunner(PatroniClient(M1), all_members=True, role="primary", check_mode=True).run()
    assert result["restarted"] == ["c1m1"] and result["changed"] is True


def test_nothing_pending_is_unchanged(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster()))
    result = RestartRunner(PatroniClient(M1), all_members=True, pending_only=True).run()
    assert result["changed"] is False and result["restarted"] == []


def test_pending_gone_when_the_request_arrives_is_unchanged(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster(pending=("c1m2",))),
                restart_call(M2, 503, "restart conditions are not satisfied"))
    result = RestartRunner(PatroniClient(M1), members=["c1m2"], pending_only=True).run()
    assert result["changed"] is False
    assert result["not_restarted"] == {"c1m2": "Patroni found no pending restart when the request arrived"}


RESTART_ANSWERS = [
    (503, "restart conditions are not satisfied",
     "the member no longer matches the filters (no pending restart, or a different role or version)"),
    (503, "postgres is still starting", "PostgreSQL on the member is still starting; run the task again later"),
    (503, "reinitialize already in progress",
     "the member is busy with another operation (restart, reinitialize, bootstrap); wait for it and rerun"),
    (503, "restart failed", "PostgreSQL did not come back; read the member's Patroni and PostgreSQL logs"),
    (409, "Another restart is already scheduled",
     "a different restart is already scheduled on the member; cancel it first (patroni_restart state=absent) or use "
     "the same scheduled_at"),
    (500, "Can't schedule restart in the paused state",
     "the cluster is paused (maintenance mode) and Patroni does not schedule restarts then; resume it or restart "
     "without scheduled_at"),
    (400, "Unknown filter for the scheduled restart: restart_pending",
     "this Patroni does not know a filter the module sent; upgrade Patroni"),
    (422, "Cannot schedule restart in the past",
     "scheduled_at is in the past by the member's clock; check the clocks and the time zone"),
    (418, "I'm a teapot", "see the member's Patroni log"),
]


@pytest.mark.parametrize("status,text,why", RESTART_ANSWERS)
def test_restart_refusals(fake, status, text, why):
    fake.expect(GET(M1 + "/cluster", json_body=cluster()), restart_call(M2, status, text))
    with pytest.raises(PatroniOperationError) as info:
        RestartRunner(PatroniClient(M1), members=["c1m2"]).run()
    assert info.value.msg == f"restart of c1m2 refused by {M2}/restart (HTTP {status} {text!r}): {why}"


def test_scheduled_restart(fake):
    when = FUTURE.isoformat()
    call = restart_call(M2, 202, "Restart scheduled")
    fake.expect(GET(M1 + "/cluster", json_body=cluster(scheduled={"c1m3": when})), call)
    result = RestartRunner(PatroniClient(M1), members=["c1m2", "c1m3"], scheduled_at=when).run()
    assert call.seen[0]["json"] == {"schedule": when}
    assert result["scheduled"] == ["c1m2"] and result["not_restarted"] == {"c1m3": "this restart is already scheduled"}


def test_scheduled_restart_in_a_paused_cluster(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster(paused=True)))
    with pytest.raises(PatroniOperationError) as info:
        RestartRunner(PatroniClient(M1), all_members=True, scheduled_at=FUTURE.isoformat()).run()
    assert info.value.msg == ("cluster c1 is paused (maintenance mode) and Patroni does not schedule restarts then: "
                              "resume it or leave scheduled_at unset")


def test_restart_timeout_must_be_positive():
    with pytest.raises(PatroniError) as info:
        RestartRunner(PatroniClient(M1), restart_timeout=0)
    assert info.value.msg == "restart_timeout=0 must be more than 0 seconds"


def test_cluster_from_another_member_when_the_first_is_down(fake):
    fake.expect(GET(M1 + "/cluster", raises=requests.exceptions.ConnectionError(ConnectionRefusedError(111, "x"))),
                GET(M2 + "/cluster", json_body=cluster()), restart_call(M3))
    result = RestartRunner(PatroniClient(M1), members=["c1m3"], member_api_urls=[M2]).run()
    assert result["restarted"] == ["c1m3"]


def test_no_member_answers(fake):
    fake.expect(GET(M1 + "/cluster", raises=requests.exceptions.ConnectionError(ConnectionRefusedError(111, "x"))))
    with pytest.raises(PatroniOperationError) as info:
        RestartRunner(PatroniClient(M1)).run()
    assert info.value.msg.startswith(f"no member answered GET /cluster: {M1}: connection refused by 10.213.0.11:8008")
    assert info.value.msg.endswith("Check that Patroni runs and api_url (or member_api_urls) names a reachable member")


# ------------------------------------------------------------------------------------------------------------
# Reload


def test_reload_all_and_wait(fake):
    posts = [Call("POST", url + "/reload", 202, body="reload scheduled") for url in (M1, M2, M3)]
    fake.expect(GET(M1 + "/cluster", json_body=cluster()), *posts,
                *[GET(url + "/patroni", json_body={"state": "running"}) for url in (M1, M2, M3)],
                GET(M1 + "/cluster", json_body=cluster(pending=("c1m2",))))
    result = ReloadRunner(PatroniClient(M1), all_members=True).run()
    assert result == {"changed": True, "reloaded": ["c1m2", "c1m3", "c1m1"], "pending_restart": ["c1m2"]}


def test_reload_check_mode_sends_nothing(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster()))
    result = ReloadRunner(PatroniClient(M1), check_mode=True).run()
    assert result == {"changed": True, "reloaded": ["c1m1"], "pending_restart": []}


def test_reload_api_dead_afterwards(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster()), Call("POST", M1 + "/reload", 202, body="reload scheduled"),
                GET(M1 + "/patroni", raises=requests.exceptions.ConnectionError(ConnectionResetError(104, "x")),
                    repeat=True))
    clock = Clock()
    with pytest.raises(PatroniOperationTimeout) as info:
        ReloadRunner(PatroniClient(M1), wait_timeout=2, clock=clock, sleep=clock.sleep).run()
    assert info.value.msg.startswith("the REST API of c1m1 did not answer within 2 s after the reload (a reload with "
                                     "a broken TLS certificate or key leaves it dead until Patroni restarts): c1m1: "
                                     "connection to 10.213.0.11:8008 reset by the server")


# ------------------------------------------------------------------------------------------------------------
# Reinitialize


def status(state="running", start="2026-11-25 10:00:00+00:00"):
    return {"state": state, "role": "replica", "postmaster_start_time": start, "replication_state": "streaming"}


def test_reinit_waits_until_the_member_streams_again(fake):
    post = Call("POST", M3 + "/reinitialize", 200, body="reinitialize started")
    fake.expect(GET(M1 + "/cluster", json_body=cluster()), GET(M3 + "/patroni", json_body=status()), post,
                GET(M3 + "/patroni", json_body=status("creating replica", None)),
                GET(M3 + "/patroni", json_body=status(start="2026-11-25 11:00:00+00:00")),
                GET(M1 + "/cluster", json_body=cluster()))
    fake.ordered = True
    clock = Clock()
    result = ReinitRunner(PatroniClient(M1), "c1m3", from_leader=True, clock=clock, sleep=clock.sleep).run()
    assert post.seen[0]["json"] == {"force": False, "from_leader": True}
    assert result["changed"] is True and result["state"] == "streaming" and result["msg"] == "c1m3 reinitialized"
    assert clock.now == 1.0


def test_reinit_only_if_unhealthy_leaves_a_streaming_member(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster()))
    result = ReinitRunner(PatroniClient(M1), "c1m2", only_if_unhealthy=True).run()
    assert result["changed"] is False and result["msg"] == "c1m2 streams on timeline 2 (only_if_unhealthy)"


def test_reinit_only_if_unhealthy_rebuilds_a_stopped_member_in_check_mode(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster(states={"c1m2": "stopped"})))
    result = ReinitRunner(PatroniClient(M1), "c1m2", only_if_unhealthy=True, check_mode=True).run()
    assert result["changed"] is True and result["state_before"] == "stopped"


def test_reinit_of_the_leader_is_refused(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster()))
    with pytest.raises(PatroniOperationError) as info:
        ReinitRunner(PatroniClient(M1), "c1m1").run()
    assert info.value.msg == ("c1m1 is the leader of cluster c1: only replicas can be reinitialized; switch over "
                              "first (patroni_switchover)")


def test_reinit_without_a_leader_is_refused(fake):
    doc = cluster()
    doc["members"] = doc["members"][1:]
    fake.expect(GET(M1 + "/cluster", json_body=doc))
    with pytest.raises(PatroniOperationError) as info:
        ReinitRunner(PatroniClient(M1), "c1m2").run()
    assert info.value.msg == ("cluster c1 has no leader, so c1m2 has nothing to copy from: fix the primary first "
                              "(patroni_failover)")


@pytest.mark.parametrize("text,why", [
    ("Cluster has no leader, can not reinitialize",
     "the cluster has no leader to copy from; fix the primary first (see patroni_failover)"),
    ("I am the leader, can not reinitialize", "the member is the leader; only replicas can be reinitialized"),
    ("restart already in progress",
     "the member is busy with another operation; wait for it, or set force=true to cancel it"),
])
def test_reinit_refusals(fake, text, why):
    fake.expect(GET(M1 + "/cluster", json_body=cluster()), GET(M2 + "/patroni", json_body=status()),
                Call("POST", M2 + "/reinitialize", 503, body=text))
    with pytest.raises(PatroniOperationError) as info:
        ReinitRunner(PatroniClient(M1), "c1m2").run()
    assert info.value.msg == f"reinitialize of c1m2 refused by {M2}/reinitialize (HTTP 503 {text!r}): {why}"


def test_reinit_timeout_says_what_was_seen(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster()), GET(M2 + "/patroni", json_body=status()),
                Call("POST", M2 + "/reinitialize", 200, body="reinitialize started"),
                GET(M2 + "/patroni", json_body=status("creating replica", None), repeat=True))
    clock = Clock()
    with pytest.raises(PatroniOperationTimeout) as info:
        ReinitRunner(PatroniClient(M1), "c1m2", wait_timeout=3, clock=clock, sleep=clock.sleep).run()
    assert info.value.msg == ("c1m2 was reinitialized but does not stream again after 3.0 s (wait_timeout=3); last "
                              "seen: state creating replica, replication_state streaming. A large database takes "
                              "longer: raise wait_timeout, and read the member's Patroni log")


class StubModule:
    """Just what run_operation uses of AnsibleModule; fail_json raises like the module test helper's."""

    def __init__(self) -> None:
        self.params = {"api_url": "http://user:secret@10.213.0.11:8008", "timeout": 5.0}
        self.no_log_values: set[str] = set()

    def fail_json(self, msg: str = "", **kwargs: object) -> None:
        raise AnsibleFailJson(dict(kwargs, failed=True, msg=msg))


def test_run_operation_returns_the_result_and_hides_url_credentials():
    module = StubModule()
    assert run_operation(module, lambda client: client.api_url) == M1
    assert "secret" in module.no_log_values


def test_run_operation_puts_the_last_state_of_an_expired_wait_beside_the_message():
    def expire(client):
        raise PatroniOperationTimeout("c1m2 did not lead within 2 s", {"elapsed": 2.0, "members": ["c1m1"]})

    with pytest.raises(AnsibleFailJson) as info:
        run_operation(StubModule(), expire)
    result = info.value.result
    assert result["msg"] == "c1m2 did not lead within 2 s"
    assert result["elapsed"] == 2.0 and result["members"] == ["c1m1"]
    assert result["error"]["kind"] == "timeout" and result["error"]["retryable"] is False


def test_run_operation_fails_with_msg_and_error_only():
    def refuse(client):
        raise PatroniOperationError("switchover refused", url=M1, status=412)

    with pytest.raises(AnsibleFailJson) as info:
        run_operation(StubModule(), refuse)
    assert sorted(info.value.result) == ["error", "failed", "msg"]
    assert info.value.result["error"]["status"] == 412

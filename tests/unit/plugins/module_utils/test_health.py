# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy

import pytest

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    PatroniAuthError,
    PatroniClient,
    PatroniError,
)
from ansible_collections.pgha.patroni.plugins.module_utils._health import (
    PatroniHealthBlocked,
    PatroniUnhealthy,
    health_after_restart,
    wait_for_health,
)
from ansible_collections.pgha.patroni.plugins.module_utils._operations import RestartRunner
from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import fake  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.fake_http import GET, Call
from ansible_collections.pgha.patroni.tests.unit.helpers.module import load_fixture
from ansible_collections.pgha.patroni.tests.unit.plugins.module_utils.test_facts import dropped, refused
from ansible_collections.pgha.patroni.tests.unit.plugins.module_utils.test_wait_primary import Clock, cluster

M1, M2, M3 = "http://10.213.0.11:8008", "http://10.213.0.12:8008", "http://10.213.0.13:8008"


def healthy(**changes: dict) -> dict:
    """c1m1 leads on timeline 2, c1m2 and c1m3 stream with lag 0, nothing scheduled."""
    return cluster("c1m1", **changes)


def replica_status(name: str = "c1m2", **changes) -> dict:
    doc = copy.deepcopy(load_fixture("patroni-4.1", "replica-pending-restart-patroni.json"))
    doc["patroni"]["name"] = name
    doc.pop("scheduled_restart")
    doc.update(changes)
    return doc


def run(clock: Clock, url: str = M1, **options):
    return wait_for_health(PatroniClient(url), clock=clock.monotonic, sleep=clock.sleep, **options)


def expire(clock: Clock, **options) -> PatroniUnhealthy:
    """Fail after a 2 s wait on an unchanging /cluster; the exception."""
    with pytest.raises(PatroniUnhealthy) as info:
        run(clock, wait_timeout=2, **options)
    return info.value


def test_healthy_at_once(fake):
    clock = Clock()
    fake.expect(GET(M1 + "/cluster", json_body=healthy()))
    result = run(clock, expected_members=3, max_lag="1MB")
    assert clock.sleeps == []
    assert (result["healthy"], result["leader"], result["timeline"], result["scope"]) == (True, "c1m1", 2, "c1")
    assert (result["reasons"], result["member_status"], result["polls"], result["elapsed"]) == ([], None, 1, 0.0)
    assert [m["name"] for m in result["members"]] == ["c1m1", "c1m2", "c1m3"]


def test_member_status_is_returned(fake):
    clock = Clock()
    fake.expect(GET(M1 + "/cluster", json_body=healthy()), GET(M2 + "/patroni", json_body=replica_status()))
    result = run(clock, member="c1m2")
    status = result["member_status"]
    assert (status["name"], status["role"], status["pending_restart"], status["postmaster_start_time"]) == \
        ("c1m2", "replica", True, "2026-11-25 10:16:12.000001+00:00")
    assert status["api_url"] == M2 + "/patroni"


def test_waits_until_a_restarted_member_streams_again(fake):
    """/cluster may still show the last HA loop's state; the member's own live answer must agree."""
    clock = Clock()
    fake.expect(GET(M1 + "/cluster", json_body=healthy(c1m2={"state": "starting", "lag": None})),
                GET(M2 + "/patroni", json_body=replica_status(state="starting")))
    fake.expect(GET(M1 + "/cluster", json_body=healthy()),
                GET(M2 + "/patroni", json_body=replica_status(replication_state="in archive recovery")))
    fake.expect(GET(M1 + "/cluster", json_body=healthy()), GET(M2 + "/patroni", json_body=replica_status()))
    result = run(clock, member="c1m2", wait_sleep=0.5)
    assert (result["polls"], result["elapsed"], clock.sleeps) == (3, 1.0, [0.5, 0.5])


@pytest.mark.parametrize("doc, options, reasons", [
    (cluster(None), {}, ["0 leaders () instead of exactly one"]),
    (cluster("c1m1", c1m2={"role": "leader"}), {},
     ["2 leaders (c1m1, c1m2) instead of exactly one"]),
    (dict(healthy(), members=healthy()["members"][:2]), {"expected_members": 3},
     ["only 2 of 3 members in /cluster (c1m1, c1m2)"]),
    (healthy(c1m3={"state": "starting"}), {}, ["c1m3 is starting, not streaming"]),
    (healthy(c1m3={"state": None}), {}, ["c1m3 is unknown, not streaming"]),
    (healthy(c1m2={"lag": 2 * 1024 * 1024}), {"max_lag": "1MB"},
     ["c1m2 lags 2097152 bytes, more than 1048576 (max_lag 1MB)"]),
    (healthy(c1m2={"lag": "unknown"}), {"max_lag": 1024},
     ["c1m2 lags an unknown number of bytes (Patroni shows no lag), the limit is 1024 (max_lag 1024)"]),
    (healthy(c1m3={"timeline": 1}), {}, ["c1m3 is on timeline 1, the leader on 2"]),
    (healthy(c1m2={"state": "stopped"}, c1m3={"lag": 10 ** 9}), {"max_lag": "1MB", "expected_members": 4},
     ["only 3 of 4 members in /cluster (c1m1, c1m2, c1m3)", "c1m2 is stopped, not streaming",
      "c1m3 lags 1000000000 bytes, more than 1048576 (max_lag 1MB)"]),
])
def test_every_waitable_reason_is_named_after_the_timeout(fake, doc, options, reasons):
    clock = Clock()
    fake.expect(GET(M1 + "/cluster", json_body=doc, repeat=True))
    err = expire(clock, **options)
    assert err.details["reasons"] == reasons
    assert (err.details["healthy"], err.details["blocked"], err.details["polls"]) == (False, False, 3)
    assert err.kind == "unhealthy" and clock.sleeps == [1.0, 1.0]
    assert str(err) == ("cluster c1 is not healthy after 2.0 s (wait_timeout=2, 3 polls, GET "
                        "http://10.213.0.11:8008/cluster): " + "; ".join(reasons))


def test_lag_is_not_checked_without_max_lag(fake):
    clock = Clock()
    fake.expect(GET(M1 + "/cluster", json_body=healthy(c1m2={"lag": 10 ** 12}, c1m3={"lag": "unknown"})))
    assert run(clock)["healthy"] is True


def test_standby_leader_counts_as_the_leader_and_patroni_3_running_as_streaming(fake):
    clock = Clock()
    doc = load_fixture("patroni-3.0", "cluster.json")
    doc["members"][0]["role"] = "standby_leader"
    doc["members"][2]["lag"] = 0
    fake.expect(GET(M1 + "/cluster", json_body=doc))
    result = run(clock, max_lag="0")
    assert (result["leader"], result["timeline"], result["scope"]) == ("c1m1", 1, None)


@pytest.mark.parametrize("changes, blocker", [
    ({"pause": True}, "the cluster is paused (maintenance mode); resume it (pgha.patroni.patroni_maintenance "
                      "state=resumed) or leave it out of the run"),
    ({"scheduled_switchover": {"at": "2026-11-26T02:00:00+00:00", "from": "c1m1"}},
     "a switchover is scheduled at 2026-11-26T02:00:00+00:00; let it happen or cancel it first "
     "(pgha.patroni.patroni_switchover state=absent)"),
])
def test_pause_and_scheduled_switchover_fail_at_once(fake, changes, blocker):
    clock = Clock()
    doc = dict(healthy(c1m3={"state": "starting"}), **changes)
    fake.expect(GET(M1 + "/cluster", json_body=doc))
    with pytest.raises(PatroniHealthBlocked) as info:
        run(clock, wait_timeout=60)
    assert clock.sleeps == []
    assert info.value.details["reasons"] == [blocker, "c1m3 is starting, not streaming"]
    assert info.value.details["blocked"] is True and info.value.kind == "blocked"
    assert str(info.value) == ("cluster c1 is not fit to lose a member and waiting cannot change that (GET "
                               f"http://10.213.0.11:8008/cluster): {blocker}; c1m3 is starting, not streaming")


def test_scheduled_restart_fails_at_once(fake):
    clock = Clock()
    doc = healthy(c1m2={"scheduled_restart": {"schedule": "2026-11-26T03:00:00+00:00", "postmaster_start_time": "x"}})
    fake.expect(GET(M1 + "/cluster", json_body=doc))
    with pytest.raises(PatroniHealthBlocked) as info:
        run(clock)
    assert info.value.details["reasons"] == [
        "c1m2 has a restart scheduled at 2026-11-26T03:00:00+00:00; let it happen or cancel it first "
        "(pgha.patroni.patroni_restart state=absent)"]


@pytest.mark.parametrize("member_answer, reason", [
    ({"json_body": replica_status(state="restarting")}, "c1m2 says it is restarting (its own GET /patroni), not running"),
    ({"json_body": replica_status(replication_state="in archive recovery")},
     "c1m2 says its replication is in archive recovery (its own GET /patroni), not streaming"),
    ({"raises": refused(M2 + "/patroni")},
     "c1m2 GET /patroni: connection refused by 10.213.0.12:8008 (GET http://10.213.0.12:8008/patroni): is Patroni "
     "running and listening on 10.213.0.12:8008? Check restapi.listen and firewalls"),
])
def test_member_own_view_reasons(fake, member_answer, reason):
    clock = Clock()
    fake.expect(GET(M1 + "/cluster", json_body=healthy(), repeat=True),
                GET(M2 + "/patroni", repeat=True, **member_answer))
    err = expire(clock, member="c1m2")
    assert err.details["reasons"] == [reason]


def test_member_missing_from_cluster(fake):
    clock = Clock()
    doc = dict(healthy(), members=healthy()["members"][:2])
    fake.expect(GET(M1 + "/cluster", json_body=doc, repeat=True))
    err = expire(clock, member="c1m3")
    assert err.details["reasons"] == ["c1m3 is not in /cluster (members: c1m1, c1m2)"]
    assert err.details["member_status"] is None


def test_the_leader_as_member_needs_only_to_run(fake):
    clock = Clock()
    primary = load_fixture("patroni-4.1", "primary-patroni.json")
    fake.expect(GET(M1 + "/cluster", json_body=healthy()), GET(M1 + "/patroni", json_body=primary))
    result = run(clock, member="c1m1")
    assert result["member_status"]["role"] == "primary"


def test_no_member_answers_names_every_url_and_waits(fake):
    clock = Clock()
    fake.expect(GET(M1 + "/cluster", raises=refused(M1 + "/cluster"), repeat=True),
                GET(M2 + "/cluster", raises=dropped(), repeat=True))
    with pytest.raises(PatroniUnhealthy) as info:
        run(clock, member_api_urls=[M2], wait_timeout=1)
    reasons = info.value.details["reasons"]
    assert len(reasons) == 1 and reasons[0].startswith(
        "no member answered GET /cluster: http://10.213.0.11:8008: connection refused by 10.213.0.11:8008")
    assert "http://10.213.0.12:8008: no HTTP response from GET http://10.213.0.12:8008/cluster" in reasons[0]
    assert str(info.value).startswith("the cluster is not healthy after 1.0 s (wait_timeout=1, 2 polls, GET "
                                      "http://10.213.0.11:8008/cluster): no member answered")
    assert info.value.details["members"] is None


def test_recovers_when_the_first_member_comes_back(fake):
    clock = Clock()
    fake.expect(GET(M1 + "/cluster", raises=refused(M1 + "/cluster")), GET(M2 + "/cluster", 503, body="busy"))
    fake.expect(GET(M1 + "/cluster", json_body=healthy()))
    result = run(clock, member_api_urls=[M2])
    assert (result["healthy"], result["polls"]) == (True, 2)


def test_credentials_never_in_messages(fake):
    clock = Clock()
    fake.expect(GET(M1 + "/cluster", json_body=cluster(None), repeat=True))
    with pytest.raises(PatroniUnhealthy) as info:
        wait_for_health(PatroniClient("http://admin:s3cret@10.213.0.11:8008"), wait_timeout=0,
                        clock=clock.monotonic, sleep=clock.sleep)
    assert "s3cret" not in str(info.value) and "admin" not in str(info.value)
    assert "GET http://10.213.0.11:8008/cluster" in str(info.value)
    assert info.value.details["polls"] == 1


def test_auth_error_fails_at_once(fake):
    clock = Clock()
    fake.expect(GET(M1 + "/cluster", 401, body="no auth header received"))
    with pytest.raises(PatroniAuthError):
        run(clock)
    assert clock.sleeps == []


@pytest.mark.parametrize("options, message", [
    ({"expected_members": -1}, "expected_members=-1 must be 0 or more"),
    ({"max_lag": "1mb"}, "max_lag='1mb' is not a size Patroni understands"),
    ({"wait_sleep": 0.01}, "wait_sleep=0.01 is too small: use at least 0.05 seconds"),
    ({"wait_timeout": -1}, "wait_timeout=-1 must be 0 or more seconds"),
])
def test_bad_options_fail_before_any_request(fake, options, message):
    with pytest.raises(PatroniError) as info:
        run(Clock(), **options)
    assert str(info.value).startswith(message) and info.value.kind == "bad_option"


def test_all_members_status_returns_every_members_own_answer(fake):
    clock = Clock()
    primary = load_fixture("patroni-4.1", "primary-patroni.json")
    fake.expect(GET(M1 + "/cluster", json_body=healthy(c1m3={"state": "starting"})),
                GET(M1 + "/patroni", json_body=primary), GET(M2 + "/patroni", json_body=replica_status("c1m2")),
                GET(M3 + "/patroni", json_body=replica_status("c1m3", state="starting")))
    fake.expect(GET(M1 + "/cluster", json_body=healthy()), GET(M1 + "/patroni", json_body=primary),
                GET(M2 + "/patroni", json_body=replica_status("c1m2")),
                GET(M3 + "/patroni", json_body=replica_status("c1m3", pending_restart=False)))
    result = run(clock, all_members_status=True)
    statuses = result["member_statuses"]
    assert {name: (s["role"], s["pending_restart"]) for name, s in statuses.items()} == {
        "c1m1": ("primary", False), "c1m2": ("replica", True), "c1m3": ("replica", False)}
    assert (result["polls"], clock.sleeps) == (2, [1.0])


def test_a_members_own_answer_settles_what_clusters_last_ha_loop_still_shows(fake):
    """Right after a switchover, /cluster can list the old primary as stopped until its next HA loop (up to loop_wait
    later) while it already streams on the new timeline: its own answer, and the leader's WAL position, decide."""
    clock = Clock()
    primary = load_fixture("patroni-4.1", "primary-patroni.json")
    stale = healthy(c1m2={"state": "stopped", "lag": None, "timeline": None})
    fake.expect(GET(M1 + "/cluster", json_body=stale), GET(M2 + "/patroni", json_body=replica_status("c1m2")),
                GET(M1 + "/patroni", json_body=primary))
    result = run(clock, member="c1m2", max_lag="1MB")
    assert (result["healthy"], result["polls"], clock.sleeps) == (True, 1, [])
    # the members returned are the ones judged: c1m2 as it answered, its lag measured against the leader's answer
    c1m2 = next(m for m in result["members"] if m["name"] == "c1m2")
    assert (c1m2["state"], c1m2["streaming"], c1m2["lag"], c1m2["timeline"]) == ("streaming", True, 0, 2)


@pytest.mark.parametrize("answer, options, reason", [
    (replica_status("c1m2", xlog={"received_location": 67109216 - 2 * 1024 * 1024,
                                  "replayed_location": 67109216 - 2 * 1024 * 1024}), {"max_lag": "1MB"},
     "c1m2 lags 2097152 bytes, more than 1048576 (max_lag 1MB)"),
    (replica_status("c1m2", timeline=1), {}, "c1m2 is on timeline 1, the leader on 2"),
    (replica_status("c1m2", replication_state="catchup"), {},
     "c1m2 says its replication is catchup (its own GET /patroni), not streaming"),
])
def test_a_members_own_answer_holds_the_wait_as_cluster_would(fake, answer, options, reason):
    """...and an answer that lags, sits on the old timeline or does not stream holds the wait, whatever /cluster says."""
    fake.expect(GET(M1 + "/cluster", json_body=healthy(), repeat=True), GET(M2 + "/patroni", json_body=answer, repeat=True),
                GET(M1 + "/patroni", json_body=load_fixture("patroni-4.1", "primary-patroni.json"), repeat=True))
    err = expire(Clock(), member="c1m2", **options)
    assert err.details["reasons"] == [reason]


def test_all_members_status_waits_for_a_member_that_does_not_answer(fake):
    clock = Clock()
    primary = load_fixture("patroni-4.1", "primary-patroni.json")
    fake.expect(GET(M1 + "/cluster", json_body=healthy(), repeat=True),
                GET(M1 + "/patroni", json_body=primary, repeat=True),
                GET(M2 + "/patroni", json_body=replica_status("c1m2"), repeat=True),
                GET(M3 + "/patroni", raises=dropped(), repeat=True))
    err = expire(clock, all_members_status=True)
    assert len(err.details["reasons"]) == 1
    assert err.details["reasons"][0].startswith("c1m3 GET /patroni: no HTTP response from GET "
                                                "http://10.213.0.13:8008/patroni")


def test_all_members_status_trusts_each_members_own_view_over_cluster(fake):
    """Right after the primary restarted, /cluster (each member's last HA loop) still lists c1m3 as streaming."""
    clock = Clock()
    primary = load_fixture("patroni-4.1", "primary-patroni.json")
    reconnecting = replica_status("c1m3")
    del reconnecting["replication_state"]  # Patroni 4.1 leaves it out while no WAL receiver runs
    fake.expect(GET(M1 + "/cluster", json_body=healthy()), GET(M1 + "/patroni", json_body=primary),
                GET(M2 + "/patroni", json_body=replica_status("c1m2")), GET(M3 + "/patroni", json_body=reconnecting))
    fake.expect(GET(M1 + "/cluster", json_body=healthy()), *every_member())
    with pytest.raises(PatroniUnhealthy) as info:
        run(clock, all_members_status=True, wait_timeout=0)
    assert info.value.details["reasons"] == [
        "c1m3 says its replication is not running (no WAL receiver) (its own GET /patroni), not streaming"]
    result = run(clock, all_members_status=True, wait_sleep=0.5)
    assert (result["healthy"], result["polls"], clock.sleeps) == (True, 1, [])
    # Patroni before 3.0.4 never names replication_state: a running replica is all it can say
    old_patroni = dict(reconnecting, patroni=dict(reconnecting["patroni"], version="3.0.2"))
    fake.expect(GET(M1 + "/cluster", json_body=healthy()), GET(M1 + "/patroni", json_body=primary),
                GET(M2 + "/patroni", json_body=replica_status("c1m2")), GET(M3 + "/patroni", json_body=old_patroni))
    assert run(clock, all_members_status=True)["healthy"] is True
    with pytest.raises(PatroniUnhealthy) as info:
        fake.expect(GET(M1 + "/cluster", json_body=healthy(), repeat=True),
                    GET(M1 + "/patroni", json_body=primary, repeat=True),
                    GET(M2 + "/patroni", json_body=replica_status("c1m2", state="starting"), repeat=True),
                    GET(M3 + "/patroni", json_body=replica_status("c1m3"), repeat=True))
        run(clock, all_members_status=True, wait_timeout=1)
    assert info.value.details["reasons"] == ["c1m2 says it is starting (its own GET /patroni), not running"]


# ------------------------------------------------------------------------------------------------------------
# patroni_restart's wait_healthy: RestartRunner with health_after_restart


def every_member() -> list:
    """Each member's own GET /patroni once the cluster looks healthy: all running, replicas streaming."""
    return [GET(M1 + "/patroni", json_body=load_fixture("patroni-4.1", "primary-patroni.json")),
            GET(M2 + "/patroni", json_body=replica_status("c1m2")), GET(M3 + "/patroni", json_body=replica_status("c1m3"))]


def restarts(clock: Clock, members: list[str], **options) -> dict:
    client = PatroniClient(M1)
    after = health_after_restart(client, wait_sleep=0.5, clock=clock.monotonic, sleep=clock.sleep, **options)
    return RestartRunner(client, members=members, after_restart=after).run()


def test_restart_waits_until_each_member_streams_before_the_next_goes_down(fake):
    clock = Clock()
    fake.expect(GET(M1 + "/cluster", json_body=healthy()),  # which members, before anything restarts
                Call("POST", M2 + "/restart", 200, body="restarted successfully"))
    fake.expect(GET(M1 + "/cluster", json_body=healthy(c1m2={"state": "starting", "lag": None})),
                GET(M1 + "/patroni", json_body=load_fixture("patroni-4.1", "primary-patroni.json")),
                GET(M2 + "/patroni", json_body=replica_status(state="starting")),
                GET(M3 + "/patroni", json_body=replica_status("c1m3")))
    fake.expect(GET(M1 + "/cluster", json_body=healthy()), *every_member())
    fake.expect(Call("POST", M3 + "/restart", 200, body="restarted successfully"),
                GET(M1 + "/cluster", json_body=healthy()), *every_member())
    result = restarts(clock, ["c1m2", "c1m3"], expected_members=3, max_lag="1MB")
    assert result["restarted"] == ["c1m2", "c1m3"] and clock.sleeps == [0.5]
    calls = [(method, url) for method, url, _kwargs in fake.log]
    # before c1m3's restart: c1m2 said "starting", then "streaming"
    before = calls[:calls.index(("POST", M3 + "/restart"))]
    assert before.count(("GET", M2 + "/patroni")) == 2 and before.count(("GET", M1 + "/cluster")) == 3, calls
    # the check after the last restart, as patroni_wait_healthy returns it
    health = result["health"]
    assert (health["healthy"], health["reasons"], health["member_status"]["name"]) == (True, [], "c1m3")


def test_restart_stops_when_the_member_does_not_stream_again(fake):
    clock = Clock()
    fake.expect(GET(M1 + "/cluster", json_body=healthy()),
                Call("POST", M2 + "/restart", 200, body="restarted successfully"),
                GET(M1 + "/cluster", json_body=healthy(c1m2={"state": "starting", "lag": None}), repeat=True),
                GET(M1 + "/patroni", json_body=load_fixture("patroni-4.1", "primary-patroni.json"), repeat=True),
                GET(M2 + "/patroni", json_body=replica_status(state="starting"), repeat=True),
                GET(M3 + "/patroni", json_body=replica_status("c1m3"), repeat=True))
    with pytest.raises(PatroniUnhealthy) as info:
        restarts(clock, ["c1m2", "c1m3"], wait_timeout=2)
    # c1m3 was never restarted (no POST expected for it), and the message says c1m2 was
    assert info.value.msg.startswith("PostgreSQL on c1m2 restarted (c1m2 restarted by this task), then cluster c1 is "
                                     "not healthy after 2.0 s (wait_timeout=2"), info.value.msg
    assert info.value.details["reasons"] == ["c1m2 says it is starting (its own GET /patroni), not running"]
    assert info.value.details["healthy"] is False


def test_restart_wait_options_are_checked_before_anything_restarts(fake):
    with pytest.raises(PatroniError) as info:
        restarts(Clock(), ["c1m2"], expected_members=-1)
    assert info.value.msg == "expected_members=-1 must be 0 or more"
    with pytest.raises(PatroniError) as info:
        RestartRunner(PatroniClient(M1), members=["c1m2"], scheduled_at="2099-01-01T00:00:00+00:00",
                      after_restart=lambda name: {})
    assert info.value.msg.startswith("wait_healthy waits after a restart that runs now")
    with pytest.raises(PatroniError) as info:
        RestartRunner(PatroniClient(M1), members=["c1m2"], state="absent", after_restart=lambda name: {})
    assert info.value.msg.startswith("wait_healthy only apply to a restart to run (state=present)")

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""state=absent of patroni_switchover and patroni_restart: cancel what is scheduled, against every answer Patroni
gives to DELETE /switchover and DELETE /restart."""

from __future__ import annotations

import copy
import datetime

import pytest
import requests

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import PatroniClient, PatroniError
from ansible_collections.pgha.patroni.plugins.module_utils._operations import PatroniOperationError, RestartRunner
from ansible_collections.pgha.patroni.plugins.module_utils._switchover import CANCEL_ATTEMPTS, SwitchoverRunner
from ansible_collections.pgha.patroni.tests.unit.helpers.fake_http import GET, Call
from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import fake  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.module import load_fixture

M1, M2, M3 = "http://10.213.0.11:8008", "http://10.213.0.12:8008", "http://10.213.0.13:8008"
AT = "2030-01-01T03:00:00+00:00"
SCHEDULED = {"at": AT, "from": "c1m1", "to": "c1m3"}
WHAT = f"the switchover of cluster c1 scheduled at {AT} from c1m1 to c1m3"
REFUSED = requests.exceptions.ConnectionError(ConnectionRefusedError(111, "Connection refused"))


def cluster(switchover=None, restarts=None, leader=True, paused=False):
    doc = copy.deepcopy(load_fixture("patroni-4.1", "cluster.json"))
    if switchover:
        doc["scheduled_switchover"] = switchover
    for member in doc["members"]:
        if restarts and member["name"] in restarts:
            member["scheduled_restart"] = {"schedule": restarts[member["name"]], "postgres_version": "15"}
    if not leader:
        doc["members"] = doc["members"][1:]
    if paused:
        doc["pause"] = True
    return doc


def delete(url, path, status=200, text=None, **kwargs):
    default = {"/switchover": "scheduled switchover deleted", "/restart": "scheduled restart deleted"}[path]
    return Call("DELETE", url + path, status, body=default if text is None else text, **kwargs)


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


def cancel_switchover(check_mode=False, **kwargs):
    runner = SwitchoverRunner(PatroniClient(M1), check_mode=check_mode, state="absent", **kwargs)
    runner.sleep = Sleeps()
    return runner.run(), runner.sleep


# ------------------------------------------------------------------------------------------------------------
# patroni_switchover state=absent


def test_nothing_scheduled_is_unchanged(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster()))
    result, _sleeps = cancel_switchover()
    assert result["changed"] is False and result["scheduled_switchover"] is None and result["scheduled_at"] is None
    assert result["msg"] == "no switchover of cluster c1 is scheduled"


def test_cancel_deletes_on_the_leader(fake):
    call = delete(M1, "/switchover")
    fake.expect(GET(M1 + "/cluster", json_body=cluster(SCHEDULED)), call)
    result, _sleeps = cancel_switchover()
    assert result["changed"] is True and result["msg"] == f"cancelled {WHAT}"
    assert result["answer"] == "scheduled switchover deleted" and result["scheduled_switchover"] == SCHEDULED
    assert result["scheduled_at"] == AT and result["primary"] == "c1m1"
    assert "json" not in call.seen[0]


def test_check_mode_says_what_would_be_cancelled_without_deleting(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster(SCHEDULED)))
    result, _sleeps = cancel_switchover(check_mode=True)
    assert result["changed"] is True
    assert result["msg"] == f"would cancel {WHAT}"


def test_switchover_to_any_member_is_described_as_such(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster({"at": AT, "from": "c1m1"})))
    result, _sleeps = cancel_switchover(check_mode=True)
    assert result["msg"] == f"would cancel the switchover of cluster c1 scheduled at {AT} from c1m1 to the best member"


@pytest.mark.parametrize("filters,why", [
    ({"scheduled_at": "2030-01-01T04:00:00+00:00"}, f"it is at {AT}, not at scheduled_at 2030-01-01T04:00:00+00:00"),
    ({"candidate": "c1m2"}, "it goes to c1m3, not to candidate c1m2"),
    ({"leader": "c1m2"}, "it is from c1m1, not from leader c1m2"),
    ({"candidate": "c1m2", "scheduled_at": "2030-01-01T04:00:00Z"},
     f"it is at {AT}, not at scheduled_at 2030-01-01T04:00:00+00:00; it goes to c1m3, not to candidate c1m2"),
])
def test_a_different_switchover_is_left_alone(fake, filters, why):
    fake.expect(GET(M1 + "/cluster", json_body=cluster(SCHEDULED)))
    result, _sleeps = cancel_switchover(**filters)
    assert result["changed"] is False and result["scheduled_switchover"] == SCHEDULED
    assert result["msg"] == f"left {WHAT} alone: {why}"


def test_filters_that_match_cancel_whatever_the_time_zone(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster(SCHEDULED)), delete(M1, "/switchover"))
    result, _sleeps = cancel_switchover(candidate="c1m3", leader="c1m1", scheduled_at="2030-01-01T04:00:00+01:00")
    assert result["changed"] is True


def test_a_filter_time_in_the_past_is_accepted_but_a_naive_one_is_not(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster()))
    result, _sleeps = cancel_switchover(scheduled_at="2001-01-01T00:00:00Z")
    assert result["changed"] is False
    with pytest.raises(PatroniError) as info:
        SwitchoverRunner(PatroniClient(M1), state="absent", scheduled_at="2030-01-01T03:00:00")
    assert info.value.msg.startswith("scheduled_at='2030-01-01T03:00:00' has no time zone")


def test_404_someone_else_cancelled_it_is_unchanged(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster(SCHEDULED)),
                delete(M1, "/switchover", 404, "no switchover is scheduled"))
    result, _sleeps = cancel_switchover()
    assert result["changed"] is False and result["answer"] == "no switchover is scheduled"
    assert result["msg"] == (f"{WHAT} was gone when {M1}/switchover got the request (someone else cancelled it, or "
                             "it ran): nothing cancelled")


def test_409_reads_again_and_retries(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster(SCHEDULED)), delete(M1, "/switchover", 409, "<html>409</html>"),
                GET(M1 + "/cluster", json_body=cluster(SCHEDULED)), delete(M1, "/switchover"))
    result, sleeps = cancel_switchover(wait_sleep=0.5)
    assert result["changed"] is True and sleeps == [0.5]


def test_409_then_gone_is_unchanged(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster(SCHEDULED)), delete(M1, "/switchover", 409, ""),
                GET(M1 + "/cluster", json_body=cluster()))
    result, _sleeps = cancel_switchover()
    assert result["changed"] is False
    assert result["msg"] == f"no switchover of cluster c1 is scheduled (after HTTP 409 from {M1}/switchover)"


def test_409_every_time_fails_saying_why(fake):
    for _attempt in range(CANCEL_ATTEMPTS):
        fake.expect(GET(M1 + "/cluster", json_body=cluster(SCHEDULED)), delete(M1, "/switchover", 409, ""))
    runner = SwitchoverRunner(PatroniClient(M1), state="absent")
    runner.sleep = Sleeps()
    with pytest.raises(PatroniOperationError) as info:
        runner.run()
    assert len(runner.sleep) == CANCEL_ATTEMPTS - 1
    assert info.value.status == 409
    assert info.value.msg == (
        f"cancelling {WHAT} refused by {M1}/switchover (HTTP 409): Patroni could not delete the switchover from the "
        "DCS 3 times (HTTP 409: the failover key changed between its read and its write, e.g. another switchover "
        "request or the switchover starting). Check that etcd/Consul/ZooKeeper is healthy and rerun")


@pytest.mark.parametrize("status,body,msg", [
    (401, "no auth header received",
     f"DELETE {M1}/switchover answered HTTP 401 (authentication required): set api_username and api_password to "
     "restapi.authentication from patroni.yml"),
    (403, "Access is denied", f"DELETE {M1}/switchover answered HTTP 403 Access is denied: Patroni's "
     "restapi.allowlist does not include this controller's address"),
])
def test_auth_refusals_say_what_to_set(fake, status, body, msg):
    fake.expect(GET(M1 + "/cluster", json_body=cluster(SCHEDULED)), delete(M1, "/switchover", status, body))
    with pytest.raises(PatroniError) as info:
        cancel_switchover()
    assert info.value.msg.startswith(msg) and info.value.kind == "auth"


def test_other_answer_is_a_refusal(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster(SCHEDULED)), delete(M1, "/switchover", 501, "Not Implemented"))
    with pytest.raises(PatroniOperationError) as info:
        cancel_switchover()
    assert info.value.msg == (f"cancelling {WHAT} refused by {M1}/switchover (HTTP 501 'Not Implemented'): see the "
                              "Patroni log of the member")


def test_connection_refused_names_the_member(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster(SCHEDULED)), delete(M1, "/switchover", raises=REFUSED))
    with pytest.raises(PatroniError) as info:
        cancel_switchover()
    assert info.value.msg.startswith(f"connection refused by 10.213.0.11:8008 (DELETE {M1}/switchover)")


def test_leaderless_cluster_deletes_through_the_member_asked(fake):
    doc = cluster({"at": AT, "to": "c1m3"}, leader=False)
    fake.expect(GET(M1 + "/cluster", json_body=doc), delete(M1, "/switchover"))
    result, _sleeps = cancel_switchover()
    assert result["changed"] is True
    assert result["msg"] == f"cancelled the switchover of cluster c1 scheduled at {AT} from the leader to c1m3"


def test_leaderless_cluster_deletes_through_the_member_that_answered(fake):
    doc = cluster({"at": AT, "to": "c1m3"}, leader=False)
    fake.expect(GET(M1 + "/cluster", raises=REFUSED), GET(M2 + "/cluster", json_body=doc), delete(M2, "/switchover"))
    runner = SwitchoverRunner(PatroniClient(M1), state="absent", member_api_urls=[M2])
    assert runner.run()["changed"] is True


def test_cluster_from_another_member_then_delete_on_the_leader(fake):
    fake.expect(GET(M2 + "/cluster", raises=REFUSED), GET(M3 + "/cluster", json_body=cluster(SCHEDULED)),
                delete(M1, "/switchover"))
    runner = SwitchoverRunner(PatroniClient(M2), state="absent", member_api_urls=[M3])
    assert runner.run()["changed"] is True


def test_patroni_before_3_2_has_no_scope_in_cluster(fake):
    doc = cluster(SCHEDULED)
    del doc["scope"]
    fake.expect(GET(M1 + "/cluster", json_body=doc))
    result, _sleeps = cancel_switchover(check_mode=True)
    assert result["msg"] == f"would cancel the switchover of the cluster scheduled at {AT} from c1m1 to c1m3"


def test_unknown_state():
    with pytest.raises(PatroniError) as info:
        SwitchoverRunner(PatroniClient(M1), state="gone")
    assert info.value.msg == "state='gone' must be one of: present, absent"


# ------------------------------------------------------------------------------------------------------------
# patroni_restart state=absent


def cancel_restart(check_mode=False, **kwargs):
    return RestartRunner(PatroniClient(M1), check_mode=check_mode, state="absent", **kwargs).run()


def test_restart_cancel_on_the_member_itself(fake):
    call = delete(M2, "/restart")
    fake.expect(GET(M1 + "/cluster", json_body=cluster(restarts={"c1m2": AT})), call)
    result = cancel_restart(all_members=True)
    assert result["changed"] is True and result["cancelled"] == ["c1m2"]
    assert result["not_cancelled"] == {"c1m1": "no restart scheduled", "c1m3": "no restart scheduled"}
    assert result["messages"] == {"c1m2": "scheduled restart deleted"}
    assert result["msg"] == f"cancelled the scheduled restart of c1m2 (at {AT})"
    assert "json" not in call.seen[0]


def test_restart_cancel_check_mode_sends_nothing(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster(restarts={"c1m1": AT, "c1m3": AT})))
    result = cancel_restart(check_mode=True, all_members=True)
    assert result["changed"] is True and result["cancelled"] == ["c1m3", "c1m1"]
    assert result["msg"] == f"would cancel the scheduled restart of c1m3 (at {AT}), c1m1 (at {AT})"


def test_restart_cancel_default_member_is_the_one_at_api_url(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster(restarts={"c1m1": AT, "c1m2": AT})), delete(M1, "/restart"))
    result = cancel_restart()
    assert result["cancelled"] == ["c1m1"] and result["not_cancelled"] == {}


def test_restart_cancel_nothing_scheduled_is_unchanged(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster()))
    result = cancel_restart(members=["c1m2"])
    assert result["changed"] is False and result["cancelled"] == []
    assert result["msg"] == "no scheduled restart to cancel in cluster c1: c1m2: no restart scheduled"


def test_restart_cancel_nothing_scheduled_without_scope(fake):
    doc = cluster()
    del doc["scope"]
    fake.expect(GET(M1 + "/cluster", json_body=doc))
    result = cancel_restart(members=["c1m2"])
    assert result["msg"] == "no scheduled restart to cancel in the cluster: c1m2: no restart scheduled"


def test_restart_cancel_role_and_time_filters(fake):
    later = "2030-01-02T03:00:00+00:00"
    fake.expect(GET(M1 + "/cluster", json_body=cluster(restarts={"c1m1": AT, "c1m2": AT, "c1m3": later})),
                delete(M2, "/restart"))
    result = cancel_restart(all_members=True, role="replica", scheduled_at="2030-01-01T04:00:00+01:00")
    assert result["cancelled"] == ["c1m2"]
    assert result["not_cancelled"] == {
        "c1m3": f"its restart is scheduled at {later}, not at scheduled_at 2030-01-01T04:00:00+01:00",
        "c1m1": "not a replica (role=replica)"}


def test_restart_cancel_404_is_unchanged_for_that_member(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster(restarts={"c1m2": AT, "c1m3": AT})),
                delete(M2, "/restart", 404, "no restarts are scheduled"), delete(M3, "/restart"))
    result = cancel_restart(members=["c1m2", "c1m3"])
    assert result["changed"] is True and result["cancelled"] == ["c1m3"]
    assert result["not_cancelled"] == {
        "c1m2": "no restart scheduled any more when the request arrived (cancelled elsewhere, or it ran)"}


def test_restart_cancel_all_404_is_unchanged(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster(restarts={"c1m2": AT})),
                delete(M2, "/restart", 404, "no restarts are scheduled"))
    result = cancel_restart(members=["c1m2"])
    assert result["changed"] is False and result["msg"].startswith("no scheduled restart to cancel in cluster c1: c1m2:")


def test_restart_cancel_in_a_paused_cluster(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster(restarts={"c1m2": AT}, paused=True)), delete(M2, "/restart"))
    assert cancel_restart(members=["c1m2"])["cancelled"] == ["c1m2"]


def test_restart_cancel_auth_failure_says_what_was_cancelled_before(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster(restarts={"c1m2": AT, "c1m3": AT})), delete(M2, "/restart"),
                delete(M3, "/restart", 401, "not authenticated"))
    with pytest.raises(PatroniError) as info:
        cancel_restart(members=["c1m2", "c1m3"])
    assert info.value.msg.startswith(f"DELETE {M3}/restart answered HTTP 401 (authentication required)")
    assert info.value.msg.endswith("(cancelled before this error: c1m2)")
    assert info.value.kind == "auth" and info.value.status == 401


def test_restart_cancel_connection_refused(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster(restarts={"c1m2": AT})), delete(M2, "/restart", raises=REFUSED))
    with pytest.raises(PatroniError) as info:
        cancel_restart(members=["c1m2"])
    assert info.value.msg.startswith(f"connection refused by 10.213.0.12:8008 (DELETE {M2}/restart)")
    assert info.value.kind == "connection"


def test_restart_cancel_other_answer_is_a_refusal(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster(restarts={"c1m2": AT})), delete(M2, "/restart", 500, "boom"))
    with pytest.raises(PatroniOperationError) as info:
        cancel_restart(members=["c1m2"])
    assert info.value.msg == (f"cancelling the scheduled restart of c1m2 refused by {M2}/restart (HTTP 500 'boom'): "
                              "see the member's Patroni log")


@pytest.mark.parametrize("kwargs,named", [
    ({"pending_only": True}, "pending_only"),
    ({"restart_timeout": 60}, "restart_timeout"),
    ({"pending_only": True, "restart_timeout": 60}, "pending_only and restart_timeout"),
])
def test_restart_cancel_refuses_options_of_a_restart_to_run(kwargs, named):
    with pytest.raises(PatroniError) as info:
        RestartRunner(PatroniClient(M1), state="absent", **kwargs)
    assert info.value.kind == "bad_option"
    assert info.value.msg == (
        f"{named} only apply to a restart to run (state=present); state=absent cancels the restart scheduled on the "
        f"selected members whatever it was scheduled with: remove {named}, or select members with members, "
        "all_members, role and scheduled_at")


def test_present_is_unchanged_by_the_new_option(fake):
    fake.expect(GET(M1 + "/cluster", json_body=cluster()), Call("POST", M2 + "/restart", 200, body="restarted"))
    result = RestartRunner(PatroniClient(M1), members=["c1m2"]).run()
    assert result["restarted"] == ["c1m2"] and "cancelled" not in result and "msg" not in result


def test_cancel_schedule_due_now(fake):
    just_due = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)).isoformat()
    fake.expect(GET(M1 + "/cluster", json_body=cluster(restarts={"c1m2": just_due})), delete(M2, "/restart"))
    assert cancel_restart(members=["c1m2"], scheduled_at=just_due)["cancelled"] == ["c1m2"]

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy

import pytest

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import PatroniClient, PatroniError
from ansible_collections.pgha.patroni.plugins.module_utils._dynamic_config import (
    ConfigRunner,
    MaintenanceRunner,
    apply_patch,
    compute_patch,
)
from ansible_collections.pgha.patroni.plugins.module_utils._operations import (
    PatroniOperationError,
    PatroniOperationTimeout,
)
from ansible_collections.pgha.patroni.tests.unit.helpers.fake_http import GET, Call
from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import fake  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.module import load_fixture

M1, M2, M3 = "http://10.213.0.11:8008", "http://10.213.0.12:8008", "http://10.213.0.13:8008"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def config():
    return copy.deepcopy(load_fixture("patroni-4.1", "config.json"))


def cluster(pending=None, reasons=None):
    doc = copy.deepcopy(load_fixture("patroni-4.1", "cluster.json"))
    for member in doc["members"]:
        member.pop("pending_restart", None)
        member.pop("pending_restart_reason", None)
        if pending and member["name"] in pending:
            member["pending_restart"] = True
            if reasons is not None:
                member["pending_restart_reason"] = {p: {"old_value": "1", "new_value": "2"} for p in reasons}
    return doc


# ------------------------------------------------------------------------------------------------------------
# The merge


@pytest.mark.parametrize("current,desired,patch", [
    ({"ttl": 30}, {"ttl": "30"}, {}),
    ({"ttl": 30}, {"ttl": 40}, {"ttl": 40}),
    ({"a": True}, {"a": "true"}, {"a": "true"}),
    ({"a": 1}, {"a": None}, {"a": None}),
    ({"b": 1}, {"a": None}, {}),
    ({"p": {"x": 1, "y": 2}}, {"p": {"x": "1", "z": 3}}, {"p": {"z": 3}}),
    ({"p": {"x": 1}}, {"p": {"x": None}}, {"p": {"x": None}}),
    ({}, {"p": {"x": 1, "y": None}}, {"p": {"x": 1}}),
    ({"p": "scalar"}, {"p": {"x": 1}}, {"p": {"x": 1}}),
    ({"p": {"x": 1}}, {"p": "scalar"}, {"p": "scalar"}),
])
def test_compute_patch_compares_like_patroni(current, desired, patch):
    assert compute_patch(current, desired) == patch
    merged = apply_patch(current, patch)
    assert compute_patch(merged, desired) == {}


def test_apply_patch_does_not_touch_the_input():
    current = config()
    after = apply_patch(current, {"postgresql": {"parameters": {"work_mem": "8MB", "hot_standby": None}}})
    assert after["postgresql"]["parameters"]["work_mem"] == "8MB" and "hot_standby" not in after["postgresql"][
        "parameters"]
    assert current == config()


# ------------------------------------------------------------------------------------------------------------
# patroni_config


def test_no_difference_sends_nothing(fake):
    fake.expect(GET(M1 + "/config", json_body=config()), GET(M1 + "/cluster", json_body=cluster()))
    result = ConfigRunner(PatroniClient(M1), {"postgresql": {"parameters": {"max_connections": "60"}}}).run()
    assert result["changed"] is False and result["patch"] == {} and result["pending_restart"] == []


def test_check_mode_predicts_patch_and_restart(fake):
    fake.expect(GET(M1 + "/config", json_body=config()))
    result = ConfigRunner(PatroniClient(M1), {"postgresql": {"parameters": {"max_connections": 100,
                                                                            "work_mem": "8MB"}}},
                          check_mode=True).run()
    assert result["changed"] is True
    assert result["patch"] == {"postgresql": {"parameters": {"max_connections": 100, "work_mem": "8MB"}}}
    assert result["config"]["postgresql"]["parameters"]["max_connections"] == 100
    assert result["before"]["postgresql"]["parameters"]["max_connections"] == 60
    assert result["changed_parameters"] == ["max_connections", "work_mem"]
    assert result["restart_parameters"] == ["max_connections"]


def test_patch_then_poll_until_every_member_reports_pending_restart(fake):
    after = config()
    after["postgresql"]["parameters"]["max_connections"] = 100
    patch = Call("PATCH", M1 + "/config", json_body=after)
    fake.expect(GET(M1 + "/config", json_body=config()), patch,
                GET(M1 + "/cluster", json_body=cluster(pending=["c1m1"], reasons=["max_connections"])),
                GET(M1 + "/cluster", json_body=cluster(pending=["c1m1", "c1m2", "c1m3"],
                                                       reasons=["max_connections"])))
    clock = Clock()
    result = ConfigRunner(PatroniClient(M1), {"postgresql": {"parameters": {"max_connections": 100}}},
                          clock=clock, sleep=clock.sleep).run()
    assert patch.seen[0]["json"] == {"postgresql": {"parameters": {"max_connections": 100}}}
    assert result["config"] == after
    assert result["pending_restart"] == ["c1m1", "c1m2", "c1m3"]
    assert result["restart_parameters"] == ["max_connections"]
    assert clock.now == 1.0


def test_pending_restart_polling_gives_up_quietly(fake):
    fake.expect(GET(M1 + "/config", json_body=config()),
                Call("PATCH", M1 + "/config", json_body=config()),
                GET(M1 + "/cluster", json_body=cluster(pending=["c1m1"], reasons=["max_connections"]), repeat=True))
    clock = Clock()
    result = ConfigRunner(PatroniClient(M1), {"postgresql": {"parameters": {"max_connections": 100}}},
                          pending_restart_timeout=3, clock=clock, sleep=clock.sleep).run()
    assert result["pending_restart"] == ["c1m1"] and clock.now == 3.0


def test_conflict_is_retried_from_a_fresh_read(fake):
    theirs = config()
    theirs["ttl"] = 40
    patch_ok = Call("PATCH", M1 + "/config", json_body=dict(theirs, loop_wait=5))
    fake.expect(GET(M1 + "/config", json_body=config()),
                Call("PATCH", M1 + "/config", 409, body="Conflict"),
                GET(M1 + "/config", json_body=theirs), patch_ok, GET(M1 + "/cluster", json_body=cluster()))
    fake.ordered = True
    result = ConfigRunner(PatroniClient(M1), {"loop_wait": 5}).run()
    assert result["conflicts_retried"] == 1 and result["config"]["ttl"] == 40
    assert patch_ok.seen[0]["json"] == {"loop_wait": 5}


def test_conflict_forever_fails(fake):
    fake.expect(GET(M1 + "/config", json_body=config(), repeat=True),
                Call("PATCH", M1 + "/config", 409, body="Conflict", repeat=True))
    with pytest.raises(PatroniOperationError) as info:
        ConfigRunner(PatroniClient(M1), {"loop_wait": 5}).run()
    assert info.value.msg == (f"PATCH /config refused by {M1}/config (HTTP 409 'Conflict'): the configuration kept "
                              "changing under us (5 retries); find who else edits it")


def test_patch_503(fake):
    fake.expect(GET(M1 + "/config", json_body=config()),
                Call("PATCH", M1 + "/config", 503, body="<html><body>Service Unavailable</body></html>",
                     headers={"Content-Type": "text/html"}))
    with pytest.raises(PatroniOperationError) as info:
        ConfigRunner(PatroniClient(M1), {"loop_wait": 5}).run()
    assert info.value.msg == (f"PATCH /config refused by {M1}/config (HTTP 503 'Service Unavailable'): the cluster "
                              "has no dynamic configuration in the DCS yet, or the DCS is unreachable")


def test_get_config_502(fake):
    fake.expect(GET(M1 + "/config", 502, body="<html><body>Bad Gateway</body></html>"))
    with pytest.raises(PatroniOperationError) as info:
        ConfigRunner(PatroniClient(M1), {"loop_wait": 5}).run()
    assert info.value.msg == (f"GET {M1}/config answered HTTP 502: the cluster has no dynamic configuration in the "
                              "DCS (the /config key is missing, for example while the cluster bootstraps); wait for "
                              "the bootstrap to finish")


@pytest.mark.parametrize("value", [{}, None, "x"])
def test_config_must_be_a_dict(value):
    with pytest.raises(PatroniError) as info:
        ConfigRunner(PatroniClient(M1), value)
    assert info.value.msg.startswith("config must be a non-empty dictionary")


# ------------------------------------------------------------------------------------------------------------
# patroni_maintenance


def status(paused):
    doc = copy.deepcopy(load_fixture("patroni-4.1", "replica-patroni.json"))
    doc.pop("pause", None)
    if paused:
        doc["pause"] = True
    return doc


def test_pause_sends_what_patronictl_sends_and_waits(fake):
    paused = dict(config(), pause=True)
    patch = Call("PATCH", M1 + "/config", json_body=paused)
    fake.expect(GET(M1 + "/config", json_body=config()), patch, GET(M1 + "/cluster", json_body=cluster()),
                GET(M1 + "/patroni", json_body=status(True)), GET(M2 + "/patroni", json_body=status(True)),
                GET(M3 + "/patroni", json_body=status(True)))
    result = MaintenanceRunner(PatroniClient(M1), "paused").run()
    assert patch.seen[0]["json"] == {"pause": True}
    assert result["changed"] is True and result["paused"] is True and result["was_paused"] is False
    assert result["members"] == ["c1m1", "c1m2", "c1m3"]


def test_resume_when_already_resumed_sends_nothing(fake):
    fake.expect(GET(M1 + "/config", json_body=config()))
    result = MaintenanceRunner(PatroniClient(M1), "resumed", wait=False).run()
    assert result["changed"] is False


def test_resume_sends_null(fake):
    patch = Call("PATCH", M1 + "/config", json_body=config())
    fake.expect(GET(M1 + "/config", json_body=dict(config(), pause=True)), patch)
    result = MaintenanceRunner(PatroniClient(M1), "resumed", wait=False).run()
    assert patch.seen[0]["json"] == {"pause": None} and result["changed"] is True


def test_member_that_does_not_follow_times_out(fake):
    fake.expect(GET(M1 + "/config", json_body=dict(config(), pause=True)),
                GET(M1 + "/cluster", json_body=cluster(), repeat=True),
                GET(M1 + "/patroni", json_body=status(True), repeat=True),
                GET(M2 + "/patroni", json_body=status(True), repeat=True),
                GET(M3 + "/patroni", json_body=status(False), repeat=True))
    clock = Clock()
    with pytest.raises(PatroniOperationTimeout) as info:
        MaintenanceRunner(PatroniClient(M1), "paused", wait_timeout=5, clock=clock, sleep=clock.sleep).run()
    assert info.value.msg == ("the cluster is paused in the DCS, but after 5.0 s (wait_timeout=5) these members do "
                              "not report it: c1m3: not paused yet. Members apply it on their next HA loop "
                              "(loop_wait); a member that does not is cut off from the DCS")

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy

import pytest

from ansible_collections.pgha.patroni.plugins.modules import patroni_switchover
from ansible_collections.pgha.patroni.tests.unit.helpers.fake_http import GET, Call
from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import fake  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.module import AnsibleFailJson, load_fixture, run_module

M1 = "http://10.213.0.11:8008"


def cluster():
    doc = copy.deepcopy(load_fixture("patroni-4.1", "cluster.json"))
    doc["members"][2]["tags"] = {}
    doc["members"][2]["role"] = "replica"
    return doc


def test_check_mode_names_the_candidate(fake, monkeypatch):
    fake.expect(GET(M1 + "/cluster", json_body=cluster()))
    result = run_module(monkeypatch, patroni_switchover.main, {"api_url": M1, "_ansible_check_mode": True})
    assert result["changed"] is True
    assert result["msg"] == "would switch cluster c1 over from c1m1 to c1m2"


def test_rerun_with_the_candidate_leading_is_unchanged(fake, monkeypatch):
    fake.expect(GET(M1 + "/cluster", json_body=cluster()))
    result = run_module(monkeypatch, patroni_switchover.main, {"api_url": M1, "candidate": "c1m1"})
    assert result["changed"] is False and result["primary"] == "c1m1"


def test_refusal_fails_with_the_reason(fake, monkeypatch):
    fake.expect(GET(M1 + "/cluster", json_body=cluster()),
                Call("POST", M1 + "/switchover", 412, body="candidate name does not match with sync_standby"))
    with pytest.raises(AnsibleFailJson) as info:
        run_module(monkeypatch, patroni_switchover.main, {"api_url": M1, "candidate": "c1m3"})
    result = info.value.result
    assert result["msg"].startswith(f"switchover of cluster c1 from c1m1 to c1m3 refused by {M1}/switchover (HTTP 412")
    assert result["error"]["status"] == 412 and result["error"]["kind"] == "http"


def test_naive_schedule_fails_without_a_request(fake, monkeypatch):
    with pytest.raises(AnsibleFailJson) as info:
        run_module(monkeypatch, patroni_switchover.main, {"api_url": M1, "scheduled_at": "2030-01-01 03:00"})
    assert info.value.result["msg"].startswith("scheduled_at='2030-01-01 03:00' has no time zone")


def test_absent_check_mode_names_the_switchover(fake, monkeypatch):
    doc = cluster()
    doc["scheduled_switchover"] = {"at": "2030-01-01T03:00:00+00:00", "from": "c1m1", "to": "c1m2"}
    fake.expect(GET(M1 + "/cluster", json_body=doc))
    result = run_module(monkeypatch, patroni_switchover.main,
                        {"api_url": M1, "state": "absent", "_ansible_check_mode": True})
    assert result["changed"] is True
    assert result["msg"] == ("would cancel the switchover of cluster c1 scheduled at 2030-01-01T03:00:00+00:00 from "
                             "c1m1 to c1m2")


def test_absent_auth_failure_fails_the_task_with_the_url(fake, monkeypatch):
    doc = cluster()
    doc["scheduled_switchover"] = {"at": "2030-01-01T03:00:00+00:00"}
    fake.expect(GET(M1 + "/cluster", json_body=doc), Call("DELETE", M1 + "/switchover", 401, body="not authenticated"))
    with pytest.raises(AnsibleFailJson) as info:
        run_module(monkeypatch, patroni_switchover.main,
                   {"api_url": M1, "state": "absent", "api_username": "u", "api_password": "wrong-secret"})
    result = info.value.result
    assert result["msg"].startswith(f"DELETE {M1}/switchover answered HTTP 401: Patroni rejected "
                                    "api_username/api_password")
    assert result["error"]["kind"] == "auth" and "wrong-secret" not in str(result)

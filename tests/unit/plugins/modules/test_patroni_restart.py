# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.pgha.patroni.plugins.modules import patroni_restart
from ansible_collections.pgha.patroni.tests.unit.helpers.fake_http import GET, Call
from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import fake  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.module import AnsibleFailJson, load_fixture, run_module
from ansible_collections.pgha.patroni.tests.unit.plugins.module_utils.test_health import every_member
from ansible_collections.pgha.patroni.tests.unit.plugins.module_utils.test_wait_primary import cluster

M1 = "http://10.213.0.11:8008"


def test_members_and_all_members_exclude_each_other(monkeypatch):
    with pytest.raises(AnsibleFailJson) as info:
        run_module(monkeypatch, patroni_restart.main, {"api_url": M1, "members": ["c1m1"], "all_members": True})
    assert info.value.result["msg"] == "parameters are mutually exclusive: members|all_members"


def test_pending_only_restarts_the_pending_member(fake, monkeypatch):
    post = Call("POST", "http://10.213.0.13:8008/restart", 200, body="restarted successfully")
    fake.expect(GET(M1 + "/cluster", json_body=load_fixture("patroni-4.1", "cluster.json")), post)
    result = run_module(monkeypatch, patroni_restart.main, {"api_url": M1, "all_members": True, "pending_only": True})
    assert result["changed"] is True and result["restarted"] == ["c1m3"]
    assert sorted(result["not_restarted"]) == ["c1m1", "c1m2"]
    assert post.seen[0]["json"] == {"restart_pending": True}


def test_bad_role(monkeypatch):
    with pytest.raises(AnsibleFailJson) as info:
        run_module(monkeypatch, patroni_restart.main, {"api_url": M1, "role": "master"})
    assert info.value.result["msg"].startswith("value of role must be one of: primary, replica, any")


def test_absent_refuses_restart_timeout(monkeypatch):
    with pytest.raises(AnsibleFailJson) as info:
        run_module(monkeypatch, patroni_restart.main, {"api_url": M1, "state": "absent", "restart_timeout": 60})
    assert info.value.result["msg"].startswith("restart_timeout only apply to a restart to run (state=present)")
    assert info.value.result["error"]["kind"] == "bad_option"


def test_absent_check_mode_lists_what_would_be_cancelled(fake, monkeypatch):
    doc = load_fixture("patroni-4.1", "cluster.json")
    doc["members"][1]["scheduled_restart"] = {"schedule": "2030-01-01T03:00:00+00:00"}
    fake.expect(GET(M1 + "/cluster", json_body=doc))
    result = run_module(monkeypatch, patroni_restart.main,
                        {"api_url": M1, "all_members": True, "state": "absent", "_ansible_check_mode": True})
    assert result["changed"] is True and result["cancelled"] == ["c1m2"]
    assert result["msg"] == "would cancel the scheduled restart of c1m2 (at 2030-01-01T03:00:00+00:00)"


def test_wait_healthy_returns_the_check_after_the_restart(fake, monkeypatch):
    fake.expect(GET(M1 + "/cluster", json_body=cluster("c1m1")),
                Call("POST", "http://10.213.0.13:8008/restart", 200, body="restarted successfully"),
                GET(M1 + "/cluster", json_body=cluster("c1m1")), *every_member())
    result = run_module(monkeypatch, patroni_restart.main, {"api_url": M1, "members": ["c1m3"], "wait_healthy": True,
                                                            "expected_members": 3})
    assert result["restarted"] == ["c1m3"]
    assert result["health"]["healthy"] is True and result["health"]["member_status"]["name"] == "c1m3"


def test_wait_healthy_with_a_bad_option_sends_nothing(fake, monkeypatch):
    with pytest.raises(AnsibleFailJson) as info:
        run_module(monkeypatch, patroni_restart.main, {"api_url": M1, "members": ["c1m3"], "wait_healthy": True,
                                                       "max_lag": "lots"})
    assert "max_lag" in info.value.result["msg"] and info.value.result["error"]["kind"] == "bad_option"

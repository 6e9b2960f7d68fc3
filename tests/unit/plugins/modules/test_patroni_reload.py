# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.pgha.patroni.plugins.modules import patroni_reload
from ansible_collections.pgha.patroni.tests.unit.helpers.fake_http import GET, Call
from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import fake  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.module import load_fixture, run_module

M2 = "http://10.213.0.12:8008"


def test_reload_one_member_reports_changed(fake, monkeypatch):
    fake.expect(GET(M2 + "/cluster", json_body=load_fixture("patroni-4.1", "cluster.json"), repeat=True),
                Call("POST", M2 + "/reload", 202, body="reload scheduled"),
                GET(M2 + "/patroni", json_body=load_fixture("patroni-4.1", "replica-patroni.json")))
    result = run_module(monkeypatch, patroni_reload.main, {"api_url": M2})
    assert result["changed"] is True and result["reloaded"] == ["c1m2"] and result["pending_restart"] == []


def test_check_mode_sends_nothing(fake, monkeypatch):
    fake.expect(GET(M2 + "/cluster", json_body=load_fixture("patroni-4.1", "cluster.json")))
    result = run_module(monkeypatch, patroni_reload.main, {"api_url": M2, "all_members": True,
                                                           "_ansible_check_mode": True})
    assert result["changed"] is True and result["reloaded"] == ["c1m2", "c1m3", "c1m1"]

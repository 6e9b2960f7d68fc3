# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.pgha.patroni.plugins.modules import patroni_config
from ansible_collections.pgha.patroni.tests.unit.helpers.fake_http import GET
from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import fake  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.module import load_fixture, run_module

M1 = "http://10.213.0.11:8008"


def test_diff_in_check_mode(fake, monkeypatch):
    fake.expect(GET(M1 + "/config", json_body=load_fixture("patroni-4.1", "config.json")))
    result = run_module(monkeypatch, patroni_config.main, {
        "api_url": M1, "config": {"ttl": 40, "synchronous_mode": None},
        "_ansible_check_mode": True, "_ansible_diff": True})
    assert result["changed"] is True and result["patch"] == {"ttl": 40, "synchronous_mode": None}
    assert result["diff"]["before"]["ttl"] == 30 and result["diff"]["after"]["ttl"] == 40
    assert "synchronous_mode" not in result["diff"]["after"]


def test_unchanged_without_diff(fake, monkeypatch):
    fake.expect(GET(M1 + "/config", json_body=load_fixture("patroni-4.1", "config.json")),
                GET(M1 + "/cluster", json_body=load_fixture("patroni-4.1", "cluster.json")))
    result = run_module(monkeypatch, patroni_config.main, {"api_url": M1, "config": {"ttl": "30"}})
    assert result["changed"] is False and "diff" not in result
    assert result["pending_restart"] == ["c1m3"]

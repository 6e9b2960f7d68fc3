# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.pgha.patroni.plugins.modules import patroni_maintenance
from ansible_collections.pgha.patroni.tests.unit.helpers.fake_http import GET
from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import fake  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.module import AnsibleFailJson, load_fixture, run_module

M1 = "http://10.213.0.11:8008"


def test_pause_check_mode(fake, monkeypatch):
    fake.expect(GET(M1 + "/config", json_body=load_fixture("patroni-4.1", "config.json")))
    result = run_module(monkeypatch, patroni_maintenance.main, {"api_url": M1, "state": "paused",
                                                                "_ansible_check_mode": True})
    assert result["changed"] is True and result["paused"] is True and result["members"] == []


def test_state_is_required(monkeypatch):
    with pytest.raises(AnsibleFailJson) as info:
        run_module(monkeypatch, patroni_maintenance.main, {"api_url": M1})
    assert info.value.result["msg"] == "missing required arguments: state"

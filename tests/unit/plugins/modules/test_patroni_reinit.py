# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.pgha.patroni.plugins.modules import patroni_reinit
from ansible_collections.pgha.patroni.tests.unit.helpers.fake_http import GET, Call
from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import fake  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.module import AnsibleFailJson, load_fixture, run_module

M1 = "http://10.213.0.11:8008"


def test_leader_refused(fake, monkeypatch):
    fake.expect(GET(M1 + "/cluster", json_body=load_fixture("patroni-4.1", "cluster.json")))
    with pytest.raises(AnsibleFailJson) as info:
        run_module(monkeypatch, patroni_reinit.main, {"api_url": M1, "member": "c1m1"})
    assert info.value.result["msg"] == ("c1m1 is the leader of cluster c1: only replicas can be reinitialized; "
                                        "switch over first (patroni_switchover)")


def test_streaming_member_left_alone(fake, monkeypatch):
    fake.expect(GET(M1 + "/cluster", json_body=load_fixture("patroni-4.1", "cluster.json")))
    result = run_module(monkeypatch, patroni_reinit.main, {"api_url": M1, "member": "c1m2",
                                                           "only_if_unhealthy": True})
    assert result["changed"] is False and result["state_before"] == "streaming"


def test_no_wait(fake, monkeypatch):
    post = Call("POST", "http://10.213.0.12:8008/reinitialize", 200, body="reinitialize started")
    fake.expect(GET(M1 + "/cluster", json_body=load_fixture("patroni-4.1", "cluster.json")),
                GET("http://10.213.0.12:8008/patroni", json_body=load_fixture("patroni-4.1", "replica-patroni.json")),
                post)
    result = run_module(monkeypatch, patroni_reinit.main, {"api_url": M1, "member": "c1m2", "wait": False,
                                                           "force": True})
    assert result["changed"] is True and post.seen[0]["json"] == {"force": True}

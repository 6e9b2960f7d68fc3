# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy
import time

import pytest

from ansible_collections.pgha.patroni.plugins.modules import patroni_wait_healthy
from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import serve  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.module import (
    AnsibleFailJson,
    load_fixture,
    run_module,
    run_module_output,
)
from ansible_collections.pgha.patroni.tests.unit.helpers.servers import Route, refused_port


def cluster_on(serve, **changes):
    """A real server answering /cluster (every member's api_url points back at it) and a replica's /patroni."""
    doc = copy.deepcopy(load_fixture("patroni-4.1", "cluster.json"))
    server = serve()
    for member in doc["members"]:
        member["api_url"] = server.url() + "/patroni"
        member.pop("pending_restart", None)
        member.update(changes.get(member["name"], {}))
    status = copy.deepcopy(load_fixture("patroni-4.1", "replica-pending-restart-patroni.json"))
    status.pop("scheduled_restart")
    status.pop("pause")
    server.routes.update({"/cluster": Route(200, dict(doc, **changes.get("cluster", {}))),
                          "/patroni": Route(200, status)})
    return server


@pytest.mark.parametrize("check_mode", [False, True])
def test_healthy_with_member_status(serve, monkeypatch, check_mode):
    server = cluster_on(serve)
    result = run_module(monkeypatch, patroni_wait_healthy.main, {
        "api_url": server.url(), "expected_members": 3, "max_lag": "1kB", "member": "c1m3",
        "all_members_status": True, "_ansible_check_mode": check_mode})
    assert result["changed"] is False
    assert (result["healthy"], result["leader"], result["scope"], result["timeline"], result["polls"]) == \
        (True, "c1m1", "c1", 2, 1)
    assert result["member_status"]["pending_restart"] is True
    reason = {"max_connections": {"old_value": "50", "new_value": "60"}}
    assert result["member_status"]["pending_restart_reason"] == reason
    assert [m["name"] for m in result["members"]] == ["c1m1", "c1m2", "c1m3"]
    assert sorted(result["member_statuses"]) == ["c1m1", "c1m2", "c1m3"]
    # reads only, in check mode as well
    assert {method for method, _path, _headers in server.requests} == {"GET"}


def test_lagging_replica_times_out_with_every_reason(serve, monkeypatch):
    server = cluster_on(serve, c1m3={"lag": 5 * 1024 * 1024}, c1m2={"state": "starting"})
    started = time.monotonic()
    with pytest.raises(AnsibleFailJson) as info:
        run_module(monkeypatch, patroni_wait_healthy.main, {
            "api_url": server.url(), "max_lag": "1MB", "expected_members": 3, "wait_timeout": 0.3,
            "wait_sleep": 0.1})
    assert time.monotonic() - started < 1.5
    result = info.value.result
    assert result["reasons"] == ["c1m2 is starting, not streaming",
                                 "c1m3 lags 5242880 bytes, more than 1048576 (max_lag 1MB)"]
    assert result["msg"].startswith("cluster c1 is not healthy after 0.")
    assert result["msg"].endswith(f"GET {server.url()}/cluster): c1m2 is starting, not streaming; c1m3 lags "
                                  "5242880 bytes, more than 1048576 (max_lag 1MB)")
    assert (result["healthy"], result["blocked"], result["error"]["kind"]) == (False, False, "unhealthy")
    assert result["polls"] >= 3 and [m["name"] for m in result["members"]] == ["c1m1", "c1m2", "c1m3"]


def test_paused_fails_at_once(serve, monkeypatch):
    server = cluster_on(serve, cluster={"pause": True})
    started = time.monotonic()
    with pytest.raises(AnsibleFailJson) as info:
        run_module(monkeypatch, patroni_wait_healthy.main, {"api_url": server.url(), "wait_timeout": 30})
    assert time.monotonic() - started < 5
    result = info.value.result
    assert result["blocked"] is True and result["polls"] == 1
    assert result["reasons"][0].startswith("the cluster is paused (maintenance mode)")


def test_refused_waits_until_the_timeout(monkeypatch):
    port = refused_port()
    started = time.monotonic()
    with pytest.raises(AnsibleFailJson) as info:
        run_module(monkeypatch, patroni_wait_healthy.main, {
            "api_url": f"http://127.0.0.1:{port}", "wait_timeout": 0.5, "wait_sleep": 0.1})
    assert 0.5 <= time.monotonic() - started < 2.5
    assert info.value.result["members"] is None
    assert f"no member answered GET /cluster: http://127.0.0.1:{port}: connection refused" in info.value.result["msg"]


def test_credentials_are_not_shown(capsys):
    port = refused_port()
    result, out = run_module_output(capsys, patroni_wait_healthy.main, {
        "api_url": f"http://user:topsecret@127.0.0.1:{port}", "wait_timeout": 0})
    assert result["failed"] is True
    assert f"GET http://127.0.0.1:{port}/cluster" in result["msg"]
    assert "topsecret" not in out


def test_bad_lag_unit_fails_at_once(monkeypatch):
    with pytest.raises(AnsibleFailJson) as info:
        run_module(monkeypatch, patroni_wait_healthy.main, {"api_url": "http://10.213.0.11:8008", "max_lag": "1mb"})
    assert info.value.result["msg"].startswith("max_lag='1mb' is not a size Patroni understands")
    assert info.value.result["error"]["kind"] == "bad_option"

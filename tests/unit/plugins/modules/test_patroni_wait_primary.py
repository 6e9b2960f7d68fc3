# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy
import time

import pytest

from ansible_collections.pgha.patroni.plugins.modules import patroni_wait_primary
from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import serve  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.module import (
    AnsibleFailJson,
    load_fixture,
    run_module,
    run_module_output,
)
from ansible_collections.pgha.patroni.tests.unit.helpers.servers import Route, refused_port


def ready_cluster(serve):
    cluster = copy.deepcopy(load_fixture("patroni-4.1", "cluster.json"))
    server = serve()
    for member in cluster["members"]:
        member["api_url"] = server.url() + "/patroni"
        if member["role"] != "leader":
            member["lag"] = 0
    server.routes.update({"/cluster": Route(200, cluster),
                          "/patroni": Route(200, load_fixture("patroni-4.1", "primary-patroni.json")),
                          "/read-write": Route(200, {"role": "primary"})})
    return server


@pytest.mark.parametrize("check_mode", [False, True])
def test_success_result(serve, monkeypatch, check_mode):
    server = ready_cluster(serve)
    result = run_module(monkeypatch, patroni_wait_primary.main, {
        "api_url": server.url(), "min_replicas": 2, "max_lag": "1kB", "not_member": "c1m2",
        "_ansible_check_mode": check_mode})
    assert result["changed"] is False
    timeline = load_fixture("patroni-4.1", "primary-patroni.json")["timeline"]
    assert (result["primary"], result["host"], result["port"], result["timeline"], result["polls"]) == \
        ("c1m1", "10.213.0.11", 5432, timeline, 1)
    assert result["api_url"] == server.url() + "/patroni"
    assert isinstance(result["elapsed"], float) and result["elapsed"] < 1
    assert [m["name"] for m in result["members"]] == ["c1m1", "c1m2", "c1m3"]


def test_timeout_failure_carries_the_last_state(serve, monkeypatch):
    server = ready_cluster(serve)
    started = time.monotonic()
    with pytest.raises(AnsibleFailJson) as info:
        run_module(monkeypatch, patroni_wait_primary.main, {
            "api_url": server.url(), "member": "c1m3", "wait_timeout": 0.3, "wait_sleep": 0.1})
    assert time.monotonic() - started < 1.5
    result = info.value.result
    assert result["msg"].startswith("timed out after 0.")
    assert "missing: c1m1 is primary, not c1m3 (member). last GET /cluster" in result["msg"]
    assert result["missing"] == ["c1m1 is primary, not c1m3 (member)"]
    assert [m["name"] for m in result["members"]] == ["c1m1", "c1m2", "c1m3"]
    assert result["polls"] >= 3 and result["error"]["kind"] == "timeout"


def test_refused_keeps_waiting_until_the_timeout(monkeypatch):
    port = refused_port()
    started = time.monotonic()
    with pytest.raises(AnsibleFailJson) as info:
        run_module(monkeypatch, patroni_wait_primary.main, {
            "api_url": f"http://127.0.0.1:{port}", "wait_timeout": 0.5, "wait_sleep": 0.1})
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 1.5
    assert f"errors: http://127.0.0.1:{port}: connection refused by 127.0.0.1:{port}" in info.value.result["msg"]


def test_bad_url_fails_at_once_without_the_secret(capsys):
    started = time.monotonic()
    result, out = run_module_output(capsys, patroni_wait_primary.main, {
        "api_url": "ftp://user:secret@10.213.0.11:8008", "wait_timeout": 60})
    assert time.monotonic() - started < 5
    assert result["failed"] is True
    assert result["msg"] == "api_url 'ftp://10.213.0.11:8008' uses the scheme 'ftp': only http and https are supported"
    assert "secret" not in out


def test_wait_sleep_too_small(monkeypatch):
    with pytest.raises(AnsibleFailJson) as info:
        run_module(monkeypatch, patroni_wait_primary.main, {"api_url": "http://10.213.0.11:8008", "wait_sleep": 0})
    assert info.value.result["msg"] == "wait_sleep=0.0 is too small: use at least 0.05 seconds"

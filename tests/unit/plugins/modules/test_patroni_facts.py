# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.pgha.patroni.plugins.modules import patroni_facts
from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import fake, serve  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.fake_http import GET
from ansible_collections.pgha.patroni.tests.unit.helpers.module import (
    AnsibleFailJson,
    load_fixture,
    run_module,
    run_module_output,
)
from ansible_collections.pgha.patroni.tests.unit.helpers.servers import Route, refused_port

M1 = "http://10.213.0.11:8008"


def node_only(fake, base=M1, fixture="primary-patroni.json", version="patroni-4.1"):
    fake.expect(GET(base + "/patroni", json_body=load_fixture(version, fixture)))


@pytest.mark.parametrize("check_mode", [False, True])
def test_facts_in_and_out_of_check_mode(fake, monkeypatch, check_mode):
    node_only(fake)
    result = run_module(monkeypatch, patroni_facts.main, {"api_url": M1, "gather_subset": ["!all"],
                                                          "_ansible_check_mode": check_mode})
    assert result["changed"] is False
    facts = result["ansible_facts"]["patroni"]
    timeline = load_fixture("patroni-4.1", "primary-patroni.json")["timeline"]
    assert (facts["name"], facts["role"], facts["timeline"], facts["gather_subset"]) == \
        ("c1m1", "primary", timeline, ["node"])


def test_connection_options_come_from_the_environment(fake, monkeypatch):
    seen = {}
    monkeypatch.setenv("PATRONI_API_URL", "http://10.213.0.12:8008")
    monkeypatch.setenv("PATRONI_API_USERNAME", "api")
    monkeypatch.setenv("PATRONI_API_PASSWORD", "from-env")
    fake.expect(GET("http://10.213.0.12:8008/patroni", json_body=load_fixture("patroni-4.1", "replica-patroni.json"),
                    check=seen.update))
    result = run_module(monkeypatch, patroni_facts.main, {"gather_subset": ["!all"], "timeout": 1.5})
    assert result["ansible_facts"]["patroni"]["api_url"] == "http://10.213.0.12:8008"
    assert seen["auth"] == ("api", "from-env") and seen["timeout"] == 1.5


def test_unreachable_node_fails_with_the_classified_error(monkeypatch):
    port = refused_port()
    with pytest.raises(AnsibleFailJson) as info:
        run_module(monkeypatch, patroni_facts.main, {"api_url": f"http://127.0.0.1:{port}"})
    result = info.value.result
    assert result["msg"] == (f"connection refused by 127.0.0.1:{port} (GET http://127.0.0.1:{port}/patroni): is "
                             f"Patroni running and listening on 127.0.0.1:{port}? Check restapi.listen and firewalls")
    assert result["error"]["kind"] == "connection" and result["error"]["retryable"] is True


@pytest.mark.parametrize("args, message", [
    ({"api_username": "api"}, "parameters are required together: api_username, api_password"),
    ({"timeout": 0}, "timeout=0.0 must be more than 0 seconds"),
    ({"client_key": "/tmp/k.pem"}, "missing parameter(s) required by 'client_key': client_cert"),
    ({"health_lag": "16mb"}, "health_lag='16mb' is not a size Patroni understands: give bytes (e.g. 1048576) or a "
                             "number with one of the case-sensitive units B, kB, MB, GB, TB (e.g. 16MB). Patroni "
                             "silently ignores other spellings such as 16mb or 16KB, which would switch the lag limit "
                             "off."),
])
def test_argument_errors(monkeypatch, args, message):
    with pytest.raises(AnsibleFailJson) as info:
        run_module(monkeypatch, patroni_facts.main, dict(args, api_url=M1))
    assert info.value.result["msg"] == message


def test_gather_subset_choices(monkeypatch):
    with pytest.raises(AnsibleFailJson) as info:
        run_module(monkeypatch, patroni_facts.main, {"api_url": M1, "gather_subset": ["!node"]})
    assert info.value.result["msg"].startswith("value of gather_subset must be one or more of: all, node, health, "
                                               "cluster, config, history, !all, !health")


def test_config_502_warns(fake, monkeypatch):
    node_only(fake)
    fake.expect(GET(M1 + "/config", 502, body="<html>Error code: 502</html>"))
    warnings = []
    monkeypatch.setattr(patroni_facts.AnsibleModule, "warn", lambda self, w: warnings.append(w))
    result = run_module(monkeypatch, patroni_facts.main, {"api_url": M1, "gather_subset": ["!all", "config"]})
    assert result["ansible_facts"]["patroni"]["config"] == {}
    assert warnings == ["GET http://10.213.0.11:8008/config answered HTTP 502: the cluster has no dynamic "
                        "configuration in the DCS (no /config key); config is {}"]


def test_no_password_in_output_on_failure(capsys):
    """Real exit_json/fail_json, so Ansible's no_log masking is what is tested."""
    port = refused_port()
    result, out = run_module_output(capsys, patroni_facts.main, {
        "api_url": f"http://admin:url-s3cret@127.0.0.1:{port}", "api_username": "api", "api_password": "hunter2"})
    assert result["failed"] is True
    assert f"http://127.0.0.1:{port}/patroni" in result["msg"]
    assert "hunter2" not in out and "url-s3cret" not in out


def test_no_password_in_output_on_success(capsys, serve):
    server = serve({"/patroni": Route(200, load_fixture("patroni-4.1", "primary-patroni.json"))})
    result, out = run_module_output(capsys, patroni_facts.main, {
        "api_url": server.url().replace("http://", "http://admin:url-s3cret@"), "gather_subset": ["!all"],
        "api_username": "api", "api_password": "hunter2"})
    assert result["ansible_facts"]["patroni"]["api_url"] == server.url()
    assert "hunter2" not in out and "url-s3cret" not in out


def test_facts_against_a_real_server(serve):
    """The whole module over real sockets: every endpoint, one member hung (slow), the rest fine."""
    import copy
    cluster = copy.deepcopy(load_fixture("patroni-4.1", "cluster.json"))
    me = serve()
    slow = serve({"/patroni": Route(200, load_fixture("patroni-4.1", "replica-patroni.json"), delay=3)})
    fine = serve({"/patroni": Route(200, load_fixture("patroni-4.1", "replica-pending-restart-patroni.json"))})
    for member, server in zip(cluster["members"], (me, slow, fine)):
        member["api_url"] = server.url() + "/patroni"
    me.routes.update({
        "/patroni": Route(200, load_fixture("patroni-4.1", "primary-patroni.json")),
        "/cluster": Route(200, cluster),
        "/config": Route(200, load_fixture("patroni-4.1", "config.json")),
        "/history": Route(200, load_fixture("patroni-4.1", "history.json")),
        "/primary": Route(200, {"role": "primary"}), "/read-write": Route(200, {"role": "primary"}),
        "/read-only": Route(200, {"role": "primary"}), "/health": Route(200, {"role": "primary"}),
        "/liveness": Route(200, bare=True), "/readiness": Route(200, bare=True),
    })
    import time
    from ansible_collections.pgha.patroni.plugins.module_utils._api_client import PatroniClient
    from ansible_collections.pgha.patroni.plugins.module_utils._facts import gather_facts
    started = time.monotonic()
    facts, _warnings = gather_facts(PatroniClient(me.url(), timeout=1), health_lag="1MB")
    elapsed = time.monotonic() - started
    # one hung member costs one timeout, not one per endpoint
    assert elapsed < 2.5, elapsed
    assert facts["health"] == {"primary": True, "replica": False, "read_write": True, "read_only": True,
                               "sync": False, "async": False, "quorum": False, "health": True, "liveness": True,
                               "readiness": True}, facts["unreachable"]
    assert ("GET", "/replica?lag=1048576") in [(m, p) for m, p, _h in me.requests]
    assert [(u["name"], u["kind"]) for u in facts["unreachable"]] == [("c1m2", "timeout")], facts["unreachable"]
    assert f"no answer within 1 s from GET {slow.url()}/patroni" in facts["unreachable"][0]["reason"]
    assert {m["name"]: (m["reachable"], m["version"]) for m in facts["cluster"]["members"]} == {
        "c1m1": (True, "4.1.5"), "c1m2": (False, None), "c1m3": (True, "4.1.5")}

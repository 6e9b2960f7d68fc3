# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy

import pytest
import requests
from urllib3.exceptions import ProtocolError

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    PatroniClient,
    PatroniConnectionError,
    PatroniError,
    PatroniTLSError,
)
from ansible_collections.pgha.patroni.plugins.module_utils._facts import (
    build_history,
    build_member,
    gather_facts,
    resolve_gather_subset,
)
from ansible_collections.pgha.patroni.tests.unit.helpers.fake_http import GET
from ansible_collections.pgha.patroni.tests.unit.helpers.module import load_fixture

M1, M2, M3 = "http://10.213.0.11:8008", "http://10.213.0.12:8008", "http://10.213.0.13:8008"
HEALTH_PATHS = ["/primary", "/replica", "/read-write", "/read-only", "/sync", "/async", "/quorum", "/health",
                "/liveness", "/readiness"]


def dropped() -> requests.exceptions.ConnectionError:
    """What requests raises when Patroni closes the connection without answering."""
    from http.client import RemoteDisconnected
    reason = RemoteDisconnected("Remote end closed connection without response")
    return requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", reason))


def refused(url: str) -> requests.exceptions.ConnectionError:
    from urllib3.exceptions import MaxRetryError, NewConnectionError
    inner = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")
    inner.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return requests.exceptions.ConnectionError(MaxRetryError(None, url, inner))


def health(base: str, answers: dict[str, int], lag: int | None = None) -> list:
    calls = []
    for path in HEALTH_PATHS:
        query = f"?lag={lag}" if lag is not None and path in ("/replica", "/read-only", "/sync", "/async",
                                                               "/quorum") else ""
        calls.append(GET(base + path + query, answers.get(path, 503), {"role": "x"}))
    return calls


PRIMARY_HEALTH = {"/primary": 200, "/read-write": 200, "/read-only": 200, "/health": 200, "/liveness": 200,
                  "/readiness": 200}
REPLICA_HEALTH = {"/replica": 200, "/read-only": 200, "/async": 200, "/health": 200, "/liveness": 200,
                  "/readiness": 200}


@pytest.mark.parametrize("given, expected", [
    (None, ["node", "health", "cluster", "config", "history"]),
    (["all"], ["node", "health", "cluster", "config", "history"]),
    (["!history"], ["node", "health", "cluster", "config"]),
    (["!all"], ["node"]),
    (["!all", "health"], ["node", "health"]),
    (["cluster"], ["node", "cluster"]),
    (["node"], ["node"]),
    (["all", "!config", "!history"], ["node", "health", "cluster"]),
])
def test_resolve_gather_subset(given, expected):
    assert resolve_gather_subset(given) == expected


def test_full_facts_of_a_4_1_primary(fake):
    fake.expect(
        GET(M1 + "/patroni", json_body=load_fixture("patroni-4.1", "primary-patroni.json")),
        *health(M1, PRIMARY_HEALTH),
        GET(M1 + "/cluster", json_body=load_fixture("patroni-4.1", "cluster.json")),
        GET(M1 + "/config", json_body=load_fixture("patroni-4.1", "config.json")),
        GET(M1 + "/history", json_body=load_fixture("patroni-4.1", "history.json")),
        GET(M2 + "/patroni", json_body=load_fixture("patroni-4.1", "replica-patroni.json")),
        GET(M3 + "/patroni", json_body=load_fixture("patroni-4.1", "replica-pending-restart-patroni.json")),
    )
    facts, warnings = gather_facts(PatroniClient(M1))
    assert warnings == []
    top = {k: v for k, v in facts.items() if k not in ("health", "cluster", "config", "history")}
    assert top == {
        "name": "c1m1", "scope": "c1", "role": "primary", "state": "running", "replication_state": None,
        "timeline": 2, "server_version": 150018, "postmaster_start_time": "2026-11-25 10:15:02.123456+00:00",
        "lsn": 67109216, "received_lsn": None, "replayed_lsn": None, "replayed_timestamp": None,
        "replay_paused": None, "lag": None, "pending_restart": False, "pending_restart_reason": None,
        "scheduled_restart": None, "paused": False, "cluster_unlocked": False, "tags": {}, "version": "4.1.5",
        "sync_standby": False, "quorum_standby": False, "dcs_last_seen": 1795602902, "api_url": M1,
        "gather_subset": ["node", "health", "cluster", "config", "history"], "unreachable": [],
    }
    assert facts["health"] == {"primary": True, "replica": False, "read_write": True, "read_only": True,
                               "sync": False, "async": False, "quorum": False, "health": True, "liveness": True,
                               "readiness": True}
    cluster = facts["cluster"]
    assert (cluster["scope"], cluster["leader"], cluster["paused"], cluster["scheduled_switchover"]) == \
        ("c1", "c1m1", False, None)
    assert [(m["name"], m["role"], m["sync"], m["streaming"], m["lag"]) for m in cluster["members"]] == [
        ("c1m1", "primary", False, False, None), ("c1m2", "replica", False, True, 0),
        ("c1m3", "replica", True, True, 96)]
    assert cluster["members"][2] == {
        "name": "c1m3", "role": "replica", "sync": True, "quorum": False, "state": "streaming", "streaming": True,
        "host": "10.213.0.13", "port": 5432, "api_url": "http://10.213.0.13:8008/patroni", "timeline": 2,
        "lag": 96, "receive_lag": 0, "replay_lag": 96, "lsn": "0/4000000", "pending_restart": True,
        "tags": {"nofailover": True, "dc": "b"}, "reachable": True, "version": "4.1.5",
    }
    assert facts["config"]["ttl"] == 30 and facts["config"]["synchronous_mode"] is True
    assert facts["history"] == [{"timeline": 1, "lsn": 25165984, "reason": "no recovery target specified",
                                 "timestamp": "2026-11-25T10:20:01.123456+00:00", "new_leader": "c1m1"}]


def test_replica_facts_lag_and_health_lag_in_bytes(fake):
    fake.expect(
        GET(M3 + "/patroni", json_body=load_fixture("patroni-4.1", "replica-pending-restart-patroni.json")),
        *health(M3, REPLICA_HEALTH, lag=16777216),
        GET(M3 + "/cluster", json_body=load_fixture("patroni-4.1", "cluster.json")),
        GET(M1 + "/patroni", json_body=load_fixture("patroni-4.1", "primary-patroni.json")),
        GET(M2 + "/patroni", json_body=load_fixture("patroni-4.1", "replica-patroni.json")),
    )
    facts, _warnings = gather_facts(PatroniClient(M3), ["!all", "health", "cluster"], health_lag="16MB")
    assert (facts["name"], facts["role"], facts["lag"], facts["replayed_lsn"], facts["replay_paused"]) == \
        ("c1m3", "replica", 96, 67108864, True)
    assert facts["pending_restart"] is True
    assert facts["pending_restart_reason"] == {"max_connections": {"old_value": "50", "new_value": "60"}}
    assert facts["scheduled_restart"] == {"schedule": "2026-11-26T02:00:00+00:00", "restart_pending": True}
    assert (facts["paused"], facts["sync_standby"], facts["tags"]) == (True, True, {"nofailover": True, "dc": "b"})
    assert facts["health"]["replica"] is True and facts["health"]["primary"] is False
    assert "config" not in facts and "history" not in facts


def test_patroni_3_0_master_without_name(fake):
    fake.expect(
        GET(M1 + "/patroni", json_body=load_fixture("patroni-3.0", "primary-patroni.json")),
        GET(M1 + "/cluster", json_body=load_fixture("patroni-3.0", "cluster.json")),
        GET(M2 + "/patroni", json_body=load_fixture("patroni-3.0", "replica-patroni.json")),
        GET(M3 + "/patroni", json_body=load_fixture("patroni-3.0", "replica-patroni.json")),
    )
    facts, _warnings = gather_facts(PatroniClient(M1 + "/patroni"), ["cluster"])
    assert (facts["name"], facts["role"], facts["version"], facts["scope"]) == ("c1m1", "primary", "3.0.2", "c1")
    cluster = facts["cluster"]
    assert cluster["scope"] == "c1"
    assert [(m["name"], m["role"], m["state"], m["streaming"], m["lag"], m["reachable"]) for m in cluster["members"]] \
        == [("c1m1", "primary", "running", False, None, True), ("c1m2", "replica", "running", True, 0, True),
            ("c1m3", "replica", "running", True, None, True)]


def test_patroni_3_0_node_only_still_finds_the_name(fake):
    fake.expect(
        GET(M2 + "/patroni", json_body=load_fixture("patroni-3.0", "replica-patroni.json")),
        GET(M2 + "/cluster", json_body=load_fixture("patroni-3.0", "cluster.json")),
    )
    facts, _warnings = gather_facts(PatroniClient(M2), ["!all"])
    assert (facts["name"], facts["role"], facts["lag"], facts["replication_state"]) == ("c1m2", "replica", 0, None)
    assert "cluster" not in facts and "health" not in facts


def test_name_is_null_when_no_member_matches(fake):
    fake.expect(
        GET("http://127.0.0.1:8008/patroni", json_body=load_fixture("patroni-3.0", "replica-patroni.json")),
        GET("http://127.0.0.1:8008/cluster", json_body=load_fixture("patroni-3.0", "cluster.json")),
    )
    facts, _warnings = gather_facts(PatroniClient("http://127.0.0.1:8008"), ["!all"])
    assert facts["name"] is None and facts["lag"] is None


def test_cluster_dropped_by_this_member_is_asked_elsewhere(fake):
    cluster = load_fixture("patroni-4.1", "cluster.json")
    fake.expect(
        GET(M2 + "/patroni", json_body=load_fixture("patroni-4.1", "replica-patroni.json")),
        GET(M2 + "/cluster", raises=dropped()),
        GET(M2 + "/config", raises=dropped()),
        GET(M1 + "/cluster", raises=refused(M1 + "/cluster")),
        GET(M3 + "/cluster", json_body=cluster),
        GET(M1 + "/patroni", raises=refused(M1 + "/patroni")),
        GET(M3 + "/patroni", json_body=load_fixture("patroni-4.1", "replica-pending-restart-patroni.json")),
        GET(M1 + "/config", raises=refused(M1 + "/config")),
        GET(M3 + "/config", json_body={"ttl": 30}),
    )
    facts, _warnings = gather_facts(PatroniClient(M2), ["cluster", "config"], member_api_urls=[M1, M3 + "/patroni"])
    assert facts["cluster"]["leader"] == "c1m1"
    assert facts["config"] == {"ttl": 30}
    assert facts["lag"] == 0
    assert [(u["name"], u["api_url"], u["path"], u["kind"]) for u in facts["unreachable"]] == [
        ("c1m2", M2, "/cluster", "empty_reply"),
        (None, M1, "/cluster", "connection"),
        ("c1m1", "http://10.213.0.11:8008/patroni", "/patroni", "connection"),
        ("c1m2", M2, "/config", "empty_reply"),
        ("c1m1", M1, "/config", "connection"),
    ]
    assert facts["unreachable"][2]["reason"] == (
        "connection refused by 10.213.0.11:8008 (GET http://10.213.0.11:8008/patroni): is Patroni running and "
        "listening on 10.213.0.11:8008? Check restapi.listen and firewalls")
    assert {m["name"]: m["reachable"] for m in facts["cluster"]["members"]} == \
        {"c1m1": False, "c1m2": True, "c1m3": True}


def test_cluster_unreadable_everywhere_is_null_not_fatal(fake):
    fake.expect(GET(M2 + "/patroni", json_body=load_fixture("patroni-4.1", "replica-patroni.json")),
                GET(M2 + "/cluster", raises=dropped()))
    facts, _warnings = gather_facts(PatroniClient(M2), ["!all", "cluster"])
    assert facts["cluster"] is None
    assert facts["unreachable"][0]["reason"].startswith("no HTTP response from GET http://10.213.0.12:8008/cluster")


def test_config_502_is_empty_with_a_warning(fake):
    fake.expect(GET(M1 + "/patroni", json_body=load_fixture("patroni-4.1", "primary-patroni.json")),
                GET(M1 + "/config", 502, body="<html><p>Error code: 502</p></html>"))
    facts, warnings = gather_facts(PatroniClient(M1), ["!all", "config"])
    assert facts["config"] == {}
    assert warnings == ["GET http://10.213.0.11:8008/config answered HTTP 502: the cluster has no dynamic configuration "
                        "in the DCS (no /config key); config is {}"]


def test_health_probe_failure_is_null_and_reported(fake):
    answers = dict(PRIMARY_HEALTH)
    calls = [c for c in health(M1, answers) if not c.url.endswith("/readiness")]
    fake.expect(GET(M1 + "/patroni", json_body=load_fixture("patroni-4.1", "primary-patroni.json")), *calls,
                GET(M1 + "/readiness", raises=requests.exceptions.ReadTimeout("read timed out")))
    facts, _warnings = gather_facts(PatroniClient(M1, timeout=2), ["!all", "health"])
    assert facts["health"]["readiness"] is None and facts["health"]["primary"] is True
    assert facts["unreachable"] == [{
        "name": "c1m1", "api_url": M1, "path": "/readiness", "kind": "timeout",
        "reason": "no answer within 2 s from GET http://10.213.0.11:8008/readiness: raise timeout or check that "
                  "Patroni on 10.213.0.11:8008 is not stuck (its REST API has a small thread pool, and /cluster "
                  "reads the DCS live)"}]


def test_unreachable_node_is_fatal(fake):
    fake.expect(GET(M1 + "/patroni", raises=refused(M1 + "/patroni")), *health(M1, {}))
    with pytest.raises(PatroniConnectionError) as info:
        gather_facts(PatroniClient(M1), ["!all", "health"])
    assert str(info.value) == ("connection refused by 10.213.0.11:8008 (GET http://10.213.0.11:8008/patroni): is "
                               "Patroni running and listening on 10.213.0.11:8008? Check restapi.listen and firewalls")


def test_tls_error_on_another_member_is_fatal(fake):
    import ssl
    from urllib3.exceptions import MaxRetryError
    from urllib3.exceptions import SSLError as Urllib3SSLError
    verify = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                                             "certificate has expired (_ssl.c:1000)")
    verify.verify_code, verify.verify_message = 10, "certificate has expired"
    error = requests.exceptions.SSLError(MaxRetryError(None, "/patroni", Urllib3SSLError(verify)))
    cluster = load_fixture("patroni-4.1", "cluster.json")
    fake.expect(GET(M1 + "/patroni", json_body=load_fixture("patroni-4.1", "primary-patroni.json")),
                GET(M1 + "/cluster", json_body=cluster),
                GET(M2 + "/patroni", json_body=load_fixture("patroni-4.1", "replica-patroni.json")),
                GET(M3 + "/patroni", raises=error))
    with pytest.raises(PatroniTLSError) as info:
        gather_facts(PatroniClient(M1, validate_certs=False), ["!all", "cluster"])
    assert str(info.value).startswith("TLS certificate verification failed for http://10.213.0.13:8008/patroni: the "
                                      "server certificate has expired.")


def test_bad_health_lag_is_refused_before_any_request(fake):
    with pytest.raises(PatroniError) as info:
        gather_facts(PatroniClient(M1), health_lag="16mb")
    assert str(info.value).startswith("health_lag='16mb' is not a size Patroni understands")
    assert fake.log == []


def test_member_roles_and_unknown_lag():
    assert build_member({"name": "a", "role": "quorum_standby", "state": "streaming", "lag": "unknown",
                         "lsn": "unknown"}) == {
        "name": "a", "role": "replica", "sync": False, "quorum": True, "state": "streaming", "streaming": True,
        "host": None, "port": None, "api_url": None, "timeline": None, "lag": None, "receive_lag": None,
        "replay_lag": None, "lsn": None, "pending_restart": False, "tags": {}}
    standby = build_member({"name": "b", "role": "standby_leader", "state": "running"})
    assert (standby["role"], standby["streaming"]) == ("standby_leader", False)
    stopped = build_member({"name": "c", "role": "replica", "state": "stopped", "lag": 5})
    assert (stopped["role"], stopped["streaming"], stopped["lag"]) == ("replica", False, 5)


def test_history_entries_of_3_to_5_elements():
    assert build_history([[1, 100, "no recovery target specified"],
                          [2, 200, "no recovery target specified", "2026-11-25T10:20:01+00:00"],
                          [3, 300, "x", "2026-11-25T11:00:00+00:00", "c1m2"], "garbage", [4]]) == [
        {"timeline": 1, "lsn": 100, "reason": "no recovery target specified", "timestamp": None, "new_leader": None},
        {"timeline": 2, "lsn": 200, "reason": "no recovery target specified",
         "timestamp": "2026-11-25T10:20:01+00:00", "new_leader": None},
        {"timeline": 3, "lsn": 300, "reason": "x", "timestamp": "2026-11-25T11:00:00+00:00", "new_leader": "c1m2"},
    ]


def test_fixture_files_are_not_modified_by_the_facts(fake):
    cluster = load_fixture("patroni-4.1", "cluster.json")
    pristine = copy.deepcopy(cluster)
    fake.expect(GET(M1 + "/patroni", json_body=load_fixture("patroni-4.1", "primary-patroni.json")),
                GET(M1 + "/cluster", json_body=cluster),
                GET(M2 + "/patroni", json_body={}), GET(M3 + "/patroni", json_body={}))
    gather_facts(PatroniClient(M1), ["!all", "cluster"])
    assert cluster == pristine

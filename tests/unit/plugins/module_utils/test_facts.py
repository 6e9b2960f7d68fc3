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
from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import fake  # noqa: F401 pylint: disable=unused-import
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
        takes_lag = path in ("/replica", "/read-only", "/sync", "/async", "/quorum")
        query = f"?lag={lag}" if lag is not None and takes_lag else ""
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


def _lag(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def test_full_facts_of_a_4_1_primary(fake):
    # Expected values come from the fixture files, which may be hand-written or recorded from the lab.
    primary = load_fixture("patroni-4.1", "primary-patroni.json")
    raw_cluster = load_fixture("patroni-4.1", "cluster.json")
    history = load_fixture("patroni-4.1", "history.json")
    fake.expect(
        GET(M1 + "/patroni", json_body=primary),
        *health(M1, PRIMARY_HEALTH),
        GET(M1 + "/cluster", json_body=raw_cluster),
        GET(M1 + "/config", json_body=load_fixture("patroni-4.1", "config.json")),
        GET(M1 + "/history", json_body=history),
        GET(M2 + "/patroni", json_body=load_fixture("patroni-4.1", "replica-patroni.json")),
        GET(M3 + "/patroni", json_body=load_fixture("patroni-4.1", "replica-pending-restart-patroni.json")),
    )
    facts, warnings = gather_facts(PatroniClient(M1))
    assert warnings == []
    top = {k: v for k, v in facts.items() if k not in ("health", "cluster", "config", "history")}
    assert top == {
        "name": "c1m1", "scope": "c1", "role": "primary", "state": "running", "replication_state": None,
        "timeline": primary["timeline"], "server_version": primary["server_version"],
        "postmaster_start_time": primary["postmaster_start_time"], "lsn": primary["xlog"]["location"],
        "received_lsn": None, "replayed_lsn": None, "replayed_timestamp": None, "replay_paused": None, "lag": None,
        "pending_restart": bool(primary.get("pending_restart")),
        "pending_restart_reason": primary.get("pending_restart_reason"), "scheduled_restart": None,
        "paused": bool(primary.get("pause")), "cluster_unlocked": False, "tags": primary.get("tags", {}),
        "version": "4.1.5", "sync_standby": False, "quorum_standby": False,
        "dcs_last_seen": primary["dcs_last_seen"], "api_url": M1,
        "gather_subset": ["node", "health", "cluster", "config", "history"], "unreachable": [],
    }
    assert facts["health"] == {"primary": True, "replica": False, "read_write": True, "read_only": True,
                               "sync": False, "async": False, "quorum": False, "health": True, "liveness": True,
                               "readiness": True}
    cluster = facts["cluster"]
    assert (cluster["scope"], cluster["leader"], cluster["paused"], cluster["scheduled_switchover"]) == \
        ("c1", "c1m1", bool(raw_cluster.get("pause")), None)
    raw = {m["name"]: m for m in raw_cluster["members"]}
    assert [(m["name"], m["role"], m["sync"], m["streaming"], m["lag"]) for m in cluster["members"]] == [
        ("c1m1", "primary", False, False, None), ("c1m2", "replica", False, True, _lag(raw["c1m2"]["lag"])),
        ("c1m3", "replica", True, True, _lag(raw["c1m3"]["lag"]))]
    assert cluster["members"][2] == {
        "name": "c1m3", "role": "replica", "sync": True, "quorum": False, "state": "streaming", "streaming": True,
        "host": "10.213.0.13", "port": 5432, "api_url": "http://10.213.0.13:8008/patroni",
        "timeline": raw["c1m3"]["timeline"], "lag": raw["c1m3"]["lag"], "receive_lag": raw["c1m3"]["receive_lag"],
        "replay_lag": raw["c1m3"]["replay_lag"], "lsn": raw["c1m3"]["lsn"],
        "pending_restart": bool(raw["c1m3"].get("pending_restart")), "tags": raw["c1m3"].get("tags", {}),
        "reachable": True, "version": "4.1.5",
    }
    assert facts["config"]["ttl"] == 30 and facts["config"]["loop_wait"] == 10
    assert facts["history"] == [
        {"timeline": e[0], "lsn": e[1], "reason": e[2], "timestamp": e[3], "new_leader": e[4]} for e in history]
    assert facts["history"][-1]["new_leader"] == "c1m1"


def test_replica_facts_lag_and_health_lag_in_bytes(fake):
    replica = load_fixture("patroni-4.1", "replica-pending-restart-patroni.json")
    raw_cluster = load_fixture("patroni-4.1", "cluster.json")
    fake.expect(
        GET(M3 + "/patroni", json_body=replica),
        *health(M3, REPLICA_HEALTH, lag=16777216),
        GET(M3 + "/cluster", json_body=raw_cluster),
        GET(M1 + "/patroni", json_body=load_fixture("patroni-4.1", "primary-patroni.json")),
        GET(M2 + "/patroni", json_body=load_fixture("patroni-4.1", "replica-patroni.json")),
    )
    facts, _warnings = gather_facts(PatroniClient(M3), ["!all", "health", "cluster"], health_lag="16MB")
    c1m3 = next(m for m in raw_cluster["members"] if m["name"] == "c1m3")
    xlog = replica["xlog"]
    assert (facts["name"], facts["role"], facts["replication_state"]) == ("c1m3", "replica", "streaming")
    assert (facts["lag"], facts["received_lsn"], facts["replayed_lsn"], facts["replayed_timestamp"]) == \
        (_lag(c1m3["lag"]), xlog["received_location"], xlog["replayed_location"], xlog["replayed_timestamp"])
    assert facts["replay_paused"] is xlog["paused"] and facts["lsn"] is None
    # the fixture is the synchronous standby of a paused cluster with a parameter waiting for a restart
    assert (facts["pending_restart"], facts["paused"], facts["sync_standby"]) == (True, True, True)
    assert facts["pending_restart_reason"] == replica["pending_restart_reason"]
    assert facts["scheduled_restart"] == replica.get("scheduled_restart")
    assert facts["tags"] == replica.get("tags", {})
    assert facts["health"]["replica"] is True and facts["health"]["primary"] is False
    assert "config" not in facts and "history" not in facts


def test_patroni_3_0_master_without_name(fake):
    raw_cluster = load_fixture("patroni-3.0", "cluster.json")
    fake.expect(
        GET(M1 + "/patroni", json_body=load_fixture("patroni-3.0", "primary-patroni.json")),
        GET(M1 + "/cluster", json_body=raw_cluster),
        GET(M2 + "/patroni", json_body=load_fixture("patroni-3.0", "replica-patroni.json")),
        GET(M3 + "/patroni", json_body=load_fixture("patroni-3.0", "replica-patroni.json")),
    )
    facts, _warnings = gather_facts(PatroniClient(M1 + "/patroni"), ["cluster"])
    assert (facts["name"], facts["role"], facts["version"], facts["scope"]) == ("c1m1", "primary", "3.0.2", "c1")
    cluster = facts["cluster"]
    assert "scope" not in raw_cluster and cluster["scope"] == "c1"
    raw = {m["name"]: m for m in raw_cluster["members"]}
    assert [(m["name"], m["role"], m["state"], m["streaming"], m["lag"], m["reachable"]) for m in cluster["members"]] \
        == [("c1m1", "primary", "running", False, None, True),
            ("c1m2", "replica", "running", True, _lag(raw["c1m2"]["lag"]), True),
            ("c1m3", "replica", "running", True, _lag(raw["c1m3"]["lag"]), True)]


def test_patroni_3_0_node_only_still_finds_the_name(fake):
    fake.expect(
        GET(M2 + "/patroni", json_body=load_fixture("patroni-3.0", "replica-patroni.json")),
        GET(M2 + "/cluster", json_body=load_fixture("patroni-3.0", "cluster.json")),
    )
    facts, _warnings = gather_facts(PatroniClient(M2), ["!all"])
    c1m2 = next(m for m in load_fixture("patroni-3.0", "cluster.json")["members"] if m["name"] == "c1m2")
    assert (facts["name"], facts["role"], facts["lag"], facts["replication_state"]) == \
        ("c1m2", "replica", _lag(c1m2["lag"]), None)
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
    assert facts["lag"] == _lag(cluster["members"][1]["lag"])
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

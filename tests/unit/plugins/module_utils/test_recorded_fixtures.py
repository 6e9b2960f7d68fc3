# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""patroni_facts' code on bodies recorded from real clusters: Patroni 4.1.5 (PyPI) and 3.0.2 (Debian 12).

tests/unit/fixtures/recorded/ holds what tests/unit/fixtures/record_from_lab.py saved from the lab: c1m1 leads,
c1m2 replicates, c1m3 is the synchronous standby; cluster.json and replica-pending-restart-patroni.json were taken
in pause with max_connections changed (pending restart everywhere). The same member is served by a real local HTTP
server and gathered the way the module does, so both versions' quirks go through the real client.
"""
from __future__ import annotations

import json
import os

import pytest

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import PatroniClient
from ansible_collections.pgha.patroni.plugins.module_utils._facts import gather_facts
from ansible_collections.pgha.patroni.tests.unit.helpers.servers import PatroniLikeServer, Route

HERE = os.path.dirname(__file__)
RECORDED = os.path.join(HERE, "..", "..", "fixtures", "recorded")
VERSIONS = ["patroni-4.1.5", "patroni-3.0.2"]


def load(version: str, name: str):
    with open(os.path.join(RECORDED, version, name)) as handle:
        return json.load(handle)


def serve_member(version: str, status_file: str, healthy: dict[str, int]) -> PatroniLikeServer:
    status = load(version, status_file)
    routes = {"/patroni": Route(json_body=status),
              "/config": Route(json_body=load(version, "config.json")),
              "/history": Route(json_body=load(version, "history.json"))}
    for path in ("/primary", "/replica", "/read-write", "/read-only", "/sync", "/async", "/quorum", "/health",
                 "/liveness", "/readiness"):
        routes[path] = Route(status=healthy.get(path, 503), json_body=status)
    server = PatroniLikeServer(routes)
    # every member's api_url points back at this server: the recorded lab addresses must never be contacted
    cluster = load(version, "cluster.json")
    for member in cluster["members"]:
        member["api_url"] = server.url() + "/patroni"
    server.routes["/cluster"] = Route(json_body=cluster)
    return server


def facts_as_recorded(version: str, patroni_file: str, statuses: dict, subset: list) -> dict:
    """patroni_facts' view of a member served from its recorded answers."""
    server = serve_member(version, patroni_file, statuses)
    try:
        return gather_facts(PatroniClient(server.url(), timeout=2), subset)[0]
    finally:
        server.stop()


@pytest.mark.parametrize("version", VERSIONS)
def test_primary_as_recorded(version):
    healthy = {"/primary": 200, "/read-write": 200, "/read-only": 200, "/health": 200, "/liveness": 200,
               "/readiness": 200}
    facts = facts_as_recorded(version, "primary-patroni.json", healthy, ["all"])
    assert facts["role"] == "primary"  # 3.0.2 says "master"
    assert facts["scope"] == "c1" and facts["state"] == "running"
    assert facts["version"] == version.split("-")[1]
    assert isinstance(facts["lsn"], int) and facts["lsn"] > 0
    cluster = facts["cluster"]
    assert cluster["leader"] == "c1m1" and cluster["paused"] is True
    members = {m["name"]: m for m in cluster["members"]}
    assert sorted(members) == ["c1m1", "c1m2", "c1m3"]
    assert members["c1m1"]["role"] == "primary" and members["c1m1"]["streaming"] is False
    for name in ("c1m2", "c1m3"):
        # 4.1 reports replicas as "streaming", 3.0.2 as "running": both are healthy streaming replicas
        assert members[name]["role"] == "replica" and members[name]["streaming"] is True
        assert members[name]["lag"] == 0 and members[name]["pending_restart"] is True
    assert members["c1m3"]["sync"] is True and members["c1m2"]["sync"] is False
    assert facts["health"]["primary"] and facts["health"]["read_write"] and not facts["health"]["replica"]
    assert facts["config"]["ttl"] == 30
    assert facts["history"][0]["timeline"] == 1 and facts["history"][0]["new_leader"] in ("c1m1", "c1m2")


@pytest.mark.parametrize("version", VERSIONS)
def test_replica_pending_restart_as_recorded(version):
    healthy = {"/replica": 200, "/read-only": 200, "/sync": 200, "/health": 200, "/liveness": 200,
               "/readiness": 200}
    facts = facts_as_recorded(version, "replica-pending-restart-patroni.json", healthy, ["node", "health"])
    assert facts["role"] == "replica" and facts["sync_standby"] is True and facts["paused"] is True
    assert facts["pending_restart"] is True
    if version == "patroni-4.1.5":
        assert facts["name"] == "c1m3" and facts["replication_state"] == "streaming"
        assert facts["pending_restart_reason"] == {"max_connections": {"old_value": "50", "new_value": "60"}}
    else:
        # 3.0.2 names neither the member in /patroni nor the reason of a pending restart
        assert facts["pending_restart_reason"] is None and facts["replication_state"] is None
    assert facts["received_lsn"] >= facts["replayed_lsn"] > 0
    assert facts["health"]["sync"] and facts["health"]["replica"] and not facts["health"]["primary"]

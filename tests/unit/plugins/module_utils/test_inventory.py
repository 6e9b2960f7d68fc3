# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy

import pytest

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import PatroniError, PatroniTLSError
from ansible_collections.pgha.patroni.plugins.module_utils._inventory import (
    ClusterUnreachable,
    cluster_hosts,
    find_primary,
    member_roles,
    parse_clusters,
    read_cluster,
    read_clusters,
    seed_list,
)
from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import fake  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.fake_http import GET
from ansible_collections.pgha.patroni.tests.unit.helpers.module import load_fixture
from ansible_collections.pgha.patroni.tests.unit.plugins.module_utils.test_facts import dropped, refused

M1, M2, M3 = "http://10.213.0.11:8008", "http://10.213.0.12:8008", "http://10.213.0.13:8008"


def doc41() -> dict:
    return copy.deepcopy(load_fixture("patroni-4.1", "cluster.json"))


def doc30() -> dict:
    return copy.deepcopy(load_fixture("recorded/patroni-3.0.2", "cluster.json"))


# ----------------------------------------------------------------------------------------------------------------
# Options


def test_seed_list_flattens_and_splits_commas():
    assert seed_list([M1, [f"{M2}, {M3}"]], "t") == [M1, M2, M3]
    assert seed_list(M1, "t") == [M1]


@pytest.mark.parametrize("value, text", [
    ([], "no seed URL given"),
    ([""], "no seed URL given"),
    ([8008], "8008 is not a URL"),
])
def test_seed_list_rejects(value, text):
    with pytest.raises(PatroniError) as err:
        seed_list(value, "clusters[0].urls")
    assert text in err.value.msg and err.value.msg.startswith("clusters[0].urls")


def test_parse_clusters_accepts_names_and_bare_strings():
    assert parse_clusters([{"name": "a", "urls": [M1, M2]}, M3]) == [
        {"name": "a", "urls": [M1, M2]}, {"name": None, "urls": [M3]}]


@pytest.mark.parametrize("value, text", [
    (None, "clusters must be a non-empty list"),
    ([], "clusters must be a non-empty list"),
    ([5], "clusters[0] must be a mapping"),
    ([{"urls": [M1], "seeds": [M2]}], "clusters[0] has unknown keys seeds"),
    ([{"name": "", "urls": [M1]}], "clusters[0].name must be a non-empty string"),
    ([{"name": "a", "urls": [M1]}, {"name": "a", "urls": [M2]}], "clusters[1].name 'a' is used twice"),
    ([{"name": "a"}], "clusters[0].urls: no seed URL given"),
    ([{"urls": ["10.0.0.1:8008"]}], "has no scheme"),
    ([{"urls": ["http://u:secret@10.0.0.1:8008?x=1"]}], "must not contain a query string"),
])
def test_parse_clusters_rejects(value, text):
    with pytest.raises(PatroniError) as err:
        parse_clusters(value)
    assert text in err.value.msg
    assert "secret" not in err.value.msg


# ----------------------------------------------------------------------------------------------------------------
# Reading /cluster


def test_read_cluster_first_seed(fake):
    fake.expect(GET(M1 + "/cluster", json_body=doc41()))
    read = read_cluster([M1, M2], {})
    assert read["source"] == M1 and read["scope"] == "c1" and read["errors"] == []


def test_read_cluster_skips_down_empty_and_dropping_seeds(fake):
    fake.expect(GET(M1 + "/cluster", raises=refused(M1)),
                GET(M2 + "/cluster", json_body={"members": []}),
                GET(M3 + "/cluster", raises=dropped()),
                GET("http://10.213.0.14:8008/cluster", json_body=doc41()))
    read = read_cluster([M1, M2, M3, "http://10.213.0.14:8008"], {})
    assert read["source"] == "http://10.213.0.14:8008"
    reasons = [r for _u, r in read["errors"]]
    assert "connection refused" in reasons[0]
    assert "empty members list" in reasons[1]
    assert "closed without a reply" in reasons[2]


def test_read_cluster_asks_patroni_for_the_scope_before_3_2(fake):
    status = load_fixture("recorded/patroni-3.0.2", "primary-patroni.json")
    fake.expect(GET(M1 + "/cluster", json_body=doc30()), GET(M1 + "/patroni", json_body=status))
    read = read_cluster([M1], {})
    assert read["scope"] == status["patroni"]["scope"]


def test_read_cluster_names_every_seed_and_no_password(fake):
    fake.expect(GET(M1 + "/cluster", raises=refused(M1)),
                GET(M2 + "/cluster", json_body={"no": "members"}),
                GET(M3 + "/cluster", status=503, body="<html>busy</html>"))
    with pytest.raises(ClusterUnreachable) as err:
        read_cluster(["http://admin:s3cret@10.213.0.11:8008", M2, M3], {}, "orders")
    msg = err.value.msg
    assert msg.startswith("no seed of cluster orders answered GET /cluster (")
    assert "connection refused by 10.213.0.11:8008" in msg
    assert f"GET {M2}/cluster answered JSON without a members list" in msg
    assert f"GET {M3}/cluster answered HTTP 503" in msg
    assert "Check that Patroni runs on at least one of these members" in msg
    assert "s3cret" not in msg and "admin" not in msg
    assert len(err.value.errors) == 3 and err.value.errors[0][0] == "http://10.213.0.11:8008"


def test_read_cluster_stops_on_wrong_options(tmp_path):
    with pytest.raises(PatroniTLSError) as err:
        read_cluster([M1, M2], {"ca_path": str(tmp_path / "missing.pem")})
    assert "does not exist" in err.value.msg


def test_read_cluster_tls_error_tries_next_seed(fake):
    import ssl

    import requests
    bad = ssl.SSLCertVerificationError(1, "certificate verify failed: unable to get local issuer certificate")
    bad.verify_code, bad.verify_message = 20, "unable to get local issuer certificate"
    fake.expect(GET("https://10.213.0.11:8008/cluster", raises=requests.exceptions.SSLError(bad)),
                GET("https://10.213.0.12:8008/cluster", json_body=doc41()))
    read = read_cluster(["https://10.213.0.11:8008", "https://10.213.0.12:8008"], {})
    assert "unknown CA" in read["errors"][0][1]


def test_read_clusters_keeps_order_and_returns_failures(fake):
    other = doc41()
    other["scope"] = "c2"
    fake.expect(GET(M1 + "/cluster", json_body=doc41()),
                GET(M2 + "/cluster", raises=refused(M2)),
                GET(M3 + "/cluster", json_body=other))
    reads = read_clusters([{"name": "a", "urls": [M1]}, {"name": "b", "urls": [M2]}, {"name": "c", "urls": [M3]}],
                          {})
    assert reads[0]["scope"] == "c1" and reads[2]["scope"] == "c2"
    assert isinstance(reads[1], ClusterUnreachable) and "cluster b" in reads[1].msg


def test_read_clusters_single_and_none(fake):
    fake.expect(GET(M1 + "/cluster", json_body=doc41()))
    assert read_clusters([{"name": None, "urls": [M1]}], {})[0]["source"] == M1
    assert not read_clusters([], {})


# ----------------------------------------------------------------------------------------------------------------
# Hosts and roles


@pytest.mark.parametrize("role, groups", [
    ("leader", ["primary"]), ("master", ["primary"]), ("standby_leader", ["standby_leader"]),
    ("replica", ["replica"]), ("sync_standby", ["replica", "sync_standby"]),
    ("quorum_standby", ["replica", "quorum_standby"]),
])
def test_member_roles(role, groups):
    assert member_roles({"role": role}) == groups


def test_cluster_hosts_variables():
    read = {"doc": doc41(), "source": M2, "scope": "c1", "errors": []}
    hosts = {h["name"]: h for h in cluster_hosts(read, "orders")}
    assert list(hosts) == ["c1m1", "c1m2", "c1m3"]
    m1, m3 = hosts["c1m1"]["vars"], hosts["c1m3"]
    assert m1 == {
        "patroni_name": "c1m1", "patroni_cluster": "orders", "patroni_scope": "c1", "patroni_role": "primary",
        "patroni_dcs_role": "leader", "patroni_sync_standby": False, "patroni_quorum_standby": False,
        "patroni_state": "running", "patroni_streaming": False, "patroni_api_url": M1,
        "patroni_host": "10.213.0.11", "patroni_port": 5432, "patroni_timeline": 2, "patroni_lag": None,
        "patroni_receive_lag": None, "patroni_replay_lag": None, "patroni_pending_restart": False,
        "patroni_tags": {}, "patroni_leader": "c1m1", "patroni_paused": False, "patroni_seed": M2,
        "ansible_host": "10.213.0.11",
    }
    assert m3["roles"] == ["replica", "sync_standby"]
    assert m3["vars"]["patroni_lag"] == 96 and m3["vars"]["patroni_replay_lag"] == 96
    assert m3["vars"]["patroni_tags"] == {"nofailover": True, "dc": "b"}
    assert m3["vars"]["patroni_pending_restart"] is True and m3["vars"]["patroni_streaming"] is True


def test_cluster_hosts_ansible_host_sources_and_unknown_lag():
    doc = doc41()
    doc["members"][1].update(api_url="http://c1m2.example:8008/patroni", lag="unknown")
    doc["members"][2]["host"] = None
    doc["pause"] = True
    read = {"doc": doc, "source": M1, "scope": None, "errors": []}
    by_api = {h["name"]: h["vars"] for h in cluster_hosts(read, None, "api_url")}
    assert by_api["c1m2"]["ansible_host"] == "c1m2.example"
    assert by_api["c1m2"]["patroni_lag"] is None
    assert by_api["c1m1"]["patroni_paused"] is True and by_api["c1m1"]["patroni_cluster"] is None
    by_host = {h["name"]: h["vars"] for h in cluster_hosts(read, "x", "host")}
    assert "ansible_host" not in by_host["c1m3"]
    assert all("ansible_host" not in h["vars"] for h in cluster_hosts(read, "x", "none"))


def test_cluster_hosts_patroni_3_0():
    read = {"doc": doc30(), "source": M1, "scope": "c1", "errors": []}
    hosts = {h["name"]: h for h in cluster_hosts(read, None)}
    assert hosts["c1m2"]["vars"]["patroni_state"] == "running"
    assert hosts["c1m2"]["vars"]["patroni_streaming"] is True
    assert hosts["c1m3"]["roles"] == ["replica", "sync_standby"]
    assert hosts["c1m1"]["vars"]["patroni_cluster"] == "c1"


# ----------------------------------------------------------------------------------------------------------------
# The primary


def test_find_primary():
    read = {"doc": doc41(), "source": M2, "scope": "c1", "errors": []}
    assert find_primary(read) == {"name": "c1m1", "host": "10.213.0.11", "port": 5432, "api_url": M1,
                                  "timeline": 2, "scope": "c1"}


def _no_leader(doc: dict) -> dict:
    for member in doc["members"]:
        member["role"] = "replica"
    return doc


def test_find_primary_without_leader_is_retryable():
    read = {"doc": _no_leader(doc41()), "source": M2, "scope": "c1", "errors": []}
    with pytest.raises(PatroniError) as err:
        find_primary(read)
    assert err.value.msg.startswith(f"GET /cluster from {M2}: no member of c1 holds the leader lock (c1m1 (replica")
    assert "wait=true" in err.value.msg and err.value.retryable


def test_find_primary_paused_without_leader():
    doc = _no_leader(doc41())
    doc["pause"] = True
    with pytest.raises(PatroniError) as err:
        find_primary({"doc": doc, "source": M2, "scope": "c1", "errors": []})
    assert "c1 is paused (maintenance mode) and no member holds the leader lock" in err.value.msg
    assert not err.value.retryable


def test_find_primary_standby_cluster():
    doc = doc41()
    doc["members"][0]["role"] = "standby_leader"
    with pytest.raises(PatroniError) as err:
        find_primary({"doc": doc, "source": M2, "scope": None, "errors": []})
    assert "the cluster is a standby cluster led by c1m1 (standby_leader); it has no primary" in err.value.msg


def test_find_primary_two_leaders():
    doc = doc41()
    doc["members"][1]["role"] = "leader"
    with pytest.raises(PatroniError) as err:
        find_primary({"doc": doc, "source": M2, "scope": "c1", "errors": []})
    assert "2 members of c1 claim the leader role (c1m1, c1m2)" in err.value.msg

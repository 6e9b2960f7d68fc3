# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy
import typing as t

import pytest
import yaml
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader

from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import fake  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.fake_http import GET
from ansible_collections.pgha.patroni.tests.unit.helpers.module import load_fixture
from ansible_collections.pgha.patroni.tests.unit.plugins.module_utils.test_facts import refused

M1, M2, M3 = "http://10.213.0.11:8008", "http://10.213.0.12:8008", "http://10.213.0.13:8008"
N1, N2 = "http://10.213.0.21:8008", "http://10.213.0.22:8008"


def c1() -> dict:
    return copy.deepcopy(load_fixture("patroni-4.1", "cluster.json"))


def c2() -> dict:
    """A second cluster: c2m1 leads, c2m2 replicates."""
    doc = c1()
    doc["scope"] = "c2"
    doc["members"] = doc["members"][:2]
    for i, member in enumerate(doc["members"], 1):
        member.update(name=f"c2m{i}", host=f"10.213.0.2{i}", api_url=f"http://10.213.0.2{i}:8008/patroni")
    return doc


class Warnings:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def warning(self, msg: str, *args: t.Any, **kwargs: t.Any) -> None:
        self.messages.append(msg)

    def __getattr__(self, name: str) -> t.Any:
        return lambda *a, **k: None


class Loaded:
    def __init__(self, inventory: InventoryData, plugin: t.Any, warnings: list[str]) -> None:
        self.inventory, self.plugin, self.warnings = inventory, plugin, warnings

    def group(self, name: str) -> list[str]:
        return sorted(h.name for h in self.inventory.groups[name].get_hosts())

    def hostvars(self, name: str) -> dict[str, t.Any]:
        return self.inventory.get_host(name).get_vars()


def write(tmp_path: t.Any, config: dict, name: str = "fleet.patroni.yml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(dict({"plugin": "pgha.patroni.patroni"}, **config)))
    return str(path)


def load(path: str, cache: bool = True) -> Loaded:
    plugin = inventory_loader.get("pgha.patroni.patroni")
    warnings = Warnings()
    plugin.display = warnings
    inventory = InventoryData()
    plugin.parse(inventory, DataLoader(), path, cache=cache)
    # As ansible's inventory manager does: only a plugin with the cache on has a cache to write.
    if getattr(plugin, "_cache", None) is not None:
        plugin.update_cache_if_changed()
    return Loaded(inventory, plugin, warnings.messages)


def test_verify_file(tmp_path):
    plugin = inventory_loader.get("pgha.patroni.patroni")
    for name, ok in (("a.patroni.yml", True), ("a.patroni.yaml", True), ("patroni.yml", False),
                     ("a.yml", False)):
        (tmp_path / name).write_text("plugin: pgha.patroni.patroni\n")
        assert plugin.verify_file(str(tmp_path / name)) is ok, name


def test_two_clusters_groups_and_vars(fake, tmp_path):
    fake.expect(GET(M1 + "/cluster", json_body=c1()), GET(N1 + "/cluster", json_body=c2()))
    got = load(write(tmp_path, {"clusters": [{"urls": [M1, M2]}, {"name": "billing", "urls": [N1]}]}))
    assert got.warnings == []
    assert got.group("c1") == ["c1m1", "c1m2", "c1m3"]
    assert got.group("billing") == ["c2m1", "c2m2"]
    assert got.group("primary") == ["c1m1", "c2m1"]
    assert got.group("replica") == ["c1m2", "c1m3", "c2m2"]
    assert got.group("sync_standby") == ["c1m3"]
    assert got.group("c1_primary") == ["c1m1"] and got.group("billing_replica") == ["c2m2"]
    assert got.group("c1_sync_standby") == ["c1m3"]
    assert "standby_leader" not in got.inventory.groups
    m3 = got.hostvars("c1m3")
    assert m3["ansible_host"] == "10.213.0.13" and m3["patroni_api_url"] == M3
    assert m3["patroni_lag"] == 96 and m3["patroni_tags"] == {"nofailover": True, "dc": "b"}
    assert m3["patroni_cluster"] == "c1" and m3["patroni_seed"] == M1
    assert got.hostvars("c2m1")["patroni_cluster"] == "billing"
    assert got.hostvars("c2m1")["patroni_scope"] == "c2"


def test_prefix_hostname_format_and_group_name_cleanup(fake, tmp_path):
    fake.expect(GET(M1 + "/cluster", json_body=c1()))
    got = load(write(tmp_path, {"clusters": [{"name": "pg-main", "urls": M1}], "group_prefix": "pg_",
                                "hostname_format": "{cluster}.{name}", "ansible_host_from": "none"}))
    assert got.group("pg_pg_main") == ["pg-main.c1m1", "pg-main.c1m2", "pg-main.c1m3"]
    assert got.group("pg_primary") == ["pg-main.c1m1"]
    assert got.group("pg_pg_main_replica") == ["pg-main.c1m2", "pg-main.c1m3"]
    assert "ansible_host" not in got.hostvars("pg-main.c1m1")


def test_bad_hostname_format(tmp_path):
    with pytest.raises(AnsibleParserError) as err:
        load(write(tmp_path, {"clusters": [{"urls": [M1]}], "hostname_format": "{member}"}))
    assert "hostname_format '{member}' is not valid" in str(err.value)


def test_bad_clusters_option(tmp_path):
    with pytest.raises(AnsibleParserError) as err:
        load(write(tmp_path, {"clusters": [{"urls": ["10.0.0.1:8008"]}]}))
    assert "fleet.patroni.yml: clusters[0].urls '10.0.0.1:8008' has no scheme" in str(err.value)


def test_same_member_name_in_two_clusters_warns(fake, tmp_path):
    other = c1()
    other["scope"] = "c9"
    fake.expect(GET(M1 + "/cluster", json_body=c1()), GET(N1 + "/cluster", json_body=other))
    got = load(write(tmp_path, {"clusters": [{"urls": [M1]}, {"urls": [N1]}]}))
    assert got.group("c9") == []
    assert len(got.warnings) == 3
    assert "host c1m1 of cluster c9 is already a member of cluster c1; it is left out" in got.warnings[0]


def test_unreachable_cluster_warns_and_others_load(fake, tmp_path):
    fake.expect(GET(M1 + "/cluster", raises=refused(M1)), GET(M2 + "/cluster", raises=refused(M2)),
                GET(N1 + "/cluster", json_body=c2()))
    got = load(write(tmp_path, {"clusters": [{"name": "orders", "urls": ["http://u:pw@10.213.0.11:8008", M2]},
                                             {"urls": [N1]}]}))
    assert got.group("c2") == ["c2m1", "c2m2"]
    assert "orders" not in got.inventory.groups
    assert len(got.warnings) == 1
    warning = got.warnings[0]
    assert "inventory " in warning and "fleet.patroni.yml: cluster orders: no seed of cluster orders" in warning
    assert "connection refused by 10.213.0.11:8008" in warning and "connection refused by 10.213.0.12:8008" in warning
    assert "set strict: true to fail instead" in warning
    assert ":pw@" not in warning


def test_seed_down_is_reported_not_fatal(fake, tmp_path):
    fake.expect(GET(M1 + "/cluster", raises=refused(M1)), GET(M2 + "/cluster", json_body=c1()))
    got = load(write(tmp_path, {"clusters": [{"name": "orders", "urls": [M1, M2]}]}))
    assert got.group("orders") == ["c1m1", "c1m2", "c1m3"]
    assert got.hostvars("c1m1")["patroni_seed"] == M2
    assert len(got.warnings) == 1
    assert f"cluster orders: seed {M1} did not answer, so {M2} was asked instead: connection refused by " \
        "10.213.0.11:8008" in got.warnings[0]


def test_unreachable_cluster_strict_fails(fake, tmp_path):
    fake.expect(GET(M1 + "/cluster", raises=refused(M1)), GET(N1 + "/cluster", json_body=c2()))
    with pytest.raises(AnsibleParserError) as err:
        load(write(tmp_path, {"clusters": [{"urls": [M1]}, {"urls": [N1]}], "strict": True}))
    assert f"cluster {M1}: no seed of the cluster answered GET /cluster" in str(err.value)


def test_wrong_tls_option_fails_even_without_strict(tmp_path):
    with pytest.raises(AnsibleParserError) as err:
        load(write(tmp_path, {"clusters": [{"urls": [M1]}], "ca_path": str(tmp_path / "nope.pem")}))
    assert "ca_path" in str(err.value) and "does not exist" in str(err.value)


def test_connection_options_reach_the_client(fake, tmp_path):
    def check(kwargs: dict) -> None:
        assert kwargs["auth"] == ("admin", "secret")
        assert kwargs["verify"] is False and kwargs["timeout"] == 2.5

    fake.expect(GET("https://10.213.0.11:8008/cluster", json_body=c1(), check=check))
    got = load(write(tmp_path, {"clusters": [{"urls": ["https://10.213.0.11:8008"]}], "api_username": "admin",
                                "api_password": "secret", "validate_certs": False, "timeout": 2.5}))
    assert got.group("c1") == ["c1m1", "c1m2", "c1m3"]


def test_compose_groups_and_keyed_groups(fake, tmp_path):
    fake.expect(GET(M1 + "/cluster", json_body=c1()))
    got = load(write(tmp_path, {
        "clusters": [{"urls": [M1]}],
        "compose": {"pg_dsn": "'host=' ~ patroni_host ~ ' port=' ~ patroni_port"},
        "groups": {"lagging": "patroni_lag is not none and patroni_lag > 10"},
        "keyed_groups": [{"key": "patroni_tags.dc | default('none')", "prefix": "dc"}],
    }))
    assert got.hostvars("c1m2")["pg_dsn"] == "host=10.213.0.12 port=5432"
    assert got.group("lagging") == ["c1m3"]
    assert got.group("dc_b") == ["c1m3"] and got.group("dc_none") == ["c1m1", "c1m2"]


def test_cache_serves_second_run_without_requests(fake, tmp_path):
    config = {"clusters": [{"urls": [M1]}, {"urls": [N1]}], "cache": True,
              "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(tmp_path / "cache")}
    path = write(tmp_path, config)
    fake.expect(GET(M1 + "/cluster", json_body=c1()), GET(N1 + "/cluster", json_body=c2()))
    first = load(path)
    assert len(fake.log) == 2
    second = load(path)
    assert len(fake.log) == 2, "the second run must come from the cache"
    assert second.group("primary") == first.group("primary") == ["c1m1", "c2m1"]
    assert second.hostvars("c1m3")["patroni_lag"] == 96
    # A refresh (--flush-cache, meta: refresh_inventory) asks Patroni again and stores the new answer.
    moved = c1()
    moved["members"][0]["role"], moved["members"][1]["role"] = "replica", "leader"
    fake.expect(GET(M1 + "/cluster", json_body=moved), GET(N1 + "/cluster", json_body=c2()))
    third = load(path, cache=False)
    assert third.group("c1_primary") == ["c1m2"]
    assert load(path).group("c1_primary") == ["c1m2"]
    assert len(fake.log) == 4


def test_cache_keeps_no_failed_cluster(fake, tmp_path):
    config = {"clusters": [{"urls": [M1]}, {"urls": [N1]}], "cache": True,
              "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(tmp_path / "cache")}
    path = write(tmp_path, config)
    fake.expect(GET(M1 + "/cluster", json_body=c1()), GET(N1 + "/cluster", raises=refused(N1)))
    first = load(path)
    assert "c2" not in first.inventory.groups and len(first.warnings) == 1
    # Only the cluster that failed is asked again; the other comes from the cache.
    fake.expect(GET(N1 + "/cluster", json_body=c2()))
    second = load(path)
    assert second.group("primary") == ["c1m1", "c2m1"]
    assert fake.urls()[2] == N1 + "/cluster"
    assert load(path).group("c2") == ["c2m1", "c2m2"]
    assert len(fake.log) == 3


def test_cache_off_always_asks(fake, tmp_path):
    path = write(tmp_path, {"clusters": [{"urls": [M1]}]})
    fake.expect(GET(M1 + "/cluster", json_body=c1()), GET(M1 + "/cluster", json_body=c1()))
    load(path)
    load(path)
    assert len(fake.log) == 2

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: patroni
short_description: Patroni cluster members as hosts, grouped by cluster and role
version_added: 0.1.0
description:
  - Reads C(GET /cluster) of each configured Patroni cluster from the first of its seed URLs that answers, and adds
    every member as a host.
  - "Groups: one per cluster (C(<prefix><cluster>)), one per role (C(<prefix>primary), C(<prefix>replica),
    C(<prefix>sync_standby), C(<prefix>quorum_standby), C(<prefix>standby_leader)) and one per cluster and role
    (C(<prefix><cluster>_primary), C(<prefix><cluster>_replica)...). Sync and quorum standbys are in the replica
    groups too. Characters not valid in group names become C(_)."
  - "Host variables, from C(/cluster): C(ansible_host) (see O(ansible_host_from)), C(patroni_name),
    C(patroni_cluster), C(patroni_scope), C(patroni_role) (V(primary), V(replica) or V(standby_leader)),
    C(patroni_dcs_role) (the role as Patroni writes it), C(patroni_sync_standby), C(patroni_quorum_standby),
    C(patroni_state), C(patroni_streaming), C(patroni_api_url) (usable as the modules' O(pgha.patroni.patroni_facts#module:api_url)),
    C(patroni_host), C(patroni_port) (PostgreSQL), C(patroni_timeline), C(patroni_lag), C(patroni_receive_lag),
    C(patroni_replay_lag) (bytes, V(null) when unknown), C(patroni_pending_restart), C(patroni_tags),
    C(patroni_leader), C(patroni_paused) and C(patroni_seed) (the seed that answered)."
  - A member whose Patroni is stopped leaves C(/cluster) and so the inventory; a seed that is down is skipped with
    a warning that names it and the reason.
  - A cluster none of whose seeds answers is left out with a warning that names the seeds and the reasons, and the
    other clusters still load; with O(strict=true) the inventory fails instead.
  - The configuration file must end in C(.patroni.yml) or C(.patroni.yaml).
extends_documentation_fragment:
  - pgha.patroni._plugin_connection
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
options:
  plugin:
    description: Marks the file as this plugin's configuration.
    type: str
    required: true
    choices: [pgha.patroni.patroni]
  clusters:
    description:
      - The clusters to read, each with its seed URLs, tried in the order given.
      - A seed is one member's REST API address (C(restapi.connect_address) with V(http://) or V(https://)); the
        C(api_url) Patroni publishes, ending in C(/patroni), works too.
      - Any one member knows the whole cluster, so two or three seeds per cluster are enough.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Name of the cluster in group names and C(patroni_cluster).
          - Defaults to the cluster's C(scope) (Patroni's C(scope) in C(patroni.yml)).
        type: str
      urls:
        description: Seed URLs of the cluster's members. A string may list several, separated by commas.
        type: list
        elements: str
        required: true
  group_prefix:
    description: Put in front of every group name this plugin makes (not of O(keyed_groups) or O(groups)).
    type: str
    default: ''
  hostname_format:
    description:
      - Inventory host name of a member, with the placeholders C({name}) (the Patroni member name), C({cluster})
        and C({scope}).
      - Use V({cluster}_{name}) when member names repeat across clusters; otherwise a member whose host name is
        taken by another cluster is left out with a warning.
    type: str
    default: '{name}'
  ansible_host_from:
    description:
      - Where C(ansible_host) comes from. V(host) is the PostgreSQL C(host) the member publishes
        (C(postgresql.connect_address)), V(api_url) the host in its REST API address
        (C(restapi.connect_address)), V(none) leaves C(ansible_host) unset, for inventories that already set it.
    type: str
    choices: [host, api_url, none]
    default: host
  strict:
    description:
      - If V(true), a cluster none of whose seeds answers fails the inventory source, and so do invalid
        O(compose), O(groups) and O(keyed_groups) entries.
      - If V(false), such a cluster is left out with a warning and invalid entries are skipped.
notes:
  - Only successful answers are cached; a cluster that could not be read is asked again on the next run even
    when the cache is valid.
seealso:
  - plugin: pgha.patroni.patroni_primary
    plugin_type: lookup
"""

EXAMPLES = r"""
# fleet.patroni.yml -- ansible-inventory -i fleet.patroni.yml --graph
plugin: pgha.patroni.patroni
clusters:
  - name: orders
    urls: [http://10.0.1.11:8008, http://10.0.1.12:8008, http://10.0.1.13:8008]
  - name: billing
    urls: https://10.0.2.11:8008, https://10.0.2.12:8008
ca_path: /etc/pgha/ca.crt
group_prefix: pg_
# Replicas more than 16 MB behind, and hosts by a Patroni tag
groups:
  pg_lagging: patroni_lag is not none and patroni_lag > 16777216
keyed_groups:
  - key: patroni_tags.dc | default('none')
    prefix: dc
compose:
  ansible_user: "'postgres'"
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: /tmp/pgha-inventory-cache
cache_timeout: 30

# Then, in a playbook:
# - hosts: pg_orders_replica
#   serial: 1
#   tasks:
#     - ansible.builtin.debug:
#         msg: "{{ inventory_hostname }} lags {{ patroni_lag }} B behind {{ patroni_leader }}"
"""

import typing as t

from ansible.errors import AnsibleParserError
from ansible.inventory.group import to_safe_group_name
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import PatroniError, redact_url
from ansible_collections.pgha.patroni.plugins.module_utils._inventory import (
    CONNECTION_OPTIONS,
    ClusterUnreachable,
    cluster_hosts,
    parse_clusters,
    read_clusters,
)

NAME = "pgha.patroni.patroni"


def cluster_cache_key(cluster: dict[str, t.Any]) -> str:
    # Without credentials: the key is written into the cache files.
    return "|".join([cluster.get("name") or ""] + [redact_url(u) for u in cluster["urls"]])


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = NAME

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith((".patroni.yml", ".patroni.yaml"))

    def parse(self, inventory: t.Any, loader: t.Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        try:
            clusters = parse_clusters(self.get_option("clusters"))
        except PatroniError as err:
            raise AnsibleParserError(f"{path}: {err.msg}") from None
        hostname_format = self.get_option("hostname_format")
        try:
            hostname_format.format(name="n", cluster="c", scope="s")
        except (KeyError, IndexError, ValueError) as err:
            raise AnsibleParserError(f"{path}: hostname_format {hostname_format!r} is not valid ({err!r}): use the "
                                     "placeholders {name}, {cluster} and {scope}") from None

        reads = self._reads(path, clusters, cache)
        strict = self.get_option("strict")
        seen: dict[str, str] = {}
        for cluster, read in zip(clusters, reads):
            label = cluster["name"] or ", ".join(redact_url(u) for u in cluster["urls"])
            if isinstance(read, PatroniError):
                msg = f"{NAME} inventory {path}: cluster {label}: {read.msg}"
                if strict or not isinstance(read, ClusterUnreachable):
                    raise AnsibleParserError(msg)
                self.display.warning(f"{msg}. Its hosts are left out of this inventory (set strict: true to fail "
                                     "instead).")
                continue
            for url, reason in read.get("errors") or []:
                # A seed that is down is usually a member that stopped: worth knowing, not worth failing for.
                self.display.warning(f"{NAME} inventory {path}: cluster {label}: seed {url} did not answer, so "
                                     f"{read['source']} was asked instead: {reason}")
            self._add_cluster(cluster, read, hostname_format, seen, strict)

    def _reads(self, path: str, clusters: list[dict[str, t.Any]], cache: bool) -> list[t.Any]:
        """/cluster of every cluster, from the cache where allowed and present, else from Patroni."""
        use_cache = bool(self.get_option("cache"))
        cache_key = self.get_cache_key(path)
        cached: dict[str, t.Any] = {}
        if use_cache and cache:
            try:
                cached = dict(self._cache[cache_key])
            except KeyError:
                cached = {}
        keys = [cluster_cache_key(c) for c in clusters]
        todo = [c for c, k in zip(clusters, keys) if k not in cached]
        fetched = iter(read_clusters(todo, {name: self.get_option(name) for name in CONNECTION_OPTIONS}))
        reads = [cached[k] if k in cached else next(fetched) for k in keys]
        if use_cache and todo:
            # Keep only what was read: a failed cluster is tried again next time instead of staying out.
            fresh = {k: r for k, r in zip(keys, reads) if not isinstance(r, PatroniError)}
            self._cache[cache_key] = fresh
        return reads

    def _group(self, name: str) -> str:
        return self.inventory.add_group(to_safe_group_name(self.get_option("group_prefix") + name, force=True,
                                                           silent=True))

    def _add_cluster(self, cluster: dict[str, t.Any], read: dict[str, t.Any], hostname_format: str,
                     seen: dict[str, str], strict: bool) -> None:
        hosts = cluster_hosts(read, cluster["name"], self.get_option("ansible_host_from"))
        cluster_name = cluster["name"] or read.get("scope") or read["source"]
        cluster_group = self._group(cluster_name)
        for host in hosts:
            hostname = hostname_format.format(name=host["name"], cluster=cluster_name,
                                              scope=host["vars"]["patroni_scope"] or "")
            if hostname in seen:
                self.display.warning(
                    f"{NAME} inventory: host {hostname} of cluster {cluster_name} is already a member of cluster "
                    f"{seen[hostname]}; it is left out. Set hostname_format: '{{cluster}}_{{name}}' to tell them "
                    "apart")
                continue
            seen[hostname] = cluster_name
            self.inventory.add_host(hostname, group=cluster_group)
            for key, value in host["vars"].items():
                self.inventory.set_variable(hostname, key, value)
            for role in host["roles"]:
                self.inventory.add_child(self._group(role), hostname)
                self.inventory.add_child(self._group(f"{cluster_name}_{role}"), hostname)
            hostvars = self.inventory.get_host(hostname).get_vars()
            self._set_composite_vars(self.get_option("compose"), hostvars, hostname, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, hostname, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, hostname, strict=strict)

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: patroni_primary
short_description: The current primary of a Patroni cluster
version_added: 0.1.0
description:
  - Asks C(GET /cluster) of the first seed that answers and returns the member holding the leader lock.
  - All terms are seeds of B(one) cluster, tried in order; the result is one dictionary.
  - Fails, naming the seed URLs and the reason, when no seed answers, when the cluster has no leader (for example
    during a failover, or paused without a leader), when it is a standby cluster, or on TLS and authentication
    errors.
  - With O(wait=true) it waits, as M(pgha.patroni.patroni_wait_primary) does, until one member is primary,
    PostgreSQL runs there and C(GET /read-write) answers 200.
extends_documentation_fragment:
  - pgha.patroni._plugin_connection
options:
  _terms:
    description:
      - Seed URLs of the cluster's members (C(restapi.connect_address) with V(http://) or V(https://)); the
        C(api_url) Patroni publishes, ending in C(/patroni), works too. A string may list several, separated by
        commas.
    type: list
    elements: str
    required: true
  wait:
    description:
      - Wait until there is a primary that accepts writes, instead of failing at once when there is no leader.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait with O(wait=true) before failing with what was seen last.
    type: float
    default: 60
  wait_sleep:
    description: Seconds between two polls with O(wait=true).
    type: float
    default: 1
seealso:
  - module: pgha.patroni.patroni_wait_primary
  - plugin: pgha.patroni.patroni
    plugin_type: inventory
"""

EXAMPLES = r"""
- name: Run a migration on whichever member is primary now
  ansible.builtin.command: psql -c 'select 1'
  delegate_to: "{{ lookup('pgha.patroni.patroni_primary', 'http://10.0.1.11:8008', 'http://10.0.1.12:8008').host }}"
  run_once: true
  changed_when: false

- name: Point an application at the primary
  ansible.builtin.template:
    src: app.conf.j2
    dest: /etc/app/app.conf
    mode: "0644"
  vars:
    pg_primary: "{{ lookup('pgha.patroni.patroni_primary', groups['pg_orders'] | map('extract', hostvars,
      'patroni_api_url') | list, ca_path='/etc/pgha/ca.crt') }}"

- name: After a switchover, wait for the new primary
  ansible.builtin.debug:
    msg: "{{ lookup('pgha.patroni.patroni_primary', 'https://10.0.2.11:8008', wait=true, wait_timeout=120) }}"
"""

RETURN = r"""
_raw:
  description: One dictionary describing the primary.
  type: list
  elements: dict
  contains:
    name:
      description: Patroni member name of the primary.
      type: str
    host:
      description: PostgreSQL host the primary publishes (C(postgresql.connect_address)).
      type: str
    port:
      description: PostgreSQL port of the primary.
      type: int
    api_url:
      description: Base URL of the primary's REST API, usable as a module's C(api_url).
      type: str
    timeline:
      description: Timeline of the primary, V(null) when Patroni does not publish it.
      type: int
"""

import typing as t

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import PatroniError, member_base_url
from ansible_collections.pgha.patroni.plugins.module_utils._inventory import (
    CONNECTION_OPTIONS,
    find_primary,
    make_client,
    read_cluster,
    seed_list,
)
from ansible_collections.pgha.patroni.plugins.module_utils._wait_primary import wait_for_primary

NAME = "pgha.patroni.patroni_primary"


def current_primary(seeds: list[str], options: dict[str, t.Any]) -> dict[str, t.Any]:
    read = read_cluster(seeds, options)
    found = find_primary(read)
    return {key: found[key] for key in ("name", "host", "port", "api_url", "timeline")}


def wait_primary(seeds: list[str], options: dict[str, t.Any], wait_timeout: float,
                 wait_sleep: float) -> dict[str, t.Any]:
    found = wait_for_primary(make_client(seeds[0], options), wait_timeout=wait_timeout, wait_sleep=wait_sleep,
                             member_api_urls=seeds[1:])
    return {"name": found["primary"], "host": found["host"], "port": found["port"],
            "api_url": member_base_url(found["api_url"]), "timeline": found["timeline"]}


class LookupModule(LookupBase):

    def run(self, terms: list[t.Any], variables: dict[str, t.Any] | None = None, **kwargs: t.Any) -> list[t.Any]:
        self.set_options(var_options=variables, direct=kwargs)
        try:
            seeds = seed_list(terms, f"{NAME} terms")
            options = {name: self.get_option(name) for name in CONNECTION_OPTIONS}
            if self.get_option("wait"):
                primary = wait_primary(seeds, options, self.get_option("wait_timeout"), self.get_option("wait_sleep"))
            else:
                primary = current_primary(seeds, options)
        except PatroniError as err:
            raise AnsibleLookupError(f"{NAME}: {err.msg}") from None
        return [primary]

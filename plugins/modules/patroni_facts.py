#!/usr/bin/python
# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: patroni_facts
short_description: Gather facts about a Patroni member, its health checks and its cluster
version_added: 0.1.0
description:
  - Reads one member's Patroni REST API and returns what it says as C(ansible_facts.patroni).
  - The member itself (C(GET /patroni)) gives the top-level facts; the health check endpoints, C(GET /cluster),
    C(GET /config) and C(GET /history) add the RV(ansible_facts.patroni.health), RV(ansible_facts.patroni.cluster),
    RV(ansible_facts.patroni.config) and RV(ansible_facts.patroni.history) facts. All of them are requested at
    the same time.
  - Works with Patroni 3.0 to 4.1. The role V(master) of Patroni before 4.0 is reported as V(primary).
  - With the V(cluster) group, every other member is asked for its C(GET /patroni) at the same time, so one task
    shows which members answer and which Patroni version each runs.
  - When the member answers C(GET /patroni) but drops C(/cluster), C(/config) or C(/history) (Patroni does that
    when it cannot read the DCS), the other members named in O(member_api_urls) or in the cluster are asked. What
    could not be read is listed in RV(ansible_facts.patroni.unreachable); it does not fail the task.
  - The task fails when the member itself does not answer C(GET /patroni), with the reason and what to change.
extends_documentation_fragment:
  - pgha.patroni._connection
  - pgha.patroni._attributes
  - pgha.patroni._attributes.INFO_MODULE
  - pgha.patroni._attributes.FACTS
  - pgha.patroni._attributes.ACTIONGROUP_PATRONI
  - pgha.patroni._attributes.IN_PROCESS
  - pgha.patroni._operation
options:
  gather_subset:
    description:
      - Which groups of facts to gather. V(node) (the member's own C(GET /patroni)) is always gathered.
      - V(health) asks every health check endpoint, V(cluster) C(GET /cluster), V(config) C(GET /config),
        V(history) C(GET /history).
      - Prefix a group with V(!) to leave it out. Only negations means all other groups;
        V(!all) means only V(node) and the groups listed with it.
    type: list
    elements: str
    default: [all]
    choices: [all, node, health, cluster, config, history, "!all", "!health", "!cluster", "!config", "!history"]
  health_lag:
    description:
      - Maximum replication lag for the V(replica), V(read_only), V(sync), V(async) and V(quorum) health checks,
        sent to Patroni as C(?lag=) in bytes.
      - Bytes (V(1048576)) or a number with one of Patroni's case-sensitive units V(B), V(kB), V(MB), V(GB),
        V(TB) (V(16MB)). Other spellings are refused, because Patroni silently ignores them and answers as if
        there were no limit.
    type: str
  member_api_urls:
    description:
      - REST API URLs of other members to ask for C(/cluster), C(/config) and C(/history) when this member drops
        the connection. Members found in C(/cluster) are asked too.
requirements:
  - requests
notes:
  - Health checks are asked with C(GET). C(HEAD) and C(OPTIONS) on C(/liveness) and C(/readiness) always answer
    503 in Patroni.
  - C(/quorum) exists since Patroni 4.0; older versions answer 503, reported as V(false).
  - Patroni never asks for credentials on these C(GET) requests; restrict access to the API port with TLS
    (C(restapi.verify_client)) and firewalls.
seealso:
  - module: pgha.patroni.patroni_wait_primary
  - name: Patroni REST API
    description: The endpoints this module reads.
    link: https://patroni.readthedocs.io/en/latest/rest_api.html
author:
  - pgha maintainers (@pgha)
"""

EXAMPLES = r"""
- name: Gather Patroni facts from the member on this host
  pgha.patroni.patroni_facts:
    api_url: "http://{{ ansible_host }}:8008"

- name: Show role and lag
  ansible.builtin.debug:
    msg: "{{ ansible_facts['patroni']['name'] }} is {{ ansible_facts['patroni']['role'] }}, lag {{ ansible_facts['patroni']['lag'] }}"

- name: Only the member and its health checks, with a lag limit for the replica checks
  pgha.patroni.patroni_facts:
    api_url: "https://{{ ansible_host }}:8008"
    ca_path: /etc/patroni/tls/ca.crt
    gather_subset: ["!all", health]
    health_lag: 16MB

- name: Connection options once for every Patroni module of the play
  module_defaults:
    group/pgha.patroni.patroni:
      ca_path: /etc/patroni/tls/ca.crt
      client_cert: /etc/patroni/tls/client.crt
      client_key: /etc/patroni/tls/client.key
  block:
    - name: Gather facts without the history
      pgha.patroni.patroni_facts:
        api_url: "https://{{ ansible_host }}:8008"
        gather_subset: ["!history"]
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to C(ansible_facts).
  returned: always
  type: dict
  contains:
    patroni:
      description: What the member said. Read it as C(ansible_facts['patroni']).
      returned: always
      type: dict
      contains:
        name:
          description:
            - Member name. Patroni before 3.2 does not report it; it is then taken from the C(/cluster) member
              with the same API URL, else V(null).
          type: str
          sample: c1m1
        scope:
          description: Cluster name (C(scope) in C(patroni.yml)).
          type: str
          sample: c1
        role:
          description: V(primary), V(replica) or V(standby_leader); while PostgreSQL is down, Patroni's last known role
            (for example V(uninitialized)).
          type: str
          sample: primary
        state:
          description: PostgreSQL state as Patroni sees it (V(running), V(starting), V(stopped), ...).
          type: str
          sample: running
        replication_state:
          description: V(streaming) or V(in archive recovery) on replicas (Patroni 3.0.4 and later), else V(null).
          type: str
          sample: streaming
        timeline:
          description: PostgreSQL timeline.
          type: int
          sample: 2
        server_version:
          description: PostgreSQL version number.
          type: int
          sample: 150018
        postmaster_start_time:
          description: When PostgreSQL started.
          type: str
          sample: "2026-11-25 10:15:02.123456+00:00"
        lsn:
          description: WAL write position of a primary in bytes, V(null) on replicas.
          type: int
          sample: 67109216
        received_lsn:
          description: WAL received by a replica, in bytes; V(null) on a primary.
          type: int
        replayed_lsn:
          description: WAL replayed by a replica, in bytes; V(null) on a primary.
          type: int
        replayed_timestamp:
          description: Commit time of the last replayed transaction on a replica.
          type: str
        replay_paused:
          description: Whether WAL replay is paused on a replica; V(null) on a primary.
          type: bool
        lag:
          description:
            - Replication lag in bytes behind the leader, from C(/cluster). V(null) on the primary, when the lag is
              unknown, or when neither the V(cluster) subset nor a name lookup read C(/cluster).
          type: int
          sample: 0
        pending_restart:
          description: PostgreSQL needs a restart to apply changed parameters.
          type: bool
        pending_restart_reason:
          description: Parameters waiting for a restart with old and new values (Patroni 3.3 and later), else V(null).
          type: dict
        scheduled_restart:
          description: The scheduled restart, if any.
          type: dict
        paused:
          description: The cluster is in maintenance mode (paused).
          type: bool
        cluster_unlocked:
          description: The member sees no leader lock.
          type: bool
        tags:
          description: The member's tags.
          type: dict
          sample: {nofailover: true}
        version:
          description: Patroni version.
          type: str
          sample: 4.1.5
        sync_standby:
          description: The member is a synchronous standby.
          type: bool
        quorum_standby:
          description: The member is a quorum standby (Patroni 4.0 and later).
          type: bool
        dcs_last_seen:
          description: When the member last reached the DCS, in seconds since the epoch.
          type: int
        api_url:
          description: The API URL the facts were read from, without credentials.
          type: str
          sample: http://10.213.0.11:8008
        gather_subset:
          description: The groups that were gathered.
          type: list
          elements: str
          sample: [node, health, cluster, config, history]
        unreachable:
          description:
            - What could not be read, without failing the task. Each entry has C(name) (the member, V(null) if not
              known), C(api_url), C(path), C(kind) (V(connection), V(timeout), V(empty_reply), V(http),
              V(bad_json)) and C(reason) (the error, with what to check).
          type: list
          elements: dict
          sample:
            - name: c1m3
              api_url: http://10.213.0.13:8008/patroni
              path: /patroni
              kind: timeout
              reason: "no answer within 5 s from GET http://10.213.0.13:8008/patroni: raise timeout or check ..."
        health:
          description:
            - One boolean per health check endpoint, V(true) for HTTP 200 and V(false) for HTTP 503
              (V(null) if it could not be read).
            - Keys C(primary), C(replica), C(read_write), C(read_only), C(sync), C(async), C(quorum), C(health),
              C(liveness) and C(readiness) for C(/primary), C(/replica), C(/read-write), C(/read-only),
              C(/sync), C(/async), C(/quorum), C(/health), C(/liveness) and C(/readiness).
          returned: when V(health) is gathered
          type: dict
          sample: {primary: true, replica: false, read_write: true, read_only: true, sync: false, async: false,
                   quorum: false, health: true, liveness: true, readiness: true}
        cluster:
          description: The cluster as C(GET /cluster) shows it; V(null) if no member answered.
          returned: when V(cluster) is gathered
          type: dict
          contains:
            scope:
              description: Cluster name.
              type: str
            leader:
              description: Name of the member holding the leader lock, V(null) if none.
              type: str
            paused:
              description: Maintenance mode.
              type: bool
            scheduled_switchover:
              description: C(at), C(from), C(to) of a scheduled switchover, else V(null).
              type: dict
            members:
              description:
                - One entry per member with C(name), C(role) (V(primary), V(standby_leader) or V(replica)),
                  C(sync) and C(quorum) (synchronous or quorum standby), C(state), C(streaming) (a replica whose
                  state is V(streaming), or V(running) on Patroni before 3.0.4), C(host), C(port), C(api_url)
                  (as Patroni publishes it, ending in C(/patroni); usable as O(api_url)), C(timeline), C(lag),
                  C(receive_lag), C(replay_lag) (bytes, V(null) when unknown or on the leader), C(lsn),
                  C(pending_restart) and C(tags).
                - Every other member is asked for its own C(GET /patroni) at the same time.
                  C(reachable) says whether it answered (failures are listed in RV(ansible_facts.patroni.unreachable))
                  and C(version) is the Patroni version it runs.
              type: list
              elements: dict
        config:
          description: Dynamic configuration from C(GET /config); V({}) when the DCS holds none (HTTP 502).
          returned: when V(config) is gathered
          type: dict
        history:
          description: Timeline switches from C(GET /history), each with C(timeline), C(lsn), C(reason),
            C(timestamp) and C(new_leader) (the last two V(null) where Patroni did not record them).
          returned: when V(history) is gathered
          type: list
          elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    connection_module_kwargs,
    member_urls_argument_spec,
)
from ansible_collections.pgha.patroni.plugins.module_utils._facts import GATHER_SUBSET_CHOICES, gather_facts
from ansible_collections.pgha.patroni.plugins.module_utils._operations import run_operation


def main() -> None:
    module = AnsibleModule(
        supports_check_mode=True,
        **connection_module_kwargs(dict(
            gather_subset=dict(type="list", elements="str", default=["all"], choices=GATHER_SUBSET_CHOICES),
            health_lag=dict(type="str"),
            **member_urls_argument_spec(),
        )),
    )
    params = module.params
    facts, warnings = run_operation(module, lambda client: gather_facts(
        client, params["gather_subset"], params["health_lag"], params["member_api_urls"]))
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=False, ansible_facts={"patroni": facts})


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: patroni_wait_primary
short_description: Wait until a Patroni cluster has a primary that accepts writes
version_added: 0.1.0
description:
  - Given any member's REST API URL, asks C(GET /cluster) until exactly one member holds the leader lock, and that
    member's own C(GET /patroni) says role V(primary) and state V(running), and its C(GET /read-write) answers 200.
    Patroni takes the leader lock before promotion ends, so the lock alone is not enough.
  - C(/cluster) is asked from the member that last answered, then from every other member the cluster has named;
    connections refused, reset, timed out or dropped without a reply and HTTP 503 are waited out.
  - TLS and authentication errors fail at once, since waiting cannot fix them.
  - Optional conditions wait for a given member (O(member)), for another member than the old primary
    (O(not_member)), for a new timeline (O(min_timeline)) and for streaming replicas (O(min_replicas), O(max_lag)).
  - Returns as soon as all conditions hold. On timeout the task fails with the conditions still missing and the
    last state seen of every member (role, state, timeline, lag, or the error).
extends_documentation_fragment:
  - pgha.patroni._connection
  - pgha.patroni._attributes
  - pgha.patroni._attributes.INFO_MODULE
  - pgha.patroni._attributes.ACTIONGROUP_PATRONI
  - pgha.patroni._attributes.IN_PROCESS
  - pgha.patroni._operation
  - pgha.patroni._operation.WAIT_SLEEP
options:
  wait_timeout:
    description: Seconds to wait before failing. V(0) checks once.
    type: float
    default: 120
  wait_sleep:
    description:
      - Seconds between the starts of two polls (at least V(0.05)). A change is seen within about this time.
  not_member:
    description:
      - Name of a member that must not be the answer, typically the old primary after a switchover or failover.
    type: str
  member:
    description: Name of the member that must become the primary.
    type: str
  min_timeline:
    description: Wait until the primary is on this timeline or a later one.
    type: int
  min_replicas:
    description:
      - Wait until this many other members are replicas streaming from the primary (state V(streaming), or
        V(running) on Patroni before 3.0.4, on the primary's timeline).
    type: int
    default: 0
  max_lag:
    description:
      - With O(min_replicas), only count replicas whose lag in C(/cluster) is at most this.
      - Bytes (V(1048576)) or a number with a Patroni unit V(B), V(kB), V(MB), V(GB), V(TB) (case-sensitive).
    type: str
  member_api_urls:
    description:
      - More members to ask for C(/cluster) from the start, useful when O(api_url) may be the member that is down.
requirements:
  - requests
notes:
  - Lag in C(/cluster) is measured against the leader position Patroni last wrote to the DCS, so it can be up
    to C(loop_wait) seconds old.
seealso:
  - module: pgha.patroni.patroni_facts
author:
  - pgha maintainers (@pgha)
"""

EXAMPLES = r"""
- name: Wait for any primary
  pgha.patroni.patroni_wait_primary:
    api_url: http://10.213.0.12:8008

- name: After a switchover away from c1m1, wait for a new primary and two replicas within 16MB
  pgha.patroni.patroni_wait_primary:
    api_url: http://10.213.0.12:8008
    member_api_urls:
      - http://10.213.0.13:8008
    not_member: c1m1
    min_replicas: 2
    max_lag: 16MB
    wait_timeout: 90
    wait_sleep: 0.5
  register: new_primary

- name: Show the new primary
  ansible.builtin.debug:
    msg: "{{ new_primary.primary }} on {{ new_primary.host }}:{{ new_primary.port }} after {{ new_primary.elapsed }} s"
"""

RETURN = r"""
primary:
  description: Name of the primary.
  returned: success
  type: str
  sample: c1m2
api_url:
  description: REST API URL of the primary as Patroni publishes it; usable as O(api_url) of the other modules.
  returned: success
  type: str
  sample: http://10.213.0.12:8008/patroni
host:
  description: PostgreSQL host of the primary (C(postgresql.connect_address)).
  returned: success
  type: str
  sample: 10.213.0.12
port:
  description: PostgreSQL port of the primary.
  returned: success
  type: int
  sample: 5432
timeline:
  description: Timeline of the primary.
  returned: success
  type: int
  sample: 3
elapsed:
  description: Seconds waited.
  returned: success or timeout
  type: float
  sample: 2.514
polls:
  description: How many times the cluster was asked.
  returned: success or timeout
  type: int
  sample: 4
members:
  description:
    - The members as the last C(GET /cluster) showed them, in the form of
      RV(pgha.patroni.patroni_facts#module:ansible_facts.patroni.cluster.members).
  returned: success or timeout (V(null) if no member ever answered)
  type: list
  elements: dict
missing:
  description: The conditions that still did not hold when the wait timed out.
  returned: timeout
  type: list
  elements: str
  sample: ["c1m1 is still primary (not_member)"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    connection_module_kwargs,
    member_urls_argument_spec,
    wait_sleep_argument_spec,
)
from ansible_collections.pgha.patroni.plugins.module_utils._operations import run_operation
from ansible_collections.pgha.patroni.plugins.module_utils._wait_primary import wait_for_primary


def main() -> None:
    module = AnsibleModule(
        supports_check_mode=True,
        **connection_module_kwargs(dict(
            wait_timeout=dict(type="float", default=120.0),
            **wait_sleep_argument_spec(),
            not_member=dict(type="str"),
            member=dict(type="str"),
            min_timeline=dict(type="int"),
            min_replicas=dict(type="int", default=0),
            max_lag=dict(type="str"),
            **member_urls_argument_spec(),
        )),
    )
    params = module.params
    result = run_operation(module, lambda client: wait_for_primary(
        client,
        wait_timeout=params["wait_timeout"],
        wait_sleep=params["wait_sleep"],
        not_member=params["not_member"],
        member=params["member"],
        min_timeline=params["min_timeline"],
        min_replicas=params["min_replicas"],
        max_lag=params["max_lag"],
        member_api_urls=params["member_api_urls"],
    ))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()

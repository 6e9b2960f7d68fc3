#!/usr/bin/python
# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: patroni_maintenance
short_description: Pause or resume automatic failover of a Patroni cluster
version_added: 0.1.0
description:
  - Sets maintenance mode the way C(patronictl pause) and C(resume) do, with C(PATCH /config) setting C(pause) to
    V(true) or V(null), only when the dynamic configuration does not say so already.
  - With O(wait), then waits until every member reports the new state in its C(GET /patroni); members apply it on
    their next HA loop.
  - While paused, Patroni does not fail over, does not restart a stopped PostgreSQL and refuses scheduled restarts
    and switchovers; a switchover needs a named candidate.
extends_documentation_fragment:
  - pgha.patroni._connection
  - pgha.patroni._attributes
  - pgha.patroni._attributes.ACTIONGROUP_PATRONI
  - pgha.patroni._attributes.IN_PROCESS
  - pgha.patroni._operation
  - pgha.patroni._operation.WAIT
  - pgha.patroni._operation.WAIT_SLEEP
attributes:
  check_mode:
    support: full
    details:
      - Reports whether the pause flag would change; does not wait.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  state:
    description: V(paused) sets maintenance mode, V(resumed) ends it.
    type: str
    choices: [paused, resumed]
    required: true
  wait:
    description: Wait until every member reports the state.
  wait_timeout:
    description: Seconds to wait for the members.
    default: 60
requirements:
  - requests
seealso:
  - module: pgha.patroni.patroni_config
author:
  - pgha maintainers (@pgha)
"""

EXAMPLES = r"""
- name: Pause the cluster for maintenance
  pgha.patroni.patroni_maintenance:
    api_url: http://10.213.0.11:8008
    state: paused

- name: Resume
  pgha.patroni.patroni_maintenance:
    api_url: http://10.213.0.11:8008
    state: resumed
"""

RETURN = r"""
paused:
  description: Whether the cluster is paused after the task.
  returned: always
  type: bool
  sample: true
was_paused:
  description: Whether the dynamic configuration said paused before the task.
  returned: always
  type: bool
  sample: false
members:
  description: Members that reported the state (empty in check mode or without O(wait)).
  returned: always
  type: list
  elements: str
  sample: ["c1m1", "c1m2", "c1m3"]
elapsed:
  description: Seconds waited for the members.
  returned: when waited
  type: float
  sample: 2.1
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    connection_module_kwargs,
    member_urls_argument_spec,
    wait_argument_spec,
)
from ansible_collections.pgha.patroni.plugins.module_utils._dynamic_config import MaintenanceRunner
from ansible_collections.pgha.patroni.plugins.module_utils._operations import run_operation


def main() -> None:
    module = AnsibleModule(
        supports_check_mode=True,
        **connection_module_kwargs(dict(
            state=dict(type="str", choices=["paused", "resumed"], required=True),
            **wait_argument_spec(wait_timeout=60.0),
            **member_urls_argument_spec(),
        )),
    )
    params = module.params
    result = run_operation(module, lambda client: MaintenanceRunner(
        client, params["state"], check_mode=module.check_mode, wait=params["wait"],
        wait_timeout=params["wait_timeout"], wait_sleep=params["wait_sleep"],
        member_api_urls=params["member_api_urls"]).run())
    module.exit_json(**result)


if __name__ == "__main__":
    main()

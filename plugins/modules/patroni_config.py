#!/usr/bin/python
# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: patroni_config
short_description: Set keys of a Patroni cluster's dynamic configuration
version_added: 0.1.0
description:
  - Reads the dynamic configuration (C(GET /config)), computes the patch the way Patroni merges it (recursively
    through dictionaries, values compared as strings so V(100) equals V("100"), V(null) deletes a key) and sends
    C(PATCH /config) only when something differs.
  - Keys not named in O(config) stay as they are.
  - When another client changed the configuration between the read and the patch (HTTP 409), the module reads it
    again and recomputes, up to 5 times.
  - After a change to C(postgresql.parameters), reports which changed parameters need a PostgreSQL restart and
    which members report C(pending_restart). Members notice the change on their next HA loop, so the module polls
    C(/cluster) until every member reports the restart parameters (up to O(pending_restart_timeout)).
    Restart them with M(pgha.patroni.patroni_restart) and O(pgha.patroni.patroni_restart#module:pending_only=true).
extends_documentation_fragment:
  - pgha.patroni._connection
  - pgha.patroni._attributes
  - pgha.patroni._attributes.ACTIONGROUP_PATRONI
  - pgha.patroni._attributes.IN_PROCESS
  - pgha.patroni._operation
  - pgha.patroni._operation.WAIT_SLEEP
attributes:
  check_mode:
    support: full
    details:
      - Computes the patch and the diff without sending it.
  diff_mode:
    support: full
    details:
      - The whole dynamic configuration before and after.
  idempotent:
    support: full
options:
  config:
    description:
      - The wanted dynamic configuration, or the part of it to set, as in C(patronictl edit-config).
      - V(null) as a value removes that key.
      - Values are compared as strings like Patroni does; the type already stored is kept when equal.
    type: dict
    required: true
  pending_restart_timeout:
    description:
      - Seconds to poll C(/cluster) for members reporting C(pending_restart) after a restart parameter changed.
      - Default is 3 x C(loop_wait) + 5 when a parameter of the restart list changed, else V(0) (look once).
    type: float
requirements:
  - requests
notes:
  - Which parameters need a restart is first predicted from a list of PostgreSQL's C(postmaster) context
    parameters (PostgreSQL 13 to 17), then confirmed from the members' C(pending_restart_reason) (Patroni 3.3 and
    later).
  - A C(PATCH /config) can set C(archive_command) and similar; protect the REST API (authentication, TLS,
    allowlist) since this endpoint is equivalent to running commands as C(postgres).
seealso:
  - module: pgha.patroni.patroni_restart
  - module: pgha.patroni.patroni_maintenance
author:
  - pgha maintainers (@pgha)
"""

EXAMPLES = r"""
- name: Raise work_mem and max_connections, drop a parameter
  pgha.patroni.patroni_config:
    api_url: http://10.213.0.11:8008
    config:
      postgresql:
        parameters:
          work_mem: 16MB
          max_connections: 200
          log_min_duration_statement: null
  register: patroni_cfg

- name: Restart where needed
  pgha.patroni.patroni_restart:
    api_url: http://10.213.0.11:8008
    all_members: true
    pending_only: true
  when: patroni_cfg.pending_restart | length > 0
"""

RETURN = r"""
patch:
  description: The body of C(PATCH /config) sent (or that would be sent in check mode); empty when nothing differs.
  returned: always
  type: dict
  sample: {"postgresql": {"parameters": {"max_connections": 200}}}
config:
  description: The dynamic configuration after the task, as Patroni returned it.
  returned: always
  type: dict
before:
  description: The dynamic configuration before the task.
  returned: always
  type: dict
changed_parameters:
  description: Names of C(postgresql.parameters) in the patch.
  returned: always
  type: list
  elements: str
  sample: ["max_connections", "work_mem"]
restart_parameters:
  description: Changed parameters that need a PostgreSQL restart (predicted, and confirmed by the members).
  returned: always
  type: list
  elements: str
  sample: ["max_connections"]
pending_restart:
  description: Members that report C(pending_restart) after the task (empty in check mode).
  returned: always
  type: list
  elements: str
  sample: ["c1m1", "c1m2", "c1m3"]
conflicts_retried:
  description: How many times a HTTP 409 made the module read and patch again.
  returned: always
  type: int
  sample: 0
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    connection_module_kwargs,
    member_urls_argument_spec,
    wait_sleep_argument_spec,
)
from ansible_collections.pgha.patroni.plugins.module_utils._dynamic_config import ConfigRunner
from ansible_collections.pgha.patroni.plugins.module_utils._operations import run_operation


def main() -> None:
    module = AnsibleModule(
        supports_check_mode=True,
        **connection_module_kwargs(dict(
            config=dict(type="dict", required=True),
            pending_restart_timeout=dict(type="float"),
            **wait_sleep_argument_spec(),
            **member_urls_argument_spec(),
        )),
    )
    params = module.params
    result = run_operation(module, lambda client: ConfigRunner(
        client, params["config"], check_mode=module.check_mode,
        pending_restart_timeout=params["pending_restart_timeout"], wait_sleep=params["wait_sleep"],
        member_api_urls=params["member_api_urls"]).run())
    if module._diff:
        result["diff"] = {"before": result["before"], "after": result["config"]}
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: patroni_reinit
short_description: Rebuild a Patroni replica from scratch (POST /reinitialize)
version_added: 0.1.0
description:
  - Sends C(POST /reinitialize) to the replica O(member). Patroni stops its PostgreSQL, deletes the data directory
    and creates the replica again (C(pg_basebackup) or the configured method). Its data is gone.
  - Refuses for the leader and for a cluster without a leader, before anything is sent.
  - With O(wait), waits until the member's PostgreSQL started anew and C(/cluster) shows it streaming again.
  - With O(only_if_unhealthy), a member that streams on the leader's timeline is left alone, which makes the task
    idempotent; by default every run rebuilds the replica.
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
      - Applies the same refusals and reports whether the member would be rebuilt.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - Only with O(only_if_unhealthy).
options:
  member:
    description: Name of the replica to rebuild.
    type: str
    required: true
  force:
    description: Cancel an operation already running on the member (Patroni's C(force)).
    type: bool
    default: false
  from_leader:
    description:
      - Copy from the leader, not from the replica Patroni would choose (Patroni 4.1 and later; older versions
        ignore it).
    type: bool
    default: false
  only_if_unhealthy:
    description: Leave a member alone that streams on the leader's timeline.
    type: bool
    default: false
  wait:
    description: Wait until the member streams again.
  wait_timeout:
    description: Seconds to wait; a large database takes as long as a base backup.
    default: 600
requirements:
  - requests
seealso:
  - module: pgha.patroni.patroni_facts
author:
  - pgha maintainers (@pgha)
"""

EXAMPLES = r"""
- name: Rebuild c1m3 if it does not stream
  pgha.patroni.patroni_reinit:
    api_url: http://10.213.0.11:8008
    member: c1m3
    only_if_unhealthy: true
    wait_timeout: 1800
"""

RETURN = r"""
msg:
  description: What happened.
  returned: always
  type: str
  sample: c1m3 reinitialized
member:
  description: The member.
  returned: always
  type: str
  sample: c1m3
state_before:
  description: The member's state in C(/cluster) before the task.
  returned: always
  type: str
  sample: stopped
state:
  description: The member's state in C(/cluster) at the end of the wait.
  returned: when waited
  type: str
  sample: streaming
elapsed:
  description: Seconds waited.
  returned: when waited
  type: float
  sample: 12.4
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    connection_module_kwargs,
    member_urls_argument_spec,
    wait_argument_spec,
)
from ansible_collections.pgha.patroni.plugins.module_utils._operations import ReinitRunner, run_operation


def main() -> None:
    module = AnsibleModule(
        supports_check_mode=True,
        **connection_module_kwargs(dict(
            member=dict(type="str", required=True),
            force=dict(type="bool", default=False),
            from_leader=dict(type="bool", default=False),
            only_if_unhealthy=dict(type="bool", default=False),
            **wait_argument_spec(wait_timeout=600.0),
            **member_urls_argument_spec(),
        )),
    )
    params = module.params
    result = run_operation(module, lambda client: ReinitRunner(
        client, params["member"], check_mode=module.check_mode,
        force=params["force"], from_leader=params["from_leader"],
        only_if_unhealthy=params["only_if_unhealthy"], wait=params["wait"],
        wait_timeout=params["wait_timeout"], wait_sleep=params["wait_sleep"],
        member_api_urls=params["member_api_urls"]).run())
    module.exit_json(**result)


if __name__ == "__main__":
    main()

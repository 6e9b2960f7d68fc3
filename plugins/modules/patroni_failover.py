#!/usr/bin/python
# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: patroni_failover
short_description: Manual failover of a Patroni cluster that has no healthy leader
version_added: 0.1.0
description:
  - For a cluster whose leader is gone or whose leader's PostgreSQL does not run. Sends C(POST /failover) with
    the O(candidate) to the leader if there is one, else to the candidate, and waits until the candidate is a
    primary that accepts writes.
  - Refuses when the cluster has a healthy leader (state V(running)) unless O(force) is set; use
    M(pgha.patroni.patroni_switchover) for planned changes.
  - Nothing happens when the candidate already is a healthy leader.
  - Patroni may promote the candidate even if it lags or is on an older timeline; data written only on the old
    leader can be lost.
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
      - Reports whether a failover would be requested and applies the same refusals.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - A second run finds the candidate leading and does nothing.
options:
  candidate:
    description: Name of the member that must become the primary.
    type: str
    required: true
  force:
    description: Fail over even though the cluster has a healthy leader.
    type: bool
    default: false
  wait:
    description: Wait until the candidate runs as primary and accepts writes.
  wait_timeout:
    description: Seconds to wait for the candidate after Patroni answered.
    default: 120
  member_api_urls:
    description: More members to ask for C(/cluster) when O(api_url) does not answer (likely in a failover).
requirements:
  - requests
notes:
  - The C(POST /failover) request uses a timeout of at least 30 seconds whatever O(timeout) says.
seealso:
  - module: pgha.patroni.patroni_switchover
  - module: pgha.patroni.patroni_wait_primary
author:
  - pgha maintainers (@pgha)
"""

EXAMPLES = r"""
- name: Promote c1m2 after the primary's host died
  pgha.patroni.patroni_failover:
    api_url: http://10.213.0.12:8008
    member_api_urls:
      - http://10.213.0.13:8008
    candidate: c1m2
"""

RETURN = r"""
msg:
  description: What happened, or would happen in check mode.
  returned: always
  type: str
  sample: cluster c1 failed over to c1m2
previous_primary:
  description: The leader before the task, V(null) when there was none.
  returned: always
  type: str
  sample: c1m1
primary:
  description: The leader after the task.
  returned: always
  type: str
  sample: c1m2
candidate:
  description: The member asked to take over.
  returned: always
  type: str
  sample: c1m2
answer:
  description: Patroni's answer to C(POST /failover).
  returned: when a failover was requested
  type: str
  sample: Successfully failed over to "c1m2"
api_url:
  description: REST API URL of the new primary.
  returned: when waited
  type: str
  sample: http://10.213.0.12:8008/patroni
timeline:
  description: Timeline of the new primary.
  returned: when waited
  type: int
  sample: 3
elapsed:
  description: Seconds waited for the new primary.
  returned: when waited
  type: float
  sample: 5.1
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    connection_module_kwargs,
    member_urls_argument_spec,
    wait_argument_spec,
)
from ansible_collections.pgha.patroni.plugins.module_utils._operations import run_operation
from ansible_collections.pgha.patroni.plugins.module_utils._switchover import FailoverRunner


def main() -> None:
    module = AnsibleModule(
        supports_check_mode=True,
        **connection_module_kwargs(dict(
            candidate=dict(type="str", required=True),
            force=dict(type="bool", default=False),
            **wait_argument_spec(wait_timeout=120.0),
            **member_urls_argument_spec(),
        )),
    )
    params = module.params
    result = run_operation(module, lambda client: FailoverRunner(
        client, params["candidate"], check_mode=module.check_mode,
        force=params["force"], wait=params["wait"], wait_timeout=params["wait_timeout"],
        wait_sleep=params["wait_sleep"], member_api_urls=params["member_api_urls"]).run())
    module.exit_json(**result)


if __name__ == "__main__":
    main()

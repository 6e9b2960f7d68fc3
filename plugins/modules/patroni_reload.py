#!/usr/bin/python
# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: patroni_reload
short_description: Make Patroni members re-read patroni.yml (POST /reload)
version_added: 0.1.0
description:
  - Sends C(POST /reload) (the same as SIGHUP or C(service patroni reload)) to the member O(api_url) points at, to
    the members in O(members), or to all members (O(all_members)). Patroni re-reads its configuration file,
    applies REST API, tag and C(ctl) settings, rewrites C(postgresql.conf) and reloads PostgreSQL (never
    restarts it).
  - Patroni answers HTTP 202 and reloads in the background. With O(wait), the module then waits until each
    member's REST API answers again, since a change of C(restapi.listen) or the TLS files restarts it.
  - B(Always reports changed) (except when no member is selected). Patroni's reload leaves nothing to compare
    through the REST API, and the configuration file is not readable from where the module may run. Use the
    module in a handler notified by the task that changed C(patroni.yml), so the play stays idempotent.
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
      - Lists the members that would be reloaded.
  diff_mode:
    support: none
  idempotent:
    support: none
    details:
      - Every run sends the reload and reports changed; call it from a handler.
options:
  members:
    description: Names of the members to reload. Mutually exclusive with O(all_members).
    type: list
    elements: str
    default: []
  all_members:
    description: Reload every member of the cluster.
    type: bool
    default: false
  wait:
    description: Wait until the REST API of every reloaded member answers again.
  wait_timeout:
    default: 30
  wait_sleep:
    default: 0.5
requirements:
  - requests
seealso:
  - module: pgha.patroni.patroni_restart
author:
  - pgha maintainers (@pgha)
"""

EXAMPLES = r"""
# handlers/main.yml of a role that templates patroni.yml
- name: Reload Patroni
  listen: reload patroni
  pgha.patroni.patroni_reload:
    api_url: "{{ patroni_api_url }}"
"""

RETURN = r"""
reloaded:
  description: Members reloaded (or that would be in check mode).
  returned: always
  type: list
  elements: str
  sample: ["c1m2"]
pending_restart:
  description: Reloaded members that report C(pending_restart) afterwards (a changed parameter needs a restart).
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    connection_module_kwargs,
    member_urls_argument_spec,
    wait_argument_spec,
)
from ansible_collections.pgha.patroni.plugins.module_utils._operations import ReloadRunner, run_operation


def main() -> None:
    kwargs = connection_module_kwargs(dict(
        members=dict(type="list", elements="str", default=[]),
        all_members=dict(type="bool", default=False),
        **wait_argument_spec(wait_timeout=30.0, wait_sleep=0.5),
        **member_urls_argument_spec(),
    ))
    module = AnsibleModule(supports_check_mode=True, mutually_exclusive=[["members", "all_members"]], **kwargs)
    params = module.params
    result = run_operation(module, lambda client: ReloadRunner(
        client, check_mode=module.check_mode, members=params["members"],
        all_members=params["all_members"], wait=params["wait"], wait_timeout=params["wait_timeout"],
        wait_sleep=params["wait_sleep"], member_api_urls=params["member_api_urls"]).run())
    module.exit_json(**result)


if __name__ == "__main__":
    main()

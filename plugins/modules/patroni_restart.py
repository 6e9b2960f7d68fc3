#!/usr/bin/python
# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: patroni_restart
short_description: Restart PostgreSQL on Patroni members through the REST API, or cancel scheduled restarts
version_added: 0.1.0
description:
  - Sends C(POST /restart) to the member O(api_url) points at, to the members named in O(members), or to every
    member of the cluster (O(all_members)). Patroni restarts PostgreSQL only; Patroni itself keeps running and keeps
    the leader lock, so restarting the primary does not fail over.
  - Members are restarted one at a time, replicas first and the primary last; each request returns when
    PostgreSQL is up again (or after O(restart_timeout)).
  - O(role) and O(pending_only) filter the members before anything is sent, from C(GET /cluster); with
    O(pending_only) Patroni checks the flag again itself.
  - With O(scheduled_at) Patroni restarts at that time and the module returns at once; a member that already has
    this schedule is left alone.
  - With O(state=absent), the module cancels the scheduled restart of the selected members instead (C(DELETE
    /restart) on each member's own REST API, what C(patronictl flush <cluster> restart) does), for every member
    whose C(scheduled_restart) C(GET /cluster) shows. O(members), O(all_members) and O(role) select members as
    with V(present); O(scheduled_at) only cancels a restart scheduled at that time. A member with nothing
    scheduled, or whose schedule is gone when the request arrives (cancelled elsewhere, or it ran), is left
    unchanged. O(pending_only) and O(restart_timeout) shape a restart still to run, so they are refused with
    O(state=absent).
extends_documentation_fragment:
  - pgha.patroni._connection
  - pgha.patroni._attributes
  - pgha.patroni._attributes.ACTIONGROUP_PATRONI
  - pgha.patroni._attributes.IN_PROCESS
  - pgha.patroni._operation
attributes:
  check_mode:
    support: full
    details:
      - Lists the members that would be restarted.
      - With O(state=absent), lists the members whose scheduled restart would be cancelled.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - With O(pending_only) or O(scheduled_at) a second run does nothing; otherwise every run restarts.
      - O(state=absent) is idempotent.
options:
  state:
    description:
      - V(present) restarts (or schedules a restart with O(scheduled_at)).
      - V(absent) cancels the scheduled restarts of the selected members.
    type: str
    choices: [present, absent]
    default: present
  members:
    description:
      - Names of the members to restart (or whose scheduled restart to cancel). Mutually exclusive with
        O(all_members).
    type: list
    elements: str
    default: []
  all_members:
    description: Restart every member of the cluster.
    type: bool
    default: false
  pending_only:
    description:
      - Only members that report C(pending_restart) (a changed parameter needs a restart).
      - Refused with O(state=absent).
    type: bool
    default: false
  role:
    description: Only the primary, only replicas, or any member.
    type: str
    choices: [primary, replica, any]
    default: any
  scheduled_at:
    description:
      - When Patroni should restart, ISO 8601 with a time zone; refused when naive or in the past.
      - With O(state=absent), only cancel restarts scheduled at this time (compared as an instant; a time in the past
        is accepted).
    type: str
  restart_timeout:
    description:
      - Seconds Patroni waits for PostgreSQL to start (the C(timeout) of C(POST /restart)); Patroni's default is
        C(primary_start_timeout), 300 s.
      - The HTTP request waits this long plus 30 s, whatever O(timeout) says.
      - Refused with O(state=absent).
    type: int
  wait_healthy:
    description:
      - After each member's restart, and before the next member's, wait until the cluster is healthy again as
        M(pgha.patroni.patroni_wait_healthy) sees it, with the restarted member in it. That is exactly one leader,
        no pause or schedule, at least O(expected_members) members, every replica streaming within O(max_lag), and
        every member's own C(GET /patroni) saying it runs (streaming, for a replica). A replica that restarts fine
        but does not stream again fails the task here, before another member goes down.
      - Refused with O(scheduled_at) and with O(state=absent).
    type: bool
    default: false
  expected_members:
    description:
      - With O(wait_healthy), the number of members C(/cluster) must list at least (a member whose Patroni is
        stopped leaves C(/cluster)). V(0) does not check the number.
    type: int
    default: 0
  max_lag:
    description:
      - With O(wait_healthy), the largest lag allowed for each replica, as C(/cluster) reports it; bytes or a number
        with a Patroni unit V(B), V(kB), V(MB), V(GB), V(TB). Not set, lag is not checked.
    type: str
  wait_timeout:
    description: With O(wait_healthy), seconds to wait after each restart before failing.
    type: float
    default: 300
  wait_sleep:
    description: With O(wait_healthy), seconds between two polls.
    type: float
    default: 1
requirements:
  - requests
seealso:
  - module: pgha.patroni.patroni_config
author:
  - pgha maintainers (@pgha)
"""

EXAMPLES = r"""
- name: Restart every member that needs it, replicas first
  pgha.patroni.patroni_restart:
    api_url: http://10.213.0.11:8008
    all_members: true
    pending_only: true

- name: Restart the replicas one at a time, each streaming again within 16MB before the next goes down
  pgha.patroni.patroni_restart:
    api_url: http://10.213.0.11:8008
    all_members: true
    role: replica
    wait_healthy: true
    expected_members: 3
    max_lag: 16MB

- name: Restart the replicas tonight
  pgha.patroni.patroni_restart:
    api_url: http://10.213.0.11:8008
    all_members: true
    role: replica
    scheduled_at: "2026-11-28T02:00:00+00:00"

- name: Cancel the replicas' scheduled restarts
  pgha.patroni.patroni_restart:
    api_url: http://10.213.0.11:8008
    all_members: true
    role: replica
    state: absent
  register: cancelled
"""

RETURN = r"""
restarted:
  description: Members restarted (or that would be in check mode), in order.
  returned: without O(scheduled_at)
  type: list
  elements: str
  sample: ["c1m2", "c1m3", "c1m1"]
scheduled:
  description: Members where a restart was scheduled.
  returned: with O(scheduled_at)
  type: list
  elements: str
  sample: ["c1m2"]
not_restarted:
  description:
    - Members left alone, with the reason. (Not called C(skipped), which Ansible would read as a skipped task.)
  returned: with O(state=present)
  type: dict
  sample: {"c1m1": "not a replica (role=replica)"}
cancelled:
  description: Members whose scheduled restart was cancelled (or would be in check mode), in order.
  returned: with O(state=absent)
  type: list
  elements: str
  sample: ["c1m2"]
not_cancelled:
  description: Selected members whose restart was not cancelled, with the reason (nothing scheduled, another time...).
  returned: with O(state=absent)
  type: dict
  sample: {"c1m1": "no restart scheduled"}
messages:
  description: Patroni's answer per member.
  returned: always
  type: dict
  sample: {"c1m2": "restarted successfully"}
scheduled_at:
  description: The schedule sent (with O(state=absent), the schedule filter).
  returned: always
  type: str
health:
  description:
    - With O(wait_healthy), the health check that followed the last restart, as
      M(pgha.patroni.patroni_wait_healthy) returns it (C(healthy), C(members), C(member_status), C(leader)...).
    - When a wait runs out, the task fails with the same keys beside C(msg) (C(healthy) false, C(reasons)).
  returned: with O(wait_healthy), when a member was restarted
  type: dict
  sample: {"healthy": true, "leader": "c1m1", "reasons": [], "member_status": {"role": "replica", "state": "streaming"}}
msg:
  description: What was cancelled (or would be in check mode), or why nothing was.
  returned: with O(state=absent)
  type: str
  sample: cancelled the scheduled restart of c1m2 (at 2026-11-28T02:00:00+00:00)
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    connection_module_kwargs,
    member_urls_argument_spec,
    wait_sleep_argument_spec,
)
from ansible_collections.pgha.patroni.plugins.module_utils._health import health_after_restart
from ansible_collections.pgha.patroni.plugins.module_utils._operations import RestartRunner, run_operation


def main() -> None:
    kwargs = connection_module_kwargs(dict(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        members=dict(type="list", elements="str", default=[]),
        all_members=dict(type="bool", default=False),
        pending_only=dict(type="bool", default=False),
        role=dict(type="str", choices=["primary", "replica", "any"], default="any"),
        scheduled_at=dict(type="str"),
        restart_timeout=dict(type="int"),
        wait_healthy=dict(type="bool", default=False),
        expected_members=dict(type="int", default=0),
        max_lag=dict(type="str"),
        wait_timeout=dict(type="float", default=300.0),
        **wait_sleep_argument_spec(),
        **member_urls_argument_spec(),
    ))
    module = AnsibleModule(supports_check_mode=True, mutually_exclusive=[["members", "all_members"]], **kwargs)
    params = module.params

    def restart(client):
        after = None
        if params["wait_healthy"]:
            after = health_after_restart(
                client, expected_members=params["expected_members"], max_lag=params["max_lag"],
                wait_timeout=params["wait_timeout"], wait_sleep=params["wait_sleep"],
                member_api_urls=params["member_api_urls"])
        return RestartRunner(
            client, check_mode=module.check_mode, members=params["members"],
            all_members=params["all_members"], pending_only=params["pending_only"], role=params["role"],
            scheduled_at=params["scheduled_at"], restart_timeout=params["restart_timeout"],
            member_api_urls=params["member_api_urls"], state=params["state"], after_restart=after).run()

    module.exit_json(**run_operation(module, restart))


if __name__ == "__main__":
    main()

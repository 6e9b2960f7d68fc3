#!/usr/bin/python
# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: patroni_switchover
short_description: Planned switchover of a Patroni cluster to a named or the best replica, or cancel a scheduled one
version_added: 0.1.0
description:
  - Reads C(GET /cluster) from O(api_url) (or another member), then sends C(POST /switchover) to the leader and
    waits until the new primary accepts writes, with the same checks as M(pgha.patroni.patroni_wait_primary).
  - With O(candidate), the switchover goes to that member; nothing happens when it already leads.
  - Without O(candidate), the module picks the healthy streaming replica with the least lag that is not tagged
    C(nofailover) or C(noloadbalance), on the leader's timeline. With C(synchronous_mode) on, only synchronous
    standbys are considered, since Patroni refuses others.
  - With O(leader), nothing happens when that member does not lead (any more), which makes a task that moves the
    primary away from a host safe to run twice.
  - With O(scheduled_at), Patroni performs the switchover at that time; the module returns at once. The same
    schedule already present is not sent again; a different one fails the task.
  - Patroni's refusals (HTTP 400, 412, 422, 503) are turned into messages that say why, for example that the
    candidate is not the synchronous standby, that no replica is healthy, or that the cluster is paused.
  - With O(state=absent), the module cancels the scheduled switchover instead (C(DELETE /switchover), what
    C(patronictl flush <cluster> switchover) does). O(scheduled_at), O(candidate) and O(leader) then only
    select which one; when given and the scheduled switchover differs, it is left alone and RV(msg) says why.
    Nothing scheduled, or gone by the time the request arrives (cancelled elsewhere, or it ran), is unchanged.
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
      - Reports which member would take over, without contacting the leader with a POST.
      - With O(state=absent), reports the switchover that would be cancelled, without sending the DELETE.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - Idempotent with O(candidate) or O(leader). Without both, every run switches over again.
      - O(state=absent) is idempotent.
options:
  state:
    description:
      - V(present) switches over (or schedules a switchover with O(scheduled_at)).
      - V(absent) cancels the scheduled switchover of the cluster.
    type: str
    choices: [present, absent]
    default: present
  candidate:
    description:
      - Name of the member that must become the primary. When not set, the module picks one (see above).
      - Required when the cluster is paused.
      - With O(state=absent), only cancel the scheduled switchover if it goes to this member.
    type: str
  leader:
    description:
      - Name of the member that must stop leading. When another member leads already, nothing happens.
      - With O(state=absent), only cancel the scheduled switchover if it is from this member.
    type: str
  scheduled_at:
    description:
      - When Patroni should switch over, ISO 8601 with a time zone (V(2026-11-25T03:00:00+00:00) or a trailing V(Z)).
      - Times without a time zone and times in the past are refused before anything is sent.
      - With O(state=absent), only cancel the scheduled switchover if it is at this time (compared as an instant,
        so any time zone works; a time in the past is accepted).
    type: str
  wait:
    description:
      - Wait until the new primary runs and accepts writes. Ignored with O(scheduled_at).
      - Ignored with O(state=absent); Patroni has deleted the switchover from the DCS when it answers.
  wait_timeout:
    description: Seconds to wait for the new primary after Patroni answered. Ignored with O(state=absent).
    default: 120
  wait_sleep:
    description:
      - Seconds between two polls.
      - With O(state=absent), seconds before asking again after Patroni answered HTTP 409 (the DCS key changed
        under it); the module tries 3 times.
requirements:
  - requests
notes:
  - The C(POST /switchover) request uses a timeout of at least 30 seconds whatever O(timeout) says, because
    Patroni answers only after it watched the switchover for up to 2 x max(10, C(loop_wait)) seconds.
  - When Patroni answers HTTP 503 "Switchover status unknown" or does not answer in time, the module keeps
    waiting for the candidate to lead and fails with the last state seen if it does not.
  - A switchover already due runs at Patroni's next HA loop; O(state=absent) can only cancel what C(GET /cluster)
    still shows as C(scheduled_switchover).
seealso:
  - module: pgha.patroni.patroni_failover
  - module: pgha.patroni.patroni_wait_primary
author:
  - pgha maintainers (@pgha)
"""

EXAMPLES = r"""
- name: Switch over to the best replica, from c1m1 only (safe to rerun)
  pgha.patroni.patroni_switchover:
    api_url: http://10.213.0.11:8008
    leader: c1m1
    api_username: patroni_api
    api_password: "{{ vault_patroni_api_password }}"

- name: Make c1m2 the primary
  pgha.patroni.patroni_switchover:
    api_url: http://10.213.0.11:8008
    candidate: c1m2
  register: switched

- name: Schedule a switchover for the maintenance window
  pgha.patroni.patroni_switchover:
    api_url: http://10.213.0.11:8008
    candidate: c1m3
    scheduled_at: "2026-11-28T03:00:00+00:00"

- name: Cancel the scheduled switchover, whatever it is
  pgha.patroni.patroni_switchover:
    api_url: http://10.213.0.11:8008
    state: absent
    api_username: patroni_api
    api_password: "{{ vault_patroni_api_password }}"

- name: Cancel it only if it is still the one planned for the maintenance window
  pgha.patroni.patroni_switchover:
    api_url: http://10.213.0.11:8008
    state: absent
    candidate: c1m3
    scheduled_at: "2026-11-28T03:00:00Z"
"""

RETURN = r"""
msg:
  description: What happened, or would happen in check mode.
  returned: always
  type: str
  sample: cluster c1 switched over from c1m1 to c1m2
previous_primary:
  description: The leader before the task.
  returned: always
  type: str
  sample: c1m1
primary:
  description: The leader after the task (the one found by waiting).
  returned: always
  type: str
  sample: c1m2
candidate:
  description: The member asked to take over (V(null) for a scheduled switchover without O(candidate)).
  returned: when changed with O(state=present)
  type: str
  sample: c1m2
scheduled_at:
  description:
    - The schedule sent or already present.
    - With O(state=absent), the time of the scheduled switchover found (V(null) when none).
  returned: always
  type: str
  sample: "2026-11-28T03:00:00+00:00"
scheduled_switchover:
  description:
    - The scheduled switchover C(GET /cluster) showed (keys C(at), C(from), C(to)), cancelled or not; V(null) when
      none was scheduled.
  returned: with O(state=absent)
  type: dict
  sample: {"at": "2026-11-28T03:00:00+00:00", "from": "c1m1", "to": "c1m3"}
answer:
  description: Patroni's answer to C(POST /switchover), or to C(DELETE /switchover) with O(state=absent).
  returned: when a switchover was requested or cancelled
  type: str
  sample: Successfully switched over to "c1m2"
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
  sample: 3.2
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    connection_module_kwargs,
    member_urls_argument_spec,
    wait_argument_spec,
)
from ansible_collections.pgha.patroni.plugins.module_utils._operations import run_operation
from ansible_collections.pgha.patroni.plugins.module_utils._switchover import SwitchoverRunner


def main() -> None:
    module = AnsibleModule(
        supports_check_mode=True,
        **connection_module_kwargs(dict(
            state=dict(type="str", choices=["present", "absent"], default="present"),
            candidate=dict(type="str"),
            leader=dict(type="str"),
            scheduled_at=dict(type="str"),
            **wait_argument_spec(wait_timeout=120.0),
            **member_urls_argument_spec(),
        )),
    )
    params = module.params
    result = run_operation(module, lambda client: SwitchoverRunner(
        client, check_mode=module.check_mode, candidate=params["candidate"],
        leader=params["leader"], scheduled_at=params["scheduled_at"], wait=params["wait"],
        wait_timeout=params["wait_timeout"], wait_sleep=params["wait_sleep"],
        member_api_urls=params["member_api_urls"], state=params["state"]).run())
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: patroni_wait_healthy
short_description: Wait until a Patroni cluster is healthy enough to lose a member
version_added: 0.1.0
description:
  - Given any member's REST API URL, asks C(GET /cluster) until the cluster could lose one member without harm,
    for example before restarting, patching or rebooting the next member, or after maintenance to know the cluster
    is whole again.
  - "Healthy means all of: exactly one member holds the leader lock (V(leader), or V(standby_leader) in a standby
    cluster); at least O(expected_members) members are in C(/cluster); every other member is streaming (state
    V(streaming), or V(running) on Patroni before 3.0.4), on the leader's timeline, and, with O(max_lag), lags at
    most that much; the cluster is not paused; no switchover and no restart is scheduled."
  - A paused cluster or a scheduled switchover or restart fails at once, since waiting does not change them. Every
    other reason is waited out up to O(wait_timeout); then the task fails naming every reason still seen and the
    URL asked (without credentials).
  - With O(member), the member's own C(GET /patroni) must also say PostgreSQL is running and, for a replica,
    streaming (C(/cluster) can show the state of the last HA loop, up to C(loop_wait) seconds old), and the result
    returns that answer in RV(member_status), so a playbook can decide whether the member needs a restart
    (C(pending_restart), C(postmaster_start_time)) without another task.
  - C(/cluster) is asked from O(api_url) first, then from every other member known; a member that refuses, resets,
    times out or answers 503 is waited out. TLS and authentication errors fail at once, since waiting cannot fix
    them.
  - Never reports C(changed), since it only reads.
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
    description:
      - Seconds to wait for the cluster to become healthy before failing. V(0) checks once.
    type: float
    default: 60
  expected_members:
    description:
      - Minimum number of members C(/cluster) must list. A member whose Patroni is stopped leaves C(/cluster), so
        without this a cluster with a member down can look healthy.
      - V(0) does not check the number.
    type: int
    default: 0
  max_lag:
    description:
      - Largest lag allowed for each replica, as C(/cluster) reports it (bytes behind the leader's position in the
        DCS). A replica whose lag is unknown fails this check.
      - Bytes (V(1048576)) or a number with a Patroni unit V(B), V(kB), V(MB), V(GB), V(TB) (case-sensitive).
      - Not set, lag is not checked.
    type: str
  member:
    description:
      - Name of a member (as in C(/cluster)) that is judged by its own C(GET /patroni), asked on every poll and
        returned in RV(member_status). It must say it runs; a replica must also say it streams, on the leader's
        timeline, within O(max_lag) of the leader's WAL position as the leader answers it (asked too when O(max_lag)
        is set).
      - What that answer says counts over the member's entry in C(/cluster), which is as old as the member's last HA
        loop (up to C(loop_wait) seconds). Right after a switchover, C(/cluster) can list the old primary as stopped
        while it already streams; the wait ends when the member does, not a loop later.
    type: str
  all_members_status:
    description:
      - Judge every member as O(member) judges one, asking each for its own C(GET /patroni) on every poll (all at
        once), and return the answers in RV(member_statuses) once the cluster is healthy, for example to decide up
        front which members need a restart.
      - Every member must say it is running, and every replica that its replication is streaming (Patroni 3.0.4 and
        later say it), on the leader's timeline, within O(max_lag). C(/cluster) shows each member as of its last HA
        loop, so right after the primary restarted it can still list a replica as streaming while the replica
        reconnects.
    type: bool
    default: false
requirements:
  - requests
notes:
  - Lag in C(/cluster) is measured against the leader position Patroni last wrote to the DCS, so it can be up
    to C(loop_wait) seconds old.
  - Each poll is a few HTTP requests from the host running the task, not a new task run, so waiting long is cheap;
    this is what makes it scale to many clusters waited on at once.
seealso:
  - module: pgha.patroni.patroni_wait_primary
  - module: pgha.patroni.patroni_facts
  - module: pgha.patroni.patroni_maintenance
author:
  - pgha maintainers (@pgha)
"""

EXAMPLES = r"""
- name: After maintenance, wait until all three members are back and streaming within 16MB
  pgha.patroni.patroni_wait_healthy:
    api_url: http://10.213.0.11:8008
    member_api_urls:
      - http://10.213.0.12:8008
      - http://10.213.0.13:8008
    expected_members: 3
    max_lag: 16MB
    wait_timeout: 300

- name: Before patching the next member, check it once, and learn whether it needs a restart
  pgha.patroni.patroni_wait_healthy:
    api_url: http://10.213.0.11:8008
    expected_members: 3
    max_lag: 1MB
    member: c1m2
    wait_timeout: 60
  register: health

- name: Restart c1m2 only when Patroni says a changed setting needs it
  pgha.patroni.patroni_restart:
    api_url: http://10.213.0.11:8008
    members: [c1m2]
    pending_only: true
  when: health.member_status.pending_restart

- name: Collect the reasons instead of failing, for a report
  pgha.patroni.patroni_wait_healthy:
    api_url: https://db1.example.com:8008
    ca_path: /etc/pgha/ca.crt
    wait_timeout: 0
  register: health
  failed_when: false

- name: Show why the cluster is not healthy
  ansible.builtin.debug:
    msg: "{{ health.reasons | join('; ') }}"
  when: not health.healthy | default(false)

- name: Set the connection once for every pgha.patroni module
  module_defaults:
    group/pgha.patroni.patroni:
      api_username: patroni
      api_password: "{{ vault_patroni_api_password }}"
  block:
    - name: Wait until the cluster is healthy
      pgha.patroni.patroni_wait_healthy:
        api_url: http://10.213.0.11:8008
        expected_members: 3
"""

RETURN = r"""
healthy:
  description: Whether the cluster met every condition. V(false) only when the task failed.
  returned: always, except when the options or the connection settings were refused
  type: bool
  sample: true
reasons:
  description:
    - Why the cluster is not healthy, as sentences; empty on success. Each names the member and what to do where
      that is known, for example C(c1m2 is starting, not streaming) or C(the cluster is paused (maintenance mode)
      ...).
  returned: always, except when the options or the connection settings were refused
  type: list
  elements: str
  sample: ["c1m3 lags 20971520 bytes, more than 1048576 (max_lag 1MB)"]
blocked:
  description: V(true) when the task failed at once because the cluster is paused or has a switchover or restart
    scheduled.
  returned: failure
  type: bool
  sample: false
scope:
  description: Name of the cluster (from C(/cluster), or from the member's own answer on Patroni before 3.2).
  returned: success
  type: str
  sample: c1
leader:
  description: Name of the member holding the leader lock.
  returned: success
  type: str
  sample: c1m1
timeline:
  description: Timeline of the leader.
  returned: success
  type: int
  sample: 2
members:
  description:
    - The members as the last C(GET /cluster) showed them, in the form of
      RV(pgha.patroni.patroni_facts#module:ansible_facts.patroni.cluster.members) (role V(primary) for the leader,
      C(lag), C(timeline), C(tags), C(api_url), C(pending_restart), ...).
    - A member judged by its own answer (O(member), O(all_members_status)) is shown as it answered, with its C(state),
      C(streaming), C(timeline), and C(lag) against the leader's answer when O(max_lag) had it asked.
  returned: always, V(null) if no member ever answered
  type: list
  elements: dict
member_status:
  description:
    - With O(member), that member's own C(GET /patroni) in the form of
      RV(pgha.patroni.patroni_facts#module:ansible_facts.patroni); V(null) without O(member).
  returned: always, except when the options or the connection settings were refused
  type: dict
  contains:
    name:
      description: Member name.
      type: str
      sample: c1m2
    role:
      description: V(primary), V(replica) or V(standby_leader).
      type: str
      sample: replica
    state:
      description: PostgreSQL state as Patroni sees it.
      type: str
      sample: running
    replication_state:
      description: V(streaming) or V(in archive recovery) on a replica, V(null) on a primary or before Patroni 3.0.4.
      type: str
      sample: streaming
    pending_restart:
      description: Whether a changed setting waits for a restart of PostgreSQL.
      type: bool
      sample: true
    pending_restart_reason:
      description: Per parameter, the old and new value (Patroni 4.0 and later).
      type: dict
      sample: {"wal_buffers": {"old_value": "1MB", "new_value": "2MB"}}
    postmaster_start_time:
      description: When PostgreSQL started, as Patroni prints it.
      type: str
      sample: "2026-11-25 10:16:12.000001+00:00"
    timeline:
      description: Timeline of the member.
      type: int
      sample: 2
    api_url:
      description: The member's REST API URL as it publishes it.
      type: str
      sample: http://10.213.0.12:8008/patroni
member_statuses:
  description:
    - With O(all_members_status), every member's own C(GET /patroni) by member name, each in the form of
      RV(member_status); V(null) without it or when the task failed.
  returned: success
  type: dict
  sample: {"c1m1": {"name": "c1m1", "role": "primary", "state": "running", "pending_restart": false}}
elapsed:
  description: Seconds waited.
  returned: always, except when the options or the connection settings were refused
  type: float
  sample: 4.021
polls:
  description: How many times C(/cluster) was asked.
  returned: always, except when the options or the connection settings were refused
  type: int
  sample: 5
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    connection_module_kwargs,
    member_urls_argument_spec,
    wait_sleep_argument_spec,
)
from ansible_collections.pgha.patroni.plugins.module_utils._health import wait_for_health
from ansible_collections.pgha.patroni.plugins.module_utils._operations import run_operation


def main() -> None:
    module = AnsibleModule(
        supports_check_mode=True,
        **connection_module_kwargs(dict(
            wait_timeout=dict(type="float", default=60.0),
            **wait_sleep_argument_spec(),
            expected_members=dict(type="int", default=0),
            max_lag=dict(type="str"),
            member=dict(type="str"),
            all_members_status=dict(type="bool", default=False),
            **member_urls_argument_spec(),
        )),
    )
    params = module.params
    result = run_operation(module, lambda client: wait_for_health(
        client,
        check_mode=module.check_mode,
        expected_members=params["expected_members"],
        max_lag=params["max_lag"],
        member=params["member"],
        all_members_status=params["all_members_status"],
        wait_timeout=params["wait_timeout"],
        wait_sleep=params["wait_sleep"],
        member_api_urls=params["member_api_urls"],
    ))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()

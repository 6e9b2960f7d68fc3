# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The drain script of playbooks/tasks/rolling_restart_lb_drain.yml, run as the task runs it (python3 -c, the
installed runtime helper beside it) against a fake HAProxy runtime API: which pools a member leaves, which it keeps,
what goes back first, and what a refusal stops."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import haproxy  # noqa: F401 pylint: disable=unused-import

REPO = Path(__file__).resolve().parents[3]
HELPER = REPO / "roles" / "patroni_haproxy" / "files" / "pgha_haproxy_runtime.py"
TASKS = yaml.safe_load((REPO / "playbooks" / "tasks" / "rolling_restart_lb_drain.yml").read_text())
DRAIN = next(task["vars"]["__drain"] for task in TASKS if "__drain" in task.get("vars", {}))

HEADER = ("1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
          "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state\n")


def servers_state(rows: list[tuple[str, str, int, int]]) -> str:
    """`show servers state` for (pool, server, operational state (2 = UP), admin state (0 = ready)) rows."""
    ids = {pool: n for n, pool in enumerate(dict.fromkeys(r[0] for r in rows), start=3)}
    return HEADER + "".join(f"{ids[pool]} {pool} {n} {server} 10.213.0.{n} {op} {admin} 1 1 7 6 3 4 6\n"
                            for n, (pool, server, op, admin) in enumerate(rows, start=1))


# c1m1 leads; the write pools (c1_primary, and c1_primary_sync kept by the user) have it UP alone, the read pool
# has the replicas UP; c1m3 is also in an operator's maintenance (admin state 1) in c1_backup.
FLEET = servers_state([
    ("c1_primary", "c1m1", 2, 0), ("c1_primary", "c1m2", 0, 0), ("c1_primary", "c1m3", 0, 0),
    ("c1_primary_sync", "c1m1", 2, 0), ("c1_primary_sync", "c1m2", 0, 0),
    ("c1_replicas", "c1m1", 0, 0), ("c1_replicas", "c1m2", 2, 0), ("c1_replicas", "c1m3", 2, 0),
    ("c1_backup", "c1m3", 2, 1),
])


def drain(sock: str, server: str, ours: str = "", ready: str = "", keep: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", DRAIN, str(HELPER), sock, server, ours, ready, *keep],
                          capture_output=True, text=True, timeout=30, check=False)


def test_a_replica_leaves_every_pool_it_is_ready_in_and_the_previous_member_goes_back_first(haproxy):
    haproxy.answers["show servers state"] = FLEET
    done = drain(haproxy.path, "c1m3", ready="c1_replicas/c1m2")
    assert done.returncode == 0, done.stderr
    # back before anyone leaves, so the read pool never loses both replicas
    assert haproxy.commands == ["set server c1_replicas/c1m2 state ready", "show servers state",
                                "set server c1_primary/c1m3 state drain", "set server c1_replicas/c1m3 state drain"]
    # c1_backup is an operator's maintenance: not touched, so not reported for the rescue to "undo"
    assert done.stdout.splitlines() == ["drained c1_primary", "drained c1_replicas"]


def test_the_leader_keeps_the_write_pools_it_alone_serves_and_the_pools_a_user_keeps(haproxy):
    haproxy.answers["show servers state"] = FLEET
    done = drain(haproxy.path, "c1m1", ours="c1m1,c1m2,c1m3", keep=("c1_primary_sync",))
    assert done.returncode == 0, done.stderr
    # write pools are reported for the switchover to move, not drained under the writers
    assert done.stdout.splitlines() == ["write c1_primary", "write c1_primary_sync", "drained c1_replicas"]
    assert haproxy.sets() == ["set server c1_replicas/c1m1 state drain"]


def test_a_refused_drain_stops_with_the_socket_and_command_after_reporting_what_was_drained(haproxy):
    haproxy.answers["show servers state"] = FLEET
    haproxy.answers["set server c1_replicas/c1m3 state drain"] = "No such server.\n"
    done = drain(haproxy.path, "c1m3")
    assert done.returncode == 1
    assert done.stderr.strip() == (f"HAProxy runtime API {haproxy.path} refused "
                                   "'set server c1_replicas/c1m3 state drain': No such server.")
    # what did leave a pool is on stdout, so the rescue can put it back
    assert done.stdout.splitlines() == ["drained c1_primary"]


def test_a_refused_ready_stops_before_anything_is_drained(haproxy):
    haproxy.answers["show servers state"] = FLEET
    haproxy.answers["set server c1_replicas/c1m2 state ready"] = "No such backend.\n"
    done = drain(haproxy.path, "c1m3", ready="c1_replicas/c1m2")
    assert done.returncode == 1
    assert done.stderr.strip() == (f"HAProxy runtime API {haproxy.path} refused "
                                   "'set server c1_replicas/c1m2 state ready': No such backend.")
    assert haproxy.commands == ["set server c1_replicas/c1m2 state ready"] and done.stdout == ""


def test_an_unreachable_socket_names_it(tmp_path):
    sock = str(tmp_path / "absent.sock")
    done = drain(sock, "c1m3")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"HAProxy runtime API {sock} not reachable: ")

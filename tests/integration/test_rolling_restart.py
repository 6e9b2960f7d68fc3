"""playbooks/rolling_restart.yml on a lab of 3 clusters with HAProxy on lb1 (issue 5, fleet rollout).

A change that needs a restart (wal_buffers through patroni_config) leaves every member pending_restart; the
playbook then restarts the fleet while a writer and a reader per cluster go through HAProxy (clients and analysis
are bench/rolling_restart.py's). Tests run in file order and share the lab.
"""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from rolling_restart import LAB_HAPROXY, ROLLING_RESTART, figures_ok, rollout  # noqa: E402

FLEET = {"pgha_rolling_restart_batch": 3, "pgha_rolling_restart_max_failed_clusters": 3}


def started(lab, scope: str) -> dict[str, str]:
    return {host: requests.get(lab.api(host) + "/patroni", timeout=5).json()["postmaster_start_time"]
            for host in lab.members(scope)}


def pending(lab, scope: str) -> dict[str, bool]:
    return {host: bool(requests.get(lab.api(host) + "/patroni", timeout=5).json().get("pending_restart"))
            for host in lab.members(scope)}


def make_pending(lab, run_module, scopes: list[str]) -> None:
    """Change wal_buffers (a restart-only parameter the lab's patroni.yml leaves to the DCS) and wait for
    pending_restart on every member."""
    for scope in scopes:
        config = requests.get(lab.api(lab.members(scope)[0]) + "/config", timeout=5).json()
        now = str(config.get("postgresql", {}).get("parameters", {}).get("wal_buffers", "1MB"))
        result = run_module(lab.members(scope)[0], "pgha.patroni.patroni_config", {
            "api_url": lab.api(lab.members(scope)[0]),
            "config": {"postgresql": {"parameters": {"wal_buffers": f"{int(now.rstrip('MB')) % 8 + 1}MB"}}}})
        assert not result.failed, result
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all(all(pending(lab, scope).values()) for scope in scopes):
            return
        time.sleep(1)
    seen = {scope: pending(lab, scope) for scope in scopes}
    pytest.fail(f"not every member of {scopes} became pending_restart within 60 s: {seen}")


def lb_admin_states(lab) -> dict[str, str]:
    out = lab.ssh("lb1", "python3 /usr/local/lib/pgha/pgha_haproxy_runtime.py /run/haproxy/admin.sock "
                         "'show servers state'").stdout
    return {f"{f[1]}/{f[3]}": f[6] for f in (line.split() for line in out.splitlines()[2:]) if len(f) > 6}


@pytest.fixture(scope="module")
def fleet(lab, run_playbook):
    if len(lab.clusters) < 3:
        pytest.skip("needs a lab of 3 clusters (pgha_lab.py up --clusters 3)")
    haproxy = run_playbook(str(LAB_HAPROXY))
    assert haproxy.rc == 0, haproxy
    scopes = sorted(lab.clusters)[:3]
    for scope in scopes:
        lab.settled(scope)
    return scopes


def test_nothing_pending_changes_nothing(fleet, run_playbook):
    run = run_playbook(str(ROLLING_RESTART), extra_vars=FLEET)
    assert run.rc == 0, run
    assert run.changed() == 0, run


def test_rollout_restarts_every_member_with_one_switchover_per_cluster(fleet, lab, run_module, run_playbook):
    make_pending(lab, run_module, fleet)
    before = {scope: started(lab, scope) for scope in fleet}

    check = run_playbook(str(ROLLING_RESTART), extra_vars=FLEET, check=True)
    assert check.rc == 0, check
    for scope in fleet:
        assert f"{scope}: would switch over from" in check.stdout, check
    assert {scope: started(lab, scope) for scope in fleet} == before, "check mode restarted something"

    wall, run, figures = rollout(lab, fleet, FLEET, "test")
    print(f"rollout of {len(fleet)} clusters in {wall:.1f} s: {figures}")
    assert run.rc == 0, run
    after = {scope: started(lab, scope) for scope in fleet}
    for scope in fleet:
        unchanged = [host for host in lab.members(scope) if after[scope][host] == before[scope][host]]
        assert not unchanged, f"{scope}: postmaster_start_time unchanged on {unchanged}"
        assert not any(pending(lab, scope).values()), f"{scope}: still pending_restart {pending(lab, scope)}"
        assert len(figures[scope]["switchovers"]) == 1, figures[scope]
    assert not figures_ok(figures), figures_ok(figures)
    assert set(lb_admin_states(lab).values()) == {"0"}, f"servers left drained: {lb_admin_states(lab)}"
    # each switchover's helper on lb1 switched HAProxy itself: the fallback task never had to
    assert "did not switch HAProxy" not in run.stdout, run
    assert not re.search(r"TASK \[[^]]*Put the new primary in service at once\][^\n]*\n(ok|changed):", run.stdout), run

    again = run_playbook(str(ROLLING_RESTART), extra_vars=FLEET)
    assert again.rc == 0, again
    assert again.changed() == 0, again


def test_failed_gate_stops_that_cluster_only(fleet, lab, run_module, run_playbook):
    paused = fleet[1]
    make_pending(lab, run_module, fleet)
    before = {scope: started(lab, scope) for scope in fleet}
    pause = run_module(lab.members(paused)[0], "pgha.patroni.patroni_maintenance",
                       {"api_url": lab.api(lab.members(paused)[0]), "state": "paused"})
    assert not pause.failed, pause
    try:
        run = run_playbook(str(ROLLING_RESTART), extra_vars=FLEET)
    finally:
        resume = run_module(lab.members(paused)[0], "pgha.patroni.patroni_maintenance",
                            {"api_url": lab.api(lab.members(paused)[0]), "state": "resumed"})
        assert not resume.failed, resume
    assert run.rc != 0, run
    assert f"{paused}: not restarting the cluster: the cluster is paused" in run.stdout, run
    after = {scope: started(lab, scope) for scope in fleet}
    assert after[paused] == before[paused], f"{paused} was paused yet restarted"
    for scope in fleet:
        if scope != paused:
            assert all(after[scope][h] != before[scope][h] for h in lab.members(scope)), (scope, before, after)
    assert set(lb_admin_states(lab).values()) == {"0"}, f"servers left drained: {lb_admin_states(lab)}"
    lab.settled(paused)


def test_replica_restarted_last_goes_back_when_the_leader_needs_nothing(fleet, lab, run_module, run_playbook):
    """No drain follows the last replica's restart when the leader needs none: the end of the cluster puts it back."""
    scope = fleet[1]  # the previous test left it pending_restart on every member
    if not all(pending(lab, scope).values()):
        make_pending(lab, run_module, [scope])
    leader = lab.leader(scope)
    last, *first = sorted((h for h in lab.members(scope) if h != leader), reverse=True)
    # everyone but the replica the rollout takes last (replicas go in name order) restarts now, outside the rollout
    done = run_module(leader, "pgha.patroni.patroni_restart", {
        "api_url": lab.api(leader), "members": [leader, *first], "pending_only": True, "wait_healthy": True})
    assert not done.failed, done
    assert pending(lab, scope) == {h: h == last for h in lab.members(scope)}, pending(lab, scope)
    before = started(lab, scope)

    run = run_playbook(str(ROLLING_RESTART), extra_vars={"pgha_rolling_restart_members": f"cluster_{scope}"})
    assert run.rc == 0, run
    after = started(lab, scope)
    assert [h for h in lab.members(scope) if after[h] != before[h]] == [last], (before, after)
    assert re.search(rf"{scope}:\s+restarted {last};\s+switchover none", run.stdout), run
    assert set(lb_admin_states(lab).values()) == {"0"}, f"servers left drained: {lb_admin_states(lab)}"

"""The patroni inventory plugin and the patroni_primary lookup against a real lab of 2 clusters."""
from __future__ import annotations

import json
import subprocess
import time

import pytest
import requests

import labkit

# patronictl list -f json says "Leader", "Replica", "Sync Standby"...; the inventory puts them in these groups
PATRONICTL_ROLE_GROUPS = {"Leader": "primary", "Replica": "replica", "Sync Standby": "replica",
                          "Quorum Standby": "replica", "Standby Leader": "standby_leader"}


def _plain(value):
    """ansible-inventory --list marks strings that came from a plugin as {"__ansible_unsafe": ...}: they are data
    from Patroni, never templated. The comparison is about the values."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _write_source(tmp_path, lab, seeds=None, **extra):
    """A .patroni.yml with every lab cluster, seeds in member order unless given."""
    seeds = seeds or {}
    clusters = [{"name": scope, "urls": seeds.get(scope) or [lab.api(h) for h in members]}
                for scope, members in sorted(lab.clusters.items())]
    path = tmp_path / "lab.patroni.yml"
    config = {"plugin": "pgha.patroni.patroni", "clusters": clusters, "timeout": 3}
    config.update(extra)
    path.write_text(json.dumps(config))
    return path


def _inventory(source, venv=None, extra=()):
    venv = venv or labkit.ANSIBLE_VENV
    proc = subprocess.run([str(venv / "bin" / "ansible-inventory"), "-i", str(source), "--list", *extra],
                          capture_output=True, text=True, env=labkit.ansible_env(venv), timeout=120, check=False)
    assert proc.returncode == 0, f"ansible-inventory rc={proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr}"
    data = _plain(json.loads(proc.stdout))
    return data, proc.stderr


def _group(data, name):
    return sorted(data.get(name, {}).get("hosts", []))


def _hostvars(data):
    return data["_meta"]["hostvars"]


def _assert_matches_patronictl(lab, data, scope, members=None):
    rows = lab.patronictl_list(members[0] if members else lab.members(scope)[0])
    rows = [r for r in rows if r["Cluster"] == scope]
    assert rows, f"patronictl list shows nothing for {scope}"
    hostvars = _hostvars(data)
    assert _group(data, scope) == sorted(r["Member"] for r in rows)
    for row in rows:
        name = row["Member"]
        group = PATRONICTL_ROLE_GROUPS[row["Role"]]
        assert name in _group(data, group), f"{name} is {row['Role']} per patronictl, not in group {group}"
        assert name in _group(data, f"{scope}_{group}")
        assert (name in _group(data, "sync_standby")) == (row["Role"] == "Sync Standby")
        got = hostvars[name]
        assert got["patroni_state"] == row["State"], (name, got["patroni_state"], row["State"])
        assert str(row["Host"]).split(":", maxsplit=1)[0] == got["patroni_host"] == got["ansible_host"] == lab.ip(name)
        assert got["patroni_port"] == 5432 and got["patroni_scope"] == scope
        assert got["patroni_api_url"] == lab.api(name)
        if row.get("TL") not in (None, ""):
            assert got["patroni_timeline"] == int(row["TL"])
    return rows


@pytest.mark.parametrize("venv", ["ac221", "ac219"])
def test_inventory_equals_patronictl_list(lab, tmp_path, venv):
    scopes = sorted(lab.clusters)
    assert len(scopes) == 2, "this test wants a lab of 2 clusters (--clusters 2)"
    for scope in scopes:
        lab.settled(scope)
    data, stderr = _inventory(_write_source(tmp_path, lab), labkit.REPO / ".venv" / venv)
    assert "WARNING" not in stderr, stderr
    for scope in scopes:
        rows = _assert_matches_patronictl(lab, data, scope)
        print(f"{venv} {scope}: {len(rows)} members agree with patronictl list")
    assert _group(data, "primary") == sorted(lab.leader(s) for s in scopes)


def test_role_groups_follow_a_switchover_and_cache_until_flushed(lab, tmp_path):
    scope = "c1"
    leader = lab.settled(scope)
    candidate = next(h for h in lab.members(scope) if h != leader)
    source = _write_source(tmp_path, lab, cache=True, cache_plugin="ansible.builtin.jsonfile",
                           cache_connection=str(tmp_path / "cache"), cache_timeout=3600)
    before = _inventory(source)[0]
    assert _group(before, "c1_primary") == [leader]

    response = requests.post(lab.api(leader) + "/switchover", json={"leader": leader, "candidate": candidate},
                             timeout=90)
    assert response.status_code == 200, response.text
    assert lab.leader(scope) == candidate
    started = time.monotonic()
    cached = _inventory(source)[0]
    # the cache answers without asking Patroni, so it still has the old primary...
    assert _group(cached, "c1_primary") == [leader]
    # ...until the cache is flushed, as `meta: refresh_inventory` or --flush-cache do
    fresh = _inventory(source, extra=["--flush-cache"])[0]
    assert _group(fresh, "c1_primary") == [candidate]
    assert leader in _group(fresh, "c1_replica") and candidate not in _group(fresh, "c1_replica")
    assert _hostvars(fresh)[candidate]["patroni_role"] == "primary"
    assert _hostvars(fresh)[leader]["patroni_leader"] == candidate
    print(f"switchover {leader} -> {candidate}: flushed inventory names the new primary "
          f"{time.monotonic() - started:.1f} s after the switchover")
    lab.settled(scope)
    _assert_matches_patronictl(lab, _inventory(source, extra=["--flush-cache"])[0], scope)


def test_lookup_names_the_leader_in_templates_and_delegate_to(lab, tmp_path):
    scope = "c2"
    leader = lab.settled(scope)
    source = _write_source(tmp_path, lab)
    out = tmp_path / "primary.json"
    # the lab inventory brings the SSH settings, the plugin's source the groups and patroni_* variables
    run = labkit.run_playbook(lab.inventory, labkit.REPO / "tests/integration/playbooks/inventory_lookup.yml",
                              extra_vars={"inventory_lookup_scope": scope, "inventory_lookup_out": str(out)},
                              extra_args=["-i", str(source)], timeout=300)
    assert run.rc == 0, run
    found = json.loads(out.read_text())
    assert found == {"name": leader, "host": lab.ip(leader), "port": 5432, "api_url": lab.api(leader),
                     "timeline": found["timeline"]}
    assert found["timeline"] == requests.get(lab.api(leader) + "/patroni", timeout=5).json()["timeline"]


def test_stopped_member_is_reported_not_fatal(lab, tmp_path):
    scope = "c2"
    leader = lab.settled(scope)
    stopped = next(h for h in lab.members(scope) if h != leader)
    others = [h for h in lab.members(scope) if h != stopped]
    # the stopped member is the first seed, so the plugin and the lookup must move on to the next
    seeds = {scope: [lab.api(stopped)] + [lab.api(h) for h in others]}
    lab.ssh(stopped, "service patroni stop")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            names = [m["name"] for m in requests.get(lab.api(leader) + "/cluster", timeout=5).json()["members"]]
            if stopped not in names:
                break
            time.sleep(0.5)
        data, stderr = _inventory(_write_source(tmp_path, lab, seeds=seeds))
        assert f"cluster {scope}: seed {lab.api(stopped)} did not answer" in stderr.replace("\n", " "), stderr
        assert "connection refused" in stderr
        assert _group(data, scope) == sorted(others)
        assert _group(data, f"{scope}_primary") == [leader]
        assert _group(data, "c1") == sorted(lab.members("c1")), "the other cluster must load as usual"
        _assert_matches_patronictl(lab, data, scope, members=[leader])

        proc = subprocess.run(
            [str(labkit.ANSIBLE_VENV / "bin" / "ansible"), "localhost", "-o", "-m", "ansible.builtin.debug", "-a",
             "msg={{ lookup('pgha.patroni.patroni_primary', " + json.dumps(seeds[scope]) + ") | to_json }}"],
            capture_output=True, text=True, env=labkit.ansible_env(), timeout=120, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f'"name": "{leader}"' in proc.stdout.replace('\\"', '"'), proc.stdout
    finally:
        lab.ssh(stopped, "service patroni start")
    lab.settled(scope)


def test_unreachable_cluster_warns_strict_fails(lab, tmp_path):
    # a lab host without Patroni: its port 8008 refuses the connection
    nowhere = f"http://{lab.ip('client1')}:8008"
    seeds = {"c2": [nowhere]}
    data, stderr = _inventory(_write_source(tmp_path, lab, seeds=seeds, timeout=2))
    flat = stderr.replace("\n", " ")
    assert "cluster c2: no seed of cluster c2 answered GET /cluster" in flat, stderr
    assert f"connection refused by {lab.ip('client1')}:8008" in flat and "set strict: true to fail instead" in flat
    assert _group(data, "c1") == sorted(lab.members("c1")) and "c2" not in data

    strict = _write_source(tmp_path, lab, seeds=seeds, timeout=2, strict=True)
    proc = subprocess.run([str(labkit.ANSIBLE_VENV / "bin" / "ansible-inventory"), "-i", str(strict), "--list"],
                          capture_output=True, text=True, env=dict(labkit.ansible_env(),
                                                                   ANSIBLE_INVENTORY_UNPARSED_FAILED="1"),
                          timeout=120, check=False)
    assert proc.returncode != 0
    assert "no seed of cluster c2 answered GET /cluster" in proc.stderr.replace("\n", " ")

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""patroni_tls + patroni_api_security on a live lab cluster that starts on plain HTTP.

The tests run in file order and build on each other (one rollout, then checks, then reruns); they need a fresh lab
(`lab/pgha_lab.py up`) whose directory is in PGHA_LAB_DIR. Fixtures are private to this file (names prefixed tl_)
so they do not depend on the shared conftest while it changes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
LAB_DIR = Path(os.environ.get("PGHA_LAB_DIR", REPO / ".lab"))
VENV = Path(os.environ.get("PGHA_ANSIBLE_VENV", REPO / ".venv" / "ac221"))
PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "tls_secure_api.yml"
PASSWORD = "tl-Int3gration-Pw"
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
STATE: dict = {}


class TlLab:
    def __init__(self, lab_dir: Path):
        self.dir = lab_dir
        self.data = json.loads((lab_dir / "lab.json").read_text())
        self.members = list(self.data["clusters"]["c1"])
        self.ca = lab_dir / "pki" / "ca.crt"
        self.controller = self.data["bridge"]["ip"]

    def ip(self, host: str) -> str:
        return self.data["hosts"][host]["ip"]

    def ssh(self, host: str, cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["ssh", "-F", str(self.dir / "ssh_config"), host, cmd], capture_output=True, text=True,
                              timeout=120, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"ssh {host} {cmd!r} exited {proc.returncode}: {proc.stderr[-1500:]}")
        return proc

    def status(self, host: str, https: bool) -> dict:
        url = f"{'https' if https else 'http'}://{self.ip(host)}:8008/patroni"
        return requests.get(url, verify=str(self.ca) if https else True, timeout=5).json()

    def leader(self, https: bool) -> str:
        for host in self.members:
            if self.status(host, https)["role"] in ("primary", "master"):
                return host
        raise AssertionError("no primary among " + ", ".join(self.members))

    def snapshot(self, https: bool) -> dict:
        return {h: (s["role"], s["timeline"], s["postmaster_start_time"])
                for h in self.members for s in [self.status(h, https)]}


@pytest.fixture(scope="module")
def tl_lab() -> TlLab:
    if not (LAB_DIR / "lab.json").exists():
        pytest.skip(f"no lab at {LAB_DIR}; start one with lab/pgha_lab.py up --dir {LAB_DIR}")
    return TlLab(LAB_DIR)


def run_playbook(lab: TlLab, order: list, check: bool = False, diff: bool = False, extra: dict | None = None,
                 limit: str | None = None) -> tuple:
    build = Path(os.environ.get("PGHA_BUILD_DIR", "/var/tmp/pgha-build"))
    (build / "ansible_collections" / "pgha").mkdir(parents=True, exist_ok=True)
    link = build / "ansible_collections" / "pgha" / "patroni"
    if not link.exists():
        link.symlink_to(REPO)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(build), ANSIBLE_PIPELINING="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="default")
    extra_vars = {"tls_members": ",".join(order), "tls_controller_address": lab.controller,
                  "tls_api_password": PASSWORD}
    extra_vars.update(extra or {})
    cmd = [str(VENV / "bin" / "ansible-playbook"), "-i", str(lab.dir / "inventory.yml"), str(PLAYBOOK),
           "-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if limit:
        cmd += ["--limit", limit]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1500, check=False)
    recap = {m[0]: {"ok": int(m[1]), "changed": int(m[2]), "unreachable": int(m[3]), "failed": int(m[4])}
             for m in RECAP.findall(proc.stdout)}
    return proc.returncode, proc.stdout + proc.stderr, recap, time.monotonic() - started


# Check mode changes nothing, so its runs take all members in one batch instead of one at a time (tls_serial).
ALL_AT_ONCE = {"tls_serial": "100%"}


def test_check_mode_on_plain_cluster_changes_nothing(tl_lab):
    before = {h: tl_lab.ssh(h, "md5sum /etc/patroni/patroni.yml; ls /etc/patroni").stdout for h in tl_lab.members}
    rc, out, recap, dummy = run_playbook(tl_lab, tl_lab.members, check=True, diff=True, extra=ALL_AT_ONCE)
    assert rc == 0, out[-4000:]
    assert PASSWORD not in out and "PRIVATE KEY" not in out
    assert before == {h: tl_lab.ssh(h, "md5sum /etc/patroni/patroni.yml; ls /etc/patroni").stdout
                      for h in tl_lab.members}
    assert not tl_lab.ca.exists()
    assert all(tl_lab.status(h, https=False)["state"] == "running" for h in tl_lab.members)


def test_rollout_replicas_first_leader_last(tl_lab):
    before = tl_lab.snapshot(https=False)
    leader = tl_lab.leader(https=False)
    order = [h for h in tl_lab.members if h != leader] + [leader]
    STATE.update(before=before, leader=leader, order=order)
    rc, out, recap, elapsed = run_playbook(tl_lab, order)
    STATE["rollout_seconds"] = elapsed
    print(f"rollout of {len(order)} members took {elapsed:.0f} s")
    assert rc == 0, out[-4000:]
    assert all(r["failed"] == 0 and r["unreachable"] == 0 for r in recap.values()), recap
    assert PASSWORD not in out
    # the leader is secured last: its tasks come after every replica's in the output
    positions = [out.index(f"[{h}]") for h in order]
    assert positions == sorted(positions), f"order seen {positions} for {order}"


def test_api_answers_https_only_with_verifying_certificate(tl_lab):
    for host in tl_lab.members:
        ip = tl_lab.ip(host)
        assert tl_lab.status(host, https=True)["state"] == "running"
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"http://{ip}:8008/patroni", timeout=5)
        # the certificate must name the member's address: requests checks the IP SAN
        cert = tl_lab.ssh(host, "openssl x509 -in /etc/patroni/tls/api.crt -noout -ext subjectAltName").stdout
        assert f"IP Address:{ip}" in cert.split("\n", 1)[1].split(",")[0], cert


def test_leader_timeline_and_postmaster_unchanged(tl_lab):
    assert tl_lab.snapshot(https=True) == STATE["before"]


def test_unsafe_calls_refused(tl_lab):
    ip = tl_lab.ip(STATE["leader"])
    member = STATE["order"][0]
    # From a member (allowlisted) with its ctl client certificate but without credentials: 401.
    out = tl_lab.ssh(member, f"curl -s -o /dev/null -w '%{{http_code}}' --cacert /etc/patroni/tls/ca.crt "
                             f"--cert /etc/patroni/tls/ctl.crt --key /etc/patroni/tls/ctl.key "
                             f"-X POST -d '{{}}' https://{ip}:8008/restart").stdout
    assert out == "401"
    # From the controller (allowlisted) without a client certificate: verify_client optional refuses unsafe calls.
    r = requests.post(f"https://{ip}:8008/restart", json={}, verify=str(tl_lab.ca), timeout=5)
    assert (r.status_code, r.text) == (403, "client certificate required")
    # From client1 (not allowlisted): 403 Access is denied, whatever it presents.
    out = tl_lab.ssh("client1", f"curl -sk -w ' %{{http_code}}' -X POST -d '{{}}' https://{ip}:8008/restart").stdout
    assert out == "Access is denied 403"


def test_patronictl_works_through_ctl(tl_lab):
    for host in tl_lab.members:
        out = tl_lab.ssh(host, '. /etc/default/patroni; "$(dirname "$PATRONI")/patronictl" '
                               "-c /etc/patroni/patroni.yml list -f json").stdout
        members = {m["Member"]: m for m in json.loads(out)}
        assert sorted(members) == sorted(tl_lab.members)
        assert members[STATE["leader"]]["Role"] == "Leader"


def test_files_modes_and_owners(tl_lab):
    host = tl_lab.members[0]
    out = tl_lab.ssh(host, "stat -c '%n %a %U' /etc/patroni/tls/* /etc/patroni/patroni.yml").stdout.split("\n")
    modes = {line.split()[0]: line.split()[1:] for line in out if line}
    assert modes["/etc/patroni/tls/api.key"] == ["600", "postgres"]
    assert modes["/etc/patroni/tls/ctl.key"] == ["600", "postgres"]
    assert modes["/etc/patroni/patroni.yml"] == ["600", "postgres"]
    backups = tl_lab.ssh(host, "ls /etc/patroni/").stdout
    assert re.search(r"patroni\.yml\.\d+\.\S+~", backups), backups
    # HAProxy's client bundle on lb1 opens a verified session with a member's API
    lb = tl_lab.ssh("lb1", "stat -c '%a' /etc/haproxy/patroni-tls/client.pem; curl -s -o /dev/null -w '%{http_code}' "
                           "--cacert /etc/haproxy/patroni-tls/ca.crt --cert /etc/haproxy/patroni-tls/client.pem "
                           f"https://{tl_lab.ip(host)}:8008/patroni").stdout.split()
    assert lb == ["600", "200"]


def test_second_run_changes_nothing(tl_lab):
    rc, out, recap, elapsed = run_playbook(tl_lab, STATE["order"])
    assert rc == 0, out[-4000:]
    assert {h: r["changed"] for h, r in recap.items()} == {h: 0 for h in recap}, recap
    print(f"second run took {elapsed:.0f} s")


def test_check_diff_changes_nothing_and_shows_no_password(tl_lab):
    before = {h: tl_lab.ssh(h, "md5sum /etc/patroni/patroni.yml /etc/patroni/tls/*").stdout for h in tl_lab.members}
    rc, out, recap, dummy = run_playbook(tl_lab, STATE["order"], check=True, diff=True, extra=ALL_AT_ONCE)
    assert rc == 0, out[-4000:]
    assert all(r["changed"] == 0 for r in recap.values()), recap
    assert PASSWORD not in out and "BEGIN" not in out
    assert before == {h: tl_lab.ssh(h, "md5sum /etc/patroni/patroni.yml /etc/patroni/tls/*").stdout
                      for h in tl_lab.members}


def test_forced_renewal_rotates_served_certificate_by_reload(tl_lab):
    host = STATE["leader"]
    ip = tl_lab.ip(host)
    serial = tl_lab.ssh(host, "openssl x509 -in /etc/patroni/tls/api.crt -noout -serial").stdout
    rc, out, recap, dummy = run_playbook(tl_lab, [host], extra={"patroni_tls_force_renew": True}, limit=host)
    assert rc == 0, out[-4000:]
    new_serial = tl_lab.ssh(host, "openssl x509 -in /etc/patroni/tls/api.crt -noout -serial").stdout
    assert new_serial != serial
    served = tl_lab.ssh(host, f"echo | openssl s_client -connect {ip}:8008 2>/dev/null | openssl x509 -noout -serial")
    assert served.stdout == new_serial
    assert "Reload Patroni to serve the new certificate" in out
    assert tl_lab.snapshot(https=True) == STATE["before"]


def test_invalid_cidr_stops_with_nothing_changed(tl_lab):
    host = STATE["order"][0]
    before = tl_lab.ssh(host, "md5sum /etc/patroni/patroni.yml").stdout
    # the certificates are in place since the rollout: only patroni_api_security is run
    bad = {"patroni_api_security_allowlist": ["10.213.0.0/33"], "tls_certificates": False}
    rc, out, recap, dummy = run_playbook(tl_lab, [host], extra=bad, limit=host)
    assert rc != 0
    assert "allowlist entry '10.213.0.0/33' is not a valid CIDR network" in out
    assert tl_lab.ssh(host, "md5sum /etc/patroni/patroni.yml").stdout == before


def test_dual_stack_listen_gets_ipv4_mapped_allowlist(tl_lab):
    """listen '*:8008' makes IPv4 clients arrive as ::ffff:a.b.c.d; the role's mapped entries let lb1 through."""
    host = STATE.get("order", tl_lab.members)[0]
    ip = tl_lab.ip(host)
    probe = f"curl -sk -X POST -d '{{}}' https://{ip}:8008/restart"

    def wait_for_answer(expected: str) -> str:
        deadline = time.monotonic() + 60
        answer = ""
        while time.monotonic() < deadline:
            answer = tl_lab.ssh("lb1", probe, check=False).stdout
            if answer == expected:
                break
            time.sleep(2)
        return answer

    tl_lab.ssh(host, "sed -i \"s/^  listen: .*:8008$/  listen: '*:8008'/\" /etc/patroni/patroni.yml && service patroni reload")
    # the gotcha itself: lb1 is allowlisted by its IPv4 address but is now refused
    assert wait_for_answer("Access is denied") == "Access is denied"
    rc, out, recap, dummy = run_playbook(tl_lab, [host], limit=host, extra={"tls_certificates": False})
    assert rc == 0, out[-4000:]
    allow = tl_lab.ssh(host, "grep -A12 '^  allowlist:' /etc/patroni/patroni.yml").stdout
    assert f"::ffff:{tl_lab.ip('lb1')}" in allow
    # past the allowlist now; refused only for lacking a client certificate (verify_client: optional)
    assert wait_for_answer("client certificate required") == "client certificate required"
    assert tl_lab.ssh("client1", probe, check=False).stdout == "Access is denied"

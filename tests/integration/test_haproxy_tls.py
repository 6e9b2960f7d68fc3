"""patroni_haproxy against a TLS Patroni API: verified checks pass, a certificate for the wrong host fails visibly.

Needs a lab with two clusters (`pgha_lab.py up --clusters 2`): cluster c2 is switched to HTTPS with a throw-away CA
for the duration of this module and switched back afterwards; c1 stays on HTTP. Runs after test_haproxy.py.
"""
from __future__ import annotations

import json
import subprocess

import pytest
import requests

from test_haproxy import LB, PLAYBOOK, SOCK, Pg, lb_state, wait_for

TLS_DIR = "/etc/patroni/hx-tls"
SHOW_STAT = (
    "python3 -c 'import csv, io, json, socket; s = socket.socket(socket.AF_UNIX); s.connect(\"" + SOCK + "\"); "
    "s.sendall(b\"show stat\\n\"); d = b\"\"\n"
    "while True:\n c = s.recv(65536)\n if not c: break\n d += c\n"
    "print(json.dumps([r for r in csv.DictReader(io.StringIO(d.decode().lstrip(\"# \")))]))'"
)
SET_TLS = """python3 - <<'EOF'
import yaml
path = '/etc/patroni/patroni.yml'
with open(path) as fh:
    conf = yaml.safe_load(fh)
conf['restapi'].pop('certfile', None)
conf['restapi'].pop('keyfile', None)
if %(on)s:
    conf['restapi'].update(certfile='%(dir)s/api.crt', keyfile='%(dir)s/api.key')
with open(path, 'w') as fh:
    yaml.safe_dump(conf, fh, default_flow_style=False)
EOF
service patroni reload >/dev/null
"""


def openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(directory, members: dict[str, str]) -> None:
    """A CA and one API certificate per member with its name as DNS SAN and its address as IP SAN."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=pgha haproxy test CA", cwd=directory)
    for name, ip in members.items():
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=directory)
        (directory / f"{name}.ext").write_text(f"subjectAltName=DNS:{name},IP:{ip}\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=directory)


def push(lab, host: str, cert_of: str, pki) -> None:
    """Install <cert_of>'s certificate and key as host's API certificate."""
    for src, dest, mode in ((f"{cert_of}.crt", "api.crt", "644"), (f"{cert_of}.key", "api.key", "600")):
        proc = subprocess.run(
            ["ssh", "-F", str(lab.ssh_config), host,
             f"mkdir -p {TLS_DIR} && cat > {TLS_DIR}/{dest}.new && chmod {mode} {TLS_DIR}/{dest}.new && "
             f"chown -R postgres:postgres {TLS_DIR} && mv {TLS_DIR}/{dest}.new {TLS_DIR}/{dest}"],
            input=(pki / src).read_bytes(), capture_output=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr


def https_leader(lab, scope: str, ca) -> str:
    def leader():
        for member in lab.members(scope):
            try:
                if requests.get(f"https://{lab.ip(member)}:8008/primary", verify=str(ca), timeout=2).status_code == 200:
                    return member
            except requests.RequestException:
                continue
        return None
    return wait_for(f"{scope} leader over HTTPS", leader, 60, 0.5)


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:  # the API is re-bound in place: refused or cut for a moment
        return False


def lb_stat(lab) -> dict[tuple[str, str], dict]:
    rows = json.loads(lab.ssh(LB, SHOW_STAT).stdout)
    return {(r["pxname"], r["svname"]): r for r in rows}


def clusters(lab, ca=None) -> list[dict]:
    out = []
    for index, scope in enumerate(sorted(lab.clusters)):
        base = 5000 + 100 * index
        cluster = {"name": scope, "group": f"cluster_{scope}",
                   "listeners": [{"type": "primary", "port": base},
                                 {"type": "replicas", "port": base + 1, "lag": "1MB"},
                                 {"type": "read_only", "port": base + 2, "lag": "1MB"}]}
        if scope == "c2" and ca:
            cluster["api_tls"] = {"ca_file": str(ca)}
        out.append(cluster)
    return out


@pytest.fixture(scope="module")
def c2_tls(lab, run_playbook, tmp_path_factory):
    if "c2" not in lab.clusters:
        pytest.skip("lab has one cluster; start it with --clusters 2")
    pki = tmp_path_factory.mktemp("hx-pki")
    members = {m: lab.ip(m) for m in lab.members("c2")}
    make_pki(pki, members)
    try:
        for member in members:
            push(lab, member, member, pki)
            lab.ssh(member, SET_TLS % {"on": True, "dir": TLS_DIR})
        https_leader(lab, "c2", pki / "ca.crt")
        yield pki
    finally:
        for member in members:
            lab.ssh(member, SET_TLS % {"on": False, "dir": TLS_DIR}, check=False)
        wait_for("c2 back on HTTP", lambda: all(http_ok(lab.api(m) + "/patroni") for m in members), 60, 1)
        restored = run_playbook(PLAYBOOK)
        assert restored.rc == 0, restored


def test_verified_tls_checks_route_c2(lab, run_playbook, c2_tls):
    run = run_playbook(PLAYBOOK, extra_vars={"haproxy_test_clusters": clusters(lab, c2_tls / "ca.crt")})
    assert run.rc == 0, run
    cfg = lab.ssh(LB, "cat /etc/haproxy/haproxy.cfg").stdout
    assert "check-ssl verify required ca-file /etc/haproxy/patroni-tls/c2-ca.crt verifyhost c2m1" in cfg
    assert "verify none" not in cfg
    leader = https_leader(lab, "c2", c2_tls / "ca.crt")
    expected = {}
    for member in lab.members("c2"):
        expected[("c2_primary", member)] = 2 if member == leader else 0
        expected[("c2_replicas", member)] = 0 if member == leader else 2
        expected[("c2_read_only", member)] = 2

    def matches():
        state = lb_state(lab)
        return {key: state.get(key) for key in expected} == expected or None
    wait_for(f"c2 servers UP/DOWN as Patroni says (expected {expected})", matches, 30)
    pg = Pg(lab)
    assert pg.where(5100) == (lab.ip(leader), False)


def test_certificate_for_the_wrong_host_fails_visibly(lab, c2_tls):
    leader = https_leader(lab, "c2", c2_tls / "ca.crt")
    victim = next(m for m in lab.members("c2") if m != leader)
    # Same CA, valid chain, but issued for the leader: only the host-name check can catch it.
    push(lab, victim, leader, c2_tls)
    lab.ssh(victim, "service patroni reload >/dev/null")
    try:
        wait_for(f"{victim} DOWN in c2_replicas", lambda: lb_state(lab)[("c2_replicas", victim)] == 0, 30)
        row = lb_stat(lab)[("c2_replicas", victim)]
        print(f"{victim} with {leader}'s certificate: status {row['status']}, check {row['check_status']} "
              f"({row.get('check_desc', '')})")
        assert row["status"] == "DOWN" and row["check_status"] == "L6RSP", row
        assert lb_state(lab)[("c2_primary", leader)] == 2
    finally:
        push(lab, victim, victim, c2_tls)
        lab.ssh(victim, "service patroni reload >/dev/null")
    wait_for(f"{victim} back UP with its own certificate",
             lambda: lb_state(lab)[("c2_replicas", victim)] == 2, 30)

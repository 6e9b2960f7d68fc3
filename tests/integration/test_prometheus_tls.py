"""patroni_prometheus against a Patroni API that serves HTTPS and demands client certificates
(restapi.verify_client: required): Prometheus scrapes every member with the cluster CA and its own client
certificate, and the API certificates, issued for 10 days only, trip the 21-day expiry warning.

Cluster c1 of the lab is switched to TLS for the duration of this module with a throw-away CA, and back to plain
HTTP afterwards. Every wait is bounded.
"""
from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import requests

# prometheus is a pytest fixture used by name, not called
from test_prometheus import CLUSTER, prometheus, role_vars  # noqa: F401 pylint: disable=unused-import

TLS_DIR = "/etc/patroni/pm-tls"
CERT_DAYS = 10
SET_TLS = """python3 - <<'EOF'
import yaml
path = '/etc/patroni/patroni.yml'
with open(path) as fh:
    conf = yaml.safe_load(fh)
for key in ('certfile', 'keyfile', 'cafile', 'verify_client'):
    conf['restapi'].pop(key, None)
conf.pop('ctl', None)
if %(on)s:
    conf['restapi'].update(certfile='%(dir)s/api.crt', keyfile='%(dir)s/api.key', cafile='%(dir)s/ca.crt',
                           verify_client='required')
    # with verify_client required Patroni itself needs a client certificate to reach the other members
    conf['ctl'] = {'certfile': '%(dir)s/api.crt', 'keyfile': '%(dir)s/api.key', 'cacert': '%(dir)s/ca.crt'}
with open(path, 'w') as fh:
    yaml.safe_dump(conf, fh, default_flow_style=False)
EOF
service patroni reload >/dev/null
"""


def openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def issue(directory, name: str, san: str, days: int) -> None:
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={name}", cwd=directory)
    (directory / f"{name}.ext").write_text(f"subjectAltName={san}\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", str(days), "-extfile", f"{name}.ext", cwd=directory)


def wait_for(what: str, check, timeout: float):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except requests.RequestException as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(1)
    raise AssertionError(f"{what} not seen within {timeout}s; last: {last!r}")


@pytest.fixture(scope="module")
def tls_cluster(lab):
    # not pytest's tmp_path: other pytest sessions on the machine prune those directories while this one runs
    pki = lab.dir / "prometheus-pki"
    shutil.rmtree(pki, ignore_errors=True)
    pki.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "30",
            "-subj", "/CN=pgha prometheus test CA", cwd=pki)
    for member in lab.members(CLUSTER):
        issue(pki, member, f"DNS:{member},IP:{lab.ip(member)}", CERT_DAYS)
    issue(pki, "prometheus", "DNS:prometheus", 2)
    client = (str(pki / "prometheus.crt"), str(pki / "prometheus.key"))

    def answers(member, scheme):
        url = f"{scheme}://{lab.ip(member)}:8008/patroni"
        kwargs = {"verify": str(pki / "ca.crt"), "cert": client} if scheme == "https" else {}
        return requests.get(url, timeout=2, **kwargs).ok

    members = lab.members(CLUSTER)
    try:
        for member in members:
            for src, dest, mode in ((f"{member}.crt", "api.crt", "644"), (f"{member}.key", "api.key", "600"),
                                    ("ca.crt", "ca.crt", "644")):
                proc = subprocess.run(
                    ["ssh", "-F", str(lab.ssh_config), member,
                     f"mkdir -p {TLS_DIR} && cat > {TLS_DIR}/{dest} && chmod {mode} {TLS_DIR}/{dest} && "
                     f"chown -R postgres:postgres {TLS_DIR}"],
                    input=(pki / src).read_bytes(), capture_output=True, timeout=60, check=False)
                assert proc.returncode == 0, proc.stderr
        for member in members:
            lab.ssh(member, SET_TLS % {"on": True, "dir": TLS_DIR})
        for member in members:
            wait_for(f"{member} over HTTPS with a client certificate", lambda: answers(member, "https"), 60)
        yield pki
    finally:
        for member in members:
            lab.ssh(member, SET_TLS % {"on": False, "dir": TLS_DIR}, check=False)
        for member in members:
            wait_for(f"{member} back on HTTP", lambda: answers(member, "http"), 60)


def test_scrapes_https_with_client_certificate_and_watches_expiry(lab, tls_cluster, prometheus, run_playbook):
    pki = tls_cluster
    extra = role_vars(prometheus.dir, lab.ip("lb1"))
    extra["patroni_prometheus_clusters"][0]["api_tls"] = {
        "ca_file": str(pki / "ca.crt"), "client_cert": str(pki / "prometheus.crt"),
        "client_key": str(pki / "prometheus.key")}
    run = run_playbook("prometheus.yml", extra_vars=extra, diff=True)
    assert run.rc == 0 and run.failed() == 0, run
    assert "PRIVATE KEY" not in run.stdout, "a private key showed up in the output"

    members = set(lab.members(CLUSTER))

    def healthy_targets():
        found = [t for t in prometheus.get("/api/v1/targets")["activeTargets"] if t["health"] == "up"]
        return found if {t["labels"]["name"] for t in found} == members else None

    targets = wait_for("every member scraped over HTTPS", healthy_targets, 60)
    assert all(t["scrapeUrl"].startswith("https://") for t in targets), targets

    expiry = prometheus.wait("certificate expiry recorded", lambda: prometheus.query(
        "patroni:restapi_certificate_not_after:timestamp_seconds"), 30)
    assert {e["metric"]["name"] for e in expiry} == members, expiry
    for entry in expiry:
        days_left = (float(entry["value"][1]) - time.time()) / 86400
        assert CERT_DAYS - 1 < days_left <= CERT_DAYS, entry
    soon = wait_for("expiry warnings", lambda: [a for a in prometheus.alerts("PatroniRestApiCertificateExpiresSoon")
                                                if a["state"] == "firing"], 30)
    assert {a["labels"]["name"] for a in soon} == members
    assert not prometheus.alerts("PatroniRestApiCertificateExpiresVerySoon")

    again = run_playbook("prometheus.yml", extra_vars=extra)
    assert again.rc == 0 and again.changed() == 0, again

"""playbooks/secure_api.yml (through `make demo`'s playbook) on a live plain-HTTP cluster while an application writes.

What a user checks after hardening a running cluster: no failed write, the same leader and timeline, PostgreSQL
never restarted, the API only on verified HTTPS with auth and allowlist, the API and PostgreSQL ports closed to an
outside host and open to the load balancer; a second run changes nothing and --check --diff shows no secret.
The rollout is stopped part-way (Ctrl-C once a member serves HTTPS) and finished by running secure_api.yml again,
so every check above also holds for a resumed run.
Needs a fresh lab (tests/integration/run.sh gives this file its own).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lab"))
import labkit  # noqa: E402
from labkit import Writer  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "playbooks" / "demo.yml"
SECURE_API = REPO / "playbooks" / "secure_api.yml"
PROBE = ("python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(2); "
         "print(\"open\" if s.connect_ex((sys.argv[1], int(sys.argv[2]))) == 0 else \"closed\")' {} {}")


def start_times(lab) -> dict[str, str]:
    out = {}
    for host in lab.members():
        out[host] = lab.ssh(host, "head -3 /var/lib/postgresql/15/main/postmaster.pid | tail -1").stdout.strip()
    return out


def host_state(lab) -> dict[str, str]:
    """What secure_api.yml would change on each host: Patroni's files and certificates, nftables, HAProxy's config."""
    cmd = ("find /etc/patroni /etc/pgha -type f 2>/dev/null | sort | xargs -r sha256sum; "
           "nft list ruleset | sha256sum; sha256sum /etc/haproxy/haproxy.cfg 2>/dev/null; true")
    return {host: lab.ssh(host, cmd).stdout for host in lab.members() + ["lb1"]}


VAULT_LAYOUTS = ("encrypted_file", "encrypted_value", "group_vars")


@pytest.mark.parametrize("layout", VAULT_LAYOUTS)
def test_wrong_vault_password_stops_before_touching_a_host(lab, tmp_path, layout):
    """The API password in a vault, the run given the wrong vault password: it stops, naming the cause."""
    ansible_vault = str(labkit.ANSIBLE_VENV / "bin" / "ansible-vault")
    right, wrong = tmp_path / "right-pass", tmp_path / "wrong-pass"
    right.write_text("the-right-vault-password\n")
    wrong.write_text("not-the-vault-password\n")
    password = "vaulted-api-password-0123"
    secrets = tmp_path / "vault.yml"
    inventory, extra = lab.inventory, ["--vault-password-file", str(wrong)]
    if layout == "encrypted_value":
        # a plain vars file with one `!vault |` value, the way encrypt_string is meant to be used
        value = subprocess.run([ansible_vault, "encrypt_string", "--vault-password-file", str(right), password,
                                "--name", "pgha_secure_api_password"], capture_output=True, text=True, check=True,
                               env=labkit.ansible_env()).stdout
        secrets.write_text(value)
    else:
        secrets.write_text(f"pgha_secure_api_password: {password}\n")
        subprocess.run([ansible_vault, "encrypt", "--vault-password-file", str(right), str(secrets)],
                       capture_output=True, text=True, check=True, env=labkit.ansible_env())
    if layout == "group_vars":
        (tmp_path / "group_vars" / "all").mkdir(parents=True)
        shutil.move(secrets, tmp_path / "group_vars" / "all" / "vault.yml")
        inventory = tmp_path / "inventory.yml"
        shutil.copy(lab.inventory, inventory)
    else:
        extra += ["-e", f"@{secrets}"]
    before = host_state(lab)
    pki = lab.dir / "pki"
    pki_before = sorted(pki.rglob("*")) if pki.exists() else None
    run = labkit.run_playbook(inventory, SECURE_API, extra_vars={"pgha_secure_api_ca_dir": str(pki)},
                              extra_args=extra, timeout=300)
    output = run.stdout + run.stderr
    assert run.rc != 0, run
    assert "Decryption failed (no vault secrets were found that could decrypt)" in output, run
    if layout != "group_vars":
        # Ansible names the file to fix; with group_vars it does not (ansible-core 2.21), see the report
        assert str(secrets) in output, run
    # no task ran on a member or a load balancer: at most the password check, which runs on the controller
    assert "TASK [Read the member's patroni.yml" not in run.stdout, run
    assert all(h["ok"] == 0 and h["changed"] == 0 for h in run.recap.values()), run
    assert password not in output
    assert host_state(lab) == before
    assert (sorted(pki.rglob("*")) if pki.exists() else None) == pki_before


CHK_ST_ENABLED = 0x4  # HAProxy's srv_check_state flag that "disable health" clears


def servers_state(sock_path: Path) -> dict[tuple[str, str], dict[str, int]]:
    """lb1's `show servers state`, read through its runtime socket as the root namespace sees it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        sock.connect(str(sock_path))
        sock.sendall(b"show servers state\n")
        data = b"".join(iter(lambda: sock.recv(65536), b"")).decode()
    lines = data.splitlines()
    header = lines[1].lstrip("# ").split()
    rows = [dict(zip(header, ln.split())) for ln in lines[2:] if ln.strip()]
    return {(r["be_name"], r["srv_name"]): {"op": int(r["srv_op_state"]), "check": int(r["srv_check_state"])}
            for r in rows}


class HaproxyWatch(threading.Thread):
    """Samples lb1's server states every 0.2 s: any change of a server's state (UP to DOWN or back) and how long
    each server's health checks stayed paused."""

    def __init__(self, lab):
        super().__init__(daemon=True)
        # lb1's private /run/haproxy, as the root namespace sees it (lab/README.md): no SSH round trip per sample
        self.sock = lab.dir / "hosts" / "lb1" / "fs" / "run" / "haproxy" / "admin.sock"
        self.stop = threading.Event()
        self.first: dict = {}
        self.changes: list = []
        self.paused_since: dict = {}
        self.longest_pause: dict = {}
        self.samples = self.errors = self.most_paused_at_once = 0

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                states = servers_state(self.sock)
            except (OSError, IndexError):  # the moment of a reload
                self.errors += 1
                self.stop.wait(0.1)
                continue
            now = time.monotonic()
            self.samples += 1
            for key, state in states.items():
                first = self.first.setdefault(key, state)
                if state["op"] != first["op"]:
                    self.changes.append((round(now, 1), key, first["op"], state["op"]))
                if not state["check"] & CHK_ST_ENABLED:
                    since = self.paused_since.setdefault(key, now)
                    self.longest_pause[key] = max(self.longest_pause.get(key, 0.0), now - since)
                else:
                    self.paused_since.pop(key, None)
            self.most_paused_at_once = max(self.most_paused_at_once, len({key[1] for key in self.paused_since}))
            self.stop.wait(0.2)

    def summary(self) -> dict:
        return {"samples": self.samples, "errors": self.errors, "changes": self.changes[:20],
                "servers": len(self.first), "most_paused_at_once": self.most_paused_at_once,
                "longest_pause_s": {"/".join(k): round(v, 1) for k, v in sorted(self.longest_pause.items())}}


def haproxy_settled(lab, leader: str, timeout: float = 60, steady: float = 5) -> None:
    """Wait until lb1 routes writes to the leader only and no server changed state for `steady` seconds."""
    sock = HaproxyWatch(lab).sock
    deadline, states, since = time.monotonic() + timeout, {}, time.monotonic()
    while time.monotonic() < deadline:
        now = servers_state(sock)
        if now != states:
            states, since = now, time.monotonic()
        primary_up = {srv for (be, srv), st in states.items() if be.endswith("_primary") and st["op"] == 2}
        if primary_up == {leader} and time.monotonic() - since >= steady:
            return
        time.sleep(0.5)
    raise AssertionError(f"HAProxy on lb1 did not settle within {timeout}s: {states}")


def https_members(lab) -> list[str]:
    """The members whose API answers HTTPS verified by the lab CA right now."""
    ca, out = str(lab.dir / "pki" / "ca.crt"), []
    for host in lab.members():
        try:
            requests.get(f"https://{lab.ip(host)}:8008/patroni", verify=ca, timeout=1)
        except (requests.RequestException, OSError):
            continue
        out.append(host)
    return out


def run_until_first_https(lab, playbook: Path, timeout: float = 600) -> tuple[labkit.PlaybookRun, list[str], float]:
    """Run the playbook and stop it the way Ctrl-C does (SIGINT to its process group) as soon as a member answers
    HTTPS, mid-rollout: that member's HAProxy checks are still paused, the others are untouched."""
    cmd = [str(labkit.ANSIBLE_VENV / "bin" / "ansible-playbook"), "-i", str(lab.inventory), str(playbook)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=labkit.ansible_env(), start_new_session=True)
    # the pipes are read while the run goes on, or a full pipe would stall it
    out: dict[str, str] = {}
    readers = [threading.Thread(target=lambda n, f: out.__setitem__(n, f.read()), args=(name, pipe), daemon=True)
               for name, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr))]
    for reader in readers:
        reader.start()
    t0, secured = time.monotonic(), []
    while proc.poll() is None and time.monotonic() - t0 < timeout and not secured:
        if (lab.dir / "pki" / "ca.crt").exists():
            secured = https_members(lab)
        time.sleep(0.2)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    for reader in readers:
        reader.join(timeout=30)
    run = labkit.PlaybookRun(subprocess.CompletedProcess(cmd, proc.returncode, out.get("stdout", ""),
                                                         out.get("stderr", "")))
    return run, secured, time.monotonic() - t0


def plain_haproxy_layout(lab) -> list[dict]:
    """lb1's clusters as lab_haproxy.yml lays them out for a plain-HTTP lab: what a user keeps in the inventory."""
    return [{"name": scope, "group": f"cluster_{scope}",
             "listeners": [{"type": "primary", "port": 5000 + 100 * n},
                           {"type": "replicas", "port": 5001 + 100 * n, "lag": "16MB"},
                           {"type": "read_only", "port": 5002 + 100 * n, "lag": "16MB"}]}
            for n, scope in enumerate(sorted(lab.clusters))]


def secure_api_vars(lab) -> dict:
    """demo.yml's settings for secure_api.yml, to run the playbook on its own as a user would (the password is read
    by the lookup on the controller, never put on the command line)."""
    return {"pgha_secure_api_password": "{{ lookup('ansible.builtin.password', pgha_lab_dir ~ '/api-password', "
                                        "chars=['ascii_letters', 'digits'], length=24) }}",
            "pgha_secure_api_ca_dir": str(lab.dir / "pki"),
            "patroni_firewall_nftables_file": "/etc/pgha/pgha_patroni.nft"}


@pytest.fixture(scope="module")
def rollout(lab, run_playbook, tmp_path_factory):
    """HAProxy first (plain checks), then the demo job with a writer on the write port throughout, stopped like
    Ctrl-C once its first member serves HTTPS; then what a user does next: `--check --tags plan` to see what is
    left, and secure_api.yml run again (lb1's layout in host_vars, as a user's inventory holds it) to finish.
    lb1's server states are sampled all along."""
    first = run_playbook(str(REPO / "playbooks" / "lab_haproxy.yml"))
    assert first.rc == 0, first
    leader = lab.leader()
    timeline = requests.get(lab.api(leader) + "/patroni", timeout=5).json()["timeline"]
    started = start_times(lab)
    haproxy_settled(lab, leader)
    inventory = tmp_path_factory.mktemp("resume") / "inventory.yml"
    shutil.copy(lab.inventory, inventory)
    (inventory.parent / "host_vars").mkdir()
    (inventory.parent / "host_vars" / "lb1.yml").write_text(
        json.dumps({"patroni_haproxy_clusters": plain_haproxy_layout(lab)}))
    watch = HaproxyWatch(lab)
    watch.start()
    t0 = time.monotonic()
    with Writer(lab, port=5000) as writer:
        stopped, secured, stopped_s = run_until_first_https(lab, DEMO)
        half_done = https_members(lab)
        # what `make demo` runs first when run again: HAProxy's layout, each member's checks on what it serves now
        relaid = run_playbook(str(REPO / "playbooks" / "lab_haproxy.yml"))
        relaid_cfg = lab.ssh("lb1", "cat /etc/haproxy/haproxy.cfg").stdout
        t1 = time.monotonic()
        plan = labkit.run_playbook(lab.inventory, SECURE_API, extra_vars=secure_api_vars(lab), check=True,
                                   extra_args=["--tags", "plan"], timeout=300)
        t2 = time.monotonic()
        run = labkit.run_playbook(inventory, SECURE_API, extra_vars=secure_api_vars(lab), timeout=900)
        t3 = time.monotonic()
    elapsed = time.monotonic() - t0
    watch.stop.set()
    watch.join(timeout=10)
    print(f"secure_api rollout took {elapsed:.1f}s: demo.yml stopped after {stopped_s:.1f}s with {secured} on HTTPS, "
          f"plan-only check run {t2 - t1:.1f}s, resumed run {t3 - t2:.1f}s; writer: {json.dumps(writer.summary)}; "
          f"haproxy: {json.dumps(watch.summary())}")
    return {"run": run, "writer": writer.summary, "leader": leader, "timeline": timeline, "started": started,
            "haproxy": watch.summary(), "elapsed": elapsed, "stopped": stopped, "secured": secured,
            "half_done": half_done, "plan": plan, "relaid": relaid, "relaid_cfg": relaid_cfg}


def test_rerun_after_a_stopped_run_finishes_the_job(lab, rollout):
    """Ctrl-C right after the first member switched to HTTPS, then secure_api.yml again: the rerun plans from what
    each member serves now and finishes; --check --tags plan on the half-done cluster says what is left."""
    stopped, plan = rollout["stopped"], rollout["plan"]
    assert stopped.rc != 0 and rollout["secured"], stopped
    half_done = rollout["half_done"]
    left = [m for m in lab.members() if m not in half_done]
    assert half_done and left, (half_done, stopped)
    assert plan.rc == 0 and plan.changed() == 0, plan
    # only the planning play ran
    assert "TASK [Issue and install this member's API certificate]" not in plan.stdout, plan
    said = " ".join(plan.stdout.split())

    def listed(after: str) -> list[str]:
        assert after in said, plan
        return said.split(after, 1)[1].split(".", 1)[0].split(", ")

    assert "Check mode, nothing is changed." in said, plan
    assert sorted(listed("serving HTTPS already (only checked and completed in their turn): ")) == sorted(half_done)
    order = listed("Left on plain HTTP, secured in this order: ")
    assert sorted(order) == sorted(left) and order[-1] == rollout["leader"], (order, plan)
    assert rollout["run"].rc == 0, rollout["run"]


def test_demo_rerun_after_a_stop_checks_each_member_as_it_serves(lab, rollout):
    """lab_haproxy.yml on the half-done cluster gives TLS checks to exactly the members serving HTTPS (HaproxyWatch,
    running all along, would also see a member marked down by a check in the wrong protocol)."""
    assert rollout["relaid"].rc == 0, rollout["relaid"]
    checks = {line.split()[1]: "check-ssl" in line for line in rollout["relaid_cfg"].splitlines()
              if line.strip().startswith("server ")}
    assert set(checks) == set(lab.members()), rollout["relaid_cfg"]
    assert sorted(m for m, tls in checks.items() if tls) == sorted(rollout["half_done"]), rollout["relaid_cfg"]


def test_warns_about_a_load_balancer_without_a_layout(rollout):
    """The plan-only run used the lab inventory, where lb1 has no patroni_haproxy_clusters (the lab keeps its layout
    as facts of the demo run): the warning names lb1 before anything changes."""
    said = " ".join(rollout["plan"].stdout.split())
    assert "WARNING: lb1 in group lb have no patroni_haproxy_clusters" in said, rollout["plan"]
    # and a run given the layout stays quiet
    assert "have no patroni_haproxy_clusters" not in rollout["run"].stdout, rollout["run"]


def test_rollout_succeeds_without_a_failed_write(rollout):
    run, writer = rollout["run"], rollout["writer"]
    assert run.rc == 0, run
    assert writer["ok"] > 50, writer
    assert writer["failed"] == 0, writer
    assert writer["on_replica"] == 0, writer


def test_haproxy_never_marks_a_member_down(lab, rollout):
    """Each member's checks switch to TLS with its own reload: no server changes state during the rollout, and
    no check stays paused for longer than that one member's reload and HAProxy's."""
    watch = rollout["haproxy"]
    assert watch["samples"] > 50, watch
    assert watch["servers"] == 3 * len(lab.members()), watch
    assert watch["changes"] == [], watch
    # every member was paused (its API changed protocol), each for its own turn only: never two members at once
    # (one member at a time) and none until the end of the rollout, as when all checks switched after the last one
    assert len(watch["longest_pause_s"]) == watch["servers"], watch
    assert watch["most_paused_at_once"] == 1, watch
    # A member the stopped run left paused stays paused until the rerun reaches it (first, as it was first before):
    # its pause spans the stop, lab_haproxy.yml and the plan run, so only the others are held to their own turn.
    resumed = [v for k, v in watch["longest_pause_s"].items() if k.split("/", 1)[1] not in rollout["half_done"]]
    assert resumed and max(resumed) < rollout["elapsed"] / 3, (rollout["elapsed"], rollout["half_done"], watch)
    states = servers_state(HaproxyWatch(lab).sock)
    assert all(st["check"] & CHK_ST_ENABLED for st in states.values()), states


def test_leader_timeline_and_postgres_unchanged(lab, rollout):
    ca = lab.dir / "pki" / "ca.crt"
    leader = rollout["leader"]
    doc = requests.get(f"https://{lab.ip(leader)}:8008/patroni", verify=str(ca), timeout=5).json()
    assert doc["role"] == "primary" and doc["timeline"] == rollout["timeline"]
    assert start_times(lab) == rollout["started"]


def test_api_is_https_only_with_auth_and_allowlist(lab, rollout):
    ca = str(lab.dir / "pki" / "ca.crt")
    for host in lab.members():
        # verified against the CA for the member's address (IP SAN)
        assert requests.get(f"https://{lab.ip(host)}:8008/patroni", verify=ca, timeout=5).status_code == 200
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://{lab.ip(host)}:8008/patroni", timeout=5)
    leader = rollout["leader"]
    ctl = "/etc/patroni/tls/ctl"
    # an unsafe call with a client certificate but no credentials: 401 (run on the member, where the ctl key lives)
    code = lab.ssh(leader, f"curl -s -o /dev/null -w '%{{http_code}}' --cacert /etc/patroni/tls/ca.crt "
                           f"--cert {ctl}.crt --key {ctl}.key -XPOST https://{lab.ip(leader)}:8008/reload").stdout
    assert code == "401"


def test_ports_closed_to_outsiders_open_to_the_load_balancer(lab, rollout):
    for host in lab.members():
        for port in (8008, 5432):
            assert lab.ssh("client1", PROBE.format(lab.ip(host), port)).stdout.strip() == "closed", (host, port)
            assert lab.ssh("lb1", PROBE.format(lab.ip(host), port)).stdout.strip() == "open", (host, port)


def test_haproxy_checks_verified_tls_and_all_servers_up(lab, rollout):
    cfg = lab.ssh("lb1", "cat /etc/haproxy/haproxy.cfg").stdout
    assert "check-ssl verify required ca-file" in cfg
    show = ("python3 -c 'import socket; s=socket.socket(socket.AF_UNIX); s.connect(\"/run/haproxy/admin.sock\"); "
            "s.sendall(b\"show servers state\\n\"); print(s.makefile().read())'")
    rows = [ln.split() for ln in lab.ssh("lb1", show).stdout.splitlines()[2:] if ln.strip()]
    leader = rollout["leader"]
    for row in rows:
        backend, server, op_state = row[1], row[3], row[5]
        if backend.endswith("_primary"):
            assert (op_state == "2") == (server == leader), row
        else:
            assert op_state == "2" or server == leader, row


def task_output(run: labkit.PlaybookRun, name: str) -> str:
    """What every run of the task named `name` printed (a task of the serial play runs once per batch)."""
    blocks = run.stdout.split("\nTASK [")[1:]
    return "".join(block for block in blocks if block.startswith(name))


def test_second_run_changes_nothing(lab, rollout, run_playbook):
    run = run_playbook(str(DEMO))
    assert run.rc == 0, run
    assert run.changed() == 0, run
    # cheap but not blind: no HAProxy render or resume for members already checked over TLS, and every member is
    # still asked as a client (no credentials: 401; Patroni's own client with them) and for its cluster view
    assert "Render and reload HAProxy on the load balancer with the batch's checks on TLS" not in run.stdout, run
    assert "skipping: [" in task_output(run, "Resume this member's checks, now over TLS"), run
    for task in ("An unsafe call without credentials is refused with 401",
                 "Patroni's own client works through the ctl section",
                 "The member still sees every member of its cluster over the secured API"):
        said = task_output(run, task)
        assert all(f"ok: [{member}]" in said for member in lab.members()), (task, said)


def test_check_diff_changes_nothing_and_shows_no_secret(lab, rollout, run_playbook):
    run = run_playbook(str(DEMO), check=True, diff=True)
    assert run.rc == 0, run
    assert run.changed() == 0, run
    password = (lab.dir / "api-password").read_text().strip()
    assert password not in run.stdout + run.stderr
    assert "PRIVATE KEY" not in run.stdout


def _other_ca(path: Path) -> Path:
    """A CA certificate that did not sign the lab's API certificates."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not the lab CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_modules_name_a_wrong_ca_and_stop_at_once(lab, rollout, run_module, tmp_path):
    wrong = _other_ca(tmp_path / "other-ca.crt")
    url = f"https://{lab.ip(rollout['leader'])}:8008"
    facts = run_module("localhost", "pgha.patroni.patroni_facts", {"api_url": url, "ca_path": str(wrong)})
    assert facts.failed
    assert "unknown CA" in facts["msg"] and str(wrong) in facts["msg"] and url in facts["msg"], facts["msg"]
    started = time.monotonic()
    wait = run_module("localhost", "pgha.patroni.patroni_wait_primary",
                      {"api_url": url, "ca_path": str(wrong), "wait_timeout": 120})
    assert wait.failed and "unknown CA" in wait["msg"], wait.get("msg")
    # TLS errors are not retried: the module fails long before its 120 s
    assert time.monotonic() - started < 60
    # and with the right CA both work over the secured API
    good = run_module("localhost", "pgha.patroni.patroni_facts",
                      {"api_url": url, "ca_path": str(lab.dir / "pki" / "ca.crt")})
    assert not good.failed and good["ansible_facts"]["patroni"]["role"] == "primary", good.get("msg")

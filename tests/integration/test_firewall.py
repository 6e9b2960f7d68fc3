"""patroni_firewall role against the lab: what a user checks after firewalling a running cluster.

Each lab host is a network namespace, so the rules loaded here stay inside the lab. The controller reaches the lab
from the bridge address, which the playbook passes as the controller address.
"""
from __future__ import annotations

import json
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import labkit
import pytest

quote = shlex.quote

PLAYBOOK = "firewall.yml"
PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"
OFFLINE_PLAYBOOK = "firewall_offline.yml"  # the same play for ufw, then for firewalld; client1 by fw_hosts
TABLE = "pgha_patroni"
NFT_FILE = "/etc/pgha/pgha_patroni.nft"

# Every target at once (a thread each): a dropped port costs its 2 s timeout once per probe, not once per target.
PROBE = r"""python3 - "$@" <<'EOF'
import socket, sys, threading
results = {}
def connect(target):
    host, port = target.rsplit(":", 1)
    sock = socket.socket()
    sock.settimeout(2)
    try:
        sock.connect((host, int(port)))
        results[target] = "open"
    except socket.timeout:
        results[target] = "timeout"
    except OSError as exc:
        results[target] = type(exc).__name__
    finally:
        sock.close()
threads = [threading.Thread(target=connect, args=(t,)) for t in sys.argv[1:]]
for t in threads:
    t.start()
for t in threads:
    t.join()
for target in sys.argv[1:]:
    print(target, results[target])
EOF"""

# Undo everything the role can leave on a member, whichever backend ran. nftables.conf is a bind mount in the lab,
# so it is rewritten in place (sed -i would rename over it and fail).
CLEANUP = f"""
nft delete table inet {TABLE} 2>/dev/null
nft delete table ip fw_sentinel 2>/dev/null
rm -f /etc/pgha/pgha_patroni.nft /etc/pgha/pgha_patroni.rules /etc/pgha/pgha_patroni.rules6
grep -v 'include "{NFT_FILE}"' /etc/nftables.conf > /tmp/.pgha-fw-nftconf.$$ && cat /tmp/.pgha-fw-nftconf.$$ > /etc/nftables.conf
rm -f /tmp/.pgha-fw-nftconf.$$
for t in iptables ip6tables; do
  while $t -w -D INPUT -j PGHA-PATRONI 2>/dev/null; do :; done
  $t -w -F PGHA-PATRONI 2>/dev/null; $t -w -X PGHA-PATRONI 2>/dev/null
done
true
"""


def controller(lab) -> str:
    return lab.data["bridge"]["ip"]


def base_vars(lab, **extra) -> dict:
    return {"fw_controller_addresses": [controller(lab)], **extra}


def probe(lab, source: str, targets: list[str]) -> dict[str, str]:
    """Connect from a lab host to host:port targets: open, timeout (dropped) or the error's name (e.g. refused)."""
    proc = lab.ssh(source, f"bash -c {quote(PROBE)} probe " + " ".join(targets))
    return dict(line.split() for line in proc.stdout.splitlines() if line.strip())


def member_targets(lab, port: int) -> list[str]:
    return [f"{lab.ip(m)}:{port}" for m in lab.members()]


def table_loaded(lab, host: str) -> bool:
    return lab.ssh(host, f"nft list table inet {TABLE}", check=False).returncode == 0


def file_exists(lab, host: str, path: str) -> bool:
    return lab.ssh(host, f"test -e {path}", check=False).returncode == 0


def assert_nothing_changed(lab) -> None:
    # one SSH round trip per member: table, file and include are read together
    for m in lab.members():
        out = lab.ssh(m, f"nft list table inet {TABLE} >/dev/null 2>&1 && echo table-loaded; "
                         f"test -e {NFT_FILE} && echo file-written; cat /etc/nftables.conf").stdout
        assert "table-loaded" not in out.splitlines(), f"table inet {TABLE} was loaded on {m}"
        assert "file-written" not in out.splitlines(), f"{NFT_FILE} was written on {m}"
        assert NFT_FILE not in out, f"/etc/nftables.conf on {m} includes {NFT_FILE}"


def assert_isolated(lab) -> None:
    """client1 must time out on the API and PostgreSQL; lb1 must get through; SSH stays open from everywhere."""
    api, pg = member_targets(lab, 8008), member_targets(lab, 5432)
    with ThreadPoolExecutor(2) as pool:  # both probes wait out the same 2 s of dropped connections
        client_probe = pool.submit(probe, lab, "client1", api + pg + member_targets(lab, 22))
        from_lb = probe(lab, "lb1", api + pg)
        from_client = client_probe.result()
    for target in api + pg:
        assert from_client[target] == "timeout", f"client1 -> {target}: {from_client[target]}"
        assert from_lb[target] == "open", f"lb1 -> {target}: {from_lb[target]}"
    for target in member_targets(lab, 22):
        assert from_client[target] == "open", f"client1 -> {target} (SSH must never be touched)"
    for m in lab.members():
        assert lab.ssh(m, "true").returncode == 0  # SSH from the controller


def wait_since(started: float, seconds: float) -> None:
    """Sleep until `seconds` have passed since `started` (the checks run meanwhile count towards the wait)."""
    time.sleep(max(0.0, started + seconds - time.monotonic()))


def assert_replicating(lab, leader: str, tag: str) -> None:
    """A row written on the leader shows up on every replica, and every replica reports streaming."""
    psql = "runuser -u postgres -- psql -X -At -c "
    lab.ssh(leader, psql + quote(f"CREATE TABLE IF NOT EXISTS fw_probe(tag text); INSERT INTO fw_probe VALUES ('{tag}')"))
    for m in lab.members():
        if m == leader:
            continue
        deadline = time.monotonic() + 30
        while True:
            out = lab.ssh(m, psql + quote(f"SELECT count(*) FROM fw_probe WHERE tag = '{tag}'"), check=False).stdout
            if out.strip() == "1":
                break
            assert time.monotonic() < deadline, f"row {tag!r} written on {leader} never reached {m}"
            time.sleep(1)
    states = {x["Member"]: x for x in lab.patronictl_list(leader)}
    for m in lab.members():
        if m != leader:
            assert states[m]["State"] == "streaming", states


@pytest.fixture(scope="module")
def clean(lab):
    def _clean():
        for m in lab.members():
            lab.ssh(m, CLEANUP)

    _clean()
    yield _clean
    _clean()


def failure_message(run, host: str) -> str:
    """The msg of the task that failed host ("" when none did)."""
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith(f"fatal: [{host}]")), "")
    return json.loads(line.split(" => ", 1)[1])["msg"] if " => " in line else ""


def test_invalid_settings_fail_and_change_nothing(lab, clean, tmp_path):
    # One run, one wrong setting per member as host variables: each member must fail on its own setting, before
    # anything is rendered or loaded on any of them.
    bad_network, bad_source, bad_backend = lab.members()
    host_vars = tmp_path / "bad_settings.yml"
    host_vars.write_text(json.dumps({"all": {"hosts": {
        bad_network: {"patroni_firewall_postgresql_allowed_networks": ["10.20.0.0/16", "10.0.0.300/24"]},
        bad_source: {"patroni_firewall_api_extra_sources": ["10.213.5.7/24"]},
        bad_backend: {"patroni_firewall_backend": "pf"},
    }}}))
    run = labkit.run_playbook(lab.inventory, PLAYBOOKS / PLAYBOOK, extra_vars=base_vars(lab),
                              extra_args=["-i", str(host_vars)])
    assert run.rc != 0, run
    assert all(run.recap[m]["failed"] == 1 for m in lab.members()), run

    network = failure_message(run, bad_network)
    assert "patroni_firewall_postgresql_allowed_networks[1]" in network and "10.0.0.300/24" in network, run
    assert "did you mean 10.213.5.0/24" in failure_message(run, bad_source), run
    backend = failure_message(run, bad_backend)
    assert "nftables, iptables, ufw, firewalld" in backend and "got: pf" in backend, run
    assert_nothing_changed(lab)


def test_check_mode_shows_the_ruleset_and_changes_nothing(lab, run_playbook, clean):
    run = run_playbook(PLAYBOOK, base_vars(lab), check=True, diff=True)
    assert run.rc == 0, run
    assert all(run.recap[m]["changed"] > 0 for m in lab.members()), run
    assert f"+\t\tip saddr {lab.ip('lb1')} tcp dport 5432 accept" in run.stdout, run
    assert "+\t\ttcp dport 8008 drop" in run.stdout, run
    assert_nothing_changed(lab)


def test_nftables_isolates_the_cluster_and_keeps_it_healthy(lab, run_playbook, clean):
    leader = lab.leader()
    timeline = {x["Member"]: x["TL"] for x in lab.patronictl_list(leader)}

    for m in lab.members():  # someone else's table, which loading ours must leave alone
        lab.ssh(m, "nft add table ip fw_sentinel; nft add chain ip fw_sentinel c; nft add rule ip fw_sentinel c counter")

    started = time.monotonic()
    run = run_playbook(PLAYBOOK, base_vars(lab))
    loaded = time.monotonic()  # the rules were loaded before the run ended: waiting from here is on the safe side
    elapsed = loaded - started
    assert run.rc == 0 and run.failed() == 0, run
    assert all(run.recap[m]["changed"] > 0 for m in lab.members()), run
    print(f"nftables first run: {elapsed:.1f}s")

    for m in lab.members():
        assert table_loaded(lab, m)
        assert f'include "{NFT_FILE}"' in lab.ssh(m, "cat /etc/nftables.conf").stdout
        # nothing else was flushed
        assert "counter" in lab.ssh(m, "nft list table ip fw_sentinel").stdout
    assert_isolated(lab)

    # Drift on one replica (the leader stays firewalled throughout): the check run and the repair run that follow
    # are also the check-mode run and the second run of the members left in sync, which must change nothing.
    victim = next(m for m in lab.members() if m != leader)
    lab.ssh(victim, f"nft delete table inet {TABLE}")
    check = run_playbook(PLAYBOOK, base_vars(lab), check=True, diff=True)
    assert check.rc == 0, check
    assert check.recap[victim]["changed"] == 1 and check.changed() == 1, check
    assert not table_loaded(lab, victim)

    repair = run_playbook(PLAYBOOK, base_vars(lab))
    assert repair.rc == 0 and repair.recap[victim]["changed"] == 1 and repair.changed() == 1, repair
    assert table_loaded(lab, victim)
    assert probe(lab, "client1", [f"{lab.ip(victim)}:8008"])[f"{lab.ip(victim)}:8008"] == "timeout"

    # several Patroni loops (loop_wait 10 s) through the firewall: the leader key keeps being renewed over etcd
    wait_since(loaded, 25)
    assert lab.leader() == leader
    after = {x["Member"]: x["TL"] for x in lab.patronictl_list(leader)}
    assert after == timeline, (timeline, after)
    assert_replicating(lab, leader, f"nft-{int(time.time())}")


def test_state_absent_removes_only_what_the_role_added(lab, run_playbook, clean):
    # the tests before leave the role's table loaded and included; alone, this test puts it there first
    if not all(table_loaded(lab, m) and file_exists(lab, m, NFT_FILE) for m in lab.members()):
        run = run_playbook(PLAYBOOK, base_vars(lab))
        assert run.rc == 0, run
    for m in lab.members():
        lab.ssh(m, "nft add table ip fw_sentinel; nft add chain ip fw_sentinel c; nft add rule ip fw_sentinel c counter")

    check = run_playbook(PLAYBOOK, base_vars(lab, patroni_firewall_state="absent"), check=True)
    assert check.rc == 0 and all(check.recap[m]["changed"] > 0 for m in lab.members()), check
    assert all(table_loaded(lab, m) for m in lab.members())

    run = run_playbook(PLAYBOOK, base_vars(lab, patroni_firewall_state="absent"))
    assert run.rc == 0 and run.failed() == 0, run
    assert_nothing_changed(lab)
    for m in lab.members():
        assert "counter" in lab.ssh(m, "nft list table ip fw_sentinel").stdout
    target = f"{lab.ip(lab.members()[0])}:8008"
    assert probe(lab, "client1", [target])[target] == "open"

    rerun = run_playbook(PLAYBOOK, base_vars(lab, patroni_firewall_state="absent"))
    assert rerun.rc == 0 and rerun.changed() == 0, rerun


def test_iptables_backend_for_real(lab, run_playbook, clean):
    clean()
    leader = lab.leader()
    run = run_playbook(PLAYBOOK, base_vars(lab, patroni_firewall_backend="iptables"))
    loaded = time.monotonic()
    assert run.rc == 0 and run.failed() == 0, run
    for m in lab.members():
        assert not table_loaded(lab, m)
        assert "-A INPUT -j PGHA-PATRONI" in lab.ssh(m, "iptables -S INPUT").stdout
        assert "-A INPUT -j PGHA-PATRONI" in lab.ssh(m, "ip6tables -S INPUT").stdout
    assert_isolated(lab)

    rerun = run_playbook(PLAYBOOK, base_vars(lab, patroni_firewall_backend="iptables"))
    assert rerun.rc == 0 and rerun.changed() == 0, rerun

    # a Patroni loop and more through the chain (the rerun above counts towards it)
    wait_since(loaded, 15)
    assert lab.leader() == leader
    assert_replicating(lab, leader, f"ipt-{int(time.time())}")
    clean()


# ufw and firewalld cannot run in the lab (no systemd, no D-Bus), so their files are rendered and validated offline:
# apply=false, on client1, into a scratch directory the test reads back (lab hosts share the controller's /tmp).

UFW_SKELETON = """# minimal ufw-style before{six}.rules for the test
*filter
:ufw-before-input - [0:0]
:ufw-before-output - [0:0]
:ufw-before-forward - [0:0]
-A ufw-before-input -i lo -j ACCEPT
-A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
# don't delete the 'COMMIT' line or these rules won't be processed
COMMIT
"""


def offline_vars(lab, tmp, **extra) -> dict:
    return base_vars(
        lab,
        fw_hosts="client1",
        patroni_firewall_apply=False,
        patroni_firewall_ufw_before_rules=f"{tmp}/before.rules",
        patroni_firewall_ufw_before6_rules=f"{tmp}/before6.rules",
        patroni_firewall_firewalld_policy_file=f"{tmp}/firewalld/pgha-patroni.xml",
        **extra,
    )


def test_ufw_and_firewalld_rendered_and_validated_offline(lab, run_playbook, tmp_path):
    import xml.etree.ElementTree as ET

    tmp_path.chmod(0o755)
    (tmp_path / "before.rules").write_text(UFW_SKELETON.format(six=""))
    (tmp_path / "before6.rules").write_text(UFW_SKELETON.format(six="6"))
    # one run renders both: a play with ufw, then a play with firewalld
    run = run_playbook(OFFLINE_PLAYBOOK, offline_vars(lab, tmp_path))
    assert run.rc == 0 and run.recap["client1"]["changed"] > 0, run

    v4 = (tmp_path / "before.rules").read_text()
    assert "# BEGIN pgha.patroni.patroni_firewall" in v4
    assert v4.index("-A ufw-before-input -j PGHA-PATRONI") < v4.index("\nCOMMIT")
    assert f"-A PGHA-PATRONI -s {lab.ip('lb1')}/32 -p tcp -m tcp --dport 5432 -j ACCEPT" in v4
    assert "-A PGHA-PATRONI -p tcp -m tcp --dport 8008 -j DROP" in v4
    for name, tool in (("before.rules", "iptables-restore"), ("before6.rules", "ip6tables-restore")):
        lab.ssh("client1", f"{tool} --test {tmp_path / name}")
    # nothing may have been loaded on the host itself
    assert "PGHA-PATRONI" not in lab.ssh("client1", "iptables -S").stdout

    root = ET.parse(tmp_path / "firewalld" / "pgha-patroni.xml").getroot()
    assert root.tag == "policy" and root.get("target") == "CONTINUE"
    assert root.find("ingress-zone").get("name") == "ANY" and root.find("egress-zone").get("name") == "HOST"
    accepts = {(r.find("source").get("address"), r.find("port").get("port"))
               for r in root.findall("rule") if r.find("accept") is not None}
    drops = {r.find("port").get("port") for r in root.findall("rule") if r.find("drop") is not None}
    assert (lab.ip("lb1"), "5432") in accepts and (controller(lab), "8008") in accepts
    assert (lab.ip("client1"), "8008") not in accepts and (controller(lab), "5432") not in accepts
    assert drops == {"8008", "5432", "2379", "2380"}

    # the second run of both plays
    rerun = run_playbook(OFFLINE_PLAYBOOK, offline_vars(lab, tmp_path))
    assert rerun.rc == 0 and rerun.changed() == 0, rerun

    # a before.rules that iptables-restore rejects (here a hand-made typo) is never replaced
    broken = UFW_SKELETON.format(six="").replace(
        "\nCOMMIT\n", "\n-A ufw-before-input -m conntrak --ctstate NEW -j ACCEPT\nCOMMIT\n")
    (tmp_path / "before.rules").write_text(broken)
    bad = run_playbook(PLAYBOOK, offline_vars(lab, tmp_path, patroni_firewall_backend="ufw"))
    assert bad.rc != 0 and "failed to validate" in bad.stdout, bad
    assert (tmp_path / "before.rules").read_text() == broken

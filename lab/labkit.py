"""Python helpers for using a running lab: read what `pgha_lab.py up` wrote, SSH into hosts, run Ansible on them.

Shared by the integration tests (tests/integration/conftest.py) and the benchmarks (bench/), so both drive the
lab the same way a user would: over SSH, with the inventory the lab wrote.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAB_DIR = Path(os.environ.get("PGHA_LAB_DIR", REPO / ".lab"))
ANSIBLE_VENV = Path(os.environ.get("PGHA_ANSIBLE_VENV", REPO / ".venv" / "ac221"))
BUILD_DIR = Path(os.environ.get("PGHA_BUILD_DIR", "/var/tmp/pgha-build"))

RECAP_RE = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+"
    r"failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)\s+ignored=(?P<ignored>\d+)",
    re.M,
)


class Lab:
    """What the lab script wrote (lab.json, inventory, ssh_config) plus SSH into its hosts."""

    def __init__(self, lab_dir: Path):
        self.dir = lab_dir
        self.inventory = lab_dir / "inventory.yml"
        self.ssh_config = lab_dir / "ssh_config"
        self.data = json.loads((lab_dir / "lab.json").read_text())
        self.hosts = self.data["hosts"]
        self.clusters = self.data["clusters"]

    def ip(self, host: str) -> str:
        return self.hosts[host]["ip"]

    def api(self, host: str, scheme: str = "http") -> str:
        return f"{scheme}://{self.ip(host)}:8008"

    def members(self, scope: str = "c1") -> list[str]:
        return list(self.clusters[scope])

    def ssh(self, host: str, cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            ["ssh", "-F", str(self.ssh_config), host, cmd],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"ssh {host} {cmd!r} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
        return proc

    def patronictl_list(self, host: str) -> list[dict]:
        # patronictl lives next to the patroni binary the lab chose (venv or Debian's), named in /etc/default/patroni
        out = self.ssh(host, '. /etc/default/patroni; "$(dirname "$PATRONI")/patronictl" '
                             '-c /etc/patroni/patroni.yml list -f json')
        return json.loads(out.stdout)

    def _wait_cluster(self, scope: str, timeout: float, ready, what: str) -> str:
        """Poll GET /cluster (from whichever member answers) until ready(members) returns a name; return it."""
        import requests

        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for host in self.members(scope):
                try:
                    members = requests.get(self.api(host) + "/cluster", timeout=2).json()["members"]
                except Exception as exc:  # a member may be down on purpose in a test, or the leader moving
                    last = exc
                    continue
                name = ready(members)
                if name:
                    return name
                last = members
            time.sleep(0.5)
        raise AssertionError(f"{scope}: no {what} within {timeout}s; last seen: {last}")

    def leader(self, scope: str = "c1", timeout: float = 60) -> str:
        """Name of the current leader according to Patroni itself, waiting until there is exactly one."""
        def one_leader(members):
            leaders = [m["name"] for m in members if m["role"] == "leader"]
            return leaders[0] if len(leaders) == 1 else None

        return self._wait_cluster(scope, timeout, one_leader, "single leader")

    def settled(self, scope: str = "c1", timeout: float = 120) -> str:
        """Wait until one leader has every other member streaming on its timeline; return the leader's name.

        A test that crashes the primary must start from here: an old primary still rejoining after a switchover has
        not yet followed the new timeline, and if it wins the failover race it promotes onto a second timeline of
        the same number, which is not the failover the test means to exercise.
        """
        expected = len(self.members(scope))

        def streaming_behind_one_leader(members):
            leaders = [m for m in members if m["role"] == "leader"]
            if len(leaders) != 1 or len(members) != expected:
                return None
            timeline = leaders[0].get("timeline")
            followers = [m for m in members if m is not leaders[0]]
            if all(m["state"] == "streaming" and m.get("timeline") == timeline for m in followers):
                return leaders[0]["name"]
            return None

        return self._wait_cluster(scope, timeout, streaming_behind_one_leader,
                                  "settled state (one leader, all others streaming on its timeline)")


def ansible_env(venv: Path | None = None) -> dict:
    venv = venv or ANSIBLE_VENV
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(BUILD_DIR),
        ANSIBLE_HOST_KEY_CHECKING="True",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_TIMEOUT="30",
        ANSIBLE_PYTHON_INTERPRETER="/usr/bin/python3",
        PATH=f"{venv / 'bin'}:{env.get('PATH', '')}",
    )
    return env


class ModuleResult(dict):
    @property
    def failed(self) -> bool:
        return bool(self.get("failed")) or self.get("_status") not in ("SUCCESS", "CHANGED")


def run_module(inventory: Path, host: str, module: str, args: dict, check: bool = False,
               timeout: float = 300, venv: Path | None = None) -> ModuleResult:
    """Run one module on one host (ad-hoc `ansible -o`) and return its result dict."""
    venv = venv or ANSIBLE_VENV
    cmd = [str(venv / "bin" / "ansible"), host, "-i", str(inventory), "-o", "-m", module, "-a", json.dumps(args)]
    if check:
        cmd.append("--check")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(venv), timeout=timeout,
                          check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(f"{host} | ")), None)
    if line is None:
        raise AssertionError(f"no result line from ansible (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    status, payload = line[len(host) + 3:].split(" => ", 1)
    result = ModuleResult(json.loads(payload))
    result["_status"] = status.strip().rstrip("!")
    result["_stdout"] = proc.stdout
    return result


class PlaybookRun(str):
    """An ansible-playbook run: rc, output, recap per host.

    It is also a str (what failed, the recap and the end of the output) so that `assert run.rc == 0, run` shows
    all of it: pytest prints a str assertion message whole, but shortens the repr of other objects.
    """

    def __new__(cls, proc: subprocess.CompletedProcess):
        recap = {m["host"]: {k: int(v) for k, v in m.groupdict().items() if k != "host"}
                 for m in RECAP_RE.finditer(proc.stdout)}
        text = (f"ansible-playbook rc={proc.returncode}, recap={recap}\n--- stdout (end) ---\n{proc.stdout[-8000:]}"
                f"\n--- stderr (end) ---\n{proc.stderr[-3000:]}")
        self = super().__new__(cls, text)
        self.rc, self.stdout, self.stderr, self.recap = proc.returncode, proc.stdout, proc.stderr, recap
        return self

    def changed(self) -> int:
        return sum(h["changed"] for h in self.recap.values())

    def failed(self) -> int:
        return sum(h["failed"] + h["unreachable"] for h in self.recap.values())


def run_playbook(inventory: Path, playbook: Path, extra_vars: dict | None = None, check: bool = False,
                 diff: bool = False, limit: str | None = None, timeout: float = 900,
                 venv: Path | None = None, extra_args: list[str] | None = None) -> PlaybookRun:
    venv = venv or ANSIBLE_VENV
    cmd = [str(venv / "bin" / "ansible-playbook"), "-i", str(inventory), str(playbook)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if limit:
        cmd += ["--limit", limit]
    cmd += extra_args or []
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(venv), timeout=timeout,
                          check=False)
    return PlaybookRun(proc)


class OwnLab:
    """A lab of at least the asked shape: the one at PGHA_LAB_DIR when it fits, else a private one torn down after.

    Benchmarks use this so `make bench` works on a fresh machine and never disturbs a lab a developer keeps running.
    """

    def __init__(self, clusters: int = 1, members: int = 3, name: str = "bn", net: str = "10.213.9.0/24",
                 lab_dir: Path = Path("/tmp/pgha-bench-lab")):
        self.shape = (clusters, members)
        self.name, self.net, self.private_dir = name, net, lab_dir
        self.started = False

    def __enter__(self) -> Lab:
        if (LAB_DIR / "lab.json").exists():
            lab = Lab(LAB_DIR)
            shape = lab.data.get("shape", {})
            if (shape.get("clusters", 0), shape.get("members", 0)) >= self.shape:
                return lab
        subprocess.run([str(REPO / "lab" / "pgha_lab.py"), "up", "--clusters", str(self.shape[0]),
                        "--members", str(self.shape[1]), "--name", self.name, "--net", self.net,
                        "--dir", str(self.private_dir)], check=True)
        self.started = True
        return Lab(self.private_dir)

    def __exit__(self, *exc) -> None:
        if self.started and not os.environ.get("PGHA_BENCH_KEEP_LAB"):
            subprocess.run([str(REPO / "lab" / "pgha_lab.py"), "down", "--dir", str(self.private_dir)], check=False)


class Writer:
    """lab/writer.py in the background: writes through a load balancer port like an application, until stopped.

        with Writer(lab, port=5000) as writer:
            ...                     # the change under test
        writer.summary              # {"tried", "ok", "failed", "longest_gap_s", "servers", "on_replica", ...}
    """

    def __init__(self, lab: Lab, port: int = 5000, host: str = "lb1", interval: float = 0.05):
        creds = json.loads(Path(lab.data["passwords_file"]).read_text())["superuser"]
        patroni_bin = Path(lab.data["patroni"]["bin"])
        # the lab's Patroni virtualenv has psycopg; Debian's patroni pulls in python3-psycopg2 for /usr/bin/python3
        python = patroni_bin.parent / "python" if (patroni_bin.parent / "python").exists() else Path("/usr/bin/python3")
        self.out = Path(f"/tmp/pgha-writer-{os.getpid()}-{port}.json")
        self.cmd = [str(python), str(REPO / "lab" / "writer.py"), "--interval", str(interval), "--out", str(self.out),
                    "--dsn", f"host={lab.ip(host)} port={port} dbname=postgres user={creds['username']}"]
        self.env = {"PGPASSWORD": creds["password"], "PATH": "/usr/bin:/bin"}
        self.summary: dict = {}

    def __enter__(self) -> "Writer":
        self.proc = subprocess.Popen(self.cmd, env=self.env)
        time.sleep(1)  # connected and writing before the change starts
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(1)  # a gap at the very end still counts
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.summary = json.loads(self.out.read_text())
        self.out.unlink()

#!/usr/bin/env python3
"""pgha lab: a real multi-host Patroni fleet on one machine, built from network namespaces.

Every lab host is a network namespace with its own sshd, hostname and private copies of the folders a Patroni
server keeps its state in, so the collection's roles and modules run over SSH exactly as against separate Debian
servers. Stdlib only; run as root. `pgha_lab.py -h` lists the subcommands, lab/README.md describes the layout.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import grp
import hashlib
import ipaddress
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

LAB_SRC = Path(__file__).resolve().parent
REPO = LAB_SRC.parent
DEFAULT_DIR = REPO / ".lab"
INIT_SCRIPT = LAB_SRC / "init.d-patroni"

# The project's network rule: the lab may only ever use addresses inside this range.
ALLOWED_NET = ipaddress.ip_network("10.213.0.0/16")
IFNAMSIZ = 15
NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,6}$")  # "<name>-client1" must fit IFNAMSIZ
HOST_RE = re.compile(r"^(c\d+m\d+|lb1|client1)$")
MAX_CLUSTERS = 24  # member m of cluster k sits at .(10k+m), which must stay below .255
MAX_MEMBERS = 9

APT_PACKAGES = (
    "etcd-server", "etcd-client", "postgresql-15", "openssh-server", "nftables", "haproxy", "python3-venv",
    "python3-requests", "python3-cryptography", "python3-yaml", "iproute2",
    # not in the base list, but `up --patroni debian` needs Debian's own Patroni build
    "patroni",
    # what the integration tests run on lab hosts: Prometheus (and promtool), the iptables firewall backend,
    # a real terminal for patroni-top, curl for API probes
    "prometheus", "iptables", "tmux", "curl",
)
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
VENV_ROOT = Path("/opt/pgha-lab")
DEFAULT_PATRONI_VERSION = "4.1.5"
DEBIAN_PATRONI = "/usr/bin/patroni"
VENV_READY = ".pgha-lab-ready"

PG_MAJOR = "15"
PG_DATA = f"/var/lib/postgresql/{PG_MAJOR}/main"
PG_BIN = f"/usr/lib/postgresql/{PG_MAJOR}/bin"
PG_LOG = "/var/log/postgresql/postgresql-15-main.log"
PATRONI_CONF = "/etc/patroni/patroni.yml"
PATRONI_PID = "/run/patroni/patroni.pid"
PATRONI_LOG = "/var/log/patroni/patroni.log"
API_PORT, PG_PORT, ETCD_CLIENT_PORT, ETCD_PEER_PORT = 8008, 5432, 2379, 2380

UP_TIMEOUT = 90
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CLEAN_ENV = {"PATH": CLEAN_PATH, "LANG": "C.UTF-8", "HOME": "/root"}


@dataclasses.dataclass(frozen=True)
class PrivatePath:
    """A path each lab host sees its own copy of: <dir>/hosts/<host>/fs/<path> bind-mounted over it."""
    path: str
    kind: str  # "dir" or "file"
    owner: str
    group: str
    mode: int
    seed: str | None = None  # how the host copy starts: see seed_private_path()


# One list on purpose: later issues extend what a lab host keeps private by adding a line here.
PRIVATE_PATHS = (
    PrivatePath("/etc/hostname", "file", "root", "root", 0o644, "hostname"),
    PrivatePath("/etc/hosts", "file", "root", "root", 0o644, "hosts"),
    PrivatePath("/etc/patroni", "dir", "postgres", "postgres", 0o750),
    PrivatePath("/etc/haproxy", "dir", "root", "root", 0o755, "copy"),
    PrivatePath("/etc/nftables.conf", "file", "root", "root", 0o755, "copy"),
    PrivatePath("/etc/pgha", "dir", "root", "root", 0o755),
    PrivatePath("/etc/default/patroni", "file", "root", "root", 0o644, "default-patroni"),
    # Debian's haproxy init script keeps its pid in /run/haproxy.pid, which every host shares: a reload on one lab's
    # load balancer would signal another's HAProxy. /etc/default/haproxy moves it into the private /run/haproxy.
    PrivatePath("/etc/default/haproxy", "file", "root", "root", 0o644, "default-haproxy"),
    PrivatePath("/etc/init.d/patroni", "file", "root", "root", 0o755, "init-script"),
    PrivatePath("/var/lib/postgresql", "dir", "postgres", "postgres", 0o755, "pg-home"),
    PrivatePath("/var/run/postgresql", "dir", "postgres", "postgres", 0o2775),
    PrivatePath("/var/lib/etcd", "dir", "etcd", "etcd", 0o700),
    PrivatePath("/var/log/patroni", "dir", "postgres", "postgres", 0o750),
    PrivatePath("/var/log/postgresql", "dir", "root", "postgres", 0o1775),
    PrivatePath("/run/patroni", "dir", "postgres", "postgres", 0o755),
    PrivatePath("/run/haproxy", "dir", "haproxy", "haproxy", 0o2775),
    PrivatePath("/var/lib/haproxy", "dir", "root", "root", 0o755, "copy"),
    PrivatePath("/run/sshd", "dir", "root", "root", 0o755),
    # the patroni_haproxy role's runtime API helpers: two labs side by side must not run each other's version
    PrivatePath("/usr/local/lib/pgha", "dir", "root", "root", 0o755),
    # A server's root shell starts as Debian ships it (base-files), not with this machine's developer set-up: bash
    # reads ~/.bashrc for every command sshd runs, and a pyenv init there cost each SSH session ~150 ms of CPU.
    PrivatePath("/root/.bashrc", "file", "root", "root", 0o644, "base-files"),
    PrivatePath("/root/.profile", "file", "root", "root", 0o644, "base-files"),
)


class LabError(Exception):
    """A failure the user can act on; main() prints it without a traceback."""


# --------------------------------------------------------------------------------------------------------------
# small helpers

def log(msg: str) -> None:
    print(msg, flush=True)


def run(argv: list[str], *, check: bool = True, capture: bool = True, env: dict | None = None,
        timeout: float | None = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=capture, text=True,
                          env=env if env is not None else CLEAN_ENV, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip() if capture else ""
        raise LabError(f"command failed (exit {proc.returncode}): {shlex.join(argv)}" + (f"\n{detail}" if detail else ""))
    return proc


def uid_gid(user: str, group: str) -> tuple[int, int]:
    # Before `install` ran, service users may not exist yet; root keeps the tree usable for diagnosis.
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        uid = 0
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        gid = 0
    return uid, gid


def write_file(path: Path, text: str, mode: int = 0o644, owner: tuple[str, str] = ("root", "root")) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    # The mode is set before any content lands, so secrets are never world-readable, even briefly.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.chown(tmp, *uid_gid(*owner))
    os.replace(tmp, path)


def tail(path: Path, lines: int = 20) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"(cannot read: {exc.strerror})"
    return "\n".join(data.splitlines()[-lines:]) or "(empty)"


def show_log(host: str, path: Path, why: str) -> None:
    log(f"--- {host}: {why}; log {path} (last 20 lines) ---")
    log(tail(path))


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0) but runs nothing anymore.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# The lab talks only to its own addresses; a proxy from the environment must never see that traffic.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_json(url: str, timeout: float = 2.0):
    with _HTTP.open(url, timeout=timeout) as resp:
        return json.loads(resp.read().decode())


def tcp_open(ip: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def yaml_scalar(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    # A JSON string is a valid YAML double-quoted scalar, which sidesteps YAML 1.1 surprises ("off", "on").
    return json.dumps(str(value))


def _yaml_key(key) -> str:
    key = str(key)
    return key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key) else json.dumps(key)


def _yaml_lines(obj, indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(value, (dict, list)) and value:
                out.append(f"{pad}{_yaml_key(key)}:")
                out.extend(_yaml_lines(value, indent + 2))
            elif value is None:
                out.append(f"{pad}{_yaml_key(key)}:")
            else:
                out.append(f"{pad}{_yaml_key(key)}: {_yaml_inline(value)}")
    else:
        for item in obj:
            if isinstance(item, (dict, list)) and item:
                sub = _yaml_lines(item, indent + 2)
                out.append(f"{pad}- {sub[0].lstrip()}")
                out.extend(sub[1:])
            else:
                out.append(f"{pad}- {_yaml_inline(item)}")
    return out


def _yaml_inline(value) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return yaml_scalar(value)


def to_yaml(obj) -> str:
    return "\n".join(_yaml_lines(obj, 0)) + "\n"


# --------------------------------------------------------------------------------------------------------------
# the lab's shape

@dataclasses.dataclass
class Host:
    name: str
    ip: str
    groups: list[str]
    cluster: str | None = None
    etcd: bool = False


class Lab:
    """Names, addresses and paths of one lab; built from `up` arguments or from <dir>/lab.json."""

    def __init__(self, name: str, net: str, directory: Path, clusters: int, members: int):
        if not NAME_RE.match(name):
            raise LabError(f"--name {name!r}: use 1-7 lower-case letters/digits, starting with a letter "
                           f"(namespace and interface names '<name>-client1' must fit {IFNAMSIZ} characters)")
        try:
            network = ipaddress.ip_network(net, strict=True)
        except ValueError as exc:
            raise LabError(f"--net {net!r} is not a network address with prefix ({exc}); e.g. 10.213.1.0/24") from exc
        if network.version != 4 or not network.subnet_of(ALLOWED_NET) or network.prefixlen > 24:
            raise LabError(f"--net {net}: must be a /24 or larger IPv4 network inside {ALLOWED_NET} "
                           "(the lab may only use addresses there), e.g. 10.213.1.0/24")
        if not 1 <= clusters <= MAX_CLUSTERS or not 1 <= members <= MAX_MEMBERS:
            raise LabError(f"--clusters must be 1..{MAX_CLUSTERS} and --members 1..{MAX_MEMBERS} "
                           f"(got {clusters} and {members}): member m of cluster k gets address .(10k+m)")
        if any(c.isspace() for c in str(directory)):
            raise LabError(f"--dir {directory}: the state dir path must not contain white space (sshd config paths)")
        self.name, self.net, self.dir = name, network, directory
        self.n_clusters, self.n_members = clusters, members
        self.bridge_ip = str(network[1])
        self.hosts: dict[str, Host] = {}
        self.clusters: dict[str, list[str]] = {}
        for k in range(1, clusters + 1):
            scope = f"c{k}"
            self.clusters[scope] = []
            for m in range(1, members + 1):
                host = f"c{k}m{m}"
                self.clusters[scope].append(host)
                self.hosts[host] = Host(host, str(network[10 * k + m]), ["patroni", f"cluster_{scope}"], scope)
        for host in list(self.hosts)[:3]:
            self.hosts[host].etcd = True
            self.hosts[host].groups.append("etcd")
        self.hosts["lb1"] = Host("lb1", str(network[5]), ["lb"])
        self.hosts["client1"] = Host("client1", str(network[6]), ["client"])
        self.patroni: dict = {}

    # kernel object names: all derive from the lab name so labs never collide
    @property
    def bridge(self) -> str:
        return f"{self.name}-br"

    def netns(self, host: str) -> str:
        return f"{self.name}-{host}"

    def veth(self, host: str) -> str:
        return f"{self.name}-{host}"

    # state paths
    def hdir(self, host: str) -> Path:
        return self.dir / "hosts" / host

    def fs(self, host: str, path: str) -> Path:
        """Where the root namespace sees a host's private copy of `path`."""
        return self.hdir(host) / "fs" / path.lstrip("/")

    @property
    def ssh_dir(self) -> Path:
        return self.dir / "ssh"

    @property
    def secrets_file(self) -> Path:
        return self.dir / "secrets.json"

    def etcd_hosts(self) -> list[Host]:
        return [h for h in self.hosts.values() if h.etcd]

    def members(self) -> list[Host]:
        return [h for h in self.hosts.values() if h.cluster]

    def sshd_pid(self, host: str) -> int | None:
        pid = read_pid(self.hdir(host) / "sshd.pid")
        return pid if pid_alive(pid) else None

    def patroni_pid(self, host: str) -> int | None:
        pid = read_pid(self.fs(host, PATRONI_PID))
        return pid if pid_alive(pid) else None

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "net": str(self.net),
            "dir": str(self.dir),
            "bridge": {"name": self.bridge, "ip": self.bridge_ip},
            "shape": {"clusters": self.n_clusters, "members": self.n_members},
            "hosts": {h.name: {"ip": h.ip, "netns": self.netns(h.name), "veth": self.veth(h.name),
                               "groups": h.groups, "sshd_pid": read_pid(self.hdir(h.name) / "sshd.pid")}
                      for h in self.hosts.values()},
            "clusters": self.clusters,
            "etcd": [h.name for h in self.etcd_hosts()],
            "patroni": self.patroni,
            "passwords_file": str(self.secrets_file),
            "ssh": {"config": str(self.dir / "ssh_config"), "key": str(self.ssh_dir / "id_ed25519"),
                    "known_hosts": str(self.ssh_dir / "known_hosts")},
            "inventory": str(self.dir / "inventory.yml"),
        }

    @classmethod
    def load(cls, directory: Path) -> Lab:
        """The lab recorded in <dir>/lab.json (written at the start of `up`, completed at its end)."""
        try:
            data = json.loads((directory / "lab.json").read_text())
        except FileNotFoundError:
            raise LabError(f"no lab in {directory} (no lab.json); start one with `pgha_lab.py up --dir {directory}`")
        except (OSError, ValueError) as exc:
            raise LabError(f"cannot read {directory / 'lab.json'}: {exc}") from exc
        lab = cls(data["name"], data["net"], directory, data["shape"]["clusters"], data["shape"]["members"])
        lab.patroni = data.get("patroni", {})
        return lab

    def save(self) -> None:
        write_file(self.dir / "lab.json", json.dumps(self.to_json(), indent=2) + "\n")


# --------------------------------------------------------------------------------------------------------------
# install

def missing_packages() -> list[str]:
    proc = run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n", *APT_PACKAGES], check=False)
    installed = {line.split()[0] for line in proc.stdout.splitlines() if line.split()[1:2] == ["ii"]}
    return [p for p in APT_PACKAGES if p not in installed]


def apt_install(packages: list[str]) -> None:
    saved = POLICY_RC_D.with_name("policy-rc.d.pgha-lab-saved")
    had_policy = POLICY_RC_D.exists() or POLICY_RC_D.is_symlink()
    if had_policy:
        os.replace(POLICY_RC_D, saved)
    try:
        # exit 101 = "action forbidden": package scripts must not start etcd, PostgreSQL, sshd or HAProxy in the
        # root namespace, where they would take the ports and data directories the lab hosts expect to own.
        write_file(POLICY_RC_D, "#!/bin/sh\n# written by the pgha lab installer while apt runs; removed after\n"
                                "exit 101\n", mode=0o755)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        log(f"install: apt-get install {' '.join(packages)}")
        run(["apt-get", "update"], capture=False, env=env, timeout=900)
        run(["apt-get", "install", "-y", *packages], capture=False, env=env, timeout=1800)
    finally:
        POLICY_RC_D.unlink(missing_ok=True)
        if had_policy:
            os.replace(saved, POLICY_RC_D)


def venv_path(version: str) -> Path:
    return VENV_ROOT / f"patroni-{version}"


def ensure_venv(version: str) -> Path:
    venv = venv_path(version)
    if (venv / VENV_READY).exists() and (venv / "bin" / "patroni").exists():
        return venv
    if not re.fullmatch(r"[0-9][0-9A-Za-z.+-]*", version):
        raise LabError(f"--patroni-version {version!r} is not a version number, e.g. {DEFAULT_PATRONI_VERSION}")
    shutil.rmtree(venv, ignore_errors=True)  # a half-built venv from an interrupted run
    VENV_ROOT.mkdir(parents=True, exist_ok=True)
    # Debian's python (not pyenv's under /root): the postgres user must be able to run this interpreter.
    log(f"install: virtualenv {venv} with patroni {version}")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV")}
    try:
        run(["/usr/bin/python3", "-m", "venv", str(venv)], env=env)
        run([str(venv / "bin" / "pip"), "install", "--quiet", f"patroni[etcd3,psycopg3]=={version}",
             "psycopg[binary]"], capture=False, env=env, timeout=1800)
        out = run([str(venv / "bin" / "patroni"), "--version"], env=env).stdout.strip()
    except (LabError, subprocess.TimeoutExpired):
        shutil.rmtree(venv, ignore_errors=True)
        raise
    if version not in out:
        shutil.rmtree(venv, ignore_errors=True)
        raise LabError(f"{venv}/bin/patroni --version printed {out!r}, expected {version}")
    (venv / VENV_READY).write_text(out + "\n")
    os.chmod(venv, 0o755)
    return venv


def cmd_install(args) -> int:
    start = time.monotonic()
    missing = missing_packages()
    if missing:
        apt_install(missing)
        still = missing_packages()
        if still:
            raise LabError(f"apt-get finished but these packages are still not installed: {' '.join(still)}")
    venv = ensure_venv(args.patroni_version)
    log(f"install: ok in {time.monotonic() - start:.1f}s (packages present, patroni venv {venv})")
    return 0


# --------------------------------------------------------------------------------------------------------------
# teardown

def netns_list() -> list[str]:
    proc = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]


def netns_pids(ns: str) -> list[int]:
    proc = run(["ip", "netns", "pids", ns], check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def proc_comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def lab_namespaces(name: str) -> list[str]:
    prefix = f"{name}-"
    return [ns for ns in netns_list() if ns.startswith(prefix) and HOST_RE.match(ns[len(prefix):])]


def state_dirs_of(namespaces: list[str]) -> set[Path]:
    """State dirs of running lab hosts, read from their sshd command lines (`-f <dir>/hosts/<h>/sshd_config`)."""
    dirs = set()
    for ns in namespaces:
        for pid in netns_pids(ns):
            try:
                # sshd rewrites its title into one space-separated string, so search rather than split on NULs
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            found = re.search(r"-f (/\S+)/hosts/[^/\s]+/sshd_config", cmdline)
            if found:
                dirs.add(Path(found.group(1)))
    return dirs


def kill_namespaces(namespaces: list[str]) -> None:
    """Stop everything running in these namespaces, leaving no PostgreSQL shared memory behind."""
    if not namespaces:
        return
    # First wave: everything except PostgreSQL, so Patroni cannot restart a postmaster we are about to stop.
    for ns in namespaces:
        for pid in netns_pids(ns):
            if proc_comm(pid) != "postgres":
                with_signal(pid, signal.SIGKILL)
    # SIGQUIT = immediate shutdown: the postmaster still removes its shared memory, which SIGKILL would leak.
    for ns in namespaces:
        for pid in netns_pids(ns):
            with_signal(pid, signal.SIGQUIT)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(netns_pids(ns) for ns in namespaces):
        time.sleep(0.2)
    deadline = time.monotonic() + 10
    while True:
        left = {ns: netns_pids(ns) for ns in namespaces}
        left = {ns: pids for ns, pids in left.items() if pids}
        if not left:
            return
        if time.monotonic() > deadline:
            raise LabError(f"processes survive SIGKILL in lab namespaces: {left}")
        for pids in left.values():
            for pid in pids:
                with_signal(pid, signal.SIGKILL)
        time.sleep(0.2)


def with_signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def link_names() -> list[str]:
    proc = run(["ip", "-o", "link", "show"], check=False)
    names = []
    for line in proc.stdout.splitlines():
        parts = line.split(": ", 2)
        if len(parts) >= 2:
            names.append(parts[1].split("@", 1)[0])
    return names


def teardown(name: str | None, directory: Path | None) -> list[str]:
    """Remove lab `name` and the lab state in `directory`; tolerate any part being gone already."""
    done = []
    names = set()
    if directory is not None and (directory / "lab.json").exists():
        try:
            names.add(json.loads((directory / "lab.json").read_text())["name"])
        except (OSError, ValueError, KeyError):
            pass
    if name:
        names.add(name)
    dirs = {directory} if directory is not None else set()
    for lab_name in sorted(names):
        namespaces = lab_namespaces(lab_name)
        dirs |= state_dirs_of(namespaces)
        kill_namespaces(namespaces)
        for ns in namespaces:
            run(["ip", "netns", "del", ns], check=False)
        # Deleting a namespace normally takes its veth pair along; delete the root ends too in case a namespace
        # lingers because something still references it.
        prefix = f"{lab_name}-"
        for link in link_names():
            if link.startswith(prefix) and (HOST_RE.match(link[len(prefix):]) or link == f"{lab_name}-br"):
                run(["ip", "link", "del", link], check=False)
        if namespaces:
            done.append(f"lab {lab_name}: {len(namespaces)} namespaces")
    for d in sorted(dirs):
        if remove_state_dir(d):
            done.append(f"state {d}")
    return done


def remove_state_dir(directory: Path) -> bool:
    if not directory.exists():
        return False
    # Only a directory the lab made is wiped; a mistyped --dir must never cost someone their files.
    if not (directory / "lab.json").exists() and any(directory.iterdir()):
        raise LabError(f"{directory} is not empty and has no lab.json: not a lab state dir, refusing to delete it")
    # Unlinking fsynced PostgreSQL files is slow on a discard-mounted disk (~2 s per data dir); hosts in parallel.
    hosts = [p for p in (directory / "hosts").glob("*") if p.is_dir()] if (directory / "hosts").is_dir() else []
    if hosts:
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(hosts))) as pool:
            list(pool.map(shutil.rmtree, hosts))
    shutil.rmtree(directory)
    return True


def default_name(directory: Path) -> str:
    if directory == DEFAULT_DIR.resolve():
        return "pgha"
    return "l" + hashlib.sha1(str(directory).encode()).hexdigest()[:5]


def cmd_down(args) -> int:
    directory = Path(args.dir).resolve()
    name = args.name
    if name is None and not (directory / "lab.json").exists():
        log(f"down: no lab in {directory}; nothing to do")
        return 0
    done = teardown(name, directory)
    log("down: removed " + (", ".join(done) if done else "nothing (already gone)"))
    return 0


# --------------------------------------------------------------------------------------------------------------
# up: network

def check_net_free(lab: Lab) -> None:
    proc = run(["ip", "-j", "-4", "addr", "show"], check=False)
    try:
        ifaces = json.loads(proc.stdout or "[]")
    except ValueError:
        return
    for iface in ifaces:
        for addr in iface.get("addr_info", []):
            net = ipaddress.ip_network(f"{addr['local']}/{addr['prefixlen']}", strict=False)
            if net.overlaps(lab.net):
                raise LabError(f"--net {lab.net} overlaps {addr['local']}/{addr['prefixlen']} on interface "
                               f"{iface['ifname']} (another lab?); choose another --net inside {ALLOWED_NET}")


def build_network(lab: Lab) -> None:
    prefix = lab.net.prefixlen
    run(["ip", "link", "add", lab.bridge, "type", "bridge"])
    run(["ip", "addr", "add", f"{lab.bridge_ip}/{prefix}", "dev", lab.bridge])
    run(["ip", "link", "set", lab.bridge, "up"])
    for host in lab.hosts.values():
        ns, veth = lab.netns(host.name), lab.veth(host.name)
        run(["ip", "netns", "add", ns])
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "link", "set", veth, "master", lab.bridge, "up"])
        run(["ip", "-n", ns, "addr", "add", f"{host.ip}/{prefix}", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])


# --------------------------------------------------------------------------------------------------------------
# up: host file systems, ssh

def copy_tree(src: Path, dst: Path) -> None:
    """Copy regular files, directories and symlinks (sockets and devices in seeded folders are skipped)."""
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        dst.mkdir(exist_ok=True)
        shutil.copystat(src, dst)
        for child in src.iterdir():
            copy_tree(child, dst / child.name)
    elif src.is_file():
        shutil.copy2(src, dst)
    else:
        return
    st = src.lstat()
    os.lchown(dst, st.st_uid, st.st_gid)


def seed_private_path(lab: Lab, host: Host, spec: PrivatePath, dst: Path, patroni_bin: str) -> None:
    if spec.seed == "copy" and os.path.lexists(spec.path):
        copy_tree(Path(spec.path), dst)
    elif spec.seed == "hostname":
        dst.write_text(f"{host.name}\n")
    elif spec.seed == "hosts":
        lines = ["127.0.0.1\tlocalhost", f"{lab.bridge_ip}\tcontroller"]
        lines += [f"{h.ip}\t{h.name}" for h in lab.hosts.values()]
        dst.write_text("\n".join(lines) + "\n")
    elif spec.seed == "default-patroni":
        dst.write_text("# Written by the pgha lab: the Patroni build that /etc/init.d/patroni runs on this host.\n"
                       f"PATRONI={patroni_bin}\n")
    elif spec.seed == "default-haproxy":
        dst.write_text("# Written by the pgha lab: this host's HAProxy pid file, in its private /run/haproxy.\n"
                       "PIDFILE=/run/haproxy/haproxy.pid\n")
    elif spec.seed == "init-script":
        shutil.copyfile(INIT_SCRIPT, dst)
    elif spec.seed == "base-files":
        shipped = Path("/usr/share/base-files") / ("dot" + Path(spec.path).name)
        dst.write_bytes(shipped.read_bytes() if shipped.exists() else b"")
    elif spec.seed == "pg-home":
        # What Debian's postgresql-15 package leaves: the version folder Patroni creates the data dir in.
        version_dir = dst / PG_MAJOR
        version_dir.mkdir()
        os.chown(version_dir, *uid_gid("postgres", "postgres"))


def prepare_host_fs(lab: Lab, host: Host, patroni_bin: str) -> None:
    for spec in PRIVATE_PATHS:
        dst = lab.fs(host.name, spec.path)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if spec.kind == "dir":
            dst.mkdir(exist_ok=True)
        else:
            dst.touch()
        seed_private_path(lab, host, spec, dst, patroni_bin)
        os.chown(dst, *uid_gid(spec.owner, spec.group))
        os.chmod(dst, spec.mode)


def ensure_mount_points() -> None:
    """Bind mounts need their target to exist; create what a fresh machine lacks (empty, in the root fs)."""
    for spec in PRIVATE_PATHS:
        target = Path(spec.path)
        if target.exists():
            continue
        if spec.kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()


def make_ssh(lab: Lab) -> None:
    lab.ssh_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(lab.ssh_dir, 0o700)
    key = lab.ssh_dir / "id_ed25519"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"pgha-lab-{lab.name}", "-f", str(key)])
    shutil.copyfile(f"{key}.pub", lab.ssh_dir / "authorized_keys")
    known, config = [], []
    for host in lab.hosts.values():
        hkey = lab.hdir(host.name) / "ssh_host_ed25519_key"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{host.name}@{lab.name}", "-f", str(hkey)])
        keytype, keydata = Path(f"{hkey}.pub").read_text().split()[:2]
        known.append(f"{host.name},{host.ip} {keytype} {keydata}")
        write_file(lab.hdir(host.name) / "sshd_config", sshd_config(lab, host))
        config += [f"Host {host.name}", f"  HostName {host.ip}", ""]
    write_file(lab.ssh_dir / "known_hosts", "\n".join(known) + "\n")
    config += [
        "Host *",
        "  User root",
        f"  IdentityFile {key}",
        "  IdentitiesOnly yes",
        f"  UserKnownHostsFile {lab.ssh_dir / 'known_hosts'}",
        "  GlobalKnownHostsFile /dev/null",
        "  StrictHostKeyChecking yes",
        "  PasswordAuthentication no",
        "  BatchMode yes",
        "  ConnectTimeout 10",
        "  LogLevel ERROR",
    ]
    write_file(lab.dir / "ssh_config", f"# pgha lab {lab.name}: ssh -F {lab.dir / 'ssh_config'} c1m1\n"
               + "\n".join(config) + "\n")


def sshd_config(lab: Lab, host: Host) -> str:
    hdir = lab.hdir(host.name)
    return "\n".join([
        f"# pgha lab {lab.name}, host {host.name}",
        f"ListenAddress {host.ip}:22",
        "AddressFamily inet",
        f"HostKey {hdir / 'ssh_host_ed25519_key'}",
        f"PidFile {hdir / 'sshd.pid'}",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        f"AuthorizedKeysFile {lab.ssh_dir / 'authorized_keys'}",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        # the keys live in the lab's state dir, whose owners and modes sshd would otherwise reject
        "StrictModes no",
        "UseDNS no",
        "PrintMotd no",
        "AcceptEnv LANG LC_*",
        # Ansible opens many sessions at once (forks x hosts) against one sshd per host
        "MaxStartups 100:30:200",
        "MaxSessions 100",
        "Subsystem sftp /usr/lib/openssh/sftp-server",
        "",
    ])


def host_boot_script(lab: Lab, host: Host) -> str:
    hdir = lab.hdir(host.name)
    q = shlex.quote
    lines = [
        "set -e",
        f"echo {q(host.name)} > /proc/sys/kernel/hostname",
        # The copy of /run/netns in this mount namespace would pin every other lab's network namespaces and
        # keep them (and their veths) alive after `ip netns del`.
        "umount -l /run/netns 2>/dev/null || true",
        # PostgreSQL's dynamic shared memory lives in /dev/shm; a private one vanishes with the host.
        "mount -t tmpfs -o mode=1777,nosuid,nodev,size=256m shm /dev/shm",
    ]
    for spec in PRIVATE_PATHS:
        lines.append(f"mount --bind {q(str(lab.fs(host.name, spec.path)))} {q(spec.path)}")
    lines.append(f"exec /usr/sbin/sshd -D -f {q(str(hdir / 'sshd_config'))} -E {q(str(hdir / 'sshd.log'))}")
    return "\n".join(lines) + "\n"


def start_sshd(lab: Lab, host: Host) -> subprocess.Popen:
    hdir = lab.hdir(host.name)
    write_file(hdir / "boot.sh", host_boot_script(lab, host), mode=0o755)
    with open(hdir / "boot.log", "ab") as out:
        return subprocess.Popen(
            ["ip", "netns", "exec", lab.netns(host.name), "unshare", "--mount", "--uts", "--propagation", "private",
             "sh", "-c", (hdir / "boot.sh").read_text()],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=CLEAN_ENV, cwd="/",
            start_new_session=True)


def wait_sshd(lab: Lab, procs: dict[str, subprocess.Popen], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    pending = set(procs)
    while pending:
        for name in sorted(pending):
            host = lab.hosts[name]
            if procs[name].poll() is not None:
                hdir = lab.hdir(name)
                log_path = hdir / "sshd.log" if (hdir / "sshd.log").exists() else hdir / "boot.log"
                show_log(name, log_path, f"sshd exited with {procs[name].returncode}")
                raise LabError(f"sshd of {name} did not start; see {log_path}")
            if lab.sshd_pid(name) and tcp_open(host.ip, 22):
                pending.discard(name)
        if pending and time.monotonic() > deadline:
            name = sorted(pending)[0]
            show_log(name, lab.hdir(name) / "sshd.log", "sshd not listening")
            raise LabError(f"sshd of {', '.join(sorted(pending))} not listening on port 22 after {timeout:.0f}s")
        time.sleep(0.05)


def in_host(lab: Lab, host: str, argv: list[str]) -> list[str]:
    """argv run inside a host: its network, mount and UTS namespaces, i.e. what an SSH session there sees."""
    pid = lab.sshd_pid(host)
    if not pid:
        raise LabError(f"host {host} of lab {lab.name} is not running (no live sshd, pid file "
                       f"{lab.hdir(host) / 'sshd.pid'}); run `pgha_lab.py up` again")
    return ["nsenter", "-t", str(pid), "-n", "-m", "-u", "--", "env", "-i", f"PATH={CLEAN_PATH}", "LANG=C.UTF-8",
            *argv]


# --------------------------------------------------------------------------------------------------------------
# up: etcd and Patroni

def start_etcd(lab: Lab) -> None:
    members = lab.etcd_hosts()
    initial = ",".join(f"{h.name}=http://{h.ip}:{ETCD_PEER_PORT}" for h in members)
    uid = uid_gid("etcd", "etcd")[0]
    for host in members:
        run_as = ["setpriv", "--reuid=etcd", "--regid=etcd", "--init-groups", "--"] if uid else []
        argv = in_host(lab, host.name, [
            *run_as, "/usr/bin/etcd", "--name", host.name, "--data-dir", "/var/lib/etcd",
            "--listen-client-urls", f"http://{host.ip}:{ETCD_CLIENT_PORT}",
            "--advertise-client-urls", f"http://{host.ip}:{ETCD_CLIENT_PORT}",
            "--listen-peer-urls", f"http://{host.ip}:{ETCD_PEER_PORT}",
            "--initial-advertise-peer-urls", f"http://{host.ip}:{ETCD_PEER_PORT}",
            "--initial-cluster", initial, "--initial-cluster-state", "new",
            "--initial-cluster-token", f"pgha-lab-{lab.name}", "--logger", "zap", "--log-outputs", "stderr",
            # Raft heartbeats at etcd's default 100 ms cost the 3 members of every lab a steady share of the 2
            # cores the tests share, and a 1 s election timeout elects a new etcd leader whenever the machine is
            # busy; Patroni's TTL (30 s) is far above both.
            "--heartbeat-interval", "300", "--election-timeout", "3000"])
        with open(lab.hdir(host.name) / "etcd.log", "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    env=CLEAN_ENV, cwd="/", start_new_session=True)
        # nsenter, env and setpriv all exec, so this is etcd's own pid
        (lab.hdir(host.name) / "etcd.pid").write_text(f"{proc.pid}\n")


def wait_etcd(lab: Lab, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    pending = {h.name for h in lab.etcd_hosts()}
    last = {}
    while pending:
        for name in sorted(pending):
            host = lab.hosts[name]
            if not pid_alive(read_pid(lab.hdir(name) / "etcd.pid")):
                show_log(name, lab.hdir(name) / "etcd.log", "etcd exited")
                raise LabError(f"etcd on {name} exited during start; see {lab.hdir(name) / 'etcd.log'}")
            try:
                if http_json(f"http://{host.ip}:{ETCD_CLIENT_PORT}/health").get("health") == "true":
                    pending.discard(name)
            except (OSError, ValueError) as exc:
                last[name] = str(exc)
        if pending and time.monotonic() > deadline:
            name = sorted(pending)[0]
            show_log(name, lab.hdir(name) / "etcd.log", f"etcd not healthy ({last.get(name, 'no answer')})")
            raise LabError(f"etcd on {', '.join(sorted(pending))} not healthy after {timeout:.0f}s")
        time.sleep(0.2)


def make_secrets(lab: Lab) -> dict:
    creds = {
        "superuser": {"username": "postgres", "password": secrets.token_urlsafe(18)},
        "replication": {"username": "replicator", "password": secrets.token_urlsafe(18)},
    }
    write_file(lab.secrets_file, json.dumps(creds, indent=2) + "\n", mode=0o600)
    return creds


def patroni_config(lab: Lab, host: Host, creds: dict, loop_wait: int) -> dict:
    etcd = [f"{h.ip}:{ETCD_CLIENT_PORT}" for h in lab.etcd_hosts()]
    return {
        "scope": host.cluster,
        "name": host.name,
        "restapi": {"listen": f"{host.ip}:{API_PORT}", "connect_address": f"{host.ip}:{API_PORT}"},
        "etcd3": {"hosts": etcd},
        "bootstrap": {
            "dcs": {
                "ttl": 30,
                "loop_wait": loop_wait,
                "retry_timeout": 10,
                "maximum_lag_on_failover": 1048576,
                "postgresql": {
                    "use_pg_rewind": True,
                    # DCS-managed: Patroni applies these cluster-wide and refuses local overrides
                    "parameters": {"max_connections": 50, "wal_level": "replica", "hot_standby": "on",
                                   "wal_log_hints": "on", "max_wal_senders": 10, "max_replication_slots": 10},
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
        },
        "postgresql": {
            "listen": f"{host.ip}:{PG_PORT}",
            "connect_address": f"{host.ip}:{PG_PORT}",
            "use_unix_socket": True,
            "data_dir": PG_DATA,
            "bin_dir": PG_BIN,
            # the default would sit in a folder every lab host shares
            "pgpass": "/var/lib/postgresql/.pgpass_patroni",
            "authentication": {
                "superuser": dict(creds["superuser"]),
                "replication": dict(creds["replication"]),
            },
            "parameters": {
                # 2 cores and up to ~75 PostgreSQL instances per machine: keep each one small
                "shared_buffers": "32MB",
                "unix_socket_directories": "/var/run/postgresql",
                "logging_collector": "on",
                "log_directory": "/var/log/postgresql",
                "log_filename": Path(PG_LOG).name,
            },
            "pg_hba": [
                "local all all trust",
                f"host replication {creds['replication']['username']} {lab.net} scram-sha-256",
                f"host all all {lab.net} scram-sha-256",
            ],
        },
        "watchdog": {"mode": "off"},
    }


def resolve_patroni(args) -> dict:
    if args.patroni == "debian":
        if not os.access(DEBIAN_PATRONI, os.X_OK):
            raise LabError(f"{DEBIAN_PATRONI} missing: install Debian's patroni package (`pgha_lab.py install`)")
        binary = DEBIAN_PATRONI
    else:
        venv = venv_path(args.patroni_version)
        binary = str(venv / "bin" / "patroni")
        if not (venv / VENV_READY).exists():
            raise LabError(f"Patroni {args.patroni_version} virtualenv {venv} is missing or incomplete: run "
                           f"`lab/pgha_lab.py install --patroni-version {args.patroni_version}` first")
    return {"source": args.patroni, "version": patroni_version(binary), "bin": binary}


def patroni_version(binary: str) -> str:
    # Reading version.py costs nothing; `patroni --version` imports all of Patroni (seconds on a busy machine).
    roots = [Path("/usr/lib/python3/dist-packages")] if binary == DEBIAN_PATRONI else \
        sorted(Path(binary).parent.parent.glob("lib/python3*/site-packages"))
    for root in roots:
        try:
            found = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", (root / "patroni" / "version.py").read_text())
        except OSError:
            continue
        if found:
            return found.group(1)
    out = run([binary, "--version"]).stdout.strip()
    return out.split()[-1] if out else "unknown"


def start_patroni(lab: Lab, hosts: list[Host]) -> None:
    procs = {h.name: subprocess.Popen(in_host(lab, h.name, ["/etc/init.d/patroni", "start"]),
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, env=CLEAN_ENV, cwd="/")
             for h in hosts}
    for name, proc in procs.items():
        out = proc.communicate(timeout=60)[0]
        if proc.returncode != 0:
            log(out.rstrip())
            show_log(name, lab.fs(name, PATRONI_LOG), "patroni did not start")
            raise LabError(f"`/etc/init.d/patroni start` on {name} failed (exit {proc.returncode})")


def cluster_health(lab: Lab, scope: str) -> tuple[bool, str, dict[str, str]]:
    """(healthy, reason, {bad host: reason}) for one cluster: 1 running leader and M-1 streaming replicas."""
    members = lab.clusters[scope]
    cluster = None
    bad: dict[str, str] = {}
    for name in members:
        try:
            cluster = http_json(f"http://{lab.hosts[name].ip}:{API_PORT}/cluster")
            break
        except (OSError, ValueError) as exc:
            bad[name] = f"REST API not answering ({exc})"
    if cluster is None:
        return False, "no member's REST API answers", bad
    bad.clear()
    by_name = {m.get("name"): m for m in cluster.get("members", [])}
    leaders = [m for m in by_name.values() if m.get("role") == "leader" and m.get("state") == "running"]
    if len(leaders) != 1:
        states = ", ".join(f"{n}={by_name[n].get('role')}/{by_name[n].get('state')}" for n in sorted(by_name))
        return False, f"{len(leaders)} running leaders ({states or 'no members registered'})", \
            {n: "no running leader in the cluster" for n in members}
    leader = leaders[0]["name"]
    try:
        # 3.0.2 reports replicas as "running" in /cluster; the leader's walsenders say whether they stream.
        status = http_json(f"http://{lab.hosts[leader].ip}:{API_PORT}/patroni")
        streaming = {r.get("application_name") for r in status.get("replication", []) if r.get("state") == "streaming"}
    except (OSError, ValueError) as exc:
        return False, f"leader {leader} REST API not answering ({exc})", {leader: "REST API not answering"}
    # From 3.0.4 on /cluster says "streaming" itself, one loop_wait after the walsender does; wait for that too, so
    # whoever reads /cluster right after `up` sees the settled picture.
    replica_states = ("streaming",) if version_tuple(lab.patroni.get("version", "")) >= (3, 0, 4) \
        else ("streaming", "running")
    for name in members:
        if name == leader:
            continue
        member = by_name.get(name)
        if member is None:
            bad[name] = "not registered in the DCS"
        elif name not in streaming or member.get("state") not in replica_states:
            bad[name] = f"not streaming from {leader} (role {member.get('role')}, state {member.get('state')})"
    if bad:
        return False, "; ".join(f"{n}: {r}" for n, r in sorted(bad.items())), bad
    return True, f"leader {leader}, {len(members) - 1} streaming", {}


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def wait_healthy(lab: Lab, started: float, timeout: float = UP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    pending = set(lab.clusters)
    results: dict[str, tuple] = {}
    while pending:
        for host in lab.members():
            if host.cluster in pending and not lab.patroni_pid(host.name):
                show_log(host.name, lab.fs(host.name, PATRONI_LOG), "patroni process died")
                raise LabError(f"patroni on {host.name} exited while the cluster formed; "
                               f"see {lab.fs(host.name, PATRONI_LOG)}")
        for scope in sorted(pending):
            results[scope] = cluster_health(lab, scope)
            if results[scope][0]:
                pending.discard(scope)
                log(f"up: cluster {scope} healthy after {time.monotonic() - started:.1f}s: {results[scope][1]}")
        if pending and time.monotonic() > deadline:
            for scope in sorted(pending):
                reason, bad = results[scope][1:]
                log(f"up: cluster {scope} not healthy after {timeout:.0f}s: {reason}")
                for name in sorted(bad):
                    show_log(name, lab.fs(name, PATRONI_LOG), bad[name])
                    pg_log = lab.fs(name, PG_LOG)
                    if pg_log.exists() and pg_log.stat().st_size:
                        show_log(name, pg_log, "PostgreSQL log")
            raise LabError(f"clusters {', '.join(sorted(pending))} did not get a leader and "
                           f"{lab.n_members - 1} streaming replicas within {timeout:.0f}s")
        if pending:
            time.sleep(1)


# --------------------------------------------------------------------------------------------------------------
# up: outputs

def write_inventory(lab: Lab) -> None:
    common_args = (f"-o UserKnownHostsFile={lab.ssh_dir / 'known_hosts'} -o StrictHostKeyChecking=yes")
    hosts = {}
    for host in lab.hosts.values():
        hv = {
            "ansible_host": host.ip,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(lab.ssh_dir / "id_ed25519"),
            "ansible_ssh_common_args": common_args,
            "ansible_python_interpreter": "/usr/bin/python3",
        }
        if host.cluster:
            hv["patroni_api_url"] = f"http://{host.ip}:{API_PORT}"
            hv["patroni_pg_port"] = PG_PORT
        hosts[host.name] = hv
    children: dict = {"patroni": {"hosts": {h.name: None for h in lab.members()}}}
    for scope, members in lab.clusters.items():
        children[f"cluster_{scope}"] = {"vars": {"patroni_scope": scope}, "hosts": {m: None for m in members}}
    children["etcd"] = {"hosts": {h.name: None for h in lab.etcd_hosts()}}
    children["lb"] = {"hosts": {"lb1": None}}
    children["client"] = {"hosts": {"client1": None}}
    # patronictl next to the patroni the lab runs (venv or Debian's), for playbooks that drive it (secure_api.yml)
    patronictl = str(Path(lab.patroni["bin"]).parent / "patronictl")
    inventory = {"all": {"vars": {"pgha_lab_dir": str(lab.dir), "pgha_patronictl": patronictl},
                         "hosts": hosts, "children": children}}
    write_file(lab.dir / "inventory.yml",
               f"# pgha lab {lab.name} ({lab.net}); written by lab/pgha_lab.py up, rewritten on every up\n"
               + to_yaml(inventory))


def cmd_up(args) -> int:
    started = time.monotonic()
    directory = Path(args.dir).resolve()
    name = args.name or default_name(directory)
    lab = Lab(name, args.net, directory, args.clusters, args.members)
    if args.loop_wait < 1:
        raise LabError(f"--loop-wait {args.loop_wait}: must be at least 1 second")
    lab.patroni = resolve_patroni(args)
    # `up` replaces its own lab, never a live lab of the same name that another state dir (another checkout, a
    # test runner, a benchmark) is using: that lab would vanish under whoever runs it.
    owners = state_dirs_of(lab_namespaces(name)) - {directory}
    if owners:
        raise LabError(f"lab name {name!r} is in use by the running lab in {', '.join(map(str, sorted(owners)))}; "
                       f"take that one down (lab/pgha_lab.py down --dir DIR) or give this one another --name "
                       f"and --net")
    gone = teardown(name, directory)
    if gone:
        log(f"up: removed the previous lab first ({', '.join(gone)})")
    check_net_free(lab)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    lab.save()  # early, so `down --dir` finds a lab that failed half-way
    ensure_mount_points()
    for host in lab.hosts.values():
        prepare_host_fs(lab, host, lab.patroni["bin"])
    make_ssh(lab)
    creds = make_secrets(lab)
    for host in lab.members():
        write_file(lab.fs(host.name, PATRONI_CONF), to_yaml(patroni_config(lab, host, creds, args.loop_wait)),
                   mode=0o600, owner=("postgres", "postgres"))
    build_network(lab)
    procs = {name: start_sshd(lab, host) for name, host in lab.hosts.items()}
    wait_sshd(lab, procs)
    lab.save()
    write_inventory(lab)
    log(f"up: {len(lab.hosts)} hosts with sshd after {time.monotonic() - started:.1f}s")
    start_etcd(lab)
    wait_etcd(lab)
    log(f"up: etcd on {', '.join(h.name for h in lab.etcd_hosts())} healthy after {time.monotonic() - started:.1f}s")
    start_patroni(lab, lab.members())
    log(f"up: patroni {lab.patroni['version']} ({lab.patroni['source']}) started on {len(lab.members())} hosts "
        f"after {time.monotonic() - started:.1f}s")
    wait_healthy(lab, started)
    log(f"up: lab {lab.name} ready in {time.monotonic() - started:.1f}s: {lab.n_clusters} cluster(s) x "
        f"{lab.n_members}, inventory {lab.dir / 'inventory.yml'}, ssh -F {lab.dir / 'ssh_config'} c1m1")
    return 0


# --------------------------------------------------------------------------------------------------------------
# status and test helpers

def cmd_status(args) -> int:
    lab = Lab.load(Path(args.dir).resolve())
    rows = [("HOST", "ADDRESS", "SSHD", "PATRONI", "ROLE")]
    for host in lab.hosts.values():
        sshd = "up" if lab.sshd_pid(host.name) else "down"
        patroni, role = "-", "-"
        if host.cluster:
            patroni = "up" if lab.patroni_pid(host.name) else "down"
            try:
                role = http_json(f"http://{host.ip}:{API_PORT}/patroni").get("role", "?")
            except (OSError, ValueError):
                role = "unreachable"
        rows.append((host.name, host.ip, sshd, patroni, role))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        log("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def member_of(lab: Lab, host: str) -> Host:
    if host not in lab.hosts or not lab.hosts[host].cluster:
        members = ", ".join(h.name for h in lab.members())
        raise LabError(f"{host!r} is not a Patroni host of lab {lab.name} (hosts: {members})")
    return lab.hosts[host]


def cmd_patroni(args) -> int:
    lab = Lab.load(Path(args.dir).resolve())
    host = member_of(lab, args.host)
    if args.action == "kill":
        pid = lab.patroni_pid(host.name)
        if not pid:
            raise LabError(f"patroni on {host.name} is not running (pid file {lab.fs(host.name, PATRONI_PID)})")
        os.kill(pid, signal.SIGKILL)
        log(f"patroni on {host.name}: killed pid {pid} with SIGKILL")
        return 0
    proc = run(in_host(lab, host.name, ["/etc/init.d/patroni", args.action]), check=False, timeout=120)
    out = (proc.stdout + proc.stderr).strip()
    log(f"{host.name}: {out}" if out else f"{host.name}: /etc/init.d/patroni {args.action} exit {proc.returncode}")
    return proc.returncode


def cmd_postgres(args) -> int:
    lab = Lab.load(Path(args.dir).resolve())
    host = member_of(lab, args.host)
    pidfile = lab.fs(host.name, f"{PG_DATA}/postmaster.pid")
    pid = read_pid(pidfile)
    if not pid_alive(pid) or proc_comm(pid) != "postgres":
        raise LabError(f"PostgreSQL on {host.name} is not running (postmaster.pid {pidfile})")
    os.kill(pid, signal.SIGKILL)
    log(f"postgres on {host.name}: killed postmaster pid {pid} with SIGKILL")
    return 0


# --------------------------------------------------------------------------------------------------------------

def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    dir_opt = argparse.ArgumentParser(add_help=False)
    dir_opt.add_argument("--dir", default=str(DEFAULT_DIR), help=f"lab state dir (default {DEFAULT_DIR})")

    p = sub.add_parser("install", help="apt packages and the Patroni virtualenv")
    p.add_argument("--patroni-version", default=DEFAULT_PATRONI_VERSION)
    p.set_defaults(func=cmd_install)

    p = sub.add_parser("up", parents=[dir_opt], help="build the lab and wait until every cluster is healthy")
    p.add_argument("--clusters", type=int, default=1)
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--patroni", choices=("pypi", "debian"), default="pypi")
    p.add_argument("--patroni-version", default=DEFAULT_PATRONI_VERSION, help="with --patroni pypi")
    p.add_argument("--net", default="10.213.0.0/24")
    p.add_argument("--name", help="prefix of namespaces and links, 1-7 characters (default: pgha for the "
                                  "default --dir, else derived from --dir so that labs in different dirs never "
                                  "share one)")
    p.add_argument("--loop-wait", type=int, default=10, help="Patroni loop_wait (default 10, as in production)")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("down", parents=[dir_opt], help="stop and remove everything of the lab")
    p.add_argument("--name", help="also remove this lab's namespaces when the state dir is gone")
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("status", parents=[dir_opt], help="one line per host")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("patroni", parents=[dir_opt], help="act on one host's Patroni through its init script")
    p.add_argument("host")
    p.add_argument("action", choices=("start", "stop", "reload", "kill"))
    p.set_defaults(func=cmd_patroni)

    p = sub.add_parser("postgres", parents=[dir_opt], help="kill -9 one host's postmaster")
    p.add_argument("host")
    p.add_argument("action", choices=("kill",))
    p.set_defaults(func=cmd_postgres)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        print("pgha_lab.py: must run as root (it creates network namespaces and bind mounts)", file=sys.stderr)
        return 1
    try:
        return args.func(args)
    except LabError as exc:
        print(f"pgha_lab.py {args.command}: {exc}", file=sys.stderr)
        return 1
    except subprocess.TimeoutExpired as exc:
        print(f"pgha_lab.py {args.command}: timed out after {exc.timeout:.0f}s: {shlex.join(exc.cmd)}",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

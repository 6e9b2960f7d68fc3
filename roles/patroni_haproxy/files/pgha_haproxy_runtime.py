# Copyright: pgha maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Send commands to HAProxy's runtime API (installed by the pgha.patroni.patroni_haproxy role).

Usage: python3 pgha_haproxy_runtime.py <runtime API socket> <command> [<command> ...]
       python3 pgha_haproxy_runtime.py <runtime API socket> switchover --api-url URL --leader NAME [--proxy PROXY
               ...] [--candidate NAME] [--ca-path FILE] [--timeout SECONDS] [--auth-stdin]

Each command is sent on its own connection. "set ..." and "enable/disable ..." commands answer nothing when they
work, so any answer to them is reported as a failure (HAProxy says e.g. "No such server."). Exit codes: 0 all
done, 1 a command was refused, 3 the socket is not reachable (HAProxy stopped or no "stats socket" line).

"switchover" is the whole coordinated switchover in one process on the load balancer, so that it costs one SSH
round trip: it asks Patroni (GET /cluster) for the other members' API URLs, polls their /primary every 50 ms,
sends POST /switchover (leader, candidate) once every poller has had a first answer, and the moment a member
answers 200 it puts that server UP and the old primary DOWN in every given proxy ("set server ... health"; the
health checks stay in charge afterwards). Once Patroni accepted, it polls that member's GET /patroni until
PostgreSQL runs there as primary: /primary answers 200 for the leader lock alone, before the promotion ends.
The role runs this file as `python3 -c <its text>`, so the switchover needs nothing installed beforehand and is
always this collection's version. Switching here instead of in an Ansible task after patroni_wait_primary
saves the task start-up time (about a second, more on a busy host), most of what HAProxy adds to the write gap.
With --auth-stdin, one JSON object {"username": ..., "password": ...} is read from stdin for basic auth: never
on the command line, where ps shows it. A runtime API or a /cluster that does not answer does not stop the
switchover: the request is sent anyway and the reason is reported, HAProxy then following by its checks.
It prints one JSON line: primary (the member HAProxy was switched to, or null), waited_s (request to first
/primary 200), running_primary (that member once its GET /patroni says role primary, state running, else null),
seconds, commands, status and answer (Patroni's), haproxy_answered (the runtime API answered "show info" first),
haproxy_error and follow_error (why HAProxy was not switched, if it was not).
Exit codes: 0 Patroni accepted the switchover (200/202), 6 Patroni refused it (its answer on stderr), 7 Patroni
did not answer the request; HAProxy may have been switched all the same if a member became primary.
"""

import argparse
import base64
import json
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

# Seconds the pollers get after Patroni accepted the switchover: its answer comes when the new leader holds the
# lock, whose /primary says 200 at once, so a longer wait only means the pollers cannot reach it.
AFTER_ACCEPTED = 10.0


def ask(sock_path: str, command: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(sock_path)
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


class Refused(Exception):
    """HAProxy answered a command that answers nothing when it works; the message names the socket and the command."""


def tell(sock_path: str, command: str) -> None:
    """Send a set/enable/disable command: any answer at all is HAProxy's refusal."""
    answer = ask(sock_path, command).strip()
    if answer:
        raise Refused(f"HAProxy runtime API {sock_path} refused '{command}': {answer}")


def safe_url(url: str) -> str:
    """The URL for messages: any user:password@ dropped."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))


class Pollers:
    """One thread per member polling its /primary every 50 ms until one answers 200 (found) or stop()."""

    def __init__(self, urls: dict, context) -> None:
        self.context = context
        self.found = []
        self.done = threading.Event()
        self._tried = {member: threading.Event() for member in urls}
        self._threads = [threading.Thread(target=self._poll, args=(m, u), daemon=True) for m, u in urls.items()]

    def _poll(self, member: str, url: str) -> None:
        while not self.done.is_set():
            try:
                with urllib.request.urlopen(url, timeout=0.5, context=self.context) as resp:
                    if resp.status == 200:
                        self.found.append(member)
                        self.done.set()
                        return
            except urllib.error.HTTPError as exc:  # 503: not the primary yet
                exc.close()
            except (OSError, ValueError):  # refused, timed out, cut off mid-answer: not yet
                pass
            self._tried[member].set()
            self.done.wait(0.05)

    def start(self, ready_within: float) -> None:
        """Start polling; return once every poller had a first answer (or ready_within seconds passed)."""
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + ready_within
        for tried in self._tried.values():
            tried.wait(max(0.0, deadline - time.monotonic()))
            if self.done.is_set():
                return

    def stop(self) -> None:
        self.done.set()


def members_to_poll(cluster_url: str, leader: str, context) -> dict:
    with urllib.request.urlopen(cluster_url, timeout=5, context=context) as resp:
        members = json.load(resp)["members"]
    # Every member but the leader, not only the candidate: whoever answers /primary 200 holds the leader lock.
    return {m["name"]: m["api_url"].rsplit("/", 1)[0] + "/primary" for m in members
            if m.get("api_url") and m["name"] != leader}


def runs_as_primary(url: str, context, deadline: float) -> bool:
    """Poll a member's GET /patroni until PostgreSQL runs there as primary, or the deadline."""
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1, context=context) as resp:
                doc = json.load(resp)
            if isinstance(doc, dict) and doc.get("role") in ("primary", "master") and doc.get("state") == "running":
                return True
        except urllib.error.HTTPError as exc:  # 503 while PostgreSQL is not running
            exc.close()
        except (OSError, ValueError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def post_switchover(url: str, body: dict, auth: dict, context, timeout: float, outcome: dict,
                    finished: threading.Event) -> None:
    headers = {"Content-Type": "application/json"}
    if auth.get("username"):
        token = base64.b64encode(f"{auth['username']}:{auth.get('password', '')}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
            outcome.update(status=resp.status, answer=resp.read().decode(errors="replace").strip())
    except urllib.error.HTTPError as exc:
        outcome.update(status=exc.code, answer=" ".join(exc.read().decode(errors="replace").split())[:500])
        exc.close()
    except (OSError, ValueError) as exc:  # URLError (refused, TLS, timeout) is an OSError
        outcome.update(status=None, answer=str(getattr(exc, "reason", exc)))
    finally:
        finished.set()


def switchover(sock_path: str, argv: list) -> int:
    parser = argparse.ArgumentParser(prog="pgha_haproxy_runtime.py SOCKET switchover")
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--leader", required=True)
    parser.add_argument("--candidate", default="")
    parser.add_argument("--proxy", action="append", default=[])  # none: a cluster this HAProxy does not front
    parser.add_argument("--ca-path", default="")
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--auth-stdin", action="store_true")
    args = parser.parse_args(argv)
    auth = json.loads(sys.stdin.read() or "{}") if args.auth_stdin else {}
    started = time.monotonic()
    context = ssl.create_default_context(cafile=args.ca_path or None)
    base = args.api_url.rstrip("/")
    report = {"primary": None, "waited_s": None, "running_primary": None, "seconds": None, "commands": [], "status": None, "answer": "",
              "haproxy_answered": True, "haproxy_error": "", "follow_error": ""}
    urls = {}
    try:
        ask(sock_path, "show info")
    except OSError as exc:
        report.update(haproxy_answered=False, haproxy_error=f"HAProxy runtime API {sock_path} not reachable: {exc}")
    if report["haproxy_answered"]:
        try:
            urls = members_to_poll(base + "/cluster", args.leader, context)
            if not urls:
                report["follow_error"] = f"Patroni {safe_url(base)}/cluster names no member besides {args.leader}"
        except (OSError, ValueError, KeyError, TypeError) as exc:
            report["follow_error"] = f"Patroni {safe_url(base)}/cluster did not list the members: {exc}"
    pollers = Pollers(urls, context)
    # The pollers must be running before Patroni starts the switchover, or the first 200 could be missed by up
    # to a poll round trip; one answer each (a 503, normally) proves they are.
    pollers.start(ready_within=1.0)
    if pollers.found:
        # A primary besides the named leader before any switchover: the name is wrong and Patroni will refuse;
        # HAProxy's write pool is not touched on such a guess.
        report["follow_error"] = f"{pollers.found[0]} answered /primary 200 before the switchover request"
        urls = {}

    body = {"leader": args.leader}
    if args.candidate:
        body["candidate"] = args.candidate
    outcome, finished = {}, threading.Event()
    asked = time.monotonic()
    threading.Thread(target=post_switchover, daemon=True,
                     args=(base + "/switchover", body, auth, context, args.timeout, outcome, finished)).start()
    deadline = started + args.timeout
    # Whichever comes first: a member answering /primary 200 (switch HAProxy right then), or Patroni's answer.
    while urls and not pollers.done.is_set() and not finished.is_set() and time.monotonic() < deadline:
        pollers.done.wait(0.02)
    if urls and not pollers.done.is_set() and finished.is_set() and outcome.get("status") in (200, 202):
        pollers.done.wait(max(0.0, min(AFTER_ACCEPTED, deadline - time.monotonic())))
    pollers.stop()
    if pollers.found and urls:
        report["primary"] = pollers.found[0]
        report["waited_s"] = round(time.monotonic() - asked, 3)
        report["haproxy_error"] = switch(sock_path, args.proxy, pollers.found[0], args.leader, report["commands"])
    elif urls and outcome.get("status") in (200, 202):
        report["follow_error"] = (f"none of {sorted(urls)} answered /primary 200 within "
                                  f"{time.monotonic() - asked:.0f} s of the switchover request")
    finished.wait(max(0.0, deadline - time.monotonic()))
    if report["primary"] and outcome.get("status") == 200 and runs_as_primary(
            urls[report["primary"]].rsplit("/", 1)[0] + "/patroni", context, deadline):
        report["running_primary"] = report["primary"]
    report.update(status=outcome.get("status"), answer=outcome.get("answer", ""),
                  seconds=round(time.monotonic() - started, 3))
    sys.stdout.write(json.dumps(report) + "\n")
    url = safe_url(base + "/switchover")
    if not finished.is_set():
        sys.stderr.write(f"Patroni did not answer POST {url} within {args.timeout:.0f} s\n")
        return 7
    if report["status"] is None:
        sys.stderr.write(f"Patroni did not answer POST {url}: {report['answer']}\n")
        return 7
    if report["status"] not in (200, 202):
        sys.stderr.write(f"Patroni refused the switchover: POST {url} answered HTTP {report['status']}: "
                         f"{report['answer']}\n")
        return 6
    return 0


def switch(sock_path: str, proxies: list, new: str, old: str, done: list) -> str:
    """Put new UP and old DOWN in every proxy; '' when all worked, else what went wrong."""
    for proxy in proxies:
        for command in (f"set server {proxy}/{new} health up", f"set server {proxy}/{old} health down"):
            try:
                tell(sock_path, command)
            except Refused as exc:
                return str(exc)
            except OSError as exc:
                return f"HAProxy runtime API {sock_path} not reachable: {exc}"
            done.append(command)
    return ""


def main() -> int:
    if len(sys.argv) >= 3 and sys.argv[2] == "switchover":
        return switchover(sys.argv[1], sys.argv[3:])
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    sock_path = sys.argv[1]
    for command in sys.argv[2:]:
        try:
            if command.split()[0] in ("set", "enable", "disable"):
                tell(sock_path, command)
                continue
            answer = ask(sock_path, command)
        except Refused as exc:
            sys.stderr.write(f"{exc}\n")
            return 1
        except OSError as exc:
            sys.stderr.write(f"HAProxy runtime API {sock_path} not reachable: {exc}\n")
            return 3
        sys.stdout.write(answer if answer.endswith("\n") or not answer else answer + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

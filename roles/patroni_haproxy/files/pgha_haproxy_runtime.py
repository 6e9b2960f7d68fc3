# Copyright: pgha maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Send commands to HAProxy's runtime API (installed by the pgha.patroni.patroni_haproxy role).

Usage: python3 pgha_haproxy_runtime.py <runtime API socket> <command> [<command> ...]
       python3 pgha_haproxy_runtime.py <runtime API socket> follow --api-url URL --leader NAME --proxy PROXY
               [--proxy PROXY ...] [--candidate NAME] [--ca-path FILE] [--timeout SECONDS]

Each command is sent on its own connection. "set ..." and "enable/disable ..." commands answer nothing when they
work, so any answer to them is reported as a failure (HAProxy says e.g. "No such server."). Exit codes: 0 all
done, 1 a command was refused, 3 the socket is not reachable (HAProxy stopped or no "stats socket" line).

"follow" is started right before a switchover request: it asks Patroni (GET /cluster) for the other members' API
URLs, polls their /primary every 50 ms, and the moment one answers 200 it puts that server UP and the old primary
DOWN in every given proxy ("set server ... health"; the health checks stay in charge afterwards). Doing this here,
on the load balancer, instead of in an Ansible task after patroni_wait_primary returns, saves the task start-up
time (about a second, more on a busy host), which is most of what HAProxy adds to a switchover's write gap.
It prints one JSON line with what it did. Exit codes: 0 done, 3 socket not reachable, 4 no new primary within
--timeout (HAProxy is then left to its checks), 5 /cluster not readable.
"""

import argparse
import json
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request


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


def first_primary(urls: dict, context, timeout: float) -> tuple:
    """(member, seconds waited) of the first member whose /primary answers 200; (None, timeout) if none does."""
    found = []
    done = threading.Event()
    started = time.monotonic()

    def poll(member: str, url: str) -> None:
        while not done.is_set() and time.monotonic() - started < timeout:
            try:
                with urllib.request.urlopen(url, timeout=0.5, context=context) as resp:
                    if resp.status == 200:
                        found.append(member)
                        done.set()
                        return
            except urllib.error.HTTPError as exc:  # 503: not the primary yet
                exc.close()
            except (OSError, ValueError):  # refused, timed out, cut off mid-answer: not yet
                pass
            done.wait(0.05)

    threads = [threading.Thread(target=poll, args=(m, u), daemon=True) for m, u in urls.items()]
    for thread in threads:
        thread.start()
    done.wait(timeout)
    done.set()
    return (found[0] if found else None), round(time.monotonic() - started, 3)


def follow(sock_path: str, argv: list) -> int:
    parser = argparse.ArgumentParser(prog="pgha_haproxy_runtime.py SOCKET follow")
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--leader", required=True)
    parser.add_argument("--candidate", default="")
    parser.add_argument("--proxy", action="append", required=True)
    parser.add_argument("--ca-path", default="")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args(argv)
    context = ssl.create_default_context(cafile=args.ca_path or None)
    cluster_url = args.api_url.rstrip("/") + "/cluster"
    try:
        with urllib.request.urlopen(cluster_url, timeout=5, context=context) as resp:
            members = json.load(resp)["members"]
    except (OSError, ValueError, KeyError) as exc:
        sys.stderr.write(f"Patroni {cluster_url} did not list the members: {exc}\n")
        return 5
    urls = {m["name"]: m["api_url"].rsplit("/", 1)[0] + "/primary" for m in members
            if m.get("api_url") and m["name"] != args.leader and args.candidate in ("", m["name"])}
    if not urls:
        sys.stderr.write(f"Patroni {cluster_url} names no member to follow besides {args.leader}\n")
        return 5
    new, waited = first_primary(urls, context, args.timeout)
    if new is None:
        sys.stderr.write(f"none of {sorted(urls)} answered /primary 200 within {args.timeout:.0f} s; "
                         "HAProxy is left to its health checks\n")
        return 4
    commands = []
    for proxy in args.proxy:
        commands += [f"set server {proxy}/{new} health up", f"set server {proxy}/{args.leader} health down"]
    for command in commands:
        try:
            answer = ask(sock_path, command)
        except OSError as exc:
            sys.stderr.write(f"HAProxy runtime API {sock_path} not reachable: {exc}\n")
            return 3
        if answer.strip():
            sys.stderr.write(f"HAProxy runtime API {sock_path} refused '{command}': {answer.strip()}\n")
            return 1
    sys.stdout.write(json.dumps({"primary": new, "waited_s": waited, "commands": commands}) + "\n")
    return 0


def main() -> int:
    if len(sys.argv) >= 3 and sys.argv[2] == "follow":
        return follow(sys.argv[1], sys.argv[3:])
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    sock_path = sys.argv[1]
    for command in sys.argv[2:]:
        try:
            answer = ask(sock_path, command)
        except OSError as exc:
            sys.stderr.write(f"HAProxy runtime API {sock_path} not reachable: {exc}\n")
            return 3
        silent = command.split()[0] in ("set", "enable", "disable")
        if silent and answer.strip():
            sys.stderr.write(f"HAProxy runtime API {sock_path} refused '{command}': {answer.strip()}\n")
            return 1
        sys.stdout.write(answer if answer.endswith("\n") or not answer else answer + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

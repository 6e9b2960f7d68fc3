# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pause or resume HAProxy's health checks of named servers through its runtime API.

    python3 haproxy_health_checks.py /run/haproxy/admin.sock disable|enable SERVER [SERVER ...]
    python3 haproxy_health_checks.py /run/haproxy/admin.sock show /etc/haproxy/haproxy.cfg

secure_api.yml pauses the checks of a member while its REST API moves from HTTP to HTTPS: a paused check keeps the
server in the state it had (an UP primary stays UP), so no check speaking the old protocol can mark it down before
HAProxy's own configuration switches to TLS checks. Prints one JSON line: the backend/server pairs it touched.
`show` changes nothing: per server, whether every check of it runs (none paused) and whether every `server` line of
it in the configuration checks over TLS, so a rerun leaves alone what is already switched.
"""
import json
import socket
import sys

CHK_ST_ENABLED = 0x4  # srv_check_state flag of a server whose checks run; "disable health" clears it


def runtime(sock_path, command):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(sock_path)
    sock.sendall(command.encode() + b"\n")
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    sock.close()
    return b"".join(chunks).decode()


def show(sock_path, config_path):
    servers = {}
    # the first line is a version, the second the header naming the columns
    lines = runtime(sock_path, "show servers state").splitlines()
    header = lines[1].lstrip("# ").split() if len(lines) > 1 else []
    for line in lines[2:]:
        row = dict(zip(header, line.split()))
        if "srv_name" in row:
            server = servers.setdefault(row["srv_name"], {"checks_running": True, "tls_checks": False})
            server["checks_running"] &= bool(int(row["srv_check_state"]) & CHK_ST_ENABLED)
    tls = {}
    with open(config_path, encoding="utf-8") as config:
        for line in config:
            fields = line.split()
            if len(fields) > 1 and fields[0] == "server":
                tls[fields[1]] = tls.get(fields[1], True) and "check-ssl" in fields
    for name, server in servers.items():
        server["tls_checks"] = tls.get(name, False)
    print(json.dumps({"action": "show", "servers": servers}))


def main():
    sock_path, action, names = sys.argv[1], sys.argv[2], set(sys.argv[3:])
    if action == "show":
        show(sock_path, sys.argv[3])
        return
    if action not in ("disable", "enable"):
        sys.exit(f"action must be show, disable or enable, not {action!r}")
    # "show servers state" columns: be_id be_name srv_id srv_name ...; the first line is a version, the second a header
    lines = runtime(sock_path, "show servers state").splitlines()[2:]
    touched = []
    for line in lines:
        fields = line.split()
        if len(fields) > 3 and fields[3] in names:
            answer = runtime(sock_path, f"{action} health {fields[1]}/{fields[3]}").strip()
            if answer:
                sys.exit(f"HAProxy refused '{action} health {fields[1]}/{fields[3]}' on {sock_path}: {answer}")
            touched.append(f"{fields[1]}/{fields[3]}")
    print(json.dumps({"action": action, "servers": touched}))


if __name__ == "__main__":
    main()

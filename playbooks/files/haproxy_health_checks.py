# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pause or resume HAProxy's health checks of named servers through its runtime API.

    python3 haproxy_health_checks.py /run/haproxy/admin.sock disable|enable SERVER [SERVER ...]

secure_api.yml pauses the checks of a member while its REST API moves from HTTP to HTTPS: a paused check keeps the
server in the state it had (an UP primary stays UP), so no check speaking the old protocol can mark it down before
HAProxy's own configuration switches to TLS checks. Prints one JSON line: the backend/server pairs it touched.
"""
import json
import socket
import sys


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


def main():
    sock_path, action, names = sys.argv[1], sys.argv[2], set(sys.argv[3:])
    if action not in ("disable", "enable"):
        sys.exit(f"action must be disable or enable, not {action!r}")
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

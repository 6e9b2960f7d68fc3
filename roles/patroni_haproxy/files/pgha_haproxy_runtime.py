# Copyright: pgha maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Send commands to HAProxy's runtime API (installed by the pgha.patroni.patroni_haproxy role).

Usage: python3 pgha_haproxy_runtime.py <runtime API socket> <command> [<command> ...]

Each command is sent on its own connection. "set ..." and "enable/disable ..." commands answer nothing when they
work, so any answer to them is reported as a failure (HAProxy says e.g. "No such server."). Exit codes: 0 all
done, 1 a command was refused, 3 the socket is not reachable (HAProxy stopped or no "stats socket" line).
"""

import socket
import sys


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


def main() -> int:
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

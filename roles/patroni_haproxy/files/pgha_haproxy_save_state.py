# Copyright: pgha maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Save HAProxy's live server states for the next process (installed by the pgha.patroni.patroni_haproxy role).

Usage: python3 pgha_haproxy_save_state.py <runtime API socket> <server-state-file>

Run it right before "service haproxy reload". The new process reads the file (load-server-state-from-file) and
starts with each server as the old process last saw it, instead of "UP until the first failed check".
"""

import os
import socket
import sys
import tempfile


def read_states(sock_path: str) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(sock_path)
        sock.sendall(b"show servers state\n")
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def main() -> int:
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    sock_path, state_path = sys.argv[1], sys.argv[2]
    try:
        data = read_states(sock_path)
    except (FileNotFoundError, ConnectionRefusedError):
        # HAProxy is not running. An older file describes a topology that may have changed since (a failover
        # while HAProxy was down), so the next start must not trust it.
        try:
            os.unlink(state_path)
        except FileNotFoundError:
            pass
        print(f"HAProxy runtime API {sock_path} not reachable (HAProxy stopped?); removed stale {state_path}")
        return 0
    except OSError as exc:
        sys.stderr.write(f"Could not read server states from the HAProxy runtime API {sock_path}: {exc}. "
                         "Check that the 'stats socket' line of the configuration has 'level admin'.\n")
        return 1
    # Version line "1" then a "#" header: anything else (a permission error text, an unknown command) must not
    # replace the file, or the next process would start from garbage.
    if not data.startswith(b"1\n"):
        sys.stderr.write(f"Unexpected answer to 'show servers state' on {sock_path}: "
                         f"{data[:200].decode(errors='replace')!r}\n")
        return 1
    directory = os.path.dirname(state_path) or "."
    fd, tmp_path = tempfile.mkstemp(prefix=".server-state.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_path, 0o644)
        # rename() is atomic: the new process sees either the old file or the complete new one.
        os.replace(tmp_path, state_path)
    except BaseException:
        os.unlink(tmp_path)
        raise
    servers = sum(1 for line in data.splitlines()[1:] if line and not line.startswith(b"#"))
    print(f"saved the state of {servers} servers to {state_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

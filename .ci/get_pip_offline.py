# Copyright (c) pgha.patroni contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Offline stand-in for the get-pip bootstrap script that ansible-test downloads.

ansible-test bootstraps pip into every virtualenv it creates (all sanity tests, --venv) by running
get-pip-<version>.py fetched from a host that is not reachable from our machines. It looks for a cached
copy in ~/.ansible/test/cache/get_pip_<version>.py first; scripts/setup-host.sh copies this file there under
every name the installed ansible-test versions ask for. Instead of unpacking an embedded pip, it uses the
pip bundled with the interpreter (ensurepip), then lets that pip install the requested versions from the
machine's normal package index configuration.
"""

from __future__ import annotations

import os
import subprocess
import sys

# get-pip understands these, pip install does not; ansible-test passes them because it wants a bare venv,
# which is what `pip install pip==X` gives anyway.
_GET_PIP_ONLY_OPTIONS = frozenset(("--no-setuptools", "--no-wheel"))


def _pip_environment() -> dict[str, str]:
    env = dict(os.environ)
    # ensurepip points PIP_CONFIG_FILE at /dev/null; if that leaks into the install step pip loses the
    # machine's index, CA bundle and proxy settings and cannot reach any package index here.
    env.pop("PIP_CONFIG_FILE", None)
    return env


def main() -> int:
    env = _pip_environment()
    args = [arg for arg in sys.argv[1:] if arg not in _GET_PIP_ONLY_OPTIONS]

    ensure = subprocess.run([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"], env=env, check=False)
    if ensure.returncode != 0:
        sys.stderr.write(
            f"get_pip_offline: '{sys.executable} -m ensurepip' failed with exit code {ensure.returncode}; "
            "this interpreter has no bundled pip (on Debian install python3-venv, or use a pyenv/python.org build)\n"
        )
        return ensure.returncode

    if not args:
        return 0

    install = subprocess.run([sys.executable, "-m", "pip", "install", *args], env=env, check=False)
    if install.returncode != 0:
        sys.stderr.write(
            f"get_pip_offline: '{sys.executable} -m pip install {' '.join(args)}' failed with exit code "
            f"{install.returncode}; check that the package index in the machine's pip configuration is reachable\n"
        )
    return install.returncode


if __name__ == "__main__":
    sys.exit(main())

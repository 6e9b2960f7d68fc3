# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Make ``ansible_collections.pgha.patroni`` importable for the console tools, from a git checkout or from an
installed collection, so they share the modules' REST client instead of carrying a copy of it."""

from __future__ import annotations

import importlib.util
import os
import sys
import types

COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def _package(name: str, path: list[str]) -> types.ModuleType:
    module = sys.modules.get(name)
    if module is None:
        module = types.ModuleType(name)
        module.__path__ = []  # type: ignore[attr-defined]
        sys.modules[name] = module
    for entry in path:
        if entry not in module.__path__:  # type: ignore[attr-defined]
            module.__path__.append(entry)  # type: ignore[attr-defined]
    return module


def _ansible_shim() -> None:
    """The client takes two small helpers from ansible-core. A database host that runs patroni-lb-health often has
    python3-requests but no ansible-core, so stand in for those two there instead of demanding a full install."""
    try:
        if importlib.util.find_spec("ansible.module_utils.basic") is not None:
            return
    except (ImportError, ValueError):
        pass
    basic = types.ModuleType("ansible.module_utils.basic")

    def env_fallback(*args: str, **kwargs: object) -> str:
        for name in args:
            if name in os.environ:
                return os.environ[name]
        raise LookupError("none of the environment variables is set")

    def missing_required_lib(library: str, reason: str | None = None, url: str | None = None) -> str:
        why = f" for {reason}" if reason else ""
        return (f"Failed to import the required Python library ({library}){why} on {sys.executable}: install it "
                f"(Debian: apt install python3-{library}; or pip install {library})")

    basic.env_fallback = env_fallback  # type: ignore[attr-defined]
    basic.missing_required_lib = missing_required_lib  # type: ignore[attr-defined]
    _package("ansible", [])
    utils = _package("ansible.module_utils", [])
    utils.basic = basic  # type: ignore[attr-defined]
    sys.modules["ansible.module_utils.basic"] = basic


def setup() -> None:
    # An installed collection already sits at .../ansible_collections/pgha/patroni; a checkout does not, so map
    # the package names onto it. Both end up importing the very same files.
    _package("ansible_collections", [])
    _package("ansible_collections.pgha", [])
    patroni = _package("ansible_collections.pgha.patroni", [COLLECTION_ROOT])
    sys.modules["ansible_collections"].pgha = sys.modules["ansible_collections.pgha"]  # type: ignore[attr-defined]
    sys.modules["ansible_collections.pgha"].patroni = patroni  # type: ignore[attr-defined]
    _ansible_shim()

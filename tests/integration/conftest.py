"""Fixtures for the integration tests: the lab (real hosts over SSH) and ways to run Ansible against it.

The lab is brought up by tests/integration/run.sh (or `make lab-up`); these fixtures only read what it wrote, so a
developer can keep one lab running and rerun single tests quickly. The machinery lives in lab/labkit.py, shared
with the benchmarks.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lab"))

import labkit  # noqa: E402  (needs the path above)
from labkit import LAB_DIR, Lab  # noqa: E402

PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"


@pytest.fixture(scope="session")
def lab() -> Lab:
    if not (LAB_DIR / "lab.json").exists():
        pytest.fail(f"no lab at {LAB_DIR}: run `make lab-up` (or set PGHA_LAB_DIR)")
    return Lab(LAB_DIR)


@pytest.fixture(scope="session")
def run_module(lab: Lab):
    """Run one module on one lab host over SSH and return its result dict."""

    def _run(host: str, module: str, args: dict, check: bool = False, timeout: float = 300):
        return labkit.run_module(lab.inventory, host, module, args, check=check, timeout=timeout)

    return _run


@pytest.fixture(scope="session")
def run_playbook(lab: Lab):
    """Run a playbook (a name under tests/integration/playbooks/ or a path) against the lab inventory."""

    def _run(playbook: str, extra_vars: dict | None = None, check: bool = False, diff: bool = False,
             limit: str | None = None, inventory: Path | None = None, timeout: float = 900):
        path = Path(playbook)
        if not path.is_absolute() and not path.exists():
            path = PLAYBOOKS / playbook
        return labkit.run_playbook(inventory or lab.inventory, path, extra_vars=extra_vars, check=check,
                                   diff=diff, limit=limit, timeout=timeout)

    return _run

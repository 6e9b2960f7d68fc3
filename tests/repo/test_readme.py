"""The README's playbook examples must stay runnable: each ```yaml play in it passes ansible-playbook --syntax-check
with this collection installed, so a renamed module or option breaks this test instead of a reader's copy."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_DIR = Path(os.environ.get("PGHA_BUILD_DIR", "/var/tmp/pgha-build"))
PLAYS = [block for block in re.findall(r"```yaml\n(.*?)```", (REPO / "README.md").read_text(), re.S)
         if block.lstrip().startswith("- name:")]


def test_readme_has_playbook_examples():
    assert PLAYS, "README.md lost its playbook examples"


@pytest.mark.parametrize("play", PLAYS, ids=[f"example{i}" for i in range(len(PLAYS))])
def test_readme_example_passes_syntax_check(tmp_path, play):
    playbook = tmp_path / "example.yml"
    playbook.write_text(play)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  children:\n    cluster_c1:\n      hosts:\n        c1m1:\n")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(BUILD_DIR))
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "--syntax-check", "-i",
                           str(inventory), str(playbook)], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # syntax-check does not resolve module options: make sure every pgha.patroni module named exists
    for module in set(re.findall(r"(?<!group/)pgha\.patroni\.(\w+):", play)):
        assert (REPO / "plugins" / "modules" / f"{module}.py").exists(), module

"""The lab script's own safety rule, checked on a running lab: `up` must refuse to replace a live lab of the same
name that another state dir owns (another checkout, a test lane, a benchmark), because that lab would vanish under
whoever is using it. Before this rule, two test runners sharing the default name tore down each other's hosts."""
from __future__ import annotations

import subprocess
from pathlib import Path

LAB_SCRIPT = Path(__file__).resolve().parents[2] / "lab" / "pgha_lab.py"


def test_up_refuses_a_running_lab_name_owned_by_another_dir(lab, tmp_path):
    other_dir = tmp_path / "other-lab"
    leader_before = lab.leader()
    proc = subprocess.run([str(LAB_SCRIPT), "up", "--dir", str(other_dir), "--name",
                           lab.data["name"], "--net", lab.data["net"]],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert f"lab name {lab.data['name']!r} is in use by the running lab in {lab.data['dir']}" in proc.stderr
    assert "--name" in proc.stderr  # tells the user what to change
    assert not other_dir.exists(), "the refused run created its state dir"
    # the running lab is untouched: its hosts answer and the same member leads
    for host in lab.hosts:
        assert lab.ssh(host, "true").returncode == 0
    assert lab.leader() == leader_before

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run a module's main() with arguments, with exit_json/fail_json raising instead of exiting."""

from __future__ import annotations

import json
import os
import typing as t

from ansible.module_utils import basic
from ansible.module_utils.common.parameters import PASS_VARS
from ansible.module_utils.testing import patch_module_args

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")


def load_fixture(version: str, name: str) -> t.Any:
    with open(os.path.join(FIXTURES, version, name), encoding="utf-8") as handle:
        return json.load(handle)


class AnsibleExitJson(Exception):
    def __init__(self, result: dict[str, t.Any]) -> None:
        super().__init__(result)
        self.result = result


class AnsibleFailJson(Exception):
    def __init__(self, result: dict[str, t.Any]) -> None:
        super().__init__(result.get("msg"))
        self.result = result


def _exit_json(self: basic.AnsibleModule, **kwargs: t.Any) -> None:
    kwargs.setdefault("changed", False)
    raise AnsibleExitJson(kwargs)


def _fail_json(self: basic.AnsibleModule, msg: str = "", **kwargs: t.Any) -> None:
    kwargs["failed"] = True
    kwargs["msg"] = msg
    raise AnsibleFailJson(kwargs)


def run_module(monkeypatch: t.Any, main: t.Callable[[], None], args: dict[str, t.Any]) -> dict[str, t.Any]:
    """The module result; raises AnsibleFailJson if the module failed."""
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)
    with patch_module_args(args):
        try:
            main()
        except AnsibleExitJson as done:
            return done.result
    raise AssertionError("the module returned without calling exit_json or fail_json")


def run_module_output(capsys: t.Any, main: t.Callable[[], None], args: dict[str, t.Any]) -> tuple[dict[str, t.Any], str]:
    """Run with the real exit_json/fail_json, so no_log masking applies: (parsed result, raw stdout).
    ansible-core 2.19 always returns the invocation (module_args); 2.21 only when the controller asks for it
    (INJECT_INVOCATION), so ask for it there too: the test is about arguments echoed back."""
    if "inject_invocation" in PASS_VARS:
        args = dict(args, _ansible_inject_invocation=True)
    with patch_module_args(args):
        try:
            main()
        except SystemExit:
            pass
    out = capsys.readouterr().out
    return json.loads(out), out

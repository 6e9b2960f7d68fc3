# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The REST API modules' action: the module's main() inside the worker on the controller, else the usual run."""

from __future__ import annotations

import json
import sys
import typing as t
from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.parameters import PASS_VARS

from ansible_collections.pgha.patroni.plugins.action.patroni_wait_healthy import ActionModule
from ansible_collections.pgha.patroni.plugins.plugin_utils._in_process import run_module_main
from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import serve  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.plugins.modules.test_patroni_wait_healthy import cluster_on

WAIT_HEALTHY = "ansible_collections.pgha.patroni.plugins.modules.patroni_wait_healthy"


def module_args(**args: t.Any) -> dict[str, t.Any]:
    # ansible-core 2.21 echoes the arguments back only when asked; the masking test needs them
    return dict(args, _ansible_inject_invocation=True) if "inject_invocation" in PASS_VARS else args


def test_main_runs_in_this_process_with_the_modules_answer(serve):
    server = cluster_on(serve)
    before = basic._ANSIBLE_ARGS
    rc, out = run_module_main(WAIT_HEALTHY, module_args(
        api_url=server.url(), expected_members=3, member="c1m3", api_username="u", api_password="s3cret-pw"))
    result = json.loads(out)
    assert rc == 0, out
    assert (result["healthy"], result["leader"], result["member_status"]["role"]) == (True, "c1m1", "replica")
    # what AnsibleModule does for any module run: the password never leaves in the output
    assert "s3cret-pw" not in out
    assert result["invocation"]["module_args"]["api_password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert basic._ANSIBLE_ARGS is before, "the worker's module arguments were not restored"


def test_bad_arguments_fail_as_the_module_would():
    rc, out = run_module_main(WAIT_HEALTHY, {"api_url": "http://127.0.0.1:1", "expected_member": 3})
    result = json.loads(out)
    assert rc == 1
    assert result["failed"] is True
    assert "Unsupported parameters for (" in result["msg"] and "expected_member" in result["msg"]


def test_a_module_that_raises_is_a_failed_result_with_the_traceback():
    with mock.patch(f"{WAIT_HEALTHY}.wait_for_health",
                    side_effect=KeyError("members")):
        rc, out = run_module_main(WAIT_HEALTHY, {"api_url": "http://127.0.0.1:1"})
    result = json.loads(out)
    assert rc == 1 and result["failed"] is True
    assert result["msg"] == f"{WAIT_HEALTHY} raised KeyError: 'members'"
    assert "Traceback" in result["exception"]


def action(transport: str = "local", interpreter: t.Any = sys.executable, become: bool = False,
           async_val: int = 0, environment: str = "", delegate_to: str | None = None) -> tuple[ActionModule, dict]:
    task = mock.MagicMock(async_val=async_val, delegate_to=delegate_to)
    connection = mock.MagicMock(transport=transport)
    play_context = mock.MagicMock(become=become)
    templar = mock.MagicMock()
    templar.template.side_effect = lambda value: {"{{ ansible_playbook_python }}": sys.executable,
                                                  "{{ in_process }}": True}.get(value, value)
    plugin = ActionModule(task, connection, play_context, mock.MagicMock(), templar, mock.MagicMock())
    plugin._compute_environment_string = lambda: environment
    task_vars = {"ansible_python_interpreter": interpreter} if interpreter is not None else {}
    return plugin, task_vars


@pytest.mark.parametrize("change, in_process", [
    ({}, True),
    ({"interpreter": "{{ ansible_playbook_python }}"}, True),
    ({"transport": "ssh"}, False),
    ({"interpreter": "/usr/bin/python3"}, False),
    ({"interpreter": None}, False),  # left to discovery: not known to be this Python
    ({"become": True}, False),
    ({"async_val": 30}, False),
    ({"environment": "HTTPS_PROXY=http://proxy:3128"}, False),
])
def test_in_process_only_where_the_module_would_run_as_this_python(change, in_process):
    plugin, task_vars = action(**change)
    assert plugin._runs_as_controller(task_vars) is in_process


def test_delegated_task_is_judged_by_the_delegate_hosts_interpreter():
    plugin, task_vars = action(delegate_to="localhost", interpreter="/usr/bin/python3")
    task_vars["ansible_delegated_vars"] = {"localhost": {"ansible_python_interpreter": sys.executable}}
    assert plugin._runs_as_controller(task_vars) is True
    task_vars["ansible_delegated_vars"]["localhost"]["ansible_python_interpreter"] = "/usr/bin/python3"
    assert plugin._runs_as_controller(task_vars) is False


@pytest.mark.parametrize("value, in_process", [
    (False, False), ("no", False), (True, True), ("yes", True), ("{{ in_process }}", True)])
def test_users_can_turn_it_off(value, in_process):
    plugin, task_vars = action()
    task_vars["pgha_patroni_in_process"] = value
    assert plugin._runs_as_controller(task_vars) is in_process

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action base of the REST API modules: on the controller they run inside Ansible's worker, not in a new Python.

These modules only talk HTTP, so they usually run on the controller (``delegate_to: localhost``, ``connection:
local``, the hosts of ``playbooks/rolling_restart.yml``). A module run there still costs a new Python that imports
``ansible.module_utils`` from the AnsiballZ zip, compiling it from source each time: 0.4 to 0.7 s of CPU per task,
most of a fleet rollout's controller CPU. The worker Ansible forks for the task already has that code loaded, so the
module's own ``main()`` runs there, with the arguments, check mode, ``no_log`` masking, warnings and result parsing
Ansible uses for any module run. The worker is forked for this one task and exits after it, so nothing the module
changes in the process outlives the task.

Anything that would make the module's process differ from the worker runs the module the usual way instead: another
connection, become, async, a task ``environment``, an interpreter other than the controller's own, or
``pgha_patroni_in_process: false``.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import sys
import traceback
import typing as t

from ansible.module_utils import basic
from ansible.module_utils.common.json import Direction, get_module_encoder
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

# The modules' serialization profile: none of them declares another.
_PROFILE = "legacy"


class PatroniApiAction(ActionBase):
    """Run the task's module in this worker when that is the same as running it on the controller; else as usual."""

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        if not self._runs_as_controller(task_vars):
            result.update(self._execute_module(task_vars=task_vars))
            return result
        module_args = dict(self._task.args)
        self._update_module_args(self._task.action, module_args, task_vars)
        rc, stdout = run_module_main(self._module_fqn(), module_args)
        result.update(self._as_module_result(rc, stdout))
        return result

    def _runs_as_controller(self, task_vars: dict[str, t.Any]) -> bool:
        """Would the module's Python be this one, on this host, as this user, with this environment?"""
        try:
            wanted = boolean(self._templar.template(task_vars.get("pgha_patroni_in_process", True)), strict=False)
        except Exception:  # a value that does not template is not a yes
            return False
        if not wanted:
            return False
        if getattr(self._connection, "transport", None) != "local" or self._task.async_val:
            return False
        if self._play_context.become or self._compute_environment_string():
            return False
        host_vars = task_vars
        if self._task.delegate_to:
            host_vars = (task_vars.get("ansible_delegated_vars") or {}).get(self._task.delegate_to, task_vars)
        interpreter = host_vars.get("ansible_python_interpreter")
        try:
            interpreter = self._templar.template(interpreter) if interpreter else None
        except Exception:  # an interpreter that does not template is for the usual path to report
            return False
        return interpreter == sys.executable

    def _module_fqn(self) -> str:
        resolved = self._task.resolved_action or self._task.action
        namespace, collection, name = resolved.split(".", 2)
        return f"ansible_collections.{namespace}.{collection}.plugins.modules.{name}"

    def _as_module_result(self, rc: int, stdout: str) -> dict[str, t.Any]:
        """What _execute_module makes of a module's output, for the output of the in-process run."""
        parsed = self._parse_returned_data(
            dict(rc=rc, stdout=stdout, stdout_lines=stdout.splitlines(), stderr="", stderr_lines=[]), _PROFILE)
        if hasattr(parsed, "as_result_dict"):  # ansible-core 2.21: a UnifiedTaskResult
            parsed.remove_internal_keys()
            return parsed.as_result_dict(for_round_trip=True)
        from ansible.vars.clean import remove_internal_keys  # ansible-core 2.19: a dict

        parsed.pop("_ansible_suppress_tmpdir_delete", None)
        remove_internal_keys(parsed)
        return parsed


def run_module_main(module_fqn: str, module_args: dict[str, t.Any]) -> tuple[int, str]:
    """Run a module's ``main()`` as AnsiballZ would, with the arguments where AnsibleModule reads them: its exit code
    and what it printed."""
    encoder = get_module_encoder(_PROFILE, Direction.CONTROLLER_TO_MODULE)
    saved = basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE
    basic._ANSIBLE_ARGS = json.dumps(dict(ANSIBLE_MODULE_ARGS=module_args), cls=encoder).encode()
    basic._ANSIBLE_PROFILE = _PROFILE
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            importlib.import_module(module_fqn).main()
        # a module always exits through exit_json or fail_json
        return 1, json.dumps(dict(failed=True, msg=f"{module_fqn} returned without exit_json or fail_json"))
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:  # what AnsiballZ reports for a module that raised, with the traceback
        return 1, json.dumps(dict(failed=True, msg=f"{module_fqn} raised {type(exc).__name__}: {exc}",
                                  exception="".join(traceback.format_exception(exc))))
    finally:
        basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE = saved
    return rc, out.getvalue()

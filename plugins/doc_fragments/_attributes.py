# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this doc fragment is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

from __future__ import annotations


class ModuleDocFragment:

    # The attribute descriptions; the other fragments below only fill in support levels.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
      - This assumes that the system controlled/queried by the module has not changed in a relevant way.
"""

    # For modules that only read: use together with DOCUMENTATION.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    support: full
    details:
      - This action does not modify state.
"""

    # For facts modules: use together with DOCUMENTATION and INFO_MODULE (fragments merge their attributes).
    FACTS = r"""
options: {}
attributes:
  facts:
    description: Action returns an C(ansible_facts) dictionary that will update existing host facts.
    support: full
"""

    # For the REST API modules with an action plugin (plugins/action/, plugin_utils/_in_process.py).
    IN_PROCESS = r"""
options: {}
attributes:
  action:
    description:
      - Indicates this has a corresponding action plugin so some parts of the options can be executed on the
        controller.
    support: full
    details:
      - On the controller (local connection, the controller's own Python) the module runs inside Ansible's worker
        instead of a second Python, which saves about 0.4 s of CPU per task. Become, async, a task C(environment),
        or the variable C(pgha_patroni_in_process=false) run it as a separate process as usual.
"""

    # Keep in sync with action_groups in meta/runtime.yml.
    ACTIONGROUP_PATRONI = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/pgha.patroni.patroni) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - pgha.patroni.patroni
"""

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this doc fragment is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

from __future__ import annotations


class ModuleDocFragment:

    # Options of the modules that read C(/cluster) and may wait for the cluster to settle.
    # Keep in sync with member_urls_argument_spec(), wait_argument_spec() and wait_sleep_argument_spec() in
    # plugins/module_utils/_api_client.py. A module may override any key of an option (Ansible merges the
    # module's own entry over the fragment's), which is how each states what it waits for and its own
    # wait_timeout default.

    DOCUMENTATION = r"""
options:
  member_api_urls:
    description: More members to ask for C(/cluster) when O(api_url) does not answer.
    type: list
    elements: str
    default: []
"""

    # Use together with WAIT_SLEEP; the module sets the default of wait_timeout.
    WAIT = r"""
options:
  wait:
    description: Wait until the operation took effect.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait.
    type: float
"""

    WAIT_SLEEP = r"""
options:
  wait_sleep:
    description: Seconds between two polls.
    type: float
    default: 1
"""

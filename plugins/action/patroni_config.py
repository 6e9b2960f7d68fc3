# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.pgha.patroni.plugins.plugin_utils._in_process import PatroniApiAction


class ActionModule(PatroniApiAction):
    """patroni_config runs inside Ansible's worker on the controller (see plugin_utils/_in_process.py)."""

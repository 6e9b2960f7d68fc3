# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""patroni_config and patroni_maintenance: the dynamic configuration in the DCS, patched the way Patroni merges."""

from __future__ import annotations

import copy
import time
import typing as t

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    KIND_BAD_OPTION,
    PatroniClient,
    PatroniError,
    PatroniHTTPError,
)
from ansible_collections.pgha.patroni.plugins.module_utils._operations import (
    ClusterView,
    PatroniOperationError,
    PatroniOperationTimeout,
    Poller,
    WaitingRunner,
    answer_of,
    refusal,
)

# PostgreSQL parameters of context "postmaster" (PostgreSQL 13 to 17): changing them needs a restart. Patroni asks
# pg_settings itself and publishes pending_restart; this list only predicts it (check mode, Patroni < 3.3).
RESTART_PARAMETERS = frozenset("""
archive_mode autovacuum_max_workers autovacuum_worker_slots bonjour bonjour_name cluster_name config_file
data_directory data_sync_retry dynamic_shared_memory_type event_source external_pid_file hba_file hot_standby
huge_page_size huge_pages ident_file io_method io_workers jit_provider listen_addresses logging_collector
max_connections max_files_per_process max_locks_per_transaction max_logical_replication_workers
max_pred_locks_per_transaction max_prepared_transactions max_replication_slots max_wal_senders
max_worker_processes min_dynamic_shared_memory old_snapshot_threshold port recovery_target recovery_target_action
recovery_target_inclusive recovery_target_lsn recovery_target_name recovery_target_time recovery_target_timeline
recovery_target_xid reserved_connections shared_buffers shared_memory_type shared_preload_libraries
superuser_reserved_connections track_activity_query_size track_commit_timestamp unix_socket_directories
unix_socket_group unix_socket_permissions wal_buffers wal_decode_buffer_size wal_level wal_log_hints
""".split())

MAX_CONFLICT_RETRIES = 5


# ----------------------------------------------------------------------------------------------------------------
# Patroni's merge, as pure functions


def _without_nulls(value: t.Any) -> t.Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def compute_patch(current: dict[str, t.Any], desired: dict[str, t.Any]) -> dict[str, t.Any]:
    """The smallest PATCH /config body that makes ``current`` hold ``desired``, comparing values as strings like
    Patroni does (so 100 and "100" are equal); None deletes a key."""
    patch: dict[str, t.Any] = {}
    for key, value in desired.items():
        if value is None:
            if current.get(key) is not None:
                patch[key] = None
        elif isinstance(value, dict) and isinstance(current.get(key), dict):
            sub = compute_patch(current[key], value)
            if sub:
                patch[key] = sub
        elif key not in current or isinstance(value, dict) or isinstance(current[key], dict) \
                or str(current[key]) != str(value):
            # Patroni would store nulls inside a new subtree as they are; leave them out instead.
            patch[key] = _without_nulls(value)
    return patch


def apply_patch(current: dict[str, t.Any], patch: dict[str, t.Any]) -> dict[str, t.Any]:
    """What Patroni stores after the patch, for the diff."""
    merged = copy.deepcopy(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = apply_patch(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def changed_parameters(patch: dict[str, t.Any]) -> list[str]:
    params = (patch.get("postgresql") or {}).get("parameters") if isinstance(patch.get("postgresql"), dict) else None
    return sorted(params) if isinstance(params, dict) else []


def validate_desired(value: t.Any) -> dict[str, t.Any]:
    if not isinstance(value, dict) or not value:
        raise PatroniError("config must be a non-empty dictionary of dynamic configuration, e.g. "
                           "{postgresql: {parameters: {work_mem: 8MB}}}", kind=KIND_BAD_OPTION)
    return value


# ----------------------------------------------------------------------------------------------------------------
# The DCS document over REST


class DynamicConfig:
    def __init__(self, client: PatroniClient) -> None:
        self.client = client

    def get(self) -> dict[str, t.Any]:
        try:
            doc = self.client.get_json("/config")
        except PatroniHTTPError as err:
            if err.status == 502:
                raise PatroniOperationError(
                    f"GET {self.client.url_for('/config')} answered HTTP 502: the cluster has no dynamic "
                    "configuration in the DCS (the /config key is missing, for example while the cluster "
                    "bootstraps); wait for the bootstrap to finish", url=err.url, status=502) from None
            raise
        if not isinstance(doc, dict):
            raise PatroniOperationError(f"GET {self.client.url_for('/config')} answered {type(doc).__name__}, "
                                        "not a JSON object", url=self.client.url_for("/config"))
        return doc

    def converge(self, desired: dict[str, t.Any],
                 check_mode: bool) -> tuple[dict[str, t.Any], dict[str, t.Any], dict[str, t.Any], int]:
        """(before, after, patch sent, conflicts retried); after is Patroni's own answer when a PATCH was sent."""
        conflicts = 0
        while True:
            before = self.get()
            patch = compute_patch(before, desired)
            if not patch or check_mode:
                return before, apply_patch(before, patch), patch, conflicts
            url = self.client.url_for("/config")
            try:
                response = self.client.request("PATCH", "/config", json_body=patch, expect=(200,))
            except PatroniHTTPError as err:
                status, text = answer_of(err)
                if status == 409 and conflicts < MAX_CONFLICT_RETRIES:
                    # Someone else changed the configuration between our GET and PATCH: start again from theirs.
                    conflicts += 1
                    continue
                why = {
                    409: f"the configuration kept changing under us ({conflicts} retries); find who else edits it",
                    503: "the cluster has no dynamic configuration in the DCS yet, or the DCS is unreachable",
                }.get(status or 0, "see the member's Patroni log")
                raise refusal("PATCH /config", url, status, text, why) from None
            after = response.json()
            if not isinstance(after, dict):
                after = apply_patch(before, patch)
            return before, after, patch, conflicts


# ----------------------------------------------------------------------------------------------------------------
# patroni_config


class ConfigRunner:
    def __init__(self, client: PatroniClient, config: t.Any, check_mode: bool = False,
                 pending_restart_timeout: float | None = None, wait_sleep: float = 1.0,
                 member_api_urls: t.Iterable[str] = (), clock: t.Callable[[], float] = time.monotonic,
                 sleep: t.Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.desired = validate_desired(config)
        self.check_mode = check_mode
        self.pending_restart_timeout = pending_restart_timeout
        self.wait_sleep = wait_sleep
        self.view = ClusterView(client, member_api_urls)
        self.clock = clock
        self.sleep = sleep

    def run(self) -> dict[str, t.Any]:
        before, after, patch, conflicts = DynamicConfig(self.client).converge(self.desired, self.check_mode)
        params = changed_parameters(patch)
        predicted = [p for p in params if p.lower() in RESTART_PARAMETERS]
        result: dict[str, t.Any] = {
            "changed": bool(patch), "patch": patch, "config": after, "before": before,
            "changed_parameters": params, "restart_parameters": predicted, "conflicts_retried": conflicts,
            "pending_restart": [],
        }
        if self.check_mode or not patch:
            if not self.check_mode:
                result["pending_restart"] = self._pending(self.view.fetch())[0]
            return result
        confirmed, members = self._wait_pending(predicted, params, after)
        result["pending_restart"] = members
        result["restart_parameters"] = sorted(set(predicted) | confirmed)
        return result

    def _pending(self, cluster: dict[str, t.Any]) -> tuple[list[str], dict[str, set[str]]]:
        names, reasons = [], {}
        for member in cluster["members"]:
            if member["pending_restart"]:
                names.append(member["name"])
            reason = self.view.raw.get(member["name"], {}).get("pending_restart_reason")
            reasons[member["name"]] = set(reason) if isinstance(reason, dict) else set()
        return names, reasons

    def _wait_pending(self, predicted: list[str], params: list[str],
                      after: dict[str, t.Any]) -> tuple[set[str], list[str]]:
        """Members pick up the new configuration on their next HA loop, so pending_restart shows up to loop_wait
        later. Poll while a restart parameter changed and not every member reports it yet."""
        timeout = self.pending_restart_timeout
        if timeout is None:
            try:
                loop_wait = float(after.get("loop_wait", 10))
            except (TypeError, ValueError):
                loop_wait = 10.0
            timeout = 3 * loop_wait + 5 if predicted else 0.0
        poller = Poller(timeout, self.wait_sleep, self.clock, self.sleep)
        wanted = {p.lower() for p in predicted}
        changed = {p.lower(): p for p in params}
        while True:
            cluster = self.view.fetch()
            names, reasons = self._pending(cluster)
            confirmed = {changed[p.lower()] for r in reasons.values() for p in r if p.lower() in changed}
            # Without pending_restart_reason (Patroni < 3.3) the flag on every member has to do.
            every = all(wanted <= {p.lower() for p in reasons[m["name"]]} if reasons[m["name"]]
                        else m["pending_restart"] for m in cluster["members"])
            if not wanted or every or not poller.next():
                return confirmed, names


# ----------------------------------------------------------------------------------------------------------------
# patroni_maintenance


class MaintenanceRunner(WaitingRunner):
    def __init__(self, client: PatroniClient, state: str, check_mode: bool = False, wait: bool = True,
                 wait_timeout: float = 60.0, wait_sleep: float = 1.0, member_api_urls: t.Iterable[str] = (),
                 clock: t.Callable[[], float] = time.monotonic, sleep: t.Callable[[float], None] = time.sleep,
                 ) -> None:
        if state not in ("paused", "resumed"):
            raise PatroniError(f"state={state!r} must be paused or resumed", kind=KIND_BAD_OPTION)
        super().__init__(client, check_mode, wait, wait_timeout, wait_sleep, member_api_urls, clock, sleep)
        self.paused = state == "paused"

    def run(self) -> dict[str, t.Any]:
        # What patronictl pause/resume send: {"pause": true} and {"pause": null}.
        desired = {"pause": True if self.paused else None}
        before, _after, patch, _conflicts = DynamicConfig(self.client).converge(desired, self.check_mode)
        result: dict[str, t.Any] = {"changed": bool(patch), "paused": self.paused,
                                    "was_paused": bool(before.get("pause")), "members": []}
        if self.check_mode or not self.wait:
            return result
        return dict(result, **self._wait_members())

    def _wait_members(self) -> dict[str, t.Any]:
        """The DCS value is set at once; each member applies it on its next HA loop and shows it in /patroni."""
        poller = Poller(self.wait_timeout, self.wait_sleep, self.clock, self.sleep)
        word = "paused" if self.paused else "resumed"
        while True:
            cluster = self.view.fetch()
            behind: dict[str, str] = {}
            for member in cluster["members"]:
                if not member.get("api_url"):
                    behind[str(member["name"])] = "publishes no api_url"
                    continue
                try:
                    status = self.view.client_for(member["api_url"]).get_json("/patroni")
                except PatroniError as err:
                    if not err.retryable:
                        raise
                    behind[str(member["name"])] = err.msg
                    continue
                if bool(isinstance(status, dict) and status.get("pause")) != self.paused:
                    behind[str(member["name"])] = f"not {word} yet"
            if not behind:
                return {"members": [m["name"] for m in cluster["members"]], "elapsed": poller.elapsed()}
            if not poller.next():
                raise PatroniOperationTimeout(
                    f"the cluster is {word} in the DCS, but after {poller.elapsed():.1f} s (wait_timeout="
                    f"{self.wait_timeout:g}) these members do not report it: "
                    + "; ".join(f"{n}: {why}" for n, why in behind.items())
                    + ". Members apply it on their next HA loop (loop_wait); a member that does not is cut off "
                    "from the DCS", {"elapsed": poller.elapsed(), "behind": behind})

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Shared pieces of the operation modules (cluster view with fallback, schedules, Patroni's answers explained)
and the member operations: restart, reload, reinitialize."""

from __future__ import annotations

import datetime
import re
import time
import typing as t

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    KIND_BAD_OPTION,
    KIND_HTTP,
    PatroniBadJSON,
    PatroniClient,
    PatroniError,
    PatroniHTTPError,
    PatroniWaitExpired,
    body_excerpt,
    client_from_params,
    ensure_requests,
    same_api_url,
)
from ansible_collections.pgha.patroni.plugins.module_utils._facts import LEADER_ROLES, build_cluster

# POST /restart is synchronous and Patroni waits primary_start_timeout (300 s) for PostgreSQL by default.
DEFAULT_RESTART_TIMEOUT = 300
RESTART_HTTP_MARGIN = 30

_ISO_ZONE_RE = re.compile(r"(Z|[+-]\d{2}(:?\d{2})?)$")


class PatroniOperationError(PatroniError):
    """Patroni refused or failed an operation; ``msg`` says why in the user's terms."""


class PatroniOperationTimeout(PatroniWaitExpired):
    """An operation was sent but its effect was not seen in time."""


T = t.TypeVar("T")


def run_operation(module: t.Any, operation: t.Callable[[PatroniClient], T]) -> T:
    """Run ``operation`` with a client built from the module's connection options.

    The one place where Patroni's errors become the task's failure, so every module fails with the same keys:
    ``msg``, ``error``, and after a wait ran out the last state seen beside them.
    """
    ensure_requests(module)
    try:
        return operation(client_from_params(module.params, module))
    except PatroniWaitExpired as err:
        module.fail_json(msg=str(err), error=err.to_dict(), **err.details)
    except PatroniError as err:
        module.fail_json(msg=str(err), error=err.to_dict())
    raise RuntimeError("fail_json returned")  # unreachable: fail_json exits; keeps the return type honest


# ----------------------------------------------------------------------------------------------------------------
# Cluster view


class ClusterView:
    """GET /cluster from the given member, else from every other member known, like patronictl does with the DCS."""

    def __init__(self, client: PatroniClient, member_api_urls: t.Iterable[str] = ()) -> None:
        self.client = client
        self.urls: list[str] = [client.api_url]
        for url in member_api_urls or ():
            self._learn(url)
        self.raw: dict[str, t.Any] = {}
        self.errors: dict[str, str] = {}

    def _learn(self, url: str | None) -> None:
        if url and not any(same_api_url(url, known) for known in self.urls):
            self.urls.append(url)

    def client_for(self, api_url: str) -> PatroniClient:
        return self.client if same_api_url(api_url, self.client.api_url) else self.client.for_url(api_url)

    def fetch(self) -> dict[str, t.Any]:
        for url in list(self.urls):
            client = self.client_for(url)
            try:
                doc = client.get_json("/cluster")
                if not isinstance(doc, dict) or not isinstance(doc.get("members"), list):
                    raise PatroniBadJSON(f"GET {client.url_for('/cluster')} answered JSON without a members list: "
                                         "check that api_url points at Patroni's REST API", url=client.url_for("/"))
            except PatroniError as err:
                if not err.retryable:
                    raise
                self.errors[url] = err.msg
                continue
            self.errors.pop(url, None)
            self.raw = {m.get("name"): m for m in doc["members"] if isinstance(m, dict)}
            cluster = build_cluster(doc)
            for member in cluster["members"]:
                self._learn(member["api_url"])
            return cluster
        raise PatroniOperationError(
            "no member answered GET /cluster: " + "; ".join(f"{u}: {m}" for u, m in self.errors.items())
            + ". Check that Patroni runs and api_url (or member_api_urls) names a reachable member",
            kind="connection", retryable=True)


class WaitingRunner:
    """What every operation keeps that reads C(/cluster) and may wait for its effect: the client, the cluster view
    with fallback members, the wait settings, and a clock and sleep that tests replace."""

    def __init__(self, client: PatroniClient, check_mode: bool, wait: bool, wait_timeout: float, wait_sleep: float,
                 member_api_urls: t.Iterable[str], clock: t.Callable[[], float] = time.monotonic,
                 sleep: t.Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.check_mode = check_mode
        self.wait = wait
        self.wait_timeout = wait_timeout
        self.wait_sleep = wait_sleep
        self.view = ClusterView(client, member_api_urls)
        self.clock = clock
        self.sleep = sleep


def leader_of(cluster: dict[str, t.Any]) -> dict[str, t.Any] | None:
    return next((m for m in cluster["members"] if m["role"] in LEADER_ROLES), None)


def member_named(cluster: dict[str, t.Any], name: str) -> dict[str, t.Any] | None:
    return next((m for m in cluster["members"] if m["name"] == name), None)


def member_names(cluster: dict[str, t.Any]) -> str:
    return ", ".join(str(m["name"]) for m in cluster["members"]) or "none"


def cluster_label(cluster: dict[str, t.Any]) -> str:
    """How a message names the cluster: Patroni before 3.2 leaves the scope out of /cluster."""
    return f"cluster {cluster['scope']}" if cluster.get("scope") else "the cluster"


def require_api_url(member: dict[str, t.Any]) -> str:
    if not member.get("api_url"):
        raise PatroniOperationError(f"{member['name']} publishes no api_url in the DCS, so its REST API cannot be "
                                    "reached: check restapi.connect_address in its patroni.yml")
    return member["api_url"]


# ----------------------------------------------------------------------------------------------------------------
# Schedules


def parse_schedule(value: t.Any, option: str = "scheduled_at", now: datetime.datetime | None = None,
                   allow_past: bool = False) -> str | None:
    """ISO 8601 with a time zone, in the future, normalised to what Patroni echoes back; None stays None.

    ``allow_past`` is for a schedule used as a filter (cancelling): one due a moment ago may still be pending."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not _ISO_ZONE_RE.search(text):
        raise PatroniError(f"{option}={text!r} has no time zone: Patroni refuses naive times. Add one, e.g. "
                           f"{text}+00:00 or {text}Z", kind=KIND_BAD_OPTION)
    # Python before 3.11 does not read a trailing Z.
    parsed_text = text[:-1] + "+00:00" if text.endswith("Z") else text
    try:
        when = datetime.datetime.fromisoformat(parsed_text.replace(" ", "T", 1))
    except ValueError:
        raise PatroniError(f"{option}={text!r} is not an ISO 8601 date and time: use e.g. "
                           "2026-11-25T03:00:00+00:00", kind=KIND_BAD_OPTION) from None
    if when.tzinfo is None:
        raise PatroniError(f"{option}={text!r} has no time zone: add one, e.g. +00:00", kind=KIND_BAD_OPTION)
    current = now or datetime.datetime.now(datetime.timezone.utc)
    if not allow_past and when <= current:
        raise PatroniError(f"{option}={text!r} is in the past (now is {current.isoformat(timespec='seconds')}): "
                           "Patroni only schedules for the future", kind=KIND_BAD_OPTION)
    return when.isoformat()


def same_time(a: t.Any, b: t.Any) -> bool:
    """Compare two ISO timestamps as instants; Patroni echoes schedules in its own format."""
    if not a or not b:
        return False
    try:
        ta = datetime.datetime.fromisoformat(str(a).replace("Z", "+00:00").replace(" ", "T", 1))
        tb = datetime.datetime.fromisoformat(str(b).replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return str(a) == str(b)
    if (ta.tzinfo is None) != (tb.tzinfo is None):
        return False
    return ta == tb


# ----------------------------------------------------------------------------------------------------------------
# Patroni's answers


def answer_of(err: PatroniError) -> tuple[int | None, str]:
    """Status and the plain text of a refusal (Patroni answers unsafe calls with text, errors with HTML)."""
    body = getattr(err, "body", "") or ""
    return err.status, body_excerpt(body, limit=300)


def refusal(action: str, url: str, status: int | None, text: str, why: str) -> PatroniOperationError:
    answered = f"HTTP {status}" + (f" {text!r}" if text else "")
    return PatroniOperationError(f"{action} refused by {url} ({answered}): {why}", url=url, kind=KIND_HTTP,
                                 status=status, retryable=False)


def explain(rules: t.Sequence[tuple[int | None, str, str]], status: int | None, text: str) -> str | None:
    """First rule whose status matches (None = any) and whose fragment is in the answer, case-insensitively."""
    lowered = text.lower()
    for rule_status, fragment, why in rules:
        if (rule_status is None or rule_status == status) and fragment.lower() in lowered:
            return why
    return None


# ----------------------------------------------------------------------------------------------------------------
# Polling


class Poller:
    """A deadline with injectable clock and sleep, so unit tests run without waiting."""

    def __init__(self, timeout: float, sleep_time: float, clock: t.Callable[[], float] = time.monotonic,
                 sleep: t.Callable[[float], None] = time.sleep) -> None:
        if timeout is None or timeout < 0:
            raise PatroniError(f"wait_timeout={timeout!r} must be 0 or more seconds", kind=KIND_BAD_OPTION)
        if sleep_time is None or sleep_time < 0.05:
            raise PatroniError(f"wait_sleep={sleep_time!r} is too small: use at least 0.05 seconds",
                               kind=KIND_BAD_OPTION)
        self.timeout = float(timeout)
        self.sleep_time = float(sleep_time)
        self.clock = clock
        self.sleep = sleep
        self.start = clock()
        self.polls = 0

    def elapsed(self) -> float:
        return round(self.clock() - self.start, 3)

    def expired(self) -> bool:
        return self.clock() - self.start >= self.timeout

    def next(self) -> bool:
        """Sleep before the next poll; False when the deadline has passed."""
        self.polls += 1
        if self.expired():
            return False
        remaining = self.timeout - (self.clock() - self.start)
        self.sleep(max(0.0, min(self.sleep_time, remaining)))
        return True


# ----------------------------------------------------------------------------------------------------------------
# Member selection for restart and reload


def select_members(cluster: dict[str, t.Any], client: PatroniClient, members: t.Sequence[str] | None,
                   all_members: bool) -> list[dict[str, t.Any]]:
    """The members an operation applies to: by name, all of them, or the one api_url points at."""
    if all_members:
        return list(cluster["members"])
    if members:
        chosen = []
        for name in members:
            member = member_named(cluster, name)
            if member is None:
                raise PatroniOperationError(f"member {name!r} is not in cluster {cluster['scope'] or ''} "
                                            f"(members: {member_names(cluster)}): fix the name in members")
            chosen.append(member)
        return chosen
    me = next((m for m in cluster["members"] if same_api_url(m["api_url"], client.api_url)), None)
    if me is None:
        raise PatroniOperationError(f"{client.api_url} is not the api_url of any member of cluster "
                                    f"{cluster['scope'] or ''} (members: {member_names(cluster)}): point api_url "
                                    "at the member itself (restapi.connect_address), or name it in members")
    return [me]


def primary_last(members: t.Iterable[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """Replicas first so the primary, whose restart interrupts writes, goes when the others are back."""
    return sorted(members, key=lambda m: (m["role"] in LEADER_ROLES, str(m["name"])))


# ----------------------------------------------------------------------------------------------------------------
# Restart

RESTART_RULES: list[tuple[int | None, str, str]] = [
    (503, "restart conditions are not satisfied",
     "the member no longer matches the filters (no pending restart, or a different role or version)"),
    (503, "postgres is still starting", "PostgreSQL on the member is still starting; run the task again later"),
    (503, "already in progress",
     "the member is busy with another operation (restart, reinitialize, bootstrap); wait for it and rerun"),
    (503, "restart failed", "PostgreSQL did not come back; read the member's Patroni and PostgreSQL logs"),
    (409, "another restart is already scheduled",
     "a different restart is already scheduled on the member; cancel it first (patroni_restart state=absent) or "
     "use the same scheduled_at"),
    (500, "paused state", "the cluster is paused (maintenance mode) and Patroni does not schedule restarts then; "
     "resume it or restart without scheduled_at"),
    (400, "unknown filter", "this Patroni does not know a filter the module sent; upgrade Patroni"),
    (400, "role", "this Patroni does not accept the role filter; use role=any"),
    (400, "timeout", "restart_timeout must be a positive number of seconds"),
    (422, "past", "scheduled_at is in the past by the member's clock; check the clocks and the time zone"),
]


STATES = ("present", "absent")


def check_state(state: str) -> str:
    if state not in STATES:
        raise PatroniError(f"state={state!r} must be one of: {', '.join(STATES)}", kind=KIND_BAD_OPTION)
    return state


def with_done(err: PatroniError, done: t.Sequence[str], verb: str) -> PatroniError:
    """The same error, saying which members the task changed before it, so a rerun is not a surprise."""
    if not done:
        return err
    return PatroniError(f"{err.msg} ({verb} before this error: {', '.join(done)})", url=err.url, kind=err.kind,
                        status=err.status, retryable=err.retryable)


class RestartRunner:
    def __init__(self, client: PatroniClient, check_mode: bool = False, members: t.Sequence[str] | None = None,
                 all_members: bool = False, pending_only: bool = False, role: str = "any",
                 scheduled_at: t.Any = None, restart_timeout: int | None = None,
                 member_api_urls: t.Iterable[str] = (), state: str = "present",
                 after_restart: t.Callable[[str], dict[str, t.Any]] | None = None) -> None:
        self.state = check_state(state)
        if state == "absent":
            # Both shape a restart that is still to run; a cancel takes whatever is scheduled, so accepting them
            # would suggest a filter that does not exist.
            misleading = [name for name, given in (("pending_only", pending_only),
                                                   ("restart_timeout", restart_timeout is not None),
                                                   ("wait_healthy", after_restart is not None)) if given]
            if misleading:
                raise PatroniError(
                    f"{' and '.join(misleading)} only apply to a restart to run (state=present); state=absent cancels "
                    "the restart scheduled on the selected members whatever it was scheduled with: remove "
                    f"{' and '.join(misleading)}, or select members with members, all_members, role and scheduled_at",
                    kind=KIND_BAD_OPTION)
        if restart_timeout is not None and restart_timeout <= 0:
            raise PatroniError(f"restart_timeout={restart_timeout!r} must be more than 0 seconds",
                               kind=KIND_BAD_OPTION)
        if after_restart is not None and scheduled_at:
            raise PatroniError("wait_healthy waits after a restart that runs now, and scheduled_at leaves the restart "
                               "to Patroni at that time: remove one of them", kind=KIND_BAD_OPTION)
        # Called with each member's name right after its restart, before the next member's (patroni_restart's
        # wait_healthy: a health wait from _health.py, which imports this module); its answer is the result's health.
        self.after_restart = after_restart
        self.client = client
        self.check_mode = check_mode
        self.members = list(members or [])
        self.all_members = all_members
        self.pending_only = pending_only
        self.role = role
        self.schedule = parse_schedule(scheduled_at, allow_past=state == "absent")
        self.restart_timeout = restart_timeout
        self.view = ClusterView(client, member_api_urls)

    def _role_skip(self, member: dict[str, t.Any]) -> str | None:
        if self.role == "primary" and member["role"] not in LEADER_ROLES:
            return "not the primary (role=primary)"
        if self.role == "replica" and member["role"] in LEADER_ROLES:
            return "not a replica (role=replica)"
        return None

    def _skip_reason(self, member: dict[str, t.Any], raw: dict[str, t.Any]) -> str | None:
        reason = self._role_skip(member)
        if reason:
            return reason
        if self.pending_only and not member["pending_restart"]:
            return "no pending restart (pending_only)"
        if self.schedule:
            scheduled = (raw.get("scheduled_restart") or {}).get("schedule")
            if scheduled and same_time(scheduled, self.schedule):
                return "this restart is already scheduled"
        return None

    def _body(self) -> dict[str, t.Any]:
        body: dict[str, t.Any] = {}
        if self.pending_only:
            # Patroni checks the flag again when the restart runs; the key's mere presence enables the filter.
            body["restart_pending"] = True
        if self.schedule:
            body["schedule"] = self.schedule
        if self.restart_timeout is not None:
            body["timeout"] = self.restart_timeout
        return body

    def run(self) -> dict[str, t.Any]:
        cluster = self.view.fetch()
        chosen = primary_last(select_members(cluster, self.client, self.members, self.all_members))
        if self.state == "absent":
            return self._cancel_all(cluster, chosen)
        if self.schedule and cluster["paused"]:
            raise PatroniOperationError(f"cluster {cluster['scope'] or ''} is paused (maintenance mode) and Patroni "
                                        "does not schedule restarts then: resume it or leave scheduled_at unset")
        restarted: list[str] = []
        skipped: dict[str, str] = {}
        messages: dict[str, str] = {}
        health: dict[str, t.Any] | None = None
        for member in chosen:
            raw = self.view.raw.get(member["name"], {})
            reason = self._skip_reason(member, raw)
            if reason:
                skipped[member["name"]] = reason
                continue
            if self.check_mode:
                restarted.append(member["name"])
                continue
            outcome = self._restart(member)
            if outcome is None:
                skipped[member["name"]] = "Patroni found no pending restart when the request arrived"
                continue
            restarted.append(member["name"])
            messages[member["name"]] = outcome
            if self.after_restart is not None:
                health = self._healthy_after(self.after_restart, member["name"], restarted)
        verb = "scheduled" if self.schedule else "restarted"
        result = {"changed": bool(restarted), verb: restarted, "not_restarted": skipped, "messages": messages,
                  "scheduled_at": self.schedule}
        if health is not None:
            result["health"] = health
        return result

    @staticmethod
    def _healthy_after(wait: t.Callable[[str], dict[str, t.Any]], name: str, restarted: list[str]) -> dict[str, t.Any]:
        try:
            return wait(name)
        except PatroniWaitExpired as err:
            # Same class and details (reasons, members, the member's own view) for the task's failure result; the
            # message says the restart itself happened, so a rerun does not surprise anyone.
            raise type(err)(f"PostgreSQL on {name} restarted ({', '.join(restarted)} restarted by this task), then "
                            f"{err.msg}", err.details) from None

    def _restart(self, member: dict[str, t.Any]) -> str | None:
        client = self.view.client_for(require_api_url(member))
        url = client.url_for("/restart")
        wait = (self.restart_timeout or DEFAULT_RESTART_TIMEOUT) + RESTART_HTTP_MARGIN
        try:
            response = client.request("POST", "/restart", json_body=self._body(), expect=(200, 202),
                                      timeout=max(client.timeout, wait))
        except PatroniHTTPError as err:
            status, text = answer_of(err)
            if self.pending_only and status == 503 and "conditions are not satisfied" in text.lower():
                return None
            why = explain(RESTART_RULES, status, text) or "see the member's Patroni log"
            raise refusal(f"restart of {member['name']}", url, status, text, why) from None
        return response.text.strip()

    # state=absent

    def _cancel_skip(self, member: dict[str, t.Any], scheduled: t.Any) -> str | None:
        reason = self._role_skip(member)
        if reason:
            return reason
        if not scheduled:
            return "no restart scheduled"
        if self.schedule and not same_time(scheduled, self.schedule):
            return f"its restart is scheduled at {scheduled}, not at scheduled_at {self.schedule}"
        return None

    def _cancel_all(self, cluster: dict[str, t.Any], chosen: list[dict[str, t.Any]]) -> dict[str, t.Any]:
        cancelled: list[str] = []
        skipped: dict[str, str] = {}
        messages: dict[str, str] = {}
        schedules: dict[str, str] = {}
        for member in chosen:
            name = member["name"]
            # Patroni publishes a member's schedule with its member key; the restart itself lives in that member.
            scheduled = (self.view.raw.get(name, {}).get("scheduled_restart") or {}).get("schedule")
            reason = self._cancel_skip(member, scheduled)
            if reason:
                skipped[name] = reason
                continue
            schedules[name] = scheduled
            if self.check_mode:
                cancelled.append(name)
                continue
            try:
                outcome = self._cancel(member)
            except PatroniError as err:
                raise with_done(err, cancelled, "cancelled") from None
            if outcome is None:
                skipped[name] = "no restart scheduled any more when the request arrived (cancelled elsewhere, or it ran)"
            else:
                cancelled.append(name)
                messages[name] = outcome
        if cancelled:
            verb = "would cancel" if self.check_mode else "cancelled"
            msg = f"{verb} the scheduled restart of " + ", ".join(f"{n} (at {schedules[n]})" for n in cancelled)
        else:
            msg = f"no scheduled restart to cancel in {cluster_label(cluster)}: " + \
                "; ".join(f"{n}: {r}" for n, r in skipped.items())
        return {"changed": bool(cancelled), "cancelled": cancelled, "not_cancelled": skipped, "messages": messages,
                "scheduled_at": self.schedule, "msg": msg}

    def _cancel(self, member: dict[str, t.Any]) -> str | None:
        """DELETE /restart on the member itself (each member keeps its own schedule); None when it had none."""
        client = self.view.client_for(require_api_url(member))
        try:
            response = client.request("DELETE", "/restart", expect=(200,))
        except PatroniHTTPError as err:
            status, text = answer_of(err)
            if status == 404:
                return None
            raise refusal(f"cancelling the scheduled restart of {member['name']}", client.url_for("/restart"),
                          status, text, "see the member's Patroni log") from None
        return response.text.strip()


# ----------------------------------------------------------------------------------------------------------------
# Reload


class ReloadRunner(WaitingRunner):
    def __init__(self, client: PatroniClient, check_mode: bool = False, members: t.Sequence[str] | None = None,
                 all_members: bool = False, wait: bool = True, wait_timeout: float = 30.0, wait_sleep: float = 0.5,
                 member_api_urls: t.Iterable[str] = (), clock: t.Callable[[], float] = time.monotonic,
                 sleep: t.Callable[[float], None] = time.sleep) -> None:
        super().__init__(client, check_mode, wait, wait_timeout, wait_sleep, member_api_urls, clock, sleep)
        self.members = list(members or [])
        self.all_members = all_members

    def run(self) -> dict[str, t.Any]:
        cluster = self.view.fetch()
        chosen = primary_last(select_members(cluster, self.client, self.members, self.all_members))
        names = [m["name"] for m in chosen]
        if self.check_mode:
            return {"changed": bool(names), "reloaded": names, "pending_restart": []}
        for member in chosen:
            client = self.view.client_for(require_api_url(member))
            try:
                client.request("POST", "/reload", json_body={}, expect=(200, 202))
            except PatroniHTTPError as err:
                status, text = answer_of(err)
                raise refusal(f"reload of {member['name']}", client.url_for("/reload"), status, text,
                              "see the member's Patroni log") from None
        if self.wait:
            self._wait_answering(chosen)
        pending = [m["name"] for m in self.view.fetch()["members"] if m["pending_restart"] and m["name"] in names]
        return {"changed": bool(names), "reloaded": names, "pending_restart": pending}

    def _wait_answering(self, chosen: list[dict[str, t.Any]]) -> None:
        """A reload that changes restapi.listen or TLS files restarts the REST server: wait until it answers."""
        poller = Poller(self.wait_timeout, self.wait_sleep, self.clock, self.sleep)
        todo = list(chosen)
        errors: dict[str, str] = {}
        while True:
            for member in list(todo):
                client = self.view.client_for(member["api_url"])
                try:
                    client.get_json("/patroni")
                except PatroniError as err:
                    if not err.retryable:
                        raise PatroniOperationError(
                            f"{member['name']} answers GET /patroni with an error that waiting cannot fix after the "
                            f"reload: {err.msg}", url=err.url, kind=err.kind, status=err.status) from None
                    errors[member["name"]] = err.msg
                    continue
                todo.remove(member)
            if not todo:
                return
            if not poller.next():
                raise PatroniOperationTimeout(
                    f"the REST API of {', '.join(m['name'] for m in todo)} did not answer within "
                    f"{self.wait_timeout:g} s after the reload (a reload with a broken TLS certificate or key leaves "
                    "it dead until Patroni restarts): " + "; ".join(f"{n}: {e}" for n, e in errors.items()),
                    {"elapsed": poller.elapsed()})


# ----------------------------------------------------------------------------------------------------------------
# Reinitialize

REINIT_RULES: list[tuple[int | None, str, str]] = [
    (503, "cluster has no leader",
     "the cluster has no leader to copy from; fix the primary first (see patroni_failover)"),
    (503, "i am the leader", "the member is the leader; only replicas can be reinitialized"),
    (503, "already in progress",
     "the member is busy with another operation; wait for it, or set force=true to cancel it"),
]


class ReinitRunner(WaitingRunner):
    def __init__(self, client: PatroniClient, member: str, check_mode: bool = False, force: bool = False,
                 from_leader: bool = False, only_if_unhealthy: bool = False, wait: bool = True,
                 wait_timeout: float = 600.0, wait_sleep: float = 1.0, member_api_urls: t.Iterable[str] = (),
                 clock: t.Callable[[], float] = time.monotonic, sleep: t.Callable[[float], None] = time.sleep,
                 ) -> None:
        super().__init__(client, check_mode, wait, wait_timeout, wait_sleep, member_api_urls, clock, sleep)
        self.member = member
        self.force = force
        self.from_leader = from_leader
        self.only_if_unhealthy = only_if_unhealthy

    def run(self) -> dict[str, t.Any]:
        cluster = self.view.fetch()
        member = member_named(cluster, self.member)
        if member is None:
            raise PatroniOperationError(f"member {self.member!r} is not in cluster {cluster['scope'] or ''} "
                                        f"(members: {member_names(cluster)}): fix the name in member")
        leader = leader_of(cluster)
        if member["role"] in LEADER_ROLES:
            raise PatroniOperationError(f"{self.member} is the leader of cluster {cluster['scope'] or ''}: only "
                                        "replicas can be reinitialized; switch over first (patroni_switchover)")
        if leader is None:
            raise PatroniOperationError(f"cluster {cluster['scope'] or ''} has no leader, so {self.member} has "
                                        "nothing to copy from: fix the primary first (patroni_failover)")
        result: dict[str, t.Any] = {"member": self.member, "state_before": member["state"]}
        if self.only_if_unhealthy and self._healthy(member, leader):
            return dict(result, changed=False, msg=f"{self.member} streams on timeline {member['timeline']} "
                                                   "(only_if_unhealthy)")
        if self.check_mode:
            return dict(result, changed=True, msg=f"{self.member} would be reinitialized")
        client = self.view.client_for(require_api_url(member))
        before = self._start_time(client)
        body: dict[str, t.Any] = {"force": bool(self.force)}
        if self.from_leader:
            body["from_leader"] = True
        try:
            client.request("POST", "/reinitialize", json_body=body, expect=(200,))
        except PatroniHTTPError as err:
            status, text = answer_of(err)
            why = explain(REINIT_RULES, status, text) or "see the member's Patroni log"
            raise refusal(f"reinitialize of {self.member}", client.url_for("/reinitialize"), status, text,
                          why) from None
        result.update(changed=True, msg=f"{self.member} reinitialized")
        if self.wait:
            result.update(self._wait_streaming(client, before))
        return result

    @staticmethod
    def _healthy(member: dict[str, t.Any], leader: dict[str, t.Any]) -> bool:
        if not member["streaming"]:
            return False
        return member["timeline"] is None or leader["timeline"] is None or member["timeline"] >= leader["timeline"]

    @staticmethod
    def _start_time(client: PatroniClient) -> t.Any:
        try:
            return client.get_json("/patroni").get("postmaster_start_time")
        except (PatroniError, AttributeError):
            return None

    def _wait_streaming(self, client: PatroniClient, before: t.Any) -> dict[str, t.Any]:
        """Done when PostgreSQL started anew (or was seen down) and /cluster shows the member streaming again."""
        poller = Poller(self.wait_timeout, self.wait_sleep, self.clock, self.sleep)
        seen_down = False
        last = "nothing seen yet"
        while True:
            status: dict[str, t.Any] = {}
            try:
                doc = client.get_json("/patroni")
                status = doc if isinstance(doc, dict) else {}
            except PatroniError as err:
                if not err.retryable:
                    raise
                last = f"GET /patroni: {err.msg}"
            if status:
                state = status.get("state")
                last = f"state {state}, replication_state {status.get('replication_state')}"
                if state != "running":
                    seen_down = True
                restarted = seen_down or (before is not None and status.get("postmaster_start_time") != before)
                if restarted and state == "running":
                    member = member_named(self.view.fetch(), self.member)
                    if member is not None and member["streaming"]:
                        return {"elapsed": poller.elapsed(), "state": member["state"]}
                    if member is not None:
                        last = f"state {state}, /cluster state {member['state']}"
            if not poller.next():
                raise PatroniOperationTimeout(
                    f"{self.member} was reinitialized but does not stream again after {poller.elapsed():.1f} s "
                    f"(wait_timeout={self.wait_timeout:g}); last seen: {last}. A large database takes longer: raise "
                    "wait_timeout, and read the member's Patroni log", {"elapsed": poller.elapsed()})

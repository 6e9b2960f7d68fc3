# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""patroni_wait_healthy: poll /cluster until the cluster can lose a member, or say every reason it cannot."""

from __future__ import annotations

import re
import time
import typing as t

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    KIND_BAD_OPTION,
    PatroniClient,
    PatroniError,
    PatroniWaitExpired,
    fetch_many,
    parse_lag,
)
from ansible_collections.pgha.patroni.plugins.module_utils._facts import LEADER_ROLES, build_node
from ansible_collections.pgha.patroni.plugins.module_utils._operations import (
    Poller,
    WaitingRunner,
    member_named,
    member_names,
)

KIND_UNHEALTHY = "unhealthy"
KIND_BLOCKED = "blocked"


class PatroniUnhealthy(PatroniWaitExpired):
    """The cluster did not become healthy within wait_timeout."""

    default_kind = KIND_UNHEALTHY


class PatroniHealthBlocked(PatroniWaitExpired):
    """The cluster is paused or has something scheduled: waiting cannot make it healthy, so it fails at once."""

    default_kind = KIND_BLOCKED

    def __init__(self, msg: str, details: dict[str, t.Any] | None = None) -> None:
        super().__init__(msg, details)
        self.kind = KIND_BLOCKED


class HealthWaiter(WaitingRunner):
    def __init__(self, client: PatroniClient, check_mode: bool = False, expected_members: int = 0,
                 max_lag: t.Any = None, member: str | None = None, all_members_status: bool = False,
                 wait_timeout: float = 60.0,
                 wait_sleep: float = 1.0, member_api_urls: t.Iterable[str] = (),
                 clock: t.Callable[[], float] = time.monotonic, sleep: t.Callable[[float], None] = time.sleep,
                 ) -> None:
        if expected_members is None or expected_members < 0:
            raise PatroniError(f"expected_members={expected_members!r} must be 0 or more", kind=KIND_BAD_OPTION)
        super().__init__(client, check_mode, True, wait_timeout, wait_sleep, member_api_urls, clock, sleep)
        self.expected_members = int(expected_members)
        self.max_lag = parse_lag(max_lag, "max_lag")
        self.max_lag_text = str(max_lag).strip() if self.max_lag is not None else None
        self.member = member or None
        self.all_members_status = bool(all_members_status)
        # Validated here so a bad wait_timeout or wait_sleep fails before the first request.
        self.poller = Poller(wait_timeout, wait_sleep, clock, sleep)
        self.cluster: dict[str, t.Any] | None = None
        self.member_status: dict[str, t.Any] | None = None
        self.member_statuses: dict[str, dict[str, t.Any]] | None = None

    # Loop

    def run(self) -> dict[str, t.Any]:
        while True:
            reasons, blockers = self._poll()
            if blockers:
                raise PatroniHealthBlocked(self._message(blockers + reasons, blocked=True),
                                           self._details(blockers + reasons, blockers))
            if not reasons:
                return self._result()
            if not self.poller.next():
                raise PatroniUnhealthy(self._message(reasons, blocked=False), self._details(reasons, []))

    def _poll(self) -> tuple[list[str], list[str]]:
        self.member_status = None
        self.member_statuses = None
        try:
            cluster = self.view.fetch()
        except PatroniError as err:
            if not err.retryable:
                raise
            # The cluster view of the last good poll would be misleading next to "no member answered".
            self.cluster = None
            return [err.msg], []
        leaders = [m for m in cluster["members"] if m["role"] in LEADER_ROLES]
        leader = leaders[0] if len(leaders) == 1 else None
        asked = self._asked(cluster)
        reasons = self._shape_reasons(cluster, leaders)
        live: dict[str, dict[str, t.Any]] = {}
        if leader is not None and not reasons:
            live, unanswered = self._live_views(cluster, asked, leader)
            reasons += unanswered
        # the leader's WAL position as it answered (only asked with max_lag), once for every replica's lag
        ahead = live[leader["name"]]["lsn"] if leader is not None and leader["name"] in live else None
        seen = {m["name"]: _as_seen(m, live[m["name"]], _lag_behind(ahead, live[m["name"]], m["lag"]))
                for m in cluster["members"] if m["name"] in live and m["name"] in asked}
        reasons += self._member_reasons(cluster, leader, live, seen)
        # the members as judged, so what a caller picks from them (a switchover candidate) agrees with the verdict
        self.cluster = dict(cluster, members=[seen.get(m["name"], m) for m in cluster["members"]])
        if self.member:
            self.member_status = live.get(self.member)
        if self.all_members_status and not reasons:
            self.member_statuses = {m["name"]: live[m["name"]] for m in cluster["members"]}
        return reasons, self._blockers(cluster)

    # What /cluster says: the members, their roles, and each one as of its last HA loop

    def _shape_reasons(self, cluster: dict[str, t.Any], leaders: list[dict[str, t.Any]]) -> list[str]:
        members = cluster["members"]
        reasons: list[str] = []
        if len(leaders) != 1:
            reasons.append(f"{len(leaders)} leaders ({', '.join(str(m['name']) for m in leaders)}) instead of "
                           "exactly one")
        if len(members) < self.expected_members:
            reasons.append(f"only {len(members)} of {self.expected_members} members in /cluster "
                           f"({member_names(cluster)})")
        if self.member and member_named(cluster, self.member) is None:
            reasons.append(f"{self.member} is not in /cluster (members: {member_names(cluster)})")
        return reasons

    def _blockers(self, cluster: dict[str, t.Any]) -> list[str]:
        blockers: list[str] = []
        if cluster["paused"]:
            blockers.append("the cluster is paused (maintenance mode); resume it (pgha.patroni.patroni_maintenance "
                            "state=resumed) or leave it out of the run")
        switchover = cluster["scheduled_switchover"]
        if switchover:
            at = switchover.get("at", "?") if isinstance(switchover, dict) else switchover
            blockers.append(f"a switchover is scheduled at {at}; let it happen or cancel it first "
                            "(pgha.patroni.patroni_switchover state=absent)")
        for name, raw in self.view.raw.items():
            scheduled = raw.get("scheduled_restart")
            if scheduled:
                at = scheduled.get("schedule", "?") if isinstance(scheduled, dict) else scheduled
                blockers.append(f"{name} has a restart scheduled at {at}; let it happen or cancel it first "
                                "(pgha.patroni.patroni_restart state=absent)")
        return blockers

    # What members say about themselves

    def _asked(self, cluster: dict[str, t.Any]) -> list[str]:
        """The members judged by their own answer (not the leader asked only for its WAL position)."""
        if self.all_members_status:
            return [m["name"] for m in cluster["members"]]
        return [self.member] if self.member else []

    def _live_views(self, cluster: dict[str, t.Any], asked: list[str],
                    leader: dict[str, t.Any]) -> tuple[dict[str, dict[str, t.Any]], list[str]]:
        """GET /patroni of the named member, or of every member: their own answers, live. /cluster shows each member
        as of its last HA loop, up to loop_wait old: right after a switchover it can list the old primary as stopped
        while it already streams, and right after the primary restarted, a replica as streaming while it
        reconnects. With max_lag, the leader's answer too: its WAL position now, to measure the lag against."""
        members = {m["name"]: m for m in cluster["members"]}
        lsn_from_leader = self.max_lag is not None and asked and leader["name"] not in asked
        wanted = asked + ([leader["name"]] if lsn_from_leader else [])
        if not wanted:
            return {}, []
        missing = [name for name in wanted if not members[name]["api_url"]]
        if missing:
            return {}, [f"{', '.join(missing)} {'publishes' if len(missing) == 1 else 'publish'} no api_url in the "
                        f"DCS: check restapi.connect_address in {'its' if len(missing) == 1 else 'their'} patroni.yml"]
        targets = {name: self.view.client_for(members[name]["api_url"]).url_for("/patroni") for name in wanted}
        answers = fetch_many(self.client, list(targets.values()), expect=(200,))
        live: dict[str, dict[str, t.Any]] = {}
        unanswered: list[str] = []
        for name, url in targets.items():
            answer = answers[url]
            if isinstance(answer, PatroniError):
                if not answer.retryable:
                    raise answer
                unanswered.append(f"{name} GET /patroni: {answer.msg}")
                continue
            doc = answer.json()
            live[name] = build_node(doc if isinstance(doc, dict) else {}, members[name]["api_url"])
            live[name]["name"] = live[name]["name"] or name
        return live, unanswered

    def _member_reasons(self, cluster: dict[str, t.Any], leader: dict[str, t.Any] | None,
                        live: dict[str, dict[str, t.Any]], seen: dict[str, dict[str, t.Any]]) -> list[str]:
        """Each member asked for its own answer is judged by it (`seen`: its /cluster entry with what it answered);
        every other replica by /cluster. `leader`: the one member holding the lock, if exactly one does."""
        leader_timeline = None
        if leader is not None:
            leader_timeline = (live.get(leader["name"]) or {}).get("timeline") or leader["timeline"]
        reasons: list[str] = []
        for m in cluster["members"]:
            replica = m["role"] not in LEADER_ROLES
            if m["name"] in seen:
                reason = _own_view_reason(m["name"], live[m["name"]], replica)
                if reason or not replica:
                    reasons += [reason] if reason else []
                    continue
            elif not replica:
                continue
            elif not m["streaming"]:
                reasons.append(f"{m['name']} is {m['state'] or 'unknown'}, not streaming")
                continue
            judged = seen.get(m["name"], m)
            if self.max_lag is not None and judged["lag"] is None:
                reasons.append(f"{m['name']} lags an unknown number of bytes (Patroni shows no lag), the limit is "
                               f"{self.max_lag} (max_lag {self.max_lag_text})")
            elif self.max_lag is not None and judged["lag"] > self.max_lag:
                reasons.append(f"{m['name']} lags {judged['lag']} bytes, more than {self.max_lag} "
                               f"(max_lag {self.max_lag_text})")
            elif leader is not None and judged["timeline"] != leader_timeline:
                reasons.append(f"{m['name']} is on timeline {_text(judged['timeline'])}, the leader on "
                               f"{_text(leader_timeline)}")
        return reasons

    # Results

    def _result(self) -> dict[str, t.Any]:
        cluster = self.cluster or {}
        leader = next(m for m in cluster["members"] if m["role"] in LEADER_ROLES)
        return {
            "healthy": True,
            "scope": cluster["scope"] or (self.member_status or {}).get("scope"),
            "leader": leader["name"],
            "timeline": leader["timeline"],
            "members": cluster["members"],
            "member_status": self.member_status,
            "member_statuses": self.member_statuses,
            "reasons": [],
            "elapsed": self.poller.elapsed(),
            "polls": self.poller.polls + 1,
        }

    def _details(self, reasons: list[str], blockers: list[str]) -> dict[str, t.Any]:
        cluster = self.cluster or {}
        return {
            "healthy": False,
            "reasons": reasons,
            "blocked": bool(blockers),
            "members": cluster.get("members"),
            "member_status": self.member_status,
            "elapsed": self.poller.elapsed(),
            "polls": self.poller.polls + (1 if blockers else 0),
        }

    def _message(self, reasons: list[str], blocked: bool) -> str:
        scope = (self.cluster or {}).get("scope") or (self.member_status or {}).get("scope")
        name = f"cluster {scope}" if scope else "the cluster"
        source = self.client.url_for("/cluster")
        if blocked:
            return (f"{name} is not fit to lose a member and waiting cannot change that (GET {source}): "
                    + "; ".join(reasons))
        polls = self.poller.polls
        return (f"{name} is not healthy after {self.poller.elapsed():.1f} s (wait_timeout={self.wait_timeout:g}, "
                f"{polls} poll{'s' if polls != 1 else ''}, GET {source}): " + "; ".join(reasons))


def _own_view_reason(name: str, status: dict[str, t.Any], replica: bool) -> str | None:
    """Why a member's own GET /patroni does not say it runs (and, for a replica, streams); None when it does."""
    if status["state"] != "running":
        return f"{name} says it is {status['state'] or 'unknown'} (its own GET /patroni), not running"
    if replica and not _streams(status):
        return (f"{name} says its replication is {status['replication_state'] or 'not running (no WAL receiver)'} "
                "(its own GET /patroni), not streaming")
    return None


def _lag_behind(ahead: int | None, status: dict[str, t.Any], fallback: int | None) -> int | None:
    """Bytes between the leader's WAL position and a replica's, both as they answered now; `fallback` (/cluster's lag)
    when either is unknown (the leader's answer is only fetched with max_lag)."""
    positions = [lsn for lsn in (status["received_lsn"], status["replayed_lsn"]) if lsn is not None]
    if ahead is None or not positions:
        return fallback
    return max(0, ahead - max(positions))


def _as_seen(member: dict[str, t.Any], status: dict[str, t.Any], lag: int | None) -> dict[str, t.Any]:
    """A /cluster member entry with what the member's own answer says now (state, streaming, lag, timeline)."""
    replica = member["role"] not in LEADER_ROLES
    streams = replica and status["state"] == "running" and _streams(status)
    return dict(member, state=(status["replication_state"] or status["state"]) if replica else status["state"],
                streaming=streams, lag=lag if replica else member["lag"],
                timeline=status["timeline"] if status["timeline"] is not None else member["timeline"])


def _streams(status: dict[str, t.Any]) -> bool:
    """A replica's own GET /patroni says it streams. Patroni 3.0.4 and later name replication_state, and leave it out
    while no WAL receiver runs (right after a restart, or while the primary restarts); before 3.0.4 there is none,
    and a running replica is the best such a member can say."""
    if status["replication_state"] is not None:
        return status["replication_state"] == "streaming"
    version = tuple(int(part) for part in re.findall(r"\d+", str(status.get("version") or ""))[:3])
    return not version or version < (3, 0, 4)


def _text(value: t.Any) -> str:
    return "unknown" if value is None else str(value)


def wait_for_health(client: PatroniClient, **options: t.Any) -> dict[str, t.Any]:
    return HealthWaiter(client, **options).run()


def health_after_restart(client: PatroniClient, **options: t.Any) -> t.Callable[[str], dict[str, t.Any]]:
    """patroni_restart's wait_healthy: a wait for the cluster with the just-restarted member in it (a replica streaming
    within max_lag), for RestartRunner's after_restart. The options are checked now, before anything restarts."""
    HealthWaiter(client, **options)
    # every member's own view too: after the primary's restart, /cluster can still list replicas as streaming
    return lambda name: HealthWaiter(client, member=name, all_members_status=True, **options).run()

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""patroni_wait_primary: poll until one member is a primary that accepts writes, or say exactly what is missing."""

from __future__ import annotations

import time
import typing as t

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    KIND_BAD_OPTION,
    PatroniBadJSON,
    PatroniClient,
    PatroniError,
    PatroniResponse,
    PatroniWaitExpired,
    fetch_many,
    normalise_role,
    parse_lag,
    same_api_url,
)
from ansible_collections.pgha.patroni.plugins.module_utils._facts import LEADER_ROLES, build_cluster

MIN_WAIT_SLEEP = 0.05
# Requests made at the very end of the wait still get this long, so the last poll is a real one.
MIN_REQUEST_TIMEOUT = 0.5


class PatroniWaitTimeout(PatroniWaitExpired):
    """No primary met the conditions in time."""


def _lag_text(member: dict[str, t.Any]) -> str:
    if member["role"] in LEADER_ROLES:
        return "-"
    return "unknown" if member["lag"] is None else f"{member['lag']} B"


def describe_member(member: dict[str, t.Any], error: str | None = None) -> str:
    role = member["role"]
    if member.get("sync"):
        role += " (sync)"
    elif member.get("quorum"):
        role += " (quorum)"
    timeline = "unknown" if member["timeline"] is None else member["timeline"]
    text = f"{member['name']}: {role}, {member['state']}, timeline {timeline}, lag {_lag_text(member)}"
    if error:
        text += f", API error: {error}"
    return text


class PrimaryWaiter:
    def __init__(self, client: PatroniClient, wait_timeout: float = 120.0, wait_sleep: float = 1.0,
                 not_member: str | None = None, member: str | None = None, min_timeline: int | None = None,
                 min_replicas: int = 0, max_lag: t.Any = None, member_api_urls: t.Iterable[str] = (),
                 clock: t.Callable[[], float] = time.monotonic, sleep: t.Callable[[float], None] = time.sleep,
                 ) -> None:
        if wait_sleep is None or wait_sleep < MIN_WAIT_SLEEP:
            raise PatroniError(f"wait_sleep={wait_sleep!r} is too small: use at least {MIN_WAIT_SLEEP} seconds",
                               kind=KIND_BAD_OPTION)
        if wait_timeout is None or wait_timeout < 0:
            raise PatroniError(f"wait_timeout={wait_timeout!r} must be 0 or more seconds", kind=KIND_BAD_OPTION)
        if min_replicas is None or min_replicas < 0:
            raise PatroniError(f"min_replicas={min_replicas!r} must be 0 or more", kind=KIND_BAD_OPTION)
        if not_member and member and not_member == member:
            raise PatroniError(f"member and not_member are both {member!r}: no primary can satisfy both",
                               kind=KIND_BAD_OPTION)
        self.client = client
        self.wait_timeout = float(wait_timeout)
        self.wait_sleep = float(wait_sleep)
        self.not_member = not_member or None
        self.member = member or None
        self.min_timeline = min_timeline
        self.min_replicas = int(min_replicas)
        self.max_lag = parse_lag(max_lag, "max_lag")
        self.max_lag_text = str(max_lag).strip() if self.max_lag is not None else None
        self.clock = clock
        self.sleep = sleep
        # Members to ask for /cluster: the one given first, then everything the cluster tells us about.
        self.order: list[str] = []
        for url in [client.api_url] + [u for u in member_api_urls or [] if u]:
            self._learn_url(url)
        self.errors: dict[str, str] = {}
        self.members: list[dict[str, t.Any]] | None = None
        self.source: str | None = None
        self.seen_at: float | None = None
        self.leader_view: str | None = None
        self.missing: list[str] = []
        self.polls = 0
        self._deadline = 0.0

    # Loop

    def run(self) -> dict[str, t.Any]:
        start = self.clock()
        self._deadline = start + self.wait_timeout
        while True:
            round_start = self.clock()
            self.polls += 1
            found = self._poll()
            if found is not None:
                found["elapsed"] = round(self.clock() - start, 3)
                found["polls"] = self.polls
                return found
            now = self.clock()
            if now >= self._deadline:
                raise self._timeout(now - start)
            # Rounds start every wait_sleep seconds, however long the round took, so a change is seen within
            # about wait_sleep plus one round trip.
            pause = min(round_start + self.wait_sleep, self._deadline) - now
            if pause > 0:
                self.sleep(pause)

    def _request_timeout(self) -> float:
        remaining = self._deadline - self.clock()
        return max(MIN_REQUEST_TIMEOUT, min(self.client.timeout, remaining))

    def _learn_url(self, url: str | None) -> None:
        if url and not any(same_api_url(url, known) for known in self.order):
            self.order.append(url)

    def _client_for(self, url: str) -> PatroniClient:
        return self.client if same_api_url(url, self.client.api_url) else self.client.for_url(url)

    def _fetch_cluster(self) -> dict[str, t.Any] | None:
        for tried, url in enumerate(list(self.order)):
            if tried and self.clock() > self._deadline:
                break
            try:
                doc = self._client_for(url).get_json("/cluster", timeout=self._request_timeout())
                if not isinstance(doc, dict) or not isinstance(doc.get("members"), list):
                    raise PatroniBadJSON(f"GET {self._client_for(url).url_for('/cluster')} answered JSON without a "
                                         "members list: check that api_url points at Patroni's REST API", url=url)
            except PatroniError as err:
                if not err.retryable:
                    raise
                self.errors[url] = err.msg
                continue
            self.errors.pop(url, None)
            # The member that answered is asked first next round, so a dead one costs one timeout, not one
            # per round.
            self.order.remove(url)
            self.order.insert(0, url)
            self.source = url
            return doc
        return None

    def _poll(self) -> dict[str, t.Any] | None:
        self.leader_view = None
        doc = self._fetch_cluster()
        if doc is None:
            self.missing = ["no member answered GET /cluster"]
            return None
        cluster = build_cluster(doc)
        members = cluster["members"]
        self.members = members
        self.seen_at = self.clock()
        for m in members:
            self._learn_url(m["api_url"])

        missing: list[str] = []
        leaders = [m for m in members if m["role"] == "primary"]
        if not leaders:
            standby = [m for m in members if m["role"] == "standby_leader"]
            if standby:
                missing.append(f"{standby[0]['name']} leads a standby cluster (standby_leader), which has no primary")
            else:
                missing.append("no member holds the leader lock")
            self.missing = missing
            return None
        if len(leaders) > 1:
            self.missing = [f"{len(leaders)} members claim the leader role: "
                            f"{', '.join(str(m['name']) for m in leaders)}"]
            return None
        leader = leaders[0]
        names = [m["name"] for m in members]
        if self.not_member and leader["name"] == self.not_member:
            missing.append(f"{leader['name']} is still primary (not_member)")
        if self.member and leader["name"] != self.member:
            text = f"{leader['name']} is primary, not {self.member} (member)"
            if self.member not in names:
                text += f"; {self.member} is not a member of the cluster"
            missing.append(text)
        if missing:
            # The wrong member leads: no point asking it, but the other conditions still get reported.
            replicas = self._replicas_missing(members, leader, leader["timeline"])
            self.missing = missing + ([replicas] if replicas else [])
            return None

        status = self._ask_leader(leader, missing)
        timeline = leader["timeline"]
        if status is not None:
            timeline = status.get("timeline", timeline)
        if self.min_timeline is not None and (timeline is None or timeline < self.min_timeline):
            missing.append(f"{leader['name']} is on timeline {timeline if timeline is not None else 'unknown'}, "
                           f"waiting for {self.min_timeline} or later (min_timeline)")
        replicas = self._replicas_missing(members, leader, timeline)
        if replicas:
            missing.append(replicas)
        self.missing = missing
        if missing:
            return None
        return {
            "primary": leader["name"],
            "api_url": leader["api_url"],
            "host": leader["host"],
            "port": leader["port"],
            "timeline": timeline,
            "members": members,
        }

    def _ask_leader(self, leader: dict[str, t.Any], missing: list[str]) -> dict[str, t.Any] | None:
        """The leader lock comes before promotion ends: check the member's own view and that it takes writes."""
        name = leader["name"]
        if not leader["api_url"]:
            missing.append(f"{name} holds the leader lock but publishes no api_url in the DCS")
            return None
        client = self._client_for(leader["api_url"])
        results = fetch_many(client, ["/patroni", "/read-write"], expect=(200, 503),
                             timeout=self._request_timeout())
        status_result, rw_result = results["/patroni"], results["/read-write"]
        for result in (status_result, rw_result):
            if isinstance(result, PatroniError):
                if not result.retryable:
                    raise result
                self.errors[leader["api_url"]] = result.msg
                missing.append(f"{name} holds the leader lock but its REST API did not answer ({result.kind})")
                return None
        self.errors.pop(leader["api_url"], None)
        status = self._status_json(status_result)
        role, state = normalise_role(status.get("role")), status.get("state")
        reported_name = (status.get("patroni") or {}).get("name")
        read_write = rw_result.status if isinstance(rw_result, PatroniResponse) else None
        self.leader_view = (f"{name} GET /patroni: role {role}, state {state}, timeline {status.get('timeline')}; "
                            f"GET /read-write: {read_write}")
        if reported_name and reported_name != name:
            missing.append(f"{leader['api_url']} answers as {reported_name}, but the leader lock names {name}")
        elif role != "primary":
            missing.append(f"{name} holds the leader lock but GET /patroni says role {role}, state {state} "
                           "(promotion not finished)")
        elif state != "running":
            missing.append(f"{name} is primary but PostgreSQL is {state}, not running")
        if read_write != 200:
            missing.append(f"{name}: GET /read-write answered {read_write}, not 200 (not accepting writes yet)")
        return status

    @staticmethod
    def _status_json(result: PatroniResponse) -> dict[str, t.Any]:
        if result.status != 200:
            return {}
        doc = result.json()
        return doc if isinstance(doc, dict) else {}

    def _replicas_missing(self, members: list[dict[str, t.Any]], leader: dict[str, t.Any],
                          timeline: int | None) -> str | None:
        if self.min_replicas <= 0:
            return None
        good = 0
        for m in members:
            if m is leader or m["role"] in LEADER_ROLES or not m["streaming"]:
                continue
            # A replica still on the old timeline has not followed the new primary yet.
            if timeline is not None and m["timeline"] is not None and m["timeline"] < timeline:
                continue
            if self.max_lag is not None and (m["lag"] is None or m["lag"] > self.max_lag):
                continue
            good += 1
        if good >= self.min_replicas:
            return None
        within = f" within {self.max_lag_text}" if self.max_lag_text is not None else ""
        return f"{good} of {self.min_replicas} replicas streaming{within} (min_replicas)"

    # Reporting

    def _timeout(self, elapsed: float) -> PatroniWaitTimeout:
        parts = [f"timed out after {elapsed:.1f} s (wait_timeout={self.wait_timeout:g}, {self.polls} polls) waiting "
                 f"for a primary; missing: {'; '.join(self.missing) or 'nothing recorded'}"]
        member_errors = dict(self.errors)
        if self.members is not None:
            age = elapsed - ((self.seen_at or 0.0) - (self._deadline - self.wait_timeout))
            lines = []
            for m in self.members:
                error = next((member_errors.pop(url) for url in list(member_errors)
                              if same_api_url(url, m["api_url"])), None)
                lines.append(describe_member(m, error))
            parts.append(f"last GET /cluster (from {self.source}, {max(age, 0.0):.1f} s before giving up): "
                         + "; ".join(lines))
        if self.leader_view:
            parts.append(self.leader_view)
        if member_errors:
            parts.append("errors: " + "; ".join(f"{url}: {msg}" for url, msg in member_errors.items()))
        details = {"elapsed": round(elapsed, 3), "polls": self.polls, "missing": list(self.missing),
                   "members": self.members, "errors": dict(self.errors)}
        return PatroniWaitTimeout(". ".join(parts), details)


def wait_for_primary(client: PatroniClient, **options: t.Any) -> dict[str, t.Any]:
    return PrimaryWaiter(client, **options).run()

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""patroni_switchover and patroni_failover: decide, ask Patroni, explain its refusals, wait for the new primary."""

from __future__ import annotations

import re
import typing as t

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    KIND_BAD_OPTION,
    PatroniClient,
    PatroniError,
    PatroniHTTPError,
    PatroniTimeout,
)
from ansible_collections.pgha.patroni.plugins.module_utils._facts import LEADER_ROLES
from ansible_collections.pgha.patroni.plugins.module_utils._operations import (
    PatroniOperationError,
    PatroniOperationTimeout,
    WaitingRunner,
    answer_of,
    check_state,
    cluster_label,
    explain,
    leader_of,
    member_named,
    member_names,
    parse_schedule,
    refusal,
    require_api_url,
    same_time,
)
from ansible_collections.pgha.patroni.plugins.module_utils._wait_primary import PatroniWaitTimeout, PrimaryWaiter

# Patroni polls the DCS for 2 x max(10, loop_wait) s before it answers; leave room for the round trip.
MIN_SWITCHOVER_HTTP_TIMEOUT = 30.0
# DELETE /switchover is a compare-and-set on the DCS failover key: a 409 means it changed under Patroni; read again.
CANCEL_ATTEMPTS = 3
_NEW_LEADER_RE = re.compile(r'to "([^"]+)"')
_TRUE_TAG_VALUES = ("true", "yes", "on", "1")

# (status or None for any, fragment of Patroni's answer, why) - first match wins, so specific fragments go first.
SWITCHOVER_RULES: list[tuple[int | None, str, str]] = [
    (412, "candidate name does not match with sync_standby",
     "synchronous_mode is on and Patroni only switches over to a synchronous standby; name the sync standby as "
     "candidate, or leave candidate unset so the module picks it"),
    (412, "can not find sync_standby",
     "synchronous_mode is on but no member is a synchronous standby right now; wait until a replica is "
     "synchronous (patroni_facts shows it) or turn synchronous_mode off"),
    (412, "candidate does not exists",
     "Patroni does not know the candidate as a member of this cluster; check the name against /cluster"),
    (412, "does not have members except leader", "the cluster has no replica to switch over to"),
    (412, "no good candidates have been found",
     "no member can take over: each replica is unreachable, tagged nofailover, or has a failed watchdog"),
    (412, "leader name does not match",
     "the leader changed while the task ran; rerun it to act on the current leader"),
    (400, "can't schedule switchover in the paused state",
     "the cluster is paused (maintenance mode); resume it or switch over now without scheduled_at"),
    (400, "only to a specific candidate in a paused state",
     "the cluster is paused (maintenance mode); name a candidate"),
    (400, "target and source are the same", "the candidate already is the leader"),
    (400, "timezone information is mandatory", "scheduled_at needs a time zone, e.g. +00:00"),
    (400, "only from a specific leader", "Patroni needs the current leader's name; rerun the task"),
    (400, "only to a specific candidate", "a failover needs a candidate"),
    (400, "failover can't be scheduled", "only a switchover can be scheduled; use patroni_switchover"),
    (422, "past", "scheduled_at is in the past by the member's clock; check the clocks and the time zone"),
    (422, "", "Patroni could not read scheduled_at; use ISO 8601 with a time zone, e.g. 2026-11-25T03:00:00+00:00"),
    (503, "failed to write failover key",
     "the member could not write the failover key into the DCS; check that etcd/Consul/ZooKeeper is healthy"),
    (503, "switchover failed",
     "the candidate did not take over in time (it may lag more than maximum_lag_on_failover, be unhealthy or not "
     "stream); the old leader stays primary. Check its lag with patroni_facts and the candidate's Patroni log"),
    (503, "failover failed",
     "the candidate did not take over in time (it may be unhealthy or not reachable); read its Patroni log"),
]


def _truthy_tag(value: t.Any) -> bool:
    return value is True or str(value).lower() in _TRUE_TAG_VALUES


def candidate_problem(member: dict[str, t.Any], leader: dict[str, t.Any] | None) -> str | None:
    """Why a member is not a good switchover target, or None."""
    if member["role"] in LEADER_ROLES:
        return "is the leader"
    if not member["streaming"]:
        return f"is {member['state']}, not streaming"
    for tag in ("nofailover", "noloadbalance"):
        if _truthy_tag(member["tags"].get(tag)):
            return f"is tagged {tag}"
    if member["lag"] is None:
        return "has an unknown lag"
    if leader and leader["timeline"] is not None and member["timeline"] is not None \
            and member["timeline"] < leader["timeline"]:
        return f"is on timeline {member['timeline']}, behind the leader's {leader['timeline']}"
    return None


def best_candidate(cluster: dict[str, t.Any], leader: dict[str, t.Any] | None) -> dict[str, t.Any]:
    """The healthy streaming replica with the least lag; only synchronous standbys when there are any, since
    Patroni refuses any other target in synchronous_mode."""
    members = cluster["members"]
    syncs = [m for m in members if m["sync"]]
    pool = syncs or members
    problems: dict[str, str] = {}
    good = []
    for member in pool:
        problem = candidate_problem(member, leader)
        if problem is None:
            good.append(member)
        elif member["role"] not in LEADER_ROLES:
            problems[str(member["name"])] = problem
    if not good:
        scope = "synchronous standby" if syncs else "replica"
        detail = "; ".join(f"{n} {p}" for n, p in problems.items()) or "the cluster has no replica"
        raise PatroniOperationError(f"no {scope} of cluster {cluster['scope'] or ''} can take over: {detail}. Wait "
                                    "until a replica streams, or name a candidate")
    return sorted(good, key=lambda m: (m["lag"], str(m["name"])))[0]


class _Operation(WaitingRunner):
    action = "switchover"

    def __init__(self, client: PatroniClient, check_mode: bool, candidate: str | None, wait: bool,
                 wait_timeout: float, wait_sleep: float, member_api_urls: t.Iterable[str]) -> None:
        super().__init__(client, check_mode, wait, wait_timeout, wait_sleep, member_api_urls)
        self.candidate = candidate or None
        self.view_members: list[dict[str, t.Any]] = []

    def _read_cluster(self) -> tuple[dict[str, t.Any], str, dict[str, t.Any] | None, dict[str, t.Any]]:
        """The cluster now, its scope, its leader, and the result fields both operations start from."""
        cluster = self.view.fetch()
        self.view_members = cluster["members"]
        leader = leader_of(cluster)
        name = leader["name"] if leader else None
        return cluster, cluster["scope"] or "", leader, {"changed": False, "previous_primary": name, "primary": name}

    def _post(self, target_api_url: str, body: dict[str, t.Any], description: str) -> tuple[int | None, str]:
        """(status, text) of the POST; (None, reason) when the answer did not come and only waiting can tell."""
        client = self.view.client_for(target_api_url)
        path = "/" + self.action
        url = client.url_for(path)
        try:
            response = client.request("POST", path, json_body=body, expect=(200, 202),
                                      timeout=max(client.timeout, MIN_SWITCHOVER_HTTP_TIMEOUT))
        except PatroniHTTPError as err:
            status, text = answer_of(err)
            if status == 503 and "status unknown" in text.lower():
                return None, f"{url} answered HTTP 503 {text!r}"
            why = explain(SWITCHOVER_RULES, status, text) or "see the Patroni log of the member"
            raise refusal(description, url, status, text, why) from None
        except PatroniTimeout as err:
            return None, err.msg
        return response.status, response.text.strip()

    def _wait_for(self, new_leader: str | None, old_leader: str | None, old_timeline: int | None,
                  unknown: str | None) -> dict[str, t.Any]:
        urls = [m["api_url"] for m in self.view_members if m.get("api_url")]
        try:
            found = PrimaryWaiter(self.client, wait_timeout=self.wait_timeout, wait_sleep=self.wait_sleep,
                                  member=new_leader, not_member=old_leader if old_leader != new_leader else None,
                                  min_timeline=old_timeline + 1 if old_timeline is not None else None,
                                  member_api_urls=urls).run()
        except PatroniWaitTimeout as err:
            prefix = f"Patroni did not confirm the {self.action} ({unknown}), and " if unknown else ""
            raise PatroniOperationTimeout(f"{prefix}{err.msg}", err.details) from None
        return {"primary": found["primary"], "api_url": found["api_url"], "timeline": found["timeline"],
                "elapsed": found["elapsed"]}


class SwitchoverRunner(_Operation):
    action = "switchover"

    def __init__(self, client: PatroniClient, check_mode: bool = False, candidate: str | None = None,
                 leader: str | None = None, scheduled_at: t.Any = None, wait: bool = True,
                 wait_timeout: float = 120.0, wait_sleep: float = 1.0, member_api_urls: t.Iterable[str] = (),
                 state: str = "present") -> None:
        super().__init__(client, check_mode, candidate, wait, wait_timeout, wait_sleep, member_api_urls)
        self.state = check_state(state)
        self.leader = leader or None
        if self.leader and self.candidate and self.leader == self.candidate:
            raise PatroniError(f"leader and candidate are both {self.leader!r}: name the member that must stop "
                               "leading as leader and the one that must take over as candidate",
                               kind=KIND_BAD_OPTION)
        self.schedule = parse_schedule(scheduled_at, allow_past=state == "absent")

    def run(self) -> dict[str, t.Any]:
        if self.state == "absent":
            return self._cancel()
        cluster, scope, leader, result = self._read_cluster()
        result["scheduled_at"] = None
        if leader is None:
            raise PatroniOperationError(f"cluster {scope} has no leader, so there is nothing to switch over from: "
                                        "use patroni_failover with a candidate")
        if self.candidate:
            if self.candidate == leader["name"]:
                return dict(result, msg=f"{leader['name']} already leads cluster {scope}")
            if member_named(cluster, self.candidate) is None:
                raise PatroniOperationError(f"candidate {self.candidate!r} is not a member of cluster {scope} "
                                            f"(members: {member_names(cluster)}): fix the name")
        if self.leader and self.leader != leader["name"]:
            return dict(result, msg=f"{self.leader} does not lead cluster {scope} ({leader['name']} does)")

        scheduled = cluster["scheduled_switchover"]
        if self.schedule:
            if cluster["paused"]:
                raise PatroniOperationError(f"cluster {scope} is paused (maintenance mode) and Patroni does not "
                                            "schedule switchovers then: resume it or leave scheduled_at unset")
            if scheduled:
                if same_time(scheduled.get("at"), self.schedule) and \
                        (self.candidate is None or scheduled.get("to") == self.candidate):
                    return dict(result, scheduled_at=scheduled.get("at"),
                                msg=f"a switchover of cluster {scope} is already scheduled at {scheduled.get('at')}")
                raise PatroniOperationError(
                    f"another switchover of cluster {scope} is scheduled at {scheduled.get('at')} (to "
                    f"{scheduled.get('to') or 'any member'}): cancel it first (patroni_switchover state=absent)")
            target = self.candidate
        else:
            target = self.candidate or best_candidate(cluster, leader)["name"]

        body: dict[str, t.Any] = {"leader": leader["name"]}
        if target:
            body["candidate"] = target
        if self.schedule:
            body["scheduled_at"] = self.schedule
        to = target or "the best member at that time"
        when = f" at {self.schedule}" if self.schedule else ""
        result.update(changed=True, candidate=target, scheduled_at=self.schedule)
        if self.check_mode:
            return dict(result, msg=f"would switch cluster {scope} over from {leader['name']} to {to}{when}")

        description = f"switchover of cluster {scope} from {leader['name']} to {to}{when}"
        status, text = self._post(require_api_url(leader), body, description)
        result["answer"] = text
        if status == 202:
            return dict(result, msg=f"switchover of cluster {scope} from {leader['name']} to {to} scheduled{when}")
        match = _NEW_LEADER_RE.search(text) if status == 200 else None
        new_leader = match.group(1) if match else target
        if not self.wait:
            return dict(result, primary=new_leader, msg=f"cluster {scope} switched over to {new_leader}")
        waited = self._wait_for(new_leader, leader["name"], leader["timeline"], text if status is None else None)
        result.update(waited)
        return dict(result, msg=f"cluster {scope} switched over from {leader['name']} to {waited['primary']}")

    # state=absent

    def _mismatch(self, scheduled: dict[str, t.Any]) -> list[str]:
        """Why the scheduled switchover is not the one the filters (scheduled_at, candidate, leader) name."""
        found = []
        if self.schedule and not same_time(scheduled.get("at"), self.schedule):
            found.append(f"it is at {scheduled.get('at')}, not at scheduled_at {self.schedule}")
        if self.candidate and scheduled.get("to") != self.candidate:
            found.append(f"it goes to {scheduled.get('to') or 'the best member at that time'}, not to candidate "
                         f"{self.candidate}")
        if self.leader and scheduled.get("from") != self.leader:
            found.append(f"it is from {scheduled.get('from') or 'whichever member leads then'}, not from leader "
                         f"{self.leader}")
        return found

    def _cancel(self) -> dict[str, t.Any]:
        conflicts: list[str] = []
        for attempt in range(1, CANCEL_ATTEMPTS + 1):
            cluster, _scope, leader, result = self._read_cluster()
            label = cluster_label(cluster)
            scheduled = cluster["scheduled_switchover"]
            result.update(scheduled_at=None, scheduled_switchover=scheduled)
            if not scheduled:
                after = f" (after HTTP 409 from {conflicts[-1]})" if conflicts else ""
                return dict(result, msg=f"no switchover of {label} is scheduled{after}")
            result["scheduled_at"] = scheduled.get("at")
            what = (f"the switchover of {label} scheduled at {scheduled.get('at')} from "
                    f"{scheduled.get('from') or 'the leader'} to {scheduled.get('to') or 'the best member'}")
            mismatch = self._mismatch(scheduled)
            if mismatch:
                return dict(result, msg=f"left {what} alone: {'; '.join(mismatch)}")
            if self.check_mode:
                return dict(result, changed=True, msg=f"would cancel {what}")
            # Any member can delete the DCS key; the leader, like patronictl, else the member that answered /cluster.
            answered = next((u for u in self.view.urls if u not in self.view.errors), self.client.api_url)
            target = leader["api_url"] if leader and leader.get("api_url") else answered
            client = self.view.client_for(target)
            url = client.url_for("/switchover")
            try:
                response = client.request("DELETE", "/switchover", expect=(200,))
            except PatroniHTTPError as err:
                status, text = answer_of(err)
                if status == 404:
                    return dict(result, answer=text, msg=f"{what} was gone when {url} got the request (someone "
                                                         "else cancelled it, or it ran): nothing cancelled")
                if status != 409:
                    raise refusal(f"cancelling {what}", url, status, text, "see the Patroni log of the member") \
                        from None
                conflicts.append(url)
                if attempt == CANCEL_ATTEMPTS:
                    raise refusal(
                        f"cancelling {what}", url, status, text,
                        f"Patroni could not delete the switchover from the DCS {CANCEL_ATTEMPTS} times (HTTP 409: "
                        "the failover key changed between its read and its write, e.g. another switchover request "
                        "or the switchover starting). Check that etcd/Consul/ZooKeeper is healthy and rerun") from None
                self.sleep(self.wait_sleep)
                continue
            return dict(result, changed=True, answer=response.text.strip(), msg=f"cancelled {what}")
        raise AssertionError("unreachable: the last attempt returns or raises")


class FailoverRunner(_Operation):
    action = "failover"

    def __init__(self, client: PatroniClient, candidate: str, check_mode: bool = False, force: bool = False,
                 wait: bool = True, wait_timeout: float = 120.0, wait_sleep: float = 1.0,
                 member_api_urls: t.Iterable[str] = ()) -> None:
        if not candidate:
            raise PatroniError("candidate is required: Patroni only fails over to a named member",
                               kind=KIND_BAD_OPTION)
        super().__init__(client, check_mode, candidate, wait, wait_timeout, wait_sleep, member_api_urls)
        self.force = force

    def run(self) -> dict[str, t.Any]:
        cluster, scope, leader, result = self._read_cluster()
        result["candidate"] = self.candidate
        healthy_leader = leader is not None and leader["state"] == "running"
        if healthy_leader and leader["name"] == self.candidate:
            return dict(result, msg=f"{self.candidate} already leads cluster {scope}")
        candidate = member_named(cluster, self.candidate)
        if candidate is None:
            raise PatroniOperationError(f"candidate {self.candidate!r} is not a member of cluster {scope} "
                                        f"(members: {member_names(cluster)}): fix the name")
        if healthy_leader and not self.force:
            raise PatroniOperationError(
                f"cluster {scope} has a healthy leader ({leader['name']}, running): a failover is for a cluster "
                "without one. Use patroni_switchover for a planned change, or force=true to fail over anyway")
        result["changed"] = True
        if self.check_mode:
            return dict(result, msg=f"would fail cluster {scope} over to {self.candidate}")
        # patronictl asks the leader when there is one, else the candidate: both can write the failover key.
        target = leader if leader is not None and leader.get("api_url") else candidate
        status, text = self._post(require_api_url(target), {"candidate": self.candidate},
                                  f"failover of cluster {scope} to {self.candidate}")
        result["answer"] = text
        if not self.wait:
            return dict(result, primary=self.candidate, msg=f"cluster {scope} failed over to {self.candidate}")
        old = leader["name"] if leader else None
        waited = self._wait_for(self.candidate, old, leader["timeline"] if leader else None,
                                text if status is None else None)
        result.update(waited)
        return dict(result, msg=f"cluster {scope} failed over to {waited['primary']}")

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""patroni_facts: what one member says about itself, its health checks, the cluster, the config and history."""

from __future__ import annotations

import typing as t

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    KIND_AUTH,
    KIND_BAD_OPTION,
    KIND_BAD_URL,
    KIND_TLS,
    PatroniClient,
    PatroniError,
    PatroniHTTPError,
    PatroniResponse,
    fetch_many,
    normalise_role,
    parse_lag,
    redact_url,
    same_api_url,
)

SUBSETS = ("node", "health", "cluster", "config", "history")
GATHER_SUBSET_CHOICES = ["all", "node", "health", "cluster", "config", "history",
                         "!all", "!health", "!cluster", "!config", "!history"]

# (fact name, path, whether Patroni applies ?lag= to it)
HEALTH_ENDPOINTS = (
    ("primary", "/primary", False),
    ("replica", "/replica", True),
    ("read_write", "/read-write", False),
    ("read_only", "/read-only", True),
    ("sync", "/sync", True),
    ("async", "/async", True),
    ("quorum", "/quorum", True),
    ("health", "/health", False),
    ("liveness", "/liveness", False),
    ("readiness", "/readiness", False),
)

# Member states that mean "replica receiving WAL": 3.0.4+ reports the replication state, 3.0.2 the PostgreSQL state.
HEALTHY_REPLICA_STATES = ("streaming", "running")
LEADER_ROLES = ("primary", "standby_leader")

# Requests in flight against one member. Patroni queues at most restapi.request_queue_size (default 5)
# connections and serves 5 at a time; a fuller accept queue drops SYNs, which costs a 1 s retransmit.
PER_MEMBER_CONCURRENCY = 4
# Requests in flight when asking every other member once.
MEMBERS_CONCURRENCY = 8

# Errors that say the options are wrong: no other member can answer differently.
FATAL_KINDS = (KIND_TLS, KIND_AUTH, KIND_BAD_URL, KIND_BAD_OPTION)


def resolve_gather_subset(items: t.Iterable[str] | None) -> list[str]:
    """Like the setup module: positives add, ``!x`` removes, only negations start from all; node always stays."""
    items = list(items or ["all"])
    positives = {i for i in items if not i.startswith("!")}
    negatives = {i[1:] for i in items if i.startswith("!")}
    if "all" in positives or (not positives - {"all"} and "all" not in negatives):
        chosen = set(SUBSETS)
    else:
        chosen = set()
    chosen |= positives - {"all"}
    if "all" in negatives:
        chosen &= positives
    chosen -= negatives - positives
    chosen.add("node")
    return [s for s in SUBSETS if s in chosen]


def _bool(value: t.Any) -> bool:
    # Patroni leaves flags such as pause or pending_restart out instead of sending false.
    return bool(value)


def _int_or_none(value: t.Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def build_member(raw: dict[str, t.Any]) -> dict[str, t.Any]:
    """One /cluster member in the collection's terms (leader -> primary; sync/quorum standbys -> replica + flags)."""
    dcs_role = raw.get("role")
    role = {"leader": "primary", "sync_standby": "replica", "quorum_standby": "replica"}.get(dcs_role, dcs_role)
    role = normalise_role(role)
    state = raw.get("state")
    return {
        "name": raw.get("name"),
        "role": role,
        "sync": dcs_role == "sync_standby",
        "quorum": dcs_role == "quorum_standby",
        "state": state,
        "streaming": role not in LEADER_ROLES and state in HEALTHY_REPLICA_STATES,
        "host": raw.get("host"),
        "port": _int_or_none(raw.get("port")),
        # As Patroni publishes it (http://host:8008/patroni); the modules accept it as api_url.
        "api_url": redact_url(raw.get("api_url")) if raw.get("api_url") else None,
        "timeline": _int_or_none(raw.get("timeline")),
        "lag": _int_or_none(raw.get("lag")),
        "receive_lag": _int_or_none(raw.get("receive_lag")),
        "replay_lag": _int_or_none(raw.get("replay_lag")),
        "lsn": raw.get("lsn") if raw.get("lsn") not in (None, "unknown") else None,
        "pending_restart": _bool(raw.get("pending_restart")),
        "tags": dict(raw.get("tags") or {}),
    }


def build_cluster(doc: dict[str, t.Any], fallback_scope: str | None = None) -> dict[str, t.Any]:
    members = [build_member(m) for m in doc.get("members") or [] if isinstance(m, dict)]
    leader = next((m["name"] for m in members if m["role"] in LEADER_ROLES), None)
    return {
        # /cluster has no scope before Patroni 3.2; the member's own /patroni always has it.
        "scope": doc.get("scope") or fallback_scope,
        "leader": leader,
        "paused": _bool(doc.get("pause")),
        "scheduled_switchover": doc.get("scheduled_switchover") or None,
        "members": members,
    }


def build_history(doc: t.Any) -> list[dict[str, t.Any]]:
    entries = []
    for item in doc if isinstance(doc, list) else []:
        if not isinstance(item, (list, tuple)) or len(item) < 3:
            continue
        padded = list(item) + [None] * (5 - len(item))
        entries.append({"timeline": _int_or_none(padded[0]), "lsn": _int_or_none(padded[1]), "reason": padded[2],
                        "timestamp": padded[3], "new_leader": padded[4]})
    return entries


def build_node(status: dict[str, t.Any], api_url: str) -> dict[str, t.Any]:
    xlog = status.get("xlog") or {}
    patroni = status.get("patroni") or {}
    return {
        "name": patroni.get("name"),
        "scope": patroni.get("scope"),
        "role": normalise_role(status.get("role")),
        "state": status.get("state"),
        "replication_state": status.get("replication_state"),
        "timeline": _int_or_none(status.get("timeline")),
        "server_version": _int_or_none(status.get("server_version")),
        "postmaster_start_time": status.get("postmaster_start_time"),
        "lsn": _int_or_none(xlog.get("location")),
        "received_lsn": _int_or_none(xlog.get("received_location")),
        "replayed_lsn": _int_or_none(xlog.get("replayed_location")),
        "replayed_timestamp": xlog.get("replayed_timestamp"),
        "replay_paused": _bool(xlog.get("paused")) if "paused" in xlog else None,
        "lag": None,
        "pending_restart": _bool(status.get("pending_restart")),
        "pending_restart_reason": status.get("pending_restart_reason") or None,
        "scheduled_restart": status.get("scheduled_restart") or None,
        "paused": _bool(status.get("pause")),
        "cluster_unlocked": _bool(status.get("cluster_unlocked")),
        "tags": dict(status.get("tags") or {}),
        "version": patroni.get("version"),
        "sync_standby": _bool(status.get("sync_standby")),
        "quorum_standby": _bool(status.get("quorum_standby")),
        "dcs_last_seen": _int_or_none(status.get("dcs_last_seen")),
        "api_url": api_url,
    }


class FactsGatherer:
    """Fetches every endpoint of one member concurrently, then every other member's /patroni concurrently, and
    asks other members for what this one dropped."""

    def __init__(self, client: PatroniClient, gather_subset: t.Iterable[str] | None = None,
                 health_lag: t.Any = None, member_api_urls: t.Iterable[str] = ()) -> None:
        self.client = client
        self.subsets = resolve_gather_subset(gather_subset)
        self.health_lag = parse_lag(health_lag, "health_lag")
        self.member_api_urls = [u for u in member_api_urls or [] if u]
        self.warnings: list[str] = []
        self.unreachable: list[dict[str, t.Any]] = []
        self.name: str | None = None
        self.members: list[dict[str, t.Any]] = []

    def _health_path(self, path: str, takes_lag: bool) -> str:
        if takes_lag and self.health_lag is not None:
            # Bytes, not the unit string: every Patroni version parses a plain integer the same way.
            return f"{path}?lag={self.health_lag}"
        return path

    def _note(self, err: PatroniError, path: str, api_url: str | None = None, name: str | None = None) -> None:
        if err.kind in FATAL_KINDS:
            raise err
        own = api_url is None or same_api_url(api_url, self.client.api_url)
        if own:
            name = self.name
        elif name is None:
            name = next((m["name"] for m in self.members if same_api_url(m["api_url"], api_url)), None)
        self.unreachable.append({"name": name, "api_url": api_url or self.client.api_url,
                                 "path": path, "kind": err.kind, "reason": err.msg})

    def gather(self) -> dict[str, t.Any]:
        plan: dict[str, str] = {"node": "/patroni"}
        if "health" in self.subsets:
            for name, path, takes_lag in HEALTH_ENDPOINTS:
                plan["health:" + name] = self._health_path(path, takes_lag)
        for subset, path in (("cluster", "/cluster"), ("config", "/config"), ("history", "/history")):
            if subset in self.subsets:
                plan[subset] = path
        results = fetch_many(self.client, list(plan.values()), max_workers=PER_MEMBER_CONCURRENCY,
                             expect=(200, 502, 503))
        by_key = {key: results[path] for key, path in plan.items()}

        node_result = by_key["node"]
        if isinstance(node_result, PatroniError):
            raise node_result
        status = self._json_or_raise(node_result, expect=200)
        facts = build_node(status if isinstance(status, dict) else {}, self.client.api_url)
        self.name = facts["name"]

        cluster_doc = None
        if "cluster" in self.subsets:
            cluster_doc = self._json_with_fallback("/cluster", by_key["cluster"], [])
        if facts["name"] is None and cluster_doc is None:
            # Patroni before 3.2 does not say its own name; /cluster knows it by api_url.
            cluster_doc = self._json_with_fallback("/cluster", None, [], quiet=True)
        cluster = build_cluster(cluster_doc, facts["scope"]) if isinstance(cluster_doc, dict) else None
        if cluster is not None:
            self.members = cluster["members"]
            me = self._find_self(cluster, facts["name"])
            if me is not None:
                facts["name"] = self.name = facts["name"] or me["name"]
                if me["role"] not in LEADER_ROLES:
                    facts["lag"] = me["lag"]
            if "cluster" in self.subsets:
                self._ask_members(cluster, me, facts)
        if "cluster" in self.subsets:
            facts["cluster"] = cluster

        others = self._other_members(cluster)
        if "health" in self.subsets:
            facts["health"] = {name: self._health_value(name, by_key["health:" + name]) for name, _p, _l
                               in HEALTH_ENDPOINTS}
        if "config" in self.subsets:
            config = self._json_with_fallback("/config", by_key["config"], others, missing_ok=True)
            facts["config"] = config if isinstance(config, dict) else None
        if "history" in self.subsets:
            history = self._json_with_fallback("/history", by_key["history"], others)
            facts["history"] = build_history(history) if history is not None else None

        facts["gather_subset"] = list(self.subsets)
        facts["unreachable"] = self.unreachable
        return facts

    # Pieces

    def _json_or_raise(self, response: PatroniResponse, expect: int) -> t.Any:
        if response.status != expect:
            raise PatroniHTTPError(f"{response.method} {response.url} answered HTTP {response.status} (expected "
                                   f"{expect})", url=response.url, status=response.status, body=response.text)
        return response.json()

    def _find_self(self, cluster: dict[str, t.Any], name: str | None) -> dict[str, t.Any] | None:
        for member in cluster["members"]:
            if name is not None and member["name"] == name:
                return member
        if name is None:
            for member in cluster["members"]:
                if same_api_url(member["api_url"], self.client.api_url):
                    return member
        return None

    def _ask_members(self, cluster: dict[str, t.Any], me: dict[str, t.Any] | None, facts: dict[str, t.Any]) -> None:
        """Every other member's own GET /patroni, all at once: who answers, and which Patroni version it runs."""
        targets: dict[str, dict[str, t.Any]] = {}
        for member in cluster["members"]:
            member["reachable"] = None
            member["version"] = None
            if member is me:
                member["reachable"] = True
                member["version"] = facts["version"]
            elif member["api_url"]:
                try:
                    url = self.client.for_url(member["api_url"]).url_for("/patroni")
                except PatroniError as err:
                    member["reachable"] = False
                    self._note(err, "/patroni", member["api_url"], member["name"])
                    continue
                targets[url] = member
        results = fetch_many(self.client, list(targets), max_workers=MEMBERS_CONCURRENCY, expect=(200,))
        for url, result in results.items():
            member = targets[url]
            if isinstance(result, PatroniError):
                member["reachable"] = False
                self._note(result, "/patroni", member["api_url"], member["name"])
                continue
            member["reachable"] = True
            try:
                doc = result.json()
            except PatroniError as err:
                self._note(err, "/patroni", member["api_url"], member["name"])
                continue
            if isinstance(doc, dict):
                member["version"] = (doc.get("patroni") or {}).get("version")

    def _other_members(self, cluster: dict[str, t.Any] | None) -> list[str]:
        urls = list(self.member_api_urls)
        for member in (cluster or {}).get("members", []):
            if member["api_url"]:
                urls.append(member["api_url"])
        seen: list[str] = []
        for url in urls:
            if not same_api_url(url, self.client.api_url) and not any(same_api_url(url, s) for s in seen):
                seen.append(url)
        return seen

    def _health_value(self, name: str, result: PatroniResponse | PatroniError) -> bool | None:
        path = dict((n, p) for n, p, _l in HEALTH_ENDPOINTS)[name]
        if isinstance(result, PatroniError):
            self._note(result, path)
            return None
        if result.status not in (200, 503):
            self._note(PatroniHTTPError(f"GET {result.url} answered HTTP {result.status} (expected 200 or 503)",
                                        url=result.url, status=result.status), path)
            return None
        return result.status == 200

    def _json_with_fallback(self, path: str, first: PatroniResponse | PatroniError | None, others: list[str],
                            missing_ok: bool = False, quiet: bool = False) -> t.Any:
        """JSON of ``path`` from this member, else from other known members (Patroni drops the connection when
        its DCS read fails, and another member may still reach the DCS)."""
        candidates: list[tuple[str, PatroniResponse | PatroniError | None]] = [(self.client.api_url, first)]
        candidates += [(url, None) for url in (others or self._other_members(None))]
        for api_url, result in candidates:
            if result is None:
                try:
                    client = self.client if api_url == self.client.api_url else self.client.for_url(api_url)
                    result = client.request("GET", path, expect=(200, 502, 503))
                except PatroniError as err:
                    result = err
            if isinstance(result, PatroniError):
                if not quiet or result.kind in FATAL_KINDS:
                    self._note(result, path, api_url)
                continue
            if result.status == 502 and missing_ok:
                self.warnings.append(f"GET {result.url} answered HTTP 502: the cluster has no dynamic "
                                     "configuration in the DCS (no /config key); config is {}")
                return {}
            if result.status != 200:
                err = PatroniHTTPError(f"GET {result.url} answered HTTP {result.status} (expected 200)",
                                       url=result.url, status=result.status, body=result.text)
                if not quiet:
                    self._note(err, path, api_url)
                continue
            try:
                return result.json()
            except PatroniError as err:
                if not quiet:
                    self._note(err, path, api_url)
        return None


def gather_facts(client: PatroniClient, gather_subset: t.Iterable[str] | None = None, health_lag: t.Any = None,
                 member_api_urls: t.Iterable[str] = ()) -> tuple[dict[str, t.Any], list[str]]:
    gatherer = FactsGatherer(client, gather_subset, health_lag, member_api_urls)
    facts = gatherer.gather()
    return facts, gatherer.warnings

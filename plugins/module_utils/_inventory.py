# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Shared by the patroni inventory plugin and the patroni_primary lookup: read GET /cluster from the first seed
that answers, turn members into hosts, groups and variables, and name the current primary."""

from __future__ import annotations

import typing as t
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    DEFAULT_TIMEOUT,
    KIND_BAD_OPTION,
    KIND_BAD_URL,
    PatroniBadJSON,
    PatroniClient,
    PatroniError,
    member_base_url,
    parse_api_url,
    redact_url,
)
from ansible_collections.pgha.patroni.plugins.module_utils._facts import LEADER_ROLES, build_member

# The options every plugin shares with the modules, under the same names.
CONNECTION_OPTIONS = ("api_username", "api_password", "ca_path", "client_cert", "client_key", "validate_certs",
                      "timeout")
# Role groups a member can join; sync and quorum standbys are replicas too.
ROLE_GROUPS = ("primary", "replica", "sync_standby", "quorum_standby", "standby_leader")
ANSIBLE_HOST_SOURCES = ("host", "api_url", "none")
# Clusters read at once: each costs at most one request per seed, all of them small.
CLUSTER_CONCURRENCY = 8
# Errors a second seed cannot answer differently: the options themselves are wrong.
CONFIG_KINDS = (KIND_BAD_URL, KIND_BAD_OPTION)


class ClusterUnreachable(PatroniError):
    """No seed of a cluster gave a usable GET /cluster; ``errors`` is one (url, reason) per seed."""

    def __init__(self, msg: str, errors: list[tuple[str, str]]) -> None:
        super().__init__(msg, retryable=True)
        self.errors = errors


def make_client(url: str, options: t.Mapping[str, t.Any]) -> PatroniClient:
    timeout = options.get("timeout")
    return PatroniClient(
        url,
        username=options.get("api_username"),
        password=options.get("api_password"),
        ca_path=options.get("ca_path"),
        client_cert=options.get("client_cert"),
        client_key=options.get("client_key"),
        validate_certs=True if options.get("validate_certs") is None else bool(options["validate_certs"]),
        timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
    )


def seed_list(value: t.Any, where: str) -> list[str]:
    """Seeds as a list of non-empty strings; one string may hold several separated by commas."""
    items = value if isinstance(value, (list, tuple)) else [] if value is None else [value]
    seeds: list[str] = []
    for item in items:
        if isinstance(item, (list, tuple)):
            seeds.extend(seed_list(item, where))
            continue
        if not isinstance(item, str):
            raise PatroniError(f"{where}: {item!r} is not a URL: give the members' REST API addresses as strings, "
                               "e.g. http://10.0.0.11:8008", kind=KIND_BAD_OPTION)
        seeds.extend(part.strip() for part in item.split(",") if part.strip())
    for seed in seeds:
        # Parse now so a typo fails before any request, naming the option it came from.
        parse_api_url(seed, option=where)
    if not seeds:
        raise PatroniError(f"{where}: no seed URL given: list at least one member's REST API address, e.g. "
                           "http://10.0.0.11:8008", kind=KIND_BAD_OPTION)
    return seeds


def parse_clusters(value: t.Any) -> list[dict[str, t.Any]]:
    """The inventory's ``clusters`` option, checked: each entry names its seeds and optionally the cluster."""
    if not isinstance(value, list) or not value:
        raise PatroniError("clusters must be a non-empty list such as [{name: main, urls: [http://10.0.0.11:8008]}]",
                           kind=KIND_BAD_OPTION)
    clusters: list[dict[str, t.Any]] = []
    names: set[str] = set()
    for index, entry in enumerate(value):
        where = f"clusters[{index}]"
        if isinstance(entry, str):
            entry = {"urls": entry}
        if not isinstance(entry, dict):
            raise PatroniError(f"{where} must be a mapping with urls (and optionally name), not {type(entry).__name__}",
                               kind=KIND_BAD_OPTION)
        unknown = sorted(set(entry) - {"name", "urls"})
        if unknown:
            raise PatroniError(f"{where} has unknown keys {', '.join(unknown)}: only name and urls are read",
                               kind=KIND_BAD_OPTION)
        name = entry.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise PatroniError(f"{where}.name must be a non-empty string", kind=KIND_BAD_OPTION)
        if name in names:
            raise PatroniError(f"{where}.name {name!r} is used twice: give each cluster its own name",
                               kind=KIND_BAD_OPTION)
        if name:
            names.add(name)
        urls = seed_list(entry.get("urls"), f"{where}.urls")
        clusters.append({"name": name, "urls": urls})
    return clusters


def _usable_cluster_doc(doc: t.Any, url: str) -> dict[str, t.Any]:
    if not isinstance(doc, dict) or not isinstance(doc.get("members"), list):
        raise PatroniBadJSON(f"GET {url} answered JSON without a members list: check that the seed is Patroni's "
                             "REST API", url=url)
    if not doc["members"]:
        # A member that lost its DCS connection may answer with what little it still knows; ask the next seed.
        raise PatroniError(f"GET {url} answered an empty members list (that member may not see the DCS)", url=url,
                           retryable=True)
    return doc


def read_cluster(urls: t.Sequence[str], options: t.Mapping[str, t.Any],
                 label: str | None = None) -> dict[str, t.Any]:
    """GET /cluster from the first seed that answers with members, in order.

    Returns ``{"doc", "source", "scope", "errors"}``; raises ClusterUnreachable naming every seed and why it
    failed, or the error itself when the options are wrong (every seed would fail the same way).
    """
    errors: list[tuple[str, str]] = []
    for url in urls:
        shown = redact_url(url)
        try:
            client = make_client(url, options)
            doc = _usable_cluster_doc(client.get_json("/cluster"), client.url_for("/cluster"))
            scope = doc.get("scope")
            if not scope:
                # Patroni before 3.2 leaves scope out of /cluster; the member's own status has it.
                status = client.get_json("/patroni")
                scope = (status.get("patroni") or {}).get("scope") if isinstance(status, dict) else None
        except PatroniError as err:
            if err.kind in CONFIG_KINDS:
                raise
            errors.append((shown, err.msg))
            continue
        return {"doc": doc, "source": client.api_url, "scope": scope, "errors": errors}
    what = f"cluster {label}" if label else "the cluster"
    lines = "; ".join(reason for _url, reason in errors)
    raise ClusterUnreachable(
        f"no seed of {what} answered GET /cluster ({lines}). Check that Patroni runs on at least one of these "
        "members, that this machine can reach their REST API port, and that the URLs and TLS options are right",
        errors)


def read_clusters(clusters: t.Sequence[dict[str, t.Any]], options: t.Mapping[str, t.Any]
                  ) -> list[dict[str, t.Any] | PatroniError]:
    """read_cluster for every configured cluster at once, in the given order; a failure is returned, not raised."""

    def one(cluster: dict[str, t.Any]) -> dict[str, t.Any] | PatroniError:
        try:
            return read_cluster(cluster["urls"], options, cluster.get("name"))
        except PatroniError as err:
            return err

    if len(clusters) <= 1:
        return [one(c) for c in clusters]
    with ThreadPoolExecutor(max_workers=min(CLUSTER_CONCURRENCY, len(clusters))) as pool:
        return list(pool.map(one, clusters))


def _host_from_url(api_url: str | None) -> str | None:
    try:
        return urlsplit(api_url).hostname or None if api_url else None
    except ValueError:
        return None


def member_roles(raw: dict[str, t.Any]) -> list[str]:
    """Role groups of one /cluster member."""
    dcs_role = raw.get("role")
    if dcs_role in ("leader", "master", "primary"):
        return ["primary"]
    if dcs_role == "standby_leader":
        return ["standby_leader"]
    roles = ["replica"]
    if dcs_role in ("sync_standby", "quorum_standby"):
        roles.append(dcs_role)
    return roles


def cluster_hosts(read: dict[str, t.Any], cluster_name: str | None, ansible_host_from: str = "host",
                  ) -> list[dict[str, t.Any]]:
    """One entry per member: ``{"name", "roles", "vars"}``, variables named patroni_* plus ansible_host."""
    doc = read["doc"]
    raw_members = [m for m in doc.get("members") or [] if isinstance(m, dict) and m.get("name")]
    leader = next((m["name"] for m in raw_members if m.get("role") in ("leader", "standby_leader", "master")), None)
    scope = read.get("scope") or cluster_name
    hosts = []
    for raw in raw_members:
        member = build_member(raw)
        roles = member_roles(raw)
        api_url = member_base_url(raw.get("api_url"))
        hostvars: dict[str, t.Any] = {
            "patroni_name": member["name"],
            "patroni_cluster": cluster_name or scope,
            "patroni_scope": scope,
            "patroni_role": roles[0],
            "patroni_dcs_role": raw.get("role"),
            "patroni_sync_standby": member["sync"],
            "patroni_quorum_standby": member["quorum"],
            "patroni_state": member["state"],
            "patroni_streaming": member["streaming"],
            "patroni_api_url": api_url,
            "patroni_host": member["host"],
            "patroni_port": member["port"],
            "patroni_timeline": member["timeline"],
            "patroni_lag": member["lag"],
            "patroni_receive_lag": member["receive_lag"],
            "patroni_replay_lag": member["replay_lag"],
            "patroni_pending_restart": member["pending_restart"],
            "patroni_tags": member["tags"],
            "patroni_leader": leader,
            "patroni_paused": bool(doc.get("pause")),
            "patroni_seed": read.get("source"),
        }
        if ansible_host_from == "host" and member["host"]:
            hostvars["ansible_host"] = member["host"]
        elif ansible_host_from == "api_url" and _host_from_url(api_url):
            hostvars["ansible_host"] = _host_from_url(api_url)
        hosts.append({"name": member["name"], "roles": roles, "vars": hostvars})
    return hosts


def find_primary(read: dict[str, t.Any]) -> dict[str, t.Any]:
    """The member holding the leader lock of a primary cluster, or an error that says why there is none."""
    doc, source = read["doc"], read.get("source")
    cluster = read.get("scope") or "the cluster"
    members = [build_member(m) for m in doc.get("members") or [] if isinstance(m, dict)]
    leaders = [m for m in members if m["role"] == "primary"]
    where = f"GET /cluster from {source}"
    summary = ", ".join(f"{m['name']} ({m['role']}, {m['state']})" for m in members) or "no members"
    if len(leaders) == 1:
        leader = leaders[0]
        return {
            "name": leader["name"],
            "host": leader["host"],
            "port": leader["port"],
            "api_url": member_base_url(leader["api_url"]),
            "timeline": leader["timeline"],
            "scope": read.get("scope"),
        }
    if len(leaders) > 1:
        raise PatroniError(f"{where}: {len(leaders)} members of {cluster} claim the leader role "
                           f"({', '.join(str(m['name']) for m in leaders)}); ask again once the cluster settles",
                           url=source, retryable=True)
    standby = [m for m in members if m["role"] in LEADER_ROLES]
    if standby:
        raise PatroniError(f"{where}: {cluster} is a standby cluster led by {standby[0]['name']} (standby_leader); "
                           "it has no primary. Ask the primary cluster it replicates from", url=source)
    if doc.get("pause"):
        raise PatroniError(f"{where}: {cluster} is paused (maintenance mode) and no member holds the leader lock, "
                           f"so Patroni will not elect one ({summary}). Start the old primary, or run "
                           "patroni_failover to a chosen member, or resume the cluster", url=source)
    raise PatroniError(f"{where}: no member of {cluster} holds the leader lock ({summary}); a failover may be in "
                       "progress: ask again with wait=true", url=source, retryable=True)

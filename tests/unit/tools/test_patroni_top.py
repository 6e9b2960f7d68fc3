# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy
import datetime
import json
import re

import pytest
import requests

from ansible_collections.pgha.patroni.tests.unit.helpers.fake_http import GET
from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import fake  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.module import load_fixture
from ansible_collections.pgha.patroni.tools.pgha_tools import top

M1, M2, M3, M4 = ("http://10.213.0.11:8008", "http://10.213.0.12:8008", "http://10.213.0.13:8008",
                  "http://10.213.0.14:8008")
NOW = datetime.datetime(2026, 11, 25, 10, 30, 2, tzinfo=datetime.timezone.utc)
OPTIONS = dict(username=None, password=None, ca_path=None, client_cert=None, client_key=None, validate_certs=True,
               timeout=1.0)


def refused(url: str) -> requests.exceptions.ConnectionError:
    from urllib3.exceptions import MaxRetryError, NewConnectionError
    inner = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")
    inner.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return requests.exceptions.ConnectionError(MaxRetryError(None, url, inner))


def member(name: str, role: str = "replica", state: str = "streaming", lag: int | None = 0, **extra) -> dict:
    row = {"name": name, "host": "10.0.0.1", "api_url": "http://10.0.0.1:8008/patroni", "role": role,
           "sync": False, "quorum": False, "state": state, "timeline": 2, "lag": None if role == "primary" else lag,
           "lag_human": None if role == "primary" else top.human_bytes(lag), "pending_restart": False, "tags": {},
           "version": "4.1.5", "in_cluster": True, "reachable": True, "reason": None}
    row.update(extra)
    return row


def snapshot(members: list[dict], **extra) -> dict:
    leader = next((m["name"] for m in members if m["role"] == "primary"), None)
    snap = {"label": "c1", "scope": "c1", "source": M1, "leader": leader,
            "paused": False, "scheduled_switchover": None, "last_failover": None, "members": members,
            "warnings": [], "error": None}
    snap.update(extra)
    return snap


def text_of(line: list) -> str:
    return "".join(text for text, dummy in line)


def row_of(lines: list, name: str) -> list:
    for line in lines:
        text = "".join(s for s, _style in line)
        if re.match(rf"^  [*! ]  {name} ", text):
            return line
    raise AssertionError(f"no row for {name} in {top.plain(lines)}")


@pytest.mark.parametrize("value, text", [
    (None, "unknown"), (0, "0 B"), (96, "96 B"), (1023, "1023 B"), (1024, "1.0 kB"), (1572864, "1.5 MB"),
    (16 * 1024 ** 2, "16.0 MB"), (3 * 1024 ** 3 + 1, "3.0 GB"), (5 * 1024 ** 5, "5120.0 TB"),
])
def test_lag_in_postgresql_units(value, text):
    assert top.human_bytes(value) == text


def test_primary_is_highlighted_and_marked():
    lines = top.render([snapshot([member("c1m1", "primary", "running"), member("c1m2")])], now=NOW)
    primary = row_of(lines, "c1m1")
    assert primary[0][1] == top.PRIMARY
    assert text_of(primary).lstrip().startswith("*  c1m1")
    assert row_of(lines, "c1m2")[0][1] == top.NORMAL
    assert "leader c1m1" in top.plain(lines)


def test_lag_shown_in_bytes_and_human_units_only_for_replicas():
    lines = top.render([snapshot([member("c1m1", "primary", "running"), member("c1m2", lag=1572864),
                                  member("c1m3", lag=None)])], now=NOW)
    text = top.plain(lines)
    assert re.search(r" 1572864 +1\.5 MB\n", text)
    assert re.search(r" unknown +unknown\n", text)
    primary_text = text_of(row_of(lines, "c1m1"))
    assert " B" not in primary_text and "unknown" not in primary_text


def test_unreachable_member_is_marked_with_the_reason():
    reason = "connection refused by 10.213.0.13:8008 (GET http://10.213.0.13:8008/patroni): is Patroni running?"
    lines = top.render([snapshot([member("c1m1", "primary", "running"),
                                  member("c1m3", reachable=False, reason=reason)])], now=NOW)
    row = row_of(lines, "c1m3")
    assert row[0][1] == top.BAD
    assert text_of(row).lstrip().startswith("!  c1m3")
    assert "streaming (API down)" in text_of(row)
    following = lines[lines.index(row) + 1]
    assert following == [("      " + reason, top.BAD)]
    assert "1/2 members up" in top.plain(lines)


def test_paused_cluster_pending_restart_tags_and_last_failover():
    failover = {"timeline": 1, "new_timeline": 2, "lsn": 25165984, "reason": "no recovery target specified",
                "timestamp": "2026-11-25T10:20:01.123456+00:00", "new_leader": "c1m1"}
    lines = top.render([snapshot([member("c1m1", "primary", "running"),
                                  member("c1m3", pending_restart=True, tags={"nofailover": True, "dc": "b"})],
                                 paused=True, last_failover=failover)], now=NOW)
    text = top.plain(lines)
    assert "PAUSED" in text
    assert ("  PAUSED (no automatic failover)", top.WARN) in lines[2]
    assert "last failover: timeline 1 -> 2 to c1m1 at 2026-11-25 10:20:01 UTC (10 min ago)" in text
    c1m3 = text_of(row_of(lines, "c1m3"))
    assert "pending" in c1m3 and "dc=b,nofailover=true" in c1m3


def test_no_leader_and_unreadable_cluster_are_red():
    lines = top.render([snapshot([member("c1m2")]), snapshot([], label="http://10.0.0.9:8008", error="boom")],
                       now=NOW)
    assert ("  NO LEADER", top.BAD) in lines[2]
    assert [("cluster http://10.0.0.9:8008", top.HEADER), ("  UNREACHABLE", top.BAD)] in lines
    assert [("  cannot read the cluster: boom", top.BAD)] in lines


def test_poll_builds_the_view_from_the_shared_facts_code(fake):
    fake.expect(
        GET(M1 + "/patroni", json_body=load_fixture("patroni-4.1", "primary-patroni.json")),
        GET(M1 + "/cluster", json_body=load_fixture("patroni-4.1", "cluster.json")),
        GET(M1 + "/history", json_body=load_fixture("patroni-4.1", "history.json")),
        GET(M2 + "/patroni", json_body=load_fixture("patroni-4.1", "replica-patroni.json")),
        GET(M3 + "/patroni", raises=refused(M3 + "/patroni")),
    )
    target = top.Target(M1, [M1], {M1: None})
    snap = top.poll(target, OPTIONS)
    assert snap["error"] is None
    assert (snap["scope"], snap["leader"], snap["paused"], snap["source"]) == ("c1", "c1m1", False, M1)
    assert snap["last_failover"]["new_leader"] == "c1m1" and snap["last_failover"]["new_timeline"] == 2
    by_name = {m["name"]: m for m in snap["members"]}
    assert by_name["c1m1"]["role"] == "primary" and by_name["c1m1"]["lag_human"] is None
    assert by_name["c1m3"]["sync"] and by_name["c1m3"]["lag"] == 96 and by_name["c1m3"]["lag_human"] == "96 B"
    assert by_name["c1m3"]["reachable"] is False
    assert "connection refused by 10.213.0.13:8008" in by_name["c1m3"]["reason"]
    assert by_name["c1m3"]["pending_restart"] and by_name["c1m3"]["tags"] == {"nofailover": True, "dc": "b"}
    # every member /cluster listed is remembered, so it stays on screen when its key disappears
    assert sorted(target.known.values()) == ["c1m1", "c1m2", "c1m3"]
    json.dumps(snap)  # --json must be able to print it


def test_a_member_that_left_cluster_stays_visible_as_unreachable(fake):
    doc = copy.deepcopy(load_fixture("patroni-4.1", "cluster.json"))
    doc["members"] = doc["members"][:2]
    fake.expect(
        GET(M1 + "/patroni", json_body=load_fixture("patroni-4.1", "primary-patroni.json")),
        GET(M1 + "/cluster", json_body=doc),
        GET(M1 + "/history", json_body=[]),
        GET(M2 + "/patroni", json_body=load_fixture("patroni-4.1", "replica-patroni.json")),
        GET(M3 + "/patroni", raises=refused(M3 + "/patroni")),
    )
    target = top.Target("c1", [M1], {M1: "c1m1", M3: "c1m3"})
    snap = top.poll(target, OPTIONS)
    gone = next(m for m in snap["members"] if m["name"] == "c1m3")
    assert (gone["in_cluster"], gone["reachable"]) == (False, False)
    assert gone["reason"].startswith("not in /cluster (no member key in the DCS); connection refused")
    lines = top.render([snap], now=NOW)
    assert "unreachable" in text_of(row_of(lines, "c1m3"))
    assert row_of(lines, "c1m3")[0][1] == top.BAD
    assert "last failover: none (timeline 1)" in top.plain(lines)


def test_poll_falls_back_to_the_next_seed_and_reports_all_failures(fake):
    fake.expect(
        GET(M4 + "/patroni", raises=refused(M4 + "/patroni")),
        GET(M4 + "/cluster", raises=refused(M4 + "/cluster")),
        GET(M4 + "/history", raises=refused(M4 + "/history")),
    )
    snap = top.poll(top.Target("c1", [M4]), OPTIONS)
    assert snap["members"] == [] and "connection refused by 10.213.0.14:8008" in snap["error"]


def test_seeds_of_one_cluster_merge_into_one_block():
    first, second = top.Target(M1, [M1], {M1: None}), top.Target(M2, [M2], {M2: None})
    targets, snaps = top.merge_same_scope([first, second], [snapshot([]), snapshot([])])
    assert targets == [first] and len(snaps) == 1
    assert first.seeds == [M1, M2] and set(first.known) == {M1, M2}


def test_once_json_and_bad_options(capsys, monkeypatch):
    monkeypatch.setattr(top, "poll", lambda target, options: snapshot([member("c1m1", "primary", "running")]))
    assert top.main(["--once", "--json", M1]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["clusters"][0]["leader"] == "c1m1"
    assert top.main(["--once", "--username", "u", M1]) == 2
    assert "--password (or PATRONI_API_PASSWORD)" in capsys.readouterr().err
    assert top.main(["--once", "--ca-path", "/nonexistent/ca.crt", M1]) == 2
    assert "ca_path /nonexistent/ca.crt does not exist" in capsys.readouterr().err

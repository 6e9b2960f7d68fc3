# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy

import pytest
from ansible.errors import AnsibleLookupError
from ansible.plugins.loader import lookup_loader

from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import fake  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.fake_http import GET
from ansible_collections.pgha.patroni.tests.unit.helpers.module import load_fixture
from ansible_collections.pgha.patroni.tests.unit.plugins.module_utils.test_facts import refused

M1, M2, M3 = "http://10.213.0.11:8008", "http://10.213.0.12:8008", "http://10.213.0.13:8008"
PRIMARY = {"name": "c1m1", "host": "10.213.0.11", "port": 5432, "api_url": M1, "timeline": 2}


def cluster(leader: str | None = "c1m1", pause: bool = False) -> dict:
    doc = copy.deepcopy(load_fixture("patroni-4.1", "cluster.json"))
    for member in doc["members"]:
        member["role"] = "leader" if member["name"] == leader else "replica"
    if pause:
        doc["pause"] = True
    return doc


def lookup(*terms, **kwargs):
    return lookup_loader.get("pgha.patroni.patroni_primary").run(list(terms), variables={}, **kwargs)


def test_primary_from_first_seed(fake):
    fake.expect(GET(M2 + "/cluster", json_body=cluster()))
    assert lookup(M2, M3) == [PRIMARY]


def test_next_seed_when_one_is_down_and_comma_lists(fake):
    fake.expect(GET(M2 + "/cluster", raises=refused(M2)), GET(M3 + "/cluster", json_body=cluster("c1m3")))
    result = lookup(f"{M2}, {M3}")
    assert result[0]["name"] == "c1m3" and result[0]["api_url"] == M3


def test_seed_published_api_url_accepted(fake):
    fake.expect(GET(M2 + "/cluster", json_body=cluster()))
    assert lookup(M2 + "/patroni") == [PRIMARY]


def test_no_leader_names_url_and_members(fake):
    fake.expect(GET(M2 + "/cluster", json_body=cluster(None)))
    with pytest.raises(AnsibleLookupError) as err:
        lookup(M2)
    msg = str(err.value)
    assert msg.startswith(f"pgha.patroni.patroni_primary: GET /cluster from {M2}: no member of c1 holds the leader "
                          "lock (c1m1 (replica, running), c1m2 (replica, streaming), c1m3 (replica, streaming))")
    assert "wait=true" in msg


def test_paused_without_leader(fake):
    fake.expect(GET(M2 + "/cluster", json_body=cluster(None, pause=True)))
    with pytest.raises(AnsibleLookupError) as err:
        lookup(M2)
    assert "c1 is paused (maintenance mode) and no member holds the leader lock" in str(err.value)


def test_no_seed_answers(fake):
    fake.expect(GET(M2 + "/cluster", raises=refused(M2)), GET(M3 + "/cluster", status=503, body="down"))
    with pytest.raises(AnsibleLookupError) as err:
        lookup("http://admin:hunter2@10.213.0.12:8008", M3, api_password="x")
    msg = str(err.value)
    assert "no seed of the cluster answered GET /cluster" in msg
    assert "connection refused by 10.213.0.12:8008" in msg and f"GET {M3}/cluster answered HTTP 503" in msg
    assert "hunter2" not in msg


def test_wrong_tls_files(tmp_path):
    with pytest.raises(AnsibleLookupError) as err:
        lookup("https://10.213.0.12:8008", ca_path=str(tmp_path / "ca.pem"))
    assert f"ca_path {tmp_path}/ca.pem does not exist on the host running this task" in str(err.value)


@pytest.mark.parametrize("terms, text", [
    ([], "terms: no seed URL given"),
    (["10.0.0.1:8008"], "terms '10.0.0.1:8008' has no scheme"),
])
def test_bad_terms(terms, text):
    with pytest.raises(AnsibleLookupError) as err:
        lookup(*terms)
    assert text in str(err.value)


def test_connection_options_reach_the_client(fake):
    def check(kwargs: dict) -> None:
        assert kwargs["auth"] == ("admin", "secret") and kwargs["timeout"] == 1.5
        assert kwargs["verify"] is False

    fake.expect(GET("https://10.213.0.12:8008/cluster", json_body=cluster(), check=check))
    lookup("https://10.213.0.12:8008", api_username="admin", api_password="secret", validate_certs=False,
           timeout=1.5)


def test_wait_until_a_primary_accepts_writes(fake):
    status = load_fixture("patroni-4.1", "primary-patroni.json")
    fake.expect(GET(M2 + "/cluster", json_body=cluster(None)),
                GET(M2 + "/cluster", json_body=cluster("c1m1")),
                GET(M1 + "/patroni", json_body=status),
                GET(M1 + "/read-write", json_body=status))
    result = lookup(M2, M3, wait=True, wait_timeout=10, wait_sleep=0.05)
    assert result == [dict(PRIMARY, timeline=status["timeline"])]


def test_wait_times_out_with_what_was_seen(fake):
    fake.expect(GET(M2 + "/cluster", json_body=cluster(None, pause=True), repeat=True))
    with pytest.raises(AnsibleLookupError) as err:
        lookup(M2, wait=True, wait_timeout=0.2, wait_sleep=0.05)
    msg = str(err.value)
    assert "timed out after" in msg and "missing: no member holds the leader lock" in msg
    assert f"last GET /cluster (from {M2}" in msg

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy
import threading
import time

import pytest
import requests

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    PatroniAuthError,
    PatroniClient,
    PatroniError,
    PatroniTLSError,
)
from ansible_collections.pgha.patroni.plugins.module_utils._wait_primary import (
    PatroniWaitTimeout,
    PrimaryWaiter,
    wait_for_primary,
)
from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import fake, serve  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.fake_http import GET
from ansible_collections.pgha.patroni.tests.unit.helpers.module import load_fixture
from ansible_collections.pgha.patroni.tests.unit.helpers.servers import Route
from ansible_collections.pgha.patroni.tests.unit.plugins.module_utils.test_facts import dropped, refused

M1, M2, M3 = "http://10.213.0.11:8008", "http://10.213.0.12:8008", "http://10.213.0.13:8008"


class Clock:
    """Fake monotonic clock: time only moves when the waiter sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def cluster(leader: str | None = "c1m1", timeline: int = 2, **changes: dict) -> dict:
    """The 4.1 cluster fixture (c1m3 is the sync standby) with a chosen leader, timeline and lags of 0, plus
    per-member changes."""
    doc = copy.deepcopy(load_fixture("patroni-4.1", "cluster.json"))
    for member in doc["members"]:
        for key in ("lag", "lsn", "receive_lag", "receive_lsn", "replay_lag", "replay_lsn"):
            member.pop(key, None)
        if member["name"] == leader:
            member["role"], member["state"] = "leader", "running"
        else:
            member.update(role="sync_standby" if member["name"] == "c1m3" else "replica", state="streaming",
                          lag=0, lsn="0/4000060")
        member["timeline"] = timeline
        member.update(changes.get(member["name"], {}))
    return doc


def status(name: str, role: str = "primary", state: str = "running", timeline: int = 2) -> dict:
    doc = copy.deepcopy(load_fixture("patroni-4.1", "primary-patroni.json"))
    doc.update(role=role, state=state, timeline=timeline)
    doc["patroni"]["name"] = name
    return doc


def leader_ok(base: str, name: str, timeline: int = 2, role: str = "primary", read_write: int = 200) -> list:
    return [GET(base + "/patroni", json_body=status(name, role=role, timeline=timeline)),
            GET(base + "/read-write", read_write, {"role": role})]


def test_returns_at_once_when_the_primary_is_ready(fake):
    clock = Clock()
    fake.expect(GET(M2 + "/cluster", json_body=cluster("c1m1")), *leader_ok(M1, "c1m1"))
    result = wait_for_primary(PatroniClient(M2), clock=clock.monotonic, sleep=clock.sleep)
    assert clock.sleeps == []
    assert result == {
        "primary": "c1m1", "api_url": "http://10.213.0.11:8008/patroni", "host": "10.213.0.11", "port": 5432,
        "timeline": 2, "members": result["members"], "elapsed": 0.0, "polls": 1}
    assert [m["name"] for m in result["members"]] == ["c1m1", "c1m2", "c1m3"]


def test_lock_before_promotion_is_not_enough(fake):
    """Patroni holds the leader key before promotion ends: wait for /patroni and /read-write too."""
    clock = Clock()
    fake.expect(GET(M1 + "/cluster", json_body=cluster("c1m2")), *leader_ok(M2, "c1m2", role="replica",
                                                                            read_write=503))
    fake.expect(GET(M1 + "/cluster", json_body=cluster("c1m2")), *leader_ok(M2, "c1m2", read_write=503))
    fake.expect(GET(M1 + "/cluster", json_body=cluster("c1m2", timeline=3)), *leader_ok(M2, "c1m2", timeline=3))
    result = wait_for_primary(PatroniClient(M1), wait_sleep=0.25, clock=clock.monotonic, sleep=clock.sleep)
    assert (result["primary"], result["timeline"], result["polls"], result["elapsed"]) == ("c1m2", 3, 3, 0.5)
    assert clock.sleeps == [0.25, 0.25]


def test_polls_start_every_wait_sleep_however_long_a_round_takes(fake):
    """Detection latency stays about wait_sleep: time spent in requests is taken off the pause."""
    clock = Clock()

    def slow(_kwargs):
        clock.now += 0.3

    fake.expect(GET(M1 + "/cluster", json_body=cluster(None), check=slow))
    fake.expect(GET(M1 + "/cluster", json_body=cluster(None), check=slow))
    fake.expect(GET(M1 + "/cluster", json_body=cluster("c1m1"), check=slow), *leader_ok(M1, "c1m1"))
    result = wait_for_primary(PatroniClient(M1), wait_sleep=1, clock=clock.monotonic, sleep=clock.sleep)
    assert clock.sleeps == [0.7, 0.7]
    assert (result["polls"], result["elapsed"]) == (3, 2.3)


def test_not_member_waits_for_another_primary_and_min_timeline(fake):
    clock = Clock()
    fake.expect(GET(M1 + "/cluster", json_body=cluster("c1m1")))
    fake.expect(GET(M1 + "/cluster", json_body=cluster(None)))
    fake.expect(GET(M1 + "/cluster", json_body=cluster("c1m3", timeline=2)), *leader_ok(M3, "c1m3", timeline=2))
    fake.expect(GET(M1 + "/cluster", json_body=cluster("c1m3", timeline=3)), *leader_ok(M3, "c1m3", timeline=3))
    result = wait_for_primary(PatroniClient(M1), not_member="c1m1", min_timeline=3, clock=clock.monotonic,
                              sleep=clock.sleep)
    assert (result["primary"], result["timeline"], result["polls"]) == ("c1m3", 3, 4)
    # the old primary is never asked for /patroni while it still holds the lock: it is not the answer anyway
    assert M1 + "/patroni" not in fake.urls()


def test_dead_first_member_is_skipped_and_moved_last(fake):
    clock = Clock()
    fake.expect(GET(M1 + "/cluster", raises=refused(M1 + "/cluster")),
                GET(M2 + "/cluster", json_body=cluster(None)))
    fake.expect(GET(M2 + "/cluster", json_body=cluster("c1m2")), *leader_ok(M2, "c1m2"))
    result = wait_for_primary(PatroniClient(M1), member_api_urls=[M2 + "/patroni"], clock=clock.monotonic,
                              sleep=clock.sleep)
    assert result["primary"] == "c1m2"
    # second poll went straight to the member that answered, not to the dead one first
    assert fake.urls()[:3] == [M1 + "/cluster", M2 + "/cluster", M2 + "/cluster"]


def test_empty_reply_asks_a_member_learned_from_cluster(fake):
    clock = Clock()
    fake.expect(GET(M1 + "/cluster", json_body=cluster(None)))
    fake.expect(GET(M1 + "/cluster", raises=dropped()), GET(M2 + "/cluster", json_body=cluster("c1m3")),
                *leader_ok(M3, "c1m3"))
    result = wait_for_primary(PatroniClient(M1), clock=clock.monotonic, sleep=clock.sleep)
    assert (result["primary"], result["polls"]) == ("c1m3", 2)


def test_tls_error_fails_at_once(fake):
    import ssl
    from urllib3.exceptions import MaxRetryError
    from urllib3.exceptions import SSLError as Urllib3SSLError
    verify = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                                             "unable to get local issuer certificate (_ssl.c:1000)")
    verify.verify_code, verify.verify_message = 20, "unable to get local issuer certificate"
    fake.expect(GET("https://10.213.0.11:8008/cluster",
                    raises=requests.exceptions.SSLError(MaxRetryError(None, "/cluster", Urllib3SSLError(verify)))))
    clock = Clock()
    with pytest.raises(PatroniTLSError) as info:
        wait_for_primary(PatroniClient("https://10.213.0.11:8008"), clock=clock.monotonic, sleep=clock.sleep)
    assert str(info.value).startswith("TLS certificate verification failed for https://10.213.0.11:8008/cluster: "
                                      "unknown CA (unable to get local issuer certificate).")
    assert clock.sleeps == []


def test_auth_error_from_a_proxy_fails_at_once(fake):
    fake.expect(GET(M1 + "/cluster", 401, body="no auth header received"))
    clock = Clock()
    with pytest.raises(PatroniAuthError):
        wait_for_primary(PatroniClient(M1), clock=clock.monotonic, sleep=clock.sleep)
    assert clock.sleeps == []


def test_timeout_names_what_is_missing_and_the_last_state(fake):
    clock = Clock()
    fake.expect(GET(M1 + "/cluster", json_body=cluster("c1m1", **{"c1m3": {"state": "stopped", "lag": "unknown"}}),
                    repeat=True),
                GET(M2 + "/patroni", raises=refused(M2 + "/patroni")))
    with pytest.raises(PatroniWaitTimeout) as info:
        wait_for_primary(PatroniClient(M1), not_member="c1m1", wait_timeout=3, clock=clock.monotonic,
                         sleep=clock.sleep)
    assert str(info.value) == (
        "timed out after 3.0 s (wait_timeout=3, 4 polls) waiting for a primary; missing: c1m1 is still primary "
        "(not_member). last GET /cluster (from http://10.213.0.11:8008, 0.0 s before giving up): c1m1: primary, "
        "running, timeline 2, lag -; c1m2: replica, streaming, timeline 2, lag 0 B; c1m3: replica (sync), stopped, "
        "timeline 2, lag unknown")
    assert info.value.details["missing"] == ["c1m1 is still primary (not_member)"]
    assert info.value.details["polls"] == 4 and info.value.details["elapsed"] == 3.0
    assert clock.sleeps == [1.0, 1.0, 1.0]
    fake.pending.clear()


def test_timeout_with_replicas_missing_and_a_member_error(fake):
    clock = Clock()
    doc = cluster("c1m1", **{"c1m3": {"lag": 5 * 1024 * 1024}})
    fake.expect(GET(M1 + "/cluster", json_body=doc, repeat=True),
                GET(M1 + "/patroni", json_body=status("c1m1"), repeat=True),
                GET(M1 + "/read-write", 200, {}, repeat=True))
    with pytest.raises(PatroniWaitTimeout) as info:
        wait_for_primary(PatroniClient(M1), min_replicas=2, max_lag="1MB", wait_timeout=0.5, wait_sleep=0.5,
                         clock=clock.monotonic, sleep=clock.sleep)
    assert info.value.details["missing"] == ["1 of 2 replicas streaming within 1MB (min_replicas)"]
    assert "c1m3: replica (sync), streaming, timeline 2, lag 5242880 B" in str(info.value)
    assert "c1m1 GET /patroni: role primary, state running, timeline 2; GET /read-write: 200" in str(info.value)


def test_replicas_on_the_old_timeline_do_not_count(fake):
    clock = Clock()
    doc = cluster("c1m2", timeline=3, **{"c1m1": {"timeline": 2}, "c1m3": {"timeline": 3}})
    fake.expect(GET(M2 + "/cluster", json_body=doc), *leader_ok(M2, "c1m2", timeline=3))
    with pytest.raises(PatroniWaitTimeout) as info:
        wait_for_primary(PatroniClient(M2), min_replicas=2, wait_timeout=0, clock=clock.monotonic, sleep=clock.sleep)
    assert info.value.details["missing"] == ["1 of 2 replicas streaming (min_replicas)"]


def test_every_missing_condition_is_listed(fake):
    clock = Clock()
    fake.expect(GET(M1 + "/cluster", json_body=cluster("c1m1", **{"c1m3": {"state": "stopped"}})))
    with pytest.raises(PatroniWaitTimeout) as info:
        wait_for_primary(PatroniClient(M1), member="c1m3", min_replicas=2, wait_timeout=0, clock=clock.monotonic,
                         sleep=clock.sleep)
    assert info.value.details["missing"] == ["c1m1 is primary, not c1m3 (member)",
                                             "1 of 2 replicas streaming (min_replicas)"]


def test_member_that_is_not_in_the_cluster(fake):
    clock = Clock()
    fake.expect(GET(M1 + "/cluster", json_body=cluster("c1m1")))
    with pytest.raises(PatroniWaitTimeout) as info:
        wait_for_primary(PatroniClient(M1), member="c1m9", wait_timeout=0, clock=clock.monotonic, sleep=clock.sleep)
    assert info.value.details["missing"] == ["c1m1 is primary, not c1m9 (member); c1m9 is not a member of the cluster"]


def test_nobody_answers(fake):
    clock = Clock()
    fake.expect(GET(M1 + "/cluster", raises=refused(M1 + "/cluster"), repeat=True))
    with pytest.raises(PatroniWaitTimeout) as info:
        wait_for_primary(PatroniClient(M1), wait_timeout=2, clock=clock.monotonic, sleep=clock.sleep)
    assert str(info.value) == (
        "timed out after 2.0 s (wait_timeout=2, 3 polls) waiting for a primary; missing: no member answered GET "
        "/cluster. errors: http://10.213.0.11:8008: connection refused by 10.213.0.11:8008 (GET "
        "http://10.213.0.11:8008/cluster): is Patroni running and listening on 10.213.0.11:8008? Check "
        "restapi.listen and firewalls")
    assert info.value.details["members"] is None


@pytest.mark.parametrize("options, message", [
    (dict(wait_sleep=0.01), "wait_sleep=0.01 is too small: use at least 0.05 seconds"),
    (dict(wait_timeout=-1), "wait_timeout=-1 must be 0 or more seconds"),
    (dict(min_replicas=-2), "min_replicas=-2 must be 0 or more"),
    (dict(member="c1m2", not_member="c1m2"), "member and not_member are both 'c1m2': no primary can satisfy both"),
    (dict(max_lag="1 mb"), "max_lag='1 mb' is not a size Patroni understands: give bytes (e.g. 1048576) or a number "
                           "with one of the case-sensitive units B, kB, MB, GB, TB (e.g. 16MB). Patroni silently "
                           "ignores other spellings such as 16mb or 16KB, which would switch the lag limit off."),
])
def test_bad_options(options, message):
    with pytest.raises(PatroniError) as info:
        PrimaryWaiter(PatroniClient(M1), **options)
    assert str(info.value) == message


def test_detection_latency_is_about_wait_sleep_with_real_sockets(serve):
    """A leader that becomes ready 0.6 s in is seen within one wait_sleep (0.1 s) plus a round trip."""
    promoted = cluster("c1m1")
    server = serve({"/cluster": Route(200, cluster(None))})
    base = server.url()
    for member in promoted["members"]:
        member["api_url"] = base + "/patroni"
    server.routes["/patroni"] = Route(200, status("c1m1"))
    server.routes["/read-write"] = Route(200, {"role": "primary"})
    ready_at = {}

    def promote():
        time.sleep(0.6)
        server.routes["/cluster"] = Route(200, promoted)
        ready_at["t"] = time.monotonic()

    thread = threading.Thread(target=promote)
    thread.start()
    started = time.monotonic()
    result = wait_for_primary(PatroniClient(base), wait_timeout=10, wait_sleep=0.1)
    done = time.monotonic()
    thread.join()
    assert result["primary"] == "c1m1"
    latency = done - ready_at["t"]
    assert latency < 0.25, f"saw the primary {latency:.3f} s after it was ready (wait_sleep 0.1)"
    assert 6 <= result["polls"] <= 9 and 0.55 < result["elapsed"] < done - started + 0.01

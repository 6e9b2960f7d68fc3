# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""roles/patroni_haproxy/files/pgha_haproxy_runtime.py run as the role runs it, against a fake Patroni cluster
(three http.server instances on 127.0.0.1) and a fake HAProxy runtime API (a unix socket)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import haproxy, serve  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.servers import Route, refused_port

SCRIPT = Path(__file__).resolve().parents[3] / "roles" / "patroni_haproxy" / "files" / "pgha_haproxy_runtime.py"
# the switchover entry point runs the helper's text with python3 -c (nothing installed); the other modes run the file
SWITCHOVER = [sys.executable, "-c", SCRIPT.read_text()]
SWITCHED = 'Successfully switched over to "m2"'


class Cluster:
    """m1 (leader, receives the request), m2 and m3; when the POST arrives, m2 becomes the primary."""

    def __init__(self, serve, post: Route, promote: bool = True,
                 promoted: Route | None = None) -> None:
        self.members = {name: serve({"/primary": Route(503, {"role": "replica"}),
                                     "/patroni": Route(200, {"role": "replica", "state": "running"})})
                        for name in ("m2", "m3")}
        self.leader = serve({"/switchover": post, "/primary": Route(200, {"role": "primary"})})
        self.members["m1"] = self.leader
        self.leader.routes["/cluster"] = Route(200, {"members": [
            {"name": name, "role": "leader" if name == "m1" else "replica", "api_url": server.url() + "/patroni"}
            for name, server in sorted(self.members.items())]})
        self.polled_before_post: dict[str, int] = {}
        self.promote = promote
        # what m2's GET /patroni says once it holds the leader lock
        self.promoted = promoted or Route(200, {"role": "primary", "state": "running"})
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._watcher, daemon=True)
        self._watch.start()

    def _watcher(self) -> None:
        while not self._stop.is_set():
            if any(m == "POST" for m, _p, _h in self.leader.requests):
                self.polled_before_post = {name: sum(1 for m, p, _h in self.members[name].requests
                                                     if (m, p) == ("GET", "/primary")) for name in ("m2", "m3")}
                if self.promote:
                    self.members["m2"].routes["/primary"] = Route(200, {"role": "primary"})
                    self.members["m2"].routes["/patroni"] = self.promoted
                return
            time.sleep(0.002)

    def posts(self) -> list[tuple[str, dict]]:
        return [(p, h) for m, p, h in self.leader.requests if m == "POST"]

    def close(self) -> None:
        self._stop.set()


def run(sock: str, api_url: str, *extra: str, auth: dict | None = None, timeout: float = 20) -> tuple:
    argv = [*SWITCHOVER, sock, "switchover", "--api-url", api_url, "--leader", "m1",
            "--candidate", "m2", "--proxy", "c1_primary", "--timeout", "15", *extra]
    if auth is not None:
        argv.append("--auth-stdin")
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(json.dumps(auth) if auth is not None else "", timeout=timeout)
    return proc.returncode, (json.loads(out) if out.strip() else None), err, argv


def test_pollers_run_before_the_request_and_haproxy_follows_at_once(serve, haproxy):
    cluster = Cluster(serve, Route(200, body=SWITCHED, delay=1.0))
    rc, report, err, _argv = run(haproxy.path, cluster.leader.url())
    cluster.close()
    assert rc == 0, err
    # every poller had an answer before Patroni got the request, so the first 200 cannot be missed
    assert cluster.polled_before_post["m2"] >= 1 and cluster.polled_before_post["m3"] >= 1
    assert haproxy.commands[0] == "show info"
    assert haproxy.sets() == ["set server c1_primary/m2 health up", "set server c1_primary/m1 health down"]
    assert report["primary"] == "m2" and report["commands"] == haproxy.sets()
    # m2's own GET /patroni said it runs as primary: the role needs no patroni_wait_primary after this
    assert report["running_primary"] == "m2"
    # HAProxy was switched while Patroni was still working on its answer (1 s here)
    assert report["waited_s"] < 0.9 <= report["seconds"]
    assert (report["status"], report["answer"], report["haproxy_error"], report["follow_error"]) == (
        200, SWITCHED, "", "")
    ((path, headers),) = cluster.posts()
    assert path == "/switchover" and "Authorization" not in headers
    body_len = int(headers["Content-Length"])
    assert body_len == len(json.dumps({"leader": "m1", "candidate": "m2"}))


def test_a_lock_holder_not_yet_running_as_primary_is_not_reported_as_running(serve, haproxy):
    # /primary answers 200 for the leader lock alone; PostgreSQL may still be promoting (or stopped)
    cluster = Cluster(serve, Route(200, body=SWITCHED), promoted=Route(503, {"role": "replica", "state": "running"}))
    rc, report, err, _argv = run(haproxy.path, cluster.leader.url(), "--timeout", "2")
    cluster.close()
    assert rc == 0, err
    assert report["primary"] == "m2" and haproxy.sets()[0] == "set server c1_primary/m2 health up"
    assert report["running_primary"] is None
    # it kept asking m2 until the timeout, not once
    assert sum(1 for m, p, _h in cluster.members["m2"].requests if (m, p) == ("GET", "/patroni")) > 3


@pytest.mark.parametrize("status, text", [
    (412, "candidate name does not match with sync_standby"),
    (503, "Switchover failed"),
    (401, "not authenticated"),
])
def test_patroni_refusal_fails_with_its_text_and_the_url(serve, haproxy, status, text):
    cluster = Cluster(serve, Route(status, body=text), promote=False)
    rc, report, err, _argv = run(haproxy.path, cluster.leader.url())
    cluster.close()
    assert rc == 6
    assert err == (f"Patroni refused the switchover: POST {cluster.leader.url()}/switchover answered HTTP {status}: "
                   f"{text}\n")
    assert report["primary"] is None and haproxy.sets() == []
    assert "none of" not in report["follow_error"]


def test_credentials_come_from_stdin_and_are_never_shown(serve, haproxy):
    cluster = Cluster(serve, Route(200, body=SWITCHED, delay=0.5))
    secret = "s3cret-Pa55"
    argv = [*SWITCHOVER, haproxy.path, "switchover", "--api-url", cluster.leader.url(),
            "--leader", "m1", "--proxy", "c1_primary", "--auth-stdin"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdin.write(json.dumps({"username": "patroni", "password": secret}))
    proc.stdin.close()
    while not cluster.posts() and proc.poll() is None:
        time.sleep(0.01)
    with open(f"/proc/{proc.pid}/cmdline", "rb") as handle:
        cmdline = handle.read().decode()
    proc.wait(20)
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    cluster.close()
    assert proc.returncode == 0, err
    assert secret not in cmdline and secret not in out and secret not in err
    ((_path, headers),) = cluster.posts()
    assert headers["Authorization"] == "Basic " + base64.b64encode(f"patroni:{secret}".encode()).decode()
    # no candidate given: the body names the leader only, and any member may turn up as the new primary
    assert int(headers["Content-Length"]) == len(json.dumps({"leader": "m1"}))
    assert json.loads(out)["primary"] == "m2"


def test_credentials_in_the_url_stay_out_of_messages(haproxy):
    port = refused_port()
    rc, report, err, _argv = run(haproxy.path, f"http://patroni:hunter2@127.0.0.1:{port}")
    assert rc == 7
    assert f"did not answer POST http://127.0.0.1:{port}/switchover" in err
    assert "hunter2" not in err + json.dumps(report)


def test_no_runtime_api_still_switches_over(serve):
    cluster = Cluster(serve, Route(200, body=SWITCHED))
    rc, report, err, _argv = run("/nonexistent/admin.sock", cluster.leader.url())
    cluster.close()
    assert rc == 0, err
    assert len(cluster.posts()) == 1 and report["status"] == 200
    assert report["primary"] is None and "HAProxy runtime API /nonexistent/admin.sock not reachable" in \
        report["haproxy_error"]


def test_unreadable_cluster_still_switches_over(serve, haproxy):
    cluster = Cluster(serve, Route(200, body=SWITCHED))
    cluster.leader.routes["/cluster"] = Route(drop=True)
    rc, report, err, _argv = run(haproxy.path, cluster.leader.url())
    cluster.close()
    assert rc == 0, err
    assert len(cluster.posts()) == 1 and report["status"] == 200
    assert report["primary"] is None and haproxy.sets() == []
    assert report["follow_error"].startswith(f"Patroni {cluster.leader.url()}/cluster did not list the members")


def test_a_refused_haproxy_command_is_reported(serve, haproxy):
    haproxy.answers["set server c1_primary/m2 health up"] = "No such server.\n"
    cluster = Cluster(serve, Route(200, body=SWITCHED))
    rc, report, err, _argv = run(haproxy.path, cluster.leader.url())
    cluster.close()
    assert rc == 0, err
    assert report["primary"] == "m2" and report["commands"] == []
    assert report["haproxy_error"] == (f"HAProxy runtime API {haproxy.path} refused "
                                       "'set server c1_primary/m2 health up': No such server.")


def test_plain_commands(haproxy):
    haproxy.answers["set server c1_primary/m9 health up"] = "No such server.\n"
    ok = subprocess.run([sys.executable, str(SCRIPT), haproxy.path, "show info", "set server c1_primary/m1 health up"],
                        capture_output=True, text=True, check=False)
    assert (ok.returncode, ok.stdout) == (0, "Name: HAProxy\nVersion: 2.6.12\n")
    refused = subprocess.run([sys.executable, str(SCRIPT), haproxy.path, "set server c1_primary/m9 health up"],
                             capture_output=True, text=True, check=False)
    assert refused.returncode == 1 and "No such server." in refused.stderr
    absent = subprocess.run([sys.executable, str(SCRIPT), "/nonexistent/admin.sock", "show info"],
                            capture_output=True, text=True, check=False)
    assert absent.returncode == 3


def test_a_wrong_leader_name_leaves_haproxy_alone(serve, haproxy):
    cluster = Cluster(serve, Route(412, body="leader name does not match"), promote=False)
    cluster.members["m3"].routes["/primary"] = Route(200, {"role": "primary"})  # m3 is the real leader here
    rc, report, err, _argv = run(haproxy.path, cluster.leader.url())
    cluster.close()
    assert rc == 6 and "HTTP 412: leader name does not match" in err
    assert haproxy.sets() == [] and report["primary"] is None
    assert report["follow_error"] == "m3 answered /primary 200 before the switchover request"

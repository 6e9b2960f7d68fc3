# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import http.client
import threading
import time

import pytest

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import PatroniClient
from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import pki, serve  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.servers import Route, refused_port
from ansible_collections.pgha.patroni.tools.pgha_tools import lb_health

PRIMARY = {"/primary": Route(200, {"role": "primary"}), "/replica": Route(503, {"role": "primary"}),
           "/read-only": Route(200, {"role": "primary"})}
REPLICA = {"/primary": Route(503, {"role": "replica"}), "/replica": Route(200, {"role": "replica"}),
           "/read-only": Route(200, {"role": "replica"})}


def checker(url: str, timeout: float = 1.0, **kwargs) -> lb_health.Checker:
    return lb_health.Checker(PatroniClient(url, timeout=timeout, **kwargs), timeout)


@pytest.mark.parametrize("routes, answers", [
    (PRIMARY, {"/primary": 200, "/replica": 503, "/read-only": 200}),
    (REPLICA, {"/primary": 503, "/replica": 200, "/read-only": 200}),
])
def test_patroni_answers_map_to_the_same_status(serve, routes, answers):
    server = serve(routes)
    check = checker(server.url())
    assert {path: check.check(path, "")[0] for path in answers} == answers


def test_lag_is_validated_and_sent_in_bytes(serve):
    server = serve(REPLICA)
    check = checker(server.url())
    assert check.check("/replica", "lag=16MB")[0] == 200
    assert check.check("/read-only", "lag=1024")[0] == 200
    assert [p for _m, p, _h in server.requests] == ["/replica?lag=16777216", "/read-only?lag=1024"]
    status, reason = check.check("/replica", "lag=16mb")
    assert status == 400 and "case-sensitive units B, kB, MB, GB, TB" in reason
    assert check.check("/primary", "lag=1MB") == (400, "unknown query parameter lag for /primary (allowed: none)")
    assert check.check("/replica", "lag=1MB&replication_state=streaming")[0] == 400
    assert check.check("/leader", "")[0] == 404
    assert len(server.requests) == 2  # rejected requests never reach Patroni


def test_patroni_errors_become_503_with_one_line_reason(serve):
    status, reason = checker(f"http://127.0.0.1:{refused_port()}").check("/primary", "")
    assert status == 503 and "connection refused" in reason and "\n" not in reason
    dropped = serve({"/primary": Route(drop=True)})
    status, reason = checker(dropped.url()).check("/primary", "")
    assert status == 503 and "no HTTP response" in reason
    odd = serve({"/replica": Route(500, body="<html>boom</html>")})
    status, reason = checker(odd.url()).check("/replica", "")
    assert status == 503 and "HTTP 500" in reason


def test_own_deadline_answers_before_a_stuck_patroni(serve):
    stuck = serve({"/primary": Route(200, {"role": "primary"}, delay=3.0)})
    started = time.monotonic()
    status, reason = checker(stuck.url(), timeout=0.5).check("/primary", "")
    elapsed = time.monotonic() - started
    assert status == 503 and elapsed < 1.0, (elapsed, reason)


def test_tls_with_verify_client(serve, pki):
    server = serve(PRIMARY, ssl_context=pki.server_context(pki.server, verify_client=True))
    url = server.url("https")
    # a generous deadline: loading the default CA bundle is slow on a busy test machine
    good = checker(url, timeout=5, ca_path=pki.ca, client_cert=pki.client[1], client_key=pki.client[0])
    assert good.check("/primary", "")[0] == 200
    status, reason = checker(url, timeout=5, ca_path=pki.ca).check("/primary", "")
    assert status == 503 and "client certificate" in reason
    status, reason = checker(url, timeout=5, client_cert=pki.client[1], client_key=pki.client[0]).check("/primary", "")
    assert status == 503 and "certificate verification failed" in reason


def test_http_server_answers_get_head_options_and_logs_changes(serve):
    patroni = serve(dict(REPLICA))
    logged: list[str] = []
    server = lb_health.HealthServer(("127.0.0.1", 0), checker(patroni.url()), logged.append)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        def ask(method: str, path: str) -> tuple[int, str]:
            conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
            conn.request(method, path)
            response = conn.getresponse()
            body = response.read().decode()
            conn.close()
            return response.status, body

        assert ask("GET", "/replica?lag=16MB") == (200, f"OK: {patroni.url()}/replica?lag=16777216 answered 200\n")
        assert ask("HEAD", "/primary") == (503, "")
        assert ask("OPTIONS", "/read-only") == (200, f"OK: {patroni.url()}/read-only answered 200\n")
        assert ask("GET", "/replica?lag=16MB")[0] == 200
        patroni.routes["/replica"] = Route(503, {"role": "replica"})
        assert ask("GET", "/replica?lag=16MB") == (503, f"{patroni.url()}/replica?lag=16777216 answered 503\n")
        # one line per change of answer, not per request
        assert [line.split(":")[0] for line in logged] == ["/replica?lag=16MB -> 200", "/primary -> 503",
                                                           "/read-only -> 200", "/replica?lag=16MB -> 503"]
    finally:
        server.shutdown()
        server.server_close()


def test_bad_options_stop_at_startup(capsys):
    assert lb_health.main(["--port", "0", "--ca-path", "/nonexistent/ca.crt"]) == 2
    assert "ca_path /nonexistent/ca.crt does not exist" in capsys.readouterr().err
    assert lb_health.main(["--port", "0", "--timeout", "0"]) == 2
    assert "--timeout 0 must be more than 0 seconds" in capsys.readouterr().err

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import time

import pytest
import requests

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    PatroniAuthError,
    PatroniBadJSON,
    PatroniClient,
    PatroniConnectionError,
    PatroniEmptyReply,
    PatroniError,
    PatroniHTTPError,
    PatroniTimeout,
    PatroniTLSError,
    fetch_many,
    normalise_role,
    parse_api_url,
    parse_lag,
    same_api_url,
)
from ansible_collections.pgha.patroni.tests.unit.helpers.fixtures import fake, pki, serve  # noqa: F401 pylint: disable=unused-import
from ansible_collections.pgha.patroni.tests.unit.helpers.fake_http import GET, Call
from ansible_collections.pgha.patroni.tests.unit.helpers.servers import BlackHole, Route, refused_port

BASE = "http://10.213.0.11:8008"


# ---------------------------------------------------------------------------------------------------------------
# URLs, units, roles


@pytest.mark.parametrize("given, expected", [
    ("http://10.213.0.11:8008", ("http://10.213.0.11:8008", None, None)),
    ("http://10.213.0.11:8008/", ("http://10.213.0.11:8008", None, None)),
    ("http://10.213.0.11:8008/patroni", ("http://10.213.0.11:8008", None, None)),
    ("HTTPS://db1.example:8443", ("https://db1.example:8443", None, None)),
    ("http://[::1]:8008", ("http://[::1]:8008", None, None)),
    ("https://proxy.example/pg/c1m1/", ("https://proxy.example/pg/c1m1", None, None)),
    ("http://api:p%40ss@10.0.0.1:8008", ("http://10.0.0.1:8008", "api", "p@ss")),
])
def test_parse_api_url(given, expected):
    assert parse_api_url(given) == expected


@pytest.mark.parametrize("given, message", [
    ("", "api_url is empty: set it to the member's REST API address, e.g. http://10.0.0.11:8008"),
    ("10.0.0.1:8008", "api_url '10.0.0.1:8008' has no scheme: write http://10.0.0.1:8008 (or https://10.0.0.1:8008 "
                      "when restapi.certfile is set in patroni.yml)"),
    ("bob:hunter2@10.0.0.1:8008", "api_url '10.0.0.1:8008' has no scheme: write http://10.0.0.1:8008 (or "
                                  "https://10.0.0.1:8008 when restapi.certfile is set in patroni.yml)"),
    ("ftp://10.0.0.1", "api_url 'ftp://10.0.0.1' uses the scheme 'ftp': only http and https are supported"),
    ("http://", "api_url 'http://' has no valid host name: use scheme://host:port, e.g. http://10.0.0.11:8008"),
    ("http://bob:hunter2@10.0.0.1:99999", "api_url 'http://10.0.0.1:99999' is not a valid URL (Port out of range "
                                          "0-65535): use scheme://host:port, e.g. http://10.0.0.11:8008"),
    ("http://10.0.0.1:8008/?x=1", "api_url 'http://10.0.0.1:8008/?x=1' must not contain a query string or "
                                  "fragment: give only scheme://host:port"),
])
def test_bad_api_url_messages(given, message):
    with pytest.raises(PatroniError) as info:
        PatroniClient(given)
    assert str(info.value) == message
    assert info.value.kind == "bad_url"
    assert info.value.retryable is False
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("given, expected", [
    ("16MB", 16 * 1024 * 1024), ("1.5MB", 1572864), ("1 kB", 1024), ("100", 100), (100, 100), ("3B", 3),
    ("2GB", 2 * 1024 ** 3), ("1TB", 1024 ** 4), (None, None), ("", None),
])
def test_parse_lag(given, expected):
    assert parse_lag(given, "health_lag") == expected


@pytest.mark.parametrize("given", ["16mb", "16KB", "10M", "-1", "lots", "1e6", True, -5])
def test_parse_lag_refuses_what_patroni_would_ignore(given):
    with pytest.raises(PatroniError) as info:
        parse_lag(given, "max_lag")
    assert str(info.value) == (
        f"max_lag={given!r} is not a size Patroni understands: give bytes (e.g. 1048576) or a number with one of "
        "the case-sensitive units B, kB, MB, GB, TB (e.g. 16MB). Patroni silently ignores other spellings such as "
        "16mb or 16KB, which would switch the lag limit off.")


@pytest.mark.parametrize("given, expected", [
    ("master", "primary"), ("primary", "primary"), ("replica", "replica"), ("standby_leader", "standby_leader"),
    (None, None),
])
def test_normalise_role(given, expected):
    assert normalise_role(given) == expected


def test_same_api_url_ignores_case_default_port_and_patroni_path():
    assert same_api_url("http://DB1:80/patroni", "http://db1")
    assert same_api_url("http://10.213.0.11:8008/patroni", "http://10.213.0.11:8008/")
    assert not same_api_url("https://10.213.0.11:8008", "http://10.213.0.11:8008")
    assert not same_api_url("http://10.213.0.11:8008", "http://10.213.0.12:8008")
    assert not same_api_url(None, "http://10.213.0.12:8008")


# ---------------------------------------------------------------------------------------------------------------
# What goes on the wire (fake)


def test_request_sends_close_auth_and_tls_options(fake, pki):
    seen = {}
    fake.expect(Call("POST", BASE + "/restart", 200, body="restarted successfully",
                     check=seen.update))
    client = PatroniClient(BASE + "/patroni", username="api", password="hunter2", ca_path=pki.ca,
                           client_cert=pki.client[1], client_key=pki.client[0], timeout=2.5)
    response = client.request("POST", "/restart", json_body={"restart_pending": True})
    assert response.status == 200 and response.text == "restarted successfully"
    assert seen["headers"]["Connection"] == "close"
    assert seen["auth"] == ("api", "hunter2")
    assert seen["verify"] == pki.ca
    assert seen["cert"] == (pki.client[1], pki.client[0])
    assert seen["timeout"] == 2.5
    assert seen["json"] == {"restart_pending": True}
    assert seen["allow_redirects"] is False


def test_no_auth_without_credentials_and_no_verify_when_disabled(fake):
    seen = {}
    fake.expect(GET(BASE + "/patroni", json_body={"role": "primary"}, check=seen.update))
    assert PatroniClient(BASE, validate_certs=False).get_json("/patroni") == {"role": "primary"}
    assert seen["auth"] is None
    assert seen["verify"] is False
    assert seen["cert"] is None


def test_credentials_in_url_are_used_but_not_shown(fake):
    seen = {}
    fake.expect(GET(BASE + "/cluster", 500, body="boom", check=seen.update))
    client = PatroniClient("http://api:hunter2@10.213.0.11:8008")
    with pytest.raises(PatroniHTTPError) as info:
        client.get_json("/cluster")
    assert seen["auth"] == ("api", "hunter2")
    assert client.api_url == BASE
    assert str(info.value) == "GET http://10.213.0.11:8008/cluster answered HTTP 500 (expected 200): 'boom'"
    assert info.value.retryable is True


def test_for_url_keeps_options_and_accepts_member_api_url(pki):
    client = PatroniClient(BASE, username="api", password="pw", ca_path=pki.ca, timeout=3)
    other = client.for_url("http://10.213.0.12:8008/patroni")
    assert other.api_url == "http://10.213.0.12:8008"
    assert (other.username, other.password, other.ca_path, other.timeout) == ("api", "pw", pki.ca, 3.0)


@pytest.mark.parametrize("status, body, auth, message", [
    (401, "no auth header received", None,
     "POST http://10.213.0.11:8008/switchover answered HTTP 401 (authentication required): set api_username and "
     "api_password to restapi.authentication from patroni.yml"),
    (401, "not authenticated", ("api", "wrong"),
     "POST http://10.213.0.11:8008/switchover answered HTTP 401: Patroni rejected api_username/api_password; make "
     "them match restapi.authentication (username, password) in patroni.yml"),
    (403, "Access is denied", None,
     "POST http://10.213.0.11:8008/switchover answered HTTP 403 Access is denied: Patroni's restapi.allowlist does "
     "not include this controller's address; add this controller's address to restapi.allowlist (with a dual-stack "
     "listen such as '*:8008' IPv4 clients appear as ::ffff:a.b.c.d)"),
    (403, "client certificate required", None,
     "POST http://10.213.0.11:8008/switchover answered HTTP 403 client certificate required: Patroni runs with "
     "restapi.verify_client: optional, which needs a client certificate for this request; set client_cert and "
     "client_key"),
])
def test_auth_errors(fake, status, body, auth, message):
    fake.expect(Call("POST", BASE + "/switchover", status, body=body))
    username, password = auth or (None, None)
    with pytest.raises(PatroniAuthError) as info:
        PatroniClient(BASE, username=username, password=password).request("POST", "/switchover", {"leader": "c1m1"})
    assert str(info.value) == message
    assert (info.value.kind, info.value.status, info.value.retryable) == ("auth", status, False)
    assert "wrong" not in str(info.value)


def test_http_error_strips_html_and_tells_redirect(fake):
    fake.expect(
        GET(BASE + "/config", 502, body="<!DOCTYPE HTML>\n<html><body><h1>Error response</h1>\n<p>Error code: 502</p>"
                                        "</body></html>", headers={"Content-Type": "text/html;charset=utf-8"}),
        GET(BASE + "/patroni", 301, body="", headers={"Location": "https://admin:pw@10.213.0.11:8008/patroni"}),
        GET(BASE + "/nothing", 404, body="x" * 500),
    )
    client = PatroniClient(BASE)
    with pytest.raises(PatroniHTTPError) as info:
        client.get_json("/config")
    assert str(info.value) == ("GET http://10.213.0.11:8008/config answered HTTP 502 (expected 200): "
                               "'Error response Error code: 502'")
    with pytest.raises(PatroniHTTPError) as info:
        client.get_json("/patroni")
    assert str(info.value) == ("GET http://10.213.0.11:8008/patroni answered HTTP 301 (expected 200): ''; it "
                               "redirects to https://10.213.0.11:8008/patroni: use that address as api_url")
    with pytest.raises(PatroniHTTPError) as info:
        client.get_json("/nothing")
    assert str(info.value) == f"GET http://10.213.0.11:8008/nothing answered HTTP 404 (expected 200): {'x' * 200!r}"
    assert info.value.retryable is False


def test_bad_json_message(fake):
    fake.expect(GET(BASE + "/patroni", 200, body="PostgreSQL 15 ready", headers={"Content-Type": "text/plain"}),
                GET(BASE + "/cluster", 200, body=""))
    client = PatroniClient(BASE)
    with pytest.raises(PatroniBadJSON) as info:
        client.get_json("/patroni")
    assert str(info.value) == (
        "GET http://10.213.0.11:8008/patroni answered HTTP 200 with a body that is not JSON (text/plain): "
        "'PostgreSQL 15 ready'. Check that api_url points at Patroni's REST API (restapi.listen), not at PostgreSQL "
        "or a proxy.")
    with pytest.raises(PatroniBadJSON) as info:
        client.get_json("/cluster")
    assert "with a body that is not JSON (no content type): ''" in str(info.value)


def test_probe_returns_200_and_503_and_raises_otherwise(fake):
    fake.expect(GET(BASE + "/primary", 200, {"role": "primary"}), GET(BASE + "/replica", 503, {"role": "primary"}),
                GET(BASE + "/sync", 500, body="oops"))
    client = PatroniClient(BASE)
    assert client.probe("/primary") == 200
    assert client.probe("/replica") == 503
    with pytest.raises(PatroniHTTPError) as info:
        client.probe("/sync")
    assert str(info.value) == "GET http://10.213.0.11:8008/sync answered HTTP 500 (expected 200 or 503): 'oops'"


@pytest.mark.parametrize("kwargs, message", [
    (dict(timeout=0), "timeout=0 must be more than 0 seconds"),
    (dict(timeout="soon"), "timeout='soon' is not a number of seconds"),
    (dict(ca_path="/nonexistent/ca.crt"),
     "ca_path /nonexistent/ca.crt does not exist on the host running this task: copy the file there or fix the path"),
])
def test_bad_options(kwargs, message):
    with pytest.raises(PatroniError) as info:
        PatroniClient(BASE, **kwargs)
    assert str(info.value) == message
    assert info.value.kind == "bad_option"


def test_encrypted_client_key_is_refused(pki):
    with pytest.raises(PatroniTLSError) as info:
        PatroniClient(BASE, client_cert=pki.client[1], client_key=pki.encrypted_key)
    assert str(info.value) == (f"client_key {pki.encrypted_key} holds an encrypted private key: give an unencrypted "
                               "key file (mode 0600) for the client certificate")


# ---------------------------------------------------------------------------------------------------------------
# Real sockets: plain HTTP


def test_real_server_json_and_bare_status_lines(serve):
    server = serve({
        "/patroni": Route(200, {"role": "primary", "patroni": {"version": "4.1.5"}}),
        "/liveness": Route(200, bare=True),
        "/readiness": Route(503, bare=True),
    })
    client = PatroniClient(server.url())
    assert client.get_json("/patroni")["patroni"]["version"] == "4.1.5"
    assert client.probe("/liveness") == 200
    assert client.probe("/readiness") == 503
    # One request per connection, like patronictl: Patroni speaks HTTP/1.0.
    assert all(headers.get("Connection") == "close" for _m, _p, headers in server.requests)


def test_real_refused():
    port = refused_port()
    with pytest.raises(PatroniConnectionError) as info:
        PatroniClient(f"http://bob:hunter2@127.0.0.1:{port}").get_json("/patroni")
    assert str(info.value) == (
        f"connection refused by 127.0.0.1:{port} (GET http://127.0.0.1:{port}/patroni): is Patroni running and "
        f"listening on 127.0.0.1:{port}? Check restapi.listen and firewalls")
    assert (info.value.kind, info.value.retryable) == ("connection", True)


def test_real_empty_reply(serve):
    server = serve({"/cluster": Route(drop=True)})
    with pytest.raises(PatroniEmptyReply) as info:
        PatroniClient(server.url()).get_json("/cluster")
    assert str(info.value) == (
        f"no HTTP response from GET http://127.0.0.1:{server.port}/cluster: the connection was closed without a "
        "reply. Patroni does this when a request fails inside it (for /cluster, /config and /history usually because "
        "that member cannot read the DCS), so ask another member. If restapi.certfile is set, api_url must start "
        "with https://")
    assert (info.value.kind, info.value.retryable) == ("empty_reply", True)


def test_real_read_timeout(serve):
    server = serve({"/cluster": Route(200, {"members": []}, delay=1.0)})
    started = time.monotonic()
    with pytest.raises(PatroniTimeout) as info:
        PatroniClient(server.url(), timeout=0.2).get_json("/cluster")
    assert time.monotonic() - started < 0.9
    assert str(info.value) == (
        f"no answer within 0.2 s from GET http://127.0.0.1:{server.port}/cluster: raise timeout or check that "
        f"Patroni on 127.0.0.1:{server.port} is not stuck (its REST API has a small thread pool, and /cluster reads "
        "the DCS live)")
    assert info.value.retryable is True


def test_real_connect_timeout():
    hole = BlackHole()
    try:
        with pytest.raises(PatroniTimeout) as info:
            PatroniClient(f"http://127.0.0.1:{hole.port}", timeout=0.2).get_json("/patroni")
    finally:
        hole.close()
    assert str(info.value) == (
        f"no answer within 0.2 s from 127.0.0.1:{hole.port} while connecting (GET http://127.0.0.1:{hole.port}"
        "/patroni): raise timeout or check that the host is up and no firewall drops packets to the port")


def test_real_bad_json(serve):
    server = serve({"/patroni": Route(200, body="<html>hello</html>", content_type="text/html")})
    with pytest.raises(PatroniBadJSON) as info:
        PatroniClient(server.url()).get_json("/patroni")
    assert str(info.value) == (
        f"GET http://127.0.0.1:{server.port}/patroni answered HTTP 200 with a body that is not JSON (text/html): "
        "'hello'. Check that api_url points at Patroni's REST API (restapi.listen), not at PostgreSQL or a proxy.")


def test_dns_failure_is_classified(fake):
    # Built like requests builds it, so no resolver is contacted by the test.
    import socket
    from urllib3.exceptions import MaxRetryError, NameResolutionError
    reason = NameResolutionError("no-such-member.invalid", None, socket.gaierror(-2, "Name or service not known"))
    fake.expect(GET("http://no-such-member.invalid:8008/patroni",
                    raises=requests.exceptions.ConnectionError(MaxRetryError(None, "/patroni", reason))))
    with pytest.raises(PatroniConnectionError) as info:
        PatroniClient("http://no-such-member.invalid:8008").get_json("/patroni")
    assert str(info.value) == (
        "cannot resolve the host name no-such-member.invalid (GET http://no-such-member.invalid:8008/patroni): check "
        "the host in api_url, DNS and /etc/hosts on the host running this task")


def test_fetch_many_is_concurrent_and_returns_errors(serve):
    port = refused_port()
    server = serve({p: Route(200, {"path": p}, delay=0.3) for p in ("/a", "/b", "/c", "/d")})
    client = PatroniClient(server.url())
    started = time.monotonic()
    results = fetch_many(client, ["/a", "/b", "/c", "/d", f"http://127.0.0.1:{port}/patroni"])
    elapsed = time.monotonic() - started
    assert elapsed < 0.9, f"4 requests of 0.3 s took {elapsed:.2f} s: not concurrent"
    assert [results[p].json()["path"] for p in ("/a", "/b", "/c", "/d")] == ["/a", "/b", "/c", "/d"]
    error = results[f"http://127.0.0.1:{port}/patroni"]
    assert isinstance(error, PatroniConnectionError)
    assert error.url == f"http://127.0.0.1:{port}/patroni"


# ---------------------------------------------------------------------------------------------------------------
# Real sockets: TLS


def test_tls_right_ca(serve, pki):
    server = serve({"/patroni": Route(200, {"role": "primary"})}, pki.server_context(pki.server))
    assert PatroniClient(server.url("https"), ca_path=pki.ca).get_json("/patroni") == {"role": "primary"}


def test_tls_unknown_ca(serve, pki):
    server = serve({}, pki.server_context(pki.server))
    url = server.url("https")
    with pytest.raises(PatroniTLSError) as info:
        PatroniClient(url, ca_path=pki.other_ca).get_json("/patroni")
    assert str(info.value) == (
        f"TLS certificate verification failed for {url}/patroni: unknown CA (unable to get local issuer "
        f"certificate). CA used: CA file {pki.other_ca} (ca_path); host name checked: 127.0.0.1. Set ca_path to the "
        "CA certificate that signed Patroni's restapi.certfile (or validate_certs=false to skip verification, "
        "insecure)")
    assert (info.value.kind, info.value.retryable) == ("tls", False)


def test_tls_default_bundle_is_named(serve, pki, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", pki.other_ca)
    server = serve({}, pki.server_context(pki.server))
    url = server.url("https")
    with pytest.raises(PatroniTLSError) as info:
        PatroniClient(url).get_json("/patroni")
    assert f"CA used: the default CA bundle {pki.other_ca} (ca_path not set); host name checked: 127.0.0.1." \
        in str(info.value)


def test_tls_ip_address_mismatch(serve, pki):
    server = serve({}, pki.server_context(pki.wrong_host))
    url = server.url("https")
    with pytest.raises(PatroniTLSError) as info:
        PatroniClient(url, ca_path=pki.ca).get_json("/patroni")
    assert str(info.value) == (
        f"TLS certificate verification failed for {url}/patroni: IP address mismatch (the certificate has no "
        f"IP:127.0.0.1 subjectAltName). CA used: CA file {pki.ca} (ca_path); host name checked: 127.0.0.1. Add "
        "IP:127.0.0.1 to the subjectAltName of Patroni's restapi.certfile (IP addresses are never matched against "
        "DNS names), or use an api_url host that the certificate names")


def test_tls_host_name_mismatch(serve, pki):
    server = serve({}, pki.server_context(pki.wrong_host))
    url = server.url("https", host="localhost")
    with pytest.raises(PatroniTLSError) as info:
        PatroniClient(url, ca_path=pki.ca).get_json("/patroni")
    assert str(info.value) == (
        f"TLS certificate verification failed for {url}/patroni: host name mismatch (the certificate is not valid "
        f"for 'localhost'). CA used: CA file {pki.ca} (ca_path); host name checked: localhost. Add DNS:localhost to "
        "the subjectAltName of Patroni's restapi.certfile, or use an api_url host that the certificate names")


def test_tls_expired(serve, pki):
    server = serve({}, pki.server_context(pki.expired))
    url = server.url("https")
    with pytest.raises(PatroniTLSError) as info:
        PatroniClient(url, ca_path=pki.ca).get_json("/patroni")
    assert str(info.value) == (
        f"TLS certificate verification failed for {url}/patroni: the server certificate has expired. CA used: CA "
        f"file {pki.ca} (ca_path); host name checked: 127.0.0.1. Renew restapi.certfile on that member and reload "
        "Patroni (SIGHUP or POST /reload)")


def test_tls_validate_certs_false_skips_verification(serve, pki):
    server = serve({"/patroni": Route(200, {"role": "replica"})}, pki.server_context(pki.expired))
    assert PatroniClient(server.url("https"), validate_certs=False).get_json("/patroni") == {"role": "replica"}


def test_https_to_plain_http_port(serve, pki):
    server = serve({})
    url = server.url("https")
    with pytest.raises(PatroniTLSError) as info:
        PatroniClient(url, ca_path=pki.ca).get_json("/patroni")
    assert str(info.value) == (
        f"TLS handshake with {url}/patroni failed: 127.0.0.1:{server.port} does not speak TLS (the server answered "
        "in plain HTTP). Use http:// in api_url, or set restapi.certfile and restapi.keyfile in patroni.yml")


def test_plain_http_to_tls_port_hints_https(serve, pki):
    server = serve({}, pki.server_context(pki.server))
    url = server.url()
    with pytest.raises((PatroniConnectionError, PatroniEmptyReply)) as info:
        PatroniClient(url).get_json("/patroni")
    # The TLS server closes the plain connection; the client sees a reset or an empty reply depending on timing.
    assert str(info.value) in (
        f"connection to 127.0.0.1:{server.port} reset by the server (GET {url}/patroni): Patroni may be restarting "
        "its REST API; if restapi.certfile is set, api_url must start with https://",
        f"no HTTP response from GET {url}/patroni: the connection was closed without a reply. Patroni does this when "
        "a request fails inside it (for /cluster, /config and /history usually because that member cannot read the "
        "DCS), so ask another member. If restapi.certfile is set, api_url must start with https://")
    assert info.value.retryable is True


def test_client_certificate_required(serve, pki):
    server = serve({"/patroni": Route(200, {"role": "primary"})}, pki.server_context(pki.server, verify_client=True))
    url = server.url("https")
    for _attempt in range(3):  # TLS 1.3 reports this as an alert or as EOF depending on timing; same message
        with pytest.raises(PatroniTLSError) as info:
            PatroniClient(url, ca_path=pki.ca).get_json("/patroni")
        assert str(info.value) == (
            f"TLS handshake with {url}/patroni failed: the server requires a client certificate "
            "(restapi.verify_client: required). Set client_cert and client_key to a certificate signed by the CA in "
            "Patroni's restapi.cafile")
        assert info.value.retryable is False
    good = PatroniClient(url, ca_path=pki.ca, client_cert=pki.client[1], client_key=pki.client[0])
    assert good.get_json("/patroni") == {"role": "primary"}


def test_client_certificate_rejected(serve, pki):
    server = serve({}, pki.server_context(pki.server, verify_client=True))
    url = server.url("https")
    key, cert = pki.other_client
    with pytest.raises(PatroniTLSError) as info:
        PatroniClient(url, ca_path=pki.ca, client_cert=cert, client_key=key).get_json("/patroni")
    allowed = [
        f"TLS handshake with {url}/patroni failed: the server rejected the client certificate {cert} ({reason}). "
        "Use a client certificate signed by the CA in Patroni's restapi.cafile, valid now, with clientAuth usage"
        for reason in ("tlsv1 alert unknown ca", "connection closed during the handshake")
    ]
    assert str(info.value) in allowed


def test_client_key_mismatch(serve, pki):
    server = serve({}, pki.server_context(pki.server, verify_client=True))
    url = server.url("https")
    with pytest.raises(PatroniTLSError) as info:
        PatroniClient(url, ca_path=pki.ca, client_cert=pki.client[1], client_key=pki.server[0]).get_json("/patroni")
    assert str(info.value) == (
        f"cannot load the client certificate {pki.client[1]} with the key {pki.server[0]} for {url}/patroni: the key "
        "does not belong to the certificate. Set client_key to the private key of client_cert")
    assert info.value.kind == "bad_option"

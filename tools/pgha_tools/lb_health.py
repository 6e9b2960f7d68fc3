# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""patroni-lb-health: plain-HTTP health checks for load balancers that cannot present a client certificate or
trust a private CA. It asks the local Patroni over its secured API and answers 200 or 503."""

from __future__ import annotations

import argparse
import http.server
import os
import signal
import sys
import threading
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import parse_qsl, urlsplit

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    PatroniClient,
    PatroniError,
    parse_lag,
)
from ansible_collections.pgha.patroni.tools.pgha_tools.common import (
    add_connection_options,
    client_options,
    make_client,
)

DEFAULT_LISTEN = "0.0.0.0"
DEFAULT_PORT = 8010
DEFAULT_API_URL = "https://127.0.0.1:8008"
# Below the few seconds load balancers commonly allow a check: answering 503 with a reason ourselves beats the
# balancer timing out and logging nothing useful.
DEFAULT_TIMEOUT = 2.0

# Our path -> Patroni's path, and whether it takes ?lag=
ROUTES = {
    "/primary": ("/primary", False),
    "/replica": ("/replica", True),
    "/read-only": ("/read-only", True),
}


class Checker:
    """Maps one health request to one Patroni request, with an overall deadline: requests applies its timeout to
    connect and to each read separately, which could add up past what the load balancer waits."""

    def __init__(self, client: PatroniClient, timeout: float, max_workers: int = 16) -> None:
        self.client = client
        self.timeout = timeout
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="patroni-check")

    def check(self, path: str, query: str) -> tuple[int, str]:
        """(HTTP status, one-line reason) for our path and query string."""
        route = ROUTES.get(path)
        if route is None:
            return 404, f"unknown path {path}: use one of {', '.join(ROUTES)}"
        target, takes_lag = route
        params = parse_qsl(query, keep_blank_values=True)
        unknown = sorted({k for k, _v in params if k != "lag" or not takes_lag})
        if unknown:
            allowed = "lag" if takes_lag else "none"
            return 400, f"unknown query parameter {', '.join(unknown)} for {path} (allowed: {allowed})"
        if params:
            try:
                lag = parse_lag(params[-1][1], "lag")
            except PatroniError as err:
                return 400, err.msg
            if lag is not None:
                # Bytes, not the unit string: every Patroni version parses a plain integer the same way.
                target = f"{target}?lag={lag}"
        future = self.pool.submit(self.client.probe, target, "GET", self.timeout)
        try:
            status = future.result(timeout=self.timeout)
        except FutureTimeout:
            return 503, f"no answer from Patroni at {self.client.url_for(target)} within {self.timeout:g} s"
        except PatroniError as err:
            return 503, f"Patroni check failed: {err.msg}"
        except Exception as exc:  # the endpoint must answer 503, never die, whatever breaks underneath
            return 503, f"Patroni check failed: {type(exc).__name__}: {exc}"
        if status == 200:
            return 200, f"OK: {self.client.url_for(target)} answered 200"
        return 503, f"{self.client.url_for(target)} answered {status}"


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "patroni-lb-health"
    sys_version = ""
    protocol_version = "HTTP/1.0"

    def _answer(self, with_body: bool) -> None:
        server: HealthServer = self.server  # type: ignore[assignment]
        parts = urlsplit(self.path)
        try:
            status, reason = server.checker.check(parts.path, parts.query)
        except Exception as exc:  # keep serving: a bug here must look like "unhealthy", not a dead endpoint
            status, reason = 503, f"internal error: {type(exc).__name__}: {exc}"
        server.note(parts.path + (f"?{parts.query}" if parts.query else ""), status, reason)
        body = (reason.replace("\n", " ") + "\n").encode("utf-8", "replace")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
        self._answer(True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(False)

    def do_OPTIONS(self) -> None:  # noqa: N802  (what HAProxy's httpchk sends by default)
        # Unlike HEAD, an OPTIONS reply carries its body: clients read Content-Length bytes.
        self._answer(True)

    def log_message(self, format: str, *args: t.Any) -> None:  # pylint: disable=redefined-builtin
        # Every check would be a log line every few seconds per balancer; HealthServer.note logs changes instead.
        pass


class HealthServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], checker: Checker, log: t.Callable[[str], None]) -> None:
        super().__init__(address, Handler)
        self.checker = checker
        self.log = log
        self._last: dict[str, int] = {}
        self._lock = threading.Lock()

    def note(self, what: str, status: int, reason: str) -> None:
        """Log a line when the answer for a check changes, so the log tells the story without repeating it."""
        with self._lock:
            changed = self._last.get(what) != status
            self._last[what] = status
        if changed:
            self.log(f"{what} -> {status}: {reason}")

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        # A balancer that hangs up early is normal; one line instead of a traceback.
        self.log(f"connection from {client_address[0]} failed: {sys.exc_info()[1]}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patroni-lb-health",
        description="Plain HTTP health checks for cloud load balancers: GET/HEAD /primary, /replica?lag=16MB and "
                    "/read-only?lag=16MB answer 200 or 503 after asking the local Patroni over its (TLS, client "
                    "certificate) REST API. Errors from Patroni become 503 with a one-line reason.")
    parser.add_argument("--listen", default=DEFAULT_LISTEN,
                        help=f"address to listen on (default {DEFAULT_LISTEN}); restrict it to the balancer's "
                             "network where you can")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--api-url", default=DEFAULT_API_URL,
                        help=f"the local Patroni REST API (default {DEFAULT_API_URL}; env PATRONI_API_URL)")
    add_connection_options(parser, DEFAULT_TIMEOUT)
    return parser


def _log(message: str) -> None:
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} patroni-lb-health: {message}\n")
    sys.stderr.flush()


def serve(args: argparse.Namespace) -> HealthServer:
    api_url = args.api_url
    if api_url == DEFAULT_API_URL and os.environ.get("PATRONI_API_URL"):
        api_url = os.environ["PATRONI_API_URL"]
    if args.timeout <= 0:
        raise PatroniError(f"--timeout {args.timeout:g} must be more than 0 seconds (and less than the load "
                           "balancer's check timeout)")
    client = make_client(api_url, client_options(args))
    checker = Checker(client, args.timeout)
    try:
        server = HealthServer((args.listen, args.port), checker, _log)
    except OSError as err:
        raise PatroniError(f"cannot listen on {args.listen}:{args.port}: {err.strerror}: choose another --port "
                           "or stop what uses it") from None
    return server


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        server = serve(args)
    except PatroniError as err:
        _log(err.msg)
        return 2

    def stop(signum: int, frame: t.Any) -> None:
        # shutdown() waits for serve_forever() to return, so it must run outside the thread that serves.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    _log(f"listening on http://{host}:{port} (/primary, /replica, /read-only), asking {server.checker.client.api_url}"
         f" with a {args.timeout:g} s deadline")
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        server.checker.pool.shutdown(wait=False, cancel_futures=True)
    _log("stopped")
    return 0

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Shared pytest fixtures. Test modules import them by name: a conftest.py would be loaded through the real path of
a symlinked collection tree, outside ansible_collections/, and ansible-test's collection loader refuses that."""

from __future__ import annotations

import os
import shutil
import tempfile
import typing as t

import pytest

from ansible_collections.pgha.patroni.tests.unit.helpers import fake_http
from ansible_collections.pgha.patroni.tests.unit.helpers.servers import PKI, FakeHAProxy, PatroniLikeServer, Route


@pytest.fixture
def fake(monkeypatch: t.Any) -> t.Iterator[fake_http.FakeHTTP]:
    """Expected-call fake; the test fails if a listed call was never made."""
    http = fake_http.install(monkeypatch, fake_http.FakeHTTP())
    yield http
    http.assert_done()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: t.Any) -> PKI:
    return PKI(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture
def serve() -> t.Iterator[t.Callable[..., PatroniLikeServer]]:
    """Start real servers on 127.0.0.1:0: serve({'/patroni': Route(...)}, ssl_context=...)."""
    started: list[PatroniLikeServer] = []

    def start(routes: dict[str, Route] | None = None, ssl_context: t.Any = None) -> PatroniLikeServer:
        server = PatroniLikeServer(routes, ssl_context)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def haproxy() -> t.Iterator[FakeHAProxy]:
    """A fake HAProxy runtime API on a unix socket: .answers to script it, .commands to read what was sent."""
    # unix socket paths are limited to 108 bytes; pytest's tmp_path can be longer
    directory = tempfile.mkdtemp(prefix="pgha-rt-")
    fake = FakeHAProxy(os.path.join(directory, "admin.sock"))
    yield fake
    fake.sock.close()
    shutil.rmtree(directory, ignore_errors=True)

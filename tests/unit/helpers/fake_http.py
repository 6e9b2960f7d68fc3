# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Expected-call HTTP fake: replaces the requests session our client opens, answers from a list, and fails the
test on any call that was not expected or any expected call that never came."""

from __future__ import annotations

import json
import threading
import typing as t

import requests
from requests.structures import CaseInsensitiveDict

from ansible_collections.pgha.patroni.plugins.module_utils import _api_client


class Call:
    """One expected request and its answer: a status + JSON/text body, or an exception to raise."""

    def __init__(self, method: str, url: str, status: int = 200, json_body: t.Any = None, body: str | None = None,
                 headers: dict[str, str] | None = None, raises: BaseException | None = None,
                 check: t.Callable[[dict[str, t.Any]], None] | None = None, repeat: bool = False) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.raises = raises
        self.check = check
        self.repeat = repeat
        self.headers = dict(headers or {})
        if json_body is not None:
            self.body = json.dumps(json_body)
            self.headers.setdefault("Content-Type", "application/json")
        else:
            self.body = body or ""
        self.seen: list[dict[str, t.Any]] = []

    def __repr__(self) -> str:
        answer = repr(self.raises) if self.raises is not None else self.status
        return f"Call({self.method} {self.url} -> {answer})"


class UnexpectedRequest(BaseException):
    """BaseException so the client's own error handling cannot turn a test failure into a PatroniError."""


def GET(url: str, status: int = 200, json_body: t.Any = None, **kwargs: t.Any) -> Call:
    return Call("GET", url, status, json_body, **kwargs)


class FakeHTTP:
    """``ordered=False`` because fetch_many sends requests from several threads at once."""

    def __init__(self, calls: t.Iterable[Call] = (), ordered: bool = False) -> None:
        self.pending = list(calls)
        self.ordered = ordered
        self.done: list[Call] = []
        self.unexpected: list[str] = []
        self.log: list[tuple[str, str, dict[str, t.Any]]] = []
        self._lock = threading.Lock()

    def expect(self, *calls: Call) -> FakeHTTP:
        with self._lock:
            self.pending.extend(calls)
        return self

    def session(self) -> FakeSession:
        return FakeSession(self)

    def _take(self, method: str, url: str, kwargs: dict[str, t.Any]) -> Call:
        with self._lock:
            self.log.append((method, url, kwargs))
            candidates = self.pending[:1] if self.ordered else self.pending
            for call in candidates:
                if call.method == method and call.url == url:
                    if not call.repeat:
                        self.pending.remove(call)
                    self.done.append(call)
                    call.seen.append(kwargs)
                    return call
            self.unexpected.append(f"{method} {url}")
        raise UnexpectedRequest(f"unexpected request {method} {url}; still expected: {self.pending}")

    def assert_done(self) -> None:
        assert not self.unexpected, f"unexpected requests: {self.unexpected}"
        missing = [c for c in self.pending if not c.repeat]
        assert not missing, f"expected requests never made: {missing}"

    def urls(self) -> list[str]:
        return [url for _m, url, _k in self.log]


class FakeSession:
    def __init__(self, http: FakeHTTP) -> None:
        self.http = http

    def request(self, method: str, url: str, **kwargs: t.Any) -> requests.Response:
        call = self.http._take(method, url, kwargs)
        if call.check is not None:
            call.check(kwargs)
        if call.raises is not None:
            raise call.raises
        response = requests.Response()
        response.status_code = call.status
        response._content = call.body.encode("utf-8")
        response.headers = CaseInsensitiveDict(call.headers)
        response.url = url
        return response

    def close(self) -> None:
        pass


def install(monkeypatch: t.Any, http: FakeHTTP) -> FakeHTTP:
    monkeypatch.setattr(_api_client, "_new_session", http.session)
    return http

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""The one HTTP client of the collection for Patroni's REST API, with errors that say what to change."""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import ssl
import traceback
import typing as t
import warnings
from concurrent.futures import ThreadPoolExecutor
from http.client import RemoteDisconnected
from urllib.parse import unquote, urlsplit, urlunsplit

from ansible.module_utils.basic import env_fallback, missing_required_lib

try:
    import requests
    import requests.exceptions
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None

DEFAULT_API_URL = "http://127.0.0.1:8008"
DEFAULT_TIMEOUT = 5.0
USER_AGENT = "pgha.patroni-ansible"

KIND_ERROR = "error"
KIND_TLS = "tls"
KIND_AUTH = "auth"
KIND_CONNECTION = "connection"
KIND_TIMEOUT = "timeout"
KIND_BAD_JSON = "bad_json"
KIND_EMPTY_REPLY = "empty_reply"
KIND_HTTP = "http"
KIND_BAD_URL = "bad_url"
KIND_BAD_OPTION = "bad_option"

# Patroni reads lag limits with PostgreSQL's memory units, case-sensitively, 1024-based.
LAG_UNITS = {"B": 1, "kB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}
_LAG_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|kB|MB|GB|TB)?\s*$")
_USERINFO_RE = re.compile(r"(?<=//)[^/@?#]*@")
_BARE_USERINFO_RE = re.compile(r"^[^/@?#]*@")
_ANY_USERINFO_RE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://)?([^/@?#]*)@")
_TAG_RE = re.compile(r"<[^>]*>")
_SPACE_RE = re.compile(r"\s+")


# ----------------------------------------------------------------------------------------------------------------
# Errors


class PatroniError(Exception):
    """Base error; ``kind`` is machine-readable, ``retryable`` tells waits whether asking again can help."""

    retryable = False
    default_kind = KIND_ERROR

    def __init__(self, msg: str, url: str | None = None, kind: str | None = None, status: int | None = None,
                 retryable: bool | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.url = url
        self.kind = kind or self.default_kind
        self.status = status
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        return self.msg

    def to_dict(self) -> dict[str, t.Any]:
        return {"msg": self.msg, "url": self.url, "kind": self.kind, "status": self.status,
                "retryable": self.retryable}


class PatroniWaitExpired(PatroniError):
    """A wait ran out of time; ``details`` (last state seen, elapsed seconds) join the task's failure result."""

    default_kind = KIND_TIMEOUT

    def __init__(self, msg: str, details: dict[str, t.Any] | None = None) -> None:
        super().__init__(msg, retryable=False)
        self.details = details or {}


class PatroniTLSError(PatroniError):
    default_kind = KIND_TLS


class PatroniAuthError(PatroniError):
    default_kind = KIND_AUTH


class PatroniConnectionError(PatroniError):
    default_kind = KIND_CONNECTION
    retryable = True


class PatroniTimeout(PatroniError):
    default_kind = KIND_TIMEOUT
    retryable = True


class PatroniBadJSON(PatroniError):
    default_kind = KIND_BAD_JSON


class PatroniEmptyReply(PatroniError):
    default_kind = KIND_EMPTY_REPLY
    retryable = True


class PatroniHTTPError(PatroniError):
    default_kind = KIND_HTTP

    def __init__(self, msg: str, url: str | None = None, status: int | None = None, body: str = "") -> None:
        # 503 and other 5xx are states Patroni (or a proxy in front of it) leaves again; 4xx are our mistakes.
        super().__init__(msg, url=url, status=status, retryable=status is not None and status >= 500)
        self.body = body


# ----------------------------------------------------------------------------------------------------------------
# Small pure helpers


def redact_url(url: str) -> str:
    """Remove ``user:password@`` from anything that looks like a URL, for messages."""
    text = _USERINFO_RE.sub("", url or "")
    if "://" not in text:
        text = _BARE_USERINFO_RE.sub("", text)
    return text


def url_secrets(url: t.Any) -> list[str]:
    """Passwords written into a URL, raw and decoded, whatever its scheme, so the module output can hide them."""
    match = _ANY_USERINFO_RE.match(url.strip()) if isinstance(url, str) else None
    if not match or ":" not in match.group(1):
        return []
    raw = match.group(1).split(":", 1)[1]
    return [s for s in dict.fromkeys([raw, unquote(raw)]) if s]


def parse_api_url(api_url: t.Any, option: str = "api_url") -> tuple[str, str | None, str | None]:
    """Return (base URL without credentials or trailing /patroni, username, password) or raise bad_url."""
    text = api_url.strip() if isinstance(api_url, str) else ""
    shown = redact_url(text)
    if not text:
        raise PatroniError(f"{option} is empty: set it to the member's REST API address, e.g. http://10.0.0.11:8008",
                           url=None, kind=KIND_BAD_URL)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if "://" not in text:
        raise PatroniError(f"{option} '{shown}' has no scheme: write http://{shown} (or https://{shown} when "
                           "restapi.certfile is set in patroni.yml)", url=shown, kind=KIND_BAD_URL)
    if scheme not in ("http", "https"):
        raise PatroniError(f"{option} '{shown}' uses the scheme '{parts.scheme}': only http and https are "
                           "supported", url=shown, kind=KIND_BAD_URL)
    try:
        hostname = parts.hostname
        port = parts.port
        if port == 0:
            raise ValueError("port 0")
    except ValueError as exc:
        raise PatroniError(f"{option} '{shown}' is not a valid URL ({exc}): use scheme://host:port, "
                           "e.g. http://10.0.0.11:8008", url=shown, kind=KIND_BAD_URL) from None
    if not hostname or any(c.isspace() for c in hostname):
        raise PatroniError(f"{option} '{shown}' has no valid host name: use scheme://host:port, "
                           "e.g. http://10.0.0.11:8008", url=shown, kind=KIND_BAD_URL)
    if parts.query or parts.fragment:
        raise PatroniError(f"{option} '{shown}' must not contain a query string or fragment: give only "
                           "scheme://host:port", url=shown, kind=KIND_BAD_URL)
    netloc = parts.netloc.rpartition("@")[2]
    path = parts.path.rstrip("/")
    # Members publish their api_url as http(s)://connect_address/patroni; accept it as-is.
    if path.endswith("/patroni"):
        path = path[: -len("/patroni")]
    base = urlunsplit((scheme, netloc, path, "", ""))
    username = password = None
    if parts.username is not None:
        username = unquote(parts.username)
        password = unquote(parts.password) if parts.password is not None else None
    return base, username, password


def member_base_url(api_url: str | None) -> str | None:
    """Patroni's member api_url (``http://host:8008/patroni``) as a base URL usable as O(api_url), or None."""
    if not api_url:
        return None
    try:
        return parse_api_url(api_url, option="member api_url")[0]
    except PatroniError:
        return redact_url(api_url)


def same_api_url(a: str | None, b: str | None) -> bool:
    """Compare two API URLs the way a client reaches them: scheme, lower-cased host, effective port, path."""
    if not a or not b:
        return False

    def key(url: str) -> tuple[t.Any, ...] | None:
        try:
            base = parse_api_url(url)[0]
        except PatroniError:
            return None
        parts = urlsplit(base)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return parts.scheme, (parts.hostname or "").lower(), port, parts.path
    ka = key(a)
    return ka is not None and ka == key(b)


def normalise_role(role: t.Any) -> t.Any:
    """Patroni < 4 calls the primary ``master``; everything else keeps its name."""
    if role == "master":
        return "primary"
    return role


def parse_lag(value: t.Any, option: str) -> int | None:
    """A lag limit in bytes from an int or a Patroni size string (``16MB``); None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        match = None
    elif isinstance(value, int):
        if value >= 0:
            return value
        match = None
    else:
        match = _LAG_RE.match(str(value))
    if not match:
        raise PatroniError(
            f"{option}={value!r} is not a size Patroni understands: give bytes (e.g. 1048576) or a number with "
            f"one of the case-sensitive units B, kB, MB, GB, TB (e.g. 16MB). Patroni silently ignores other "
            f"spellings such as 16mb or 16KB, which would switch the lag limit off.",
            kind=KIND_BAD_OPTION)
    return int(round(float(match.group(1)) * LAG_UNITS[match.group(2) or "B"]))


def body_excerpt(text: str, content_type: str = "", limit: int = 200) -> str:
    """The first ``limit`` characters of a body; Patroni's error pages are HTML, so drop tags first."""
    if "html" in (content_type or "").lower() or text.lstrip().startswith("<"):
        text = _TAG_RE.sub(" ", text)
    text = _SPACE_RE.sub(" ", text).strip()
    return text[:limit]


def _format_seconds(value: float) -> str:
    return f"{value:g}"


# ----------------------------------------------------------------------------------------------------------------
# Argument spec shared by every module that talks to Patroni


def connection_argument_spec() -> dict[str, dict[str, t.Any]]:
    return dict(
        api_url=dict(type="str", default=DEFAULT_API_URL, fallback=(env_fallback, ["PATRONI_API_URL"])),
        api_username=dict(type="str", fallback=(env_fallback, ["PATRONI_API_USERNAME"])),
        api_password=dict(type="str", no_log=True, fallback=(env_fallback, ["PATRONI_API_PASSWORD"])),
        ca_path=dict(type="path"),
        client_cert=dict(type="path"),
        client_key=dict(type="path", no_log=False),
        validate_certs=dict(type="bool", default=True),
        timeout=dict(type="float", default=DEFAULT_TIMEOUT),
    )


# The options of the _operation doc fragment; a module passes the wait_timeout default its docs state.
def member_urls_argument_spec() -> dict[str, dict[str, t.Any]]:
    return dict(member_api_urls=dict(type="list", elements="str", default=[]))


def wait_sleep_argument_spec(wait_sleep: float = 1.0) -> dict[str, dict[str, t.Any]]:
    return dict(wait_sleep=dict(type="float", default=wait_sleep))


def wait_argument_spec(wait_timeout: float, wait_sleep: float = 1.0) -> dict[str, dict[str, t.Any]]:
    """wait, wait_timeout and wait_sleep (the WAIT and WAIT_SLEEP sections of the _operation fragment)."""
    return dict(wait=dict(type="bool", default=True), wait_timeout=dict(type="float", default=wait_timeout),
                **wait_sleep_argument_spec(wait_sleep))


CONNECTION_REQUIRED_TOGETHER = [["api_username", "api_password"]]
CONNECTION_REQUIRED_BY = {"client_key": ["client_cert"]}


def connection_module_kwargs(argument_spec: dict[str, dict[str, t.Any]] | None = None) -> dict[str, t.Any]:
    """AnsibleModule keyword arguments: the connection spec merged with a module's own options."""
    spec = connection_argument_spec()
    spec.update(argument_spec or {})
    return dict(argument_spec=spec, required_together=[list(x) for x in CONNECTION_REQUIRED_TOGETHER],
                required_by={k: list(v) for k, v in CONNECTION_REQUIRED_BY.items()})


def ensure_requests(module: t.Any) -> None:
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)


def client_from_params(params: dict[str, t.Any], module: t.Any = None) -> PatroniClient:
    """Build the client from module params; credentials written into api_url are hidden from the module output."""
    if module is not None:
        for secret in url_secrets(params.get("api_url")):
            module.no_log_values.add(secret)
    return PatroniClient(
        params.get("api_url") or DEFAULT_API_URL,
        username=params.get("api_username"),
        password=params.get("api_password"),
        ca_path=params.get("ca_path"),
        client_cert=params.get("client_cert"),
        client_key=params.get("client_key"),
        validate_certs=params.get("validate_certs", True),
        timeout=DEFAULT_TIMEOUT if params.get("timeout") is None else params["timeout"],
    )


# ----------------------------------------------------------------------------------------------------------------
# The client


class PatroniResponse:
    def __init__(self, status: int, text: str, url: str, headers: t.Mapping[str, str] | None = None,
                 method: str = "GET") -> None:
        self.status = status
        self.text = text
        self.url = url
        self.headers = dict(headers or {})
        self.method = method

    @property
    def content_type(self) -> str:
        for key, value in self.headers.items():
            if key.lower() == "content-type":
                return value
        return ""

    def json(self) -> t.Any:
        try:
            return json.loads(self.text)
        except ValueError:
            kind = self.content_type or "no content type"
            raise PatroniBadJSON(
                f"{self.method} {self.url} answered HTTP {self.status} with a body that is not JSON ({kind}): "
                f"{body_excerpt(self.text, self.content_type)!r}. Check that api_url points at Patroni's REST API "
                "(restapi.listen), not at PostgreSQL or a proxy.", url=self.url, status=self.status) from None

    def __repr__(self) -> str:
        return f"PatroniResponse({self.status}, {self.url!r})"


def _new_session() -> t.Any:
    """One session per request: Patroni serves one request per HTTP/1.0 connection, so nothing is pooled, and
    threads in fetch_many never share a session."""
    return requests.Session()


class PatroniClient:
    def __init__(self, api_url: str = DEFAULT_API_URL, username: str | None = None, password: str | None = None,
                 ca_path: str | None = None, client_cert: str | None = None, client_key: str | None = None,
                 validate_certs: bool = True, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not HAS_REQUESTS:
            raise PatroniError(missing_required_lib("requests"), kind=KIND_BAD_OPTION)
        base, url_user, url_password = parse_api_url(api_url)
        self.base_url = base
        if username is None and password is None and url_user is not None:
            username, password = url_user, url_password or ""
        self.username = username
        self.password = password
        self.ca_path = ca_path
        self.client_cert = client_cert
        self.client_key = client_key
        self.validate_certs = validate_certs
        try:
            self.timeout = float(timeout)
        except (TypeError, ValueError):
            raise PatroniError(f"timeout={timeout!r} is not a number of seconds", kind=KIND_BAD_OPTION) from None
        if self.timeout <= 0:
            raise PatroniError(f"timeout={timeout!r} must be more than 0 seconds", kind=KIND_BAD_OPTION)
        parts = urlsplit(base)
        self.host = parts.hostname or ""
        self.hostport = parts.netloc
        self.is_https = parts.scheme == "https"
        self._check_files()
        if not validate_certs:
            # The user chose this in the task; urllib3 would repeat it on stderr for every request.
            warnings.filterwarnings("ignore", message="Unverified HTTPS request")

    # Options and what they mean for requests

    def for_url(self, other_api_url: str) -> PatroniClient:
        """The same credentials and TLS options, another member (accepts Patroni's ``.../patroni`` api_url)."""
        return PatroniClient(other_api_url, username=self.username, password=self.password, ca_path=self.ca_path,
                             client_cert=self.client_cert, client_key=self.client_key,
                             validate_certs=self.validate_certs, timeout=self.timeout)

    @property
    def api_url(self) -> str:
        return self.base_url

    def _check_files(self) -> None:
        for option, path in (("ca_path", self.ca_path), ("client_cert", self.client_cert),
                             ("client_key", self.client_key)):
            if not path:
                continue
            if not os.path.exists(path):
                raise PatroniTLSError(f"{option} {path} does not exist on the host running this task: copy the "
                                      "file there or fix the path", kind=KIND_BAD_OPTION)
            if not os.access(path, os.R_OK):
                raise PatroniTLSError(f"{option} {path} is not readable by the user running this task: fix its "
                                      "permissions or become a user who can read it", kind=KIND_BAD_OPTION)
        key_file = self.client_key or self.client_cert
        if key_file and os.path.isfile(key_file):
            try:
                with open(key_file, "rb") as handle:
                    head = handle.read(65536)
            except OSError:
                head = b""
            # An encrypted key would make OpenSSL prompt on a terminal that a module does not have.
            if b"ENCRYPTED" in head and b"PRIVATE KEY" in head:
                option = "client_key" if self.client_key else "client_cert"
                raise PatroniTLSError(f"{option} {key_file} holds an encrypted private key: give an unencrypted "
                                      "key file (mode 0600) for the client certificate", kind=KIND_BAD_OPTION)

    def _verify(self) -> t.Any:
        if not self.validate_certs:
            return False
        if self.ca_path:
            return self.ca_path
        # Name the bundle requests would use, so a verify failure can say which CA store was consulted.
        return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or _default_ca_bundle()

    def _ca_description(self) -> str:
        if self.ca_path:
            kind = "CA directory" if os.path.isdir(self.ca_path) else "CA file"
            return f"{kind} {self.ca_path} (ca_path)"
        bundle = self._verify()
        return f"the default CA bundle {bundle} (ca_path not set)" if bundle else "the system CA store"

    def _cert(self) -> t.Any:
        if not self.client_cert:
            return None
        if self.client_key:
            return (self.client_cert, self.client_key)
        return self.client_cert

    def _auth(self) -> t.Any:
        if self.username is None and self.password is None:
            return None
        # requests sends HTTP Basic credentials with the first request, no 401 round trip.
        return (self.username or "", self.password or "")

    def url_for(self, path: str) -> str:
        if not path.startswith("/"):
            path = "/" + path
        return self.base_url + path

    # Requests

    def request(self, method: str, path: str, json_body: t.Any = None, expect: t.Iterable[int] = (200,),
                timeout: float | None = None) -> PatroniResponse:
        method = method.upper()
        url = self.url_for(path)
        wait = self.timeout if timeout is None else max(float(timeout), 0.01)
        kwargs: dict[str, t.Any] = dict(
            headers={"Connection": "close", "Accept": "application/json, */*;q=0.5", "User-Agent": USER_AGENT},
            timeout=wait, verify=self._verify(), cert=self._cert(), auth=self._auth(), allow_redirects=False,
        )
        if json_body is not None:
            kwargs["json"] = json_body
        try:
            session = _new_session()
            try:
                raw = session.request(method, url, **kwargs)
                content = raw.content
            finally:
                session.close()
        except Exception as exc:  # classified below; anything unknown still becomes a PatroniError
            raise self._classify(exc, method, url, wait) from None
        text = content.decode("utf-8", "replace") if content else ""
        response = PatroniResponse(raw.status_code, text, url, raw.headers, method=method)
        self._check_status(response, tuple(expect))
        return response

    def get_json(self, path: str, timeout: float | None = None) -> t.Any:
        return self.request("GET", path, timeout=timeout).json()

    def probe(self, path: str, method: str = "GET", timeout: float | None = None) -> int:
        """Status of a health check: 200 and 503 are both answers."""
        return self.request(method, path, expect=(200, 503), timeout=timeout).status

    # Classification

    def _check_status(self, response: PatroniResponse, expect: tuple[int, ...]) -> None:
        status, url, method = response.status, response.url, response.method
        excerpt = body_excerpt(response.text, response.content_type)
        if status == 401:
            if self._auth() is None:
                msg = (f"{method} {url} answered HTTP 401 (authentication required): set api_username and "
                       "api_password to restapi.authentication from patroni.yml")
            else:
                msg = (f"{method} {url} answered HTTP 401: Patroni rejected api_username/api_password; make them "
                       "match restapi.authentication (username, password) in patroni.yml")
            raise PatroniAuthError(msg, url=url, status=status)
        if status == 403:
            lowered = excerpt.lower()
            if "access is denied" in lowered:
                msg = (f"{method} {url} answered HTTP 403 Access is denied: Patroni's restapi.allowlist does not "
                       "include this controller's address; add this controller's address to restapi.allowlist "
                       "(with a dual-stack listen such as '*:8008' IPv4 clients appear as ::ffff:a.b.c.d)")
            elif "client certificate required" in lowered:
                msg = (f"{method} {url} answered HTTP 403 client certificate required: Patroni runs with "
                       "restapi.verify_client: optional, which needs a client certificate for this request; set "
                       "client_cert and client_key")
            else:
                msg = f"{method} {url} answered HTTP 403: {excerpt!r}"
            raise PatroniAuthError(msg, url=url, status=status)
        if status in expect:
            return
        wanted = " or ".join(str(s) for s in expect)
        msg = f"{method} {url} answered HTTP {status} (expected {wanted}): {excerpt!r}"
        location = response.headers.get("Location") or response.headers.get("location")
        if 300 <= status < 400 and location:
            msg += f"; it redirects to {redact_url(location)}: use that address as api_url"
        raise PatroniHTTPError(msg, url=url, status=status, body=response.text)

    def _classify(self, exc: BaseException, method: str, url: str, timeout: float) -> PatroniError:
        chain = _exception_chain(exc)
        hostport = self.hostport
        where = f"{method} {url}"
        secs = _format_seconds(timeout)

        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return PatroniTimeout(
                f"no answer within {secs} s from {hostport} while connecting ({where}): raise timeout or check that "
                "the host is up and no firewall drops packets to the port", url=url)
        if isinstance(exc, requests.exceptions.Timeout):
            return PatroniTimeout(
                f"no answer within {secs} s from {where}: raise timeout or check that Patroni on {hostport} is not "
                "stuck (its REST API has a small thread pool, and /cluster reads the DCS live)", url=url)
        if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                            requests.exceptions.MissingSchema)):
            return PatroniError(f"{where} is not a valid URL ({exc}): use scheme://host:port", url=url,
                                kind=KIND_BAD_URL)
        if isinstance(exc, requests.exceptions.SSLError) or any(isinstance(e, ssl.SSLError) for e in chain):
            return self._classify_tls(chain, exc, url)
        if any(isinstance(e, RemoteDisconnected) for e in chain):
            return PatroniEmptyReply(
                f"no HTTP response from {where}: the connection was closed without a reply. Patroni does this when "
                "a request fails inside it (for /cluster, /config and /history usually because that member cannot "
                "read the DCS), so ask another member. If restapi.certfile is set, api_url must start with "
                "https://", url=url)
        if any(isinstance(e, ConnectionRefusedError) for e in chain):
            return PatroniConnectionError(
                f"connection refused by {hostport} ({where}): is Patroni running and listening on {hostport}? "
                "Check restapi.listen and firewalls", url=url)
        if any(isinstance(e, socket.gaierror) for e in chain) or _has_type_name(chain, "NameResolutionError"):
            return PatroniConnectionError(
                f"cannot resolve the host name {self.host} ({where}): check the host in api_url, DNS and "
                "/etc/hosts on the host running this task", url=url)
        if any(isinstance(e, (ConnectionResetError, BrokenPipeError)) for e in chain):
            return PatroniConnectionError(
                f"connection to {hostport} reset by the server ({where}): Patroni may be restarting its REST API; "
                "if restapi.certfile is set, api_url must start with https://", url=url)
        unreachable = [e for e in chain if isinstance(e, OSError)
                       and e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN)]
        if unreachable:
            return PatroniConnectionError(
                f"no route to {hostport} ({where}: {unreachable[0].strerror}): check that the host is up and that "
                "routing and firewalls let this machine reach the port", url=url)
        if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
            return PatroniConnectionError(
                f"cannot talk to {hostport} ({where}: {_innermost_text(chain)}): is Patroni running and listening "
                f"on {hostport}? Check restapi.listen and firewalls", url=url)
        if isinstance(exc, OSError):
            # requests raises plain OSError for unreadable certificate/CA files.
            return PatroniTLSError(f"cannot use the TLS files for {url}: {exc}. Check ca_path, client_cert and "
                                   "client_key", url=url, kind=KIND_BAD_OPTION)
        return PatroniError(f"{where} failed: {type(exc).__name__}: {redact_url(str(exc))}", url=url)

    def _classify_tls(self, chain: list[BaseException], exc: BaseException, url: str) -> PatroniError:
        verify = next((e for e in chain if isinstance(e, ssl.SSLCertVerificationError)), None)
        if verify is not None:
            return self._verify_error(verify, url)
        detail = _innermost_text(chain)
        upper = detail.upper()
        if "WRONG_VERSION_NUMBER" in upper or "RECORD_LAYER_FAILURE" in upper or "PACKET_LENGTH_TOO_LONG" in upper \
                or "UNKNOWN_PROTOCOL" in upper or "HTTP_REQUEST" in upper:
            return PatroniTLSError(
                f"TLS handshake with {url} failed: {self.hostport} does not speak TLS (the server answered in plain "
                "HTTP). Use http:// in api_url, or set restapi.certfile and restapi.keyfile in patroni.yml",
                url=url)
        if "KEY_VALUES_MISMATCH" in upper:
            key = self.client_key or f"in {self.client_cert}"
            return PatroniTLSError(
                f"cannot load the client certificate {self.client_cert} with the key {key} for {url}: the key does "
                "not belong to the certificate. Set client_key to the private key of client_cert", url=url,
                kind=KIND_BAD_OPTION)
        if ("PEM" in upper or "NO_START_LINE" in upper or "X509" in upper) and self.client_cert \
                and "ALERT" not in upper:
            return PatroniTLSError(
                f"cannot load the client certificate {self.client_cert} for {url} ({detail}): client_cert and "
                "client_key must be PEM files", url=url, kind=KIND_BAD_OPTION)
        # TLS 1.3 servers check the client certificate after the handshake, so the client sees either the alert
        # or just a closed connection, depending on timing; both get the same advice.
        cut_off = any(isinstance(e, ssl.SSLEOFError) for e in chain) or "UNEXPECTED_EOF" in upper
        if not self.client_cert and (cut_off or "CERTIFICATE_REQUIRED" in upper or "HANDSHAKE_FAILURE" in upper):
            return PatroniTLSError(
                f"TLS handshake with {url} failed: the server requires a client certificate "
                "(restapi.verify_client: required). Set client_cert and client_key to a certificate signed by the "
                "CA in Patroni's restapi.cafile", url=url)
        if self.client_cert and (cut_off or "ALERT" in upper):
            alert = _alert_name(detail) if "ALERT" in upper else "connection closed during the handshake"
            return PatroniTLSError(
                f"TLS handshake with {url} failed: the server rejected the client certificate {self.client_cert} "
                f"({alert}). Use a client certificate signed by the CA in Patroni's restapi.cafile, valid now, with "
                "clientAuth usage", url=url)
        return PatroniTLSError(
            f"TLS error talking to {url}: {detail}. Check the scheme of api_url, ca_path, client_cert and "
            "client_key", url=url)

    def _verify_error(self, err: ssl.SSLCertVerificationError, url: str) -> PatroniTLSError:
        code = getattr(err, "verify_code", None)
        message = str(getattr(err, "verify_message", "") or err)
        lowered = message.lower()
        host = self.host
        intro = f"TLS certificate verification failed for {url}"
        checked = f"CA used: {self._ca_description()}; host name checked: {host}."
        if "ip address mismatch" in lowered or code == 64:
            return PatroniTLSError(
                f"{intro}: IP address mismatch (the certificate has no IP:{host} subjectAltName). {checked} Add "
                f"IP:{host} to the subjectAltName of Patroni's restapi.certfile (IP addresses are never matched "
                "against DNS names), or use an api_url host that the certificate names", url=url)
        if "hostname mismatch" in lowered or code == 62:
            return PatroniTLSError(
                f"{intro}: host name mismatch (the certificate is not valid for '{host}'). {checked} Add DNS:{host} "
                "to the subjectAltName of Patroni's restapi.certfile, or use an api_url host that the certificate "
                "names", url=url)
        if "expired" in lowered or code == 10:
            return PatroniTLSError(
                f"{intro}: the server certificate has expired. {checked} Renew restapi.certfile on that member and "
                "reload Patroni (SIGHUP or POST /reload)", url=url)
        if "not yet valid" in lowered or code == 9:
            return PatroniTLSError(
                f"{intro}: the server certificate is not yet valid. {checked} Check the clocks of this machine and "
                "of the CA host", url=url)
        if code in (2, 18, 19, 20, 21) or "issuer" in lowered or "self-signed" in lowered \
                or "self signed" in lowered:
            return PatroniTLSError(
                f"{intro}: unknown CA ({message}). {checked} Set ca_path to the CA certificate that signed "
                "Patroni's restapi.certfile (or validate_certs=false to skip verification, insecure)", url=url)
        return PatroniTLSError(
            f"{intro}: {message}. {checked} Check ca_path and the server certificate, or set validate_certs=false "
            "to skip verification (insecure)", url=url)


def _default_ca_bundle() -> str | None:
    try:
        from requests.utils import DEFAULT_CA_BUNDLE_PATH
        return DEFAULT_CA_BUNDLE_PATH
    except Exception:  # very old requests: fall back to "the system CA store" wording
        return None


def _exception_chain(exc: BaseException) -> list[BaseException]:
    """Every exception reachable through args/reason/cause/context: requests wraps urllib3 wraps the OS error."""
    seen: list[BaseException] = []
    todo: list[t.Any] = [exc]
    while todo and len(seen) < 20:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        seen.append(item)
        todo.extend(a for a in getattr(item, "args", ()) if isinstance(a, BaseException))
        for attr in ("reason", "__cause__", "__context__"):
            value = getattr(item, attr, None)
            if isinstance(value, BaseException):
                todo.append(value)
    return seen


def _has_type_name(chain: list[BaseException], name: str) -> bool:
    return any(type(e).__name__ == name for e in chain)


def _innermost_text(chain: list[BaseException]) -> str:
    for exc in reversed(chain):
        text = str(exc)
        if text:
            return redact_url(text)
    return type(chain[-1]).__name__ if chain else "unknown error"


def _alert_name(detail: str) -> str:
    match = re.search(r"(tlsv1[0-9]? alert [a-z ]+|sslv3 alert [a-z ]+)", detail, re.IGNORECASE)
    return match.group(1).strip() if match else detail


# ----------------------------------------------------------------------------------------------------------------
# Concurrency


def fetch_many(client: PatroniClient, urls_or_paths: t.Iterable[str], max_workers: int = 8,
               expect: t.Iterable[int] = (200, 503), timeout: float | None = None,
               ) -> dict[str, PatroniResponse | PatroniError]:
    """GET several endpoints at once. Items are paths on ``client`` (``/patroni``) or full URLs of other members
    (``http://10.0.0.12:8008/patroni`` is that member's /patroni). Each result is a response or the error."""
    items = list(dict.fromkeys(urls_or_paths))
    expected = tuple(expect)

    def one(item: str) -> PatroniResponse | PatroniError:
        try:
            if item.startswith("/"):
                return client.request("GET", item, expect=expected, timeout=timeout)
            parts = urlsplit(item)
            base = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            return client.for_url(base).request("GET", path, expect=expected, timeout=timeout)
        except PatroniError as exc:
            return exc

    if not items:
        return {}
    if len(items) == 1:
        return {items[0]: one(items[0])}
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(items)))) as pool:
        results = list(pool.map(one, items))
    return dict(zip(items, results))

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A scriptable HTTP/1.0 server on 127.0.0.1 that answers like Patroni (optionally over TLS), a fake HAProxy runtime
API socket, and a throwaway PKI."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import os
import socket
import ssl
import threading
import time
import typing as t

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


class Route:
    """What the server does for one path: answer (status, body, headers), drop the connection, or stall."""

    def __init__(self, status: int = 200, json_body: t.Any = None, body: str | None = None,
                 content_type: str | None = None, drop: bool = False, delay: float = 0.0, bare: bool = False) -> None:
        self.status = status
        self.body = json.dumps(json_body) if json_body is not None else (body or "")
        self.content_type = content_type or ("application/json" if json_body is not None else "text/html")
        self.drop = drop
        self.delay = delay
        self.bare = bare


class _Handler(http.server.BaseHTTPRequestHandler):
    # Patroni answers HTTP/1.0 and closes the connection after each request.
    protocol_version = "HTTP/1.0"

    def _serve(self) -> None:
        server: PatroniLikeServer = self.server  # type: ignore[assignment]
        server.requests.append((self.command, self.path, dict(self.headers)))
        route = server.routes.get(self.path) or server.routes.get(self.path.split("?")[0])
        if route is None:
            route = Route(503, {"state": "running", "role": "replica"})
        if route.delay:
            time.sleep(route.delay)
        if route.drop:
            # What Patroni does when a handler raises: no status line at all.
            self.close_connection = True
            return
        if route.bare:
            self.wfile.write(f"HTTP/1.0 {route.status} {self.responses.get(route.status, ('',))[0]}\r\n\r\n"
                             .encode("ascii"))
            return
        body = route.body.encode("utf-8")
        self.send_response(route.status)
        self.send_header("Content-Type", route.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_HEAD = _serve

    def log_message(self, format: str, *args: t.Any) -> None:  # keep pytest output clean
        pass


class PatroniLikeServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: dict[str, Route] | None = None, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route] = dict(routes or {})
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        if ssl_context is not None:
            self.socket = ssl_context.wrap_socket(self.socket, server_side=True)
        self.port = self.server_address[1]
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        # Clients that time out or fail TLS on purpose leave broken connections behind; that is the test.
        pass

    def url(self, scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def refused_port() -> int:
    """A port nobody listens on (bound, then closed)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class BlackHole:
    """A listener whose accept queue is full, so new connections hang in SYN: a real connect timeout."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        for _i in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self.fillers.append(filler)
        time.sleep(0.05)

    def close(self) -> None:
        for sock in self.fillers + [self.sock]:
            sock.close()


class FakeHAProxy:
    """A runtime API socket that records each command and answers from `answers` (nothing by default)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.commands: list[str] = []
        self.answers = {"show info": "Name: HAProxy\nVersion: 2.6.12\n"}
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                command = data.decode().strip()
                self.commands.append(command)
                conn.sendall(self.answers.get(command, "").encode())

    def sets(self) -> list[str]:
        return [c for c in self.commands if c.startswith("set ")]


class PKI:
    """A CA, a second unrelated CA, and server/client certificates for the TLS classification tests."""

    def __init__(self, directory: str) -> None:
        self.dir = directory
        now = datetime.datetime.now(datetime.timezone.utc)
        self.ca_key, self.ca_cert = self._ca("pgha test CA", now)
        self.ca = self._write("ca", self.ca_key, self.ca_cert)[1]
        other_key, other_cert = self._ca("unrelated CA", now)
        self.other_ca = self._write("other-ca", other_key, other_cert)[1]
        local = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        self.server = self._write("server", *self._leaf("127.0.0.1", local, now))
        self.wrong_host = self._write("wrong-host", *self._leaf("db9", [x509.DNSName("db9.example")], now))
        self.expired = self._write("expired", *self._leaf("127.0.0.1", local, now, expired=True))
        self.client = self._write("client", *self._leaf("pgha-controller", None, now, client=True))
        intruder = self._leaf("intruder", None, now, client=True, issuer=(other_key, other_cert))
        self.other_client = self._write("other-client", *intruder)
        encrypted = self._leaf("pgha-controller", None, now, client=True)[0]
        self.encrypted_key = os.path.join(directory, "encrypted.key")
        with open(self.encrypted_key, "wb") as handle:
            handle.write(encrypted.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.BestAvailableEncryption(b"secret-passphrase")))

    @staticmethod
    def _name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def _ca(self, cn: str, now: datetime.datetime) -> tuple[t.Any, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(self._name(cn)).issuer_name(self._name(cn))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                                             key_cert_sign=True, crl_sign=True, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        return key, cert

    def _leaf(self, cn: str, sans: list[t.Any] | None, now: datetime.datetime, client: bool = False,
              expired: bool = False, issuer: tuple[t.Any, x509.Certificate] | None = None) -> tuple[t.Any, t.Any]:
        ca_key, ca_cert = issuer or (self.ca_key, self.ca_cert)
        key = ec.generate_private_key(ec.SECP256R1())
        start = now - datetime.timedelta(days=10 if expired else 1)
        end = now - datetime.timedelta(days=2) if expired else now + datetime.timedelta(days=30)
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = (x509.CertificateBuilder().subject_name(self._name(cn)).issuer_name(ca_cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    def _write(self, stem: str, key: t.Any, cert: x509.Certificate) -> tuple[str, str]:
        key_path = os.path.join(self.dir, stem + ".key")
        cert_path = os.path.join(self.dir, stem + ".crt")
        with open(key_path, "wb") as handle:
            handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        with open(cert_path, "wb") as handle:
            handle.write(cert.public_bytes(serialization.Encoding.PEM))
        return key_path, cert_path

    def server_context(self, pair: tuple[str, str], verify_client: bool = False) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        key_path, cert_path = pair
        context.load_cert_chain(cert_path, key_path)
        if verify_client:
            context.load_verify_locations(self.ca)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

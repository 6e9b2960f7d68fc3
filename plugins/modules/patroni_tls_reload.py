#!/usr/bin/python
# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: patroni_tls_reload
short_description: Reload Patroni (never restart) and wait until its REST API answers with the new settings
version_added: 0.1.0
description:
  - Runs on a Patroni member. Sends the reload (O(reload_command), by default C(service patroni reload), a SIGHUP),
    then waits until the REST API at O(api_url) answers over that URL's protocol, with a certificate that verifies
    against O(ca_path) for the member's address, and, when O(certificate_path) is given, is exactly that certificate.
  - Patroni handles a SIGHUP at the start of its next HA cycle, up to C(loop_wait) seconds later. When nothing visible
    from outside changes (only authentication or allowlist), the module waits one C(loop_wait) (read from
    C(GET /config)) plus two seconds, so the next step sees the new settings in force.
  - Fails with what was last seen when the API does not come back within O(wait_timeout); Patroni is not restarted.
extends_documentation_fragment:
  - pgha.patroni._connection
  - pgha.patroni._attributes.ACTIONGROUP_PATRONI
author:
  - pgha maintainers (@pgha)
requirements:
  - requests
  - cryptography >= 38.0 (only with O(certificate_path))
attributes:
  check_mode:
    support: full
    description: Reports that a reload would be sent; sends nothing.
  diff_mode:
    support: none
    description: Nothing to compare; the reload is an action.
  idempotent:
    support: none
    description: Every run sends a reload; call it from a handler.
options:
  reload_command:
    description: Command that makes Patroni reload its configuration on this host.
    type: list
    elements: str
    default: [service, patroni, reload]
  certificate_path:
    description: Wait until the API serves this certificate (the one just installed).
    type: path
  wait_timeout:
    description: Seconds to wait for the API to answer as expected.
    type: int
    default: 90
"""

EXAMPLES = r"""
- name: Reload Patroni and wait for the API over HTTPS
  pgha.patroni.patroni_tls_reload:
    api_url: "https://{{ ansible_host }}:8008"
    ca_path: /etc/patroni/tls/ca.crt
    certificate_path: /etc/patroni/tls/api.crt
"""

RETURN = r"""
elapsed:
  description: Seconds from the reload to the API answering as expected.
  returned: success
  type: float
evidence:
  description: What showed the reload took effect, V(protocol), V(certificate) or V(loop_wait).
  returned: success
  type: str
served_serial:
  description: Serial number (hex) of the certificate the API serves after the reload, empty over plain HTTP.
  returned: success
  type: str
"""

import socket
import ssl
import time
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgha.patroni.plugins.module_utils import _api_client as api
from ansible_collections.pgha.patroni.plugins.module_utils import _tls


def served_certificate(host: str, port: int, client_cert: str | None, client_key: str | None) -> bytes | None:
    """DER of the certificate served on host:port, None when the port speaks plain HTTP or does not answer."""
    ctx = ssl.create_default_context()
    # Only to read what is served; the real verification is the client's GET below.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if client_cert:
        ctx.load_cert_chain(client_cert, client_key)
    try:
        with socket.create_connection((host, port), timeout=3) as sock:
            with ctx.wrap_socket(sock, server_hostname=host) as tls:
                return tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None


def run(module: AnsibleModule) -> dict:
    p = module.params
    if module.check_mode:
        # Before any file check: in a dry run the CA and certificates may exist only as a prediction.
        return {"changed": True, "elapsed": 0.0, "evidence": "", "served_serial": ""}
    client = api.client_from_params(p, module)
    parts = urlsplit(client.base_url)
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    https = parts.scheme == "https"
    wanted_der = None
    if p["certificate_path"]:
        if not _tls.HAS_CRYPTOGRAPHY:
            module.fail_json(msg="cryptography is needed to compare certificate_path with the served certificate")
        wanted_der = _tls.load_certificate_file(p["certificate_path"]).public_bytes(_tls.serialization.Encoding.DER)

    before = served_certificate(host, port, p["client_cert"], p["client_key"])
    loop_wait = 10
    try:
        loop_wait = int(client.for_url(("https" if before else "http") + f"://{parts.netloc}")
                        .get_json("/config", timeout=5).get("loop_wait", 10))
    except (api.PatroniError, AttributeError, TypeError, ValueError):
        # No /config key or the old protocol not reachable: Patroni's default loop_wait is the best guess.
        pass

    start = time.monotonic()
    rc, out, err = module.run_command(p["reload_command"])
    if rc != 0:
        module.fail_json(msg=f"reload command {' '.join(p['reload_command'])!r} failed on this host with exit code "
                             f"{rc}: {(err or out).strip()[-500:]}; Patroni was not reloaded")

    # What outsiders can see change tells when the reload is done; without it, wait out one HA cycle.
    protocol_changes = (before is not None) != https
    cert_changes = wanted_der is not None and before != wanted_der
    settle = 0.0 if (protocol_changes or cert_changes) else loop_wait + 2.0
    evidence = "protocol" if protocol_changes else "certificate" if cert_changes else "loop_wait"
    deadline = start + p["wait_timeout"]
    last = "nothing yet"
    while True:
        now = time.monotonic()
        served = served_certificate(host, port, p["client_cert"], p["client_key"]) if https else None
        ready = now - start >= settle
        if https and served is None:
            ready, last = False, f"no TLS answer from {host}:{port}"
        elif wanted_der is not None and served != wanted_der:
            ready, last = False, f"{host}:{port} still serves the old certificate"
        if ready:
            try:
                client.get_json("/patroni", timeout=5)
                break
            except api.PatroniError as e:
                last = str(e)
                if not e.retryable:
                    # A certificate that does not verify or a 4xx will not fix itself by waiting.
                    module.fail_json(msg=f"Patroni API {client.base_url} after reload: {e}")
        if now >= deadline:
            module.fail_json(msg=f"Patroni API {client.base_url} did not answer as expected within "
                                 f"{p['wait_timeout']} s after the reload; last seen: {last}. Patroni was reloaded, "
                                 "not restarted; check /var/log/patroni and the certificate files")
        time.sleep(0.5)

    serial = ""
    if served and _tls.HAS_CRYPTOGRAPHY:
        serial = format(_tls.x509.load_der_x509_certificate(served).serial_number, "x")
    return {"changed": True, "elapsed": round(time.monotonic() - start, 2), "evidence": evidence,
            "served_serial": serial}


def main() -> None:
    module = AnsibleModule(
        supports_check_mode=True,
        **api.connection_module_kwargs({
            "reload_command": {"type": "list", "elements": "str", "default": ["service", "patroni", "reload"]},
            "certificate_path": {"type": "path"},
            "wait_timeout": {"type": "int", "default": 90},
        }),
    )
    api.ensure_requests(module)
    try:
        result = run(module)
    except (api.PatroniError, _tls.TLSError) as e:
        module.fail_json(msg=str(e))
    module.exit_json(**result)


if __name__ == "__main__":
    main()

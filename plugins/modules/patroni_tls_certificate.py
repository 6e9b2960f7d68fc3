#!/usr/bin/python
# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: patroni_tls_certificate
short_description: Sign a Patroni server or client certificate with the CA, renewing only when needed
version_added: 0.1.0
description:
  - Runs where the CA key is (C(delegate_to) the controller or the CA host); takes a CSR made on the member by
    M(pgha.patroni.patroni_tls_csr) and returns a certificate. Nothing is written to disk here.
  - A server certificate's subjectAltName is the connect address first, then every other name and IP given. A list
    that does not contain the connect address is refused, since Patroni and its clients verify that name.
  - The current certificate (O(current_certificate)) is kept unless it expires within O(renew_before_days), its SANs
    differ from the wanted list, it is not signed by the current CA, it belongs to another key, or it lacks the
    wanted usage. The reasons are returned.
author:
  - pgha maintainers (@pgha)
requirements:
  - cryptography >= 38.0
attributes:
  check_mode:
    support: full
    description: The decision is the same; a certificate is signed in memory only, nothing is written anyway.
  diff_mode:
    support: full
    description: Subject, SANs, serial and expiry before and after; never key material.
  idempotent:
    support: full
    description: A valid current certificate is returned unchanged with C(changed=false).
options:
  csr:
    description: PEM certificate signing request from the member.
    type: str
    required: true
  ca_certificate_path:
    description: CA certificate on this host.
    type: path
    required: true
  ca_private_key_path:
    description: CA private key on this host.
    type: path
    required: true
  ca_private_key_passphrase:
    description: Passphrase of the CA key.
    type: str
  usage:
    description: V(server) for the REST API certificate, V(client) for C(ctl:) and HAProxy client certificates.
    type: str
    choices: [server, client]
    default: server
  connect_address:
    description:
      - The member's C(restapi.connect_address) (C(host:port) or a bare host). Required for O(usage=server).
    type: str
  subject_alt_names:
    description:
      - Every DNS name and IP the member is reached by. For O(usage=server) it must contain the connect address host.
    type: list
    elements: str
    default: []
  common_name:
    description: Subject common name; defaults to the CSR's.
    type: str
  valid_days:
    description: Lifetime of a new certificate in days (capped at the CA's expiry).
    type: int
    default: 365
  renew_before_days:
    description: Reissue when the current certificate expires within this many days.
    type: int
    default: 30
  current_certificate:
    description: PEM of the certificate the member has now; empty or omitted means issue a new one.
    type: str
    default: ""
  force:
    description: Issue a new certificate even if the current one is fine.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Sign the member's API certificate on the controller
  pgha.patroni.patroni_tls_certificate:
    csr: "{{ api_csr.csr }}"
    current_certificate: "{{ api_csr.current_certificate }}"
    ca_certificate_path: "{{ playbook_dir }}/pki/ca.crt"
    ca_private_key_path: "{{ playbook_dir }}/pki/ca.key"
    connect_address: "{{ api_csr.connect_address }}"
    subject_alt_names:
      - "{{ ansible_host }}"
      - "{{ inventory_hostname }}"
  delegate_to: localhost
  register: api_cert
"""

RETURN = r"""
certificate:
  description: The certificate to install (PEM), the current one when no renewal was needed.
  returned: success
  type: str
issued:
  description: Whether a new certificate was signed.
  returned: success
  type: bool
renewal_reasons:
  description: Why a new certificate was signed; empty when the current one was kept.
  returned: success
  type: list
  elements: str
subject_alt_names:
  description: The SAN list of the returned certificate, connect address first.
  returned: success
  type: list
  elements: str
info:
  description: Subject, issuer, serial, expiry, SANs and SHA-256 fingerprint of the returned certificate.
  returned: success
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgha.patroni.plugins.module_utils import _tls


def run(module: AnsibleModule) -> dict:
    p = module.params
    if p["usage"] == "server":
        if not p["connect_address"]:
            raise _tls.TLSError("connect_address is required for a server certificate; give the member's "
                                "restapi.connect_address")
        sans = _tls.order_sans(p["connect_address"], p["subject_alt_names"])
    else:
        sans = []
        for s in p["subject_alt_names"]:
            n = _tls.normalize_san(s)
            if n not in sans:
                sans.append(n)

    ca_cert = _tls.load_certificate_file(p["ca_certificate_path"])
    ca_key = _tls.load_private_key_file(p["ca_private_key_path"], p["ca_private_key_passphrase"])
    if not _tls.key_matches_certificate(ca_key, ca_cert):
        raise _tls.TLSError(f"CA private key {p['ca_private_key_path']} does not match CA certificate "
                            f"{p['ca_certificate_path']} (their public keys differ); give the key that belongs "
                            "to this certificate")
    csr = _tls.load_csr(p["csr"])

    before = {}
    reasons = []
    if p["current_certificate"].strip():
        try:
            current = _tls.load_certificate(p["current_certificate"], "current_certificate")
        except _tls.TLSError as e:
            reasons.append(str(e))
            current = None
        if current is not None:
            before = _tls.describe_certificate(current)
            reasons = _tls.renewal_reasons(current, ca_cert, sans, _tls.public_key_der(csr),
                                           p["renew_before_days"], p["usage"])
            if not reasons and not p["force"]:
                return {"changed": False, "issued": False, "renewal_reasons": [], "subject_alt_names": sans,
                        "certificate": _tls.certificate_pem(current).decode(), "info": before,
                        "diff": {"before": before, "after": before}}
    else:
        reasons.append("no current certificate")
    if p["force"] and not reasons:
        reasons.append("force=true")

    cert = _tls.sign_certificate(csr, ca_cert, ca_key, p["usage"], sans, p["valid_days"], p["common_name"])
    after = _tls.describe_certificate(cert)
    return {"changed": True, "issued": True, "renewal_reasons": reasons, "subject_alt_names": sans,
            "certificate": _tls.certificate_pem(cert).decode(), "info": after,
            "diff": {"before": before, "after": after}}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "csr": {"type": "str", "required": True},
            "ca_certificate_path": {"type": "path", "required": True},
            "ca_private_key_path": {"type": "path", "required": True},
            "ca_private_key_passphrase": {"type": "str", "no_log": True},
            "usage": {"type": "str", "choices": ["server", "client"], "default": "server"},
            "connect_address": {"type": "str"},
            "subject_alt_names": {"type": "list", "elements": "str", "default": []},
            "common_name": {"type": "str"},
            "valid_days": {"type": "int", "default": 365},
            "renew_before_days": {"type": "int", "default": 30},
            "current_certificate": {"type": "str", "default": ""},
            "force": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    _tls.run_tls_module(module, run)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: patroni_tls_ca
short_description: Make or check the CA that signs Patroni REST API certificates
version_added: 0.1.0
description:
  - Ensures a certificate authority exists as a certificate file and a private key file on the host the task runs on
    (the controller or a CA host given with C(delegate_to)).
  - When both files exist (made earlier, or brought by the user) the key is checked to belong to the certificate and the
    certificate to be a CA; a mismatch fails naming both paths and nothing is changed.
  - When both are missing and O(create=true), an ECDSA P-256 (or RSA) CA is made. The key file is written with mode
    V(0600) through a temporary file and a rename.
  - The key is never returned. The certificate (public) is returned so it can be copied to the members.
author:
  - pgha maintainers (@pgha)
requirements:
  - cryptography >= 38.0
attributes:
  check_mode:
    support: full
    description: Predicts whether a CA would be made; writes nothing.
  diff_mode:
    support: full
    description: Shows the CA subject, serial and expiry, never key material.
  idempotent:
    support: full
    description: An existing, matching CA is left as it is.
options:
  certificate_path:
    description: Path of the CA certificate (PEM).
    type: path
    required: true
  private_key_path:
    description: Path of the CA private key (PEM). Stays on this host.
    type: path
    required: true
  private_key_passphrase:
    description: Passphrase of the CA key, if it is (or should be) encrypted.
    type: str
  create:
    description:
      - Make a new CA when neither file exists.
      - With V(false) a missing CA fails, for users who bring their own.
    type: bool
    default: true
  common_name:
    description: Common name of a CA made by this module.
    type: str
    default: pgha Patroni CA
  key_type:
    description: Key algorithm of a CA made by this module.
    type: str
    choices: [ecdsa, rsa]
    default: ecdsa
  rsa_key_size:
    description: RSA key size in bits when O(key_type=rsa).
    type: int
    default: 3072
  valid_days:
    description: Lifetime of a CA made by this module, in days.
    type: int
    default: 3650
"""

EXAMPLES = r"""
- name: Make the CA on the controller (or check the one that is there)
  pgha.patroni.patroni_tls_ca:
    certificate_path: "{{ playbook_dir }}/pki/ca.crt"
    private_key_path: "{{ playbook_dir }}/pki/ca.key"
  delegate_to: localhost
  run_once: true
  register: ca

- name: Use a CA the organisation already has; fail if the files do not match
  pgha.patroni.patroni_tls_ca:
    certificate_path: /srv/pki/corp-ca.pem
    private_key_path: /srv/pki/corp-ca.key
    private_key_passphrase: "{{ vault_ca_passphrase }}"
    create: false
  delegate_to: ca.example.com
  run_once: true
"""

RETURN = r"""
certificate:
  description: The CA certificate in PEM form (public). Empty in check mode when the CA would be made.
  returned: success
  type: str
created:
  description: Whether a new CA was (or in check mode, would be) made.
  returned: success
  type: bool
info:
  description: Subject, issuer, serial, expiry and SHA-256 fingerprint of the CA certificate.
  returned: when the CA exists after the run
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgha.patroni.plugins.module_utils import _tls


def ensure_ca(module: AnsibleModule) -> dict:
    p = module.params
    cert_path, key_path = p["certificate_path"], p["private_key_path"]
    have_cert, have_key = os.path.exists(cert_path), os.path.exists(key_path)

    if have_cert and have_key:
        cert = _tls.load_certificate_file(cert_path)
        key = _tls.load_private_key_file(key_path, p["private_key_passphrase"])
        if not _tls.key_matches_certificate(key, cert):
            raise _tls.TLSError(f"CA private key {key_path} does not match CA certificate {cert_path} "
                                "(their public keys differ); give the key that belongs to this certificate")
        if not _tls.is_ca_certificate(cert):
            raise _tls.TLSError(f"CA certificate {cert_path} is not a CA (basicConstraints CA:TRUE missing); "
                                "give a CA certificate, not a server certificate")
        if _tls.not_valid_after(cert) < _tls._utcnow():
            raise _tls.TLSError(f"CA certificate {cert_path} expired on {_tls.not_valid_after(cert).isoformat()}Z; "
                                "replace the CA (move both files away to have a new one made)")
        info = _tls.describe_certificate(cert)
        return {"changed": False, "created": False, "certificate": _tls.certificate_pem(cert).decode(),
                "info": info, "diff": {"before": info, "after": info}}

    if have_cert != have_key:
        present, missing = (cert_path, key_path) if have_cert else (key_path, cert_path)
        raise _tls.TLSError(f"CA file {present} exists but {missing} does not; restore the missing file, or move "
                            f"{present} away to have a new CA made")
    if not p["create"]:
        raise _tls.TLSError(f"CA certificate {cert_path} and key {key_path} do not exist and create=false; "
                            "put your CA there or set create=true")

    if module.check_mode:
        return {"changed": True, "created": True, "certificate": "",
                "diff": {"before": {}, "after": {"subject": p["common_name"], "state": "would be created"}}}

    for path in (cert_path, key_path):
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            # The key's directory is private to whoever runs the CA.
            os.makedirs(directory, mode=0o700)
    key = _tls.generate_private_key(p["key_type"], p["rsa_key_size"])
    cert = _tls.create_ca(key, p["common_name"], p["valid_days"])
    # Key first: a certificate without its key would make the next run refuse to continue.
    _tls.write_atomic(key_path, _tls.private_key_pem(key, p["private_key_passphrase"]), 0o600)
    _tls.write_atomic(cert_path, _tls.certificate_pem(cert), 0o644)
    info = _tls.describe_certificate(cert)
    return {"changed": True, "created": True, "certificate": _tls.certificate_pem(cert).decode(), "info": info,
            "diff": {"before": {}, "after": info}}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "certificate_path": {"type": "path", "required": True},
            "private_key_path": {"type": "path", "required": True},
            "private_key_passphrase": {"type": "str", "no_log": True},
            "create": {"type": "bool", "default": True},
            "common_name": {"type": "str", "default": "pgha Patroni CA"},
            "key_type": {"type": "str", "choices": ["ecdsa", "rsa"], "default": "ecdsa"},
            "rsa_key_size": {"type": "int", "default": 3072},
            "valid_days": {"type": "int", "default": 3650},
        },
        supports_check_mode=True,
    )
    _tls.run_tls_module(module, ensure_ca)


if __name__ == "__main__":
    main()

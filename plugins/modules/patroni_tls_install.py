#!/usr/bin/python
# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: patroni_tls_install
short_description: Install a certificate next to its key on a Patroni member, only if they match
version_added: 0.1.0
description:
  - Patroni leaves its REST API dead when a reload meets a certificate that does not match its key (or a key it
    cannot open). This module makes that impossible for files it writes, before anything is written it checks that
    the key at O(private_key_path) opens with O(private_key_passphrase), that the certificate belongs to that key and,
    when O(ca_certificate) is given, that the CA signed it. Any failure leaves every file as it was.
  - Files are replaced atomically (temporary file in the same directory, then rename), CA first, then certificate,
    then the optional bundle.
  - Returns whether the certificate Patroni serves will change on the next reload, so a role knows to reload.
author:
  - pgha maintainers (@pgha)
requirements:
  - cryptography >= 38.0
  - PyYAML (only when O(patroni_config) is set)
attributes:
  check_mode:
    support: full
    description: All checks run; nothing is written.
  diff_mode:
    support: full
    description: Serial, subject, SANs and expiry of the certificates before and after; never key material.
  idempotent:
    support: full
    description: Files whose content is already right are not rewritten.
options:
  certificate:
    description: PEM certificate to install (from M(pgha.patroni.patroni_tls_certificate)).
    type: str
    required: true
  certificate_path:
    description: Where the certificate goes.
    type: path
    required: true
  private_key_path:
    description: The key already on this host (made by M(pgha.patroni.patroni_tls_csr)). Never rewritten here.
    type: path
    required: true
  private_key_passphrase:
    description: Passphrase of the key; it is checked to open the key before installing.
    type: str
  ca_certificate:
    description: PEM of the CA; the certificate must be signed by it. Written to O(ca_certificate_path) if given.
    type: str
  ca_certificate_path:
    description: Where the CA certificate goes.
    type: path
  bundle_path:
    description:
      - Also write certificate and key into this one file (mode V(0600)), as HAProxy's C(crt) option wants.
      - Refused together with O(private_key_passphrase), since HAProxy cannot prompt for it.
    type: path
  owner:
    description: Owner of the written files.
    type: str
  group:
    description: Group of the written files.
    type: str
  patroni_config:
    description:
      - A patroni.yml; when its C(restapi.certfile) (or C(restapi.cafile)) is the path written here, RV(reload_needed)
        tells that Patroni must be reloaded to serve the new certificate.
    type: path
"""

EXAMPLES = r"""
- name: Install the API certificate after checking it against the key
  pgha.patroni.patroni_tls_install:
    certificate: "{{ api_cert.certificate }}"
    certificate_path: /etc/patroni/tls/api.crt
    private_key_path: /etc/patroni/tls/api.key
    ca_certificate: "{{ ca.certificate }}"
    ca_certificate_path: /etc/patroni/tls/ca.crt
    owner: postgres
    group: postgres
    patroni_config: /etc/patroni/patroni.yml
  register: api_install
  notify: patroni_tls_reload
"""

RETURN = r"""
certificate_changed:
  description: Whether the certificate file content changed.
  returned: success
  type: bool
ca_changed:
  description: Whether the CA file content changed.
  returned: success
  type: bool
bundle_changed:
  description: Whether the bundle file content changed.
  returned: success
  type: bool
reload_needed:
  description: Whether Patroni serves one of the changed files (per O(patroni_config)) and must be reloaded.
  returned: success
  type: bool
info:
  description: Subject, issuer, serial, expiry, SANs and fingerprint of the installed certificate.
  returned: success
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgha.patroni.plugins.module_utils import _tls

try:
    import yaml
    HAS_YAML = True
except ImportError:
    HAS_YAML = False


def _current(path: str) -> bytes | None:
    try:
        return _tls.read_file(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise _tls.TLSError(f"cannot read {path}: {e.strerror}") from None


def _served_paths(path: str) -> dict:
    if not HAS_YAML:
        raise _tls.TLSError("PyYAML is needed to read patroni_config; install python3-yaml on this host")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise _tls.TLSError(f"cannot read Patroni config {path}: {e}") from None
    restapi = (data or {}).get("restapi") if isinstance(data, dict) else None
    restapi = restapi if isinstance(restapi, dict) else {}
    return {k: os.path.realpath(str(restapi[k])) for k in ("certfile", "keyfile", "cafile") if restapi.get(k)}


def _describe(data: bytes | None) -> dict:
    if not data:
        return {}
    try:
        return _tls.describe_certificate(_tls.load_certificate(data, "file"))
    except _tls.TLSError:
        return {"content": "not a certificate"}


def run(module: AnsibleModule) -> dict:
    p = module.params
    if p["bundle_path"] and p["private_key_passphrase"]:
        raise _tls.TLSError("bundle_path cannot be used with an encrypted key (HAProxy cannot prompt for the "
                            "passphrase); make this key without a passphrase")
    if bool(p["ca_certificate"]) != bool(p["ca_certificate_path"]):
        raise _tls.TLSError("ca_certificate and ca_certificate_path go together; give both or neither")

    cert = _tls.load_certificate(p["certificate"], "certificate")
    key_path = p["private_key_path"]
    key = _tls.load_private_key_file(key_path, p["private_key_passphrase"])
    if not _tls.key_matches_certificate(key, cert):
        info = _tls.describe_certificate(cert)
        raise _tls.TLSError(f"certificate for {p['certificate_path']} (serial {info['serial']}) does not match "
                            f"private key {key_path} (their public keys differ); nothing was installed. Sign a "
                            "certificate from a CSR of this key")
    if p["ca_certificate"]:
        ca = _tls.load_certificate(p["ca_certificate"], "ca_certificate")
        if not _tls.issued_by(cert, ca):
            raise _tls.TLSError(f"certificate for {p['certificate_path']} is not signed by the CA given for "
                                f"{p['ca_certificate_path']}; nothing was installed")

    cert_pem = _tls.certificate_pem(cert)
    planned = []  # (path, bytes, mode) in install order: CA, certificate, bundle
    if p["ca_certificate_path"]:
        planned.append(("ca", p["ca_certificate_path"], _tls.certificate_pem(ca), 0o644))
    planned.append(("certificate", p["certificate_path"], cert_pem, 0o644))
    if p["bundle_path"]:
        planned.append(("bundle", p["bundle_path"], cert_pem + _tls.private_key_pem(key), 0o600))

    uid, gid = _tls.owner_ids(p["owner"], p["group"])
    result = {"changed": False, "certificate_changed": False, "ca_changed": False, "bundle_changed": False,
              "reload_needed": False, "info": _tls.describe_certificate(cert)}
    diff_before, diff_after = {}, {}
    changed_paths = []
    for kind, path, data, mode in planned:
        old = _current(path)
        if old != data:
            result[f"{kind}_changed"] = True
            result["changed"] = True
            changed_paths.append(os.path.realpath(path))
            if kind != "bundle":
                diff_before[kind] = _describe(old)
                diff_after[kind] = _describe(data)
            else:
                diff_before[kind] = "present" if old else "absent"
                diff_after[kind] = "certificate + key (content hidden)"
            if not module.check_mode:
                _tls.write_atomic(path, data, mode, uid, gid)
        elif not module.check_mode or os.path.exists(path):
            if _tls.fix_file_attributes(module, path, mode, p["owner"], p["group"]):
                result["changed"] = True

    if p["patroni_config"] and changed_paths:
        served = _served_paths(p["patroni_config"])
        # Patroni only notices a new certificate serial on SIGHUP; a changed CA file alone is not re-read.
        result["reload_needed"] = any(served.get(k) in changed_paths for k in ("certfile", "cafile"))
    result["diff"] = {"before": diff_before, "after": diff_after}
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "certificate": {"type": "str", "required": True},
            "certificate_path": {"type": "path", "required": True},
            "private_key_path": {"type": "path", "required": True},
            "private_key_passphrase": {"type": "str", "no_log": True},
            "ca_certificate": {"type": "str"},
            "ca_certificate_path": {"type": "path"},
            "bundle_path": {"type": "path"},
            "owner": {"type": "str"},
            "group": {"type": "str"},
            "patroni_config": {"type": "path"},
        },
        supports_check_mode=True,
    )
    _tls.run_tls_module(module, run)


if __name__ == "__main__":
    main()

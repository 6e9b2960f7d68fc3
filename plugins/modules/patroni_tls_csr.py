#!/usr/bin/python
# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: patroni_tls_csr
short_description: Make a member's private key in place and a certificate signing request for it
version_added: 0.1.0
description:
  - Runs on the host that will use the key (a Patroni member, or a load balancer for a client certificate).
    The key is made there and never leaves it; it is never returned or logged.
  - A missing key is made (ECDSA P-256 by default, RSA on request) with mode V(0600) from its first byte on disk and
    the given owner; an existing key is kept (its owner and mode are corrected) and must open with the passphrase.
  - Returns a CSR (public) for M(pgha.patroni.patroni_tls_certificate), the certificate currently at
    O(certificate_path) so the signer can decide whether to renew, and the connect address read from patroni.yml.
author:
  - pgha maintainers (@pgha)
requirements:
  - cryptography >= 38.0
  - PyYAML (only when O(patroni_config) is set)
attributes:
  check_mode:
    support: full
    description: A key that would be made is simulated in memory so later steps can predict; nothing is written.
  diff_mode:
    support: partial
    description: Reports whether the key would be made and its owner or mode changed; never key material.
  idempotent:
    support: full
    description: An existing key with the right owner and mode is not touched. The CSR itself is not a file.
options:
  private_key_path:
    description: Path of the private key on this host.
    type: path
    required: true
  private_key_passphrase:
    description: Encrypt a new key with this passphrase, and open an existing one with it.
    type: str
  key_type:
    description: Algorithm of a key made by this module. An existing key of another type is kept.
    type: str
    choices: [ecdsa, rsa]
    default: ecdsa
  rsa_key_size:
    description: RSA key size in bits when O(key_type=rsa).
    type: int
    default: 3072
  owner:
    description: Owner of the key file (the user Patroni or HAProxy runs as).
    type: str
  group:
    description: Group of the key file.
    type: str
  common_name:
    description: Common name put in the CSR.
    type: str
    required: true
  subject_alt_names:
    description: Names and IPs put in the CSR. The signer sets the final list; this is informational.
    type: list
    elements: str
    default: []
  certificate_path:
    description: Where the certificate for this key is (or will be) installed; its content is returned if it exists.
    type: path
  patroni_config:
    description: A patroni.yml to read C(restapi.connect_address) from, returned as RV(connect_address).
    type: path
"""

EXAMPLES = r"""
- name: Make the API key on the member and a CSR for it
  pgha.patroni.patroni_tls_csr:
    private_key_path: /etc/patroni/tls/api.key
    owner: postgres
    group: postgres
    common_name: "{{ inventory_hostname }}"
    certificate_path: /etc/patroni/tls/api.crt
    patroni_config: /etc/patroni/patroni.yml
  register: api_csr
"""

RETURN = r"""
csr:
  description: The certificate signing request in PEM form (public).
  returned: success
  type: str
current_certificate:
  description: PEM content of O(certificate_path), empty when it does not exist or is not a certificate.
  returned: success
  type: str
connect_address:
  description: C(restapi.connect_address) from O(patroni_config), empty when not read.
  returned: success
  type: str
key_created:
  description: Whether the key was (or would be) made.
  returned: success
  type: bool
key_type:
  description: Algorithm of the key, V(ecdsa) or V(rsa).
  returned: success
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgha.patroni.plugins.module_utils import _tls

try:
    import yaml
    HAS_YAML = True
except ImportError:
    HAS_YAML = False


def read_connect_address(path: str) -> str:
    if not HAS_YAML:
        raise _tls.TLSError("PyYAML is needed to read patroni_config; install python3-yaml on this host")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise _tls.TLSError(f"cannot read Patroni config {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise _tls.TLSError(f"Patroni config {path} is not valid YAML: {e}") from None
    restapi = data.get("restapi") if isinstance(data, dict) else None
    if not isinstance(restapi, dict) or not restapi.get("connect_address"):
        raise _tls.TLSError(f"Patroni config {path} has no restapi.connect_address; set it, or pass the "
                            "connect address to the signer yourself")
    return str(restapi["connect_address"])


def run(module: AnsibleModule) -> dict:
    p = module.params
    key_path = p["private_key_path"]
    uid, gid = _tls.owner_ids(p["owner"], p["group"])
    result = {"changed": False, "key_created": False, "current_certificate": "", "connect_address": ""}

    if os.path.exists(key_path):
        key = _tls.load_private_key_file(key_path, p["private_key_passphrase"])
    else:
        key = _tls.generate_private_key(p["key_type"], p["rsa_key_size"])
        result.update(changed=True, key_created=True)
        if not module.check_mode:
            directory = os.path.dirname(os.path.abspath(key_path))
            if not os.path.isdir(directory):
                raise _tls.TLSError(f"directory {directory} for private key {key_path} does not exist; create it "
                                    "first (the patroni_tls role does)")
            _tls.write_atomic(key_path, _tls.private_key_pem(key, p["private_key_passphrase"]), 0o600, uid, gid)

    if not result["key_created"] or not module.check_mode:
        diff = {"before": {}, "after": {}}
        if _tls.fix_file_attributes(module, key_path, 0o600, p["owner"], p["group"], diff):
            result["changed"] = True
            result["diff"] = {"before": {"key_file": diff["before"]}, "after": {"key_file": diff["after"]}}
    if result["key_created"]:
        result["diff"] = {"before": {"key_file": "absent"},
                          "after": {"key_file": f"{_tls.key_type_of(key)} key, mode 0600"}}

    result["key_type"] = _tls.key_type_of(key)
    result["csr"] = _tls.csr_pem(_tls.build_csr(key, p["common_name"], p["subject_alt_names"])).decode()

    cert_path = p["certificate_path"]
    if cert_path and os.path.exists(cert_path):
        try:
            result["current_certificate"] = _tls.certificate_pem(_tls.load_certificate_file(cert_path)).decode()
        except _tls.TLSError as e:
            # A broken certificate is simply reissued; the warning tells the user why.
            module.warn(f"ignoring the current certificate: {e}")
    if p["patroni_config"]:
        result["connect_address"] = read_connect_address(p["patroni_config"])
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "private_key_path": {"type": "path", "required": True},
            "private_key_passphrase": {"type": "str", "no_log": True},
            "key_type": {"type": "str", "choices": ["ecdsa", "rsa"], "default": "ecdsa"},
            "rsa_key_size": {"type": "int", "default": 3072},
            "owner": {"type": "str"},
            "group": {"type": "str"},
            "common_name": {"type": "str", "required": True},
            "subject_alt_names": {"type": "list", "elements": "str", "default": []},
            "certificate_path": {"type": "path"},
            "patroni_config": {"type": "path"},
        },
        supports_check_mode=True,
    )
    _tls.run_tls_module(module, run)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: patroni_yml
short_description: Set the REST API security settings, the ctl section and member tags in a patroni.yml in place
version_added: 0.1.0
description:
  - Loads the Patroni configuration file as YAML, sets the C(restapi) TLS, authentication and allowlist settings and
    the C(ctl) section and member C(tags), and writes it back only when something changed. Every other setting is kept, and so are the
    file's owner and mode. The old file is kept as a backup (O(backup)).
  - A file that is missing, not valid YAML, or not a Patroni configuration (top-level C(scope), C(restapi) and
    C(postgresql) are required) stops the task with the path and the reason; nothing is written.
  - Before writing, the certificate and key files the new configuration points at are checked to exist, to open
    (with C(keyfile_password)) and to match, because Patroni leaves its REST API dead after a reload with a bad
    pair. The CA files are checked to be certificates.
  - Dual-stack C(listen) (C(*:8008), C(:8008), C([::]:8008), C(::)) makes IPv4 clients arrive as C(::ffff:a.b.c.d),
    which IPv4 allowlist entries do not match. With O(dual_stack_allowlist=true) every IPv4 address or network in
    the allowlist also gets its IPv4-mapped form (C(10.0.0.0/24) → C(::ffff:10.0.0.0/120)); C(listen) itself is
    left alone so IPv6 and local clients keep working. Host name entries get a warning.
  - The module does not reload Patroni; use C(changed) to notify a handler (the C(patroni_api_security) role does).
notes:
  - Only the top-level sections that change (C(restapi), C(ctl)) are rewritten, by a YAML dumper, so comments and
    quoting inside them are not kept. Every other line of the file, comments included, stays as it was. A file
    whose top level is not plain block style (flow style, several documents, quoted keys) is rewritten whole, with
    a warning. The backup keeps the original text.
  - Options left unset are not touched. An empty string (or empty list) removes that setting.
  - Password values are hidden in the diff as C(********), with C((changed)) when they change.
author:
  - pgha maintainers (@pgha)
requirements:
  - PyYAML
  - cryptography >= 38.0 (to check certificate files)
attributes:
  check_mode:
    support: full
    description: Computes the change and the diff, checks the files; writes nothing.
  diff_mode:
    support: full
    description: Shows the whole configuration before and after with every password masked.
  idempotent:
    support: full
    description: A file that already has the wanted settings is not rewritten.
options:
  path:
    description: The Patroni configuration file.
    type: path
    default: /etc/patroni/patroni.yml
  restapi:
    description: Settings for the C(restapi) section.
    type: dict
    suboptions:
      certfile:
        description: Server certificate; setting it switches the API to HTTPS.
        type: path
      keyfile:
        description: Server private key.
        type: path
      keyfile_password:
        description: Passphrase of the server key.
        type: str
      cafile:
        description: CA that client certificates are verified against.
        type: path
      verify_client:
        description: Whether clients must present a certificate. V(optional) requires one only for unsafe calls.
        type: str
        choices: [none, optional, required]
      authentication:
        description: HTTP basic auth for unsafe endpoints.
        type: dict
        suboptions:
          username:
            description: User name.
            type: str
            required: true
          password:
            description: Password (vault it).
            type: str
            required: true
      allowlist:
        description: IPs, CIDR networks and host names allowed to call unsafe endpoints. Each is validated.
        type: list
        elements: str
      allowlist_include_members:
        description: Also allow every cluster member's API address.
        type: bool
  ctl:
    description: Settings for the C(ctl) section used by patronictl and by Patroni's own calls to other members.
    type: dict
    suboptions:
      cacert:
        description: CA to verify the members' API certificates.
        type: path
      certfile:
        description: Client certificate.
        type: path
      keyfile:
        description: Client private key.
        type: path
      keyfile_password:
        description: Passphrase of the client key.
        type: str
      insecure:
        description: Skip server certificate verification (not recommended).
        type: bool
      authentication:
        description: HTTP basic auth patronictl sends on unsafe calls (Patroni 3.1.0+).
        type: dict
        suboptions:
          username:
            description: User name.
            type: str
            required: true
          password:
            description: Password (vault it).
            type: str
            required: true
  tags:
    description:
      - Member tags (the C(tags) section), for example V(noloadbalance) to take a replica out of the read pool
        (C(GET /replica) answers 503) or V(nofailover) to keep it from being promoted. Patroni applies changed tags
        on reload, without a restart.
      - Only the tags named here are touched; a V(null) value removes that tag.
      - Patroni's own boolean tags (V(nofailover), V(noloadbalance), V(clonefrom), V(nosync), V(nostream)) are
        written as YAML booleans (strings such as V("false") are converted, anything else is refused, because
        Patroni tests these tags for truth and a quoted V("false") would count as true); V(failover_priority) and
        V(sync_priority) must be integers.
    type: dict
  dual_stack_allowlist:
    description: Add IPv4-mapped IPv6 forms of IPv4 allowlist entries when C(restapi.listen) is dual-stack.
    type: bool
    default: true
  backup:
    description: Keep a timestamped copy of the old file next to it before writing.
    type: bool
    default: true
  validate_files:
    description: Check the certificate, key and CA files the new configuration points at before writing.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Harden the REST API of a member
  pgha.patroni.patroni_yml:
    path: /etc/patroni/patroni.yml
    restapi:
      certfile: /etc/patroni/tls/api.crt
      keyfile: /etc/patroni/tls/api.key
      cafile: /etc/patroni/tls/ca.crt
      verify_client: optional
      authentication:
        username: patroni_api
        password: "{{ vault_patroni_api_password }}"
      allowlist: [10.0.0.0/24, 192.0.2.10]
      allowlist_include_members: true
    ctl:
      cacert: /etc/patroni/tls/ca.crt
      certfile: /etc/patroni/tls/client.crt
      keyfile: /etc/patroni/tls/client.key
      authentication:
        username: patroni_api
        password: "{{ vault_patroni_api_password }}"
  register: patroni_yml
  notify: Reload Patroni

- name: Take a replica out of the read pool before maintenance (GET /replica answers 503 after the reload)
  pgha.patroni.patroni_yml:
    tags:
      noloadbalance: true
  notify: Reload Patroni

- name: Put it back (the tag is removed)
  pgha.patroni.patroni_yml:
    tags:
      noloadbalance: null
  notify: Reload Patroni
"""

RETURN = r"""
changed_keys:
  description: Dotted names of the settings that changed (values are not shown).
  returned: success
  type: list
  elements: str
  sample: [restapi.certfile, restapi.authentication]
backup_file:
  description: Path of the backup, when one was written.
  returned: changed and O(backup=true) and not check mode
  type: str
api_url:
  description: The REST API URL after the change, from C(restapi.connect_address) and whether TLS is on.
  returned: success
  type: str
  sample: https://10.0.0.11:8008
rebind:
  description: Whether a reload will make Patroni re-bind its REST server (TLS or listen settings changed).
  returned: success
  type: bool
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.pgha.patroni.plugins.module_utils import _patroni_yml as pyml
from ansible_collections.pgha.patroni.plugins.module_utils import _tls


def check_files(module: AnsibleModule, data: dict, path: str) -> None:
    if not _tls.HAS_CRYPTOGRAPHY:
        raise pyml.PatroniYmlError(missing_required_lib("cryptography") + " (needed to check the TLS files; "
                                   "or set validate_files=false)")
    try:
        for section, certfile, keyfile, password in pyml.tls_file_checks(data):
            missing = [f for f in (certfile, keyfile) if not os.path.exists(f)]
            if missing and module.check_mode:
                # In a dry run the files may come from an earlier task that check mode only simulated.
                module.warn(f"{', '.join(missing)} do(es) not exist yet; the real run fails unless an earlier task "
                            f"creates them ({section} in {path})")
                continue
            cert = _tls.load_certificate_file(certfile)
            key = _tls.load_private_key_file(keyfile, password)
            _tls.check_pair(key, cert, keyfile, certfile, f"{section}.certfile")
        for name, cafile in pyml.ca_files(data):
            if module.check_mode and not os.path.exists(cafile):
                module.warn(f"{name} {cafile} does not exist yet; the real run fails unless an earlier task creates it")
                continue
            if not os.path.isdir(cafile):
                _tls.load_certificate_file(cafile)
    except _tls.TLSError as e:
        raise pyml.PatroniYmlError(f"{e}; {path} was not changed, because Patroni would leave its REST API "
                                   "dead on reload") from None


def run(module: AnsibleModule) -> dict:
    p = module.params
    path = p["path"]
    original = pyml.read(path)
    before = pyml.load(path, original)
    after, changed_keys, warnings = pyml.apply(before, p["restapi"], p["ctl"], p["dual_stack_allowlist"],
                                               p["tags"])
    for w in warnings:
        module.warn(w)
    result = {"changed": bool(changed_keys), "changed_keys": changed_keys, "api_url": pyml.api_url(after),
              "rebind": pyml.needs_rebind(changed_keys)}
    if module._diff:
        result["diff"] = {"before": pyml.dump(pyml.masked(before)), "after": pyml.dump(pyml.masked(after, before)),
                          "before_header": path, "after_header": path}
    if not changed_keys:
        return result
    if p["validate_files"]:
        check_files(module, after, path)
    if module.check_mode:
        return result

    text = pyml.splice(original, before, after)
    if text is None:
        text = pyml.dump(after)
        module.warn(f"{path}: its layout could not be kept (flow style, a second document or a quoted top-level "
                    f"key), so the whole file was rewritten and its comments dropped; the backup keeps them")
    if p["backup"]:
        result["backup_file"] = module.backup_local(path)
    fd, tmp = tempfile.mkstemp(prefix=".patroni-yml-", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        # atomic_move copies the old file's owner, mode and SELinux context onto the new one.
        module.atomic_move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return result


def auth_spec() -> dict:
    return {"type": "dict", "options": {"username": {"type": "str", "required": True},
                                        "password": {"type": "str", "required": True, "no_log": True}}}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "default": "/etc/patroni/patroni.yml"},
            "restapi": {"type": "dict", "options": {
                "certfile": {"type": "path"},
                "keyfile": {"type": "path"},
                "keyfile_password": {"type": "str", "no_log": True},
                "cafile": {"type": "path"},
                "verify_client": {"type": "str", "choices": ["none", "optional", "required"]},
                "authentication": auth_spec(),
                "allowlist": {"type": "list", "elements": "str"},
                "allowlist_include_members": {"type": "bool"},
            }},
            "ctl": {"type": "dict", "options": {
                "cacert": {"type": "path"},
                "certfile": {"type": "path"},
                "keyfile": {"type": "path"},
                "keyfile_password": {"type": "str", "no_log": True},
                "insecure": {"type": "bool"},
                "authentication": auth_spec(),
            }},
            "tags": {"type": "dict"},
            "dual_stack_allowlist": {"type": "bool", "default": True},
            "backup": {"type": "bool", "default": True},
            "validate_files": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    if not pyml.HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"), exception=pyml.YAML_IMPORT_ERROR)
    try:
        result = run(module)
    except pyml.PatroniYmlError as e:
        module.fail_json(msg=str(e))
    module.exit_json(**result)


if __name__ == "__main__":
    main()

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this doc fragment is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

from __future__ import annotations


class ModuleDocFragment:

    # Connection options of the controller-side plugins (inventory, lookup): the modules' names and meanings, so a
    # user sets them the same way everywhere. The seed URLs are each plugin's own option.
    # Keep in sync with CONNECTION_OPTIONS in plugins/module_utils/_inventory.py.
    DOCUMENTATION = r"""
options:
  api_username:
    description:
      - User name of C(restapi.authentication) in C(patroni.yml), sent as HTTP Basic authentication.
      - Patroni checks it only on requests that change something; this plugin only reads, so it is needed only
        behind a proxy that asks for it on every request.
      - Credentials written into a seed URL (C(http://user:password@host:8008)) are used too and never shown.
    type: str
    env:
      - name: PATRONI_API_USERNAME
  api_password:
    description:
      - Password of C(restapi.authentication) in C(patroni.yml).
    type: str
    env:
      - name: PATRONI_API_PASSWORD
  ca_path:
    description:
      - PEM file (or OpenSSL hashed directory) with the CA certificate that signed Patroni's C(restapi.certfile),
        on the controller.
      - When not set, the CA bundle of the Python C(requests) library is used (or E(REQUESTS_CA_BUNDLE)).
    type: path
  client_cert:
    description:
      - PEM client certificate (on the controller) for C(restapi.verify_client), as the modules'
        O(pgha.patroni.patroni_facts#module:client_cert).
    type: path
  client_key:
    description: Unencrypted PEM private key of O(client_cert), when O(client_cert) does not hold it.
    type: path
  validate_certs:
    description:
      - Whether to verify the server certificate, as the modules' O(pgha.patroni.patroni_facts#module:validate_certs);
        V(false) is for tests only.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for a connection and for each answer of the REST API.
      - A seed that does not answer in time costs this long before the next seed is asked.
    type: float
    default: 5
notes:
  - The HTTP client is the Python C(requests) library on the controller. It honours the E(HTTP_PROXY),
    E(HTTPS_PROXY) and E(NO_PROXY) environment variables; add the members to E(NO_PROXY) if a proxy is set.
"""

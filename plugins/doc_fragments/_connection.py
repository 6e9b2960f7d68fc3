# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this doc fragment is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

from __future__ import annotations


class ModuleDocFragment:

    # Connection options of every module that talks to Patroni's REST API.
    # Keep in sync with connection_argument_spec() in plugins/module_utils/_api_client.py.
    DOCUMENTATION = r"""
options:
  api_url:
    description:
      - Base URL of one member's Patroni REST API, that is V(http://) or V(https://) plus C(restapi.connect_address).
      - The member C(api_url) Patroni publishes (ending in C(/patroni)) is accepted too.
      - Use V(https://) when C(restapi.certfile) is set in C(patroni.yml); Patroni serves either TLS or plain HTTP
        on a port, never both.
      - Credentials written into the URL (C(http://user:password@host:8008)) are used as O(api_username) and
        O(api_password) and hidden from the output, but prefer those options.
      - If not set, the value of the E(PATRONI_API_URL) environment variable is used.
    type: str
    default: http://127.0.0.1:8008
  api_username:
    description:
      - User name of C(restapi.authentication) in C(patroni.yml), sent as HTTP Basic authentication with every
        request.
      - Patroni only checks it on requests that change something (POST, PUT, PATCH, DELETE); reads work without it.
      - If not set, the value of the E(PATRONI_API_USERNAME) environment variable is used.
    type: str
  api_password:
    description:
      - Password of C(restapi.authentication) in C(patroni.yml).
      - If not set, the value of the E(PATRONI_API_PASSWORD) environment variable is used.
    type: str
  ca_path:
    description:
      - PEM file (or OpenSSL hashed directory) with the CA certificate that signed Patroni's C(restapi.certfile).
      - When not set, the CA bundle of the Python C(requests) library is used (or E(REQUESTS_CA_BUNDLE)).
      - Path on the host that runs the task (the target host, or the controller with C(delegate_to)).
    type: path
  client_cert:
    description:
      - PEM client certificate presented to Patroni, needed when C(restapi.verify_client) is V(required) (every
        request) or V(optional) (requests that change something).
      - It may contain the private key too; otherwise set O(client_key).
    type: path
  client_key:
    description:
      - Unencrypted PEM private key of O(client_cert).
    type: path
  validate_certs:
    description:
      - Verify the server certificate against O(ca_path) and check that the host of O(api_url) is in its
        subjectAltName (C(IP:) entries for addresses, C(DNS:) entries for names).
      - Set to V(false) only for tests; without verification anyone on the path can impersonate Patroni.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for a connection and for each answer of the REST API.
    type: float
    default: 5
notes:
  - The HTTP client is the Python C(requests) library on the host that runs the task. It honours the
    E(HTTP_PROXY), E(HTTPS_PROXY) and E(NO_PROXY) environment variables; add the members to E(NO_PROXY) if a proxy
    is set.
"""

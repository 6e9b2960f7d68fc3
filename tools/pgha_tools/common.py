# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Command-line connection options of the tools, mirroring the modules' connection options."""

from __future__ import annotations

import argparse
import os
import typing as t

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    KIND_BAD_OPTION,
    PatroniClient,
    PatroniError,
)


def add_connection_options(parser: argparse.ArgumentParser, default_timeout: float) -> None:
    group = parser.add_argument_group(
        "connection (the same options as the collection's modules)")
    group.add_argument("--username", default=os.environ.get("PATRONI_API_USERNAME"),
                       help="restapi.authentication username (env PATRONI_API_USERNAME); Patroni only checks it "
                            "on requests that change something, so reads work without it")
    group.add_argument("--password", default=None,
                       help="restapi.authentication password; prefer env PATRONI_API_PASSWORD, because a "
                            "command-line argument is visible in ps")
    group.add_argument("--ca-path", default=None,
                       help="PEM CA file (or hashed directory) that signed Patroni's restapi.certfile")
    group.add_argument("--client-cert", default=None,
                       help="PEM client certificate, needed with restapi.verify_client required/optional")
    group.add_argument("--client-key", default=None, help="unencrypted PEM key of --client-cert")
    group.add_argument("--insecure", action="store_true",
                       help="do not verify the server certificate (tests only)")
    group.add_argument("--timeout", type=float, default=default_timeout,
                       help=f"seconds to wait for each answer of the REST API (default {default_timeout:g})")


def client_options(args: argparse.Namespace) -> dict[str, t.Any]:
    password = args.password if args.password is not None else os.environ.get("PATRONI_API_PASSWORD")
    username = args.username
    if (username is None) != (password is None):
        missing = "--password (or PATRONI_API_PASSWORD)" if password is None else "--username"
        raise PatroniError(f"--username and --password go together: also give {missing}", kind=KIND_BAD_OPTION)
    if args.client_key and not args.client_cert:
        raise PatroniError("--client-key needs --client-cert", kind=KIND_BAD_OPTION)
    return dict(username=username, password=password, ca_path=args.ca_path, client_cert=args.client_cert,
                client_key=args.client_key, validate_certs=not args.insecure, timeout=args.timeout)


def make_client(api_url: str, options: dict[str, t.Any]) -> PatroniClient:
    return PatroniClient(api_url, **options)

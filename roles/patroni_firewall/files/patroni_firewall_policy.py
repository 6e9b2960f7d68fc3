# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the patroni_firewall role: its interface may change with any release.
"""Turn the role's inventory groups and address lists into one validated, normalised firewall policy.

Runs on the controller with the standard library only (collection roles cannot ship filter plugins). Reads
{"config": {...}, "groups": {group: [host, ...]}, "addresses": {host: address or null}} on stdin and prints
{"policy": [...]} or {"error": "..."}.
"""

from __future__ import annotations

import ipaddress
import json
import sys


class PolicyError(Exception):
    pass


def _network(value, where, fix=""):
    """Parse one address or CIDR strictly; an entry with host bits set is almost always a typo."""
    text = str(value).strip()
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        hint = ""
        if "/" in text:
            try:
                hint = f" (did you mean {ipaddress.ip_network(text, strict=False)}?)"
            except ValueError:
                pass
        raise PolicyError(
            f"patroni_firewall: {where}: {text!r} is not a valid IPv4/IPv6 address or CIDR ({exc}){hint}{fix}"
        ) from exc


def _render(net):
    # iptables/nft print a single host without a prefix length; keeping the same form makes loaded rules
    # compare equal to rendered ones.
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return net.with_prefixlen


def _group_sources(groups, addresses, group, address_hostvar, where, required=False):
    hosts = list(groups.get(group) or [])
    if required and not hosts:
        raise PolicyError(
            f"patroni_firewall: inventory group {group!r} ({where}) has no hosts; "
            f"set {where} to the group that holds them"
        )
    nets = []
    for host in hosts:
        # Ansible itself falls back to the inventory name when ansible_host is unset.
        address = addresses.get(host) or host
        nets.append(_network(
            address,
            f"inventory host {host} (group {group}, address from {address_hostvar})",
            f"; firewall rules need an IP address: set {address_hostvar} of {host} to one, "
            f"or point patroni_firewall_address_hostvar at a host variable that holds it",
        ))
    return nets


def _sorted_unique(nets):
    return sorted(set(nets), key=lambda n: (n.version, int(n.network_address), n.prefixlen))


def build_policy(config, groups, addresses):
    """Return [{name, port, ipv4: [...], ipv6: [...]}] for every managed port, sources sorted and de-duplicated.

    Every explicit list entry and every inventory address is validated here, so a bad one stops the role before
    anything is rendered or loaded on any host.
    """
    hv = config["address_hostvar"]

    def group(name_var, required=False):
        return _group_sources(groups, addresses, config[name_var], hv, f"patroni_firewall_{name_var}", required)

    def listed(name_var):
        values = config[name_var] or []
        if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
            raise PolicyError(f"patroni_firewall: patroni_firewall_{name_var} must be a list of addresses")
        return [_network(v, f"patroni_firewall_{name_var}[{i}]") for i, v in enumerate(values)]

    members = group("member_group", required=True)
    lbs = group("lb_group")
    monitoring = group("monitoring_group") + listed("monitoring_addresses")
    controller = listed("controller_addresses")
    etcd = group("etcd_group") + listed("etcd_addresses")

    ports = [
        ("patroni_api", config["api_port"], members + lbs + controller + monitoring + listed("api_extra_sources")),
        ("postgresql", config["postgresql_port"], members + lbs + listed("postgresql_allowed_networks")),
    ]
    if config["etcd_enabled"]:
        ports.append(("etcd_client", config["etcd_client_port"], members + etcd))
        ports.append(("etcd_peer", config["etcd_peer_port"], members + etcd))

    seen = {}
    policy = []
    for name, port, nets in ports:
        try:
            port = int(port)
        except (TypeError, ValueError):
            port = -1
        if not 1 <= port <= 65535:
            raise PolicyError(f"patroni_firewall: the {name} port must be 1-65535")
        if port in seen:
            raise PolicyError(
                f"patroni_firewall: the {name} and {seen[port]} ports are both {port}; give each service its own port"
            )
        seen[port] = name
        nets = _sorted_unique(nets)
        policy.append({
            "name": name,
            "port": port,
            "ipv4": [_render(n) for n in nets if n.version == 4],
            "ipv6": [_render(n) for n in nets if n.version == 6],
        })
    return policy


def main():
    try:
        data = json.load(sys.stdin)
        result = {"policy": build_policy(data["config"], data["groups"], data["addresses"])}
    except PolicyError as exc:
        result = {"error": str(exc)}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()

# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE and should only be used by this collection.
# Breaking changes can happen at any time.

"""Reading, changing and checking the security settings of a Patroni YAML configuration file."""

from __future__ import annotations

import copy
import ipaddress
import re

YAML_IMPORT_ERROR = None
try:
    import yaml
except ImportError:
    import traceback
    HAS_YAML = False
    YAML_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_YAML = True

# Keys whose presence marks a Patroni configuration; the file is refused if any is missing.
PATRONI_KEYS = ("scope", "restapi", "postgresql")
# Changing any of these makes Patroni stop and re-bind its REST server on reload (a short API gap).
REBIND_KEYS = ("listen", "certfile", "keyfile", "keyfile_password", "cafile", "ciphers", "verify_client")
MASK = "********"
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class PatroniYmlError(Exception):
    """The file or a wanted setting is unusable; the message names the path or entry and what to change."""


def read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise PatroniYmlError(f"{path} does not exist; give the path of the Patroni configuration file "
                              "(nothing was written)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PatroniYmlError(f"{path} cannot be read: {e}; nothing was written") from None


def load(path: str, text: str | None = None) -> dict:
    """Parse a patroni.yml, refusing anything that is not clearly a Patroni configuration."""
    if text is None:
        text = read(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = ""
        mark = getattr(e, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise PatroniYmlError(f"{path} is not valid YAML{where}: {problem}; fix the file, nothing was written") \
            from None
    if not isinstance(data, dict):
        raise PatroniYmlError(f"{path} is not a Patroni configuration: its top level is "
                              f"{type(data).__name__}, not a mapping; nothing was written")
    missing = [k for k in PATRONI_KEYS if k not in data]
    if missing:
        raise PatroniYmlError(f"{path} is not a Patroni configuration: top-level key(s) {', '.join(missing)} "
                              "not found; nothing was written")
    if not isinstance(data.get("restapi"), dict):
        raise PatroniYmlError(f"{path} is not a Patroni configuration: restapi is not a mapping; nothing was written")
    return data


def dump(data: dict) -> str:
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=False, allow_unicode=True, width=120)


# A top-level mapping key at column 0 (plain, no quotes), the only kind of line splice() moves around.
_TOP_KEY = re.compile(r"^([A-Za-z_][\w.-]*)[ \t]*:(?:[ \t]|$)")


def _top_level_blocks(lines: list) -> list | None:
    """[(key, first line, end line)] of each top-level section, or None when the layout is not plain block style.

    A section ends before the blank and column-0 comment lines that lead into the next key, so a comment written
    above a section stays with that section.
    """
    starts = []
    for i, line in enumerate(lines):
        if not line.strip() or line.startswith((" ", "\t", "#")):
            continue
        m = _TOP_KEY.match(line)
        if m:
            starts.append((m.group(1), i))
        elif not (line.rstrip() == "---" and not starts):
            return None  # flow style, a second document, a quoted key...: leave it to the dumper
    blocks = []
    for n, (key, first) in enumerate(starts):
        end = starts[n + 1][1] if n + 1 < len(starts) else len(lines)
        while end > first + 1 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
            end -= 1
        blocks.append((key, first, end))
    return blocks


def splice(text: str, before: dict, after: dict) -> str | None:
    """The original text with only the top-level sections that differ re-dumped, so comments, quoting and layout
    of every other section stay as the user wrote them.

    Returns None when that cannot be done exactly (the layout is unusual, or the result would not load back as
    `after`); the caller then dumps the whole file.
    """
    lines = text.splitlines(keepends=True)
    blocks = _top_level_blocks(lines)
    if blocks is None or [key for key, dummy, dummy2 in blocks] != list(before):
        return None
    pieces = []
    cursor = 0
    for key, first, end in blocks:
        pieces.append("".join(lines[cursor:first]))  # what leads into the section: blank lines, comments
        cursor = end
        if key not in after:
            continue
        if after[key] == before[key]:
            pieces.append("".join(lines[first:end]))
        else:
            pieces.append(dump({key: after[key]}))
        if not pieces[-1].endswith("\n"):
            pieces[-1] += "\n"
    pieces.append("".join(lines[cursor:]))
    result = "".join(pieces)
    added = {k: v for k, v in after.items() if k not in before}
    if added:
        if result and not result.endswith("\n"):
            result += "\n"
        result += dump(added)
    try:
        if yaml.safe_load(result) != after:
            return None
    except yaml.YAMLError:
        return None
    return result


def listen_host(listen) -> str:
    text = str(listen or "").strip()
    if text.startswith("["):
        return text[1:text.find("]")] if "]" in text else text[1:]
    if text.count(":") == 1:
        return text.rsplit(":", 1)[0]
    if text.count(":") > 1:
        # A bare IPv6 address without port, or '::'.
        return text
    return text


def is_dual_stack(listen) -> bool:
    """Patroni binds '::' for these, and IPv4 clients then show up as ::ffff:a.b.c.d (reference section 6.1)."""
    return listen_host(listen) in ("", "*", "::")


def check_allowlist_entry(entry) -> str:
    """Validate one allowlist entry the way Patroni will read it, but fail loudly where Patroni only logs."""
    text = str(entry).strip()
    if "/" in text:
        try:
            return str(ipaddress.ip_network(text, strict=True))
        except ValueError as e:
            hint = ""
            try:
                hint = f"; did you mean {ipaddress.ip_network(text, strict=False)}?"
            except ValueError:
                pass
            raise PatroniYmlError(f"allowlist entry {entry!r} is not a valid CIDR network: {e}{hint}") from None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    name = text.rstrip(".")
    if name and len(name) <= 253 and all(_HOST_LABEL.match(label) for label in name.split(".")) \
            and not name.replace(".", "").isdigit():
        return text
    raise PatroniYmlError(f"allowlist entry {entry!r} is neither an IP address, a CIDR network nor a host name")


def ipv4_mapped(entry: str) -> str | None:
    """The ::ffff: form of an IPv4 address or network, None for anything else."""
    if "/" in entry:
        net = ipaddress.ip_network(entry, strict=False)
        if net.version == 4:
            return f"::ffff:{net.network_address}/{96 + net.prefixlen}"
        return None
    try:
        addr = ipaddress.ip_address(entry)
    except ValueError:
        return None
    return f"::ffff:{addr}" if addr.version == 4 else None


def build_allowlist(entries: list, listen, dual_stack_allowlist: bool, warnings: list) -> list:
    out = []
    for e in entries:
        v = check_allowlist_entry(e)
        if v not in out:
            out.append(v)
    if dual_stack_allowlist and is_dual_stack(listen):
        for v in list(out):
            mapped = ipv4_mapped(v)
            if mapped and mapped not in out:
                out.append(mapped)
            elif mapped is None and "/" not in v and not _is_ip(v):
                warnings.append(f"allowlist entry {v!r} is a host name and restapi.listen {listen!r} is dual-stack: "
                                "if it resolves to IPv4 only, its clients arrive as ::ffff: addresses and get 403; "
                                "list its IP address instead")
    return out


def _is_ip(v: str) -> bool:
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return False
    return True


def _set(section: dict, key: str, value, changed: list, prefix: str) -> None:
    """None leaves a key alone, '' (or an empty list) removes it, anything else sets it."""
    if value is None:
        return
    if value == "" or value == []:
        if key in section:
            del section[key]
            changed.append(f"{prefix}.{key}")
        return
    if section.get(key) != value:
        section[key] = value
        changed.append(f"{prefix}.{key}")


def _set_auth(section: dict, auth, changed: list, prefix: str) -> None:
    if auth is None:
        return
    if not auth.get("username") and not auth.get("password"):
        _set(section, "authentication", "", changed, prefix)
        return
    wanted = {"username": auth["username"], "password": auth["password"]}
    current = section.get("authentication")
    if not isinstance(current, dict) or {k: current.get(k) for k in wanted} != wanted:
        merged = dict(current) if isinstance(current, dict) else {}
        merged.update(wanted)
        section["authentication"] = merged
        changed.append(f"{prefix}.authentication")


# Tags Patroni itself reads. It truth-tests the boolean ones, so a quoted "false" would count as true.
BOOL_TAGS = ("nofailover", "noloadbalance", "clonefrom", "nosync", "nostream")
INT_TAGS = ("failover_priority", "sync_priority")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def normalise_tags(tags: dict) -> dict:
    """Wanted tags with Patroni's own tags in the types Patroni reads; None (remove the tag) is kept."""
    out = {}
    for key, value in tags.items():
        if value is None:
            out[key] = None
        elif key in BOOL_TAGS:
            text = str(value).strip().lower()
            if isinstance(value, bool) or text in _TRUE + _FALSE:
                out[key] = value if isinstance(value, bool) else text in _TRUE
            else:
                raise PatroniYmlError(f"tags.{key} {value!r} is not a boolean; Patroni tests this tag for truth, so "
                                      f"give true or false (or null to remove it); nothing was written")
        elif key in INT_TAGS:
            if isinstance(value, bool) or not re.match(r"^-?[0-9]+$", str(value).strip()):
                raise PatroniYmlError(f"tags.{key} {value!r} is not an integer; give a whole number (or null to "
                                      f"remove it); nothing was written")
            out[key] = int(str(value).strip())
        elif key == "replicatefrom":
            out[key] = str(value)
        else:
            out[key] = value
    return out


def _apply_tags(new: dict, tags: dict, changed: list) -> None:
    section = dict(new["tags"]) if isinstance(new.get("tags"), dict) else {}
    count = len(changed)
    for key, value in normalise_tags(tags).items():
        if value is None:
            if key in section:
                del section[key]
                changed.append(f"tags.{key}")
        elif key not in section or section[key] != value or type(section[key]) is not type(value):
            section[key] = value
            changed.append(f"tags.{key}")
    if len(changed) == count:
        return
    if section:
        new["tags"] = section
    else:
        new.pop("tags", None)  # a tags section with nothing left in it


def apply(data: dict, restapi: dict | None, ctl: dict | None, dual_stack_allowlist: bool = True,
          tags: dict | None = None) -> tuple:
    """Return (new data, changed dotted keys, warnings); data itself is not modified."""
    new = copy.deepcopy(data)
    changed: list = []
    warnings: list = []
    ra = new["restapi"]
    if restapi:
        for key in ("certfile", "keyfile", "keyfile_password", "cafile", "verify_client"):
            _set(ra, key, restapi.get(key), changed, "restapi")
        _set_auth(ra, restapi.get("authentication"), changed, "restapi")
        if restapi.get("allowlist") is not None:
            allow = build_allowlist(restapi["allowlist"], ra.get("listen"), dual_stack_allowlist, warnings)
            _set(ra, "allowlist", allow, changed, "restapi")
        if restapi.get("allowlist_include_members") is not None:
            _set(ra, "allowlist_include_members", bool(restapi["allowlist_include_members"]), changed, "restapi")
    if ctl:
        section = new.get("ctl")
        if not isinstance(section, dict):
            section = {}
        for key in ("cacert", "certfile", "keyfile", "keyfile_password"):
            _set(section, key, ctl.get(key), changed, "ctl")
        if ctl.get("insecure") is not None:
            _set(section, "insecure", bool(ctl["insecure"]), changed, "ctl")
        _set_auth(section, ctl.get("authentication"), changed, "ctl")
        if section:
            new["ctl"] = section
        elif "ctl" in new:
            del new["ctl"]
            changed.append("ctl")
    if tags:
        _apply_tags(new, tags, changed)
    if ra.get("allowlist_include_members") and is_dual_stack(ra.get("listen")):
        warnings.append(f"restapi.listen {ra.get('listen')!r} is dual-stack: allowlist_include_members matches "
                        "members by their IPv4 address, which never equals the ::ffff: form they arrive with; "
                        "list the members' addresses in the allowlist too (the patroni_api_security role does)")
    if ra.get("verify_client") in ("optional", "required") and not ra.get("certfile"):
        raise PatroniYmlError(f"restapi.verify_client {ra['verify_client']} needs restapi.certfile (TLS); set "
                              "certfile/keyfile or verify_client: none")
    if ra.get("verify_client") in ("optional", "required") and not ra.get("cafile"):
        raise PatroniYmlError(f"restapi.verify_client {ra['verify_client']} needs restapi.cafile, the CA that "
                              "client certificates are checked against")
    return new, changed, warnings


def needs_rebind(changed: list) -> bool:
    return any(k.startswith("restapi.") and k.split(".", 1)[1] in REBIND_KEYS for k in changed)


def api_url(data: dict) -> str:
    ra = data.get("restapi") or {}
    scheme = "https" if ra.get("certfile") else "http"
    address = ra.get("connect_address") or ra.get("listen") or ""
    return f"{scheme}://{address}"


def masked(data, other=None):
    """Copy of data with every password-like value hidden; 'other' is the before-state, to flag changed secrets."""
    if isinstance(data, dict):
        out = {}
        for k, v in data.items():
            o = other.get(k) if isinstance(other, dict) else None
            if "password" in str(k).lower() and not isinstance(v, (dict, list)):
                out[k] = MASK if other is None or o == v else MASK + " (changed)"
            else:
                out[k] = masked(v, o if other is not None else None)
        return out
    if isinstance(data, list):
        return [masked(v) for v in data]
    return data


def tls_file_checks(data: dict) -> list:
    """(what, certfile, keyfile, password) pairs Patroni will load, for the caller to check before writing."""
    out = []
    ra = data.get("restapi") or {}
    if ra.get("certfile"):
        out.append(("restapi", ra["certfile"], ra.get("keyfile") or ra["certfile"], ra.get("keyfile_password")))
    ctl = data.get("ctl") or {}
    if isinstance(ctl, dict) and ctl.get("certfile"):
        out.append(("ctl", ctl["certfile"], ctl.get("keyfile") or ctl["certfile"], ctl.get("keyfile_password")))
    return out


def ca_files(data: dict) -> list:
    out = []
    ra = data.get("restapi") or {}
    if ra.get("cafile"):
        out.append(("restapi.cafile", ra["cafile"]))
    ctl = data.get("ctl") or {}
    if isinstance(ctl, dict) and ctl.get("cacert"):
        out.append(("ctl.cacert", ctl["cacert"]))
    return out

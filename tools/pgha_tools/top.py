# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""patroni-top: a live view of one or many Patroni clusters, read through the collection's REST client."""

from __future__ import annotations

import argparse
import datetime
import json
import signal
import sys
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from ansible_collections.pgha.patroni.plugins.module_utils._api_client import (
    PatroniError,
    fetch_many,
    member_base_url,
    normalise_role,
    parse_api_url,
    same_api_url,
)
from ansible_collections.pgha.patroni.plugins.module_utils._facts import LEADER_ROLES, gather_facts
from ansible_collections.pgha.patroni.tools.pgha_tools.common import (
    add_connection_options,
    client_options,
    make_client,
)

DEFAULT_INTERVAL = 5.0
DEFAULT_TIMEOUT = 3.0
HEALTHY_STATES = ("streaming", "running")

# Styles the renderer attaches to text; the curses front end maps them to attributes, plain output drops them.
NORMAL, TITLE, HEADER, PRIMARY, BAD, WARN, DIM = "normal", "title", "header", "primary", "bad", "warn", "dim"

Segment = t.Tuple[str, str]
Line = t.List[Segment]


class Target:
    """One cluster to watch: the API URLs to ask, and every member ever seen, so a member whose Patroni stopped (and
    whose key therefore left /cluster) stays on screen as unreachable instead of silently vanishing."""

    def __init__(self, label: str, seeds: list[str], known: dict[str, str | None] | None = None) -> None:
        self.label = label
        self.seeds = list(dict.fromkeys(seeds))
        self.known: dict[str, str | None] = dict(known or {})
        self.scope: str | None = None

    def remember(self, api_url: str | None, name: str | None) -> None:
        if not api_url:
            return
        for url in self.known:
            if same_api_url(url, api_url):
                if name:
                    self.known[url] = name
                return
        self.known[api_url] = name


# ----------------------------------------------------------------------------------------------------------------
# Where the clusters are


def targets_from_urls(urls: list[str]) -> list[Target]:
    targets = []
    for url in urls:
        base = parse_api_url(url, option="URL")[0]
        targets.append(Target(base, [url], {base: None}))
    return targets


def targets_from_inventory(path: str, pattern: str) -> list[Target]:
    """Hosts of an Ansible inventory pattern, one target per patroni_scope (the collection's inventory variable)."""
    try:
        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader
        from ansible.template import Templar
        from ansible.vars.manager import VariableManager
    except ImportError:
        raise PatroniError(f"--inventory needs ansible-core in {sys.executable}: run the tool with the Python that "
                           "runs ansible-playbook, or give API URLs instead") from None
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[path])
    variables = VariableManager(loader=loader, inventory=inventory)
    hosts = inventory.get_hosts(pattern)
    if not hosts:
        raise PatroniError(f"the inventory {path} has no hosts matching '{pattern}': give the group of the Patroni "
                           "members (e.g. --group patroni)")
    by_scope: dict[str, Target] = {}
    for host in hosts:
        hostvars = variables.get_vars(host=host)
        templar = Templar(loader=loader, variables=hostvars)
        address = templar.template(hostvars.get("ansible_host") or host.name)
        url = templar.template(hostvars.get("patroni_api_url") or f"http://{address}:8008")
        scope = str(templar.template(hostvars.get("patroni_scope") or pattern))
        target = by_scope.setdefault(scope, Target(scope, []))
        target.seeds.append(str(url))
        target.remember(parse_api_url(str(url), option=f"patroni_api_url of {host.name}")[0], host.name)
    return list(by_scope.values())


# ----------------------------------------------------------------------------------------------------------------
# One refresh


def human_bytes(value: int | None) -> str:
    """PostgreSQL's spelling (kB, MB... 1024-based), the units Patroni's ?lag= and maximum_lag_on_failover use."""
    if value is None:
        return "unknown"
    if value < 1024:
        return f"{value} B"
    amount = float(value)
    for unit in ("kB", "MB", "GB", "TB"):
        amount /= 1024
        if amount < 1024 or unit == "TB":
            return f"{amount:.1f} {unit}"
    return f"{value} B"  # not reached


def _last_failover(history: list[dict[str, t.Any]] | None) -> dict[str, t.Any] | None:
    if not history:
        return None
    last = history[-1]
    return {"timeline": last["timeline"], "new_timeline": (last["timeline"] or 0) + 1, "lsn": last["lsn"],
            "reason": last["reason"], "timestamp": last["timestamp"], "new_leader": last["new_leader"]}


def _reason_for(unreachable: list[dict[str, t.Any]], api_url: str | None, name: str | None) -> str | None:
    for item in unreachable:
        if item.get("path") != "/patroni":
            continue
        if (api_url and same_api_url(item.get("api_url"), api_url)) or (name and item.get("name") == name):
            return item.get("reason")
    return None


def _member_row(member: dict[str, t.Any], reason: str | None) -> dict[str, t.Any]:
    reachable = member.get("reachable")
    return {
        "name": member["name"],
        "host": member["host"],
        "api_url": member["api_url"],
        "role": member["role"],
        "sync": member["sync"],
        "quorum": member["quorum"],
        "state": member["state"],
        "timeline": member["timeline"],
        "lag": member["lag"],
        "lag_human": None if member["role"] in LEADER_ROLES else human_bytes(member["lag"]),
        "pending_restart": member["pending_restart"],
        "tags": member["tags"],
        "version": member.get("version"),
        "in_cluster": True,
        "reachable": reachable if reachable is not None else reason is None,
        "reason": reason,
    }


def _absent_rows(target: Target, members: list[dict[str, t.Any]], client: t.Any) -> list[dict[str, t.Any]]:
    """Members seen before (or listed in the inventory) that /cluster no longer has: ask each one directly."""
    missing = [(url, name) for url, name in target.known.items()
               if not any(same_api_url(url, m["api_url"]) or (name and name == m["name"]) for m in members)]
    if not missing:
        return []
    urls = {}
    for url, name in missing:
        try:
            urls[client.for_url(url).url_for("/patroni")] = (url, name)
        except PatroniError:
            continue
    results = fetch_many(client, list(urls), expect=(200, 503))
    rows = []
    for full, (url, name) in urls.items():
        result = results[full]
        row = {"name": name, "host": urlsplit(url).hostname, "api_url": url,
               "role": None, "sync": False, "quorum": False, "state": None, "timeline": None, "lag": None,
               "lag_human": None, "pending_restart": False, "tags": {}, "version": None, "in_cluster": False,
               "reachable": False, "reason": None}
        if isinstance(result, PatroniError):
            row["reason"] = f"not in /cluster (no member key in the DCS); {result.msg}"
        else:
            try:
                doc = result.json()
            except PatroniError as err:
                doc = None
                row["reason"] = f"not in /cluster; {err.msg}"
            if isinstance(doc, dict):
                row.update(reachable=True, role=normalise_role(doc.get("role")), state=doc.get("state"),
                           timeline=doc.get("timeline"), pending_restart=bool(doc.get("pending_restart")),
                           tags=dict(doc.get("tags") or {}), version=(doc.get("patroni") or {}).get("version"))
                row["name"] = row["name"] or (doc.get("patroni") or {}).get("name")
                row["reason"] = ("not in /cluster: Patroni answers but has no member key in the DCS (DCS "
                                 "unreachable from it, or it is starting)")
        rows.append(row)
    return rows


def poll(target: Target, options: dict[str, t.Any]) -> dict[str, t.Any]:
    """What a user wants to see about one cluster, as plain data (also the --json output)."""
    errors: list[str] = []
    snapshot: dict[str, t.Any] = {"label": target.label, "scope": target.scope, "source": None, "leader": None,
                                  "paused": False, "scheduled_switchover": None, "last_failover": None,
                                  "members": [], "warnings": [], "error": None}
    for seed in target.seeds:
        try:
            client = make_client(seed, options)
            facts, warnings = gather_facts(client, ["cluster", "history"],
                                           member_api_urls=[s for s in target.seeds if s != seed])
        except PatroniError as err:
            errors.append(err.msg)
            continue
        cluster = facts.get("cluster")
        if cluster is None:
            errors.append(f"{client.api_url} could not read /cluster (see its log; usually the DCS is unreachable)")
            continue
        # Put the seed that answered first next time: the others may be down for a while.
        target.seeds.remove(seed)
        target.seeds.insert(0, seed)
        target.scope = cluster["scope"] or target.scope
        members = [_member_row(m, _reason_for(facts["unreachable"], m["api_url"], m["name"]))
                   for m in cluster["members"]]
        for member in cluster["members"]:
            target.remember(member_base_url(member["api_url"]), member["name"])
        members += _absent_rows(target, cluster["members"], client)
        members.sort(key=lambda m: (m["name"] or "", m["api_url"] or ""))
        snapshot.update(scope=target.scope, source=client.api_url, leader=cluster["leader"],
                        paused=cluster["paused"], scheduled_switchover=cluster["scheduled_switchover"],
                        last_failover=_last_failover(facts.get("history")), members=members,
                        warnings=list(warnings) + [f"{u['path']} on {u['api_url']}: {u['reason']}"
                                                   for u in facts["unreachable"] if u["path"] != "/patroni"])
        snapshot["label"] = target.scope or target.label
        return snapshot
    snapshot["error"] = "; ".join(dict.fromkeys(errors)) or "no API URL to ask"
    return snapshot


def merge_same_scope(targets: list[Target], snapshots: list[dict[str, t.Any]]) -> tuple[list[Target], list[dict]]:
    """Several seed URLs of one cluster become one target: one block on screen, the others as fallbacks."""
    kept_targets: list[Target] = []
    kept: list[dict[str, t.Any]] = []
    by_scope: dict[str, Target] = {}
    for target, snap in zip(targets, snapshots):
        scope = snap.get("scope")
        if scope and scope in by_scope:
            first = by_scope[scope]
            first.seeds += [s for s in target.seeds if s not in first.seeds]
            for url, name in target.known.items():
                first.remember(url, name)
            continue
        if scope:
            by_scope[scope] = target
        kept_targets.append(target)
        kept.append(snap)
    return kept_targets, kept


def poll_all(targets: list[Target], options: dict[str, t.Any], pool: ThreadPoolExecutor) -> list[dict[str, t.Any]]:
    return list(pool.map(lambda target: poll(target, options), targets))


# ----------------------------------------------------------------------------------------------------------------
# Rendering (pure: lists of styled segments, so tests can read what the screen would show)


def _when(timestamp: str | None, now: datetime.datetime) -> str:
    if not timestamp:
        return "at an unrecorded time"
    try:
        moment = datetime.datetime.fromisoformat(str(timestamp))
    except ValueError:
        return f"at {timestamp}"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 120:
        ago = f"{seconds} s ago"
    elif seconds < 7200:
        ago = f"{seconds // 60} min ago"
    elif seconds < 172800:
        ago = f"{seconds // 3600} h ago"
    else:
        ago = f"{seconds // 86400} days ago"
    return f"at {moment.astimezone(datetime.timezone.utc):%Y-%m-%d %H:%M:%S} UTC ({ago})"


def _role_text(member: dict[str, t.Any]) -> str:
    role = member["role"] or "?"
    if member["sync"]:
        return "sync replica"
    if member["quorum"]:
        return "quorum replica"
    return str(role)


COLUMNS = ("", "MEMBER", "HOST", "ROLE", "STATE", "TL", "LAG BYTES", "LAG", "RESTART", "TAGS")


def _cells(member: dict[str, t.Any]) -> list[str]:
    is_leader = member["role"] in LEADER_ROLES and member["in_cluster"]
    marker = "*" if is_leader else ("!" if not member["reachable"] or not member["in_cluster"] else " ")
    if not member["in_cluster"] and not member["reachable"]:
        state = "unreachable"
    elif not member["in_cluster"]:
        state = f"{member['state'] or '?'} (no key)"
    else:
        state = member["state"] or "?"
        if not member["reachable"]:
            state += " (API down)"
    lag_bytes = "" if is_leader or not member["in_cluster"] else \
        ("unknown" if member["lag"] is None else str(member["lag"]))
    lag = "" if is_leader or not member["in_cluster"] else member["lag_human"] or ""
    tags = ",".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in sorted(member["tags"].items()))
    return [marker, member["name"] or "?", member["host"] or "", _role_text(member) if member["role"] else "?",
            state, "" if member["timeline"] is None else str(member["timeline"]), lag_bytes, lag,
            "pending" if member["pending_restart"] else "", tags]


def _member_style(member: dict[str, t.Any]) -> str:
    if not member["reachable"] or not member["in_cluster"]:
        return BAD
    if member["role"] in LEADER_ROLES:
        return PRIMARY
    if member["state"] not in HEALTHY_STATES:
        return WARN
    return NORMAL


def render(snapshots: list[dict[str, t.Any]], now: datetime.datetime | None = None,
           interval: float | None = None) -> list[Line]:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    title = f"patroni-top  {len(snapshots)} cluster{'s' if len(snapshots) != 1 else ''}  {now:%H:%M:%S} UTC"
    if interval:
        title += f"  refresh every {interval:g} s  Ctrl-C quits"
    lines: list[Line] = [[(title, TITLE)]]
    for snap in snapshots:
        lines.append([])
        head: Line = [(f"cluster {snap['label']}", HEADER)]
        if snap["error"]:
            lines.append(head + [("  UNREACHABLE", BAD)])
            lines.append([(f"  cannot read the cluster: {snap['error']}", BAD)])
            continue
        members = snap["members"]
        up = sum(1 for m in members if m["reachable"] and m["in_cluster"])
        head.append((f"  leader {snap['leader']}" if snap["leader"] else "  NO LEADER",
                     NORMAL if snap["leader"] else BAD))
        head.append((f"  {up}/{len(members)} members up", NORMAL if up == len(members) else WARN))
        if snap["paused"]:
            head.append(("  PAUSED (no automatic failover)", WARN))
        if snap["scheduled_switchover"]:
            sched = snap["scheduled_switchover"]
            head.append((f"  switchover scheduled at {sched.get('at')}", WARN))
        lines.append(head)
        last = snap["last_failover"]
        if last:
            who = f" to {last['new_leader']}" if last.get("new_leader") else ""
            lines.append([(f"  last failover: timeline {last['timeline']} -> {last['new_timeline']}{who} "
                           f"{_when(last['timestamp'], now)}", DIM)])
        else:
            lines.append([("  last failover: none (timeline 1)", DIM)])
        table = [list(COLUMNS)] + [_cells(m) for m in members]
        widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]

        def fmt(row: list[str]) -> str:
            return "  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()

        lines.append([(fmt(table[0]), DIM)])
        for member, row in zip(members, table[1:]):
            lines.append([(fmt(row), _member_style(member))])
            if member["reason"]:
                lines.append([(f"      {member['reason']}", BAD if not member["reachable"] else WARN)])
        for warning in snap["warnings"]:
            lines.append([(f"  warning: {warning}", WARN)])
    return lines


def plain(lines: list[Line]) -> str:
    return "\n".join("".join(text for text, _style in line) for line in lines) + "\n"


def as_json(snapshots: list[dict[str, t.Any]], now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return json.dumps({"generated_at": now.isoformat(timespec="seconds"), "clusters": snapshots}, sort_keys=True)


# ----------------------------------------------------------------------------------------------------------------
# Front ends


class Screen:
    """curses, so the terminal's own capabilities (terminfo) decide the escape codes and curses restores the
    terminal on the way out."""

    def __init__(self, stdscr: t.Any) -> None:
        import curses
        self.curses = curses
        self.stdscr = stdscr
        try:
            curses.curs_set(0)
        except curses.error:
            pass  # some terminals cannot hide the cursor; the view works anyway
        stdscr.nodelay(True)
        self.attrs = {NORMAL: curses.A_NORMAL, TITLE: curses.A_REVERSE, HEADER: curses.A_BOLD,
                      PRIMARY: curses.A_BOLD, BAD: curses.A_BOLD, WARN: curses.A_NORMAL, DIM: curses.A_DIM}
        if curses.has_colors():
            curses.start_color()
            try:
                curses.use_default_colors()
                background = -1
            except curses.error:
                background = curses.COLOR_BLACK
            for number, (style, color) in enumerate(((PRIMARY, curses.COLOR_GREEN), (BAD, curses.COLOR_RED),
                                                     (WARN, curses.COLOR_YELLOW)), start=1):
                curses.init_pair(number, color, background)
                self.attrs[style] |= curses.color_pair(number)

    def draw(self, lines: list[Line]) -> None:
        curses = self.curses
        height, width = self.stdscr.getmaxyx()
        self.stdscr.erase()
        shown = lines if len(lines) <= height else lines[:height - 1] + [[(
            f"... {len(lines) - height + 1} more lines: enlarge the terminal", DIM)]]
        for row, line in enumerate(shown):
            col = 0
            for text, style in line:
                if col >= width - 1:
                    break
                try:
                    self.stdscr.addnstr(row, col, text, width - 1 - col, self.attrs.get(style, curses.A_NORMAL))
                except curses.error:
                    pass  # writing the bottom-right cell raises after the text is drawn
                col += len(text)
        self.stdscr.refresh()

    def wait(self, seconds: float) -> None:
        """Sleep, but notice window resizes; keys are read only to be thrown away (the view is keyboard-free)."""
        deadline = time.monotonic() + seconds
        while True:
            key = self.stdscr.getch()
            if key == self.curses.KEY_RESIZE:
                self.curses.update_lines_cols()
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.1, left))


def _live(targets: list[Target], options: dict[str, t.Any], interval: float, pool: ThreadPoolExecutor) -> None:
    import curses

    def loop(stdscr: t.Any) -> None:
        screen = Screen(stdscr)
        screen.draw([[("patroni-top: asking " + ", ".join(t.label for t in targets) + " ...", TITLE)]])
        lines: list[Line] = []
        next_poll = 0.0
        watched = list(targets)
        while True:
            if time.monotonic() >= next_poll:
                started = time.monotonic()
                watched, snaps = merge_same_scope(watched, poll_all(watched, options, pool))
                lines = render(snaps, interval=interval)
                next_poll = started + interval
            screen.draw(lines)
            screen.wait(max(0.0, next_poll - time.monotonic()))

    curses.wrapper(loop)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patroni-top",
        description="Live view of Patroni clusters through their REST API: role, state, timeline and lag of every "
                    "member, the last failover, pause state. Read-only: it only sends GET requests.")
    parser.add_argument("urls", nargs="*", metavar="URL",
                        help="REST API URL of a member (http(s)://host:8008); several members of one cluster are "
                             "shown as one cluster, members of other clusters as more clusters")
    parser.add_argument("-i", "--inventory", help="Ansible inventory file (needs ansible-core); members are "
                                                  "grouped into clusters by patroni_scope")
    parser.add_argument("-g", "--group", default="patroni",
                        help="host pattern of the Patroni members in --inventory (default: patroni)")
    parser.add_argument("-n", "--interval", type=float, default=DEFAULT_INTERVAL,
                        help=f"seconds between refreshes (default {DEFAULT_INTERVAL:g})")
    parser.add_argument("--once", action="store_true", help="print one refresh and exit (for scripts)")
    parser.add_argument("--json", action="store_true",
                        help="print JSON instead of the table: one document with --once, else one line per refresh")
    add_connection_options(parser, DEFAULT_TIMEOUT)
    return parser


def _on_sigterm(signum: int, frame: t.Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.urls and not args.inventory:
        parser.error("give at least one member URL or --inventory FILE")
    if args.interval <= 0:
        parser.error("--interval must be more than 0 seconds")
    signal.signal(signal.SIGTERM, _on_sigterm)
    pool = ThreadPoolExecutor(max_workers=8)
    try:
        options = client_options(args)
        targets = targets_from_urls(args.urls)
        if args.inventory:
            targets += targets_from_inventory(args.inventory, args.group)
        make_client(targets[0].seeds[0], options)  # fail on bad TLS file options before the screen opens
        if args.once or args.json:
            while True:
                targets, snaps = merge_same_scope(targets, poll_all(targets, options, pool))
                sys.stdout.write(as_json(snaps) + "\n" if args.json else plain(render(snaps)))
                sys.stdout.flush()
                if args.once:
                    return 1 if any(s["error"] for s in snaps) else 0
                time.sleep(args.interval)
        if not sys.stdout.isatty():
            sys.stderr.write("patroni-top: standard output is not a terminal: use --once or --json\n")
            return 2
        _live(targets, options, args.interval, pool)
        return 0
    except PatroniError as err:
        sys.stderr.write(f"patroni-top: {err.msg}\n")
        return 2
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        return 0
    finally:
        pool.shutdown(wait=False, cancel_futures=True)

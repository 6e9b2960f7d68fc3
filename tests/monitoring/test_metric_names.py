"""The Grafana dashboard and the alert rules only use metric names Patroni really exports.

The reference list is fixtures/*.prom: GET /metrics captured from a primary and a replica of the lab's Patroni 4.1.5
(see the header of each file). Prometheus' own "up" is the one name allowed on top. Every dashboard query must also
parse: it is fed to `promtool check rules` as a recording rule.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DASHBOARD = REPO / "roles" / "patroni_prometheus" / "files" / "grafana" / "patroni.json"
PROMETHEUS_OWN = {"up"}

# Grafana variables replaced by values Prometheus accepts, so the queries can be parsed as they will run.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h", "$job": "patroni", "$scope": ".*",
                "${datasource}": "x"}
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
            "inf", "nan"}
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
IDENT = re.compile(r"(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*")


def captured_names() -> set[str]:
    names = set()
    for capture in sorted((HERE / "fixtures").glob("*.prom")):
        for line in capture.read_text().splitlines():
            if line and not line.startswith("#"):
                names.add(re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group(0))
    return names


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or durations."""
    text = re.sub(r'"(\\.|[^"\\])*"', '""', expr)       # label values and other strings
    text = re.sub(r"\{[^}]*\}", "", text)                # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)               # ranges and subqueries
    text = GROUPING.sub(" ", text)                       # label lists of by/on/...
    names = set()
    for match in IDENT.finditer(text):
        rest = text[match.end():].lstrip()
        word = match.group(0)
        if rest.startswith("(") or word.lower() in KEYWORDS:
            continue                                      # a function call or an operator keyword
        names.add(word)
    return names


def substitute(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    return expr


def dashboard_queries() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    queries = []

    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                queries.append((panel["title"], target["expr"]))
            walk(panel.get("panels", []))

    walk(dash["panels"])
    for annotation in dash["annotations"]["list"]:
        if "expr" in annotation:
            queries.append((f"annotation {annotation['name']}", annotation["expr"]))
    return queries


def test_capture_is_patroni_4_1():
    names = captured_names()
    assert "patroni_primary" in names and "patroni_postgres_state" in names
    assert "patroni_master" not in names  # removed in 4.0: the capture really is from 4.x
    assert len(names) == 23


def test_extractor_sees_every_metric():
    expr = ('clamp_min(max by (scope) (patroni_xlog_location{job="x"}) - on (scope) group_right '
            'max by (scope, name) (foo_bar{a="b"} and on (scope, name) patroni_replica == 1), 0) '
            'or changes((max(patroni_postgres_timeline > 0))[5m:]) unless up offset 5m')
    assert metric_names(expr) == {"patroni_xlog_location", "foo_bar", "patroni_replica",
                                  "patroni_postgres_timeline", "up"}


def test_dashboard_panels_have_queries():
    dash = json.loads(DASHBOARD.read_text())
    for panel in dash["panels"]:
        if panel["type"] != "row":
            assert panel.get("targets"), f"panel {panel['title']!r} has no query"
    titles = {panel["title"] for panel in dash["panels"]}
    # what issue 6 asks the dashboard to show
    assert {"Role per member", "Replay lag", "Timeline changes", "API reachability"} <= titles


def test_dashboard_uses_only_exported_metrics():
    allowed = captured_names() | PROMETHEUS_OWN
    queries = dashboard_queries()
    assert len(queries) >= 15
    dash = json.loads(DASHBOARD.read_text())
    for variable in dash["templating"]["list"]:
        if variable["type"] == "query":
            inner = re.match(r"label_values\((.*),\s*\w+\)$", variable["definition"]).group(1)
            queries.append((f"variable {variable['name']}", inner))
    for title, expr in queries:
        unknown = metric_names(substitute(expr)) - allowed
        assert not unknown, f"dashboard {title!r}: {sorted(unknown)} not in the captured /metrics"


def test_dashboard_queries_parse(tmp_path):
    promtool = shutil.which(os.environ.get("PROMTOOL", "promtool"))
    if not promtool:
        pytest.skip("promtool not installed")
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": substitute(expr)} for i, (_title, expr) in enumerate(dashboard_queries())
    ]}]}
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rules_use_only_exported_or_recorded_metrics():
    rendered = os.environ.get("PGHA_RENDERED_RULES")
    if not rendered:
        pytest.skip("PGHA_RENDERED_RULES not set: run tests/monitoring/run.sh, which renders the rules first")
    groups = yaml.safe_load(Path(rendered).read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    recorded = {rule["record"] for rule in rules if "record" in rule}
    allowed = captured_names() | PROMETHEUS_OWN | recorded
    for rule in rules:
        unknown = metric_names(rule["expr"]) - allowed
        assert not unknown, f"rule {rule.get('record') or rule.get('alert')}: {sorted(unknown)} not exported"
    assert {rule["alert"] for rule in rules if "alert" in rule} == {
        "PatroniApiDown", "PatroniNoLeader", "PatroniMultipleLeaders", "PatroniReplicaLagHigh",
        "PatroniReplicaNotStreaming", "PatroniPendingRestart", "PatroniClusterPausedTooLong",
        "PatroniTimelineChanged", "PatroniRestApiCertificateExpiresSoon", "PatroniRestApiCertificateExpiresVerySoon",
    }

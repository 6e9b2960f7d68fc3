"""patroni_prometheus on the lab: a real Prometheus (Debian's binary) scrapes every member, and the
"replica not streaming" alert fires when a replica's Patroni is stopped and clears when it is back.

Prometheus runs inside lb1's namespace on lb1's address (10.213.x.5:9090), started by the fixture from a
placeholder configuration; the role then writes the real one and reloads it over HTTP (--web.enable-lifecycle).
Intervals are 1 s and the alert delays 5 s so a run takes about a minute. Every wait is bounded.
"""
from __future__ import annotations

import json
import shlex
import time

import pytest
import requests

CLUSTER = "c1"
NOT_STREAMING = "PatroniReplicaNotStreaming"


class Prometheus:
    def __init__(self, lab, workdir: str, url: str, pid: int):
        self.lab, self.dir, self.url, self.pid = lab, workdir, url, pid

    def get(self, path: str, **params) -> dict:
        reply = requests.get(f"{self.url}{path}", params=params, timeout=5)
        reply.raise_for_status()
        return reply.json()["data"]

    def query(self, expr: str) -> list[dict]:
        return self.get("/api/v1/query", query=expr)["result"]

    def alerts(self, name: str | None = None) -> list[dict]:
        found = self.get("/api/v1/alerts")["alerts"]
        return [a for a in found if name is None or a["labels"]["alertname"] == name]

    def wait(self, what: str, check, timeout: float):
        """Poll check() until it returns something truthy; fail with the last value after timeout seconds."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = check()
            except requests.RequestException as exc:
                last = exc
            else:
                if last:
                    return last
            time.sleep(1)
        log = self.lab.ssh("lb1", f"tail -n 20 {shlex.quote(self.dir)}/prometheus.log", check=False).stdout
        raise AssertionError(f"{what} not seen within {timeout}s; last: {last!r}\nprometheus.log:\n{log}")


def role_vars(workdir: str, lb_ip: str) -> dict:
    return {
        "pgha_prometheus_hosts": "lb1",
        "patroni_prometheus_clusters": [{"name": CLUSTER, "group": f"cluster_{CLUSTER}"}],
        "patroni_prometheus_config_file": f"{workdir}/prometheus.yml",
        "patroni_prometheus_rules_file": f"{workdir}/patroni.rules.yml",
        "patroni_prometheus_tls_dir": f"{workdir}/tls",
        "patroni_prometheus_scrape_interval": "1s",
        "patroni_prometheus_scrape_timeout": "1s",
        "patroni_prometheus_evaluation_interval": "1s",
        "patroni_prometheus_replica_not_streaming_for": "5s",
        "patroni_prometheus_api_down_for": "5s",
        "patroni_prometheus_reload": "http",
        "patroni_prometheus_reload_url": f"http://{lb_ip}:9090/-/reload",
    }


@pytest.fixture(scope="module")
def prometheus(lab):
    workdir = str(lab.dir / "prometheus")       # /tmp is shared by every lab host and the controller
    lb_ip = lab.ip("lb1")
    q = shlex.quote(workdir)
    lab.ssh("lb1", f"rm -rf {q} && mkdir -p {q} && printf 'global: {{scrape_interval: 1s}}\\n' > {q}/prometheus.yml")
    started = lab.ssh("lb1", (
        f"cd {q}; setsid prometheus --config.file={q}/prometheus.yml --storage.tsdb.path={q}/data"
        f" --web.listen-address={lb_ip}:9090 --web.enable-lifecycle </dev/null >{q}/prometheus.log 2>&1 & echo $!"))
    prom = Prometheus(lab, workdir, f"http://{lb_ip}:9090", int(started.stdout.strip()))
    try:
        prom.wait("Prometheus ready", lambda: requests.get(f"{prom.url}/-/ready", timeout=2).ok, 30)
        yield prom
    finally:
        lab.ssh("lb1", f"kill {prom.pid}", check=False)


def test_role_configures_and_scrapes_every_member(lab, prometheus, run_playbook):
    extra = role_vars(prometheus.dir, lab.ip("lb1"))
    first = run_playbook("prometheus.yml", extra_vars=extra)
    assert first.rc == 0 and first.failed() == 0, first
    assert first.changed() >= 2, first          # rules + configuration written, reload handler ran

    members = set(lab.members(CLUSTER))
    ups = prometheus.wait("every member scraped", lambda: (
        r if len(r := prometheus.query('up{job="patroni"} == 1')) == len(members) else None), 60)
    assert {u["metric"]["name"] for u in ups} == members
    assert {u["metric"]["scope"] for u in ups} == {CLUSTER}
    # Patroni's own name label and the target's agree, so rules can join up with Patroni's series.
    joined = prometheus.query('up{job="patroni"} * on (scope, name) group_left patroni_version')
    assert len(joined) == len(members), joined
    leader = lab.leader(CLUSTER)
    leaders = prometheus.wait("one leader recorded", lambda: prometheus.query("patroni:member_is_leader == 1"), 30)
    assert [m["metric"]["name"] for m in leaders] == [leader]
    assert prometheus.wait("replica lag recorded", lambda: prometheus.query("patroni:replica_replay_lag:bytes"), 30)

    again = run_playbook("prometheus.yml", extra_vars=extra)
    assert again.rc == 0 and again.changed() == 0, again
    check = run_playbook("prometheus.yml", extra_vars=extra, check=True, diff=True)
    assert check.rc == 0 and check.changed() == 0, check


def test_stopped_replica_fires_not_streaming_and_clears(lab, prometheus):
    leader = lab.leader(CLUSTER)
    replica = next(m for m in lab.members(CLUSTER) if m != leader)
    assert not prometheus.alerts(NOT_STREAMING), "alert firing before anything was stopped"

    stopped_at = time.monotonic()
    lab.ssh(replica, "service patroni stop")
    try:
        firing = prometheus.wait(f"{NOT_STREAMING} firing for {replica}", lambda: [
            a for a in prometheus.alerts(NOT_STREAMING)
            if a["state"] == "firing" and a["labels"]["name"] == replica], 60)
        fired_after = time.monotonic() - stopped_at
        assert firing[0]["labels"]["scope"] == CLUSTER
        assert firing[0]["labels"]["severity"] == "warning"
        # only the stopped member: the leader never streams and must not be reported
        assert {a["labels"]["name"] for a in prometheus.alerts(NOT_STREAMING)} == {replica}
        print(f"{NOT_STREAMING} firing for {replica} {fired_after:.1f}s after `service patroni stop`")
    finally:
        lab.ssh(replica, "service patroni start")
    started_at = time.monotonic()
    prometheus.wait(f"{NOT_STREAMING} cleared", lambda: not prometheus.alerts(NOT_STREAMING) or None, 120)
    print(f"{NOT_STREAMING} cleared {time.monotonic() - started_at:.1f}s after `service patroni start`")
    streaming = prometheus.query(f'patroni_postgres_streaming{{name="{replica}"}} == 1')
    assert streaming, f"{replica} cleared the alert but is not streaming: {json.dumps(streaming)}"

#!/usr/bin/env bash
# Runs the integration tests against real lab hosts. Each phase starts from a fresh lab, because phases change the
# hosts in ways other tests must not inherit (TLS on the API, firewall rules).
# Usage: tests/integration/run.sh [phase ...|all]   (default: every phase)
# Env: PGHA_INTEGRATION_LANES (default 3), PGHA_LAB_DIR / PGHA_LAB_NET / PGHA_LAB_NAME for lane 0.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
export PGHA_BUILD_DIR=${PGHA_BUILD_DIR:-/var/tmp/pgha-build}
export PGHA_LAB_DIR=${PGHA_LAB_DIR:-$repo/.lab}
mkdir -p "$PGHA_BUILD_DIR/ansible_collections/pgha"
ln -sfn "$repo" "$PGHA_BUILD_DIR/ansible_collections/pgha/patroni"

py221=$repo/.venv/ac221/bin/python
[ -x "$py221" ] || { echo "run.sh: $py221 is missing: run 'make setup' first" >&2; exit 2; }

# PGHA_LAB_NAME / PGHA_LAB_NET let a developer run phases beside another lab
lab_up() {
    "$repo/lab/pgha_lab.py" up --dir "$PGHA_LAB_DIR" ${PGHA_LAB_NAME:+--name "$PGHA_LAB_NAME"} \
        ${PGHA_LAB_NET:+--net "$PGHA_LAB_NET"} "$@"
}

# pytest under the ansible-core of venv $1 on the given files
run_pytest() {
    local venv=$1; shift
    PGHA_ANSIBLE_VENV=$repo/.venv/$venv "$py221" -m pytest -p no:cacheprovider -q -rs --durations=5 "$@"
}

# Each phase: a fresh lab of the shape it needs, then its test files.
phase_core() {
    lab_up
    run_pytest ac221 tests/integration/test_facts.py tests/integration/test_wait_primary.py \
        tests/integration/test_lab_guard.py
    # the claim in meta/runtime.yml is >=2.19: the same tests under ansible-core 2.19 on Python 3.11, less the
    # crash test, which exercises Patroni's failover rather than anything that differs between Ansible versions
    run_pytest ac219 tests/integration/test_facts.py tests/integration/test_wait_primary.py \
        -k "not crash_of_the_primary"
}
phase_operations() {
    lab_up --loop-wait 3
    run_pytest ac221 tests/integration/test_operations.py tests/integration/test_schedules.py
}
phase_haproxy() {
    lab_up --clusters 2
    run_pytest ac221 tests/integration/test_haproxy.py tests/integration/test_haproxy_tls.py
}
phase_secure_api() {
    lab_up
    run_pytest ac221 tests/integration/test_secure_api.py
}
phase_tls() {
    lab_up
    run_pytest ac221 tests/integration/test_tls.py
}
phase_firewall() {
    lab_up
    run_pytest ac221 tests/integration/test_firewall.py
}
phase_monitoring() {
    lab_up
    run_pytest ac221 tests/integration/test_prometheus.py tests/integration/test_prometheus_tls.py
}
phase_inventory() {
    lab_up --clusters 2
    run_pytest ac221 tests/integration/test_inventory_lookup.py
}
phase_rolling() {
    lab_up --clusters 3
    run_pytest ac221 tests/integration/test_rolling_restart.py
}
phase_tools() {
    lab_up
    run_pytest ac221 tests/integration/test_tools.py
}

# Phases run in lanes: each lane has its own lab (name, network, state dir) and runs its phases one after the other,
# lanes run side by side. Most of a phase is spent waiting on Patroni's loop and on timers, so lanes overlap each
# other's waits. Expected seconds per phase (estimated for a quiet 2-core machine from runs here) let the longest
# phases start first and the lanes end together.
declare -A expected=([secure_api]=800 [rolling]=450 [firewall]=420 [tls]=400 [haproxy]=300 [core]=230
                     [operations]=200 [tools]=130 [monitoring]=110 [inventory]=100)
all_phases=(core operations haproxy secure_api tls firewall monitoring tools inventory rolling)
phases=("$@")
[ ${#phases[@]} -gt 0 ] || phases=("${all_phases[@]}")
[ "${phases[*]}" != all ] || phases=("${all_phases[@]}")
for phase in "${phases[@]}"; do
    declare -F "phase_$phase" >/dev/null || { echo "run.sh: unknown phase '$phase' (phases: ${all_phases[*]})" >&2; exit 2; }
done
lanes=${PGHA_INTEGRATION_LANES:-3}
[[ $lanes =~ ^[1-9]$ ]] || { echo "run.sh: PGHA_INTEGRATION_LANES=$lanes: use 1 to 9" >&2; exit 2; }
(( lanes <= ${#phases[@]} )) || lanes=${#phases[@]}

# Lane 0 uses the lab settings a developer gave (or the defaults); lane i the next /24 and its own state dir.
base_dir=$PGHA_LAB_DIR
base_net=${PGHA_LAB_NET:-10.213.0.0/24}
IFS=. read -r n1 n2 n3 _ <<<"$base_net"
lane_dir() { if [ "$1" -eq 0 ]; then echo "$base_dir"; else echo "$base_dir-lane$1"; fi; }
lane_net() { if [ "$1" -eq 0 ]; then echo "$base_net"; else echo "$n1.$n2.$((n3 + $1)).0/24"; fi; }
lane_name() {  # empty: the lab derives a name from its state dir
    if [ -n "${PGHA_LAB_NAME:-}" ]; then
        if [ "$1" -eq 0 ]; then echo "$PGHA_LAB_NAME"; else echo "${PGHA_LAB_NAME:0:6}$1"; fi
    fi
}
lanes_down() {
    for ((i = 0; i < lanes; i++)); do
        "$repo/lab/pgha_lab.py" down --dir "$(lane_dir "$i")" >/dev/null 2>&1 || true
    done
    rm -rf "$logs"
}
logs=$(mktemp -d /tmp/pgha-integration.XXXXXX)
trap lanes_down EXIT

# Longest expected first, each to the lane with the least expected work so far.
mapfile -t ordered < <(for phase in "${phases[@]}"; do echo "${expected[$phase]:-200} $phase"; done | sort -rn | cut -d' ' -f2)
declare -a lane_load lane_phases
for ((i = 0; i < lanes; i++)); do lane_load[i]=0; lane_phases[i]=""; done
for phase in "${ordered[@]}"; do
    best=0
    for ((i = 1; i < lanes; i++)); do (( lane_load[i] < lane_load[best] )) && best=$i; done
    lane_load[best]=$(( lane_load[best] + ${expected[$phase]:-200} ))
    lane_phases[best]+="$phase "
done

run_lane() {
    local i=$1 phase start rc
    PGHA_LAB_DIR=$(lane_dir "$i") PGHA_LAB_NET=$(lane_net "$i") PGHA_LAB_NAME=$(lane_name "$i")
    export PGHA_LAB_DIR PGHA_LAB_NET PGHA_LAB_NAME
    for phase in ${lane_phases[i]}; do
        start=$(date +%s)
        echo "=== lane $i: phase $phase started ($PGHA_LAB_NET)"
        # a failed phase must not hide the others: run them all, fail at the end. (set -e is ignored inside an `if`
        # condition, so the phase runs as a plain subshell and its status is read afterwards.)
        set +e
        # `times` on the way out: CPU of the phase's own processes (pytest, Ansible, SSH clients), which is what a
        # test can spend less of; the lab's daemons are not its children
        ( trap 'times >"$logs/$phase.cpu"' EXIT; set -e; "phase_$phase" ) >"$logs/$phase.log" 2>&1
        rc=$?
        set -e
        cpu=$(tail -1 "$logs/$phase.cpu" 2>/dev/null | awk '{ for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); s += t[1] * 60 + t[2] } }
                                                          END { printf "%.0f", s }')
        # one phase's whole output at a time, so lanes never interleave their lines
        {
            flock 9
            echo "=== integration phase: $phase (lane $i)"
            cat "$logs/$phase.log"
            if [ "$rc" -eq 0 ]; then
                echo "=== integration phase $phase passed in $(( $(date +%s) - start ))s (${cpu:-?} s CPU)"
            else
                echo "=== integration phase $phase FAILED after $(( $(date +%s) - start ))s (${cpu:-?} s CPU)"
                echo "$phase" >>"$logs/failed"
            fi
        } 9>"$logs/print.lock"
    done
}
started=$(date +%s)
echo "=== integration: ${#phases[@]} phases in $lanes lane(s): $(for ((i = 0; i < lanes; i++)); do printf '[%s] ' "${lane_phases[i]% }"; done)"
pids=()
for ((i = 0; i < lanes; i++)); do
    run_lane "$i" &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || true; done
echo "=== integration: all lanes done in $(( $(date +%s) - started ))s"
if [ -s "$logs/failed" ]; then
    echo "integration phases failed: $(tr '\n' ' ' <"$logs/failed")" >&2
    exit 1
fi

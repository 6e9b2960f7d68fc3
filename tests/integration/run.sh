#!/usr/bin/env bash
# Runs the integration tests against real lab hosts. Each phase starts from a fresh lab, because phases change the
# hosts in ways other tests must not inherit (TLS on the API, firewall rules).
# Usage: tests/integration/run.sh [phase ...]   (default: every phase)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
export PGHA_BUILD_DIR=${PGHA_BUILD_DIR:-/var/tmp/pgha-build}
export PGHA_LAB_DIR=${PGHA_LAB_DIR:-$repo/.lab}
mkdir -p "$PGHA_BUILD_DIR/ansible_collections/pgha"
ln -sfn "$repo" "$PGHA_BUILD_DIR/ansible_collections/pgha/patroni"

py221=$repo/.venv/ac221/bin/python
[ -x "$py221" ] || { echo "run.sh: $py221 is missing: run 'make setup' first" >&2; exit 2; }

lab() { "$repo/lab/pgha_lab.py" "$@" --dir "$PGHA_LAB_DIR"; }
trap 'lab down >/dev/null 2>&1 || true' EXIT

# phase name -> lab options ; pytest targets ; ansible-core venvs the phase runs under
phase_core() {
    lab up
    PGHA_ANSIBLE_VENV=$repo/.venv/ac221 "$py221" -m pytest -p no:cacheprovider -q \
        tests/integration/test_facts.py tests/integration/test_wait_primary.py
    # the claim in meta/runtime.yml is >=2.19: the same tests under ansible-core 2.19 on Python 3.11
    PGHA_ANSIBLE_VENV=$repo/.venv/ac219 "$py221" -m pytest -p no:cacheprovider -q \
        tests/integration/test_facts.py tests/integration/test_wait_primary.py
}

phases=("$@")
[ ${#phases[@]} -gt 0 ] || phases=(core)
for phase in "${phases[@]}"; do
    start=$(date +%s)
    echo "=== integration phase: $phase"
    "phase_$phase"
    echo "=== integration phase $phase passed in $(( $(date +%s) - start ))s"
done

#!/usr/bin/env bash
# Runs every bench/*.py with the ansible-core 2.21 tool chain's Python; fails if any of them fails.
set -euo pipefail
export PGHA_SCRIPT_NAME=bench
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

pgha_require_venv "${PGHA_VENV_AC221}"
cd "${PGHA_REPO}"
export ANSIBLE_COLLECTIONS_PATH="${PGHA_BUILD_DIR}"
shopt -s nullglob
benches=(bench/[!_]*.py)  # bench/_*.py are helpers the benchmarks start
((${#benches[@]} > 0)) || pgha_die "no bench/*.py found in ${PGHA_REPO}; nothing to run"
failed=()
for bench in "${benches[@]}"; do
    started=${SECONDS}
    if "${PGHA_VENV_AC221}/bin/python" "${bench}"; then
        pgha_log "${bench}: ok in $((SECONDS - started)) s"
    else
        pgha_log "${bench}: FAILED (exit $?) in $((SECONDS - started)) s"
        failed+=("${bench}")
    fi
done
((${#failed[@]} == 0)) || pgha_die "benchmarks failed: ${failed[*]}"

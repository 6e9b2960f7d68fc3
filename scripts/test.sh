#!/usr/bin/env bash
# The whole gate, in CI order: setup, lint, sanity, units, integration. Runs every stage even after a failure
# (one run shows every problem), except after a failed setup, where nothing else can work. Exits non-zero if
# any stage failed. Usage: test.sh [stage ...] to run a subset, e.g. test.sh lint sanity.
set -uo pipefail
export PGHA_SCRIPT_NAME=test
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

scripts="${PGHA_REPO}/scripts"
declare -A STAGE_COMMAND=(
    [setup]="${scripts}/setup-host.sh"
    [lint]="${scripts}/lint.sh"
    [sanity]="${scripts}/sanity.sh"
    [units]="${scripts}/units.sh"
    [checks]="${scripts}/checks.sh"
    [integration]="${scripts}/integration.sh"
)
stages=(setup lint sanity units checks integration)
if [[ $# -gt 0 ]]; then
    stages=("$@")
fi
for stage in "${stages[@]}"; do
    [[ -n "${STAGE_COMMAND[${stage}]:-}" ]] || pgha_die "unknown stage '${stage}'; choose from: setup lint sanity units checks integration"
done

summary=()
passed=0
failed=0
total_started=${SECONDS}
for stage in "${stages[@]}"; do
    printf '\n===== %s =====\n' "${stage}"
    started=${SECONDS}
    "${STAGE_COMMAND[${stage}]}"
    rc=$?
    duration=$((SECONDS - started))
    if ((rc == 0)); then
        result="PASS"
        passed=$((passed + 1))
    else
        result="FAIL (exit ${rc})"
        failed=$((failed + 1))
    fi
    line="$(printf 'stage %-12s %-14s %5d s' "${stage}" "${result}" "${duration}")"
    summary+=("${line}")
    printf '===== %s\n' "${line}"
    if [[ "${stage}" == setup && ${rc} -ne 0 ]]; then
        pgha_log "setup failed: skipping the remaining stages"
        break
    fi
done

printf '\n===== summary (%d s in all) =====\n' "$((SECONDS - total_started))"
printf '%s\n' "${summary[@]}"
# One plain line that CI log readers understand: stages, not individual tests.
printf 'stages: %d passed, %d failed\n' "${passed}" "${failed}"
((failed == 0))

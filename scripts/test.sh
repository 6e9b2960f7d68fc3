#!/usr/bin/env bash
# The whole gate: setup, then integration side by side with lint, sanity, units and checks. Runs every stage even
# after a failure (one run shows every problem), except after a failed setup, where nothing else can work. Exits
# non-zero if any stage failed. Usage: test.sh [stage ...] to run a subset, e.g. test.sh lint sanity.
#
# Why side by side: integration is the long pole and spends much of its time waiting on Patroni's loop and on
# timers, while ansible-test keeps one core busy; run one after the other, the static stages added about 6 minutes
# to every CI run. Each stage's output is printed whole when it ends, so the log never interleaves.
# PGHA_TEST_SERIAL=1 runs the stages one after the other instead (for timing one stage on its own).
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

logs="$(mktemp -d /tmp/pgha-test.XXXXXX)"
summary=()
passed=0
failed=0
total_started=${SECONDS}

# Records one finished stage: its line in the summary and the pass/fail count.
record() {
    local stage="$1" rc="$2" duration="$3" result line
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
}

run_here() {
    local stage="$1" started rc
    printf '\n===== %s =====\n' "${stage}"
    started=${SECONDS}
    "${STAGE_COMMAND[${stage}]}"
    rc=$?
    record "${stage}" "${rc}" "$((SECONDS - started))"
    return "${rc}"
}

background_stage=""
if [[ "${PGHA_TEST_SERIAL:-0}" != 1 && " ${stages[*]} " == *" integration "* && ${#stages[@]} -gt 1 ]]; then
    background_stage=integration
fi
integration_pid=""
start_integration() {
    printf '\n===== integration started (its output follows when it ends) =====\n'
    integration_started=${SECONDS}
    "${STAGE_COMMAND[integration]}" >"${logs}/integration.log" 2>&1 &
    integration_pid=$!
}
# a stopped test run stops its integration stage too (run.sh takes its labs down on the way out)
trap '[[ -z "${integration_pid}" ]] || kill "${integration_pid}" 2>/dev/null; wait; rm -rf "${logs}"' EXIT
if [[ -n "${background_stage}" && " ${stages[*]} " != *" setup "* ]]; then
    start_integration
fi

for stage in "${stages[@]}"; do
    [[ "${stage}" != "${background_stage}" ]] || continue
    if [[ -n "${background_stage}" && "${stage}" != setup ]]; then
        # output held until the stage ends, so it does not break into the other's lines
        started=${SECONDS}
        "${STAGE_COMMAND[${stage}]}" >"${logs}/${stage}.log" 2>&1
        rc=$?
        printf '\n===== %s =====\n' "${stage}"
        cat "${logs}/${stage}.log"
        record "${stage}" "${rc}" "$((SECONDS - started))"
        continue
    fi
    if ! run_here "${stage}" && [[ "${stage}" == setup ]]; then
        pgha_log "setup failed: skipping the remaining stages"
        background_stage=""
        break
    fi
    # setup made the venvs and the lab's packages that integration needs: it starts now
    if [[ "${stage}" == setup && -n "${background_stage}" ]]; then
        start_integration
    fi
done

if [[ -n "${integration_pid}" ]]; then
    wait "${integration_pid}"
    rc=$?
    integration_pid=""
    printf '\n===== integration =====\n'
    cat "${logs}/integration.log"
    record integration "${rc}" "$((SECONDS - integration_started))"
fi

printf '\n===== summary (%d s in all) =====\n' "$((SECONDS - total_started))"
printf '%s\n' "${summary[@]}"
# One plain line that CI log readers understand: stages, not individual tests.
printf 'stages: %d passed, %d failed\n' "${passed}" "${failed}"
((failed == 0))

# Runs one ansible-test command on each CI leg: ansible-core 2.21 on Python 3.12 and 2.19 on Python 3.11.
# shellcheck shell=bash

# leg name -> "venv controller-python"
declare -A PGHA_LEGS=(
    [2.21]="${PGHA_VENV_AC221} 3.12"
    [2.19]="${PGHA_VENV_AC219} 3.11"
)

pgha_run_leg() {
    local command="$1" leg="$2" venv python
    shift 2
    read -r venv python <<<"${PGHA_LEGS[${leg}]}"
    pgha_require_venv "${venv}"
    local selector=()
    # sanity without --python runs compile/import on every Python 3.x on PATH (the target versions); units
    # only has pytest in the venv, so it must stay on the venv's interpreter.
    if [[ "${command}" != sanity ]]; then
        selector=(--python "${python}")
    fi
    # pylint's verdict comes from the pylint release and rules each ansible-test pins, not from the ansible-core the
    # modules run on; the newest line's (2.21) runs on all code. On 2.19 it would add a minute of one core to every
    # CI run. PGHA_SANITY_FULL=1 (or naming tests with --test) runs it there too.
    if [[ "${command}" == sanity && "${leg}" != 2.21 && "${PGHA_SANITY_FULL:-0}" != 1 && " $* " != *" --test "* ]]; then
        selector+=(--skip-test pylint)
    fi
    pgha_log "ansible-test ${command} --local ${selector[*]} (ansible-core ${leg}, controller Python ${python}) $*"
    (
        PATH="$(pgha_target_python_path "${venv}")"
        export PATH
        if [[ "${command}" == units ]]; then
            # pytest resolves the working directory itself, so units needs the tree as a real directory.
            exec "${PGHA_REPO}/scripts/in-collection-tree.sh" ansible-test "${command}" --local "${selector[@]}" --color no "$@"
        fi
        cd "${PGHA_COLLECTION_DIR}" || exit 1
        # ansible-test locates the collection from os.getcwd(), which resolves our symlink back to the repo
        # (no ansible_collections/ parent there); the content root variable makes it use the tree's path.
        export ANSIBLE_TEST_CONTENT_ROOT="${PGHA_COLLECTION_DIR}"
        ansible-test "${command}" --local "${selector[@]}" --color no "$@"
    )
}

pgha_run_legs() {
    local command="$1" selection="all" leg failed=() started
    shift
    if [[ $# -gt 0 && ( "$1" == "all" || -n "${PGHA_LEGS[$1]:-}" ) ]]; then
        selection="$1"
        shift
    fi
    pgha_require_tree
    for leg in 2.21 2.19; do
        [[ "${selection}" == "all" || "${selection}" == "${leg}" ]] || continue
        started=${SECONDS}
        # Keep going after a failing leg: seeing whether a failure is version-specific saves a round trip.
        if pgha_run_leg "${command}" "${leg}" "$@"; then
            pgha_log "${command} on ansible-core ${leg}: passed in $((SECONDS - started)) s"
        else
            pgha_log "${command} on ansible-core ${leg}: FAILED in $((SECONDS - started)) s"
            failed+=("${leg}")
        fi
    done
    if ((${#failed[@]} > 0)); then
        pgha_die "ansible-test ${command} failed on ansible-core ${failed[*]}; see the output above"
    fi
}

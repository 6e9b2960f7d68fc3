# Shared settings for the scripts in this directory; sourced, never run.
# shellcheck shell=bash

PGHA_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
export PGHA_REPO
# ansible-test insists on running from .../ansible_collections/<ns>/<name>; the tree lives outside the repo so
# that neither git nor ansible-test's own file scan ever sees it.
export PGHA_BUILD_DIR="${PGHA_BUILD_DIR:-/var/tmp/pgha-build}"
export PGHA_COLLECTION_DIR="${PGHA_BUILD_DIR}/ansible_collections/pgha/patroni"
export PGHA_VENV_AC221="${PGHA_REPO}/.venv/ac221"
export PGHA_VENV_AC219="${PGHA_REPO}/.venv/ac219"
# The lab drives root-only tools (ip netns, apt, runuser) and uses Debian's python3-requests/-cryptography/-yaml.
export PGHA_LAB_PYTHON="${PGHA_LAB_PYTHON:-/usr/bin/python3}"

pgha_log() {
    printf '[%s] %s\n' "${PGHA_SCRIPT_NAME:-pgha}" "$*" >&2
}

pgha_die() {
    pgha_log "ERROR: $*"
    exit 1
}

pgha_pyenv_root() {
    if [[ -n "${PYENV_ROOT:-}" ]]; then
        printf '%s\n' "${PYENV_ROOT}"
    else
        printf '%s\n' "${HOME:-/root}/.pyenv"
    fi
}

# Prints the newest pyenv interpreter for a minor version, e.g. 3.12 -> /root/.pyenv/versions/3.12.1/bin/python.
# pyenv shims are avoided on purpose: they resolve through .python-version files and ansible-test cannot use them.
pgha_find_python() {
    local minor="$1" root candidate found=""
    root="$(pgha_pyenv_root)"
    # pyenv names each directory after the exact version (3.12.1); pick the newest patch release.
    found="$(for candidate in "${root}/versions/${minor}".[0-9]*/bin/python; do
        if [[ "${candidate}" =~ /versions/${minor//./\\.}\.[0-9]+/bin/python$ && -x "${candidate}" ]]; then
            printf '%s\n' "${candidate}"
        fi
    done | sort -V | tail -n 1)"
    if [[ -z "${found}" ]]; then
        found="$(command -v "python${minor}" 2>/dev/null || true)"
        [[ -n "${found}" && "${found}" != */shims/* ]] || found=""
    fi
    [[ -n "${found}" ]] || return 1
    printf '%s\n' "${found}"
}

# PATH with every available target interpreter (3.9 .. 3.13) so ansible-test's compile and import tests cover
# the Pythons modules may meet on managed hosts; the venv stays first so its python3.X wins for the controller.
pgha_target_python_path() {
    local venv="$1" minor py dirs=""
    for minor in 3.9 3.10 3.11 3.12 3.13 3.14; do
        if py="$(pgha_find_python "${minor}")"; then
            dirs="${dirs}:$(dirname "${py}")"
        fi
    done
    # pyenv shims would add whatever other versions are installed (3.8, 2.7): keep the set above exact.
    local entry rest="" old_ifs="${IFS}"
    IFS=:
    for entry in ${PATH}; do
        [[ "${entry}" == */shims ]] || rest="${rest}:${entry}"
    done
    IFS="${old_ifs}"
    printf '%s\n' "${venv}/bin${dirs}${rest}"
}

pgha_require_venv() {
    local venv="$1"
    [[ -x "${venv}/bin/python" ]] || pgha_die "tool virtualenv ${venv} is missing; run 'make setup' (scripts/setup-host.sh) first"
}

pgha_require_tree() {
    [[ -e "${PGHA_COLLECTION_DIR}/galaxy.yml" ]] \
        || pgha_die "collection tree ${PGHA_COLLECTION_DIR} is missing or stale; run 'make setup' or scripts/collection-tree.sh"
}

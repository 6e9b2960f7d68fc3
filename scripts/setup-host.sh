#!/usr/bin/env bash
# Prepares a Debian 12 machine (as root, apt and pip only) for every make target: system packages, the
# lab's packages, the two tool virtualenvs, ansible-test's offline pip bootstrap and the collection tree.
# Idempotent: each step checks what is already there, so a second run only costs a few seconds.
set -euo pipefail
export PGHA_SCRIPT_NAME=setup-host
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

# What the tool chain itself needs; the lab lists its own packages (lab/pgha_lab.py install).
# The shellcheck package is here because ansible-test's shellcheck sanity test is skipped without it.
APT_PACKAGES=(ca-certificates git make python3-venv shellcheck)

started=${SECONDS}

install_apt_packages() {
    local pkg missing=()
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("${pkg}")
        fi
    done
    if ((${#missing[@]} == 0)); then
        pgha_log "apt packages present: $*"
        return 0
    fi
    [[ ${EUID} -eq 0 ]] || pgha_die "apt packages missing (${missing[*]}) and not running as root; run 'sudo make setup'"
    pgha_log "installing apt packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q || pgha_die "apt-get update failed; check /etc/apt/sources.list and the network to the Debian mirror"
    apt-get install -y -q --no-install-recommends "${missing[@]}" \
        || pgha_die "apt-get install ${missing[*]} failed; see apt's message above"
}

install_lab_packages() {
    local lab="${PGHA_REPO}/lab/pgha_lab.py"
    if [[ ! -f "${lab}" ]]; then
        pgha_log "lab/pgha_lab.py not present yet: skipping the lab's packages"
        return 0
    fi
    "${PGHA_LAB_PYTHON}" "${lab}" install || pgha_die "'${PGHA_LAB_PYTHON} lab/pgha_lab.py install' failed; see its message above"
}

# Stamp = hash of everything that decides a venv's content, so editing a requirements file (or moving to
# another interpreter) reinstalls, and nothing else does.
venv_stamp() {
    local python="$1" file
    shift
    {
        printf '%s\n' "${python}"
        "${python}" -c 'import sys; print(sys.version)'
        for file in "$@"; do
            printf '== %s\n' "${file##*/}"
            cat "${file}"
        done
    } | sha256sum | cut -d' ' -f1
}

# This machine's pip configuration lists optional local index directories; pip warns once per package
# about each missing one, which buries real errors.
quiet_pip() {
    "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
}

make_venv() {
    local venv="$1" minor="$2" python stamp_file stamp
    shift 2
    local requirements=("$@")

    python="$(pgha_find_python "${minor}")" \
        || pgha_die "Python ${minor} not found (looked in $(pgha_pyenv_root)/versions/${minor}.*/bin/python and python${minor} on PATH); install it with 'pyenv install ${minor}' or set PYENV_ROOT"
    stamp_file="${venv}/.pgha-stamp"
    stamp="$(venv_stamp "${python}" "${requirements[@]}")"

    if [[ -x "${venv}/bin/python" && -f "${stamp_file}" && "$(cat "${stamp_file}")" == "${stamp}" ]]; then
        pgha_log "${venv#"${PGHA_REPO}"/} up to date (Python ${minor})"
        return 0
    fi

    # A venv made from another interpreter cannot be upgraded in place: start over.
    if [[ -e "${venv}" ]] && ! "${venv}/bin/python" -c "import sys; sys.exit(sys.base_prefix != '$("${python}" -c 'import sys; print(sys.base_prefix)')')" 2>/dev/null; then
        pgha_log "recreating ${venv}: it was made from another interpreter"
        rm -rf "${venv}"
    fi
    if [[ ! -x "${venv}/bin/python" ]]; then
        pgha_log "creating ${venv} with ${python}"
        "${python}" -m venv "${venv}" || pgha_die "'${python} -m venv ${venv}' failed"
    fi

    local args=() file
    for file in "${requirements[@]}"; do
        args+=(-r "${file}")
    done
    pgha_log "installing ${requirements[*]#"${PGHA_REPO}"/} into ${venv#"${PGHA_REPO}"/}"
    quiet_pip "${venv}/bin/python" -m pip install -q --upgrade 'pip>=25' \
        || pgha_die "upgrading pip in ${venv} failed; check the machine's pip index configuration"
    quiet_pip "${venv}/bin/python" -m pip install -q "${args[@]}" \
        || pgha_die "pip install into ${venv} failed for ${requirements[*]}; fix the pins or the index configuration"
    printf '%s\n' "${stamp}" >"${stamp_file}"
}

# ansible-test names its cached bootstrap after the pip version it wants; read the versions from the
# installed ansible-test instead of hard-coding them, so an ansible-core bump keeps working offline.
install_get_pip_standin() {
    local venv="$1" versions version target cache="${HOME}/.ansible/test/cache"
    versions="$("${venv}/bin/python" - <<'PY'
import pathlib
import re

import ansible_test

source = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print("\n".join(sorted(set(re.findall(r"""\bpip=['"]([0-9][0-9.]*)['"]""", source.read_text())))))
PY
)" || pgha_die "cannot read ansible-test's pip version from ${venv}; is ansible-core installed there?"
    [[ -n "${versions}" ]] \
        || pgha_die "no pip='X.Y' found in ansible_test/_internal/python_requirements.py of ${venv}; ansible-test changed how it bootstraps pip, update install_get_pip_standin in scripts/setup-host.sh"
    mkdir -p "${cache}"
    for version in ${versions}; do
        target="${cache}/get_pip_${version//./_}.py"
        if ! cmp -s "${PGHA_REPO}/.ci/get_pip_offline.py" "${target}"; then
            install -m 0644 "${PGHA_REPO}/.ci/get_pip_offline.py" "${target}"
            pgha_log "installed offline pip bootstrap as ${target}"
        fi
    done
}

install_apt_packages "${APT_PACKAGES[@]}"
install_lab_packages

unit_requirements=()
if [[ -f "${PGHA_REPO}/tests/unit/requirements.txt" ]]; then
    unit_requirements+=("${PGHA_REPO}/tests/unit/requirements.txt")
fi
# The two venvs are independent and mostly wait on downloads and unpacking: build them side by side.
make_venv "${PGHA_VENV_AC221}" 3.12 "${PGHA_REPO}/scripts/requirements-ac221.txt" "${PGHA_REPO}/requirements.txt" "${unit_requirements[@]}" &
pid_ac221=$!
make_venv "${PGHA_VENV_AC219}" 3.11 "${PGHA_REPO}/scripts/requirements-ac219.txt" "${PGHA_REPO}/requirements.txt" "${unit_requirements[@]}" &
pid_ac219=$!
venv_failed=0
wait "${pid_ac221}" || venv_failed=1
wait "${pid_ac219}" || venv_failed=1
((venv_failed == 0)) || pgha_die "building the tool virtualenvs failed; see the messages above"

install_get_pip_standin "${PGHA_VENV_AC221}"
install_get_pip_standin "${PGHA_VENV_AC219}"

"${PGHA_REPO}/scripts/collection-tree.sh"

for minor in 3.9 3.10 3.11 3.12 3.13; do
    pgha_find_python "${minor}" >/dev/null \
        || pgha_log "warning: no Python ${minor} found; sanity compile/import will not cover it (pyenv install ${minor})"
done

pgha_log "done in $((SECONDS - started)) s"

#!/usr/bin/env bash
# Thin wrapper around the lab driver: lab.sh up|down|<any pgha_lab.py command>.
set -euo pipefail
export PGHA_SCRIPT_NAME=lab
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

lab="${PGHA_REPO}/lab/pgha_lab.py"
[[ $# -gt 0 ]] || pgha_die "usage: scripts/lab.sh up|down [args]"
[[ -f "${lab}" ]] || pgha_die "${lab} does not exist yet; the lab cannot be started"
[[ -x "${PGHA_LAB_PYTHON}" ]] || pgha_die "lab interpreter ${PGHA_LAB_PYTHON} not found; install Debian's python3 or set PGHA_LAB_PYTHON"
cd "${PGHA_REPO}"
exec "${PGHA_LAB_PYTHON}" "${lab}" "$@"

#!/usr/bin/env bash
# Runs the integration suite, tests/integration/run.sh, with the tool chain's locations in the environment
# (PGHA_REPO, PGHA_BUILD_DIR, PGHA_COLLECTION_DIR, PGHA_VENV_AC221, PGHA_VENV_AC219, PGHA_LAB_PYTHON).
set -euo pipefail
export PGHA_SCRIPT_NAME=integration
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

suite="${PGHA_REPO}/tests/integration/run.sh"
[[ -f "${suite}" ]] || pgha_die "${suite} does not exist: the integration suite has not been written yet, so there is nothing to run"
pgha_require_venv "${PGHA_VENV_AC221}"
pgha_require_tree
cd "${PGHA_REPO}"
exec bash "${suite}" "$@"

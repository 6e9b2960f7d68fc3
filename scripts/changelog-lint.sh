#!/usr/bin/env bash
# Checks changelogs/config.yaml, changelogs/changelog.yaml and every fragment.
set -euo pipefail
export PGHA_SCRIPT_NAME=changelog-lint
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

pgha_require_venv "${PGHA_VENV_AC221}"
cd "${PGHA_REPO}"
"${PGHA_VENV_AC221}/bin/antsibull-changelog" lint "$@"
"${PGHA_VENV_AC221}/bin/antsibull-changelog" lint-changelog-yaml changelogs/changelog.yaml
pgha_log "changelog fragments and changelogs/changelog.yaml are valid"

#!/usr/bin/env bash
# Removes what tests and builds leave behind. Keeps .venv (slow to rebuild; DISTCLEAN=1 removes it too)
# and the lab (stop it with 'make lab-down').
set -euo pipefail
export PGHA_SCRIPT_NAME=clean
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

cd "${PGHA_REPO}"
rm -rf tests/output changelogs/.plugin-cache.yaml
rm -f ./*.tar.gz
find . -path ./.venv -prune -o -path ./.git -prune -o -path ./.lab -prune -o -type d -name __pycache__ -print0 \
    | xargs -0 rm -rf
# Only our own link: another clone may own the tree.
if [[ -L "${PGHA_COLLECTION_DIR}" && "$(readlink "${PGHA_COLLECTION_DIR}")" == "${PGHA_REPO}" ]]; then
    rm -f "${PGHA_COLLECTION_DIR}"
fi
# The fallback copy of scripts/in-collection-tree.sh
rm -rf "${PGHA_BUILD_DIR}/copy"
if [[ "${DISTCLEAN:-0}" == 1 ]]; then
    rm -rf .venv
fi
pgha_log "cleaned ${PGHA_REPO}"

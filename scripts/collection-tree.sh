#!/usr/bin/env bash
# Makes ${PGHA_BUILD_DIR}/ansible_collections/pgha/patroni a symlink to this checkout (ansible-test and
# collection playbooks need that path layout). Re-points a link left by another clone, such as CI's.
set -euo pipefail
export PGHA_SCRIPT_NAME=collection-tree
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

parent="$(dirname "${PGHA_COLLECTION_DIR}")"
mkdir -p "${parent}" || pgha_die "cannot create ${parent}; set PGHA_BUILD_DIR to a writable directory"

if [[ -e "${PGHA_COLLECTION_DIR}" && ! -L "${PGHA_COLLECTION_DIR}" ]]; then
    pgha_die "${PGHA_COLLECTION_DIR} exists and is not a symlink; move it away or set PGHA_BUILD_DIR elsewhere"
fi

current="$(readlink "${PGHA_COLLECTION_DIR}" 2>/dev/null || true)"
if [[ "${current}" != "${PGHA_REPO}" ]]; then
    ln -sfn "${PGHA_REPO}" "${PGHA_COLLECTION_DIR}"
    pgha_log "linked ${PGHA_COLLECTION_DIR} -> ${PGHA_REPO}"
fi

#!/usr/bin/env bash
# ansible-lint, production profile, from the collection tree so that FQCN references to pgha.patroni resolve.
set -euo pipefail
export PGHA_SCRIPT_NAME=lint
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

pgha_require_venv "${PGHA_VENV_AC221}"
pgha_require_tree
cd "${PGHA_COLLECTION_DIR}"
export ANSIBLE_COLLECTIONS_PATH="${PGHA_BUILD_DIR}"
export PATH="${PGHA_VENV_AC221}/bin:${PATH}"
# Rules and skips live in .ansible-lint; --profile here only guards against that file being lost.
# Colour codes only help on a terminal; in CI logs they are noise.
[[ -t 1 ]] || set -- --nocolor "$@"
exec ansible-lint --profile production "$@"

#!/usr/bin/env bash
# Runs playbooks/demo.yml against the lab (make demo brings the lab up first).
set -euo pipefail
export PGHA_SCRIPT_NAME=demo
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

pgha_require_venv "${PGHA_VENV_AC221}"
pgha_require_tree
cd "${PGHA_REPO}"
[[ -f .lab/inventory.yml ]] || pgha_die ".lab/inventory.yml not found in ${PGHA_REPO}; start the lab with 'make lab-up'"
[[ -f playbooks/demo.yml ]] || pgha_die "playbooks/demo.yml not found in ${PGHA_REPO}; the demo playbook has not been written yet"
export ANSIBLE_COLLECTIONS_PATH="${PGHA_BUILD_DIR}"
exec "${PGHA_VENV_AC221}/bin/ansible-playbook" -i .lab/inventory.yml playbooks/demo.yml "$@"

#!/usr/bin/env bash
# Repository checks that need no lab: the Prometheus rules and Grafana dashboard (promtool check/test rules, metric
# names), the execution environment against ansible-builder's schema, and the README's playbook examples.
set -euo pipefail
export PGHA_SCRIPT_NAME=checks
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

pgha_require_venv "${PGHA_VENV_AC221}"
pgha_require_tree
cd "${PGHA_REPO}"
PGHA_ANSIBLE_VENV="${PGHA_VENV_AC221}" sh tests/monitoring/run.sh
"${PGHA_VENV_AC221}/bin/python" -m pytest -p no:cacheprovider -q tests/repo

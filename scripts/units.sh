#!/usr/bin/env bash
# ansible-test units --local on both supported ansible-core lines. Usage: units.sh [2.21|2.19|all] [ansible-test args]
set -euo pipefail
export PGHA_SCRIPT_NAME=units
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=scripts/ansible-test-legs.sh
. "$(dirname "$0")/ansible-test-legs.sh"

pgha_run_legs units "$@"

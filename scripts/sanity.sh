#!/usr/bin/env bash
# ansible-test sanity --local on both supported ansible-core lines. Usage: sanity.sh [2.21|2.19|all] [ansible-test args]
set -euo pipefail
export PGHA_SCRIPT_NAME=sanity
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=scripts/ansible-test-legs.sh
. "$(dirname "$0")/ansible-test-legs.sh"

pgha_run_legs sanity "$@"

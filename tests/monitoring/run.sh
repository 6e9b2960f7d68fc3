#!/bin/sh
# Checks the Patroni Prometheus rules and Grafana dashboard without any Patroni running:
#   1. renders roles/patroni_prometheus/templates/patroni.rules.yml.j2 with the role's defaults (through Ansible's
#      template module, so the file tested is the file the role writes),
#   2. `promtool check rules` on it, 3. `promtool test rules` on every *_test.yml here,
#   4. pytest on the dashboard and metric-name tests in this directory.
# Environment: PGHA_ANSIBLE_VENV (default <repo>/.venv/ac221), PROMTOOL (default promtool on PATH).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
venv=${PGHA_ANSIBLE_VENV:-$repo/.venv/ac221}
promtool=${PROMTOOL:-promtool}
role=$repo/roles/patroni_prometheus

for tool in "$venv/bin/ansible" "$venv/bin/python"; do
    [ -x "$tool" ] || { echo "run.sh: $tool not found; run scripts/setup-host.sh or set PGHA_ANSIBLE_VENV" >&2; exit 2; }
done
command -v "$promtool" >/dev/null || { echo "run.sh: promtool not found; apt-get install prometheus or set PROMTOOL" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# $1 = output file name, $2 = not_after (epoch seconds) of the one certificate the tests use
render() {
    ANSIBLE_LOCALHOST_WARNING=False ANSIBLE_INVENTORY_UNPARSED_WARNING=False ANSIBLE_NOCOLOR=1 \
        "$venv/bin/ansible" localhost -c local -m ansible.builtin.template \
        -a "src=$role/templates/patroni.rules.yml.j2 dest=$work/$1 mode=0644" \
        -e "@$role/defaults/main.yml" \
        -e "{\"__patroni_prometheus_certificates\": [{\"scope\": \"c1\", \"name\": \"m1\", \"not_after\": $2}]}" \
        >"$work/render.log" 2>&1 || { cat "$work/render.log" >&2; echo "run.sh: rendering $1 failed" >&2; exit 1; }
}
render patroni.rules.yml 2592000
render patroni-renewed.rules.yml 34560000

"$promtool" check rules "$work/patroni.rules.yml"
cp "$here"/*_test.yml "$work/"
(cd "$work" && "$promtool" test rules ./*_test.yml)

PGHA_RENDERED_RULES="$work/patroni.rules.yml" PROMTOOL="$promtool" \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider "$here"

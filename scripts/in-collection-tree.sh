#!/usr/bin/env bash
# Runs a command whose working directory is the collection tree as a real directory, not through a symlink.
# Needed for ansible-test units: pytest resolves its working directory (our symlink leads back to the repo, which
# has no ansible_collections/ parent) and ansible-test's pytest plugin then rejects every test file.
# Preferred: a private mount namespace in which the repo is bind-mounted at the tree's own path, so paths in
# the output match the symlink and nothing is left behind. Fallback where namespaces are not allowed: a copy of
# the repo's tracked and untracked, not ignored, files.
set -euo pipefail
export PGHA_SCRIPT_NAME=in-collection-tree
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

[[ $# -gt 0 ]] || pgha_die "usage: scripts/in-collection-tree.sh COMMAND [ARGS...]"

if [[ "$1" == --inside-namespace ]]; then
    shift
    namespace_dir="$(dirname "${PGHA_COLLECTION_DIR}")"
    # The tmpfs hides the symlink in this namespace only; the real tree outside is untouched.
    mount -t tmpfs -o size=1m,mode=0755 pgha-tree "${namespace_dir}" \
        || pgha_die "cannot mount a tmpfs on ${namespace_dir} inside the mount namespace"
    mkdir "${PGHA_COLLECTION_DIR}"
    mount --bind "${PGHA_REPO}" "${PGHA_COLLECTION_DIR}" \
        || pgha_die "cannot bind-mount ${PGHA_REPO} on ${PGHA_COLLECTION_DIR} inside the mount namespace"
    cd "${PGHA_COLLECTION_DIR}"
    exec "$@"
fi

if unshare --mount --propagation private true 2>/dev/null; then
    exec unshare --mount --propagation private "${PGHA_REPO}/scripts/in-collection-tree.sh" --inside-namespace "$@"
fi

copy_root="${PGHA_BUILD_DIR}/copy"
copy="${copy_root}/ansible_collections/pgha/patroni"
pgha_log "mount namespaces are not available here: running from a copy in ${copy} (its tests/output is there too)"
rm -rf "${copy_root}"
mkdir -p "${copy}"
(cd "${PGHA_REPO}" && git ls-files --cached --others --exclude-standard -z) \
    | tar -C "${PGHA_REPO}" --null --ignore-failed-read -T - -cf - \
    | tar -C "${copy}" -xf - \
    || pgha_die "copying ${PGHA_REPO} to ${copy} failed"
cd "${copy}"
exec "$@"

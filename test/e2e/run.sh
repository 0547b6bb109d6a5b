#!/usr/bin/env bash
# test/e2e/run.sh — the end-to-end suite, for real: a private libvirtd and a bridge in
# a network namespace of its own (guest traffic never leaves it), the project's own
# Debian guest image (built once, then reused from the cache), TCG guests on this
# host. The vitest e2e project runs inside the namespace; the harness is torn down
# on exit, also on failure, ending only the daemons it started (by PID).
set -euo pipefail
cd "$(dirname "$0")/../.."
HARNESS=test/e2e/harness
export NS=${NS:-labtest} BR=${BR:-labbr0} BR_CIDR=${BR_CIDR:-10.77.0.1/24}
export STATE=${STATE:-/var/tmp/lab-e2e/libvirt}
export LAB_STATE_DIR=${LAB_STATE_DIR:-/var/tmp/lab-e2e/state}

[ -f dist/cmd/lab.js ] || npm run build
bash "$HARNESS/build-image.sh"
cleanup() { bash "$HARNESS/labns.sh" down || true; }
trap cleanup EXIT
bash "$HARNESS/labns.sh" down >/dev/null 2>&1 || true   # leftovers of an interrupted run
bash "$HARNESS/labns.sh" up
eval "$(bash "$HARNESS/labns.sh" env)"
export LIBVIRT_DEFAULT_URI LAB_E2E_BRIDGE=$BR
# Run in the background and waited for: a SIGTERM (CI's deadline, `timeout`) then reaches
# this shell at once, which stops vitest (its guests with the harness) and tears down.
# vitest runs in a session of its own (setsid): the whole tree (npm, vitest, its workers,
# the lab processes of the tests) is signalled as one group, not only its first process.
child=
stop() {
  echo "e2e: stopped by SIGTERM (a deadline?): ending the tests, then the harness" >&2
  [ -n "$child" ] && kill -TERM -- "-$child" 2>/dev/null && wait "$child"
  exit 124
}
trap stop TERM INT
setsid ip netns exec "$NS" env PATH="$PATH" LIBVIRT_DEFAULT_URI="$LIBVIRT_DEFAULT_URI" LAB_STATE_DIR="$LAB_STATE_DIR" \
  LAB_E2E_BRIDGE="$BR" LAB_E2E_FULL="${LAB_E2E_FULL:-}" CI="${CI:-}" npx vitest run --project e2e "$@" &
child=$!
wait "$child"

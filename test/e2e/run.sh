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
own_state=; [ -z "${LAB_STATE_DIR:-}" ] && own_state=1
export LAB_STATE_DIR=${LAB_STATE_DIR:-/var/tmp/lab-e2e/state}

[ -f dist/cmd/lab.js ] || npm run build
bash "$HARNESS/build-image.sh"
cleanup() { bash "$HARNESS/labns.sh" down || true; }
trap cleanup EXIT
bash "$HARNESS/labns.sh" down >/dev/null 2>&1 || true   # leftovers of an interrupted run
# The lab folders of an earlier run describe domains of a libvirtd whose state `labns.sh
# up` recreates empty: stale, and a test that checks "nothing was written" would find them
# (CI on 2026-12-07 failed 3 reliability tests on an e2erel folder left by a run cut short).
# Only the harness's default folder (never one the caller named), only its own file system.
if [ -n "$own_state" ] && [ -d "$LAB_STATE_DIR" ] && [ -n "$(ls -A "$LAB_STATE_DIR")" ]; then
  echo "e2e: removing lab folders left by an earlier run: $(ls -A "$LAB_STATE_DIR" | tr '\n' ' ')" >&2
  find "$LAB_STATE_DIR" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} +
fi
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

#!/usr/bin/env bash
# npm run bench — the figures in the same harness as the e2e suite (own netns + libvirtd).
set -euo pipefail
cd "$(dirname "$0")/../.."
HARNESS=test/e2e/harness
export NS=${NS:-labbench} BR=${BR:-labbr0} BR_CIDR=${BR_CIDR:-10.77.0.1/24}
export STATE=${STATE:-/var/tmp/lab-bench/libvirt} LAB_STATE_DIR=${LAB_STATE_DIR:-/var/tmp/lab-bench/state}
npm run build >/dev/null
bash "$HARNESS/build-image.sh" debian-12-lab
trap 'bash "$HARNESS/labns.sh" down || true' EXIT
bash "$HARNESS/labns.sh" down >/dev/null 2>&1 || true
bash "$HARNESS/labns.sh" up
eval "$(bash "$HARNESS/labns.sh" env)"
ip netns exec "$NS" env PATH="$PATH" LIBVIRT_DEFAULT_URI="$LIBVIRT_DEFAULT_URI" LAB_STATE_DIR="$LAB_STATE_DIR" \
  LAB_E2E_BRIDGE="$BR" npx tsx test/bench/up.ts

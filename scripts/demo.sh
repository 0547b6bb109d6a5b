#!/usr/bin/env bash
# scripts/demo.sh [up|lab ARGS...|down] — the main job on a fresh Debian/Ubuntu machine, as
# root: installs the host packages, builds lab, builds (or reuses) the debian-12-lab guest
# image, starts a private libvirtd inside a network namespace of its own (nothing of the
# lab's traffic reaches your LAN), then runs `lab up -f Labfile.example.yaml` there.
#   scripts/demo.sh                 set up and bring the example lab up (default: up)
#   scripts/demo.sh lab status      any lab command, run inside the demo's namespace
#   scripts/demo.sh lab ssh coreos2 -- etcdctl get /message
#   scripts/demo.sh down            lab down, then stop the private libvirtd and the namespace
# On a machine with a system libvirtd you do not need this: `lab up` talks to it directly.
set -euo pipefail
cd "$(dirname "$0")/.."
export NS=${NS:-labdemo} BR=${BR:-labdemo0} BR_CIDR=${BR_CIDR:-10.76.0.1/24}
export STATE=${STATE:-/var/tmp/lab-demo/libvirt}
HARNESS=test/e2e/harness
in_ns() {
  eval "$(bash "$HARNESS/labns.sh" env)"
  ip netns exec "$NS" env PATH="$PATH" LIBVIRT_DEFAULT_URI="$LIBVIRT_DEFAULT_URI" node dist/cmd/lab.js "$@"
}
case ${1:-up} in
  up)
    bash scripts/install-host-deps.sh
    [ -d node_modules ] || npm ci --no-audit --no-fund
    npm run build
    bash "$HARNESS/build-image.sh" debian-12-lab
    bash "$HARNESS/labns.sh" up
    in_ns up -f Labfile.example.yaml
    in_ns status --table -f Labfile.example.yaml
    in_ns units -f Labfile.example.yaml
    echo "next: scripts/demo.sh lab ssh coreos2 -- etcdctl get /message   |   scripts/demo.sh down"
    ;;
  lab) shift; in_ns "$@" ;;
  down)
    in_ns down -f Labfile.example.yaml || true
    bash "$HARNESS/labns.sh" down
    ;;
  *) echo "usage: $0 [up|lab ARGS...|down]" >&2; exit 2 ;;
esac

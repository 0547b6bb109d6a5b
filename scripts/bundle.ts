// The second half of `npm run build`: bundles the command line into dist/cmd/lab.js and
// its chunks, after tsc has type-checked and emitted dist/. Why: unbundled, `lab status`
// loaded ~410 files (execa, zod and yaml alone ~280) and spent ~0.4 s in Node's module
// loader before doing any work; bundled it loads ~30. Each command stays a chunk of its
// own (code splitting), so `lab status` does not compile the TUI of `lab up`.
// Not bundled: ssh2 (CommonJS with optional native parts it loads by path) and the
// React devtools that ink imports only when DEV is set.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import path from 'node:path';

const root = path.join(import.meta.dirname, '..');
const out = path.join(root, 'dist', 'cmd');
rmSync(path.join(out, 'chunks'), { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: ['cmd/lab.ts'],
  outdir: out,
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunks/[name]-[hash]',
  external: ['ssh2', 'cpu-features', 'react-devtools-core'],
  // Bundled CommonJS (cross-spawn under execa) calls require() for Node's built-ins.
  banner: {
    js: "import { createRequire as __labRequire } from 'node:module';\nconst require = __labRequire(import.meta.url);",
  },
  logLevel: 'warning',
});

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** lab's package: its folder and the package.json read there, found once. */
let found: { dir: string; version: string } | undefined;

/**
 * The folder of lab's own package (package.json named "lab"), found by walking up from this
 * module. It holds wherever the module was loaded from: the TypeScript sources (tests),
 * tsc's dist/lab/… or a bundled chunk in dist/cmd/chunks/ (scripts/bundle.ts), so no
 * caller depends on how many folders separate it from the package.
 */
export function packageRoot(): string {
  return labPackage().dir;
}

function labPackage(): { dir: string; version: string } {
  if (found) return found;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = path.join(dir, 'package.json');
    const pkg = existsSync(file)
      ? (JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown })
      : {};
    if (pkg.name === 'lab') {
      found = { dir, version: String(pkg.version) };
      return found;
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error("lab's package.json not found above its own code");
    dir = up;
  }
}

/**
 * lab's command-line entry, which lab starts again (with its own execArgv) for its agent and
 * pause guard: the built one, or cmd/lab.ts when lab runs from source under tsx (tests).
 */
export function cliPath(): string {
  return import.meta.url.endsWith('.ts')
    ? path.join(packageRoot(), 'cmd', 'lab.ts')
    : path.join(packageRoot(), 'dist', 'cmd', 'lab.js');
}

/** The version in lab's package.json. */
export function packageVersion(): string {
  return labPackage().version;
}

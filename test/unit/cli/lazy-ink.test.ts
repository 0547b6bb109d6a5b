// `lab --help` and every command start fast because ink and react are loaded only by the
// two screens that draw, through dynamic import(). This walks the static import graph
// from each entry point and fails when ink or react become reachable from it.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.join(import.meta.dirname, '../../..');

/** Bare packages reachable from `entry` through static imports (type-only imports excluded). */
function staticPackages(entry: string): Set<string> {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    // `import x from '…'`, `import { … } from '…'`, `export … from '…'`; not `import type`, not import().
    for (const m of text.matchAll(/^(?:import|export)\s+(?!type\s)[^;]*?from\s+'([^']+)'/gm)) {
      const spec = m[1]!;
      if (!spec.startsWith('.')) {
        packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
        continue;
      }
      const base = path.resolve(path.dirname(file), spec).replace(/\.js$/, '');
      const next = [`${base}.ts`, `${base}.tsx`].find((f) => existsSync(f));
      if (!next) throw new Error(`${file}: cannot resolve ${spec}`);
      visit(next);
    }
  };
  visit(entry);
  return packages;
}

describe('ink and react stay out of start-up', () => {
  const entries = [
    'cmd/lab.ts',
    ...['up', 'status', 'ssh', 'down', 'plan', 'validate', 'render', 'doctor'].map(
      (c) => `cmd/commands/${c}.ts`,
    ),
  ];
  it.each(entries)('%s does not import ink or react statically', (entry) => {
    const pkgs = staticPackages(path.join(root, entry));
    expect([...pkgs].filter((p) => p === 'ink' || p === 'react')).toEqual([]);
  });

  it('the walk does find them where they are used (the check can fail)', () => {
    const pkgs = staticPackages(path.join(root, 'cmd/status-screen.tsx'));
    expect(pkgs.has('ink')).toBe(true);
    expect(pkgs.has('react')).toBe(true);
  });
});

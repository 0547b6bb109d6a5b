import { execa } from 'execa';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliPath, packageRoot, packageVersion } from '../../../lab/runtime/package-root.js';

const root = path.join(import.meta.dirname, '../../..');
const built = path.join(root, 'dist/cmd');

describe('package root', () => {
  it('is the folder of package.json, and the CLI from source is cmd/lab.ts', () => {
    expect(packageRoot()).toBe(root);
    expect(cliPath()).toBe(path.join(root, 'cmd/lab.ts'));
    expect(packageVersion()).toBe(
      (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version,
    );
  });
});

// The built CLI (npm run build: tsc, then scripts/bundle.ts) is what users and the e2e run.
describe('the bundled CLI', () => {
  /** Every module specifier the built entry and its chunks import, statically or not. */
  function specifiers(): string[] {
    const files = ['lab.js', ...readdirSync(path.join(built, 'chunks')).map((f) => `chunks/${f}`)];
    const found = new Set<string>();
    for (const f of files) {
      const text = readFileSync(path.join(built, f), 'utf8');
      // esbuild writes statements one per line, with double quotes.
      const statics = text.matchAll(/^(?:import|export)\b[^;]*?["']([^"']+)["'];$/gms);
      const dynamics = text.matchAll(/\bimport\("([^"]+)"\)/g);
      for (const m of [...statics, ...dynamics]) found.add(m[1]!);
    }
    return [...found];
  }

  it('imports only its own chunks, Node built-ins and the packages left out on purpose', () => {
    const outside = specifiers().filter(
      (s) =>
        !s.startsWith('node:') &&
        !/^\.\.?\/(chunks\/)?[\w-]+\.js$/.test(s) &&
        !['ssh2', 'react-devtools-core'].includes(s),
    );
    expect(outside).toEqual([]);
  });

  it('runs from its bundle, finding its package from a chunk (version, schema, templates)', async () => {
    const run = (...args: string[]) =>
      execa(process.execPath, [path.join(built, 'lab.js'), ...args], { stdin: 'ignore' });
    expect((await run('--version')).stdout).toBe(packageVersion());
    expect(JSON.parse((await run('schema')).stdout)).toHaveProperty('$schema');
    const { stdout } = await run('image', 'list', '--json');
    expect(() => JSON.parse(stdout) as unknown).not.toThrow();
  });
});

// Every bad or hostile input, through the real CLI as a user runs it (node dist/cmd/lab.js):
// `lab up -f` and `lab validate -f` exit 2, print `file:line:col: message` first and no
// stack trace, and create nothing (state and cache folders stay absent).
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { badCases } from '../../fixtures/bad/cases.js';

const root = path.join(import.meta.dirname, '../../..');
const LAB = path.join(root, 'dist/cmd/lab.js');
const cases = badCases();
const scratch = mkdtempSync(path.join(os.tmpdir(), 'lab-bad-cli-'));

/** Newest mtime of the TypeScript sources the built CLI comes from. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (/\.tsx?$/.test(e.name)) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

const escapeRe = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** At most this many CLI processes at once: each is a second or less of CPU. */
const slots = Math.max(2, os.availableParallelism() + 1);
let running = 0;
const waiting: (() => void)[] = [];
async function limited<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= slots) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** One run of the CLI with fresh, not yet existing state and cache folders. */
async function run(command: 'up' | 'validate', labfile: string) {
  const home = mkdtempSync(path.join(scratch, `${command}-`));
  const state = path.join(home, 'state');
  const cache = path.join(home, 'cache');
  const r = await limited(() =>
    execa('node', [LAB, command, '-f', labfile], {
      reject: false,
      stdin: 'ignore',
      cwd: home,
      timeout: 60_000,
      env: {
        LAB_STATE_DIR: state,
        LAB_CACHE_DIR: cache,
        XDG_CACHE_HOME: path.join(home, 'xdg-cache'),
        LAB_AGENT: '0',
        CI: '1',
        NO_COLOR: '1',
      },
    }),
  );
  return { ...r, stderr: String(r.stderr), stdout: String(r.stdout), left: readdirSync(home) };
}

const fixtureListing = () =>
  [path.join(root, 'test/fixtures/bad'), path.join(root, 'test/fixtures/bad/templates')].map((d) =>
    readdirSync(d).sort(),
  );
let before: string[][];

describe('every bad or hostile input, through the built CLI', { timeout: 240_000 }, () => {
  beforeAll(async () => {
    // The built CLI must be the code under test: rebuild it when a source is newer.
    const built = existsSync(LAB) ? statSync(LAB).mtimeMs : 0;
    if (built < Math.max(newestSource(path.join(root, 'lab')), newestSource(path.join(root, 'cmd'))))
      await execa('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdin: 'ignore' });
    before = fixtureListing();
  }, 120_000);

  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('has at least 110 cases, Labfiles and templates', () => {
    expect(cases.length).toBeGreaterThanOrEqual(110);
    expect(cases.filter((c) => c.kind === 'template').length).toBeGreaterThanOrEqual(30);
  });

  it.concurrent.each(cases.map((c) => [c.name, c] as const))(
    '%s: up and validate exit 2 at file:line:col, no stack, nothing created',
    async (_, c) => {
      const runs = await Promise.all([run('up', c.labfile), run('validate', c.labfile)]);
      for (const [command, r] of [
        ['up', runs[0]],
        ['validate', runs[1]],
      ] as const) {
        const what = `lab ${command} -f ${c.labfile}\n${r.stderr}`;
        expect(r.exitCode, what).toBe(2);
        const first = r.stderr.split('\n')[0] ?? '';
        expect(first, what).toMatch(/^[^:\s][^:]*:\d+:\d+: \S/);
        expect(first.startsWith(`${c.labfile}:`), what).toBe(true);
        expect(r.stderr, what).not.toMatch(/^\s+at /m);
        expect(r.stderr, what).not.toContain('internal error');
        expect(r.stdout, what).toBe('');
        // Nothing was made: no state folder, no image cache, nothing else.
        expect(r.left, what).toEqual([]);
        if (c.kind === 'template') {
          // The message names the template file, at a line and column of its own.
          const template = c.labfile.replace(/\.Labfile$/, '.yaml');
          expect(first, what).toContain(`template ${template} is invalid`);
          expect(r.stderr, what).toMatch(new RegExp(`\\n {4}${escapeRe(template)}:[1-9]\\d*:[1-9]\\d*: \\S`));
        }
      }
    },
  );

  it('left the fixture folders as they were', () => {
    expect(fixtureListing()).toEqual(before);
  });
});

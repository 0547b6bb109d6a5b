// The CLI from source (tsx), as the tests of its commands run it: a state folder of its own
// for each run, and a `lab` on PATH for shells (completion scripts, help examples).
import { execa } from 'execa';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export const root = path.join(import.meta.dirname, '../../..');
export const example = path.join(root, 'Labfile.example.yaml');
/** tsx by path: the CLI runs in folders that have no node_modules. */
const tsx = pathToFileURL(path.join(root, 'node_modules/tsx/dist/loader.mjs')).href;

export const tmp = (prefix: string) => mkdtempSync(path.join(os.tmpdir(), `lab-${prefix}-`));

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
}

/** Each run's environment: its own state folder, no LAB_FILE, unless given. */
const envOf = (opts: RunOptions) => ({ LAB_STATE_DIR: tmp('state'), LAB_FILE: '', ...opts.env });

/** `lab ARGS` from source. */
export async function cli(args: string[], opts: RunOptions = {}) {
  const r = await execa(process.execPath, ['--import', tsx, path.join(root, 'cmd/lab.ts'), ...args], {
    reject: false,
    stripFinalNewline: false,
    stdin: 'ignore',
    cwd: opts.cwd ?? root,
    env: envOf(opts),
  });
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

let bin: string | undefined;

/** A folder holding a `lab` that runs the CLI from source: first on PATH for shells. */
export function labBin(): string {
  if (bin) return bin;
  bin = tmp('bin');
  writeFileSync(
    path.join(bin, 'lab'),
    `#!/bin/sh\nexec '${process.execPath}' --import '${tsx}' '${path.join(root, 'cmd/lab.ts')}' "$@"\n`,
    { mode: 0o755 },
  );
  return bin;
}

/** Runs `program args` with lab on PATH (bash -c LINE runs a help example as written). */
export async function withLab(program: string, args: string[], opts: RunOptions = {}) {
  const r = await execa(program, args, {
    reject: false,
    stripFinalNewline: false,
    stdin: 'ignore',
    cwd: opts.cwd ?? root,
    env: { ...envOf(opts), PATH: `${labBin()}:${process.env.PATH ?? '/usr/bin:/bin'}` },
  });
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** The lines under a help text's "Examples:". */
export function helpExamples(help: string): string[] {
  const at = help.indexOf('\nExamples:\n');
  if (at < 0) return [];
  return help
    .slice(at + '\nExamples:\n'.length)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

/** Whether a program is on PATH. */
export async function installed(program: string): Promise<boolean> {
  return (await execa('sh', ['-c', `command -v "$1"`, 'sh', program], { reject: false })).exitCode === 0;
}

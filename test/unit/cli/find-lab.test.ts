// How a new user meets the CLI (issue 19), through the CLI itself: which lab a command is
// about when no -f is given (the Labfile here or above, LAB_FILE, --lab NAME, the lab made
// from this folder, the only lab), and usage mistakes: did-you-mean, extra words, options
// before the command, `lab` alone, `lab help CMD`.
import { execa } from 'execa';
import { chownSync, copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { suggest } from '../../../cmd/suggest.js';

const root = path.join(import.meta.dirname, '../../..');
const example = path.join(root, 'Labfile.example.yaml');
/** tsx by path: the CLI runs in folders that have no node_modules. */
const tsx = pathToFileURL(path.join(root, 'node_modules/tsx/dist/loader.mjs')).href;

/** The CLI from source, in `cwd`, with a state folder of its own unless one is given. */
const cli = (args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) =>
  execa('node', ['--import', tsx, path.join(root, 'cmd/lab.ts'), ...args], {
    reject: false,
    cwd: opts.cwd ?? root,
    env: { LAB_STATE_DIR: mkdtempSync(path.join(os.tmpdir(), 'lab-find-')), LAB_FILE: '', ...opts.env },
    extendEnv: true,
  });

/** A state folder with labs recorded as `lab up` records them (name -> Labfile). */
function stateWith(labs: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-find-state-'));
  for (const [name, labfile] of Object.entries(labs)) {
    mkdirSync(path.join(dir, name, 'private'), { recursive: true });
    writeFileSync(
      path.join(dir, name, 'private', 'state.json'),
      JSON.stringify({
        version: 1,
        serial: 1,
        lab: name,
        labfile,
        uri: 'qemu:///system',
        updated: new Date().toISOString(),
        network: { mode: 'bridge', bridge: 'br0' },
        nodes: {},
      }),
    );
    writeFileSync(path.join(dir, name, 'private', 'secret'), `${'ab'.repeat(32)}\n`, { mode: 0o600 });
  }
  return dir;
}

/** A folder tree: top/Labfile.yaml (the example, lab coreos-lab) and top/a/b. */
function tree(): { top: string; deep: string } {
  const top = mkdtempSync(path.join(os.tmpdir(), 'lab-find-tree-'));
  copyFileSync(example, path.join(top, 'Labfile.yaml'));
  const deep = path.join(top, 'a', 'b');
  mkdirSync(deep, { recursive: true });
  return { top, deep };
}

const nowhere = () => mkdtempSync(path.join(os.tmpdir(), 'lab-find-empty-'));

describe('suggest', () => {
  it('a typo or a prefix finds what was meant; nothing far off is offered', () => {
    expect(suggest('stauts', ['status', 'ssh', 'up'])).toEqual(['status']);
    expect(suggest('--jsn', ['--json', '--file'])).toEqual(['--json']);
    expect(suggest('check', ['checkpoint', 'doctor'])).toEqual(['checkpoint']);
    expect(suggest('frobnicate', ['status', 'ssh', 'up'])).toEqual([]);
  });
});

describe('finding the lab', { timeout: 60_000 }, () => {
  it('the Labfile in a parent folder, as git finds its repository', async () => {
    const { deep } = tree();
    const r = await cli(['validate'], { cwd: deep });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/Labfile\.yaml: valid: lab coreos-lab/);
  });

  it('LAB_FILE when there is none above', async () => {
    const r = await cli(['validate'], { cwd: nowhere(), env: { LAB_FILE: example } });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`${example}: valid: lab coreos-lab`);
  });

  it('--lab NAME from any folder: the Labfile its last up recorded', async () => {
    const state = stateWith({ 'coreos-lab': example });
    const r = await cli(['validate', '--lab', 'coreos-lab'], {
      cwd: nowhere(),
      env: { LAB_STATE_DIR: state },
    });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`${example}: valid`);
    const unknown = await cli(['validate', '--lab', 'nope'], {
      cwd: nowhere(),
      env: { LAB_STATE_DIR: state },
    });
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toContain('no lab nope on this host (labs: coreos-lab)');
    const both = await cli(['validate', '--lab', 'coreos-lab', '-f', example], {
      env: { LAB_STATE_DIR: state },
    });
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toContain('give either -f FILE or --lab NAME, not both');
  });

  it('the lab brought up from this folder (lab up -f X, then lab status), for every command', async () => {
    const dir = nowhere();
    const mine = path.join(dir, 'my-lab.yaml');
    copyFileSync(example, mine);
    const other = path.join(nowhere(), 'Labfile.yaml');
    copyFileSync(example, other);
    const state = stateWith({ mine: mine, other: other });
    const r = await cli(['validate'], { cwd: dir, env: { LAB_STATE_DIR: state } });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`${mine}: valid`);
  });

  it('elsewhere: the only lab serves a command that reads; several are listed, none chosen', async () => {
    const one = stateWith({ 'coreos-lab': example });
    const read = await cli(['ssh-config'], { cwd: nowhere(), env: { LAB_STATE_DIR: one } });
    expect(read.stderr).toBe('');
    expect(read.exitCode).toBe(0);
    expect(read.stdout).toMatch(/^Host coreos1\.coreos-lab coreos-lab-coreos1 coreos1 10\.52\.0\.52$/m);
    // A command that changes the lab is not pointed at a lab by elimination.
    const write = await cli(['validate'], { cwd: nowhere(), env: { LAB_STATE_DIR: one } });
    expect(write.exitCode).toBe(2);
    expect(write.stderr).toMatch(
      /no Labfile\.yaml in .* or a parent folder, and LAB_FILE is not set; labs on this host: coreos-lab/,
    );
    const two = stateWith({ 'coreos-lab': example, other: path.join(root, 'nowhere.yaml') });
    const many = await cli(['ssh-config'], { cwd: nowhere(), env: { LAB_STATE_DIR: two } });
    expect(many.exitCode).toBe(2);
    expect(many.stderr).toContain(`labs on this host: coreos-lab (${example}), other (`);
    expect(many.stderr).toContain('hint: name one: --lab NAME, or -f FILE');
  });

  it.runIf(process.getuid?.() === 0)(
    'a Labfile above that belongs to another user is refused: anyone may put one in /tmp',
    async () => {
      const { top, deep } = tree();
      chownSync(path.join(top, 'Labfile.yaml'), 65534, 65534);
      const r = await cli(['validate'], { cwd: deep });
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toMatch(/Labfile\.yaml belongs to uid 65534, not to you/);
      expect(r.stderr).toContain(`hint: if you trust it, name it: -f ${path.join(top, 'Labfile.yaml')}`);
    },
  );
});

describe('usage mistakes', { timeout: 60_000 }, () => {
  it('`lab` alone prints the help and exits 0; lab help CMD prints that command’s', async () => {
    const alone = await cli([]);
    expect(alone.exitCode).toBe(0);
    expect(alone.stdout).toMatch(/^lab: one declarative Labfile/);
    const help = await cli(['help', 'status']);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toMatch(/^Usage: lab status /);
    expect((await cli(['status', '--help'])).stdout).toBe(help.stdout);
  });

  it('an unknown command or option: did you mean, in two lines on stderr, exit 2', async () => {
    const cmd = await cli(['stauts']);
    expect(cmd.exitCode).toBe(2);
    expect(cmd.stdout).toBe('');
    expect(cmd.stderr).toBe(
      'lab: error: unknown command "stauts" (did you mean status?)\nhint: lab help lists the commands',
    );
    const opt = await cli(['status', '--jsn']);
    expect(opt.exitCode).toBe(2);
    expect(opt.stderr).toMatch(
      /^lab: error: unknown option --jsn \(did you mean --json\?\)\nhint: Usage: lab status /,
    );
    const img = await cli(['image', 'list', '--jsn']);
    expect(img.stderr).toMatch(/unknown option --jsn \(did you mean --json\?\)/);
  });

  it('extra words are an error, not ignored', async () => {
    const r = await cli(['units', 'extra', '-f', example]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^lab: error: unexpected argument "extra": this command takes none/);
  });

  it('options may come before the command', async () => {
    const r = await cli(['-f', example, 'validate']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('valid: lab coreos-lab');
    const odd = await cli(['--frob', 'validate']);
    expect(odd.exitCode).toBe(2);
    expect(odd.stderr).toContain('--frob before the command');
  });
});

// Upgrades keep labs (issue 18): a lab brought up by the release before etcd's member list
// left the first-boot config converges under this build with no mutating call (counted by
// the shims), and a node added then joins its cluster without touching the others. The
// release before is built from git (a worktree of PREVIOUS, this checkout's node_modules).
import { execa } from 'execa';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bridgeLabfile } from '../support/e2e-labfile.js';
import { domainsOf, mutating, ok, shimmed, verbCount } from './checkpoints.js';
import { lab, virsh, writeLabfile } from './helpers.js';

/** The last commit before runtime membership (metadata schema 1). */
const PREVIOUS = '353820b';
const root = path.join(import.meta.dirname, '../..');
const NAME = 'e2eupg';
const IPS: Record<string, string> = { u1: '10.77.0.91', u2: '10.77.0.92', u3: '10.77.0.93' };
const labfileOf = (names: string[]) =>
  bridgeLabfile({
    name: NAME,
    services: '[etcd]',
    nodes: names.map((n) => `  - { name: ${n}, ip: ${IPS[n]} }\n`).join(''),
  });
const two = writeLabfile(labfileOf(['u1', 'u2']));
const three = writeLabfile(labfileOf(['u1', 'u2', 'u3']));

async function membersOf(node: string): Promise<string[]> {
  const r = await fetch(`http://${IPS[node]}:2379/v3/cluster/member/list`, {
    method: 'POST',
    body: '{}',
    signal: AbortSignal.timeout(5000),
  });
  const doc = (await r.json()) as { members: { name: string; isLearner?: boolean }[] };
  return doc.members.map((m) => `${m.name}${m.isLearner ? ' (learner)' : ''}`).sort();
}

describe('a lab made by the release before runtime membership', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-e2e-prev-'));
  const previous = path.join(dir, 'tree');
  beforeAll(async () => {
    const has = () => execa('git', ['-C', root, 'cat-file', '-e', `${PREVIOUS}^{commit}`], { reject: false });
    // A shallow clone (CI's may be one) gets its history from its origin first.
    if ((await has()).exitCode !== 0) {
      const shallow = await execa('git', ['-C', root, 'rev-parse', '--is-shallow-repository'], {
        reject: false,
      });
      if (String(shallow.stdout).trim() === 'true')
        await execa('git', ['-C', root, 'fetch', '--quiet', '--unshallow'], { reject: false });
    }
    if ((await has()).exitCode !== 0)
      throw new Error(
        `commit ${PREVIOUS} is not in this clone and its origin has none: the upgrade test needs it`,
      );
    await execa('git', ['-C', root, 'worktree', 'add', '--detach', previous, PREVIOUS]);
    symlinkSync(path.join(root, 'node_modules'), path.join(previous, 'node_modules'));
    await execa('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: previous });
    expect(existsSync(path.join(previous, 'dist/cmd/lab.js'))).toBe(true);
    const made = await execa('node', [path.join(previous, 'dist/cmd/lab.js'), 'up', '-f', two], {
      reject: false,
      stdin: 'ignore',
      env: { CI: '1' },
    });
    process.stderr.write(
      `\n$ (${PREVIOUS}) lab up -> ${made.exitCode}\n${String(made.stderr)}${String(made.stdout)}\n`,
    );
    expect(made.exitCode).toBe(0);
  });
  afterAll(async () => {
    await lab(['down', '-f', three]);
    await execa('git', ['-C', root, 'worktree', 'remove', '--force', previous], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  });

  it('converges under this build with no mutating call: no replace because the layout changed', async () => {
    expect(await virsh(['dumpxml', `${NAME}-u1`])).not.toContain('<lab:schema>');
    const plan = await lab(['plan', '--json', '-f', two]);
    ok(plan);
    expect((JSON.parse(plan.stdout) as { noop: boolean }).noop).toBe(true);
    const { r, calls } = await shimmed(['up', '-f', two]);
    ok(r);
    expect(r.stdout).toContain('nothing changed');
    expect(mutating(calls)).toEqual([]);
    expect(await membersOf('u1')).toEqual(['u1', 'u2']);
  });

  it('a node added under this build joins its cluster; the two get no call', async () => {
    const { r, calls } = await shimmed(['up', '-f', three]);
    ok(r);
    const changes = mutating(calls);
    expect(verbCount(changes, 'define')).toBe(1);
    expect(domainsOf(changes, 'start')).toEqual([`${NAME}-u3`]);
    for (const verb of ['destroy', 'undefine']) expect(verbCount(changes, verb), verb).toBe(0);
    expect(await membersOf('u1')).toEqual(['u1', 'u2', 'u3']);
  });
});

// The two scripts lab rotate-keys runs on a guest as the login user, run here by the
// same sh on a scratch HOME: the new login key is added once, the old one removed by its
// key blob, every other key (the user's own, from the Labfile) kept. Then what it does on
// the host once every node has its keys: each node's seed, kept rendering and definition.
import { execa } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabContext } from '../../../lab/apply/context.js';
import { keepRendering } from '../../../lab/apply/rendering.js';
import { ADD_KEY, DROP_KEY, reprovision } from '../../../lab/apply/rotate-keys.js';
import { hostKey, userKey } from '../../../lab/plan/identity.js';
import { imageLocation } from '../../../lab/providers/images.js';
import { renderNode } from '../../../lab/render/node.js';
import { LabDir } from '../../../lab/store/lab-dir.js';
import { readRendering, renderingFile } from '../../../lab/store/rendered.js';
import { labSpec } from '../../support/lab-spec.js';

const home = () => {
  const h = mkdtempSync(path.join(os.tmpdir(), 'lab-rotate-'));
  mkdirSync(path.join(h, '.ssh'), { mode: 0o700 });
  return h;
};
const sh = (h: string, script: string, ...args: string[]) =>
  execa('sh', ['-c', script, 'x', ...args], {
    env: { HOME: h, PATH: process.env.PATH ?? '' },
    reject: false,
  });

describe('lab rotate-keys on the guest: authorized_keys', () => {
  const oldKey = userKey(Buffer.alloc(32, 1), 'lab').publicKey;
  const newKey = userKey(Buffer.alloc(32, 2), 'lab').publicKey;
  const mine = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMineMineMineMineMineMineMineMineMineMineMine me@laptop';

  it('adds the new key once, then drops the old one by its blob, keeping the others', async () => {
    const h = home();
    const file = path.join(h, '.ssh', 'authorized_keys');
    // As cloud-init writes them, one with options in front.
    writeFileSync(file, `${oldKey}\n${mine}\nno-pty ${oldKey}\n`);
    expect((await sh(h, ADD_KEY, newKey)).exitCode).toBe(0);
    expect((await sh(h, ADD_KEY, newKey)).exitCode).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(`${oldKey}\n${mine}\nno-pty ${oldKey}\n${newKey}\n`);
    const r = await sh(h, DROP_KEY, oldKey.split(' ')[1]!);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(`${mine}\n${newKey}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('makes authorized_keys when there is none', async () => {
    const h = home();
    expect((await sh(h, ADD_KEY, newKey)).exitCode).toBe(0);
    expect(readFileSync(path.join(h, '.ssh', 'authorized_keys'), 'utf8')).toBe(`${newKey}\n`);
  });
});

describe('lab rotate-keys on the host: each node provisioned anew with the new keys', () => {
  const saved = process.env.LAB_STATE_DIR;
  beforeAll(() => {
    process.env.LAB_STATE_DIR = mkdtempSync(path.join(os.tmpdir(), 'lab-rotate-state-'));
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.LAB_STATE_DIR;
    else process.env.LAB_STATE_DIR = saved;
  });

  it('writes the seed, keeps the rendering lab plan diffs against, and defines the new config hash', async () => {
    const spec = labSpec({ name: 'rot' });
    const node = spec.nodes[0]!;
    const dir = new LabDir(spec.name);
    await dir.ensure();
    const d = { spec: node, paths: dir.nodePaths(node, imageLocation(node.template)) };
    mkdirSync(path.dirname(d.paths.seed!), { recursive: true });
    const [old, next] = [Buffer.alloc(32, 7), Buffer.alloc(32, 9)];
    const defined: string[] = [];
    const ctx = {
      lab: spec,
      dir,
      virsh: { define: (xml: string) => Promise.resolve(void defined.push(xml)) },
      onEvent: () => undefined,
    } as unknown as LabContext;
    // As lab up left it: the rendering of the old keys.
    const before = renderNode({ lab: spec, node, paths: d.paths, secret: old, type: 'qemu' });
    await keepRendering(ctx, before, old);
    expect((await readRendering(dir, node.name))?.configHash).toBe(before.configHash);

    await reprovision(ctx, d, next, 'qemu');
    const after = renderNode({ lab: spec, node, paths: d.paths, secret: next, type: 'qemu' });
    expect(after.configHash).not.toBe(before.configHash);
    expect((await readRendering(dir, node.name))?.configHash).toBe(after.configHash);
    expect(defined).toEqual([after.xml]);
    expect(existsSync(d.paths.seed!)).toBe(true);
    // The new host key is in the seed, never in the kept copy (masked there).
    const kept = readFileSync(renderingFile(dir, node.name), 'utf8');
    const keyBody = hostKey(next, spec.name, node.name).privateKey.split('\n')[1]!;
    expect(keyBody.length).toBeGreaterThan(20);
    expect(kept).not.toContain(keyBody);
    expect(kept).toContain('<secret: host key>');
  });
});

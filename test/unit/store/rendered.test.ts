// lab up keeps each node's first-boot files when it writes the node's seed, and lab plan
// diffs the next rendering against them: the copy is private and holds no secret.
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { LabContext } from '../../../lab/apply/context.js';
import { convergeNode } from '../../../lab/apply/converge-node.js';
import type { MemberRun } from '../../../lab/apply/membership.js';
import { deadlines } from '../../../lab/apply/prepare.js';
import { configChanges, maskSecrets, renderingSecrets } from '../../../lab/plan/config-changes.js';
import { hostKey } from '../../../lab/plan/identity.js';
import type { BaseImage } from '../../../lab/providers/images.js';
import type { Virsh } from '../../../lab/providers/virsh.js';
import { renderNode } from '../../../lab/render/node.js';
import { LabDir } from '../../../lab/store/lab-dir.js';
import { readRendering, renderingFile } from '../../../lab/store/rendered.js';
import type { StateWriter } from '../../../lab/store/state-file.js';
import { labSpec } from '../../support/lab-spec.js';

const secret = Buffer.alloc(32, 5);
// An Ignition node: its seed is a file lab writes itself (no ISO tool needed).
const labfile = (memory: string) =>
  labSpec({ name: 'keep', template: 'fedora-coreos-stable', extra: `defaults: { memory: ${memory} }\n` });

/** Every form the node's private host key or the lab secret could take in a text. */
function secretMaterial(node: string): string[] {
  const body = hostKey(secret, 'keep', node)
    .privateKey.split('\n')
    .filter((l) => l && !l.startsWith('-----'));
  return [...body, ...body.map(encodeURIComponent), 'PRIVATE KEY', 'PRIVATE%20KEY', secret.toString('hex')];
}

let dir: LabDir;

beforeAll(() => {
  process.env.LAB_STATE_DIR = mkdtempSync(path.join(os.tmpdir(), 'lab-rendered-'));
});

describe('the rendering lab up keeps when it writes a seed', () => {
  it('is written by the write-seed step: 0600 in a 0700 folder, secrets masked', async () => {
    const lab = labfile('2GiB');
    dir = new LabDir(lab.name);
    await dir.ensure();
    const node = lab.nodes[0]!;
    const desired = renderNode({ lab, node, paths: dir.nodePaths(node, {}), secret, type: 'qemu' });
    const ctx: LabContext = { lab, dir, virsh: {} as Virsh, onEvent: () => {} };
    const result = await convergeNode({
      ctx,
      desired,
      plan: { node: node.name, actions: ['write-seed'], reasons: ['seed is gone'] },
      image: {} as BaseImage,
      secret,
      deadlines: deadlines('qemu'),
      state: { node: () => Promise.resolve() } as unknown as StateWriter,
      sessions: new Map(),
      agent: Promise.resolve(undefined),
      noWait: true,
      unwaited: false,
      members: { removed: new Map() } as unknown as MemberRun,
    });
    expect(result).toMatchObject({ ok: true, actions: ['write-seed'] });

    const file = renderingFile(dir, node.name);
    expect(file).toBe(path.join(dir.private, 'rendered', `${node.name}.json`));
    expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    for (const m of secretMaterial(node.name)) expect(text).not.toContain(m);
    const known = renderingSecrets(secret, lab.name, node.name);
    expect(await readRendering(dir, node.name)).toEqual({
      configHash: desired.configHash,
      files: { 'config.ign': maskSecrets(desired.bundle.files['config.ign']!, known) },
    });
  });

  it('is what lab plan diffs the next rendering against, with no private key in the diff', async () => {
    const lab = labfile('2GiB');
    const node = lab.nodes[0]!;
    const stored = await readRendering(dir, node.name);
    // The Labfile now gives the node a file of its own.
    const next = labSpec({
      name: 'keep',
      template: 'fedora-coreos-stable',
      extra: 'defaults: { memory: 2GiB }\n',
      nodes:
        '  - { name: a, ip: 10.9.0.2, files: [{ path: /etc/motd, content: "hi\\n" }] }\n  - { name: b, ip: 10.9.0.3 }\n',
    });
    const desired = renderNode({
      lab: next,
      node: next.nodes[0]!,
      paths: dir.nodePaths(node, {}),
      secret,
      type: 'qemu',
    });
    const c = configChanges({
      node: node.name,
      stored,
      appliedHash: stored!.configHash,
      desired: desired.bundle.files,
      known: renderingSecrets(secret, lab.name, node.name),
    });
    expect(c.note).toBeUndefined();
    expect(c.changes!.map((f) => f.file)).toEqual(['config.ign']);
    const diff = c.changes![0]!.diff;
    expect(diff).toContain('--- a config.ign (applied)\n+++ a config.ign (Labfile)\n');
    expect(diff).toMatch(/^\+.*"path": "\/etc\/motd"/m);
    for (const m of secretMaterial(node.name)) expect(diff).not.toContain(m);
    // Had the copy kept the key, a diff with all of it as context would show it: it does not.
    const whole = configChanges({
      node: node.name,
      stored,
      appliedHash: stored!.configHash,
      desired: {},
      known: [],
    });
    expect(whole.changes![0]!.diff).toContain('<secret: host key>');
    for (const m of secretMaterial(node.name)) expect(whole.changes![0]!.diff).not.toContain(m);
  });

  it('is undefined when nothing (or nothing readable) is stored: a lab made by an older lab', async () => {
    expect(await readRendering(dir, 'b')).toBeUndefined();
    writeFileSync(renderingFile(dir, 'b'), '{"configHash": 1}');
    expect(await readRendering(dir, 'b')).toBeUndefined();
  });
});

// Labs made before etcd's member list left the first-boot config (schema 1) carry the
// config hash of that layout in their domains' metadata. The hashes here were computed by
// the release before the change (its renderer, this folder's Labfiles, the test secret):
// the legacy render must give them byte for byte, or such a lab would be replaced on
// upgrade. The current layout must differ from it only where the member list was.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { renderNode } from '../../lab/render/node.js';
import { checkLabfileText } from '../../lab/spec/load.js';

const hashes = JSON.parse(
  readFileSync(path.join(import.meta.dirname, 'schema1-config-hashes.json'), 'utf8'),
) as Record<string, string>;

function nodesOf(name: string) {
  const file = path.join(import.meta.dirname, name, 'Labfile.yaml');
  const r = checkLabfileText(readFileSync(file, 'utf8'), file);
  if (!r.ok) throw new Error(r.issues.map((i) => i.message).join('\n'));
  return r.lab.nodes.map((node) =>
    renderNode({
      lab: r.lab,
      node,
      paths: { disk: '/d', console: '/c', seed: '/s', fwcfg: '/f' },
      secret: Buffer.alloc(32, 1),
      type: 'qemu',
    }),
  );
}

describe('schema 1 config hashes (the release before runtime membership)', () => {
  it.each(Object.keys(hashes).sort())('%s: the legacy render gives the recorded hash', (key) => {
    const [name, node] = key.split('/') as [string, string];
    const d = nodesOf(name).find((n) => n.spec.name === node)!;
    expect(d.legacyConfigHash()).toBe(hashes[key]);
  });

  it('the current first-boot config of an etcd node is not the legacy one', () => {
    const d = nodesOf('debian3')[0]!;
    expect(d.configHash).not.toBe(d.legacyConfigHash());
  });
});

describe('the member list is not in any first-boot config', () => {
  // A fourth etcd node added to each Labfile: the first three render the same bytes.
  it.each(['debian3', 'walkthrough', 'coreos3', 'flatcar3', 'flatcar-cloudconfig2', 'fcos1'])(
    '%s',
    (name) => {
      const file = path.join(import.meta.dirname, name, 'Labfile.yaml');
      const text = readFileSync(file, 'utf8');
      const before = checkLabfileText(text, file);
      if (!before.ok) throw new Error('bad golden Labfile');
      const first = before.lab.nodes[0]!;
      const extra = `  - { name: joiner, ip: ${first.ip.replace(/\.\d+$/, '.250')} }\n`;
      const after = checkLabfileText(text.replace(/\nnodes:\n/, `\nnodes:\n${extra}`), file);
      if (!after.ok) throw new Error(after.issues.map((i) => i.message).join('\n'));
      const render = (lab: typeof before.lab, node: (typeof before.lab.nodes)[number]) =>
        renderNode({
          lab,
          node,
          paths: { disk: '/d', console: '/c', seed: '/s', fwcfg: '/f' },
          secret: Buffer.alloc(32, 1),
          type: 'qemu',
        });
      for (const n of before.lab.nodes) {
        const m = after.lab.nodes.find((x) => x.name === n.name)!;
        expect(render(after.lab, m).bundle.files, n.name).toEqual(render(before.lab, n).bundle.files);
      }
      // And the legacy layout did change with it (what made lab replace every node).
      if (first.services.includes('etcd') && before.lab.etcd.bootstrap === 'static')
        expect(
          render(
            after.lab,
            after.lab.nodes.find((x) => x.name === first.name)!,
          ).legacyConfigHash(),
        ).not.toBe(render(before.lab, first).legacyConfigHash());
    },
  );
});

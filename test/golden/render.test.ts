// Golden files: one Labfile -> each node's domain XML and provisioning files, byte for
// byte. `npx vitest run --project unit -u` rewrites them; review the diff like code.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderNode } from '../../lab/render/node.js';
import { checkLabfileText } from '../../lab/spec/load.js';
import { renderNetworkXml } from '../../lab/render/network-xml.js';

/** A fixed secret: goldens are reproducible (never use it for a real lab). */
export const TEST_SECRET = Buffer.alloc(32, 1);
const cases = readdirSync(import.meta.dirname).filter((d) => !d.includes('.'));

export function renderCase(name: string) {
  const file = path.join(import.meta.dirname, name, 'Labfile.yaml');
  const r = checkLabfileText(readFileSync(file, 'utf8'), file);
  if (!r.ok) throw new Error(r.issues.map((i) => i.message).join('\n'));
  const lab = r.lab;
  const out: Record<string, string> = {};
  for (const node of lab.nodes) {
    const dir = `/var/lib/lab/${lab.name}`;
    const image = `/var/cache/lab/images/${node.template.name}`;
    const paths = {
      disk: `${dir}/disks/${node.name}.qcow2`,
      console: `${dir}/console/${node.name}.log`,
      ...(node.template.provisioning.delivery === 'fwcfg'
        ? { fwcfg: `${dir}/disks/${node.name}.ign` }
        : { seed: `${dir}/disks/${node.name}-seed.iso` }),
      ...('kernel' in node.template.boot
        ? { kernel: `${image}/vmlinuz`, initrd: `${image}/initrd.img` }
        : {}),
    };
    const qemu = renderNode({ lab, node, paths, secret: TEST_SECRET, type: 'qemu' });
    const kvm = renderNode({ lab, node, paths, secret: TEST_SECRET, type: 'kvm' });
    out[`${node.name}/domain-qemu.xml`] = qemu.xml;
    out[`${node.name}/domain-kvm.xml`] = kvm.xml;
    for (const [f, content] of Object.entries(qemu.bundle.files)) out[`${node.name}/${f}`] = content;
  }
  if (lab.network.mode === 'managed') out['network.xml'] = renderNetworkXml(lab);
  return { lab, out };
}

describe.each(cases)('golden %s', (name) => {
  const { out } = renderCase(name);
  it.each(Object.keys(out).sort())('%s', async (rel) => {
    await expect(out[rel]).toMatchFileSnapshot(path.join(import.meta.dirname, name, 'out', rel));
  });
  it('renders the same bytes twice', () => {
    expect(renderCase(name).out).toEqual(out);
  });
});

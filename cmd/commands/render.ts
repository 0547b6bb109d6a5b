import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { renderNode } from '../../lab/render/node.js';
import { loadLab } from '../../lab/spec/load.js';
import { imageLocation } from '../../lab/providers/images.js';
import { renderNetworkXml } from '../../lab/render/network-xml.js';
import { LabDir, writeAtomic } from '../../lab/store/lab-dir.js';
import { printWarnings } from '../output.js';
import { labfilePath, parseFlags, UsageError } from '../args.js';

const HELP = `Usage: lab render --out DIR [-f Labfile.yaml] [--accel kvm|tcg]

Writes what lab up would give each node, to inspect: DIR/NODE/domain.xml and the
provisioning files (user-data, meta-data, network-config, ...), plus network.xml
for a managed network. Files are 0600: they hold the node's SSH host key.
Keys come from the lab's state when it exists, else they are throw-away ones.

Example:
  lab render --out /tmp/lab-render && less /tmp/lab-render/coreos1/user-data
`;

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(
    argv,
    { out: { type: 'string', short: 'o' }, accel: { type: 'string' } },
    HELP,
    false,
  );
  if (!flags) return 0;
  const out = flags.values.out;
  if (typeof out !== 'string') throw new UsageError('--out DIR is required', { hint: HELP.split('\n')[0] });
  const accel = flags.values.accel ?? 'kvm';
  if (accel !== 'kvm' && accel !== 'tcg')
    throw new UsageError(`--accel must be kvm or tcg, not ${String(accel)}`);
  const { lab } = loadLab(labfilePath(flags.values.file));
  printWarnings(lab);
  const dir = new LabDir(lab.name);
  const secret = (await dir.secret(false)) ?? randomBytes(32);
  for (const node of lab.nodes) {
    const paths = dir.nodePaths(node, imageLocation(node.template));
    const { xml, bundle } = renderNode({ lab, node, paths, secret, type: accel === 'kvm' ? 'kvm' : 'qemu' });
    const nodeDir = path.join(out, node.name);
    await mkdir(nodeDir, { recursive: true, mode: 0o700 });
    await writeAtomic(path.join(nodeDir, 'domain.xml'), xml, 0o600);
    for (const [name, content] of Object.entries(bundle.files)) {
      const file = path.join(nodeDir, name);
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      await writeAtomic(file, content, 0o600);
    }
  }
  if (lab.network.mode === 'managed')
    await writeAtomic(path.join(out, 'network.xml'), renderNetworkXml(lab), 0o600);
  process.stdout.write(`rendered ${lab.nodes.length} node(s) of lab ${lab.name} into ${out}\n`);
  return 0;
}

import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { nodeKeys, renderNode } from '../../lab/render/node.js';
import { renderProvisioning } from '../../lab/render/provisioning.js';
import { ensureOwnDir } from '../../lab/store/safe-path.js';
import { loadLab } from '../../lab/spec/load.js';
import { imageLocation } from '../../lab/providers/images.js';
import { renderNetworkXml } from '../../lab/render/network-xml.js';
import { LabDir, writeAtomic } from '../../lab/store/lab-dir.js';
import { printWarnings } from '../output.js';
import { labfilePath, parseFlags, UsageError } from '../args.js';

const HELP = `Usage: lab render --out DIR [-f Labfile.yaml] [--accel kvm|tcg] [--with-secrets]

Writes what lab up would give each node, to inspect: DIR/NODE/domain.xml and the
provisioning files (user-data, meta-data, network-config, ...), plus network.xml
for a managed network. Keys come from the lab's state when it exists, else they are
throw-away ones.

The domains are rendered for the Labfile's accelerator: kvm, or tcg (software
emulation, type qemu). With accelerator auto, which lab up decides on the host, they
are rendered for KVM and the output says so. --accel renders for the one it names.

Each node's private SSH host key is replaced by a marked placeholder
(LAB-RENDER-PLACEHOLDER) unless --with-secrets is given: then DIR must be a folder of
this user's own (lab makes it, 0700) and the files are 0600. DIR, when it exists, must
be this user's, on a way no other user can change (a folder another user made in /tmp
is refused).

Examples:
  lab render --out /tmp/lab-render && less /tmp/lab-render/coreos1/user-data
  lab render --with-secrets --out ~/lab-render-secrets
`;

/** What stands in a rendered file for a node's private host key, without --with-secrets. */
export const HOST_KEY_PLACEHOLDER =
  "# LAB-RENDER-PLACEHOLDER: the node's private SSH host key is not written here.\n" +
  '# lab render --with-secrets writes it (0600 files in a 0700 folder).\n';

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(
    argv,
    { out: { type: 'string', short: 'o' }, accel: { type: 'string' }, 'with-secrets': { type: 'boolean' } },
    HELP,
    false,
  );
  if (!flags) return 0;
  const out = flags.values.out;
  if (typeof out !== 'string') throw new UsageError('--out DIR is required', { hint: HELP.split('\n')[0] });
  const asked = flags.values.accel;
  if (asked !== undefined && asked !== 'kvm' && asked !== 'tcg')
    throw new UsageError(`--accel must be kvm or tcg, not ${String(asked)}`);
  const withSecrets = flags.values['with-secrets'] === true;
  const { lab } = loadLab(labfilePath(flags.values));
  printWarnings(lab);
  // libvirt refuses host-passthrough under TCG: a tcg lab is rendered as lab up would define it.
  const accel = asked ?? (lab.accelerator === 'tcg' ? 'tcg' : 'kvm');
  const accelNote =
    asked !== undefined
      ? `--accel ${asked}`
      : lab.accelerator === 'auto'
        ? 'accelerator: auto, which lab up decides on the host; --accel tcg renders for TCG'
        : `accelerator: ${lab.accelerator}`;
  // Ours, on a way nobody else can change: then nothing below it was planted (S10).
  ensureOwnDir(path.resolve(out), withSecrets ? 0o700 : 0o755);
  const dir = new LabDir(lab.name);
  const secret = (await dir.secret(false)) ?? randomBytes(32);
  for (const node of lab.nodes) {
    const paths = dir.nodePaths(node, imageLocation(node.template));
    // The domain XML (and its config hash) is lab up's; the files are shown without the
    // private host key unless asked.
    const { xml, bundle } = renderNode({ lab, node, paths, secret, type: accel === 'kvm' ? 'kvm' : 'qemu' });
    const keys = nodeKeys(lab, node, secret);
    const files = withSecrets
      ? bundle.files
      : renderProvisioning({
          lab,
          node,
          keys: { ...keys, hostKey: { ...keys.hostKey, privateKey: HOST_KEY_PLACEHOLDER } },
        }).files;
    const nodeDir = path.join(out, node.name);
    await mkdir(nodeDir, { recursive: true, mode: 0o700 });
    await writeAtomic(path.join(nodeDir, 'domain.xml'), xml, 0o600);
    for (const [name, content] of Object.entries(files)) {
      const file = path.join(nodeDir, name);
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      await writeAtomic(file, content, 0o600);
    }
  }
  if (lab.network.mode === 'managed')
    await writeAtomic(path.join(out, 'network.xml'), renderNetworkXml(lab), 0o600);
  process.stdout.write(
    `rendered ${lab.nodes.length} node(s) of lab ${lab.name} into ${out}${withSecrets ? ' (with the private host keys)' : ' (private host keys left out: --with-secrets writes them)'}\n` +
      `domains for ${accel === 'kvm' ? 'KVM' : 'TCG (type qemu)'} (${accelNote})\n`,
  );
  return 0;
}

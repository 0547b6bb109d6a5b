import { HostError, describeError } from '../../lab/errors.js';
import { run as exec } from '../../lab/runtime/exec.js';
import { chooseAccelerator } from '../../lab/providers/host.js';
import { findIsoTool } from '../../lab/providers/iso.js';
import { Virsh } from '../../lab/providers/virsh.js';
import { resolveUri } from '../../lab/providers/uri.js';
import { parseFlags } from '../args.js';

const HELP = `Usage: lab doctor [--uri URI]

Checks what lab up needs: libvirt reachable, qemu-img, an ISO tool, and whether KVM
really runs guests (it boots a tiny test guest; else lab falls back to TCG).
`;

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { uri: { type: 'string' } }, HELP, false);
  if (!flags) return 0;
  const virsh = new Virsh(resolveUri(typeof flags.values.uri === 'string' ? flags.values.uri : undefined));
  let failed = 0;
  const check = async (what: string, fn: () => Promise<string>) => {
    try {
      process.stdout.write(`ok    ${what}: ${await fn()}\n`);
    } catch (err) {
      failed++;
      process.stdout.write(
        `FAIL  ${what}: ${describeError(err)}${err instanceof HostError && err.hint ? `\n      hint: ${err.hint}` : ''}\n`,
      );
    }
  };
  await check(`libvirt at ${virsh.uri}`, () => virsh.check());
  await check(
    'qemu-img',
    async () => (await exec('qemu-img', ['--version'], { timeoutMs: 10_000 })).stdout.split('\n')[0]!,
  );
  await check('ISO tool', () => findIsoTool());
  await check('accelerator', async () => {
    const a = await chooseAccelerator(virsh, 'auto');
    return a.type === 'kvm' ? 'KVM' : `TCG (${a.warning ?? 'software emulation'})`;
  });
  return failed ? 1 : 0;
}

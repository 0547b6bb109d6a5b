import { labContext } from '../../lab/apply/context.js';
import { down, downTarget, type DownTarget } from '../../lab/apply/down.js';
import { withLabLock } from '../../lab/apply/locking.js';
import { LAB_NAME_RE } from '../../lab/labfile/schema.js';
import { loadLab } from '../../lab/spec/load.js';
import { defaultBridge } from '../../lab/plan/network.js';
import { Virsh } from '../../lab/providers/virsh.js';
import { resolveUri } from '../../lab/providers/uri.js';
import { LabDir } from '../../lab/store/lab-dir.js';
import { readState } from '../../lab/store/state-file.js';
import { labfilePath, parseFlags, UsageError } from '../args.js';
import { plainEventPrinter } from '../output.js';
import { lockTimeout } from './up.js';

const HELP = `Usage: lab down [-f Labfile.yaml | --lab NAME] [--keep-disks] [--lock-timeout DURATION]

Destroys and undefines the lab's domains (found by their lab metadata, never by
name alone), deletes their overlays and seeds and the lab's managed network. The
image cache is kept. Running it twice is fine.

Options:
  --lab NAME               the lab by name, without its Labfile (even with its local state gone)
  --uri URI                with --lab: the libvirt URI (default: the one recorded, else
                           LIBVIRT_DEFAULT_URI, else qemu:///system)
  --keep-disks             only stop the domains; keep disks, domains and network
  --lock-timeout DURATION  wait this long for another run of this lab (default 0)
`;

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(
    argv,
    {
      'keep-disks': { type: 'boolean' },
      lab: { type: 'string' },
      uri: { type: 'string' },
      'lock-timeout': { type: 'string' },
    },
    HELP,
    false,
  );
  if (!flags) return 0;
  const timeoutMs = lockTimeout(flags.values['lock-timeout'], HELP);
  const onEvent = plainEventPrinter({ debug: Boolean(flags.values.debug) });
  let target: DownTarget;
  if (typeof flags.values.lab === 'string') {
    if (flags.values.file !== undefined) throw new UsageError('give either -f FILE or --lab NAME, not both');
    target = await targetByName(flags.values.lab, flags.values.uri, onEvent);
  } else {
    if (flags.values.uri !== undefined) throw new UsageError('--uri goes with --lab NAME');
    const { lab } = loadLab(labfilePath(flags.values));
    target = downTarget(labContext(lab, onEvent));
  }
  const r = await withLabLock(target.name, { timeoutMs }, () =>
    down(target, { keepDisks: Boolean(flags.values['keep-disks']) }),
  );
  const what = r.keptDisks ? 'stopped' : 'removed';
  process.stdout.write(
    `${what} ${r.domains.length} domain(s)${r.network ? ` and network ${r.network}` : ''} of lab ${target.name}\n`,
  );
  return 0;
}

/**
 * A lab known only by name: the state file says where it is; without one, libvirt's
 * metadata finds its domains, and its managed network is the one named and bridged the
 * way lab names them.
 */
async function targetByName(name: string, uri: unknown, onEvent: DownTarget['onEvent']): Promise<DownTarget> {
  if (!LAB_NAME_RE.test(name))
    throw new UsageError(`--lab ${JSON.stringify(name)}: not a lab name (lowercase letters, digits and -)`);
  const dir = new LabDir(name);
  const { state, source } = await readState(dir.stateFile);
  if (source === 'none')
    onEvent({
      kind: 'log',
      level: 'info',
      message: `no local state for lab ${name}: finding its domains by their libvirt metadata`,
    });
  const net = state?.network;
  return {
    name,
    dir,
    virsh: new Virsh(typeof uri === 'string' ? uri : (state?.uri ?? resolveUri())),
    onEvent,
    network:
      net?.libvirtName !== undefined
        ? { libvirtName: net.libvirtName, bridge: net.bridge }
        : { libvirtName: `lab-${name}`, bridge: defaultBridge(name) },
  };
}

import { readFile } from 'node:fs/promises';
import { labContext, sshTargetFor } from '../../lab/apply/context.js';
import { LabError } from '../../lab/errors.js';
import { ignoreEvents } from '../../lab/events.js';
import { GuestSession } from '../../lab/guest/ssh.js';
import { loadLab } from '../../lab/spec/load.js';
import { unprotectedPrivateFiles } from '../../lab/store/lab-dir.js';
import { labfilePath, parseFlags, splitAtDashes, UsageError } from '../args.js';

const HELP = `Usage: lab ssh NODE [-f Labfile.yaml] [-- CMD [ARG...]]

Opens an interactive shell on NODE, or runs one command and returns its exit code.
The node's host key is pinned: an unknown key is refused, never trusted.

Examples:
  lab ssh coreos1
  lab ssh coreos2 -- etcdctl get /message
`;

export async function run(argv: string[]): Promise<number> {
  const { own, command } = splitAtDashes(argv);
  const flags = parseFlags(own, {}, HELP);
  if (!flags) return 0;
  const [nodeName, ...extra] = flags.positionals;
  if (!nodeName) throw new UsageError('which node? lab ssh NODE', { hint: HELP.split('\n')[0] });
  if (extra.length) throw new UsageError(`unexpected ${extra.join(' ')}: put the command after --`);
  const { lab } = loadLab(labfilePath(flags.values, { reads: true }));
  const node = lab.nodes.find((n) => n.name === nodeName);
  if (!node)
    throw new UsageError(
      `no node "${nodeName}" in lab ${lab.name} (nodes: ${lab.nodes.map((n) => n.name).join(', ')})`,
    );
  const ctx = labContext(lab, ignoreEvents);
  const secret = await ctx.dir.secret(false);
  if (!secret) throw new LabError(`lab ${lab.name} has no keys on this host`, { hint: 'run lab up first' });
  const unsafe = unprotectedPrivateFiles(ctx.dir);
  if (unsafe)
    throw new LabError(`refusing to use the lab's key: ${unsafe}`, {
      hint: `chmod 0700 ${ctx.dir.private} && chmod 0600 ${ctx.dir.keyFile} ${ctx.dir.secretFile}`,
    });
  const target = sshTargetFor(lab, node, secret);
  await checkKnownHost(ctx.dir.knownHostsFile, `${lab.name}-${node.name}`, target.hostKey);
  const session = await GuestSession.connect(target, { timeoutMs: 20_000 });
  try {
    if (command.length === 0) return await session.shell({});
    return await session.execInteractive(command);
  } finally {
    session.close();
  }
}

/**
 * The lab's known_hosts is the record of the key injected before the node's first boot.
 * It must say the same as the lab's secret: a hand edit or a swapped file is refused,
 * never re-learnt.
 */
async function checkKnownHost(file: string, alias: string, expected: Buffer): Promise<void> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const line = text.split('\n').find((l) => l.split(' ')[0]?.split(',').includes(alias));
  const blob = line?.split(' ')[2];
  if (!blob)
    throw new LabError(`no pinned host key for ${alias} in ${file}`, {
      hint: 'lab up writes it; lab never trusts a key it did not pin',
    });
  if (!Buffer.from(blob, 'base64').equals(expected))
    throw new LabError(
      `host key for ${alias} in ${file} is not the key this lab gave the node: refusing to connect`,
      { hint: 'lab up rewrites the file from the lab secret if the edit was a mistake' },
    );
}

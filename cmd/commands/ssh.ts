import { labContext, sshTargetFor } from '../../lab/apply/context.js';
import { LabError } from '../../lab/errors.js';
import { ignoreEvents } from '../../lab/events.js';
import { GuestSession } from '../../lab/guest/ssh.js';
import { loadLab } from '../../lab/load.js';
import { labfilePath, parseFlags, UsageError } from '../args.js';

const HELP = `Usage: lab ssh NODE [-f Labfile.yaml] [-- CMD [ARG...]]

Opens an interactive shell on NODE, or runs one command and returns its exit code.
The node's host key is pinned: an unknown key is refused, never trusted.

Examples:
  lab ssh coreos1
  lab ssh coreos2 -- etcdctl get /message
`;

export async function run(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const own = dash >= 0 ? argv.slice(0, dash) : argv;
  const command = dash >= 0 ? argv.slice(dash + 1) : [];
  const flags = parseFlags(own, {}, HELP);
  if (!flags) return 0;
  const [nodeName, ...extra] = flags.positionals;
  if (!nodeName) throw new UsageError('which node? lab ssh NODE', { hint: HELP.split('\n')[0] });
  if (extra.length) throw new UsageError(`unexpected ${extra.join(' ')}: put the command after --`);
  const { lab } = loadLab(labfilePath(flags.values.file));
  const node = lab.nodes.find((n) => n.name === nodeName);
  if (!node)
    throw new UsageError(
      `no node "${nodeName}" in lab ${lab.name} (nodes: ${lab.nodes.map((n) => n.name).join(', ')})`,
    );
  const ctx = labContext(lab, ignoreEvents);
  const secret = await ctx.dir.secret(false);
  if (!secret) throw new LabError(`lab ${lab.name} has no keys on this host`, { hint: 'run lab up first' });
  const session = await GuestSession.connect(sshTargetFor(lab, node, secret), { timeoutMs: 20_000 });
  try {
    if (command.length === 0) return await session.shell({});
    return await session.execInteractive(command);
  } finally {
    session.close();
  }
}

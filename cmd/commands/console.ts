import { labContext } from '../../lab/apply/context.js';
import { drillTargets } from '../../lab/apply/drills.js';
import { LabError } from '../../lab/errors.js';
import { ignoreEvents } from '../../lab/events.js';
import { spawnProgram } from '../../lab/runtime/exec.js';
import { loadLab } from '../../lab/spec/load.js';
import { labfilePath, parseFlags, UsageError } from '../args.js';

const HELP = `Usage: lab console NODE [-f Labfile.yaml] [--force]

Attaches this terminal to NODE's serial console through libvirt (virsh console): the
login prompt, kernel messages, the emergency shell of a boot that went wrong, where SSH
cannot reach. Leave it with Ctrl-] (lab says so before it attaches). It needs a
terminal; lab logs NODE --follow prints the same output anywhere.

Options:
  --force   take the console over from another session attached to it

Examples:
  lab console coreos1
`;

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { force: { type: 'boolean' } }, HELP);
  if (!flags) return 0;
  const [nodeName, ...extra] = flags.positionals;
  if (!nodeName) throw new UsageError('which node? lab console NODE', { hint: HELP.split('\n')[0] });
  if (extra.length) throw new UsageError(`unexpected ${extra.join(' ')}: lab console takes one node`);
  const { lab } = loadLab(labfilePath(flags.values, { reads: true }));
  const ctx = labContext(lab, ignoreEvents);
  // A node of the lab, whose domain carries the lab's metadata: never someone else's console.
  const [node] = await drillTargets(ctx, [nodeName]);
  const state = await ctx.virsh.domState(node!.domain);
  if (state !== 'running' && state !== 'paused')
    throw new LabError(`${nodeName} is ${state}: its console has nothing to show`, {
      hint: `lab start ${nodeName}, then lab console ${nodeName}`,
    });
  if (!process.stdin.isTTY || !process.stdout.isTTY)
    throw new UsageError('lab console needs a terminal', {
      hint: `lab logs ${nodeName} --follow prints the console's output anywhere`,
    });
  process.stderr.write(`${nodeName}'s serial console (${node!.domain}); leave with Ctrl-]\n`);
  const child = spawnProgram(
    'virsh',
    ['-c', ctx.virsh.uri, 'console', '--domain', node!.domain, ...(flags.values.force ? ['--force'] : [])],
    { stdin: 'inherit', stdout: 'inherit', stderr: 'inherit', env: { TERM: process.env.TERM ?? 'vt100' } },
  );
  const r = await child;
  return r.exitCode ?? 1;
}

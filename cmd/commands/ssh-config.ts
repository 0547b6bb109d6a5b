import { labContext } from '../../lab/apply/context.js';
import { LabError } from '../../lab/errors.js';
import { ignoreEvents } from '../../lab/events.js';
import { loadLab } from '../../lab/spec/load.js';
import { renderSshConfig } from '../../lab/store/lab-dir.js';
import { labfilePath, parseFlags } from '../args.js';

const HELP = `Usage: lab ssh-config [-f Labfile.yaml]

Prints an OpenSSH client config for the lab's nodes: the lab's key, a known_hosts
file holding the nodes' pinned host keys, strict host key checking on.

Example:
  lab ssh-config >> ~/.ssh/config && ssh coreos1
`;

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {}, HELP, false);
  if (!flags) return 0;
  const { lab } = loadLab(labfilePath(flags.values, { reads: true }));
  const ctx = labContext(lab, ignoreEvents);
  if (!(await ctx.dir.secret(false)))
    throw new LabError(`lab ${lab.name} has no keys on this host`, { hint: 'run lab up first' });
  process.stdout.write(renderSshConfig(lab, ctx.dir));
  return 0;
}

import { labContext } from '../../lab/apply/context.js';
import { LabError } from '../../lab/errors.js';
import { ignoreEvents } from '../../lab/events.js';
import { loadLab } from '../../lab/spec/load.js';
import { LabDir, renderSshConfig, type TakenAliases } from '../../lab/store/lab-dir.js';
import { readState } from '../../lab/store/state-file.js';
import { labfilePath, parseFlags } from '../args.js';
import { knownLabs } from '../find-lab.js';

const HELP = `Usage: lab ssh-config [-f Labfile.yaml]

Prints an OpenSSH client config for the lab's nodes: the lab's key, a known_hosts
file holding the nodes' pinned host keys, strict host key checking on. Each node
answers to NODE.LAB and LAB-NODE; also to its bare name and its IP when no other lab
on this host has a node of that name or IP.

Example:
  lab ssh-config >> ~/.ssh/config && ssh coreos1.coreos-lab
`;

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {}, HELP, false);
  if (!flags) return 0;
  const { lab } = loadLab(labfilePath(flags.values, { reads: true }));
  const ctx = labContext(lab, ignoreEvents);
  if (!(await ctx.dir.secret(false)))
    throw new LabError(`lab ${lab.name} has no keys on this host`, { hint: 'run lab up first' });
  process.stdout.write(renderSshConfig(lab, ctx.dir, await otherLabsAliases(lab.name)));
  return 0;
}

/** The node names and IPs of the other labs on this host, from their state files. */
async function otherLabsAliases(self: string): Promise<TakenAliases> {
  const names = new Set<string>();
  const ips = new Set<string>();
  for (const other of knownLabs().filter((l) => l.name !== self)) {
    const { state } = await readState(new LabDir(other.name).stateFile);
    for (const [name, node] of Object.entries(state?.nodes ?? {})) {
      names.add(name);
      ips.add(node.ip);
    }
  }
  return { names, ips };
}

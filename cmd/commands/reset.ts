import { parseFlags, UsageError } from '../args.js';
import { converge } from './up.js';

const HELP = `Usage: lab reset NODE... [-f Labfile.yaml] [--json] [--lock-timeout DURATION]

Re-creates NODE from scratch, as a trainer does between exercises: its domain is
stopped, its overlay and seed are thrown away and made anew from the cached image,
and it boots with its first-boot config again. Its identity stays: the same MAC,
IP, UUID, machine-id and host key (derived from the lab's secret and pinned before
the boot, so there is nothing to re-learn). The rest of the lab is converged as
lab up does; a healthy node is left alone. Waits until the lab is healthy.

Examples:
  lab reset coreos2
`;

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { json: { type: 'boolean' }, 'lock-timeout': { type: 'string' } }, HELP);
  if (!flags) return 0;
  if (flags.positionals.length === 0)
    throw new UsageError('which node? lab reset NODE', { hint: HELP.split('\n')[0] });
  return converge(flags, HELP, { reset: [...new Set(flags.positionals)] });
}

import { labContext } from '../../lab/apply/context.js';
import { withLabLock } from '../../lab/apply/locking.js';
import { rotateKeys } from '../../lab/apply/rotate-keys.js';
import { loadLab } from '../../lab/spec/load.js';
import { labfilePath, parseFlags } from '../args.js';
import { plainEventPrinter, printWarnings, table } from '../output.js';
import { lockTimeout } from './up.js';

const HELP = `Usage: lab rotate-keys [-f Labfile.yaml] [--json] [--lock-timeout DURATION]

Gives the running lab a new login key and new SSH host keys. Each node gets them
over its current connection (the old host key pinned), then must accept a
connection with the new login key presenting the new host key, through which the
old login key is removed. Only then are the new keys the lab's (the key file,
known_hosts, ssh_config, and each node's seed and definition, without a reboot).
At no moment is a host key accepted that lab has not pinned. Cut short, it is
finished by running it again; lab up refuses until then. Checkpoints taken before
hold the old keys: a restore of one pins them again.

Example:
  lab rotate-keys
`;

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(
    argv,
    { json: { type: 'boolean' }, 'lock-timeout': { type: 'string' } },
    HELP,
    false,
  );
  if (!flags) return 0;
  const { lab } = loadLab(labfilePath(flags.values));
  printWarnings(lab);
  const ctx = labContext(lab, plainEventPrinter({ debug: Boolean(flags.values.debug) }));
  const r = await withLabLock(lab.name, { timeoutMs: lockTimeout(flags.values['lock-timeout'], HELP) }, () =>
    rotateKeys(ctx),
  );
  if (flags.values.json) {
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    return 0;
  }
  const rows = [['NODE', 'RESULT', 'HOST KEY']];
  for (const n of r.nodes) rows.push([n.node, n.result, n.hostKey]);
  process.stdout.write(
    `${table(rows)}login key ${r.userKey}\nkeys of lab ${lab.name} rotated in ${(r.ms / 1000).toFixed(1)} s\n`,
  );
  return 0;
}

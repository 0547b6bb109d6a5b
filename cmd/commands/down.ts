import { labContext } from '../../lab/apply/context.js';
import { down } from '../../lab/apply/down.js';
import { loadLab } from '../../lab/load.js';
import { labfilePath, parseFlags } from '../args.js';
import { plainEventPrinter } from '../output.js';

const HELP = `Usage: lab down [-f Labfile.yaml] [--keep-disks]

Destroys and undefines the lab's domains (found by their lab metadata, never by
name alone), deletes their overlays and seeds and the lab's managed network. The
image cache is kept. Running it twice is fine.

Options:
  --keep-disks   only stop the domains; keep disks, domains and network
`;

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { 'keep-disks': { type: 'boolean' } }, HELP, false);
  if (!flags) return 0;
  const { lab } = loadLab(labfilePath(flags.values.file));
  const ctx = labContext(lab, plainEventPrinter({ debug: Boolean(flags.values.debug) }));
  const r = await down(ctx, { keepDisks: Boolean(flags.values['keep-disks']) });
  const what = r.keptDisks ? 'stopped' : 'removed';
  process.stdout.write(
    `${what} ${r.domains.length} domain(s)${r.network ? ` and network ${r.network}` : ''} of lab ${lab.name}\n`,
  );
  return 0;
}

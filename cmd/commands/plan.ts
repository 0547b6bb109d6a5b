import { labContext } from '../../lab/apply/context.js';
import { prepare } from '../../lab/apply/prepare.js';
import { ignoreEvents } from '../../lab/events.js';
import { loadLab } from '../../lab/spec/load.js';
import { configChanges, renderingSecrets, type ConfigChanges } from '../../lab/plan/config-changes.js';
import { isNoop, memberChanges } from '../../lab/plan/plan.js';
import { planJson } from '../../lab/plan/plan-json.js';
import { readRendering } from '../../lab/store/rendered.js';
import { labfilePath, parseFlags } from '../args.js';
import { printWarnings, table } from '../output.js';

const HELP = `Usage: lab plan [-f Labfile.yaml] [--json]

Shows what \`lab up\` would do to each node, and why, without changing anything.
Then lab up runs these actions, waits for SSH and checks the services. A node the
Labfile no longer names is shown too: lab up takes it out of etcd, then removes it.
A node whose first-boot config changed (replace) is shown with a unified diff of its
rendered files against those its seed was written with, secrets masked.

Examples:
  lab plan
  lab plan --json | jq '.nodes[] | select(.actions != [])'
`;

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { json: { type: 'boolean' } }, HELP, false);
  if (!flags) return 0;
  const { lab } = loadLab(labfilePath(flags.values, { reads: true }));
  printWarnings(lab);
  const ctx = labContext(lab, ignoreEvents);
  await ctx.virsh.check();
  const { plan, accel, observed, desired, secret } = await prepare(ctx, { buildImages: false, write: false });
  const member = memberChanges(lab, plan, observed);
  // What changed in the first-boot files of each node replaced for them.
  const changed = new Map<string, ConfigChanges>();
  for (const d of desired) {
    const applied = observed.get(d.spec.name)?.configHash;
    const replaced = plan.nodes.find((p) => p.node === d.spec.name)?.actions.includes('replace');
    if (!replaced || applied === d.configHash) continue;
    const stored = await readRendering(ctx.dir, d.spec.name);
    const known = renderingSecrets(secret, lab.name, d.spec.name);
    changed.set(
      d.spec.name,
      configChanges({ node: d.spec.name, stored, appliedHash: applied, desired: d.bundle.files, known }),
    );
  }
  if (flags.values.json) {
    const states = new Map([...observed].map(([name, o]) => [name, o.state]));
    const doc = planJson({ lab: lab.name, accelerator: accel.type, plan, member, states, changed });
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
    return 0;
  }
  const rows = [['NODE', 'NOW', 'ACTIONS', 'ETCD', 'WHY']];
  for (const p of plan.nodes) {
    rows.push([
      p.node,
      observed.get(p.node)?.state ?? 'missing',
      p.conflict ? 'REFUSED' : p.actions.join(', ') || '-',
      member.get(p.node) ?? '-',
      p.conflict ?? p.reasons.join('; '),
    ]);
  }
  for (const l of plan.leaving.filter((x) => x.actions.length > 0))
    rows.push([
      l.node,
      l.state,
      l.actions.join(', '),
      member.get(l.node) ?? '-',
      `not in the Labfile${l.domain ? '' : ' (its domain is gone)'}${l.files.length ? `; ${l.files.length} file(s) left` : ''}`,
    ]);
  let out = table(rows);
  if (plan.network.length) out += `network ${lab.network.libvirtName}: ${plan.network.join(', ')}\n`;
  out += isNoop(plan)
    ? 'no changes: the lab matches the Labfile\n'
    : `accelerator: ${accel.type === 'kvm' ? 'KVM' : 'TCG (software emulation)'}\n`;
  for (const [node, c] of changed) {
    out += `\nfirst-boot files of ${node} (secrets masked)${c.note ? `: ${c.note}` : ''}\n`;
    out += (c.changes ?? []).map((f) => f.diff).join('');
  }
  process.stdout.write(out);
  return 0;
}

/**
 * Failure drills: what an instructor does to a running lab to make students repair it.
 * Each acts on libvirt only (domain state, the NIC's link), so `lab status` sees it from
 * libvirt at its next look, and each is undone by `lab up` (a stopped node is started, a
 * paused one resumed, a link set up again).
 */
import { BadInputError, describeError, LabError } from '../errors.js';
import type { NodeSpec } from '../plan/model.js';
import { acpiShutdown, linkState, setLink, type LinkState } from '../providers/drills.js';
import { resume, setGuestTime, suspend } from '../providers/snapshots.js';
import { parseLabMetadata } from '../render/domain-xml.js';
import { sleep } from '../runtime/clock.js';
import { mapLimit } from '../runtime/limit.js';
import type { LabContext } from './context.js';

export type Drill =
  | { kind: 'stop'; timeoutMs: number }
  | { kind: 'start' }
  | { kind: 'kill' }
  | { kind: 'pause' }
  | { kind: 'resume' }
  | { kind: 'link'; state: LinkState };

/** What one drill did to one node (`--json`). */
export interface DrillOutcome {
  node: string;
  domain: string;
  /** libvirt's state before, and after. */
  before: string;
  after: string;
  /** What was done, in a few words ("nothing: already shut off"). */
  did: string;
  /** The NIC's link state after a link drill. */
  link?: LinkState;
  /** Said, not fatal (a guest clock that could not be set). */
  warning?: string;
}

/**
 * The nodes named, each checked before any is touched: a name the Labfile does not have,
 * a node without a domain, or a domain that does not carry this lab's metadata for it is
 * exit 2 and nothing is done.
 */
export async function drillTargets(ctx: LabContext, names: string[]): Promise<NodeSpec[]> {
  const known = ctx.lab.nodes.map((n) => n.name).join(', ');
  const unknown = names.filter((n) => !ctx.lab.nodes.some((s) => s.name === n));
  if (unknown.length)
    throw new BadInputError(
      `no node ${unknown.map((n) => `"${n}"`).join(', ')} in lab ${ctx.lab.name} (nodes: ${known})`,
    );
  const nodes = [...new Set(names)].map((n) => ctx.lab.nodes.find((s) => s.name === n)!);
  const states = await ctx.virsh.listDomainStates();
  for (const node of nodes) {
    if (!states.has(node.domain))
      throw new BadInputError(`${node.name} has no domain on ${ctx.virsh.uri}: nothing to drill`, {
        hint: `lab up creates it`,
      });
    const meta = parseLabMetadata((await ctx.virsh.dumpXml(node.domain)) ?? '');
    if (meta?.lab !== ctx.lab.name || meta.node !== node.name)
      throw new BadInputError(
        `the domain ${node.domain} does not belong to lab ${ctx.lab.name}: lab will not touch it`,
      );
  }
  return nodes;
}

/** Runs the drill on every node at once; a node that fails does not stop the others. */
export async function runDrill(
  ctx: LabContext,
  nodes: NodeSpec[],
  drill: Drill,
): Promise<PromiseSettledResult<DrillOutcome>[]> {
  return mapLimit(nodes, 8, (node) =>
    drillNode(ctx, node, drill).then(
      (value): PromiseSettledResult<DrillOutcome> => ({ status: 'fulfilled', value }),
      (reason: unknown): PromiseSettledResult<DrillOutcome> => ({ status: 'rejected', reason }),
    ),
  );
}

async function drillNode(ctx: LabContext, node: NodeSpec, drill: Drill): Promise<DrillOutcome> {
  const { virsh } = ctx;
  const domain = node.domain;
  const before = await virsh.domState(domain);
  const out = (did: string, extra: Partial<DrillOutcome> = {}): Promise<DrillOutcome> =>
    virsh.domState(domain).then((after) => ({ node: node.name, domain, before, after, did, ...extra }));
  const off = before === 'shut off' || before === 'crashed';
  switch (drill.kind) {
    case 'kill':
      if (off) return out(`nothing: already ${before}`);
      await virsh.destroy(domain);
      return out('powered off');
    case 'stop': {
      if (off) return out(`nothing: already ${before}`);
      // A paused guest cannot see its power button.
      if (before === 'paused') {
        await virsh.destroy(domain);
        return out('powered off (it was paused: ACPI cannot reach it)');
      }
      const started = performance.now();
      await acpiShutdown(virsh, domain);
      while (performance.now() - started < drill.timeoutMs) {
        if ((await virsh.domState(domain)) === 'shut off')
          return out(
            `shut down by the guest (ACPI) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
          );
        await sleep(250, ctx.signal);
      }
      await virsh.destroy(domain);
      return out(`powered off: the guest did not shut down within ${Math.round(drill.timeoutMs / 1000)} s`);
    }
    case 'start':
      if (before === 'running') return out('nothing: already running');
      if (before === 'paused')
        throw new LabError(`${node.name} is paused, not stopped`, { hint: `lab resume ${node.name}` });
      await virsh.start(domain);
      return out('started (it boots; lab status shows when it is healthy, lab up waits for it)');
    case 'pause':
      if (before === 'paused') return out('nothing: already paused');
      if (before !== 'running') throw notRunning(node, before);
      await suspend(virsh, domain);
      return out('paused (its vCPUs stopped; memory kept)');
    case 'resume': {
      if (before === 'running') return out('nothing: already running');
      if (before !== 'paused')
        throw new LabError(`${node.name} is ${before}, not paused`, { hint: `lab start ${node.name}` });
      await resume(virsh, domain);
      // The guest's clock stood still while it was paused: set it to the host's.
      const clock = await setGuestTime(virsh, domain).then(
        () => undefined,
        (err: unknown) => `could not set the guest's clock: ${describeError(err)}`,
      );
      return out(clock ? 'resumed' : "resumed, the guest's clock set", clock ? { warning: clock } : {});
    }
    case 'link': {
      if (before !== 'running') throw notRunning(node, before);
      const was = await linkState(virsh, domain, node.mac);
      if (was === drill.state)
        return out(`nothing: the link is already ${drill.state}`, { link: drill.state });
      await setLink(virsh, domain, node.mac, drill.state);
      const now = await linkState(virsh, domain, node.mac);
      if (now !== drill.state)
        throw new LabError(
          `${node.name}: libvirt reports the link ${now ?? 'unknown'} after setting it ${drill.state}`,
        );
      return out(`link ${drill.state}`, { link: now });
    }
  }
}

function notRunning(node: NodeSpec, state: string): LabError {
  return new LabError(`${node.name} is ${state}, not running`, { hint: `lab start ${node.name}, or lab up` });
}

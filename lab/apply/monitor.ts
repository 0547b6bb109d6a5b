import { LabError, describeError } from '../errors.js';
import { GuestSession } from '../guest/ssh.js';
import { probeNode } from '../guest/probes/index.js';
import type { NodeSpec } from '../plan/model.js';
import { linkState } from '../providers/drills.js';
import { parseDomainXml, parseLabMetadata } from '../render/domain-xml.js';
import type { NodeDetails, NodeView, StatusSnapshot, StatusSource } from './status-snapshot.js';
import { sshTargetFor, type LabContext } from './context.js';
import { emptyNodeStatus, linkDown, nodeStatusFrom, type LabStatus } from './status.js';
import { clusterVerdict } from './verdict.js';

export interface MonitorOptions {
  intervalMs: number;
  /** Per SSH connection attempt and per probe. */
  probeTimeoutMs?: number;
  now?: () => number;
}

interface NodeSlot {
  spec: NodeSpec;
  view: NodeView;
  session?: GuestSession;
  /** Consecutive failed connection attempts, for the backoff. */
  failures: number;
  /** No connection attempt before this time (ms since the epoch). */
  retryAt: number;
  /** The NIC's link as libvirt had it at the last look (running nodes only). */
  link?: 'up' | 'down';
}

/**
 * The live source behind `lab status` in a terminal: one kept-open SSH connection per node
 * (reconnected with backoff), every node probed in parallel and on its own, so a node that
 * does not answer never holds back the others. Listeners get a new snapshot after every
 * change.
 */
export class StatusMonitor implements StatusSource {
  private readonly slots: NodeSlot[];
  private readonly listeners = new Set<(s: StatusSnapshot) => void>();
  private timer: NodeJS.Timeout | undefined;
  private secret: Buffer | undefined;
  private accelerator: StatusSnapshot['accelerator'] = 'unknown';
  private domainsInFlight = false;
  private stopped = false;
  private readonly now: () => number;

  constructor(
    private readonly ctx: LabContext,
    private readonly options: MonitorOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.slots = ctx.lab.nodes.map((spec) => ({
      spec,
      view: { status: emptyNodeStatus(spec, 'unknown'), probing: false, probedAt: null, reachable: null },
      failures: 0,
      retryAt: 0,
    }));
  }

  /** Reads the lab's keys; call before the first round. */
  async start(): Promise<void> {
    this.secret = await this.ctx.dir.secret(false);
  }

  /** Starts the refresh loop: a round now, then one every interval. */
  run(): void {
    this.refresh();
    this.timer ??= setInterval(() => this.refresh(), this.options.intervalMs);
  }

  get intervalMs(): number {
    return this.options.intervalMs;
  }

  /**
   * An interactive shell on a node (`lab ssh` semantics) over its kept connection, or a new
   * one; resolves with the shell's exit code. The caller owns the terminal meanwhile.
   */
  async shell(node: string): Promise<number> {
    const slot = this.slots.find((s) => s.spec.name === node);
    if (!slot) throw new Error(`no node ${node}`);
    if (!this.secret)
      throw new LabError(`lab ${this.ctx.lab.name} has no keys on this host`, { hint: 'run lab up first' });
    const session =
      slot.session ??
      (await GuestSession.connect(sshTargetFor(this.ctx.lab, slot.spec, this.secret), { timeoutMs: 20_000 }));
    try {
      return await session.shell({});
    } finally {
      if (session !== slot.session) session.close();
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const slot of this.slots) slot.session?.close();
    this.listeners.clear();
  }

  snapshot(): StatusSnapshot {
    const nodes = this.slots.map((s) => s.view);
    return {
      lab: this.ctx.lab.name,
      uri: this.ctx.virsh.uri,
      accelerator: this.accelerator,
      nodes,
      cluster: clusterVerdict(
        this.ctx.lab,
        nodes.map((n) => n.status),
      ),
      intervalMs: this.options.intervalMs,
      now: this.now(),
    };
  }

  subscribe(listener: (s: StatusSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Probe every node now, unless a round is already reading libvirt; returns at once. */
  refresh(): void {
    void this.round();
  }

  /**
   * One round: libvirt states of all domains, then every running node probed on its own
   * (a node whose previous probe is still running is left to it). Resolves when all are done.
   */
  async round(): Promise<void> {
    if (this.stopped || this.domainsInFlight) return;
    this.domainsInFlight = true;
    try {
      await this.readDomains();
    } finally {
      this.domainsInFlight = false;
    }
    await Promise.all(this.slots.map((slot) => this.probe(slot)));
  }

  async details(node: string): Promise<NodeDetails> {
    const slot = this.slots.find((s) => s.spec.name === node);
    const empty: NodeDetails = { node, journal: [], failedUnits: [], addresses: [], disk: null };
    if (!slot?.session) return { ...empty, error: 'not connected' };
    const s = slot.session;
    const errors: string[] = [];
    const run = async (argv: string[]) => {
      try {
        const r = await s.exec(argv, { timeoutMs: this.options.probeTimeoutMs ?? 15_000 });
        if (r.code !== 0) errors.push(`${argv.join(' ')}: exit code ${r.code}`);
        return r.stdout;
      } catch (err) {
        errors.push(describeError(err));
        return '';
      }
    };
    const units = (['etcd', 'docker'] as const).filter((u) => slot.spec.services.includes(u));
    const [failed, addrs, df] = await Promise.all([
      run(['systemctl', '--failed', '--plain', '--no-legend', '--no-pager']),
      run(['ip', '-o', '-4', 'addr', 'show', 'scope', 'global']),
      run(['df', '-h', '--output=used,size,pcent', '/']),
    ]);
    const failedUnits = failed
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0] ?? '')
      .filter(Boolean);
    const journal = await Promise.all(
      [...new Set([...units, ...failedUnits.slice(0, 3)])].map(async (unit) => ({
        unit,
        lines: (await run(['sudo', '-n', 'journalctl', '-u', unit, '-n', '8', '--no-pager', '-o', 'short']))
          .split('\n')
          .filter(Boolean),
      })),
    );
    return {
      node,
      journal,
      failedUnits,
      addresses: parseAddresses(addrs),
      disk: parseDf(df),
      ...(errors.length ? { error: errors.join('; ') } : {}),
    };
  }

  private emit(): void {
    const snap = this.snapshot();
    for (const l of this.listeners) l(snap);
  }

  private async readDomains(): Promise<void> {
    let states: Map<string, string>;
    try {
      states = await this.ctx.virsh.listDomainStates();
    } catch (err) {
      for (const slot of this.slots)
        slot.view = { ...slot.view, status: { ...slot.view.status, lastError: describeError(err) } };
      this.emit();
      return;
    }
    // The link of each running node (lab link): libvirt says it at once, where a probe
    // would only time out.
    const links = await Promise.all(
      this.slots.map(async (slot) =>
        states.get(slot.spec.domain) === 'running'
          ? await linkState(this.ctx.virsh, slot.spec.domain, slot.spec.mac).catch(() => undefined)
          : undefined,
      ),
    );
    for (const [i, slot] of this.slots.entries()) {
      const state = states.get(slot.spec.domain) ?? 'missing';
      const link = links[i];
      if (link) slot.link = link;
      else delete slot.link;
      slot.view = { ...slot.view, status: { ...slot.view.status, state, link: link ?? null } };
      if (state === 'running' && link === 'down') {
        slot.session?.close();
        slot.session = undefined;
        slot.view = {
          ...slot.view,
          status: linkDown(emptyNodeStatus(slot.spec, state)),
          reachable: false,
          probedAt: this.now(),
        };
        continue;
      }
      if (state !== 'running') {
        slot.session?.close();
        slot.session = undefined;
        slot.view = {
          ...slot.view,
          status: emptyNodeStatus(slot.spec, state),
          reachable: null,
          probedAt: this.now(),
        };
      }
    }
    if (this.accelerator === 'unknown') {
      const running = this.slots.find((s) => s.view.status.state === 'running');
      if (running) {
        const xml = await this.ctx.virsh.dumpXml(running.spec.domain).catch(() => undefined);
        if (xml && parseLabMetadata(xml))
          this.accelerator = parseDomainXml(xml).type === 'kvm' ? 'kvm' : 'tcg';
      }
    }
    this.emit();
  }

  private async probe(slot: NodeSlot): Promise<void> {
    if (slot.view.probing || slot.view.status.state !== 'running' || slot.link === 'down' || this.stopped)
      return;
    if (!this.secret) {
      slot.view = {
        ...slot.view,
        status: {
          ...slot.view.status,
          lastError: 'the lab folder (keys) is missing: run lab up to recreate it',
        },
      };
      return this.emit();
    }
    if (!slot.session && this.now() < slot.retryAt) return;
    slot.view = { ...slot.view, probing: true };
    this.emit();
    const timeoutMs = this.options.probeTimeoutMs ?? 15_000;
    try {
      if (!slot.session) {
        const session = await GuestSession.connect(sshTargetFor(this.ctx.lab, slot.spec, this.secret), {
          timeoutMs,
          keepaliveMs: 3000,
        });
        if (this.stopped) return session.close();
        slot.session = session;
      }
      const health = await probeNode(slot.session, {
        services: slot.spec.services,
        fleet: 'fleet' in slot.spec.template.services,
        load: true,
      });
      slot.failures = 0;
      slot.view = {
        status: nodeStatusFrom(slot.spec, slot.view.status.state, health, slot.link ?? null),
        probing: false,
        probedAt: this.now(),
        reachable: true,
      };
    } catch (err) {
      slot.session?.close();
      slot.session = undefined;
      slot.failures++;
      // 1 s, 2 s, 4 s … up to 30 s between connection attempts to a node that does not answer.
      slot.retryAt = this.now() + Math.min(30_000, 1000 * 2 ** (slot.failures - 1));
      slot.view = {
        status: {
          ...emptyNodeStatus(slot.spec, slot.view.status.state),
          lastError: `unreachable: ${describeError(err)}`,
        },
        probing: false,
        probedAt: this.now(),
        reachable: false,
      };
    }
    if (!this.stopped) this.emit();
  }
}

/** `2: eth0    inet 10.77.0.11/24 brd …` lines to `eth0 10.77.0.11/24`. Pure. */
export function parseAddresses(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((l) => /^\d+:\s+(\S+)\s+inet\s+(\S+)/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => `${m[1]} ${m[2]}`);
}

/** `df -h --output=used,size,pcent /` to `1.2G of 3.9G (31%)`. Pure. */
export function parseDf(stdout: string): string | null {
  const row = stdout.trim().split('\n')[1]?.trim().split(/\s+/);
  return row?.length === 3 ? `${row[0]} of ${row[1]} (${row[2]})` : null;
}

/** The `lab status --json` document of a snapshot. */
export function labStatusOf(s: StatusSnapshot): LabStatus {
  return { lab: s.lab, uri: s.uri, nodes: s.nodes.map((n) => n.status), cluster: s.cluster };
}

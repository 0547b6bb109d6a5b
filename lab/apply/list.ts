/**
 * `lab list`: every lab this user has on this host, found two ways that each catch what
 * the other misses: the state folder (a lab whose domains are gone, or whose libvirt is
 * away) and libvirt's domains carrying lab metadata (a lab whose state folder was
 * deleted: an orphan only `lab down --lab NAME` removes).
 */
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { describeError } from '../errors.js';
import { ignoreEvents } from '../events.js';
import type { LabSpec, NodeSpec } from '../plan/model.js';
import { resolveUri } from '../providers/uri.js';
import { DEFAULT_VIRSH_RETRY, Virsh } from '../providers/virsh.js';
import { parseLabMetadata } from '../render/domain-xml.js';
import { mapLimit } from '../runtime/limit.js';
import { loadLab } from '../spec/load.js';
import { labStates } from '../store/known-labs.js';
import { LabDir } from '../store/lab-dir.js';
import type { LabState } from '../store/state-file.js';
import { labContext } from './context.js';
import { status, type NodeStatus } from './status.js';

/** One lab as `lab list` shows it (`--json`). */
export interface LabListing {
  lab: string;
  uri: string;
  /** The Labfile its last `lab up` used; null when not recorded (an orphan). */
  labfile: string | null;
  /** `managed 10.52.0.0/24` or `bridge br0`; null when unknown. */
  network: string | null;
  /** Nodes known: the state file's and the domains that carry the lab's metadata. */
  nodes: number;
  /** Of those, domains libvirt has running. */
  running: number;
  /** Running nodes that answered a probe with their services healthy; null when not probed. */
  healthy: number | null;
  /** When the lab folder was made (ISO 8601); null when unknown. */
  created: string | null;
  /** Bytes the lab's disks (overlays, seeds) take on this host's disk. */
  diskBytes: number;
  /** Domains of it exist, but this host has no state folder for it. */
  orphan: boolean;
  /** What could not be read (libvirt away, a Labfile gone): the rest is still shown. */
  problems: string[];
}

/** A running node with every service the Labfile asks of it healthy. Pure. */
export function isHealthy(node: Pick<NodeSpec, 'services'>, s: NodeStatus): boolean {
  if (s.state !== 'running' || s.link === 'down' || s.lastError !== null || s.machineId === null)
    return false;
  const etcd = !node.services.includes('etcd') || s.etcd?.state === 'leader' || s.etcd?.state === 'follower';
  const docker = !node.services.includes('docker') || s.docker?.state === 'up';
  return etcd && docker;
}

interface Found {
  state?: LabState;
  /** Domain name -> node, per URI, from the domains' metadata. */
  domains: Map<string, { node: string; state: string }>;
  uri: string;
}

export async function listLabs(opts: { probe: boolean; probeTimeoutMs?: number }): Promise<LabListing[]> {
  const found = new Map<string, Found>(
    labStates().map(({ name, state }) => [name, { state, domains: new Map(), uri: state.uri }]),
  );
  const problems = new Map<string, string[]>();
  const uris = new Set([resolveUri(), ...[...found.values()].map((f) => f.uri)]);
  for (const uri of uris) {
    try {
      const virsh = new Virsh(uri, undefined, { ...DEFAULT_VIRSH_RETRY, budgetMs: 5_000 });
      const states = await virsh.listDomainStates();
      await mapLimit([...states], 8, async ([domain, state]) => {
        const meta = parseLabMetadata((await virsh.dumpXml(domain)) ?? '');
        if (!meta) return;
        let f = found.get(meta.lab);
        if (!f) found.set(meta.lab, (f = { domains: new Map(), uri }));
        if (f.uri === uri) f.domains.set(domain, { node: meta.node, state });
      });
    } catch (err) {
      for (const [name, f] of found)
        if (f.uri === uri) problems.set(name, [`libvirt at ${uri}: ${describeError(err)}`]);
    }
  }
  const labs = await mapLimit(
    [...found].sort(([a], [b]) => a.localeCompare(b)),
    4,
    ([name, f]) => listing(name, f, problems.get(name) ?? [], opts),
  );
  return labs;
}

async function listing(
  name: string,
  f: Found,
  problems: string[],
  opts: { probe: boolean; probeTimeoutMs?: number },
): Promise<LabListing> {
  const dir = new LabDir(name);
  const nodes = new Set([
    ...Object.keys(f.state?.nodes ?? {}),
    ...[...f.domains.values()].map((d) => d.node),
  ]);
  const running = [...f.domains.values()].filter((d) => d.state === 'running').length;
  const net = f.state?.network;
  let healthy: number | null = null;
  if (opts.probe && f.state?.labfile && running > 0) {
    try {
      const { lab } = loadLab(f.state.labfile);
      if (lab.name !== name) throw new Error(`it now names lab ${lab.name}`);
      healthy = await countHealthy(lab, opts.probeTimeoutMs ?? 10_000);
    } catch (err) {
      problems.push(`not probed: the Labfile ${f.state.labfile}: ${describeError(err)}`);
    }
  } else if (opts.probe && running === 0) healthy = 0;
  return {
    lab: name,
    uri: f.uri,
    labfile: f.state?.labfile ?? null,
    network: net
      ? net.mode === 'managed'
        ? `managed ${net.cidr ?? net.bridge}`
        : `bridge ${net.bridge}`
      : null,
    nodes: nodes.size,
    running,
    healthy,
    created: await birth(dir.root),
    diskBytes: await bytesUnder(dir.disks),
    orphan: f.state === undefined,
    problems,
  };
}

async function countHealthy(lab: LabSpec, probeTimeoutMs: number): Promise<number> {
  const s = await status(labContext(lab, ignoreEvents), { probeTimeoutMs });
  return s.nodes.filter((n) =>
    isHealthy(
      lab.nodes.find((x) => x.name === n.name)!,
      n,
    ),
  ).length;
}

/** The folder's birth time (statx), else null; never through a symlink. */
async function birth(dir: string): Promise<string | null> {
  const st = await lstat(dir).catch(() => undefined);
  if (!st?.isDirectory() || !(st.birthtimeMs > 0)) return null;
  return st.birthtime.toISOString();
}

/** Allocated bytes of the regular files directly in `dir` (symlinks not followed). */
async function bytesUnder(dir: string): Promise<number> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const sizes = await mapLimit(names, 16, async (n) => {
    const st = await lstat(path.join(dir, n)).catch(() => undefined);
    return st?.isFile() ? st.blocks * 512 : 0;
  });
  return sizes.reduce((a, b) => a + b, 0);
}

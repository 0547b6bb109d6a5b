import { constants } from 'node:fs';
import { copyFile, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { failpoint } from '../runtime/failpoint.js';

/**
 * What `lab` knows about a lab between commands: where it is, how it was reached, and
 * each node's last known step. Never a key: paths and fingerprints only. The truth is in
 * libvirt (every domain carries the lab's metadata); this file makes `lab down --lab NAME`
 * and `lab status` possible without the Labfile and records how far the last `up` got.
 */
export interface LabState {
  version: typeof STATE_VERSION;
  /** Grows by one on every write: a reader can tell a newer state from an older one. */
  serial: number;
  lab: string;
  labfile?: string;
  uri: string;
  updated: string;
  network: { mode: 'bridge' | 'managed'; bridge: string; libvirtName?: string; cidr?: string };
  nodes: Record<string, NodeRecord>;
}

/**
 * How far a node got, as recorded in the state file after each step (not the live
 * progress step of `lab up`'s events: that is `NodeStep` in events.ts).
 */
export type RecordedStep =
  | 'planned'
  | 'disk'
  | 'seed'
  | 'defined'
  | 'started'
  | 'healthy'
  | 'failed'
  /** The Labfile no longer names it: it is leaving etcd and being removed (the record goes last). */
  | 'leaving';

/** One node's entry in the state file. */
export interface NodeRecord {
  domain: string;
  ip: string;
  configHash?: string;
  step: RecordedStep;
  error?: string;
  updated: string;
}

export const STATE_VERSION = 1;

/** Parses a state file's text; undefined for anything that is not a whole state of this version. */
export function parseState(text: string): LabState | undefined {
  try {
    const s = JSON.parse(text) as Partial<LabState>;
    if (
      s.version !== STATE_VERSION ||
      typeof s.serial !== 'number' ||
      typeof s.lab !== 'string' ||
      typeof s.uri !== 'string' ||
      typeof s.network !== 'object' ||
      typeof s.nodes !== 'object' ||
      s.nodes === null
    )
      return undefined;
    return s as LabState;
  } catch {
    return undefined;
  }
}

export interface StateRead {
  state?: LabState;
  /** Where it came from: the file, its backup (the file was damaged), or nothing. */
  source: 'file' | 'backup' | 'none';
}

export async function readState(file: string): Promise<StateRead> {
  const main = parseState(await readFile(file, 'utf8').catch(() => ''));
  if (main) return { state: main, source: 'file' };
  const bak = parseState(await readFile(`${file}.bak`, 'utf8').catch(() => ''));
  if (bak) return { state: bak, source: 'backup' };
  return { source: 'none' };
}

/**
 * Durable, atomic replace: a new file (O_EXCL, 0600 from the open on) in the same folder,
 * written and fsynced, the old version kept as `.bak`, renamed over, and the folder
 * fsynced so the rename survives a power cut. A reader sees the old or the new state,
 * never half of one.
 */
export async function writeDurable(file: string, content: string, mode = 0o600): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await rm(tmp, { force: true });
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  failpoint('mid-state-write');
  await copyFile(file, `${file}.bak`).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  await rename(tmp, file);
  const dir = await open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/**
 * Serializes the updates of one `up`: nodes finish in any order, each write carries
 * everything known so far and the next serial.
 */
export class StateWriter {
  private chain: Promise<void> = Promise.resolve();
  constructor(
    private readonly file: string,
    private state: LabState,
    /** The state as the run found it, before it planned anything. */
    readonly previous?: LabState,
  ) {}

  get current(): LabState {
    return this.state;
  }

  update(fn: (s: LabState) => void): Promise<void> {
    this.chain = this.chain.then(async () => {
      fn(this.state);
      this.state.serial += 1;
      this.state.updated = new Date().toISOString();
      await writeDurable(this.file, `${JSON.stringify(this.state, null, 2)}\n`);
    });
    return this.chain;
  }

  node(name: string, patch: Partial<NodeRecord>): Promise<void> {
    return this.update((s) => {
      const prev = s.nodes[name];
      if (!prev) return;
      const next: NodeRecord = { ...prev, ...patch, updated: new Date().toISOString() };
      if (patch.step && patch.step !== 'failed') delete next.error;
      s.nodes[name] = next;
    });
  }
}

/**
 * What the live status monitor produces and the terminal views draw: a StatusSnapshot, which a
 * StatusSource (the live monitor, or a recording in tests) pushes on every change; the
 * views never do I/O themselves.
 */
import type { LabStatus, NodeStatus } from './status.js';

/** One row of the live screen: a NodeStatus (its last completed look), and whether a look is running. */
export interface NodeView {
  status: NodeStatus;
  /** A probe of this node is in flight. */
  probing: boolean;
  /** When the last probe completed (ms since the epoch), or null before the first one. */
  probedAt: number | null;
  /** False after a failed connection attempt, until a probe succeeds again; null before any. */
  reachable: boolean | null;
}

export interface StatusSnapshot {
  lab: string;
  uri: string;
  accelerator: 'kvm' | 'tcg' | 'unknown';
  nodes: NodeView[];
  cluster: LabStatus['cluster'];
  /** Refresh period in ms. */
  intervalMs: number;
  /** The time the snapshot was taken (ms since the epoch): ages are computed against it. */
  now: number;
}

/** What `enter` shows about one node. */
export interface NodeDetails {
  node: string;
  /** Recent journal lines of etcd and docker (newest last), and of the failed units. */
  journal: { unit: string; lines: string[] }[];
  /** `systemctl --failed` unit names. */
  failedUnits: string[];
  /** Interface addresses, `eth0 10.77.0.11/24`. */
  addresses: string[];
  /** Root filesystem use, `1.2G of 3.9G (31%)`. */
  disk: string | null;
  /** Why (some of) the above could not be read. */
  error?: string;
}

/** Where the status screen gets its data: the live monitor, or a fake in tests. */
export interface StatusSource {
  snapshot(): StatusSnapshot;
  /** Calls `listener` on every change; returns the unsubscribe function. */
  subscribe(listener: (snapshot: StatusSnapshot) => void): () => void;
  /** Probe every node now (the `r` key); returns at once. */
  refresh(): void;
  details(node: string): Promise<NodeDetails>;
}

/**
 * What the `lab up` view shows, folded from LabEvents by a pure reducer; plus the pure
 * formatting of durations and download bars. Time is passed in, never read.
 */
import { NODE_STEPS, type LabEvent } from '../../events.js';

export interface Transfer {
  step: string;
  done: number;
  total?: number;
  /** Bytes per second, smoothed; absent until two samples far enough apart. */
  rateBytesPerSec?: number;
  /** The sample the next rate is measured from (ms, bytes). */
  sampleAt: number;
  sampleDone: number;
}

export interface NodeProgress {
  node: string;
  /** One of NODE_STEPS during up, or another step name (`down`, `plan`). */
  step: string;
  status: 'start' | 'done' | 'skip' | 'fail';
  /** When the current step started (ms). */
  since: number;
  /** When the current step ended (done, skip, fail): its elapsed time stops there. */
  until?: number;
  /** When the node was first seen, for its total time. */
  startedAt: number;
  /** When the node reached its last step (healthy, or any finished step outside NODE_STEPS) or failed. */
  finishedAt?: number;
  detail?: string;
  /** A transfer of this node's current step. */
  progress?: Transfer;
}

export interface UpViewState {
  /** In the order first seen (or given to initialUpState). */
  nodes: NodeProgress[];
  /** Lab-wide transfers (progress without a node, e.g. an image download shared by nodes), first seen first. */
  transfers: Transfer[];
  /** The last LOG_LINES info and warning lines. */
  log: string[];
  startedAt: number;
}

export const LOG_LINES = 5;
/** A new rate is measured once the last sample is this old: a rate over a few ms is noise. */
export const RATE_WINDOW_MS = 500;

export function initialUpState(nodeNames: readonly string[], now: number): UpViewState {
  return {
    nodes: nodeNames.map((node) => ({ node, step: 'pending', status: 'start', since: now, startedAt: now })),
    transfers: [],
    log: [],
    startedAt: now,
  };
}

/** The next state after `event` at time `now`. Pure: `state` is not changed. */
export function reduceUp(state: UpViewState, event: LabEvent, now: number): UpViewState {
  switch (event.kind) {
    case 'log':
      if (event.level === 'debug') return state;
      return {
        ...state,
        log: [...state.log, event.level === 'warn' ? `warning: ${event.message}` : event.message].slice(
          -LOG_LINES,
        ),
      };
    case 'node':
      return withNode(state, event.node, now, (n) => nodeStep(n, event, now));
    case 'progress': {
      if (event.node === undefined) {
        const i = state.transfers.findIndex((t) => t.step === event.step);
        const next = nextTransfer(state.transfers[i], event, now);
        const transfers = i < 0 ? [...state.transfers, next] : state.transfers.with(i, next);
        return { ...state, transfers };
      }
      return withNode(state, event.node, now, (n) => ({
        ...n,
        progress: nextTransfer(n.progress?.step === event.step ? n.progress : undefined, event, now),
      }));
    }
  }
}

/** Applies `update` to the node, adding it (at the end) when first seen. */
function withNode(
  state: UpViewState,
  node: string,
  now: number,
  update: (n: NodeProgress) => NodeProgress,
): UpViewState {
  const i = state.nodes.findIndex((n) => n.node === node);
  if (i >= 0) return { ...state, nodes: state.nodes.with(i, update(state.nodes[i]!)) };
  const fresh: NodeProgress = { node, step: 'pending', status: 'start', since: now, startedAt: now };
  return { ...state, nodes: [...state.nodes, update(fresh)] };
}

function nodeStep(n: NodeProgress, e: Extract<LabEvent, { kind: 'node' }>, now: number): NodeProgress {
  const sameStep = n.step === e.step && n.step !== 'pending';
  // A step keeps its start time through done/fail; a new step (or a start again) restarts it.
  const since = sameStep && e.status !== 'start' ? n.since : now;
  const next: NodeProgress = { node: n.node, step: e.step, status: e.status, since, startedAt: n.startedAt };
  if (e.status !== 'start') next.until = now;
  // A failed step keeps what was known about it when the failure says nothing more.
  const detail = e.detail ?? (sameStep && e.status === 'fail' ? n.detail : undefined);
  if (detail !== undefined) next.detail = detail;
  if (sameStep && n.progress && e.status !== 'start') next.progress = n.progress;
  if (e.status === 'fail' || (e.status !== 'start' && isLastStep(e.step))) next.finishedAt = now;
  else if (n.finishedAt !== undefined && e.status !== 'start') next.finishedAt = n.finishedAt;
  return next;
}

/** `healthy` ends up; a step outside NODE_STEPS (`down`) is the whole job. */
export function isLastStep(step: string): boolean {
  return step === 'healthy' || !(NODE_STEPS as readonly string[]).includes(step);
}

function nextTransfer(
  prev: Transfer | undefined,
  e: Extract<LabEvent, { kind: 'progress' }>,
  now: number,
): Transfer {
  const total = e.total ?? prev?.total;
  const base = { step: e.step, done: e.done, ...(total !== undefined ? { total } : {}) };
  // A first sample, or a restarted transfer (its count went back): nothing to measure from.
  if (!prev || e.done < prev.done) return { ...base, sampleAt: now, sampleDone: e.done };
  const dt = now - prev.sampleAt;
  const rate = prev.rateBytesPerSec;
  if (dt < RATE_WINDOW_MS)
    return {
      ...base,
      ...(rate !== undefined ? { rateBytesPerSec: rate } : {}),
      sampleAt: prev.sampleAt,
      sampleDone: prev.sampleDone,
    };
  const measured = ((e.done - prev.sampleDone) * 1000) / dt;
  // Half the old rate in each new one: steady to read, quick to follow a change.
  const smoothed = rate === undefined ? measured : (rate + measured) / 2;
  return { ...base, rateBytesPerSec: smoothed, sampleAt: now, sampleDone: e.done };
}

/** `0.4s`, `12s`, `1m05s`, `1h02m`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 10) return `${s.toFixed(1)}s`;
  if (s < 60) return `${Math.floor(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

const MiB = 1024 ** 2;

/** `[#####-----] 45% 120.3/260.0 MiB 12.1 MiB/s`; without a total, no bar: `120.3 MiB 12.1 MiB/s`. */
export function formatTransfer(
  t: Pick<Transfer, 'done' | 'total' | 'rateBytesPerSec'>,
  barWidth = 10,
): string {
  // A finished transfer has no speed any more.
  const finished = !!t.total && t.done >= t.total;
  const rate =
    t.rateBytesPerSec !== undefined && !finished ? ` ${(t.rateBytesPerSec / MiB).toFixed(1)} MiB/s` : '';
  if (!t.total) return `${(t.done / MiB).toFixed(1)} MiB${rate}`;
  const share = Math.min(1, t.done / t.total);
  // Floored like the percentage: the bar is full only when the transfer is.
  const filled = Math.floor(share * barWidth);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]`;
  const pct = `${Math.floor(share * 100)}%`;
  return `${bar} ${pct} ${(t.done / MiB).toFixed(1)}/${(t.total / MiB).toFixed(1)} MiB${rate}`;
}

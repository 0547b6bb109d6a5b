/** Steps a node goes through during `lab up`, in order. */
export const NODE_STEPS = [
  'pending',
  'image',
  'disk',
  'seed',
  'define',
  'boot',
  'ssh',
  'services',
  'healthy',
] as const;
export type NodeStep = (typeof NODE_STEPS)[number];

/** `step` is a NodeStep during up, or another step name (e.g. `down`). */
export type LabEvent =
  | { kind: 'node'; node: string; step: string; status: 'start' | 'done' | 'skip' | 'fail'; detail?: string }
  | { kind: 'progress'; node?: string; step: string; done: number; total?: number; unit: 'bytes' }
  | { kind: 'log'; level: 'info' | 'warn' | 'debug'; message: string };

export type EventSink = (event: LabEvent) => void;
export const ignoreEvents: EventSink = () => {};

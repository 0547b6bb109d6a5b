/**
 * Test-only failpoints. `LAB_FAILPOINT=after-define:node2` makes the process kill itself
 * with SIGKILL when it reaches `failpoint('after-define', 'node2')`: no handler, no
 * cleanup, no flush, exactly what a power cut or `kill -9` does. Several may be given,
 * comma-separated; `after-define` alone matches every node. Unset (the normal case) they
 * do nothing but one environment lookup.
 *
 * The names, in the order `lab up` reaches them: after-lock, mid-download, after-overlay,
 * after-seed, after-define, after-start, mid-state-write.
 */
export const FAILPOINTS = [
  'after-lock',
  'mid-download',
  'after-overlay',
  'after-seed',
  'after-define',
  'after-start',
  'mid-state-write',
] as const;
export type Failpoint = (typeof FAILPOINTS)[number];

/** Does the failpoint spec (the value of LAB_FAILPOINT) select this point? Pure. */
export function failpointSelected(spec: string | undefined, name: Failpoint, node?: string): boolean {
  if (!spec) return false;
  return spec.split(',').some((entry) => {
    const [point, target] = entry.trim().split(':');
    return point === name && (target === undefined || target === '' || target === node);
  });
}

export function failpoint(name: Failpoint, node?: string): void {
  if (!failpointSelected(process.env.LAB_FAILPOINT, name, node)) return;
  process.stderr.write(`failpoint ${name}${node ? `:${node}` : ''}: SIGKILL\n`);
  process.kill(process.pid, 'SIGKILL');
}

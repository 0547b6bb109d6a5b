/**
 * `lab exec`: one command on many nodes at once, over the lab's pinned connections (the
 * connection agent's kept links when it runs). Each node's output is kept whole and shown
 * under its name when the node is done, so lines of two nodes never interleave.
 */
import { describeError } from '../errors.js';
import type { NodeSpec } from '../plan/model.js';
import { mapLimit } from '../runtime/limit.js';
import { sshTargetFor, type LabContext } from './context.js';
import { labAgent, openLink } from './links.js';

/** One node's run (`--json`): its exit code, or why it did not run. */
export interface FanOutResult {
  node: string;
  /** The command's exit status; null when it did not run or did not end. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Why there is no exit status (not running, unreachable, timed out). */
  error?: string;
  ms: number;
}

export async function fanOut(
  ctx: LabContext,
  nodes: NodeSpec[],
  argv: string[],
  opts: { timeoutMs: number; onResult?: (r: FanOutResult) => void },
): Promise<FanOutResult[]> {
  const [states, secret] = await Promise.all([ctx.virsh.listDomainStates(), ctx.dir.secret(false)]);
  const agent = secret ? await labAgent(ctx.dir.private) : undefined;
  try {
    return await mapLimit(nodes, 16, async (node): Promise<FanOutResult> => {
      const started = performance.now();
      const done = (r: Omit<FanOutResult, 'node' | 'ms'>): FanOutResult => {
        const result = { node: node.name, ...r, ms: Math.round(performance.now() - started) };
        opts.onResult?.(result);
        return result;
      };
      const state = states.get(node.domain) ?? 'missing';
      if (state !== 'running')
        return done({ code: null, stdout: '', stderr: '', error: `${state}, not running` });
      if (!secret)
        return done({
          code: null,
          stdout: '',
          stderr: '',
          error: 'the lab has no keys on this host: run lab up',
        });
      try {
        const link = await openLink(agent, sshTargetFor(ctx.lab, node, secret), 20_000);
        try {
          const r = await link.exec(argv, { timeoutMs: opts.timeoutMs });
          return done({ code: r.code, stdout: r.stdout, stderr: r.stderr });
        } finally {
          link.close();
        }
      } catch (err) {
        return done({ code: null, stdout: '', stderr: '', error: describeError(err) });
      }
    });
  } finally {
    agent?.close();
  }
}

/** A node's output, each line prefixed by its name (`coreos1 | …`; stderr `coreos1 ! …`). Pure. */
export function prefixed(r: FanOutResult, width: number): { stdout: string; stderr: string } {
  const lines = (text: string, mark: string) =>
    text === ''
      ? ''
      : text
          .replace(/\n$/, '')
          .split('\n')
          .map((l) => `${r.node.padEnd(width)} ${mark} ${l}\n`)
          .join('');
  return { stdout: lines(r.stdout, '|'), stderr: lines(r.stderr, '!') };
}

/** The closing line: how many ran and ended 0, and each node that did not. Pure. */
export function fanOutSummary(results: FanOutResult[]): { text: string; failed: string[] } {
  const failed = results.filter((r) => r.code !== 0);
  const ok = results.length - failed.length;
  const parts = failed.map((r) =>
    r.code === null ? `${r.node}: ${r.error ?? 'did not run'}` : `${r.node} exited ${r.code}`,
  );
  return {
    text: `${results.length} node${results.length === 1 ? '' : 's'}: ${ok} exited 0${parts.length ? `; ${parts.join('; ')}` : ''}`,
    failed: failed.map((r) => r.node),
  };
}

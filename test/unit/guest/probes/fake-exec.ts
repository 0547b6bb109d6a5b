import type { Exec, ExecResult } from '../../../../lab/guest/probes/index.js';

/** An Exec that replays canned results by argv (joined with spaces) and records what ran. */
export function fakeExec(replies: Record<string, Partial<ExecResult> | Error>): Exec & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    exec(argv: string[]) {
      calls.push(argv);
      const r = replies[argv.join(' ')];
      if (r instanceof Error) return Promise.reject(r);
      if (!r) return Promise.resolve({ stdout: '', stderr: `sh: 1: ${argv[0]}: not found\n`, code: 127 });
      return Promise.resolve({ stdout: '', stderr: '', code: 0, ...r });
    },
  };
}

import { constants as osConstants } from 'node:os';

/** A channel's exit status as a shell reports it: the code, or 128 + N when killed by signal N. */
export function exitCodeOf(code: number | null | undefined, signal: string | undefined): number | undefined {
  if (typeof code === 'number') return code;
  if (signal === undefined) return undefined;
  const n = (osConstants.signals as Record<string, number | undefined>)[`SIG${signal}`];
  return n === undefined ? 255 : 128 + n;
}

import { statfs } from 'node:fs/promises';
import { CommandError } from '../../runtime/exec.js';

/** Whether `err` (or one of its causes) says the file system is full. */
export const isNoSpace = (err: unknown): boolean => {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT' || /No space left on device/.test(e.message)) return true;
    if (e instanceof CommandError && /No space left on device/.test(e.stderr)) return true;
  }
  return false;
};

/** Fails before writing when the file system cannot hold what the server announced. */
export async function ensureRoom(dir: string, bytes: number | undefined): Promise<void> {
  if (bytes === undefined || bytes <= 0) return;
  const fs = await statfs(dir).catch(() => undefined);
  if (!fs) return;
  const free = fs.bavail * fs.bsize;
  if (bytes > free)
    throw Object.assign(new Error(`${bytes} bytes to come, ${free} bytes free`), { code: 'ENOSPC' });
}

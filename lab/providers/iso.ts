import { mkdir, mkdtemp, rename, rm, writeFile, chmod } from 'node:fs/promises';
import path from 'node:path';
import { HostError } from '../errors.js';
import { run } from '../runtime/exec.js';

let isoTool: 'xorriso' | 'genisoimage' | undefined;

/** Finds xorriso (preferred) or genisoimage. */
export async function findIsoTool(): Promise<'xorriso' | 'genisoimage'> {
  if (isoTool) return isoTool;
  for (const tool of ['xorriso', 'genisoimage'] as const) {
    try {
      await run(tool, ['-version'], { timeoutMs: 10_000 });
      isoTool = tool;
      return tool;
    } catch {
      /* try the next one */
    }
  }
  throw new HostError('no ISO tool found (xorriso or genisoimage)', { hint: 'apt-get install xorriso' });
}

/**
 * Writes an ISO9660 seed (Joliet + Rock Ridge) with the given files and volume label,
 * atomically and readable only by its owner (it holds the node's host key).
 */
export async function writeSeedIso(
  target: string,
  label: string,
  files: Record<string, string>,
  signal?: AbortSignal,
): Promise<void> {
  const tool = await findIsoTool();
  const staging = await mkdtemp(`${target}.staging-`);
  const tmp = `${target}.partial`;
  try {
    for (const [name, content] of Object.entries(files)) {
      const file = path.join(staging, name);
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      await writeFile(file, content, { mode: 0o600 });
    }
    await rm(tmp, { force: true });
    const args = ['-V', label, '-J', '-r', '-o', tmp, staging];
    if (tool === 'xorriso')
      await run('xorriso', ['-as', 'mkisofs', '-quiet', ...args], {
        timeoutMs: 60_000,
        ...(signal ? { signal } : {}),
      });
    else await run('genisoimage', ['-quiet', ...args], { timeoutMs: 60_000, ...(signal ? { signal } : {}) });
    await chmod(tmp, 0o600);
    await rename(tmp, target);
  } finally {
    await rm(staging, { recursive: true, force: true });
    await rm(tmp, { force: true });
  }
}

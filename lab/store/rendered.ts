import { chmod, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { maskSecrets, type KnownSecret, type StoredRendering } from '../plan/config-changes.js';
import { writeAtomic, type LabDir } from './lab-dir.js';

/** Where a node's first-boot files are kept when its seed is written: `private/rendered/NODE.json`. */
export function renderingFile(dir: LabDir, node: string): string {
  return path.join(dir.private, 'rendered', `${node}.json`);
}

/**
 * Keeps the first-boot files a node's seed was just written with, for `lab plan` to diff
 * the next rendering against: secrets masked (they derive from the lab's secret, which
 * stays their one copy), in the private folder (0700; the file 0600, written whole).
 */
export async function saveRendering(
  dir: LabDir,
  node: string,
  rendering: StoredRendering,
  known: readonly KnownSecret[],
): Promise<void> {
  const file = renderingFile(dir, node);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await chmod(path.dirname(file), 0o700);
  const files = Object.fromEntries(
    Object.keys(rendering.files)
      .sort()
      .map((f) => [f, maskSecrets(rendering.files[f]!, known)]),
  );
  await writeAtomic(file, `${JSON.stringify({ configHash: rendering.configHash, files }, null, 2)}\n`, 0o600);
}

/** The first-boot files stored for `node`; undefined when none are (a lab made by an older lab) or they are unreadable. */
export async function readRendering(dir: LabDir, node: string): Promise<StoredRendering | undefined> {
  let data: unknown;
  try {
    data = JSON.parse(await readFile(renderingFile(dir, node), 'utf8'));
  } catch {
    return undefined;
  }
  if (data === null || typeof data !== 'object') return undefined;
  const { configHash, files } = data as Record<string, unknown>;
  if (typeof configHash !== 'string' || files === null || typeof files !== 'object' || Array.isArray(files))
    return undefined;
  const entries = Object.entries(files);
  if (!entries.every((e): e is [string, string] => typeof e[1] === 'string')) return undefined;
  return { configHash, files: Object.fromEntries(entries) };
}

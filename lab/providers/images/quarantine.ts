import { createHash } from 'node:crypto';
import { chmod, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/** Where a download for `target` waits until it is verified: never under the entry's own name. */
export function quarantineDir(target: string): string {
  return path.join(path.dirname(target), '.quarantine');
}

/** The files of one download in the quarantine, named after its source (Vagrant: SHA1(url)). */
export interface Staging {
  dir: string;
  /** The published bytes as they arrive (mode 0600). */
  partial: string;
  /** What the server said about them: the validators a resume sends back. */
  meta: string;
  sig: string;
  /** The image, unpacked, until it is checked and renamed into the cache. */
  unpacked: string;
}

/** The staging files in the quarantine of `target` for the download from `source`. */
export function staging(target: string, source: string): Staging {
  const dir = quarantineDir(target);
  const base = path.join(dir, createHash('sha256').update(source).digest('hex').slice(0, 16));
  return {
    dir,
    partial: `${base}.partial`,
    meta: `${base}.partial.json`,
    sig: `${base}.sig`,
    unpacked: `${base}.unpacked`,
  };
}

/** Moves the checked image to `target`, read-only and synced; drops the published bytes. */
export async function admit(s: Staging, target: string): Promise<void> {
  // Read-only before it has its name: nothing ever writes a base image (overlays do).
  await chmod(s.unpacked, 0o444);
  await syncPath(s.unpacked);
  await rename(s.unpacked, target);
  await syncPath(path.dirname(target));
  await rm(s.partial, { force: true });
  await rm(s.meta, { force: true });
}

/** fsync of a file or a folder (for a rename to last). */
async function syncPath(p: string): Promise<void> {
  const fh = await open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

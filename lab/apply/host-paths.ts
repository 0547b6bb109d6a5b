import { statSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import path from 'node:path';
import { HostError } from '../errors.js';

/**
 * The first folder on the way to `target` that others cannot enter (no o+x): QEMU runs
 * as its own user (libvirt-qemu) and must reach the disks and seeds, as libvirt's docs
 * warn ("parent directory permissions may still deny access"). Missing folders are fine:
 * lab creates them 0711. Pure apart from stat, injectable for tests.
 */
export function untraversable(
  target: string,
  stat: (p: string) => { mode: number } | undefined = (p) => {
    try {
      return statSync(p);
    } catch {
      return undefined;
    }
  },
): { dir: string; mode: number } | undefined {
  const parts = path.resolve(target).split(path.sep).filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const dir = path.sep + parts.slice(0, i).join(path.sep);
    const st = stat(dir);
    if (!st) return undefined;
    if ((st.mode & 0o001) === 0) return { dir, mode: st.mode & 0o7777 };
  }
  return undefined;
}

/** Space a new node needs at least on the lab's disk: its overlay grows as the guest writes. */
export const NODE_DISK_RESERVE = 512 * 1024 ** 2;

/**
 * Before anything is created: QEMU can reach the lab's folder and the image cache, and
 * the lab's disk has room for the nodes about to be made.
 */
export async function checkHostPaths(opts: {
  labDir: string;
  cacheDir: string;
  qemuIsOtherUser: boolean;
  newNodes: number;
}): Promise<void> {
  if (opts.qemuIsOtherUser) {
    for (const [what, dir] of [
      ['lab folder', opts.labDir],
      ['image cache', opts.cacheDir],
    ] as const) {
      const bad = untraversable(dir);
      if (bad)
        throw new HostError(
          `QEMU cannot reach the ${what} ${dir}: ${bad.dir} has mode ${bad.mode.toString(8).padStart(4, '0')} (no o+x)`,
          {
            hint: `chmod o+x ${bad.dir}, or point ${what === 'lab folder' ? 'LAB_STATE_DIR' : 'LAB_CACHE_DIR'} somewhere QEMU can reach`,
          },
        );
    }
  }
  if (opts.newNodes === 0) return;
  let probe = path.resolve(opts.labDir);
  let fs: Awaited<ReturnType<typeof statfs>> | undefined;
  while (!(fs = await statfs(probe).catch(() => undefined)) && probe !== path.dirname(probe))
    probe = path.dirname(probe);
  if (!fs) return;
  const free = fs.bavail * fs.bsize;
  const need = opts.newNodes * NODE_DISK_RESERVE;
  if (free < need)
    throw new HostError(
      `not enough free disk for ${opts.newNodes} new node(s) under ${probe}: ${(free / 1024 ** 2).toFixed(0)} MiB free, ${(need / 1024 ** 2).toFixed(0)} MiB needed at least`,
      { hint: 'free some space, or point LAB_STATE_DIR at a larger disk' },
    );
}

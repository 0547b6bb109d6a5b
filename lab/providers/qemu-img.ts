import { rename, rm } from 'node:fs/promises';
import { run } from './exec.js';

export interface ImageInfo {
  format: string;
  virtualSize: number;
  backingFile?: string;
}

/** Parses `qemu-img info --output=json`. Pure. */
export function parseImageInfo(json: string): ImageInfo {
  const d = JSON.parse(json) as { format: string; 'virtual-size': number; 'backing-filename'?: string };
  return {
    format: d.format,
    virtualSize: d['virtual-size'],
    ...(d['backing-filename'] ? { backingFile: d['backing-filename'] } : {}),
  };
}

export async function imageInfo(file: string, signal?: AbortSignal): Promise<ImageInfo> {
  // -U: read even while a running guest holds the write lock.
  const r = await run('qemu-img', ['info', '-U', '--output=json', file], {
    timeoutMs: 30_000,
    ...(signal ? { signal } : {}),
  });
  return parseImageInfo(r.stdout);
}

/**
 * A copy-on-write qcow2 overlay on a base image (never a full copy). Created under a
 * temporary name and renamed, so a crash never leaves a half-made disk at `overlay`.
 */
export async function createOverlay(
  base: string,
  baseFormat: string,
  overlay: string,
  sizeBytes: number,
  signal?: AbortSignal,
): Promise<void> {
  const tmp = `${overlay}.partial`;
  await rm(tmp, { force: true });
  await run(
    'qemu-img',
    ['create', '-q', '-f', 'qcow2', '-F', baseFormat, '-b', base, tmp, String(sizeBytes)],
    {
      timeoutMs: 60_000,
      ...(signal ? { signal } : {}),
    },
  );
  await rename(tmp, overlay);
}

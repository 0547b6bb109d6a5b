import { chmod, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { HostError } from '../errors.js';
import { CommandError, run } from '../runtime/exec.js';

/** An image that failed a check (digest, signature, format): it is deleted, never used. */
export class ImageRefusedError extends HostError {}

export interface ImageInfo {
  format: string;
  virtualSize: number;
  backingFile?: string;
  backingFormat?: string;
  /** qcow2 with an external data file: its guest data lives in another (host) file. */
  dataFile?: string;
  /** qcow2's corrupt bit. */
  corrupt?: boolean;
  /** Internal snapshots, with the size of the memory state each holds. */
  snapshots?: { name: string; vmStateBytes: number }[];
}

/** Parses `qemu-img info --output=json`. Pure. */
export function parseImageInfo(json: string): ImageInfo {
  const d = JSON.parse(json) as {
    format: string;
    'virtual-size': number;
    'backing-filename'?: string;
    'backing-filename-format'?: string;
    'format-specific'?: { data?: { 'data-file'?: string; corrupt?: boolean } };
    snapshots?: { name: string; 'vm-state-size': number }[];
  };
  const specific = d['format-specific']?.data;
  return {
    format: d.format,
    virtualSize: d['virtual-size'],
    ...(d['backing-filename'] ? { backingFile: d['backing-filename'] } : {}),
    ...(d['backing-filename-format'] ? { backingFormat: d['backing-filename-format'] } : {}),
    ...(specific?.['data-file'] ? { dataFile: specific['data-file'] } : {}),
    ...(specific?.corrupt ? { corrupt: true } : {}),
    ...(d.snapshots?.length
      ? { snapshots: d.snapshots.map((s) => ({ name: s.name, vmStateBytes: s['vm-state-size'] })) }
      : {}),
  };
}

/**
 * What qemu-img may use while it reads an image that came from elsewhere: 1 GiB of address
 * space and 2 s of CPU, OpenStack nova's limits (a crafted header must not make it eat the
 * host, CVE-2024-4467 and libguestfs' fuzzing findings).
 */
export const QEMU_IMG_LIMITS = { addressSpaceBytes: 1024 ** 3, cpuSeconds: 2 } as const;

/**
 * The argv of `qemu-img info` under prlimit(1) (util-linux). With `format` qemu-img does
 * not probe: the format is the one named, whatever the file's first bytes say. The path is
 * made absolute so that a name like `json:{…}` is never read as a protocol. Pure.
 */
export function imageInfoArgv(file: string, format?: string): string[] {
  return [
    'prlimit',
    `--as=${QEMU_IMG_LIMITS.addressSpaceBytes}`,
    `--cpu=${QEMU_IMG_LIMITS.cpuSeconds}`,
    '--',
    'qemu-img',
    'info',
    '-U', // read even while a running guest holds the write lock
    '--output=json',
    ...(format ? ['-f', format] : []),
    path.resolve(file),
  ];
}

/**
 * `qemu-img info` of `file`, run under QEMU_IMG_LIMITS. Pass the `format` you expect
 * whenever it is known: without it qemu-img guesses from the content.
 */
export async function imageInfo(file: string, signal?: AbortSignal, format?: string): Promise<ImageInfo> {
  const [cmd, ...args] = imageInfoArgv(file, format);
  let r;
  try {
    r = await run(cmd!, args, { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
    if (err.exitCode_ === undefined && err.message.endsWith(': not found'))
      throw new HostError('prlimit is not installed: lab runs qemu-img info under resource limits', {
        cause: err,
        hint: 'apt-get install util-linux',
      });
    if (/failed to execute qemu-img/.test(err.stderr))
      throw new HostError('qemu-img is not installed', { cause: err, hint: 'apt-get install qemu-utils' });
    if (err.exitCode_ === undefined && !/cancelled|timed out/.test(err.message))
      throw new HostError(
        `qemu-img info ${file} was killed at its limits (${QEMU_IMG_LIMITS.cpuSeconds} s CPU, ${QEMU_IMG_LIMITS.addressSpaceBytes / 1024 ** 3} GiB address space): the image looks crafted`,
        { cause: err },
      );
    throw err;
  }
  return parseImageInfo(r.stdout);
}

/**
 * Checks an image that came from outside before it becomes a base image: it opens as
 * `format` (named, never probed), has no backing file, no external data file and is not
 * marked corrupt. Throws HostError saying why not.
 */
export async function checkBaseImage(
  file: string,
  format: 'qcow2' | 'raw',
  what: string,
  signal?: AbortSignal,
): Promise<ImageInfo> {
  let info: ImageInfo;
  try {
    info = await imageInfo(file, signal, format);
  } catch (err) {
    if (err instanceof CommandError && /not in \S+ format|Could not open/i.test(err.stderr))
      throw new ImageRefusedError(`${what} is not a ${format} image (the template says ${format})`, {
        cause: err,
        hint: 'image.format in the template must name the format the publisher ships',
      });
    throw err;
  }
  if (info.format !== format)
    throw new ImageRefusedError(`${what} is ${info.format}, not ${format} as the template says`);
  if (info.backingFile !== undefined)
    throw new ImageRefusedError(
      `${what} has a backing file (${info.backingFile}): a downloaded base image must stand alone`,
      { hint: 'an image that names a backing file could make QEMU read any file of the host' },
    );
  if (info.dataFile !== undefined)
    throw new ImageRefusedError(
      `${what} has an external data file (${info.dataFile}): a downloaded base image must stand alone`,
    );
  if (info.corrupt) throw new ImageRefusedError(`${what} is marked corrupt by qemu-img`);
  if (!(info.virtualSize > 0))
    throw new ImageRefusedError(`${what} has no size (qemu-img says ${info.virtualSize})`);
  return info;
}

/** The argv that makes an overlay: always with the backing format named (`-F`). Pure. */
export function overlayArgv(base: string, baseFormat: string, overlay: string, sizeBytes: number): string[] {
  return [
    'qemu-img',
    'create',
    '-q',
    '-f',
    'qcow2',
    '-F',
    baseFormat,
    '-b',
    path.resolve(base),
    path.resolve(overlay), // absolute: a name starting with - is never read as an option
    String(sizeBytes),
  ];
}

/**
 * A copy-on-write qcow2 overlay on a base image (never a full copy), with the base's format
 * named so that QEMU never probes it. Created under a temporary name and renamed, so a
 * crash never leaves a half-made disk at `overlay`.
 */
export async function createOverlay(
  base: string,
  baseFormat: string,
  overlay: string,
  sizeBytes: number,
  signal?: AbortSignal,
): Promise<void> {
  if (baseFormat !== 'qcow2' && baseFormat !== 'raw')
    throw new HostError(`cannot back an overlay on a ${JSON.stringify(baseFormat)} image: qcow2 or raw only`);
  const tmp = `${overlay}.partial`;
  await rm(tmp, { force: true });
  const [cmd, ...args] = overlayArgv(base, baseFormat, tmp, sizeBytes);
  await run(cmd!, args, { timeoutMs: 60_000, ...(signal ? { signal } : {}) });
  // The guest's disk holds its host keys and whatever it writes: for QEMU's user only
  // (libvirt chowns it to that user while the guest runs; qemu-img made it 0644).
  await chmod(tmp, 0o600);
  await rename(tmp, overlay);
}

import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { HostError } from '../../errors.js';
import { spawnProgram } from '../../runtime/exec.js';
import type { DownloadOptions } from './options.js';
import type { Staging } from './quarantine.js';

const UNPACKERS = { gz: ['gzip', '-dc'], bz2: ['bzip2', '-dc'], xz: ['xz', '-dc'], none: undefined };

/** Turns the verified published bytes into s.unpacked: unpacked, or renamed when not compressed. */
export async function unpackStaged(
  s: Staging,
  compression: keyof typeof UNPACKERS,
  name: string,
  opts: DownloadOptions,
): Promise<void> {
  await rm(s.unpacked, { force: true });
  const unpacker = UNPACKERS[compression];
  if (unpacker) {
    opts.onEvent({
      kind: 'log',
      level: 'info',
      message: `unpacking ${name} image (${compression})`,
    });
    await unpack(unpacker, s.partial, s.unpacked, opts.signal);
  } else {
    await rm(s.meta, { force: true }); // verified whole: nothing left to resume
    await rename(s.partial, s.unpacked);
  }
}

/** gzip/bzip2/xz -dc into a new 0600 file; the tool's exit code counts. */
async function unpack(tool: string[], src: string, out: string, signal?: AbortSignal): Promise<void> {
  const child = spawnProgram(tool[0]!, [...tool.slice(1), src], {
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: { stdout: false, stderr: true },
    ...(signal ? { cancelSignal: signal } : {}),
  });
  try {
    await pipeline(child.stdout!, createWriteStream(out, { flags: 'wx', mode: 0o600 }));
  } catch (err) {
    child.kill();
    await child;
    throw err;
  }
  const r = await child;
  if (r.exitCode !== 0)
    throw new HostError(
      `unpacking ${src} with ${tool[0]} failed (exit ${r.exitCode ?? r.signal ?? '?'}): ${String(r.stderr).trim()}`,
    );
}

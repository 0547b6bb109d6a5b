import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { HostError, InterruptedError, LabError } from '../../errors.js';
import type { EventSink } from '../../events.js';
import { spawnProgram } from '../../runtime/exec.js';
import { cacheRoot } from '../../store/lab-dir.js';
import type { Lock } from '../../store/lock.js';
import { lockCacheWork } from './entry-lock.js';
import { templatesDir } from '../../templates/load.js';

/** The lock a build of image `name` holds (and `lab image prune` tries): beside the entry. */
export function buildLockFile(name: string): string {
  return `${path.join(cacheRoot(), name)}.lock`;
}

/**
 * When the cached build of image `name` is whole: its manifest (build.sh writes it last,
 * then moves the folder in place) lists a sha256 for each file, and each file matches.
 * Returns when it was built; undefined when it is missing or does not match.
 */
export async function verifiedBuild(name: string): Promise<string | undefined> {
  const dir = path.join(cacheRoot(), name);
  let manifest: { built?: unknown; sha256?: unknown };
  try {
    manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as typeof manifest;
  } catch {
    return undefined;
  }
  const sums = manifest.sha256;
  if (typeof sums !== 'object' || sums === null || !('disk.qcow2' in sums)) return undefined;
  for (const [file, want] of Object.entries(sums as Record<string, unknown>)) {
    if (typeof want !== 'string' || file.includes('/')) return undefined;
    const got = await sha256File(path.join(dir, file)).catch(() => undefined);
    if (got !== want) return undefined;
  }
  return typeof manifest.built === 'string' ? manifest.built : 'at an unknown time';
}

function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (b) => h.update(b))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/** How long build.sh may take to end its step and remove its work folder once signalled. */
const CLEANUP_GRACE_MS = 60_000;

/**
 * Runs vm-templates/NAME/build.sh into the cache (mmdebstrap; needs root and Debian
 * mirrors), under the entry's lock: a second build, or a `lab up` needing the image,
 * waits for it and then finds the image ready. `signal` sends the script SIGTERM and
 * waits while it ends its step and removes its work folder (build.sh's traps), so
 * nothing of a cut build stays in the cache.
 */
export async function buildImage(
  name: string,
  opts: { onEvent: EventSink; signal?: AbortSignal },
): Promise<string> {
  const script = path.join(templatesDir(), name, 'build.sh');
  if (!existsSync(script)) throw new LabError(`template image ${name} has no build script (${script})`);
  const out = path.join(cacheRoot(), name);
  await mkdir(path.dirname(out), { recursive: true, mode: 0o755 });
  const lock = await lockBuild(name, opts);
  try {
    if (lock.waited && existsSync(path.join(out, 'manifest.json'))) {
      opts.onEvent({
        kind: 'log',
        level: 'info',
        message: `the image ${name} is ready: another lab process built it meanwhile`,
      });
      return out;
    }
    opts.onEvent({
      kind: 'log',
      level: 'info',
      message: `building image ${name} into ${out} (a few minutes; needs Debian mirrors)`,
    });
    const child = spawnProgram('bash', [script, out], {
      all: true,
      ...(opts.signal ? { cancelSignal: opts.signal } : {}),
      forceKillAfterDelay: CLEANUP_GRACE_MS,
      stdin: 'ignore',
      timeout: 40 * 60_000,
    });
    for await (const line of child.iterable({ from: 'all' })) {
      opts.onEvent({ kind: 'log', level: 'debug', message: `image ${name}: ${String(line)}` });
    }
    const r = await child;
    if (r.isCanceled) {
      const why: unknown = opts.signal?.reason;
      throw why instanceof InterruptedError
        ? why
        : new InterruptedError(`building image ${name} was stopped; its work folder is removed`);
    }
    if (r.exitCode !== 0)
      throw new HostError(`building image ${name} failed (exit ${r.exitCode ?? r.signal ?? 'unknown'})`, {
        hint: `run bash ${script} ${out} to see the whole output`,
      });
    return out;
  } finally {
    await lock.lock.release();
  }
}

function lockBuild(
  name: string,
  opts: { onEvent: EventSink; signal?: AbortSignal },
): Promise<{ lock: Lock; waited: boolean }> {
  return lockCacheWork(buildLockFile(name), `the build of image ${name}`, `building the image ${name}`, {
    ...opts,
    timeoutMs: 45 * 60_000,
  });
}

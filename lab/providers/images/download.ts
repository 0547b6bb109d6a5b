import { existsSync } from 'node:fs';
import { mkdir, open, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { HostError, LabError } from '../../errors.js';
import { run } from '../../runtime/exec.js';
import type { Lock } from '../../store/lock.js';
import { lockCacheWork } from './entry-lock.js';
import type { Template } from '../../templates/schema.js';
import { checkBaseImage, ImageRefusedError } from '../qemu-img.js';
import { isNoSpace } from './disk-space.js';
import type { DownloadOptions } from './options.js';
import { admit, staging, type Staging } from './quarantine.js';
import { fetchResumable } from './resumable-fetch.js';
import { unpackStaged } from './unpack.js';
import { checkDigest, checkSignature } from './verify.js';

/**
 * Brings a template's image into the cache at `target`, under a lock per cache entry (a
 * second lab process waits, then finds it ready). A download goes into the quarantine
 * beside the entry and resumes with HTTP Range + If-Range. The OpenPGP signature (when the
 * template names one) and the digest are checked over the published bytes; the image is
 * unpacked into a temp file there, checked with qemu-img under limits (format named, no
 * backing or data file), made read-only (0444), and only then renamed into place. What
 * fails a check is deleted; a full disk leaves nothing behind; a cut download is kept to
 * resume.
 */
export async function downloadImage(
  template: Template,
  target: string,
  opts: DownloadOptions,
): Promise<void> {
  const img = template.image;
  if ('build' in img) return;
  if (img.unavailable)
    throw new HostError(
      `the image of template ${template.name} cannot be downloaded any more: ${img.unavailable}`,
    );
  if (!img.url && !img.path)
    throw new LabError(`template ${template.name} has neither image.url nor image.path`);
  if (!img.digest && !img.digestUrl)
    throw new LabError(
      `template ${template.name} names no digest for its image: refusing to use an unverified image`,
    );
  await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
  const { lock, waited } = await lockEntry(target, template.name, opts);
  try {
    if (existsSync(target)) {
      if (waited)
        opts.onEvent({
          kind: 'log',
          level: 'info',
          message: `the image of ${template.name} is ready: another lab process prepared it meanwhile`,
        });
      return;
    }
    await prepareImage(template, target, opts);
  } finally {
    await lock.release();
  }
}

/** The lock of one cache entry, `<entry>.lock` beside it (cache entries are never deleted). */
function lockEntry(
  target: string,
  name: string,
  opts: DownloadOptions,
): Promise<{ lock: Lock; waited: boolean }> {
  return lockCacheWork(
    `${target}.lock`,
    `the image cache entry ${target}`,
    `preparing the image of ${name} in ${path.dirname(target)}`,
    {
      onEvent: opts.onEvent,
      ...(opts.signal ? { signal: opts.signal } : {}),
      timeoutMs: opts.lockTimeoutMs ?? 3 * 3600_000,
    },
  );
}

/** Fetches or copies, verifies, unpacks and checks the image in the quarantine, then admits it. */
async function prepareImage(template: Template, target: string, opts: DownloadOptions): Promise<void> {
  const img = template.image;
  if ('build' in img) return;
  const where = path.dirname(target);
  const source = img.url ?? path.resolve(img.path!);
  const s = staging(target, source);
  await mkdir(s.dir, { recursive: true, mode: 0o700 });
  try {
    if (img.url) await fetchResumable(img.url, s, template.name, opts);
    else await copyLocal(source, s, opts.signal);
    // The .sig signs the published (still compressed) bytes: check them before unpacking.
    if (img.signatureUrl) await checkSignature(template, s, opts);
    await checkDigest(template, s, opts);
    await unpackStaged(s, img.compression, template.name, opts);
    await checkBaseImage(s.unpacked, img.format, `the image of ${template.name}`, opts.signal);
    await admit(s, target);
  } catch (err) {
    const full = isNoSpace(err);
    // A refused or unfinished local copy is worth nothing; a cut download is resumed later.
    if (full || err instanceof ImageRefusedError || !img.url) {
      await rm(s.partial, { force: true });
      await rm(s.meta, { force: true });
    }
    if (full)
      throw new HostError(
        `no space left in the image cache ${where} for the image of ${template.name}: nothing was kept`,
        {
          cause: err,
          hint: 'free space there, or point LAB_CACHE_DIR at a larger file system',
        },
      );
    throw err;
  } finally {
    await rm(s.sig, { force: true });
    await rm(s.unpacked, { force: true });
    await rmdir(s.dir).catch(() => undefined); // only when empty
  }
}

/** A local image file into the partial, where every check then runs on the copy. */
async function copyLocal(source: string, s: Staging, signal?: AbortSignal): Promise<void> {
  // A copy first, then every check on the copy: the original may change meanwhile.
  // cp keeps the mode of a file it overwrites: 0600, never the source's exec bits.
  await (await open(s.partial, 'w', 0o600)).close();
  await run('cp', ['--reflink=auto', '--', source, s.partial], {
    timeoutMs: 30 * 60_000,
    ...(signal ? { signal } : {}),
  });
}

import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import {
  chmod,
  mkdir,
  open,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  statfs,
  truncate,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { HostError, LabError } from '../errors.js';
import type { EventSink } from '../events.js';
import { failpoint } from '../failpoint.js';
import { acquireLock, describeHolder, LockedError, type Lock } from '../lock.js';
import type { Template } from '../templates/schema.js';
import { templatesDir } from '../templates/load.js';
import { cacheRoot } from '../state.js';
import { CommandError, run, trackChild } from './exec.js';
import { checkBaseImage, ImageRefusedError } from './qemu-img.js';
import { SignatureError, trustedKey, verifyDetachedSignature, type TrustedKey } from './signature.js';

/** How a download finds the key its template names; tests hand in throwaway keys. */
export interface DownloadOptions {
  onEvent: EventSink;
  signal?: AbortSignal;
  /** image.signingKey -> key file and pinned fingerprint (default: vm-templates/keys/). */
  trustedKey?: (name: string) => TrustedKey;
  /** How long to wait for another lab process preparing the same image (default 3 h). */
  lockTimeoutMs?: number;
  /** Tries per download when the transfer is cut (default 4), each resuming where it stopped. */
  attempts?: number;
  /** The pause before the second try, doubled for each next one (default 2 s). */
  retryDelayMs?: number;
  /** A transfer that brings no byte for this long is cut and resumed (default 60 s). */
  idleTimeoutMs?: number;
}

/** A base image in the cache, ready to back overlays. */
export interface BaseImage {
  disk: string;
  format: 'qcow2' | 'raw';
  kernel?: string;
  initrd?: string;
}

/** Where a template's image lives in the cache (no I/O). */
export function imageLocation(template: Template): BaseImage {
  const boot = 'kernel' in template.boot ? template.boot : undefined;
  if ('build' in template.image) {
    const dir = path.join(cacheRoot(), template.image.build);
    return {
      disk: path.join(dir, 'disk.qcow2'),
      format: template.image.format,
      ...(boot
        ? {
            kernel: path.join(dir, boot.kernel),
            ...(boot.initrd ? { initrd: path.join(dir, boot.initrd) } : {}),
          }
        : {}),
    };
  }
  const dir = path.join(cacheRoot(), template.name);
  return { disk: path.join(dir, `disk.${template.image.format}`), format: template.image.format };
}

export function imageReady(template: Template): boolean {
  const loc = imageLocation(template);
  return [loc.disk, loc.kernel, loc.initrd].every((f) => f === undefined || existsSync(f));
}

/** Resolves the template's image into the cache: builds or downloads it when missing. */
export async function ensureImage(template: Template, opts: DownloadOptions): Promise<BaseImage> {
  const loc = imageLocation(template);
  if (imageReady(template)) return loc;
  if ('build' in template.image) {
    await buildImage(template.image.build, opts);
  } else {
    await downloadImage(template, loc.disk, opts);
  }
  if (!imageReady(template))
    throw new LabError(`image of template ${template.name} is still missing after preparing it`);
  return loc;
}

/** Runs vm-templates/NAME/build.sh into the cache (mmdebstrap; needs root and Debian mirrors). */
export async function buildImage(
  name: string,
  opts: { onEvent: EventSink; signal?: AbortSignal },
): Promise<string> {
  const script = path.join(templatesDir(), name, 'build.sh');
  if (!existsSync(script)) throw new LabError(`template image ${name} has no build script (${script})`);
  const out = path.join(cacheRoot(), name);
  await mkdir(path.dirname(out), { recursive: true, mode: 0o755 });
  opts.onEvent({
    kind: 'log',
    level: 'info',
    message: `building image ${name} into ${out} (a few minutes; needs Debian mirrors)`,
  });
  const child = trackChild(
    execa('bash', [script, out], {
      reject: false,
      all: true,
      ...(opts.signal ? { cancelSignal: opts.signal } : {}),
      stdin: 'ignore',
      timeout: 40 * 60_000,
    }),
  );
  for await (const line of child.iterable({ from: 'all' })) {
    opts.onEvent({ kind: 'log', level: 'debug', message: `image ${name}: ${String(line)}` });
  }
  const r = await child;
  if (r.exitCode !== 0)
    throw new HostError(`building image ${name} failed (exit ${r.exitCode ?? 'signal'})`, {
      hint: `run bash ${script} ${out} to see the whole output`,
    });
  return out;
}

const DIGEST_HEX = { sha256: 64, sha512: 128 } as const;
type DigestAlgo = keyof typeof DIGEST_HEX;
const isDigestAlgo = (a: string | undefined): a is DigestAlgo => a === 'sha256' || a === 'sha512';

/**
 * Reads the expected digest of `fileName` from a published checksum file, preferring
 * sha512: Flatcar's DIGESTS (sections "# MD5 HASH", "# SHA1 HASH", "# SHA512 HASH", each
 * followed by "<hex>  <file>"; no sha256), sha256sum/sha512sum output ("<hex>  <file>" or
 * "<hex> *<file>"), and BSD tags ("SHA256 (<file>) = <hex>"). Pure.
 */
export function pickDigest(listing: string, fileName: string): string | undefined {
  const found: Partial<Record<DigestAlgo, string>> = {};
  let section: string | undefined; // the algorithm of the current "# X HASH" section
  for (const raw of listing.split('\n')) {
    const line = raw.trim();
    const head = /^#\s*([A-Za-z0-9-]+)\s+HASH$/i.exec(line);
    if (head) {
      section = head[1]!.toLowerCase();
      continue;
    }
    const bsd = /^(SHA256|SHA512) ?\((.+)\) ?= ?([0-9a-fA-F]+)$/i.exec(line);
    const plain = bsd ? undefined : /^([0-9a-fA-F]+)\s+\*?(.+)$/.exec(line);
    const name = bsd?.[2] ?? plain?.[2];
    const hex = (bsd?.[3] ?? plain?.[1])?.toLowerCase();
    if (!name || !hex || path.basename(name) !== fileName) continue;
    // Under a section header the header names the algorithm (an MD5 line is never taken
    // for anything else); without one, the length does.
    const algo = bsd ? bsd[1]!.toLowerCase() : (section ?? (hex.length === 64 ? 'sha256' : 'sha512'));
    if (isDigestAlgo(algo) && hex.length === DIGEST_HEX[algo]) found[algo] ??= hex;
  }
  if (found.sha512) return `sha512:${found.sha512}`;
  if (found.sha256) return `sha256:${found.sha256}`;
  return undefined;
}

async function fileDigest(file: string, algo: string): Promise<string> {
  const h = createHash(algo);
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
}

/** Where a download for `target` waits until it is verified: never under the entry's own name. */
export function quarantineDir(target: string): string {
  return path.join(path.dirname(target), '.quarantine');
}

/** The files of one download in the quarantine, named after its source (Vagrant: SHA1(url)). */
interface Staging {
  dir: string;
  /** The published bytes as they arrive (mode 0600). */
  partial: string;
  /** What the server said about them: the validators a resume sends back. */
  meta: string;
  sig: string;
  /** The image, unpacked, until it is checked and renamed into the cache. */
  unpacked: string;
}

function staging(target: string, source: string): Staging {
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

/** RFC 9110 validators and the size of the file a partial download belongs to. */
interface PartialMeta {
  url: string;
  etag?: string;
  lastModified?: string;
  size?: number;
}

/** The transfer broke or the server was not ready: trying again resumes. */
class CutError extends HostError {}

const isNoSpace = (err: unknown): boolean => {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT' || /No space left on device/.test(e.message)) return true;
    if (e instanceof CommandError && /No space left on device/.test(e.stderr)) return true;
  }
  return false;
};

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
async function lockEntry(
  target: string,
  name: string,
  opts: DownloadOptions,
): Promise<{ lock: Lock; waited: boolean }> {
  const file = `${target}.lock`;
  const what = `the image cache entry ${target}`;
  const signal = opts.signal ? { signal: opts.signal } : {};
  try {
    return { lock: await acquireLock(file, what, signal), waited: false };
  } catch (err) {
    if (!(err instanceof LockedError)) throw err;
    opts.onEvent({
      kind: 'log',
      level: 'info',
      message: `waiting for ${err.holder ? describeHolder(err.holder) : 'another lab process'}, which is preparing the image of ${name}`,
    });
  }
  const timeoutMs = opts.lockTimeoutMs ?? 3 * 3600_000;
  try {
    return { lock: await acquireLock(file, what, { timeoutMs, ...signal }), waited: true };
  } catch (err) {
    if (!(err instanceof LockedError)) throw err;
    throw new HostError(
      `${err.holder ? describeHolder(err.holder) : 'another lab process'} is still preparing the image of ${name} in ${path.dirname(target)} after ${Math.round(timeoutMs / 60_000)} min`,
      { cause: err, hint: 'wait for it to finish, then run again' },
    );
  }
}

async function prepareImage(template: Template, target: string, opts: DownloadOptions): Promise<void> {
  const img = template.image;
  if ('build' in img) return;
  const where = path.dirname(target);
  const source = img.url ?? path.resolve(img.path!);
  const s = staging(target, source);
  await mkdir(s.dir, { recursive: true, mode: 0o700 });
  const signal = opts.signal ? { signal: opts.signal } : {};
  try {
    if (img.url) await fetchResumable(img.url, s, template.name, opts);
    else {
      // A copy first, then every check on the copy: the original may change meanwhile.
      // cp keeps the mode of a file it overwrites: 0600, never the source's exec bits.
      await (await open(s.partial, 'w', 0o600)).close();
      await run('cp', ['--reflink=auto', '--', source, s.partial], { timeoutMs: 30 * 60_000, ...signal });
    }
    // The .sig signs the published (still compressed) bytes: check them before unpacking.
    if (img.signatureUrl) await checkSignature(template, s, opts);
    const [algo, want] = (await expectedDigest(template, opts)).split(':') as [string, string];
    const got = await fileDigest(s.partial, algo);
    if (got !== want)
      throw new ImageRefusedError(
        `image of ${template.name} failed verification: ${algo} ${got} != expected ${want}`,
        { hint: img.url ? 'the download was deleted; run lab up again to fetch it anew' : undefined },
      );
    await rm(s.unpacked, { force: true });
    const unpacker = { gz: ['gzip', '-dc'], bz2: ['bzip2', '-dc'], xz: ['xz', '-dc'], none: undefined }[
      img.compression
    ];
    if (unpacker) {
      opts.onEvent({
        kind: 'log',
        level: 'info',
        message: `unpacking ${template.name} image (${img.compression})`,
      });
      await unpack(unpacker, s.partial, s.unpacked, opts.signal);
    } else {
      await rm(s.meta, { force: true }); // verified whole: nothing left to resume
      await rename(s.partial, s.unpacked);
    }
    await checkBaseImage(s.unpacked, img.format, `the image of ${template.name}`, opts.signal);
    // Read-only before it has its name: nothing ever writes a base image (overlays do).
    await chmod(s.unpacked, 0o444);
    await syncPath(s.unpacked);
    await rename(s.unpacked, target);
    await syncPath(where);
    await rm(s.partial, { force: true });
    await rm(s.meta, { force: true });
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

/** fsync of a file or a folder (for a rename to last). */
async function syncPath(p: string): Promise<void> {
  const fh = await open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** gzip/bzip2/xz -dc into a new 0600 file; the tool's exit code counts. */
async function unpack(tool: string[], src: string, out: string, signal?: AbortSignal): Promise<void> {
  const child = trackChild(
    execa(tool[0]!, [...tool.slice(1), src], {
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'pipe',
      buffer: { stdout: false, stderr: true },
      reject: false,
      env: { LC_ALL: 'C' },
      ...(signal ? { cancelSignal: signal } : {}),
    }),
  );
  try {
    await pipeline(child.stdout, createWriteStream(out, { flags: 'wx', mode: 0o600 }));
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

/** Why a download must not follow a redirect from `from` to `to`, or undefined. Pure. */
export function redirectRefusal(from: URL, to: URL): string | undefined {
  if (to.protocol !== 'https:' && to.protocol !== 'http:') return `${to.protocol} is not HTTP`;
  if (from.protocol === 'https:' && to.protocol !== 'https:') return 'it leaves HTTPS';
  return undefined;
}

/** GET with redirects followed by hand: at most 5, and never from https to anything else. */
async function httpGet(
  url: string,
  headers: Record<string, string>,
  signal?: AbortSignal,
): Promise<Response> {
  let current = new URL(url);
  for (let hop = 0; hop <= 5; hop++) {
    const res = await fetch(current, { headers, redirect: 'manual', ...(signal ? { signal } : {}) });
    if (![301, 302, 303, 307, 308].includes(res.status)) return res;
    await res.body?.cancel();
    const location = res.headers.get('location');
    if (!location) throw new HostError(`${current.href} answered HTTP ${res.status} without a Location`);
    const next = new URL(location, current);
    const refusal = redirectRefusal(current, next);
    if (refusal)
      throw new HostError(`refusing the redirect from ${current.href} to ${next.href}: ${refusal}`);
    current = next;
  }
  throw new HostError(`${url}: more than 5 redirects`);
}

/**
 * A small file (a signature, a checksum list): its bytes, or the HTTP status it failed
 * with. Two minutes at most: a stalled server does not hang lab up.
 */
async function fetchSmall(
  url: string,
  maxBytes: number,
  signal?: AbortSignal,
  timeoutMs = 120_000,
): Promise<{ status: number; bytes?: Buffer }> {
  const limit = AbortSignal.timeout(timeoutMs);
  const both = signal ? AbortSignal.any([signal, limit]) : limit;
  try {
    const res = await httpGet(url, {}, both);
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      return { status: res.status };
    }
    const chunks: Buffer[] = [];
    let size = 0;
    // Leaving the loop (the throw) cancels the body.
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > maxBytes)
        throw new HostError(`${url} is larger than ${maxBytes} bytes: not what lab expected there`);
      chunks.push(Buffer.from(chunk));
    }
    return { status: res.status, bytes: Buffer.concat(chunks) };
  } catch (err) {
    if (err instanceof LabError || signal?.aborted) throw err;
    const why = limit.aborted
      ? `no answer within ${timeoutMs / 1000} s`
      : err instanceof Error
        ? err.message
        : String(err);
    throw new HostError(`cannot fetch ${url}: ${why}`, { cause: err });
  }
}

/** The template's `algo:hex` digest, or the one its digestUrl lists for the file. */
async function expectedDigest(template: Template, opts: DownloadOptions): Promise<string> {
  const img = template.image;
  if ('build' in img) throw new LabError(`template ${template.name} builds its image`);
  if (img.digest) return img.digest;
  if (!img.digestUrl)
    throw new LabError(
      `template ${template.name} names no digest for its image: refusing to use an unverified image`,
    );
  const r = await fetchSmall(img.digestUrl, 1024 * 1024, opts.signal);
  if (!r.bytes) throw new HostError(`cannot fetch ${img.digestUrl}: HTTP ${r.status}`);
  const name = path.basename(new URL(img.url ?? img.digestUrl).pathname);
  const digest = pickDigest(r.bytes.toString('utf8'), name);
  if (!digest) throw new HostError(`${img.digestUrl} lists no sha256 or sha512 digest for ${name}`);
  return digest;
}

/**
 * Fetches image.signatureUrl into the quarantine and checks it with gpgv against the
 * template's pinned key (no keyserver: the key is a file in the repository). A refused
 * signature is an ImageRefusedError: the download is deleted, never cached.
 */
async function checkSignature(template: Template, s: Staging, opts: DownloadOptions): Promise<void> {
  const img = template.image;
  if ('build' in img || !img.signatureUrl) return;
  if (!img.signingKey)
    throw new LabError(`template ${template.name} has image.signatureUrl but no image.signingKey`);
  const key = (opts.trustedKey ?? trustedKey)(img.signingKey);
  // A detached signature is a few hundred bytes; anything large is not one.
  const r = await fetchSmall(img.signatureUrl, 64 * 1024, opts.signal);
  if (!r.bytes)
    throw new HostError(
      `cannot fetch the signature of ${template.name}'s image from ${img.signatureUrl}: HTTP ${r.status}`,
      {
        hint: 'the image is not used unsigned; check image.signatureUrl, or run lab up again later (the download is kept)',
      },
    );
  await writeFile(s.sig, r.bytes, { mode: 0o600 });
  opts.onEvent({
    kind: 'log',
    level: 'info',
    message: `checking the OpenPGP signature of ${template.name}'s image (key ${key.fingerprint})`,
  });
  try {
    await verifyDetachedSignature(s.partial, s.sig, key.file, {
      fingerprint: key.fingerprint,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (err) {
    if (!(err instanceof SignatureError)) throw err;
    throw new ImageRefusedError(`image of ${template.name} failed signature verification: ${err.message}`, {
      cause: err,
      hint: `${img.url ? 'the download was deleted. ' : ''}${err.hint ?? ''}`.trim(),
    });
  }
}

/** Tries the download up to opts.attempts times, each resuming where the last one stopped. */
async function fetchResumable(url: string, s: Staging, name: string, opts: DownloadOptions): Promise<void> {
  const attempts = Math.max(1, opts.attempts ?? 4);
  for (let attempt = 1; ; attempt++) {
    try {
      await fetchOnce(url, s, name, opts);
      return;
    } catch (err) {
      if (!(err instanceof CutError) || attempt >= attempts || opts.signal?.aborted) throw err;
      const delay = (opts.retryDelayMs ?? 2000) * 2 ** (attempt - 1);
      opts.onEvent({
        kind: 'log',
        level: 'warn',
        message: `download of ${name}: ${err.message}; trying again in ${delay / 1000} s (${attempt + 1} of ${attempts})`,
      });
      await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : {});
    }
  }
}

async function readMeta(file: string): Promise<PartialMeta | undefined> {
  try {
    const m = JSON.parse(await readFile(file, 'utf8')) as Partial<PartialMeta>;
    return typeof m.url === 'string' ? (m as PartialMeta) : undefined;
  } catch {
    return undefined;
  }
}

/** `bytes 100-199/1000`, `bytes 100-199/*`, `bytes *\/1000` (RFC 9110 14.4). Pure. */
export function parseContentRange(
  value: string | null,
): { start?: number; end?: number; total?: number } | undefined {
  const m = /^bytes (?:(\d+)-(\d+)|\*)\/(\d+|\*)$/.exec(value?.trim() ?? '');
  if (!m) return undefined;
  return {
    ...(m[1] !== undefined ? { start: Number(m[1]), end: Number(m[2]) } : {}),
    ...(m[3] !== '*' ? { total: Number(m[3]) } : {}),
  };
}

/** Fails before writing when the file system cannot hold what the server announced. */
async function ensureRoom(dir: string, bytes: number | undefined): Promise<void> {
  if (bytes === undefined || bytes <= 0) return;
  const fs = await statfs(dir).catch(() => undefined);
  if (!fs) return;
  const free = fs.bavail * fs.bsize;
  if (bytes > free)
    throw Object.assign(new Error(`${bytes} bytes to come, ${free} bytes free`), { code: 'ENOSPC' });
}

/**
 * One GET into the partial file. With a partial and its validators: `Range: bytes=<n>-`
 * and `If-Range` (a strong ETag, else Last-Modified); a 206 must start at n and, where the
 * size was known, still be of that size. A 200 (the server ignores Range, or the file
 * changed) starts from zero: the partial is truncated, never appended to.
 */
async function fetchOnce(url: string, s: Staging, name: string, opts: DownloadOptions): Promise<void> {
  const meta = await readMeta(s.meta);
  const have = await stat(s.partial).then(
    (st) => st.size,
    () => 0,
  );
  const validator = meta?.etag ?? meta?.lastModified;
  const resumable = meta?.url === url && have > 0 && (validator !== undefined || meta.size !== undefined);
  const idleMs = opts.idleTimeoutMs ?? 60_000;
  const idle = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, idle.signal]) : idle.signal;
  let timer = setTimeout(() => idle.abort(), idleMs);
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(), idleMs);
  };
  try {
    const headers: Record<string, string> = { 'accept-encoding': 'identity' };
    if (resumable) {
      headers.range = `bytes=${have}-`;
      if (validator !== undefined) headers['if-range'] = validator;
    }
    let res: Response;
    try {
      res = await httpGet(url, headers, signal);
    } catch (err) {
      if (err instanceof LabError || opts.signal?.aborted) throw err;
      throw new CutError(`cannot reach ${url}: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    }
    touch();
    let offset = 0;
    let size: number | undefined;
    let fresh: PartialMeta | undefined;
    if (resumable && res.status === 416) {
      await res.body?.cancel();
      const total = parseContentRange(res.headers.get('content-range'))?.total;
      if (total === have && (meta.size === undefined || meta.size === have)) return; // it was whole
      await truncate(s.partial, 0);
      throw new CutError(`the server cannot resume at byte ${have}; starting over`);
    } else if (resumable && res.status === 206) {
      const range = parseContentRange(res.headers.get('content-range'));
      const total = range?.total ?? meta.size;
      const sameFile =
        meta.size !== undefined && total !== undefined ? total === meta.size : validator !== undefined;
      if (range?.start !== have || !sameFile) {
        await res.body?.cancel();
        await truncate(s.partial, 0);
        throw new CutError(
          `the server answered ${res.headers.get('content-range') ?? 'no Content-Range'} to bytes=${have}-; starting over`,
        );
      }
      offset = have;
      size = total;
      opts.onEvent({
        kind: 'log',
        level: 'info',
        message: `resuming the download of ${name} at byte ${have}${size ? ` of ${size}` : ''}`,
      });
    } else if (res.status === 200) {
      if (have > 0)
        opts.onEvent({
          kind: 'log',
          level: 'info',
          message: `downloading ${name} from the start: ${resumable ? 'the server ignored the range (or the file changed)' : 'the partial download cannot be resumed safely'}`,
        });
      const length = res.headers.get('content-length');
      size = length !== null && /^\d+$/.test(length) ? Number(length) : undefined;
      const etag = res.headers.get('etag');
      const lastModified = res.headers.get('last-modified');
      fresh = {
        url,
        ...(etag && !etag.startsWith('W/') ? { etag } : {}), // If-Range takes strong ETags only
        ...(lastModified ? { lastModified } : {}),
        ...(size !== undefined ? { size } : {}),
      };
    } else {
      await res.body?.cancel();
      const why = `cannot download ${url}: HTTP ${res.status}`;
      if (res.status >= 500 || res.status === 408 || res.status === 429) throw new CutError(why);
      throw new HostError(why);
    }
    if (!res.body) throw new CutError(`${url} answered without a body`);
    try {
      await ensureRoom(s.dir, size === undefined ? undefined : size - offset - (fresh ? have : 0));
    } catch (err) {
      await res.body.cancel().catch(() => undefined);
      throw err;
    }
    if (fresh) await rm(s.meta, { force: true }); // no stale validators over new bytes
    const fh = await open(s.partial, fresh ? 'w' : 'a', 0o600);
    let done = offset;
    try {
      // The validators are on disk before the first byte: a partial is always resumable.
      if (fresh) await writeFile(s.meta, JSON.stringify(fresh), { mode: 0o600 });
      let flushed = false;
      try {
        for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
          await fh.write(chunk);
          done += chunk.length;
          touch();
          if (!flushed) {
            await fh.datasync();
            flushed = true;
            failpoint('mid-download');
          }
          opts.onEvent({
            kind: 'progress',
            step: `download ${name}`,
            done,
            ...(size ? { total: size } : {}),
            unit: 'bytes',
          });
        }
      } catch (err) {
        if (isNoSpace(err) || opts.signal?.aborted) throw err;
        throw new CutError(
          `the transfer broke at byte ${done}${size ? ` of ${size}` : ''}${idle.signal.aborted ? ` (nothing came for ${idleMs / 1000} s)` : ''}`,
          { cause: err, hint: 'run lab up again: it resumes' },
        );
      }
    } finally {
      await fh.close();
    }
    if (size !== undefined && done !== size)
      throw new CutError(`download of ${url} was cut at ${done} of ${size} bytes`, {
        hint: 'run lab up again: it resumes',
      });
  } finally {
    clearTimeout(timer);
  }
}

export async function readManifest(dir: string): Promise<unknown> {
  return JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8'));
}

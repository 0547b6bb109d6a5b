import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { HostError, LabError } from '../errors.js';
import type { EventSink } from '../events.js';
import type { Template } from '../templates/schema.js';
import { templatesDir } from '../templates/load.js';
import { cacheRoot } from '../state.js';
import { run } from './exec.js';
import { SignatureError, trustedKey, verifyDetachedSignature, type TrustedKey } from './signature.js';

/** How a download finds the key its template names; tests hand in throwaway keys. */
export interface DownloadOptions {
  onEvent: EventSink;
  signal?: AbortSignal;
  /** image.signingKey -> key file and pinned fingerprint (default: vm-templates/keys/). */
  trustedKey?: (name: string) => TrustedKey;
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
  const child = execa('bash', [script, out], {
    reject: false,
    all: true,
    ...(opts.signal ? { cancelSignal: opts.signal } : {}),
    stdin: 'ignore',
    timeout: 40 * 60_000,
  });
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

/**
 * Downloads with resume (HTTP Range) into `<target>.download`, verifies its OpenPGP
 * signature (when the template names one) and its digest before anything uses the file,
 * unpacks gz/bz2/xz, then renames into place. A bad signature or digest deletes the download.
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
  await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
  let source: string;
  if (img.path) source = img.path;
  else if (img.url) {
    source = `${target}.download`;
    await fetchResumable(img.url, source, template.name, opts);
  } else throw new LabError(`template ${template.name} has neither image.url nor image.path`);
  // The .sig signs the published (still compressed) bytes: check them before unpacking.
  if (img.signatureUrl) await checkSignature(template, source, target, opts);
  let digest = img.digest;
  if (!digest && img.digestUrl) {
    const res = await fetch(img.digestUrl, opts.signal ? { signal: opts.signal } : {});
    if (!res.ok) throw new HostError(`cannot fetch ${img.digestUrl}: HTTP ${res.status}`);
    const name = path.basename(new URL(img.url ?? img.digestUrl).pathname);
    digest = pickDigest(await res.text(), name);
    if (!digest) throw new HostError(`${img.digestUrl} lists no sha256 or sha512 digest for ${name}`);
  }
  if (!digest)
    throw new LabError(
      `template ${template.name} names no digest for its image: refusing to use an unverified image`,
    );
  const [algo, want] = digest.split(':') as [string, string];
  const got = await fileDigest(source, algo);
  if (got !== want) {
    if (img.url) await rm(source, { force: true });
    throw new HostError(`image of ${template.name} failed verification: ${algo} ${got} != expected ${want}`, {
      hint: img.url ? 'the download was deleted; run lab up again to fetch it anew' : undefined,
    });
  }
  const tmp = `${target}.partial`;
  const unpack = { gz: ['gzip', '-dc'], bz2: ['bzip2', '-dc'], xz: ['xz', '-dc'], none: undefined }[
    img.compression
  ];
  if (unpack) {
    opts.onEvent({
      kind: 'log',
      level: 'info',
      message: `unpacking ${template.name} image (${img.compression})`,
    });
    await pipeline(
      execa(unpack[0]!, [...unpack.slice(1), source], { stdout: 'pipe', buffer: false }).stdout,
      createWriteStream(tmp),
    );
  } else if (img.url) await rename(source, tmp);
  else await run('cp', ['--reflink=auto', source, tmp], { timeoutMs: 30 * 60_000 });
  await rename(tmp, target);
  if (img.url) await rm(source, { force: true });
}

/**
 * Fetches image.signatureUrl beside the download and checks it with gpgv against the
 * template's pinned key. A refused signature deletes the download (it is never cached).
 */
async function checkSignature(
  template: Template,
  source: string,
  target: string,
  opts: DownloadOptions,
): Promise<void> {
  const img = template.image;
  if ('build' in img || !img.signatureUrl) return;
  if (!img.signingKey)
    throw new LabError(`template ${template.name} has image.signatureUrl but no image.signingKey`);
  const key = (opts.trustedKey ?? trustedKey)(img.signingKey);
  const res = await fetch(img.signatureUrl, opts.signal ? { signal: opts.signal } : {});
  if (!res.ok)
    throw new HostError(
      `cannot fetch the signature of ${template.name}'s image from ${img.signatureUrl}: HTTP ${res.status}`,
      {
        hint: 'the image is not used unsigned; check image.signatureUrl, or run lab up again later (the download is kept)',
      },
    );
  const bytes = Buffer.from(await res.arrayBuffer());
  // A detached signature is a few hundred bytes; anything large is not one.
  if (bytes.length > 64 * 1024)
    throw new HostError(`${img.signatureUrl} is ${bytes.length} bytes: not a detached signature`);
  const sig = `${target}.download.sig`;
  await writeFile(sig, bytes);
  opts.onEvent({
    kind: 'log',
    level: 'info',
    message: `checking the OpenPGP signature of ${template.name}'s image (key ${key.fingerprint})`,
  });
  try {
    await verifyDetachedSignature(source, sig, key.file, {
      fingerprint: key.fingerprint,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (err) {
    if (!(err instanceof SignatureError)) throw err;
    if (img.url) await rm(source, { force: true });
    throw new HostError(`image of ${template.name} failed signature verification: ${err.message}`, {
      cause: err,
      hint: `${img.url ? 'the download was deleted. ' : ''}${err.hint ?? ''}`.trim(),
    });
  } finally {
    await rm(sig, { force: true });
  }
}

async function fetchResumable(
  url: string,
  file: string,
  name: string,
  opts: { onEvent: EventSink; signal?: AbortSignal },
): Promise<void> {
  const have = await stat(file).then(
    (s) => s.size,
    () => 0,
  );
  const res = await fetch(url, {
    headers: have > 0 ? { range: `bytes=${have}-` } : {},
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  if (res.status === 416) return; // already complete
  if (!res.ok || !res.body) throw new HostError(`cannot download ${url}: HTTP ${res.status}`);
  const resumed = res.status === 206;
  const total = Number(res.headers.get('content-length') ?? 0) + (resumed ? have : 0);
  let done = resumed ? have : 0;
  const body = Readable.fromWeb(res.body);
  body.on('data', (chunk: Buffer) => {
    done += chunk.length;
    opts.onEvent({
      kind: 'progress',
      step: `download ${name}`,
      done,
      ...(total ? { total } : {}),
      unit: 'bytes',
    });
  });
  await pipeline(body, createWriteStream(file, { flags: resumed ? 'a' : 'w' }));
  if (total && done !== total)
    throw new HostError(`download of ${url} was cut at ${done} of ${total} bytes`, {
      hint: 'run lab up again: it resumes',
    });
}

export async function readManifest(dir: string): Promise<unknown> {
  return JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8'));
}

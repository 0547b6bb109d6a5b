import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, rm, stat, readFile } from 'node:fs/promises';
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
export async function ensureImage(
  template: Template,
  opts: { onEvent: EventSink; signal?: AbortSignal },
): Promise<BaseImage> {
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

/** Reads the expected digest: pinned in the template, or from a DIGESTS/SHA256SUMS file. */
export function pickDigest(listing: string, fileName: string): string | undefined {
  // Flatcar DIGESTS: "# SHA512 HASH" then "<hex>  <file>"; sha256sum: "<hex>  <file>".
  for (const line of listing.split('\n')) {
    const m = /^([0-9a-f]{64}|[0-9a-f]{128})\s+\*?(\S+)$/.exec(line.trim());
    if (m && path.basename(m[2]!) === fileName) return `${m[1]!.length === 64 ? 'sha256' : 'sha512'}:${m[1]}`;
  }
  return undefined;
}

async function fileDigest(file: string, algo: string): Promise<string> {
  const h = createHash(algo);
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
}

/**
 * Downloads with resume (HTTP Range) into `<target>.download`, verifies the digest
 * before anything uses the file, unpacks gz/bz2/xz, then renames into place.
 * A bad digest deletes the download.
 */
export async function downloadImage(
  template: Template,
  target: string,
  opts: { onEvent: EventSink; signal?: AbortSignal },
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
  let digest = img.digest;
  if (!digest && img.digestUrl) {
    const res = await fetch(img.digestUrl, opts.signal ? { signal: opts.signal } : {});
    if (!res.ok) throw new HostError(`cannot fetch ${img.digestUrl}: HTTP ${res.status}`);
    digest = pickDigest(await res.text(), path.basename(new URL(img.url ?? img.digestUrl).pathname));
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

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { HostError, LabError } from '../../errors.js';
import type { Template } from '../../templates/schema.js';
import { ImageRefusedError } from '../qemu-img.js';
import { SignatureError, trustedKey, verifyDetachedSignature } from '../signature.js';
import { fetchSmall } from './http.js';
import type { DownloadOptions } from './options.js';
import type { Staging } from './quarantine.js';

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

/** Checks the published bytes (s.partial) against the expected digest: a mismatch is an ImageRefusedError. */
export async function checkDigest(template: Template, s: Staging, opts: DownloadOptions): Promise<void> {
  const [algo, want] = (await expectedDigest(template, opts)).split(':') as [string, string];
  const got = await fileDigest(s.partial, algo);
  const img = template.image;
  if (got !== want)
    throw new ImageRefusedError(
      `image of ${template.name} failed verification: ${algo} ${got} != expected ${want}`,
      {
        hint:
          !('build' in img) && img.url
            ? 'the download was deleted; run lab up again to fetch it anew'
            : undefined,
      },
    );
}

/**
 * Fetches image.signatureUrl into the quarantine and checks it with gpgv against the
 * template's pinned key (no keyserver: the key is a file in the repository). A refused
 * signature is an ImageRefusedError: the download is deleted, never cached.
 */
export async function checkSignature(template: Template, s: Staging, opts: DownloadOptions): Promise<void> {
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

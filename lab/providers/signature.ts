// OpenPGP checks of downloaded images with gpgv: it only verifies (no key import, no trust
// database, no agent), which is all a download needs, and it is in Debian's `gpgv` package.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HostError, LabError } from '../errors.js';
import { templatesDir } from '../templates/load.js';
import { CommandError, run } from '../runtime/exec.js';

/**
 * Primary-key fingerprints of the keys in vm-templates/keys/ (their SOURCE says where each
 * comes from). A signature counts only when gpgv names this primary key.
 */
export const PINNED_FINGERPRINTS: Readonly<Record<string, string>> = {
  'flatcar-image-signing-key.asc': 'F88CFEDEFF29A5B4D9523864E25D9AED0593B34A',
};

/** A public key file and the primary-key fingerprint a signature must carry. */
export interface TrustedKey {
  file: string;
  fingerprint: string;
}

/** A signature that does not verify: the file must not be used. */
export class SignatureError extends HostError {}

/** The vendored key named by a template's image.signingKey, with its pinned fingerprint. */
export function trustedKey(name: string): TrustedKey {
  const fingerprint = PINNED_FINGERPRINTS[name];
  const file = path.join(templatesDir(), 'keys', name);
  if (!fingerprint || name.includes('/'))
    throw new LabError(`signing key ${name} has no pinned fingerprint`, {
      hint: 'add it to PINNED_FINGERPRINTS in lab/providers/signature.ts and to vm-templates/keys/SOURCE',
    });
  if (!existsSync(file)) throw new LabError(`signing key ${file} is missing`);
  return { file, fingerprint };
}

// RFC 4880 6.1: CRC-24 of the radix-64 payload.
function crc24(data: Buffer): number {
  let crc = 0xb704ce;
  for (const byte of data) {
    crc ^= byte << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
  }
  return crc & 0xffffff;
}

/**
 * ASCII-armored public key block(s) -> the binary keyring gpgv reads (as `gpg --dearmor`
 * writes it; gpgv takes no armored keys). Checks the armor checksum. Pure.
 */
export function dearmorPublicKey(text: string): Buffer {
  if (/-----BEGIN PGP (PRIVATE|SECRET) KEY BLOCK-----/.test(text))
    throw new LabError('the key file holds a secret key: only a public key belongs there');
  const blocks = [
    ...text.matchAll(/-----BEGIN PGP PUBLIC KEY BLOCK-----\r?\n([^]*?)-----END PGP PUBLIC KEY BLOCK-----/g),
  ];
  if (blocks.length === 0) throw new LabError('no ASCII-armored OpenPGP public key block found');
  return Buffer.concat(
    blocks.map((b) => {
      const lines = b[1]!.split(/\r?\n/).map((l) => l.trim());
      // Armor headers ("Comment: …") end at the first empty line; the payload follows.
      const start = lines.indexOf('');
      if (start < 0) throw new LabError('malformed armor: no empty line before the key data');
      const body = lines.slice(start + 1).filter((l) => l !== '');
      const sum = body.at(-1)?.startsWith('=') ? body.pop()!.slice(1) : undefined;
      const b64 = body.join('');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new LabError('malformed armor: not base64');
      const data = Buffer.from(b64, 'base64');
      if (data.length === 0) throw new LabError('malformed armor: empty key block');
      if (sum !== undefined && Buffer.from(sum, 'base64').readUIntBE(0, 3) !== crc24(data))
        throw new LabError('armor checksum mismatch: the key file is damaged');
      return data;
    }),
  );
}

/** What gpgv's status lines (`--status-fd`) say about the signatures in one .sig file. */
export interface GpgvStatus {
  signatures: number;
  good: string[]; // key ids of GOODSIG
  bad: string[]; // BADSIG
  expiredKey: string[]; // EXPKEYSIG
  revokedKey: string[]; // REVKEYSIG
  expiredSig: string[]; // EXPSIG
  noPubkey: string[]; // ERRSIG rc 9: made by a key not in the keyring
  unusable: string[]; // other ERRSIG: an algorithm gpgv cannot check, a damaged signature
  valid: { fingerprint: string; primary: string; hashAlgo: number }[];
}

/** Parses `[GNUPG:] KEYWORD args` lines (doc/DETAILS in GnuPG). Pure. */
export function parseGpgvStatus(stdout: string): GpgvStatus {
  const s: GpgvStatus = {
    signatures: 0,
    good: [],
    bad: [],
    expiredKey: [],
    revokedKey: [],
    expiredSig: [],
    noPubkey: [],
    unusable: [],
    valid: [],
  };
  for (const line of stdout.split('\n')) {
    const [tag, kw, ...args] = line.trim().split(' ');
    if (tag !== '[GNUPG:]' || !kw) continue;
    const id = args[0] ?? '?';
    if (kw === 'NEWSIG') s.signatures++;
    else if (kw === 'GOODSIG') s.good.push(id);
    else if (kw === 'BADSIG') s.bad.push(id);
    else if (kw === 'EXPKEYSIG') s.expiredKey.push(id);
    else if (kw === 'REVKEYSIG') s.revokedKey.push(id);
    else if (kw === 'EXPSIG') s.expiredSig.push(id);
    // ERRSIG keyid pk-algo hash-algo class time rc [fpr]
    else if (kw === 'ERRSIG') (args[5] === '9' ? s.noPubkey : s.unusable).push(id);
    // VALIDSIG fpr date ts expire version reserved pk-algo hash-algo class primary-fpr
    else if (kw === 'VALIDSIG' && args.length >= 10)
      s.valid.push({ fingerprint: args[0]!, primary: args.at(-1)!, hashAlgo: Number(args[7]) });
  }
  return s;
}

// RFC 4880 9.4: MD5, SHA-1 and RIPEMD-160 are too weak to trust a download to.
const WEAK_HASHES = new Set([1, 2, 3]);

/**
 * Accepts only when every signature is GOODSIG, none is by an expired or revoked key,
 * and a VALIDSIG names the expected primary key. Returns why not, or undefined. Pure.
 */
export function judgeGpgvStatus(
  s: GpgvStatus,
  exitCode: number,
  fingerprint: string,
): { reason: string; hint: string } | undefined {
  const want = fingerprint.toUpperCase();
  const update = 'the key in vm-templates/keys/ may need refreshing from the source its SOURCE file names';
  if (s.bad.length)
    return {
      reason: `BAD signature by key ${s.bad.join(', ')}: the file is not what was signed (corrupted or altered)`,
      hint: 'fetch it again; if it keeps failing, the mirror serves something else than what was signed',
    };
  if (s.expiredKey.length)
    return { reason: `signed by the expired key ${s.expiredKey.join(', ')}`, hint: update };
  if (s.revokedKey.length)
    return { reason: `signed by the revoked key ${s.revokedKey.join(', ')}`, hint: update };
  if (s.expiredSig.length) return { reason: 'the signature has expired', hint: update };
  if (s.noPubkey.length)
    return {
      reason: `signed by key ${s.noPubkey.join(', ')}, not by the trusted key ${want}`,
      hint: 'the signature was made by another key: the file is not from the expected publisher',
    };
  if (s.unusable.length)
    return {
      reason: `the signature by key ${s.unusable.join(', ')} cannot be checked (damaged, or an unsupported algorithm)`,
      hint: 'fetch it again; a newer gpgv may know the algorithm',
    };
  if (s.signatures === 0) return { reason: 'no OpenPGP signature in the signature file', hint: update };
  const other = s.valid.find((v) => v.primary.toUpperCase() !== want);
  if (other)
    return {
      reason: `signed by primary key ${other.primary}, expected ${want}`,
      hint: 'the key file and the pinned fingerprint disagree, or the file has another publisher',
    };
  const weak = s.valid.find((v) => WEAK_HASHES.has(v.hashAlgo));
  if (weak)
    return { reason: `signed with a weak hash (OpenPGP hash algorithm ${weak.hashAlgo})`, hint: update };
  if (exitCode !== 0 || s.good.length !== s.signatures || s.valid.length !== s.signatures)
    return { reason: `gpgv did not report a good signature (exit ${exitCode})`, hint: update };
  return undefined;
}

/**
 * Verifies a detached signature over `file` with gpgv against one armored public key and
 * its pinned primary fingerprint. Throws SignatureError when the file must not be used,
 * HostError when gpgv is missing. The throwaway keyring is always removed.
 */
export async function verifyDetachedSignature(
  file: string,
  sigFile: string,
  keyFile: string,
  opts: { fingerprint: string; signal?: AbortSignal; timeoutMs?: number },
): Promise<{ fingerprint: string }> {
  const keyring = dearmorPublicKey(await readFile(keyFile, 'utf8'));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lab-gpgv-'));
  try {
    const ring = path.join(dir, 'keyring.gpg');
    await writeFile(ring, keyring, { mode: 0o600 });
    let r;
    try {
      // --homedir: gpgv reads nothing of ~/.gnupg (its trustedkeys.kbx would add keys).
      r = await run(
        'gpgv',
        [
          '--homedir',
          dir,
          '--status-fd',
          '1',
          '--keyring',
          ring,
          '--',
          path.resolve(sigFile),
          path.resolve(file),
        ],
        {
          okExitCodes: [1, 2],
          timeoutMs: opts.timeoutMs ?? 15 * 60_000, // hashes a whole image
          ...(opts.signal ? { signal: opts.signal } : {}),
        },
      );
    } catch (err) {
      if (err instanceof CommandError && err.exitCode_ === undefined && err.message.endsWith(': not found'))
        throw new HostError('gpgv is not installed: lab needs it to check the OpenPGP signature of images', {
          cause: err,
          hint: 'apt-get install gpgv (scripts/install-host-deps.sh installs it)',
        });
      throw err;
    }
    const refusal = judgeGpgvStatus(parseGpgvStatus(r.stdout), r.exitCode, opts.fingerprint);
    if (refusal) throw new SignatureError(refusal.reason, { hint: refusal.hint });
    return { fingerprint: opts.fingerprint.toUpperCase() };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

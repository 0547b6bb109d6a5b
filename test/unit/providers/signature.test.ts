// gpgv checks against throwaway keys (good, other key, corrupted file, expired key), the
// pure status parser, the armor decoder, and the vendored Flatcar key.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostError } from '../../../lab/errors.js';
import { run } from '../../../lab/runtime/exec.js';
import {
  PINNED_FINGERPRINTS,
  SignatureError,
  dearmorPublicKey,
  judgeGpgvStatus,
  parseGpgvStatus,
  trustedKey,
  verifyDetachedSignature,
} from '../../../lab/providers/signature.js';
import { templatesDir } from '../../../lab/templates/load.js';
import { gpgWorkspace, requireGpg, type TestKey } from './gpg-fixture.js';

const FLATCAR = 'F88CFEDEFF29A5B4D9523864E25D9AED0593B34A';
const flatcarKeyFile = () => path.join(templatesDir(), 'keys', 'flatcar-image-signing-key.asc');

let ws: ReturnType<typeof gpgWorkspace>;
let alice: TestKey;
let mallory: TestKey;
let old: TestKey;
const file = () => path.join(ws.dir, 'payload.bin');
const keyFile = (k: TestKey) => {
  const f = path.join(ws.dir, `${k.fingerprint}.asc`);
  writeFileSync(f, k.publicKey);
  return f;
};

describe('with gpg and gpgv (Debian: gnupg, gpgv)', () => {
  beforeAll(async () => {
    await requireGpg();
    ws = gpgWorkspace();
    alice = await ws.makeKey('Alice <alice@example.invalid>');
    mallory = await ws.makeKey('Mallory <mallory@example.invalid>');
    // Made, and signing, in 2020 with a two-day expiry: expired now.
    old = await ws.makeKey('Old <old@example.invalid>', { fakedTime: '20200101T000000', expire: '2d' });
    writeFileSync(file(), Buffer.from('a small image\n'.repeat(1000)));
  }, 120_000);
  afterAll(async () => ws?.cleanup());

  describe('verifyDetachedSignature (gpgv)', () => {
    it('accepts a good signature by the pinned key', async () => {
      const sig = path.join(ws.dir, 'good.sig');
      await alice.sign(file(), sig);
      await expect(
        verifyDetachedSignature(file(), sig, keyFile(alice), { fingerprint: alice.fingerprint }),
      ).resolves.toEqual({ fingerprint: alice.fingerprint });
    });

    it('refuses a signature by a key other than the trusted one', async () => {
      const sig = path.join(ws.dir, 'mallory.sig');
      await mallory.sign(file(), sig);
      const p = verifyDetachedSignature(file(), sig, keyFile(alice), { fingerprint: alice.fingerprint });
      await expect(p).rejects.toBeInstanceOf(SignatureError);
      await expect(p).rejects.toThrow(/not by the trusted key/);
    });

    it('refuses a good signature whose primary key is not the pinned fingerprint', async () => {
      const sig = path.join(ws.dir, 'mallory2.sig');
      await mallory.sign(file(), sig);
      // The key file was swapped for Mallory's, but the pin still says Alice.
      await expect(
        verifyDetachedSignature(file(), sig, keyFile(mallory), { fingerprint: alice.fingerprint }),
      ).rejects.toThrow(
        new RegExp(`signed by primary key ${mallory.fingerprint}, expected ${alice.fingerprint}`),
      );
    });

    it('refuses a corrupted file', async () => {
      const sig = path.join(ws.dir, 'corrupt.sig');
      await alice.sign(file(), sig);
      const bad = path.join(ws.dir, 'corrupt.bin');
      const bytes = readFileSync(file());
      bytes[100]! ^= 1;
      writeFileSync(bad, bytes);
      await expect(
        verifyDetachedSignature(bad, sig, keyFile(alice), { fingerprint: alice.fingerprint }),
      ).rejects.toThrow(/BAD signature.*corrupted or altered/);
    });

    it('refuses a signature by an expired key, with a hint to refresh the key', async () => {
      const sig = path.join(ws.dir, 'old.sig');
      await old.sign(file(), sig);
      const err = await verifyDetachedSignature(file(), sig, keyFile(old), {
        fingerprint: old.fingerprint,
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SignatureError);
      expect((err as SignatureError).message).toMatch(/expired key/);
      expect((err as SignatureError).hint).toMatch(/vm-templates\/keys/);
    });

    it('removes its throwaway keyring folder, also after a refusal', async () => {
      const tmp = path.join(ws.dir, 'tmp');
      const before = process.env.TMPDIR;
      process.env.TMPDIR = tmp;
      try {
        await run('mkdir', ['-p', tmp]);
        const sig = path.join(ws.dir, 'cleanup.sig');
        await mallory.sign(file(), sig);
        await expect(
          verifyDetachedSignature(file(), sig, keyFile(alice), { fingerprint: alice.fingerprint }),
        ).rejects.toThrow(SignatureError);
        expect(os.tmpdir()).toBe(tmp);
        expect(readdirSync(tmp)).toEqual([]);
      } finally {
        if (before === undefined) delete process.env.TMPDIR;
        else process.env.TMPDIR = before;
      }
    });

    it('says to install gpgv when it is missing', async () => {
      const sig = path.join(ws.dir, 'nogpgv.sig');
      await alice.sign(file(), sig);
      const before = process.env.PATH;
      process.env.PATH = path.join(ws.dir, 'empty-path');
      try {
        const err = await verifyDetachedSignature(file(), sig, keyFile(alice), {
          fingerprint: alice.fingerprint,
        }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(HostError);
        expect(err).not.toBeInstanceOf(SignatureError); // not a verdict on the file
        expect((err as HostError).hint).toMatch(/apt-get install gpgv/);
      } finally {
        process.env.PATH = before;
      }
    });
  });

  describe('armored keys and the vendored Flatcar key', () => {
    it('dearmors exactly as gpg --dearmor does', async () => {
      const dearmored = path.join(ws.dir, 'flatcar.gpg');
      await run('gpg', [
        '--homedir',
        path.join(ws.dir, 'dearmor-home'),
        '--batch',
        '--yes',
        '--dearmor',
        '--output',
        dearmored,
        flatcarKeyFile(),
      ]);
      expect(dearmorPublicKey(readFileSync(flatcarKeyFile(), 'utf8')).equals(readFileSync(dearmored))).toBe(
        true,
      );
    });

    it(`imports, with primary fingerprint ${FLATCAR} as pinned and in keys/SOURCE`, async () => {
      const home = path.join(ws.dir, 'flatcar-home');
      await run('mkdir', ['-m', '700', '-p', home]);
      await run('gpg', ['--homedir', home, '--batch', '--import', flatcarKeyFile()]);
      const listing = (await run('gpg', ['--homedir', home, '--with-colons', '--list-keys'])).stdout.split(
        '\n',
      );
      const pub = listing.findIndex((l) => l.startsWith('pub:'));
      expect(listing[pub + 1]).toBe(`fpr:::::::::${FLATCAR}:`);
      expect(listing.find((l) => l.startsWith('uid:'))).toContain(
        'Flatcar Buildbot (Official Builds) <buildbot@flatcar-linux.org>',
      );
      // The signing subkey Flatcar uses since 2025 (valid to 2027-03-08) is there.
      expect(listing.some((l) => l.startsWith('sub:') && l.split(':')[4] === '32DA80F91EF52974')).toBe(true);
      expect(PINNED_FINGERPRINTS['flatcar-image-signing-key.asc']).toBe(FLATCAR);
      expect(readFileSync(path.join(templatesDir(), 'keys', 'SOURCE'), 'utf8')).toContain(
        `fingerprint: ${FLATCAR}`,
      );
      expect(trustedKey('flatcar-image-signing-key.asc')).toEqual({
        file: flatcarKeyFile(),
        fingerprint: FLATCAR,
      });
      await run('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']).catch(() => undefined);
    });
  });
});

describe('gpgv status judgement', () => {
  const A = 'F4DEDA58E6E06A2B4D384C2B970AA7D8A7BA9EB1';
  const validsig = (primary: string, hash = 8) =>
    `[GNUPG:] VALIDSIG ${A} 2026-12-02 1796234715 0 4 0 22 ${hash} 00 ${primary}`;
  it.each([
    ['good', ['[GNUPG:] NEWSIG', '[GNUPG:] GOODSIG 970AA7D8A7BA9EB1 A', validsig(A)], 0, undefined],
    ['lowercase pin', ['[GNUPG:] NEWSIG', '[GNUPG:] GOODSIG 970AA7D8A7BA9EB1 A', validsig(A)], 0, undefined],
    ['bad', ['[GNUPG:] NEWSIG', '[GNUPG:] BADSIG 970AA7D8A7BA9EB1 A'], 1, /BAD signature/],
    [
      'expired key (gpgv exits 0 for it)',
      ['[GNUPG:] NEWSIG', '[GNUPG:] KEYEXPIRED 1578009600', '[GNUPG:] EXPKEYSIG A3BD A', validsig(A)],
      0,
      /expired key A3BD/,
    ],
    ['revoked key', ['[GNUPG:] NEWSIG', '[GNUPG:] REVKEYSIG 970A A', validsig(A)], 0, /revoked/],
    [
      'no public key',
      ['[GNUPG:] NEWSIG', '[GNUPG:] ERRSIG 970A 22 8 00 1796234715 9 X', '[GNUPG:] NO_PUBKEY 970A'],
      2,
      /signed by key 970A, not by the trusted key/,
    ],
    ['unknown algorithm', ['[GNUPG:] NEWSIG', '[GNUPG:] ERRSIG 970A 99 8 00 1 4'], 2, /cannot be checked/],
    ['other primary', ['[GNUPG:] NEWSIG', '[GNUPG:] GOODSIG 1 A', validsig('B'.repeat(40))], 0, /expected/],
    ['sha1', ['[GNUPG:] NEWSIG', '[GNUPG:] GOODSIG 1 A', validsig(A, 2)], 0, /weak hash/],
    ['no signature', [], 2, /no OpenPGP signature/],
    [
      'one of two signatures not good',
      ['[GNUPG:] NEWSIG', '[GNUPG:] GOODSIG 1 A', validsig(A), '[GNUPG:] NEWSIG'],
      0,
      /did not report a good signature/,
    ],
  ])('%s', (name, lines, exitCode, want) => {
    const pin = name === 'lowercase pin' ? A.toLowerCase() : A;
    const verdict = judgeGpgvStatus(parseGpgvStatus(lines.join('\n')), exitCode, pin);
    if (want === undefined) expect(verdict).toBeUndefined();
    else expect(verdict?.reason).toMatch(want);
  });
});

describe('key files', () => {
  it('rejects a damaged armor checksum and secret keys', () => {
    const text = readFileSync(flatcarKeyFile(), 'utf8');
    expect(() => dearmorPublicKey(text.replace('=MRwu', '=MRwv'))).toThrow(/checksum/);
    expect(() => dearmorPublicKey('-----BEGIN PGP PRIVATE KEY BLOCK-----\n')).toThrow(/secret key/);
    expect(() => dearmorPublicKey('hello')).toThrow(/no ASCII-armored/);
  });

  it('knows no unpinned key', () => {
    expect(() => trustedKey('other.asc')).toThrow(/no pinned fingerprint/);
    expect(existsSync(path.join(templatesDir(), 'keys', 'other.asc'))).toBe(false);
  });
});

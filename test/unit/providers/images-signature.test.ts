// R16: signed image downloads from a loopback HTTP server, as Flatcar publishes them: the
// image, a detached binary <image>.sig and an <image>.DIGESTS (MD5/SHA1/SHA512 sections).
// Only a file signed by the pinned key, whose digest DIGESTS lists, reaches the cache;
// anything else is deleted. gpgv checks against the pinned key file: no keyserver.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabEvent } from '../../../lab/events.js';
import { observeCommands } from '../../../lab/runtime/exec.js';
import { downloadImage } from '../../../lab/providers/images.js';
import { trustedKey, type TrustedKey } from '../../../lab/providers/signature.js';
import { loadTemplate } from '../../../lab/templates/load.js';
import type { Template } from '../../../lab/templates/schema.js';
import { gpgWorkspace, requireGpg, type TestKey } from './gpg-fixture.js';
import { executables, listTree, startImageServer, type ImageServer } from './image-server.js';

const IMG = 'flatcar_production_qemu_image.img';
const payload = Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => i % 251));
const hex = (algo: string, b: Buffer) => createHash(algo).update(b).digest('hex');
const digests = (b: Buffer, name: string) =>
  ['md5', 'sha1', 'sha512'].map((a) => `# ${a.toUpperCase()} HASH\n${hex(a, b)}  ${name}\n`).join('');

let ws: ReturnType<typeof gpgWorkspace>;
let alice: TestKey;
let mallory: TestKey;
let aliceKey: TrustedKey;
let srv: ImageServer;

/**
 * Publishes `body` at /DIR/NAME with NAME.DIGESTS (of `listed`) and, signed by `signer`,
 * NAME.sig; the server hands out `served`.
 */
async function publish(
  dir: string,
  name: string,
  body: Buffer,
  signer?: TestKey,
  { served = body, listed = served }: { served?: Buffer; listed?: Buffer } = {},
) {
  const local = path.join(ws.dir, `${dir}-${name}`);
  writeFileSync(local, body);
  srv.files.set(`/${dir}/${name}`, { body: served });
  srv.files.set(`/${dir}/${name}.DIGESTS`, { body: Buffer.from(digests(listed, name)) });
  if (signer) {
    await signer.sign(local, `${local}.sig`);
    srv.files.set(`/${dir}/${name}.sig`, { body: readFileSync(`${local}.sig`) });
  }
  return `${srv.base}/${dir}/${name}`;
}

function template(url: string, image: Record<string, unknown> = {}): Template {
  return {
    name: 't',
    os: 'flatcar',
    arch: 'x86_64',
    image: {
      url,
      digestUrl: `${url}.DIGESTS`,
      signatureUrl: `${url}.sig`,
      signingKey: 'test.asc',
      format: 'raw',
      compression: 'none',
      ...image,
    },
    boot: { firmware: 'bios' },
    provisioning: { dialect: 'ignition', delivery: 'fwcfg' },
    ssh: { user: 'core' },
    nic: 'eth0',
    network: 'networkd',
    services: {},
    minMemoryMiB: 256,
  };
}

function cacheDir() {
  const dir = mkdtempSync(path.join(ws.dir, 'cache-'));
  return { dir, target: path.join(dir, 't', 'disk.raw') };
}

const opts = (events: LabEvent[] = []) => ({
  onEvent: (e: LabEvent) => events.push(e),
  trustedKey: (name: string) => {
    expect(name).toBe('test.asc');
    return aliceKey;
  },
});

/** The entry's folder holds nothing but its (empty) lock file. */
const expectNoEntry = (target: string) =>
  expect(listTree(path.dirname(target)).map((f) => f.path)).toEqual(['disk.raw.lock']);

beforeAll(async () => {
  await requireGpg();
  ws = gpgWorkspace();
  alice = await ws.makeKey('Alice Images <alice@example.invalid>');
  mallory = await ws.makeKey('Mallory <mallory@example.invalid>');
  const keyFile = path.join(ws.dir, 'test.asc');
  writeFileSync(keyFile, alice.publicKey);
  aliceKey = { file: keyFile, fingerprint: alice.fingerprint };
  srv = await startImageServer();
}, 120_000);
afterAll(async () => {
  await srv?.close();
  await ws?.cleanup();
});

describe('R16: signed image downloads fail closed', () => {
  it('accepts and caches an image signed by the pinned key (SHA512 from DIGESTS), with gpgv only', async () => {
    const url = await publish('good', IMG, payload, alice);
    const { dir, target } = cacheDir();
    const events: LabEvent[] = [];
    const before = srv.requests.length;
    const seen: string[][] = [];
    const stop = observeCommands((argv) => seen.push(argv));
    try {
      await downloadImage(template(url), target, opts(events));
    } finally {
      stop();
    }
    expect(readFileSync(target).equals(payload)).toBe(true);
    // No .partial, no .sig, no quarantine left; nothing executable anywhere.
    expect(readdirSync(path.dirname(target))).toEqual(['disk.raw', 'disk.raw.lock']);
    expect(executables(dir)).toEqual([]);
    // S14: the three URLs of the template and nothing else (no keyserver, no other host).
    expect(
      srv.requests
        .slice(before)
        .map((r) => r.url)
        .sort(),
    ).toEqual([`/good/${IMG}`, `/good/${IMG}.DIGESTS`, `/good/${IMG}.sig`]);
    // The check is gpgv against the pinned key file in a throwaway home: never gpg, which
    // could reach for a keyserver (dirmngr).
    const tools = seen.map((a) => a[0]);
    expect(tools).toContain('gpgv');
    expect(tools.filter((t) => /^(gpg|gpg2|dirmngr)$/.test(t!))).toEqual([]);
    const gpgv = seen.find((a) => a[0] === 'gpgv')!;
    expect(gpgv).toContain('--homedir');
    expect(gpgv).toContain('--keyring');
    expect(gpgv.join(' ')).not.toMatch(/keyserver|recv-key|auto-key/);
    expect(
      events.some(
        (e) =>
          e.kind === 'log' &&
          e.message.includes(`OpenPGP signature`) &&
          e.message.includes(alice.fingerprint),
      ),
    ).toBe(true);
  });

  it('refuses an image signed by another key and caches nothing', async () => {
    const url = await publish('mallory', IMG, payload, mallory);
    const { target } = cacheDir();
    const err = await downloadImage(template(url), target, opts()).then(
      () => undefined,
      (e: unknown) => e as Error & { hint?: string },
    );
    expect(err?.message).toMatch(
      /image of t failed signature verification: signed by key \S+, not by the trusted key/,
    );
    expect(err?.hint).toMatch(/the download was deleted/);
    expectNoEntry(target);
  });

  it('refuses a tampered image even when DIGESTS matches it, and deletes the download', async () => {
    const corrupted = Buffer.from(payload);
    corrupted[4096]! ^= 0xff;
    // Signed as published, served altered, with DIGESTS made for the altered bytes.
    const url = await publish('corrupt', IMG, payload, alice, { served: corrupted });
    const { target } = cacheDir();
    await expect(downloadImage(template(url), target, opts())).rejects.toThrow(
      /failed signature verification: BAD signature/,
    );
    expectNoEntry(target);
  });

  it('refuses a good image when DIGESTS was tampered with (it lists other bytes), and deletes it', async () => {
    const other = Buffer.from(payload);
    other[0]! ^= 0x01;
    const url = await publish('digests', IMG, payload, alice, { listed: other });
    const { target } = cacheDir();
    const err = await downloadImage(template(url), target, opts()).then(
      () => undefined,
      (e: unknown) => e as Error & { hint?: string },
    );
    expect(err?.message).toBe(
      `image of t failed verification: sha512 ${hex('sha512', payload)} != expected ${hex('sha512', other)}`,
    );
    expect(err?.hint).toMatch(/the download was deleted/);
    expectNoEntry(target);
  });

  it('a missing .sig: refused and nothing cached; once it is published the kept download is checked, not fetched again', async () => {
    const url = await publish('nosig', IMG, payload);
    const { target } = cacheDir();
    const err = await downloadImage(template(url), target, opts()).then(
      () => undefined,
      (e: unknown) => e as Error & { hint?: string },
    );
    expect(err?.message).toBe(`cannot fetch the signature of t's image from ${url}.sig: HTTP 404`);
    expect(err?.hint).toMatch(/not used unsigned/);
    // No cache entry; the unverified download stays in the quarantine (0600) for a later run.
    const files = listTree(path.dirname(target)).filter((f) => !f.dir);
    expect(files.map((f) => [f.path.replace(/[0-9a-f]{16}/, 'H'), f.mode])).toEqual([
      ['.quarantine/H.partial', 0o600],
      ['.quarantine/H.partial.json', 0o600],
      ['disk.raw.lock', 0o600],
    ]);
    await publish('nosig', IMG, payload, alice);
    await downloadImage(template(url), target, opts());
    expect(readFileSync(target).equals(payload)).toBe(true);
    // The second run asked for the bytes after the end: 416, nothing sent again.
    expect(srv.requestsFor(`/nosig/${IMG}`).map((r) => [r.range, r.status, r.sent])).toEqual([
      [undefined, 200, payload.length],
      [`bytes=${payload.length}-`, 416, 0],
    ]);
  });

  it('checks the signature over the compressed bytes, before unpacking', async () => {
    const url = await publish('gz', `${IMG}.gz`, gzipSync(payload), alice);
    const { target } = cacheDir();
    await downloadImage(template(url, { compression: 'gz' }), target, opts());
    expect(readFileSync(target).equals(payload)).toBe(true);
  });

  it('refuses a template with signatureUrl but no signingKey', async () => {
    const url = await publish('nokey', IMG, payload, alice);
    const { target } = cacheDir();
    await expect(downloadImage(template(url, { signingKey: undefined }), target, opts())).rejects.toThrow(
      /signatureUrl but no image.signingKey/,
    );
    expect(existsSync(target)).toBe(false);
  });
});

describe('the Flatcar templates', () => {
  it.each(['flatcar-stable', 'flatcar-beta', 'flatcar-alpha', 'flatcar-stable-cloudconfig'])(
    '%s verifies its image with Flatcar’s pinned image-signing key',
    (name) => {
      const r = loadTemplate(name, '.');
      if (!r.ok) throw new Error(r.message);
      const img = r.value.template.image;
      if ('build' in img) throw new Error('expected a downloaded image');
      expect(img.signatureUrl).toBe(`${img.url}.sig`);
      expect(img.digestUrl).toBe(`${img.url}.DIGESTS`);
      expect(trustedKey(img.signingKey!).fingerprint).toBe('F88CFEDEFF29A5B4D9523864E25D9AED0593B34A');
    },
  );
});

// Signed image downloads from a loopback HTTP server, as Flatcar publishes them: the image,
// a detached binary <image>.sig and an <image>.DIGESTS (MD5/SHA1/SHA512 sections). Only a
// file signed by the pinned key reaches the cache; anything else is deleted.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabEvent } from '../../../lab/events.js';
import { downloadImage } from '../../../lab/providers/images.js';
import { trustedKey, type TrustedKey } from '../../../lab/providers/signature.js';
import { loadTemplate } from '../../../lab/templates/load.js';
import type { Template } from '../../../lab/templates/schema.js';
import { gpgWorkspace, requireGpg, type TestKey } from './gpg-fixture.js';

const IMG = 'flatcar_production_qemu_image.img';
const payload = Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => i % 251));
const hex = (algo: string, b: Buffer) => createHash(algo).update(b).digest('hex');
const digests = (b: Buffer, name: string) =>
  ['md5', 'sha1', 'sha512'].map((a) => `# ${a.toUpperCase()} HASH\n${hex(a, b)}  ${name}\n`).join('');

let ws: ReturnType<typeof gpgWorkspace>;
let alice: TestKey;
let mallory: TestKey;
let aliceKey: TrustedKey;
let server: http.Server;
let base = '';
const files = new Map<string, Buffer>();
const requests: string[] = [];

/** Publishes `body` at /DIR/NAME with NAME.DIGESTS and, signed by `signer`, NAME.sig. */
async function publish(dir: string, name: string, body: Buffer, signer?: TestKey, served = body) {
  const local = path.join(ws.dir, `${dir}-${name}`);
  writeFileSync(local, body);
  files.set(`/${dir}/${name}`, served);
  files.set(`/${dir}/${name}.DIGESTS`, Buffer.from(digests(served, name)));
  if (signer) {
    await signer.sign(local, `${local}.sig`);
    files.set(`/${dir}/${name}.sig`, readFileSync(`${local}.sig`));
  }
  return `${base}/${dir}/${name}`;
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
      format: 'qcow2',
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
  return { target: path.join(mkdtempSync(path.join(ws.dir, 'cache-')), 't', 'disk.qcow2') };
}

const opts = (events: LabEvent[] = []) => ({
  onEvent: (e: LabEvent) => events.push(e),
  trustedKey: (name: string) => {
    expect(name).toBe('test.asc');
    return aliceKey;
  },
});

beforeAll(async () => {
  await requireGpg();
  ws = gpgWorkspace();
  alice = await ws.makeKey('Alice Images <alice@example.invalid>');
  mallory = await ws.makeKey('Mallory <mallory@example.invalid>');
  const keyFile = path.join(ws.dir, 'test.asc');
  writeFileSync(keyFile, alice.publicKey);
  aliceKey = { file: keyFile, fingerprint: alice.fingerprint };
  server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    const body = files.get(req.url ?? '');
    if (!body) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 120_000);
afterAll(async () => {
  server?.close();
  await ws?.cleanup();
});

describe('signed image downloads', () => {
  it('accepts and caches an image signed by the pinned key (SHA512 from DIGESTS)', async () => {
    const url = await publish('good', IMG, payload, alice);
    const { target } = cacheDir();
    const events: LabEvent[] = [];
    await downloadImage(template(url), target, opts(events));
    expect(readFileSync(target).equals(payload)).toBe(true);
    expect(readdirSync(path.dirname(target))).toEqual(['disk.qcow2']); // no .download, no .sig left
    expect(requests).toContain(`/good/${IMG}.sig`);
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
    expect(readdirSync(path.dirname(target))).toEqual([]);
  });

  it('refuses a corrupted image even when DIGESTS matches it, and deletes the download', async () => {
    const corrupted = Buffer.from(payload);
    corrupted[4096]! ^= 0xff;
    // Signed as published, served altered, with DIGESTS made for the altered bytes.
    const url = await publish('corrupt', IMG, payload, alice, corrupted);
    const { target } = cacheDir();
    await expect(downloadImage(template(url), target, opts())).rejects.toThrow(
      /failed signature verification: BAD signature/,
    );
    expect(readdirSync(path.dirname(target))).toEqual([]);
  });

  it('says so clearly when the .sig is missing, and does not use the image', async () => {
    const url = await publish('nosig', IMG, payload);
    const { target } = cacheDir();
    const err = await downloadImage(template(url), target, opts()).then(
      () => undefined,
      (e: unknown) => e as Error & { hint?: string },
    );
    expect(err?.message).toBe(`cannot fetch the signature of t's image from ${url}.sig: HTTP 404`);
    expect(err?.hint).toMatch(/not used unsigned/);
    // Nothing is cached; the unverified download stays for a later run to check.
    expect(readdirSync(path.dirname(target))).toEqual(['disk.qcow2.download']);
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

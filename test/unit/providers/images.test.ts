// Image downloads against a loopback HTTP server that can cut a transfer short:
// resume, digest verification (a bad image is deleted, never used) and unpacking.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabEvent } from '../../../lab/events.js';
import { downloadImage, pickDigest } from '../../../lab/providers/images.js';
import type { Template } from '../../../lab/templates/schema.js';

const payload = Buffer.alloc(3 * 1024 * 1024, 0);
for (let i = 0; i < payload.length; i += 4096) payload.writeUInt32BE(i, i);
const gz = gzipSync(payload);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let server: http.Server;
let base = '';
const requests: { url: string; range?: string }[] = [];
let cutNext = false;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    requests.push({ url: req.url ?? '', ...(req.headers.range ? { range: req.headers.range } : {}) });
    const body = req.url?.startsWith('/img.gz') ? gz : payload;
    if (req.url?.endsWith('.sha256')) {
      res.end(`${sha256(body)}  img.gz\n`);
      return;
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const from = m ? Number(m[1]) : 0;
    const chunk = body.subarray(from);
    res.writeHead(m ? 206 : 200, {
      'content-length': chunk.length,
      ...(m ? { 'content-range': `bytes ${from}-${body.length - 1}/${body.length}` } : {}),
    });
    if (cutNext) {
      // Send half, then drop the connection: a cut download.
      cutNext = false;
      res.write(chunk.subarray(0, chunk.length >> 1), () => res.destroy());
      return;
    }
    res.end(chunk);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => server.close());

function template(image: Record<string, unknown>): Template {
  const t = {
    name: 't',
    arch: 'x86_64',
    image: { format: 'qcow2', compression: 'none', ...image },
    boot: { firmware: 'bios' },
    provisioning: { dialect: 'cloud-init', delivery: 'nocloud' },
    ssh: { user: 'core' },
    nic: 'eth0',
    services: {},
    minMemoryMiB: 256,
  };
  return t as Template;
}

describe('image downloads', () => {
  it('resumes a cut download with a Range request and verifies it before use', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-img-'));
    const target = path.join(dir, 'disk.qcow2');
    const t = template({ url: `${base}/img`, digest: `sha256:${sha256(payload)}` });
    cutNext = true;
    await expect(downloadImage(t, target, { onEvent: () => {} })).rejects.toThrow();
    expect(existsSync(target)).toBe(false); // never half an image at the target
    const partial = statSync(`${target}.download`).size;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(payload.length);
    const events: LabEvent[] = [];
    await downloadImage(t, target, { onEvent: (e) => events.push(e) });
    expect(requests.at(-1)!.range).toBe(`bytes=${partial}-`);
    expect(sha256(readFileSync(target))).toBe(sha256(payload));
    expect(existsSync(`${target}.download`)).toBe(false);
    expect(
      events.some((e) => e.kind === 'progress' && e.done === payload.length && e.total === payload.length),
    ).toBe(true);
  });

  it('deletes a download whose digest does not match and says so', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-img-'));
    const target = path.join(dir, 'disk.qcow2');
    const t = template({ url: `${base}/img`, digest: `sha256:${'0'.repeat(64)}` });
    await expect(downloadImage(t, target, { onEvent: () => {} })).rejects.toThrow(/failed verification/);
    expect(existsSync(target)).toBe(false);
    expect(existsSync(`${target}.download`)).toBe(false);
  });

  it('reads the digest from a published checksum file and unpacks gz', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-img-'));
    const target = path.join(dir, 'disk.qcow2');
    const t = template({ url: `${base}/img.gz`, digestUrl: `${base}/img.gz.sha256`, compression: 'gz' });
    await downloadImage(t, target, { onEvent: () => {} });
    expect(sha256(readFileSync(target))).toBe(sha256(payload));
  });

  it('refuses an image with no digest at all', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-img-'));
    const src = path.join(dir, 'local.img');
    writeFileSync(src, 'x');
    await expect(
      downloadImage(template({ path: src }), path.join(dir, 'disk.qcow2'), { onEvent: () => {} }),
    ).rejects.toThrow(/unverified/);
  });

  it.each([
    [
      '# SHA512 HASH\nabc\n' + 'f'.repeat(128) + '  flatcar_production_qemu_image.img\n',
      'flatcar_production_qemu_image.img',
      `sha512:${'f'.repeat(128)}`,
    ],
    [`${'a'.repeat(64)} *x.qcow2.xz\n`, 'x.qcow2.xz', `sha256:${'a'.repeat(64)}`],
    [`${'a'.repeat(64)}  other.img\n`, 'x.img', undefined],
  ])('pickDigest finds the line for the file', (listing, file, want) => {
    expect(pickDigest(listing, file)).toBe(want);
  });

  // The shape of Flatcar's <image>.DIGESTS: MD5, SHA1 and SHA512 sections, no sha256.
  const img = 'flatcar_production_qemu_image.img';
  const flatcarDigests = (file = img) =>
    [
      '# MD5 HASH',
      `${'1'.repeat(32)}  ${file}`,
      '# SHA1 HASH',
      `${'2'.repeat(40)}  ${file}`,
      '# SHA512 HASH',
      `${'3'.repeat(128)}  ${file}`,
      '',
    ].join('\n');
  it.each([
    ['Flatcar DIGESTS: the SHA512 line', flatcarDigests(), img, `sha512:${'3'.repeat(128)}`],
    [
      'Flatcar DIGESTS with CRLF line ends',
      flatcarDigests().replaceAll('\n', '\r\n'),
      img,
      `sha512:${'3'.repeat(128)}`,
    ],
    ['Flatcar DIGESTS of another file', flatcarDigests(`${img}.bz2`), img, undefined],
    [
      'two files: the one named',
      flatcarDigests(`${img}.bz2`) + `# SHA512 HASH\n${'4'.repeat(128)}  ${img}\n`,
      img,
      `sha512:${'4'.repeat(128)}`,
    ],
    ['only MD5 and SHA1: nothing usable', flatcarDigests().split('# SHA512')[0]!, img, undefined],
    [
      'sha512 preferred over sha256',
      `${'a'.repeat(64)}  x.img\n${'b'.repeat(128)}  x.img\n`,
      'x.img',
      `sha512:${'b'.repeat(128)}`,
    ],
    [
      'a section header names the algorithm',
      `# SHA256 HASH\n${'b'.repeat(128)}  x.img\n`,
      'x.img',
      undefined,
    ],
    ['BSD tag', `SHA256 (x.img) = ${'C'.repeat(64)}\n`, 'x.img', `sha256:${'c'.repeat(64)}`],
    ['sha256sum with a path', `${'a'.repeat(64)}  ./dir/x.img\n`, 'x.img', `sha256:${'a'.repeat(64)}`],
  ])('pickDigest: %s', (_name, listing, file, want) => {
    expect(pickDigest(listing, file)).toBe(want);
  });
});

// R15/S14: image downloads against a loopback HTTP server that cuts, stalls, ignores
// Range or changes the file: resume with Range + a validator, restart from zero when the
// server cannot resume, and a cache that never holds anything unverified.
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabEvent } from '../../../lab/events.js';
import { downloadImage, type DownloadOptions } from '../../../lab/providers/images.js';
import { redirectRefusal } from '../../../lab/providers/images/http.js';
import { quarantineDir } from '../../../lab/providers/images/quarantine.js';
import { parseContentRange } from '../../../lab/providers/images/resumable-fetch.js';
import { pickDigest } from '../../../lab/providers/images/verify.js';
import {
  executables,
  imageTemplate,
  listTree,
  payloadOf,
  sha256,
  startImageServer,
  type ImageServer,
} from './image-server.js';

const SIZE = 3 * 1024 * 1024;
let srv: ImageServer;
let n = 0;

beforeAll(async () => {
  srv = await startImageServer();
});
afterAll(() => srv.close());

/** A fresh cache entry and a fresh URL for one test. */
function entry() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-img-'));
  const p = `/img${n++}.raw`;
  return { dir, target: path.join(dir, 't', 'disk.raw'), p, url: `${srv.base}${p}` };
}
const fast = (events: LabEvent[] = []): DownloadOptions => ({
  onEvent: (e) => events.push(e),
  retryDelayMs: 5,
});
/** n of a `bytes=n-` Range header (NaN when there is none). */
const resumedAt = (range: string | undefined) => Number(/^bytes=(\d+)-$/.exec(range ?? '')?.[1]);
const logs = (events: LabEvent[]) => events.flatMap((e) => (e.kind === 'log' ? [e.message] : []));

describe('R15: downloads resume and never poison the cache', () => {
  it('a body cut at 40 % is resumed with Range + If-Range: no byte fetched twice, the digest matches', async () => {
    const e = entry();
    const body = payloadOf(SIZE);
    srv.files.set(e.p, { body, cutAt: 0.4 });
    const events: LabEvent[] = [];
    await downloadImage(
      imageTemplate({ url: e.url, digest: `sha256:${sha256(body)}` }),
      e.target,
      fast(events),
    );
    const [first, second, ...more] = srv.requestsFor(e.p);
    expect(more).toEqual([]);
    const cut = Math.floor(SIZE * 0.4);
    expect(first).toMatchObject({ status: 200, sent: cut });
    expect(first!.range).toBeUndefined();
    // n: what the client had written when the connection broke. The server sent `cut`;
    // a broken fetch body drops what its stream still queued (measured: 0 to ~15 KB).
    const n = resumedAt(second!.range);
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThanOrEqual(cut);
    expect(second).toMatchObject({ status: 206, sent: SIZE - n });
    expect(second!.ifRange).toMatch(/^"[0-9a-f]+"$/); // the strong ETag of the first answer
    expect(sha256(readFileSync(e.target))).toBe(sha256(body));
    expect(statSync(e.target).mode & 0o777).toBe(0o444);
    expect(existsSync(quarantineDir(e.target))).toBe(false);
    expect(logs(events)).toContainEqual(
      expect.stringMatching(`resuming the download of t at byte ${n} of ${SIZE}`),
    );
    expect(events).toContainEqual(expect.objectContaining({ kind: 'progress', done: SIZE, total: SIZE }));
  });

  it.each([
    ['a strong ETag', {}, (ifRange?: string) => expect(ifRange).toMatch(/^"[0-9a-f]+"$/)],
    [
      'Last-Modified (no ETag)',
      { etag: null, lastModified: 'Tue, 01 Apr 2025 10:00:00 GMT' },
      (ifRange?: string) => expect(ifRange).toBe('Tue, 01 Apr 2025 10:00:00 GMT'),
    ],
    ['only the size', { etag: null }, (ifRange?: string) => expect(ifRange).toBeUndefined()],
  ])(
    'a cut download stays in the quarantine (0600, no exec bit) and the next run resumes it; validator: %s',
    async (_name, validators, checkIfRange) => {
      const e = entry();
      const body = payloadOf(SIZE, 7);
      srv.files.set(e.p, { body, cutAt: 0.4, ...validators });
      const t = imageTemplate({ url: e.url, digest: `sha256:${sha256(body)}` });
      const err = await downloadImage(t, e.target, { ...fast(), attempts: 1 }).then(
        () => undefined,
        (x: unknown) => x as Error & { hint?: string },
      );
      expect(err?.message).toMatch(/broke at byte|was cut at/);
      expect(err?.hint).toMatch(/resumes/);
      expect(existsSync(e.target)).toBe(false); // never half an image under the entry's name
      const q = listTree(path.dirname(e.target));
      const partial = q.find((f) => f.path.endsWith('.partial'));
      expect(partial?.mode).toBe(0o600);
      expect(partial!.size).toBeGreaterThan(0);
      expect(partial!.size).toBeLessThanOrEqual(Math.floor(SIZE * 0.4));
      expect(partial!.path.startsWith('.quarantine/')).toBe(true);
      expect(executables(e.dir)).toEqual([]);

      await downloadImage(t, e.target, fast());
      const second = srv.requestsFor(e.p)[1]!;
      expect(second).toMatchObject({ status: 206, range: `bytes=${partial!.size}-` });
      checkIfRange(second.ifRange);
      expect(sha256(readFileSync(e.target))).toBe(sha256(body));
      expect(readdirSync(path.dirname(e.target))).toEqual(['disk.raw', 'disk.raw.lock']);
    },
  );

  it('a server that ignores Range (200 to a Range request): the download restarts from zero, nothing doubled', async () => {
    const e = entry();
    const body = payloadOf(SIZE, 3);
    srv.files.set(e.p, { body, cutAt: 0.4, ignoreRange: true });
    const events: LabEvent[] = [];
    await downloadImage(
      imageTemplate({ url: e.url, digest: `sha256:${sha256(body)}` }),
      e.target,
      fast(events),
    );
    const [first, second] = srv.requestsFor(e.p);
    expect(resumedAt(second!.range)).toBeLessThanOrEqual(first!.sent);
    expect(second).toMatchObject({ status: 200, sent: SIZE });
    expect(statSync(e.target).size).toBe(SIZE);
    expect(sha256(readFileSync(e.target))).toBe(sha256(body));
    expect(logs(events)).toContainEqual(
      expect.stringMatching(/from the start: the server ignored the range/),
    );
  });

  it('a file that changed on the server between two tries (If-Range no longer matches) is fetched anew', async () => {
    const e = entry();
    const old = payloadOf(SIZE, 1);
    const now = payloadOf(SIZE, 2);
    srv.files.set(e.p, { body: old, cutAt: 0.4 });
    const t = (b: Buffer) => imageTemplate({ url: e.url, digest: `sha256:${sha256(b)}` });
    await expect(downloadImage(t(old), e.target, { ...fast(), attempts: 1 })).rejects.toThrow(/broke|cut/);
    srv.files.set(e.p, { body: now }); // a new release under the same URL
    await downloadImage(t(now), e.target, fast());
    const second = srv.requestsFor(e.p)[1]!;
    expect(second.range).toBeDefined();
    expect(second).toMatchObject({ status: 200, sent: SIZE });
    expect(sha256(readFileSync(e.target))).toBe(sha256(now));
  });

  it('a partial without any validator (chunked, no ETag, no Last-Modified) is not resumed', async () => {
    const e = entry();
    const body = payloadOf(SIZE, 4);
    srv.files.set(e.p, { body, cutAt: 0.4, chunked: true, etag: null });
    await downloadImage(imageTemplate({ url: e.url, digest: `sha256:${sha256(body)}` }), e.target, fast());
    const [, second] = srv.requestsFor(e.p);
    expect(second).toMatchObject({ status: 200, sent: SIZE });
    expect(second!.range).toBeUndefined();
    expect(sha256(readFileSync(e.target))).toBe(sha256(body));
  });

  it('a stalled transfer is abandoned after the idle timeout and resumed', async () => {
    const e = entry();
    const body = payloadOf(SIZE, 5);
    srv.files.set(e.p, { body, cutAt: 0.4, stall: true });
    const events: LabEvent[] = [];
    await downloadImage(imageTemplate({ url: e.url, digest: `sha256:${sha256(body)}` }), e.target, {
      ...fast(events),
      idleTimeoutMs: 300,
    });
    const second = srv.requestsFor(e.p)[1]!;
    expect(second.status).toBe(206);
    expect(resumedAt(second.range)).toBeGreaterThan(0);
    expect(resumedAt(second.range)).toBeLessThanOrEqual(Math.floor(SIZE * 0.4));
    expect(logs(events)).toContainEqual(expect.stringMatching(/nothing came for 0.3 s/));
    expect(sha256(readFileSync(e.target))).toBe(sha256(body));
  });

  it('a 503 is tried again; a 404 is not', async () => {
    const e = entry();
    const body = payloadOf(64 * 1024);
    srv.files.set(e.p, { body, failFirst: { status: 503, times: 1 } });
    await downloadImage(imageTemplate({ url: e.url, digest: `sha256:${sha256(body)}` }), e.target, fast());
    expect(srv.requestsFor(e.p).map((r) => r.status)).toEqual([503, 200]);
    const missing = entry();
    await expect(
      downloadImage(
        imageTemplate({ url: missing.url, digest: `sha256:${sha256(body)}` }),
        missing.target,
        fast(),
      ),
    ).rejects.toThrow(`cannot download ${missing.url}: HTTP 404`);
    expect(srv.requestsFor(missing.p)).toHaveLength(1);
  });

  it('a flipped byte is rejected by the digest: no cache entry, no partial left that looks valid', async () => {
    const e = entry();
    const body = payloadOf(SIZE, 6);
    const flipped = Buffer.from(body);
    flipped[SIZE >> 1]! ^= 0x01;
    srv.files.set(e.p, { body: flipped });
    const err = await downloadImage(
      imageTemplate({ url: e.url, digest: `sha256:${sha256(body)}` }),
      e.target,
      fast(),
    ).then(
      () => undefined,
      (x: unknown) => x as Error & { hint?: string },
    );
    expect(err?.message).toMatch(/^image of t failed verification: sha256 [0-9a-f]{64} != expected/);
    expect(err?.hint).toMatch(/the download was deleted/);
    // Only the (empty) lock file: no entry, no .partial, no quarantine.
    expect(listTree(path.dirname(e.target))).toEqual([
      { path: 'disk.raw.lock', mode: 0o600, size: 0, dir: false },
    ]);
  });

  it('S14: only the URLs of the template are fetched, from this address only', async () => {
    const e = entry();
    const body = payloadOf(64 * 1024, 9);
    srv.files.set(e.p, { body });
    srv.files.set(`${e.p}.sha256`, { body: Buffer.from(`${sha256(body)}  ${path.basename(e.p)}\n`) });
    const before = srv.requests.length;
    await downloadImage(imageTemplate({ url: e.url, digestUrl: `${e.url}.sha256` }), e.target, fast());
    const seen = srv.requests.slice(before);
    expect(seen.map((r) => `${r.method} ${r.url}`).sort()).toEqual([`GET ${e.p}`, `GET ${e.p}.sha256`]);
    expect(new Set(seen.map((r) => r.remote))).toEqual(new Set(['127.0.0.1']));
  });

  it('a redirect is followed on HTTP(S) only; never to another scheme', async () => {
    const e = entry();
    const body = payloadOf(64 * 1024, 10);
    srv.files.set(e.p, { body, redirect: `${e.p}.real` });
    srv.files.set(`${e.p}.real`, { body });
    await downloadImage(imageTemplate({ url: e.url, digest: `sha256:${sha256(body)}` }), e.target, fast());
    expect(srv.requestsFor(e.p).map((r) => r.status)).toEqual([302]);
    expect(srv.requestsFor(`${e.p}.real`).map((r) => r.status)).toEqual([200]);
    const f = entry();
    srv.files.set(f.p, { body, redirect: 'file:///etc/passwd' });
    await expect(
      downloadImage(imageTemplate({ url: f.url, digest: `sha256:${sha256(body)}` }), f.target, fast()),
    ).rejects.toThrow(`refusing the redirect from ${f.url} to file:///etc/passwd: file: is not HTTP`);
    expect(existsSync(f.target)).toBe(false);
  });

  it.each([
    ['https://a/x', 'http://a/x', 'it leaves HTTPS'],
    ['https://a/x', 'https://mirror/x', undefined],
    ['http://a/x', 'https://a/x', undefined],
    ['http://a/x', 'ftp://a/x', 'ftp: is not HTTP'],
  ])('redirectRefusal %s -> %s', (from, to, want) => {
    expect(redirectRefusal(new URL(from), new URL(to))).toBe(want);
  });

  it('copies a local image.path into the quarantine before checking it, and refuses one without a digest', async () => {
    const e = entry();
    const src = path.join(e.dir, 'local.img');
    const body = payloadOf(128 * 1024, 8);
    writeFileSync(src, body, { mode: 0o755 });
    await downloadImage(imageTemplate({ path: src, digest: `sha256:${sha256(body)}` }), e.target, fast());
    expect(statSync(e.target).mode & 0o777).toBe(0o444);
    expect(readFileSync(e.target).equals(body)).toBe(true);
    await expect(
      downloadImage(imageTemplate({ path: src }), path.join(e.dir, 'u', 'disk.raw'), fast()),
    ).rejects.toThrow(/unverified/);
  });
});

describe('parseContentRange', () => {
  it.each([
    ['bytes 100-199/1000', { start: 100, end: 199, total: 1000 }],
    ['bytes 100-199/*', { start: 100, end: 199 }],
    ['bytes */1000', { total: 1000 }],
    ['items 1-2/3', undefined],
    [null, undefined],
  ])('%s', (value, want) => {
    expect(parseContentRange(value)).toEqual(want);
  });
});

describe('pickDigest', () => {
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

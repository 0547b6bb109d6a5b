// R15: a cache on a full file system. The cache is a 1 MiB tmpfs (root: this suite runs as
// root in CI; a mount that fails fails the tests, it never skips them).
import { mkdtempSync, readFileSync, rmdirSync, statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabError } from '../../../lab/errors.js';
import { downloadImage } from '../../../lab/providers/images.js';
import { run } from '../../../lab/runtime/exec.js';
import {
  imageTemplate,
  listTree,
  payloadOf,
  sha256,
  startImageServer,
  type ImageServer,
} from './image-server.js';

let srv: ImageServer;
let mnt = '';
let mounted = false;
let n = 0;

beforeAll(async () => {
  mnt = mkdtempSync(path.join(os.tmpdir(), 'lab-tinyfs-'));
  await run('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tmpfs', mnt], { timeoutMs: 10_000 });
  mounted = true;
  srv = await startImageServer();
});
afterAll(async () => {
  await srv?.close();
  if (mounted) await run('umount', [mnt], { timeoutMs: 10_000 });
  rmdirSync(mnt);
});

function entry() {
  const p = `/big${n++}.img`;
  const dir = path.join(mnt, `c${n}`);
  return { dir, target: path.join(dir, 't', 'disk.raw'), p, url: `${srv.base}${p}` };
}

async function refused(promise: Promise<unknown>): Promise<LabError & { hint?: string }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LabError);
  return err as LabError;
}

/** Nothing but the empty lock file: no entry, no partial, no quarantine. */
function expectNothingKept(target: string) {
  expect(listTree(path.dirname(target))).toEqual([
    { path: 'disk.raw.lock', mode: 0o600, size: 0, dir: false },
  ]);
}

describe('R15: a full cache file system (ENOSPC)', () => {
  it('the cache really is a 1 MiB tmpfs', () => {
    const fs = statfsSync(mnt);
    expect(fs.blocks * fs.bsize).toBeLessThanOrEqual(1024 * 1024);
  });

  it('a download bigger than the space left (no Content-Length): a clear error naming the cache, nothing left behind', async () => {
    const e = entry();
    const body = payloadOf(3 * 1024 * 1024);
    srv.files.set(e.p, { body, chunked: true });
    const err = await refused(
      downloadImage(imageTemplate({ url: e.url, digest: `sha256:${sha256(body)}` }), e.target, {
        onEvent: () => {},
        retryDelayMs: 5,
      }),
    );
    expect(err.message).toBe(
      `no space left in the image cache ${path.dirname(e.target)} for the image of t: nothing was kept`,
    );
    expect(err.hint).toMatch(/LAB_CACHE_DIR/);
    expect((err.cause as NodeJS.ErrnoException).code).toBe('ENOSPC'); // the write itself failed
    expect(srv.requestsFor(e.p)).toHaveLength(1); // not retried: a full disk does not get better
    expectNothingKept(e.target);
  });

  it('with a Content-Length that cannot fit: refused before writing', async () => {
    const e = entry();
    const body = payloadOf(3 * 1024 * 1024, 1);
    srv.files.set(e.p, { body });
    const err = await refused(
      downloadImage(imageTemplate({ url: e.url, digest: `sha256:${sha256(body)}` }), e.target, {
        onEvent: () => {},
      }),
    );
    expect(err.message).toMatch(/^no space left in the image cache /);
    expect(err.message).toContain(path.dirname(e.target));
    expect((err.cause as Error).message).toMatch(/^3145728 bytes to come, \d+ bytes free$/);
    expectNothingKept(e.target);
  });

  it('an image that fits compressed but not unpacked: the same clean error, nothing left', async () => {
    const e = entry();
    const gz = gzipSync(Buffer.alloc(4 * 1024 * 1024));
    srv.files.set(e.p, { body: gz });
    const err = await refused(
      downloadImage(
        imageTemplate({ url: e.url, digest: `sha256:${sha256(gz)}`, compression: 'gz' }),
        e.target,
        { onEvent: () => {} },
      ),
    );
    expect(err.message).toMatch(/^no space left in the image cache .* nothing was kept$/);
    expectNothingKept(e.target);
  });

  it('afterwards the space is free again: an image that fits is cached', async () => {
    const e = entry();
    const body = payloadOf(256 * 1024, 2);
    srv.files.set(e.p, { body });
    await downloadImage(imageTemplate({ url: e.url, digest: `sha256:${sha256(body)}` }), e.target, {
      onEvent: () => {},
    });
    expect(sha256(readFileSync(e.target))).toBe(sha256(body));
  });
});

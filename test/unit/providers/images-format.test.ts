// R17/S13: image format safety. qemu-img reads downloads under prlimit with the format
// named (never probed); an image with a backing or data file, or of another format than
// the template's, never reaches the cache; base images are 0444; overlays name -F.
import { copyFileSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadImage } from '../../../lab/providers/images.js';
import { quarantineDir } from '../../../lab/providers/images/quarantine.js';
import { observeCommands, run } from '../../../lab/runtime/exec.js';
import {
  createOverlay,
  imageInfo,
  imageInfoArgv,
  overlayArgv,
  QEMU_IMG_LIMITS,
} from '../../../lab/providers/qemu-img.js';
import {
  executables,
  imageTemplate,
  listTree,
  sha256,
  startImageServer,
  type ImageServer,
} from './image-server.js';

let srv: ImageServer;
let work = '';
let n = 0;
const qemuImg = (...args: string[]) => run('qemu-img', args, { timeoutMs: 30_000 });

beforeAll(async () => {
  // Fail, never skip, when a tool is missing.
  for (const [tool, pkg] of [
    ['prlimit', 'util-linux'],
    ['qemu-img', 'qemu-utils'],
    ['xz', 'xz-utils'],
    ['bzip2', 'bzip2'],
  ])
    await run(tool!, ['--version'], { timeoutMs: 10_000 }).catch((err: unknown) => {
      throw new Error(`${tool} is needed by the image format tests: apt-get install ${pkg}`, { cause: err });
    });
  work = mkdtempSync(path.join(os.tmpdir(), 'lab-fmt-'));
  srv = await startImageServer();
});
afterAll(() => srv.close());

/** Makes an image file with qemu-img and publishes it. */
async function publish(name: string, make: (file: string) => Promise<unknown>) {
  const file = path.join(work, name);
  await make(file);
  const body = readFileSync(file);
  const p = `/${n++}/${name}`;
  srv.files.set(p, { body });
  const dir = mkdtempSync(path.join(work, 'cache-'));
  return { file, body, url: `${srv.base}${p}`, dir, digest: `sha256:${sha256(body)}` };
}

async function refusal(promise: Promise<unknown>): Promise<Error> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  expect(err).toBeInstanceOf(Error);
  return err!;
}

describe('R17: what qemu-img is allowed to see, and how', () => {
  it('qemu-img info runs under prlimit: 1 GiB address space, 2 s CPU, format named, absolute path', async () => {
    expect(imageInfoArgv('x.img', 'raw')).toEqual([
      'prlimit',
      '--as=1073741824',
      '--cpu=2',
      '--',
      'qemu-img',
      'info',
      '-U',
      '--output=json',
      '-f',
      'raw',
      path.resolve('x.img'),
    ]);
    // The limits the prefix sets are the kernel's limits of the program it runs.
    const [cmd, ...prefix] = imageInfoArgv('x').slice(0, 4);
    const limits = (await run(cmd!, [...prefix, 'cat', '/proc/self/limits'])).stdout;
    expect(limits).toMatch(
      new RegExp(`Max cpu time\\s+${QEMU_IMG_LIMITS.cpuSeconds}\\s+${QEMU_IMG_LIMITS.cpuSeconds}\\s`),
    );
    expect(limits).toMatch(/Max address space\s+1073741824\s+1073741824\s/);
  });

  it('a downloaded qcow2 is checked in the quarantine before the rename, and cached read-only', async () => {
    const img = await publish('good.qcow2', (f) => qemuImg('create', '-q', '-f', 'qcow2', f, '16M'));
    const target = path.join(img.dir, 't', 'disk.qcow2');
    const seen: string[][] = [];
    const stop = observeCommands((argv) => seen.push(argv));
    try {
      await downloadImage(imageTemplate({ url: img.url, digest: img.digest, format: 'qcow2' }), target, {
        onEvent: () => {},
      });
    } finally {
      stop();
    }
    const info = seen.filter((a) => a.includes('qemu-img'));
    expect(info).toHaveLength(1);
    expect(info[0]!.slice(0, 10)).toEqual(imageInfoArgv('x', 'qcow2').slice(0, 10));
    expect(path.dirname(info[0]!.at(-1)!)).toBe(quarantineDir(target)); // checked before it has its name
    expect(statSync(target).mode & 0o777).toBe(0o444);
    expect(readFileSync(target).equals(img.body)).toBe(true);
    expect((await imageInfo(target, undefined, 'qcow2')).virtualSize).toBe(16 * 1024 * 1024);
  });

  it('a qcow2 whose backing file is /etc/passwd is refused before use and deleted', async () => {
    const img = await publish('evil.qcow2', (f) =>
      qemuImg('create', '-q', '-f', 'qcow2', '-b', '/etc/passwd', '-F', 'raw', f),
    );
    const target = path.join(img.dir, 't', 'disk.qcow2');
    const err = await refusal(
      downloadImage(imageTemplate({ url: img.url, digest: img.digest, format: 'qcow2' }), target, {
        onEvent: () => {},
      }),
    );
    expect(err.message).toBe(
      'the image of t has a backing file (/etc/passwd): a downloaded base image must stand alone',
    );
    expect(listTree(path.dirname(target)).map((f) => f.path)).toEqual(['disk.qcow2.lock']);
  });

  it('a qcow2 with an external data file is refused', async () => {
    const data = path.join(work, 'host-file.raw');
    writeFileSync(data, Buffer.alloc(1024 * 1024));
    const img = await publish('datafile.qcow2', (f) =>
      qemuImg('create', '-q', '-f', 'qcow2', '-o', `data_file=${data},data_file_raw=on`, f, '1M'),
    );
    const target = path.join(img.dir, 't', 'disk.qcow2');
    const err = await refusal(
      downloadImage(imageTemplate({ url: img.url, digest: img.digest, format: 'qcow2' }), target, {
        onEvent: () => {},
      }),
    );
    expect(err.message).toMatch(/^the image of t has an external data file \(.*host-file\.raw\)/);
    expect(listTree(path.dirname(target)).map((f) => f.path)).toEqual(['disk.qcow2.lock']);
  });

  it('a raw file where the template says qcow2 is refused', async () => {
    const img = await publish('plain.raw', (f) =>
      Promise.resolve(writeFileSync(f, Buffer.alloc(1024 * 1024, 1))),
    );
    const target = path.join(img.dir, 't', 'disk.qcow2');
    const err = await refusal(
      downloadImage(imageTemplate({ url: img.url, digest: img.digest, format: 'qcow2' }), target, {
        onEvent: () => {},
      }),
    );
    expect(err.message).toBe('the image of t is not a qcow2 image (the template says qcow2)');
    expect(listTree(path.dirname(target)).map((f) => f.path)).toEqual(['disk.qcow2.lock']);
  });

  it('a raw image that starts with a qcow2 header is used as raw: the format is named, never probed', async () => {
    // The /etc/passwd-backed qcow2, published as a raw image.
    const img = await publish('looks-qcow2.raw', (f) =>
      qemuImg('create', '-q', '-f', 'qcow2', '-b', '/etc/passwd', '-F', 'raw', f),
    );
    const target = path.join(img.dir, 't', 'disk.raw');
    await downloadImage(imageTemplate({ url: img.url, digest: img.digest, format: 'raw' }), target, {
      onEvent: () => {},
    });
    expect(await imageInfo(target, undefined, 'raw')).toEqual({
      format: 'raw',
      virtualSize: Math.ceil(img.body.length / 512) * 512, // qemu rounds raw sizes to sectors
    });
    // What probing would have done: taken the header at its word.
    expect(await imageInfo(target)).toMatchObject({ format: 'qcow2', backingFile: '/etc/passwd' });
    // An overlay on it names raw: QEMU reads the base as raw bytes, never /etc/passwd.
    const overlay = path.join(img.dir, 'node.qcow2');
    await createOverlay(target, 'raw', overlay, 64 * 1024 * 1024);
    const ov = JSON.parse((await qemuImg('info', '--output=json', overlay)).stdout) as Record<
      string,
      unknown
    >;
    expect(ov).toMatchObject({ 'backing-filename': target, 'backing-filename-format': 'raw' });
    // The node's disk is private: its host keys live on it.
    expect(statSync(overlay).mode & 0o777).toBe(0o600);
    expect(sha256(readFileSync(target))).toBe(sha256(img.body)); // the base is never written
    expect(statSync(target).mode & 0o777).toBe(0o444);
  });

  it.each([
    ['gz', 'gzip', '.gz'],
    ['bz2', 'bzip2', '.bz2'],
    ['xz', 'xz', '.xz'],
  ])(
    '%s: unpacked into a temp file in the quarantine, checked, then cached 0444',
    async (compression, tool, ext) => {
      const raw = path.join(work, `packed-${compression}.qcow2`);
      await qemuImg('create', '-q', '-f', 'qcow2', raw, '8M');
      const img = await publish(`packed.qcow2${ext}`, async (f) => {
        copyFileSync(raw, f.slice(0, -ext.length));
        await run(tool, ['-f', f.slice(0, -ext.length)]);
      });
      const target = path.join(img.dir, 't', 'disk.qcow2');
      const seen: string[][] = [];
      const stop = observeCommands((argv) => seen.push(argv));
      try {
        await downloadImage(
          imageTemplate({ url: img.url, digest: img.digest, format: 'qcow2', compression }),
          target,
          { onEvent: () => {} },
        );
      } finally {
        stop();
      }
      expect(readFileSync(target).equals(readFileSync(raw))).toBe(true);
      expect(seen.find((a) => a.includes('qemu-img'))!.at(-1)).toMatch(
        /\/\.quarantine\/[0-9a-f]{16}\.unpacked$/,
      );
      expect(statSync(target).mode & 0o777).toBe(0o444);
      expect(listTree(path.dirname(target)).map((f) => f.path)).toEqual(['disk.qcow2', 'disk.qcow2.lock']);
      expect(executables(img.dir)).toEqual([]);
    },
  );
});

describe('R17: overlays name their backing format', () => {
  it('the argv has -F before -b, with an absolute base path', () => {
    expect(overlayArgv('base.qcow2', 'qcow2', '/d/node.qcow2', 1024)).toEqual([
      'qemu-img',
      'create',
      '-q',
      '-f',
      'qcow2',
      '-F',
      'qcow2',
      '-b',
      path.resolve('base.qcow2'),
      '/d/node.qcow2',
      '1024',
    ]);
  });

  it('qemu-img info of an overlay shows the backing format; the base is untouched', async () => {
    const base = path.join(work, 'base-for-overlay.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', base, '16M');
    const before = sha256(readFileSync(base));
    const overlay = path.join(work, 'overlay.qcow2');
    await createOverlay(base, 'qcow2', overlay, 32 * 1024 * 1024);
    const info = await imageInfo(overlay, undefined, 'qcow2');
    expect(info).toEqual({
      format: 'qcow2',
      virtualSize: 32 * 1024 * 1024,
      backingFile: base,
      backingFormat: 'qcow2',
    });
    expect(sha256(readFileSync(base))).toBe(before);
  });

  it('refuses a backing format that is neither qcow2 nor raw', async () => {
    await expect(createOverlay('/x', '', path.join(work, 'no.qcow2'), 1024)).rejects.toThrow(
      /qcow2 or raw only/,
    );
  });
});

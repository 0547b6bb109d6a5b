// `lab image build NAME` on a cache that already holds a whole build of NAME: nothing to do
// (the README's set-up line is cheap to run again); a file that no longer matches its
// manifest is not whole; --force refuses while a lab's disk is backed by the image.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { verifiedBuild } from '../../../lab/providers/images/build.js';

const root = path.join(import.meta.dirname, '../../..');
const tsx = pathToFileURL(path.join(root, 'node_modules/tsx/dist/loader.mjs')).href;
const cli = (args: string[], env: Record<string, string>) =>
  execa('node', ['--import', tsx, path.join(root, 'cmd/lab.ts'), ...args], { reject: false, cwd: root, env });

const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

/** A cache holding a debian-12-lab entry as build.sh leaves it: files and their manifest. */
async function cachedBuild(): Promise<{ cache: string; dir: string }> {
  const cache = mkdtempSync(path.join(os.tmpdir(), 'lab-img-cache-'));
  const dir = path.join(cache, 'debian-12-lab');
  mkdirSync(dir);
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', path.join(dir, 'disk.qcow2'), '64M']);
  writeFileSync(path.join(dir, 'vmlinuz'), 'kernel');
  writeFileSync(path.join(dir, 'initrd.img'), 'initrd');
  const sums = Object.fromEntries(
    ['disk.qcow2', 'vmlinuz', 'initrd.img'].map((f) => [f, sha(path.join(dir, f))]),
  );
  writeFileSync(
    path.join(dir, 'manifest.json'),
    JSON.stringify({ built: '2026-12-07T03:24:35Z', sha256: sums }, null, 2),
  );
  return { cache, dir };
}

describe('lab image build on a cached image', { timeout: 60_000 }, () => {
  it('a whole build is kept: nothing to do, exit 0', async () => {
    const { cache, dir } = await cachedBuild();
    const r = await cli(['image', 'build', 'debian-12-lab'], { LAB_CACHE_DIR: cache });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe(
      `debian-12-lab: cached in ${dir}, built 2026-12-07T03:24:35Z, every file matches its manifest: nothing to do (--force builds it again)`,
    );
  });

  it('a file that does not match its manifest, or no manifest: not whole', async () => {
    const { cache, dir } = await cachedBuild();
    process.env.LAB_CACHE_DIR = cache;
    try {
      expect(await verifiedBuild('debian-12-lab')).toBe('2026-12-07T03:24:35Z');
      writeFileSync(path.join(dir, 'vmlinuz'), 'another kernel');
      expect(await verifiedBuild('debian-12-lab')).toBeUndefined();
      writeFileSync(path.join(dir, 'manifest.json'), '{');
      expect(await verifiedBuild('debian-12-lab')).toBeUndefined();
    } finally {
      delete process.env.LAB_CACHE_DIR;
    }
  });

  it('--force refuses while a lab disk is backed by the image, naming the disk', async () => {
    const { cache, dir } = await cachedBuild();
    const state = mkdtempSync(path.join(os.tmpdir(), 'lab-img-state-'));
    const disks = path.join(state, 'somelab', 'disks');
    mkdirSync(disks, { recursive: true });
    const overlay = path.join(disks, 'n1.qcow2');
    await execa('qemu-img', [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-b',
      path.join(dir, 'disk.qcow2'),
      '-F',
      'qcow2',
      overlay,
    ]);
    const r = await cli(['image', 'build', 'debian-12-lab', '--force'], {
      LAB_CACHE_DIR: cache,
      LAB_STATE_DIR: state,
    });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`debian-12-lab: 1 lab disk(s) are backed by this image: ${overlay}`);
    expect(r.stderr).toContain('hint: lab down those labs first');
  });
});

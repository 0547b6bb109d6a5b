// `lab image build` cut short leaves nothing behind: not its work folder, not a process.
// A fake mmdebstrap (first in PATH) writes a rootfs and starts a grandchild that keeps
// writing into it, as apt and dpkg do; every process it starts carries a token in its
// environment, so what is left is found in /proc, not in lab's own words. build.sh runs
// for real (it needs root, as in CI). Then `lab image list` and `prune` on planted
// leftovers: what a lock or a lab's overlay uses is kept.
import { execa, type ResultPromise } from 'execa';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const root = path.join(import.meta.dirname, '../../..');
const isRoot = process.getuid?.() === 0;

const FAKE_MMDEBSTRAP = `#!/bin/bash
# mmdebstrap [options] SUITE TARGET [mirrors]: the target follows the suite (bookworm).
for a in "$@"; do [ "$prev" = bookworm ] && target=$a; prev=$a; done
mkdir -p "$target/var/lib/dpkg" "$target/boot"
head -c 2097152 /dev/zero > "$target/blob"
( while :; do echo x >> "$target/grandchild.log"; sleep 0.05; done ) &
touch "$target/.started"
sleep 120
`;

const tokens: string[] = [];
// A failing case must not leave its fake build running: end what carries its token.
afterEach(() => {
  for (const t of tokens.splice(0)) for (const pid of withToken(t)) process.kill(pid, 'SIGKILL');
});

function setup() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-imgbuild-'));
  const bin = path.join(dir, 'bin');
  const cache = path.join(dir, 'cache');
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'mmdebstrap'), FAKE_MMDEBSTRAP);
  chmodSync(path.join(bin, 'mmdebstrap'), 0o755);
  const token = `LAB_TEST_TOKEN=${randomBytes(8).toString('hex')}`;
  tokens.push(token);
  const env = {
    PATH: `${bin}:${process.env.PATH ?? ''}`,
    LAB_CACHE_DIR: cache,
    LAB_STATE_DIR: path.join(dir, 'state'),
    LAB_TEST_TOKEN: token.split('=')[1] as string,
  };
  return { dir, cache, env, token };
}

/** PIDs of live processes whose environment carries `token` (zombies have none). */
function withToken(token: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/environ`, 'latin1').split('\0').includes(token)) out.push(Number(p));
    } catch {
      // ended meanwhile, or not ours to read
    }
  }
  return out;
}

const workFolders = (cache: string) =>
  existsSync(cache) ? readdirSync(cache).filter((f) => f.startsWith('.debian-12-lab.build.')) : [];

async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts `lab image build debian-12-lab` in a process group of its own (as a terminal would). */
function startBuild(env: Record<string, string>): ResultPromise<{ reject: false; detached: true }> {
  return execa(
    'node',
    ['--import', 'tsx', path.join(root, 'cmd/lab.ts'), 'image', 'build', 'debian-12-lab'],
    {
      reject: false,
      detached: true,
      cwd: root,
      env,
    },
  );
}

async function started(cache: string): Promise<void> {
  await until('the fake mmdebstrap to start', () =>
    workFolders(cache).some((w) => existsSync(path.join(cache, w, 'rootfs', '.started'))),
  );
}

describe.skipIf(!isRoot)(
  'lab image build cut short (build.sh for real, a fake mmdebstrap)',
  { timeout: 90_000 },
  () => {
    for (const how of [
      'Ctrl-C (SIGINT to the group)',
      'SIGTERM to lab',
      'SIGTERM to build.sh alone',
    ] as const) {
      it(`${how}: no work folder and no process of the build is left`, async () => {
        const { cache, env, token } = setup();
        const lab = startBuild(env);
        await started(cache);
        expect(withToken(token).length).toBeGreaterThanOrEqual(3); // lab, bash, mmdebstrap, its child...
        const t0 = performance.now();
        if (how === 'Ctrl-C (SIGINT to the group)') process.kill(-(lab.pid as number), 'SIGINT');
        else if (how === 'SIGTERM to lab') lab.kill('SIGTERM');
        else {
          const bash = (await execa('pgrep', ['-P', String(lab.pid), '-x', 'bash'])).stdout.trim();
          process.kill(Number(bash), 'SIGTERM');
        }
        const r = await lab;
        const ms = performance.now() - t0;
        expect(workFolders(cache)).toEqual([]);
        expect(withToken(token)).toEqual([]);
        expect(ms).toBeLessThan(15_000);
        if (how === 'SIGTERM to build.sh alone') {
          expect(r.exitCode).toBe(1);
          expect(r.stderr).toMatch(/building image debian-12-lab failed \(exit 143\)/);
        } else {
          expect(r.exitCode).toBe(how === 'SIGTERM to lab' ? 143 : 130);
          expect(r.stderr).toContain('the build of debian-12-lab stopped; no work folder is left');
        }
        expect(r.stderr).toMatch(/build\.sh: SIG(INT|TERM): stopping, removing .*\.debian-12-lab\.build\./);
      });
    }

    it('lab image list shows leftovers; prune removes the unused, keeps a running build and an entry a lab uses', async () => {
      const { dir, cache, env } = setup();
      const cli = (args: string[]) =>
        execa('node', ['--import', 'tsx', path.join(root, 'cmd/lab.ts'), 'image', ...args], {
          reject: false,
          cwd: root,
          env,
        });
      // A build cut by SIGKILL (no trap runs), an old template's entry, a partial download,
      // an entry a lab's overlay is backed by, and a work folder whose build still runs.
      const cut = path.join(cache, '.debian-12-lab.build.AbC123');
      mkdirSync(path.join(cut, 'rootfs'), { recursive: true });
      writeFileSync(path.join(cut, 'rootfs', 'blob'), Buffer.alloc(3 * 1024 * 1024));
      mkdirSync(path.join(cache, 'coreos-1967'));
      writeFileSync(path.join(cache, 'coreos-1967', 'disk.img'), Buffer.alloc(1024 * 1024));
      mkdirSync(path.join(cache, 'flatcar-stable', '.quarantine'), { recursive: true });
      writeFileSync(path.join(cache, 'flatcar-stable', '.quarantine', '0123456789abcdef.partial'), 'abc');
      mkdirSync(path.join(cache, 'old-base'));
      await execa('qemu-img', [
        'create',
        '-q',
        '-f',
        'qcow2',
        path.join(cache, 'old-base', 'disk.qcow2'),
        '16M',
      ]);
      const disks = path.join(dir, 'state', 'somelab', 'disks');
      mkdirSync(disks, { recursive: true });
      await execa('qemu-img', [
        'create',
        '-q',
        '-f',
        'qcow2',
        '-F',
        'qcow2',
        '-b',
        path.join(cache, 'old-base', 'disk.qcow2'),
        path.join(disks, 'n1.qcow2'),
      ]);
      const running = path.join(cache, '.fedora-ish.build.XyZ789');
      mkdirSync(running);
      writeFileSync(path.join(cache, 'fedora-ish.lock'), '');
      const holder = execa(
        'flock',
        ['--exclusive', '--no-fork', path.join(cache, 'fedora-ish.lock'), 'sleep', '60'],
        {
          reject: false,
        },
      );
      await until('flock to hold the lock', () => withFlock(path.join(cache, 'fedora-ish.lock')));

      const list = await cli(['list', '--json']);
      expect(list.exitCode).toBe(0);
      const seen = JSON.parse(list.stdout) as {
        leftovers: { path: string; kind: string; inUse?: string; bytes: number }[];
      };
      const by = new Map(seen.leftovers.map((l) => [l.path, l]));
      expect([...by.keys()].sort()).toEqual(
        [
          cut,
          path.join(cache, 'coreos-1967'),
          path.join(cache, 'flatcar-stable', '.quarantine', '0123456789abcdef.partial'),
          path.join(cache, 'old-base'),
          running,
        ].sort(),
      );
      expect(by.get(cut)).toMatchObject({ kind: 'build-work', bytes: 3 * 1024 * 1024 });
      expect(by.get(cut)?.inUse).toBeUndefined();
      expect(by.get(running)?.inUse).toMatch(/build of this image is running/);
      expect(by.get(path.join(cache, 'old-base'))?.inUse).toContain(
        path.join(cache, 'old-base', 'disk.qcow2'),
      );
      expect(by.get(path.join(cache, 'coreos-1967'))).toMatchObject({ kind: 'unknown-entry' });

      const text = await cli(['list']);
      expect(text.stdout).toMatch(/build cut short\s+3\.0 MiB\s+unused\s+.*AbC123/);

      const dry = await cli(['prune', '--dry-run']);
      expect(dry.stdout).toContain(`would remove ${cut}`);
      expect(existsSync(cut)).toBe(true);

      const pruned = await cli(['prune']);
      expect(pruned.exitCode).toBe(0);
      for (const gone of [
        cut,
        path.join(cache, 'coreos-1967'),
        path.join(cache, 'flatcar-stable', '.quarantine', '0123456789abcdef.partial'),
      ])
        expect(existsSync(gone)).toBe(false);
      for (const kept of [running, path.join(cache, 'old-base', 'disk.qcow2')])
        expect(existsSync(kept)).toBe(true);
      expect(pruned.stdout).toMatch(/removed 3, /);
      holder.kill('SIGTERM');
      await holder;
      const again = await cli(['prune', '--json']);
      expect(
        (JSON.parse(again.stdout) as { removed: { path: string }[] }).removed.map((l) => l.path),
      ).toEqual([running]);
    });
  },
);

/** Whether someone holds an exclusive flock on `file` (`flock -n -E 75` exits 75 then). */
function withFlock(file: string): boolean {
  return spawnSync('flock', ['-n', '-E', '75', file, 'true']).status === 75;
}

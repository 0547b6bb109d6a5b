// The unit project's globalSetup (test/setup/host-packages.ts): which packages it names, and
// one real run of vitest on a PATH without qemu-img, which must stop before any test with
// the one line. The inner vitest gets an environment of its own (nothing of this run's
// VITEST_* or PATH) and a tiny pure test file, which it never reaches.
import { execa } from 'execa';
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  HOST_PROGRAMS,
  INSTALL_SCRIPT,
  hasProgram,
  missingPackages,
  missingPackagesLine,
  scriptPackages,
} from '../../setup/host-packages.js';

const root = path.join(import.meta.dirname, '../../..');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'lab-host-packages-'));
const installable = scriptPackages(readFileSync(path.join(root, INSTALL_SCRIPT), 'utf8'));

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A bin folder with an executable for each of `names`. */
function binWith(names: string[]): string {
  const bin = mkdtempSync(path.join(scratch, 'bin-'));
  for (const n of names) {
    writeFileSync(path.join(bin, n), '#!/bin/sh\n');
    chmodSync(path.join(bin, n), 0o755);
  }
  return bin;
}

describe('the host packages the unit tests need', () => {
  it('are all installed by the install script', () => {
    expect(installable).toContain('qemu-utils');
    const lacking = [...new Set(HOST_PROGRAMS.map((p) => p.package))].filter((p) => !installable.includes(p));
    expect(lacking).toEqual([]);
  });

  it('are found in PATH, executable, in absolute folders only', () => {
    const bin = binWith(['qemu-img']);
    writeFileSync(path.join(bin, 'xz'), ''); // not executable
    expect(hasProgram('qemu-img', `relative:${bin}`)).toBe(true);
    expect(hasProgram('xz', bin)).toBe(false);
    expect(hasProgram('qemu-img', path.relative(process.cwd(), bin))).toBe(false);
    expect(hasProgram(path.join(bin, 'qemu-img'), '')).toBe(true);
  });

  it('each missing one is named once, by its package', () => {
    const programs = HOST_PROGRAMS.filter((p) => !p.program.startsWith('/'));
    const all = programs.map((p) => p.program);
    expect(missingPackages(binWith(all), programs)).toEqual([]);
    const bin = binWith(all.filter((p) => !['qemu-img', 'gpg', 'gpgconf', 'virsh'].includes(p)));
    expect(missingPackages(bin, programs)).toEqual(['qemu-utils', 'libvirt-clients', 'gnupg']);
  });

  it.each([
    [[], undefined],
    [
      ['qemu-utils', 'xorriso'],
      'lab tests: missing host packages: qemu-utils xorriso — install them with: sudo bash scripts/install-host-deps.sh',
    ],
    [
      ['qemu-utils', 'strace'],
      'lab tests: missing host packages: qemu-utils strace — install them with: sudo bash scripts/install-host-deps.sh && sudo apt-get install strace',
    ],
    [
      ['strace', 'procps'],
      'lab tests: missing host packages: strace procps — install them with: sudo apt-get install strace procps',
    ],
  ])('%j: %s', (missing, line) => {
    // An install script that has qemu-utils and xorriso, and not strace or procps.
    expect(missingPackagesLine(missing, ['qemu-utils', 'xorriso'])).toBe(line);
  });
});

describe('vitest on a host without qemu-img', { timeout: 120_000 }, () => {
  it('stops before any test with the one line, exit code 1', async () => {
    // Every program the check looks for, and node, but qemu-img.
    const bin = mkdtempSync(path.join(scratch, 'path-'));
    symlinkSync(process.execPath, path.join(bin, 'node'));
    for (const p of HOST_PROGRAMS) {
      if (p.program === 'qemu-img' || path.isAbsolute(p.program)) continue;
      const found = process.env
        .PATH!.split(path.delimiter)
        .map((d) => path.join(d, p.program))
        .find((f) => hasProgram(f, ''));
      symlinkSync(found!, path.join(bin, p.program));
    }
    const r = await execa(
      process.execPath,
      [
        path.join(root, 'node_modules/vitest/vitest.mjs'),
        'run',
        '--project',
        'unit',
        'test/unit/providers/virsh.test.ts',
      ],
      {
        cwd: root,
        reject: false,
        stdin: 'ignore',
        timeout: 100_000,
        extendEnv: false,
        env: { PATH: bin, HOME: scratch, TMPDIR: os.tmpdir(), NO_COLOR: '1' },
      },
    );
    expect(r.stderr).toBe(
      'lab tests: missing host packages: qemu-utils — install them with: sudo bash scripts/install-host-deps.sh',
    );
    expect(r.exitCode).toBe(1);
    // vitest's banner, and nothing of a test.
    expect(r.stdout.trim()).toMatch(/^RUN {2}v\d+\.\d+\.\d+ /);
  });
});

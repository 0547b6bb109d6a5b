import { execa } from 'execa';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.join(import.meta.dirname, '../../..');
const cli = (args: string[], env: Record<string, string> = {}) =>
  execa('node', ['--import', 'tsx', path.join(root, 'cmd/lab.ts'), ...args], {
    reject: false,
    cwd: root,
    env: { LAB_STATE_DIR: mkdtempSync(path.join(os.tmpdir(), 'lab-cli-')), ...env },
  });

// Each case starts the CLI from source (tsx), a second or two apiece, more on a busy host.
describe('the lab CLI', { timeout: 60_000 }, () => {
  it('lab --help lists the commands and exits 0', async () => {
    const r = await cli(['--help']);
    expect(r.exitCode).toBe(0);
    for (const c of ['up', 'status', 'ssh', 'down', 'plan', 'validate', 'render', 'ssh-config', 'machines'])
      expect(r.stdout).toContain(`  ${c} `);
  });

  it('an unknown command exits 2', async () => {
    const r = await cli(['frobnicate']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('unknown command "frobnicate"');
  });

  it('lab validate accepts the example and exits 0', async () => {
    const r = await cli(['validate', '-f', 'Labfile.example.yaml']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('valid: lab coreos-lab, 3 node(s)');
  });

  it('lab validate on a bad Labfile exits 2 with file:line:col and a caret, no stack trace', async () => {
    const r = await cli(['validate', '-f', 'test/fixtures/bad/ip-outside.yaml']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(
      'test/fixtures/bad/ip-outside.yaml:10:21: ip 192.168.3.11 of n2 is not a host address',
    );
    expect(r.stderr).toMatch(/\n {20,}\^$/);
    expect(r.stderr).not.toMatch(/\bat .*\.(ts|js):\d+/);
  });

  it('a missing Labfile is a clear error (exit 2)', async () => {
    const r = await cli(['validate', '-f', '/nonexistent/Labfile.yaml']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('/nonexistent/Labfile.yaml: no such file');
  });

  it('lab render writes each node domain XML and seed files, 0600, and creates no lab state', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'lab-render-'));
    const state = mkdtempSync(path.join(os.tmpdir(), 'lab-state-'));
    const r = await cli(['render', '-f', 'Labfile.example.yaml', '--out', out, '--accel', 'tcg'], {
      LAB_STATE_DIR: state,
    });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['coreos1', 'coreos2', 'coreos3', 'network.xml']);
    expect(readdirSync(path.join(out, 'coreos1')).sort()).toEqual([
      'domain.xml',
      'meta-data',
      'network-config',
      'user-data',
    ]);
    expect(statSync(path.join(out, 'coreos1', 'user-data')).mode & 0o777).toBe(0o600);
    expect(readdirSync(state)).toEqual([]);
    // No private key in any file: a marked placeholder where the host key goes; the public one is there.
    for (const node of ['coreos1', 'coreos2', 'coreos3'])
      for (const f of readdirSync(path.join(out, node)))
        expect(readFileSync(path.join(out, node, f), 'utf8'), `${node}/${f}`).not.toMatch(/PRIVATE KEY/);
    const userData = readFileSync(path.join(out, 'coreos1', 'user-data'), 'utf8');
    expect(userData).toContain('LAB-RENDER-PLACEHOLDER');
    expect(userData).toMatch(/ed25519_public: ssh-ed25519 AAAA/);
    expect(r.stdout).toContain('private host keys left out: --with-secrets writes them');
  });

  it('lab render --with-secrets writes the host keys: 0600 files in a 0700 folder it makes', async () => {
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'lab-render-')), 'secrets');
    const r = await cli([
      'render',
      '-f',
      'Labfile.example.yaml',
      '--out',
      out,
      '--with-secrets',
      '--accel',
      'tcg',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o700);
    const userData = path.join(out, 'coreos1', 'user-data');
    expect(statSync(userData).mode & 0o777).toBe(0o600);
    expect(readFileSync(userData, 'utf8')).toContain('-----BEGIN OPENSSH PRIVATE KEY-----');
    expect(readFileSync(userData, 'utf8')).not.toContain('LAB-RENDER-PLACEHOLDER');
  });

  it.skipIf(process.getuid?.() !== 0)(
    'lab render refuses a --out folder another user made, with a symlink planted in it (S10)',
    async () => {
      const base = mkdtempSync(path.join(os.tmpdir(), 'lab-render-'));
      chmodSync(base, 0o1777);
      const target = path.join(mkdtempSync(path.join(os.tmpdir(), 'lab-etc-')), 'victim');
      mkdirSync(target, { mode: 0o700 });
      const out = path.join(base, 'lab-render');
      const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
      expect((await execa(nobody[0]!, [...nobody.slice(1), 'mkdir', '-m', '0777', out])).exitCode).toBe(0);
      expect(
        (await execa(nobody[0]!, [...nobody.slice(1), 'ln', '-s', target, path.join(out, 'coreos1')]))
          .exitCode,
      ).toBe(0);
      for (const extra of [[], ['--with-secrets']]) {
        const r = await cli(['render', '-f', 'Labfile.example.yaml', '--out', out, ...extra]);
        expect(r.exitCode).toBe(1);
        expect(r.stderr).toMatch(/refusing .*lab-render: .*owned by uid 65534/);
      }
      expect(readdirSync(target)).toEqual([]);
    },
  );

  it('usage mistakes exit 2 with the usage line', async () => {
    const r = await cli(['render', '-f', 'Labfile.example.yaml']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('--out DIR is required');
    const bad = await cli(['status', '--frob']);
    expect(bad.exitCode).toBe(2);
  });

  it.each([
    [['checkpoint'], /which\? lab checkpoint save\|restore\|list\|delete/],
    [['checkpoint', 'take', 'x'], /unknown checkpoint command "take"/],
    [['checkpoint', 'save'], /which checkpoint\? lab checkpoint save NAME/],
    [['checkpoint', 'save', 'Ex 3'], /checkpoint name "Ex 3": expected lowercase/],
    [['checkpoint', 'save', 'a', 'b'], /takes one name, not: b/],
    [['checkpoint', 'list', 'x'], /takes no name, not: x/],
    [['checkpoint', 'restore', '../x'], /checkpoint name "..\/x"/],
  ])('lab %j is a usage mistake: exit 2, before any Labfile or libvirt is read', async (argv, message) => {
    const r = await cli([...argv, '-f', '/nonexistent/Labfile.yaml']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('validate reports YAML syntax errors with positions', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-yaml-'));
    const f = path.join(dir, 'Labfile.yaml');
    writeFileSync(f, 'name: x\nnodes: [\n');
    const r = await cli(['validate', '-f', f]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`${f}:\\d+:\\d+: YAML: `));
  });
});

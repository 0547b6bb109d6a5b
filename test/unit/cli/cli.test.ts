import { execa } from 'execa';
import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
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
    for (const c of ['up', 'status', 'ssh', 'down', 'plan', 'validate', 'render', 'ssh-config'])
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
  });

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

// lab render renders the domains for the Labfile's accelerator (issue 19): a tcg lab gets
// type qemu and no host-passthrough, which libvirt refuses under TCG; --accel overrides.
import { execa } from 'execa';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.join(import.meta.dirname, '../../..');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'lab-render-accel-'));

/** `lab render` from source on a one-node Labfile with `accelerator` (none: the key left out). */
async function render(accelerator: string | undefined, args: string[] = []) {
  const dir = mkdtempSync(path.join(scratch, 'case-'));
  const labfile = path.join(dir, 'Labfile.yaml');
  writeFileSync(
    labfile,
    `name: accel\ntemplate: debian-12-lab\n${accelerator ? `accelerator: ${accelerator}\n` : ''}` +
      'network: { mode: bridge, bridge: br0, cidr: 10.9.0.0/24 }\nnodes:\n  - { name: a, ip: 10.9.0.2 }\n',
  );
  const out = path.join(dir, 'out');
  const r = await execa(
    'node',
    ['--import', 'tsx', path.join(root, 'cmd/lab.ts'), 'render', '-f', labfile, '--out', out, ...args],
    { reject: false, cwd: root, env: { LAB_STATE_DIR: path.join(dir, 'state'), LAB_AGENT: '0' } },
  );
  const xml = r.exitCode === 0 ? readFileSync(path.join(out, 'a', 'domain.xml'), 'utf8') : '';
  return { ...r, xml };
}

// Each case starts the CLI from source (tsx), a second or two apiece, more on a busy host.
describe('lab render and the Labfile accelerator', { timeout: 60_000 }, () => {
  it('accelerator: tcg renders a TCG domain (type qemu, no host-passthrough) and says so', async () => {
    const r = await render('tcg');
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.xml).toMatch(/<domain type="qemu"/);
    expect(r.xml).not.toContain('host-passthrough');
    expect(r.stdout).toContain('domains for TCG (type qemu) (accelerator: tcg)');
  });

  it('accelerator: auto renders for KVM, and the output says why and how to get TCG', async () => {
    const r = await render(undefined);
    expect(r.exitCode).toBe(0);
    expect(r.xml).toMatch(/<domain type="kvm"/);
    expect(r.xml).toContain('host-passthrough');
    expect(r.stdout).toContain(
      'domains for KVM (accelerator: auto, which lab up decides on the host; --accel tcg renders for TCG)',
    );
  });

  it('--accel overrides the Labfile either way', async () => {
    const [kvm, tcg] = await Promise.all([
      render('tcg', ['--accel', 'kvm']),
      render('kvm', ['--accel', 'tcg']),
    ]);
    expect(kvm.xml).toMatch(/<domain type="kvm"/);
    expect(kvm.stdout).toContain('domains for KVM (--accel kvm)');
    expect(tcg.xml).toMatch(/<domain type="qemu"/);
    expect(tcg.stdout).toContain('domains for TCG (type qemu) (--accel tcg)');
  });
});

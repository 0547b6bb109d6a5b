// Contract tests: what lab renders is valid for the programs that read it, checked by
// those programs' own validators (libvirt's RelaxNG schemas, cloud-init's JSON schema).
// Missing validators fail the suite: CI installs them (scripts/install-host-deps.sh).
import { execa } from 'execa';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const golden = path.join(import.meta.dirname, '../golden');
const schemaTool = path.join(import.meta.dirname, 'tools/cloud-init-schema.sh');
const files = (readdirSync(golden, { recursive: true }) as string[]).map((f) => path.join(golden, f)).sort();
const domains = files.filter((f) => /domain-(kvm|qemu)\.xml$/.test(f));
const networks = files.filter((f) => f.endsWith('network.xml'));
const userData = files.filter((f) => f.endsWith('/user-data'));
const rel = (f: string) => path.relative(golden, f);
const scratch = mkdtempSync(path.join(os.tmpdir(), 'lab-contract-'));

async function validateXml(file: string, kind: 'domain' | 'network') {
  return execa('virt-xml-validate', [file, kind], { reject: false });
}

describe('rendered libvirt XML passes virt-xml-validate', () => {
  it('has goldens to check', () => {
    expect(domains.length).toBeGreaterThanOrEqual(10);
    expect(networks.length).toBeGreaterThanOrEqual(1);
  });
  it.each(domains.map(rel))('%s', async (f) => {
    const r = await validateXml(path.join(golden, f), 'domain');
    expect(r.stderr + r.stdout).toContain('validates');
    expect(r.exitCode).toBe(0);
  });
  it.each(networks.map(rel))('%s', async (f) => {
    const r = await validateXml(path.join(golden, f), 'network');
    expect(r.exitCode, r.stderr).toBe(0);
  });
  it('the validator does fail on a broken domain (the check can fail)', async () => {
    const bad = path.join(scratch, 'bad.xml');
    writeFileSync(
      bad,
      "<domain type='qemu'><name>x</name><memory>1</memory><vcpu>one</vcpu><os><type>hvm</type></os></domain>\n",
    );
    const r = await validateXml(bad, 'domain');
    expect(r.exitCode).not.toBe(0);
  });
});

describe('rendered user-data passes cloud-init schema', () => {
  it.each(userData.map(rel))('%s', async (f) => {
    const r = await execa('bash', [schemaTool, path.join(golden, f)], { reject: false, timeout: 300_000 });
    expect(r.stdout, r.stderr).toContain('Valid cloud-config');
    expect(r.exitCode).toBe(0);
  });
  it('cloud-init schema does fail on an invalid config (the check can fail)', async () => {
    const bad = path.join(scratch, 'user-data');
    writeFileSync(bad, '#cloud-config\nssh_genkeytypes: []\nusers: 5\n');
    const r = await execa('bash', [schemaTool, bad], { reject: false, timeout: 300_000 });
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/schema errors/i);
  });
});

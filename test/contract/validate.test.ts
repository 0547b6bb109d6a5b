// Contract tests: what lab renders is valid for the programs that read it, checked by
// those programs' own validators (libvirt's RelaxNG schemas, cloud-init's JSON schema).
// A missing validator FAILS the suite with what to install: CI installs them
// (scripts/install-host-deps.sh); cloud-init is fetched by tools/cloud-init-schema.sh.
import { execa } from 'execa';
import { accessSync, constants, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, test } from 'vitest';
import { labSpec } from '../support/lab-spec.js';
import { renderDomainXml } from '../../lab/render/domain-xml.js';

const golden = path.join(import.meta.dirname, '../golden');
const schemaTool = path.join(import.meta.dirname, 'tools/cloud-init-schema.sh');
const files = (readdirSync(golden, { recursive: true }) as string[]).map((f) => path.join(golden, f)).sort();
const domains = files.filter((f) => /domain-(kvm|qemu)\.xml$/.test(f));
const networks = files.filter((f) => f.endsWith('network.xml'));
const userData = files.filter((f) => f.endsWith('/user-data'));
const rel = (f: string) => path.relative(golden, f);
const scratch = mkdtempSync(path.join(os.tmpdir(), 'lab-contract-'));

/** Fails (never skips) when a validator is missing, saying what to install. */
function requireTool(name: string, pkg: string): void {
  const found = (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    try {
      accessSync(path.join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (!found)
    throw new Error(
      `${name} is not on PATH: install ${pkg} (scripts/install-host-deps.sh does) to run the contract tests`,
    );
}

async function validateXml(file: string, kind: 'domain' | 'network') {
  requireTool('virt-xml-validate', 'libvirt-clients');
  requireTool('xmllint', 'libxml2-utils'); // virt-xml-validate is a wrapper around it
  return execa('virt-xml-validate', [file, kind], { reject: false, timeout: 30_000 });
}

// The first run downloads and unpacks cloud-init (15-70 s); later runs take ~2 s each.
const CLOUD_INIT_TIMEOUT_MS = 300_000;

async function cloudInitSchema(file: string) {
  // The wrapper prints its own reason (no apt-get, download failed) and exits 127.
  const r = await execa('bash', [schemaTool, file], { reject: false, timeout: CLOUD_INIT_TIMEOUT_MS });
  if (r.exitCode === 127 || (r.failed && r.exitCode === undefined))
    throw new Error(`cloud-init schema could not run: ${r.stderr || r.message}`);
  return r;
}

/** A domain rendered here rather than in the goldens: the fw_cfg (Ignition) and BIOS paths. */
function renderExtra(
  template: string,
  net: string,
  name: string,
  paths: Parameters<typeof renderDomainXml>[0]['paths'],
) {
  const lab = labSpec({ name: 'x', template, network: net, nodes: '  - { name: n1, ip: 10.7.0.2 }\n' });
  const file = path.join(scratch, name);
  writeFileSync(file, renderDomainXml({ lab, node: lab.nodes[0]!, paths, type: 'qemu', configHash: 'h' }));
  return file;
}
const extras = [
  renderExtra('flatcar-stable', '{ mode: bridge, bridge: br0, cidr: 10.7.0.0/24 }', 'fwcfg-bios.xml', {
    disk: '/var/lib/lab/x/disks/n1.qcow2',
    fwcfg: '/var/lib/lab/x/disks/n1.ign',
    console: '/var/lib/lab/x/console/n1.log',
  }),
  renderExtra('debian-12-lab', '{ mode: managed, cidr: 10.7.0.0/24 }', 'managed-noseed.xml', {
    disk: '/var/lib/lab/x/disks/n1.qcow2',
    console: '/var/lib/lab/x/console/n1.log',
    kernel: '/k/vmlinuz',
  }),
];

describe('rendered libvirt XML passes virt-xml-validate', () => {
  it('has goldens to check', () => {
    expect(domains.length).toBeGreaterThanOrEqual(10);
    expect(networks.length).toBeGreaterThanOrEqual(1);
  });
  it.each(domains.map(rel))('%s', async (f) => {
    const r = await validateXml(path.join(golden, f), 'domain');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr + r.stdout).toContain('validates');
  });
  it.each(extras.map((f) => path.basename(f)))('rendered here: %s', async (f) => {
    const r = await validateXml(path.join(scratch, f), 'domain');
    expect(r.exitCode, r.stderr).toBe(0);
  });
  it.each(networks.map(rel))('%s', async (f) => {
    const r = await validateXml(path.join(golden, f), 'network');
    expect(r.exitCode, r.stderr).toBe(0);
  });
  it.each([
    ['a schema error (vcpu "one")', (x: string) => x.replace(/<vcpu>\d+<\/vcpu>/, '<vcpu>one</vcpu>')],
    ['an unknown element', (x: string) => x.replace('<devices>', '<devices>\n    <bogus/>')],
    ['malformed XML', (x: string) => x.replace('</devices>', '')],
  ])('fails a golden domain with %s (the check can fail)', async (_what, breakIt) => {
    const text = readFileSync(domains[0]!, 'utf8');
    const broken = breakIt(text);
    expect(broken).not.toBe(text);
    const bad = path.join(scratch, `bad-${domains.indexOf(domains[0]!)}-${broken.length}.xml`);
    writeFileSync(bad, broken);
    const r = await validateXml(bad, 'domain');
    expect(r.exitCode).not.toBe(0);
  });
});

describe('rendered user-data passes cloud-init schema', () => {
  const opts = { timeout: CLOUD_INIT_TIMEOUT_MS };
  // ~2 s of Python start-up each: run them side by side.
  test.concurrent.for(userData.map(rel))('%s', opts, async (f, { expect }) => {
    const r = await cloudInitSchema(path.join(golden, f));
    expect(r.stdout, r.stderr).toContain('Valid cloud-config');
    expect(r.exitCode).toBe(0);
  });
  test.concurrent('fails an invalid config (the check can fail)', opts, async ({ expect }) => {
    const bad = path.join(scratch, 'user-data');
    writeFileSync(bad, '#cloud-config\nssh_genkeytypes: []\nusers: 5\n');
    const r = await cloudInitSchema(bad);
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/schema errors/i);
  });
});

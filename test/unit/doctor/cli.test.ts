// `lab doctor` through the built CLI, as a user runs it (node dist/cmd/lab.js doctor): a
// host missing qemu-img is told `qemu-utils`; a libvirtd that is down or hung is said
// within the probe's 2 s; --json keeps to schemas/cli/doctor.json; a Labfile's missing
// bridge is named. libvirt is never the host's: every run points at a socket of its own.
import { Ajv2020 } from 'ajv/dist/2020.js';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakePath } from './fake-path.js';

const root = path.join(import.meta.dirname, '../../..');
const LAB = path.join(root, 'dist/cmd/lab.js');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'lab-doctor-cli-'));
// The name ends in libvirt-sock: Virsh's retry takes a refusal there for a restarting
// libvirtd and would ask again for seconds; doctor must not.
const NO_LIBVIRT = `qemu:///system?socket=${path.join(scratch, 'gone', 'libvirt-sock')}`;

/** Newest mtime of the TypeScript sources the built CLI comes from. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (/\.tsx?$/.test(e.name)) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** One run of the built CLI in a folder of its own, with its own state, cache and libvirt URI. */
async function doctor(args: string[], opts: { path?: string; uri?: string; cwd?: string } = {}) {
  const home = mkdtempSync(path.join(scratch, 'run-'));
  const started = performance.now();
  const r = await execa(process.execPath, [LAB, 'doctor', ...args], {
    reject: false,
    stdin: 'ignore',
    cwd: opts.cwd ?? home,
    timeout: 60_000,
    extendEnv: false,
    env: {
      PATH: opts.path ?? process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      LAB_STATE_DIR: path.join(home, 'state'),
      LAB_CACHE_DIR: path.join(home, 'cache', 'images'),
      LIBVIRT_DEFAULT_URI: opts.uri ?? NO_LIBVIRT,
      NO_COLOR: '1',
    },
  });
  return { ...r, stdout: String(r.stdout), stderr: String(r.stderr), ms: performance.now() - started };
}

describe('lab doctor, through the built CLI', { timeout: 120_000 }, () => {
  beforeAll(async () => {
    // The built CLI must be the code under test: rebuild it when a source is newer.
    const built = existsSync(LAB) ? statSync(LAB).mtimeMs : 0;
    if (built < Math.max(newestSource(path.join(root, 'lab')), newestSource(path.join(root, 'cmd'))))
      await execa('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdin: 'ignore', reject: false });
    expect(existsSync(LAB), 'dist/cmd/lab.js is missing: npm run build').toBe(true);
  }, 120_000);

  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('names qemu-utils on a host missing qemu-img, and exits 1', async () => {
    const r = await doctor([], { path: fakePath(scratch, ['qemu-img']) });
    expect(r.exitCode, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(
      /^FAIL {2}qemu-img: qemu-img not found on PATH\n {6}fix: apt-get install qemu-utils$/m,
    );
    // Every other program was there: only qemu-img is missing.
    for (const p of ['qemu-system-x86_64', 'virsh', 'ISO tool', 'gpgv', 'xz', 'bzip2'])
      expect(r.stdout).toMatch(new RegExp(`^ok {4}${p}: /`, 'm'));
    expect(r.stderr).toBe('');
  });

  it('says at once that libvirt is not reachable when its socket is gone: one call, no retry', async () => {
    const r = await doctor(['--debug']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toContain(`FAIL  libvirt at ${NO_LIBVIRT}: not reachable: Failed to connect socket to`);
    expect(r.stdout).toContain('hint: start libvirtd');
    // --debug prints every command with its time: one virsh call, answered at once.
    const ms = (re: RegExp) =>
      r.stderr
        .split('\n')
        .filter((l) => re.test(l))
        .map((l) => Number(/\((\d+) ms\)$/.exec(l)?.[1]));
    const virsh = ms(/^debug: virsh /);
    expect(virsh).toHaveLength(1);
    expect(virsh[0]).toBeLessThan(3000);
    // The whole run takes no longer than that plus the KVM test guest, which runs beside it
    // (a host where KVM works takes seconds to start one: 3.9 s measured here).
    const kvm = ms(/^debug: qemu-system-x86_64 /).reduce((a, b) => Math.max(a, b), 0);
    expect(r.ms).toBeLessThan(3000 + kvm);
  });

  it('gives up on a libvirt that accepts and never answers after the 2 s probe', async () => {
    const socket = path.join(mkdtempSync(path.join(scratch, 'hung-')), 'libvirt-sock');
    const server = net.createServer((c) => c.on('error', () => undefined).resume());
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    try {
      const r = await doctor(['--uri', `qemu:///system?socket=${socket}`]);
      expect(r.exitCode, r.stdout + r.stderr).toBe(1);
      expect(r.stdout).toContain('not reachable: no answer within 2 s');
      expect(r.ms).toBeGreaterThan(2000);
      expect(r.ms).toBeLessThan(4500);
    } finally {
      server.close();
    }
  });

  it('--json is one document that keeps to schemas/cli/doctor.json', async () => {
    const schema = JSON.parse(readFileSync(path.join(root, 'schemas/cli/doctor.json'), 'utf8')) as object;
    const validate = new Ajv2020({ allErrors: true, strict: true }).compile(schema);
    const labfile = path.join(root, 'Labfile.example.yaml');
    for (const args of [['--json'], ['--json', '-f', labfile]]) {
      const r = await doctor(args, { path: fakePath(scratch, ['qemu-img']) });
      const doc = JSON.parse(r.stdout) as { ok: boolean; checks: { id: string; status: string }[] };
      expect(validate(doc), JSON.stringify(validate.errors, null, 2)).toBe(true);
      expect(r.exitCode).toBe(doc.ok ? 0 : 1);
      expect(doc.checks.find((c) => c.id === 'program.qemu-img')).toMatchObject({
        status: 'fail',
        package: 'qemu-utils',
      });
      expect(doc.checks.map((c) => c.id)).toEqual([
        'labfile',
        'program.qemu-img',
        'program.qemu-system',
        'program.virsh',
        'program.iso-tool',
        'program.gpgv',
        'program.xz',
        'program.bzip2',
        'program.mmdebstrap',
        'program.dnsmasq',
        'program.ip',
        'libvirt',
        'kvm',
        'bridge',
        'memory',
        'disk',
      ]);
    }
    // The schema is no rubber stamp: a check it does not know of, or ok beside a failure, is refused.
    expect(validate({ ok: true, checks: [{ id: 'x', what: 'x', status: 'fail', detail: '' }] })).toBe(false);
    expect(
      validate({ ok: false, checks: [{ id: 'x', what: 'x', status: 'ok', detail: '', extra: 1 }] }),
    ).toBe(false);
  });

  it('-f with a bridge Labfile whose bridge does not exist names the bridge', async () => {
    const bridge = 'labdocnobr0';
    expect(existsSync(path.join('/sys/class/net', bridge))).toBe(false);
    const dir = mkdtempSync(path.join(scratch, 'labfile-'));
    const labfile = path.join(dir, 'Labfile.yaml');
    writeFileSync(
      labfile,
      `name: doc-bridge\ntemplate: debian-12-lab\nnetwork: { mode: bridge, bridge: ${bridge}, cidr: 10.9.0.0/24 }\nnodes:\n  - { name: a, ip: 10.9.0.2 }\n`,
    );
    const r = await doctor(['-f', labfile]);
    expect(r.exitCode, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toContain(`FAIL  bridge ${bridge}: bridge ${bridge} does not exist on this host`);
    expect(r.stdout).toContain(`ok    Labfile: ${labfile}: lab doc-bridge, 1 node(s), bridge network`);
    // Found by itself in the current folder, too.
    const here = await doctor([], { cwd: dir });
    expect(here.stdout).toContain(`FAIL  bridge ${bridge}: bridge ${bridge} does not exist on this host`);
  });

  it('skips the Labfile checks without one, and says so', async () => {
    const r = await doctor([]);
    expect(r.stdout).toMatch(
      /^skip {2}Labfile: no Labfile\.yaml in .*: the checks of a Labfile are skipped$/m,
    );
    for (const what of ['bridge', 'memory', 'disk'])
      expect(r.stdout).toContain(`skip  ${what}: no Labfile to check it for`);
  });

  it('--lab NAME without a recorded state warns and skips its Labfile checks; a bad name is exit 2', async () => {
    const r = await doctor(['--lab', 'nosuchlab']);
    expect(r.stdout).toMatch(/^warn {2}Labfile: no recorded state for lab nosuchlab \(.*\): the checks/m);
    const bad = await doctor(['--lab', '../etc']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('not a lab name');
    const both = await doctor(['--lab', 'x', '-f', 'Labfile.yaml']);
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toContain('give either -f FILE or --lab NAME, not both');
  });

  it("runs its help's examples as written", async () => {
    const help = (await doctor(['--help'])).stdout;
    expect(help).toMatch(/^Usage: lab doctor \[-f Labfile\.yaml \| --lab NAME\] \[--uri URI\] \[--json\]$/m);
    const examples = help
      .slice(help.indexOf('Examples:'))
      .split('\n')
      .slice(1)
      .map((l) => l.trim())
      .filter(Boolean);
    expect(examples.length).toBeGreaterThanOrEqual(3);
    for (const example of examples) {
      const [lab, command, ...args] = example.split(' ');
      expect([lab, command]).toEqual(['lab', 'doctor']);
      const r = await doctor(args, { cwd: root });
      // 1: this host's libvirt URI is the test's missing socket.
      expect(r.exitCode, `${example}\n${r.stdout}${r.stderr}`).toBe(1);
      expect(r.stderr).toBe('');
    }
  });
});

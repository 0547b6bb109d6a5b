// The CoreOS provisioning path, executed by upstream code: a lab on debian-12-ignition,
// whose first boot is done by Ignition 2.14 in the initramfs from QEMU fw_cfg
// (opt/com.coreos/config, platform qemu), as on Fedora CoreOS. No cloud-init on the image.
// Read in the guest: Ignition's own journal lines, the files it wrote, the user and keys
// it made; then an in-guest reboot runs no Ignition stage.
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  eventually,
  FULL,
  inventory,
  lab,
  pinnedHostKeys,
  statusJson,
  virsh,
  writeLabfile,
} from './helpers.js';

const NAME = 'e2eign';
// CI boots two members (the path is the same per node); the full suite the issue's three.
const NODES = FULL ? ['i1', 'i2', 'i3'] : ['i1', 'i2'];
const labfileText = (motd: string) => `name: ${NAME}
template: debian-12-ignition
network: { mode: managed, cidr: 10.86.0.0/24 }
defaults: { memory: 768MiB, disk: 4GiB }
services: [etcd, docker]
nodes:
${NODES.map(
  (n, i) => `  - name: ${n}
    ip: 10.86.0.${11 + i}
    files:
      - { path: /etc/lab-motd, mode: '0640', content: "${motd} ${n}\\n" }
`,
).join('')}`;
const file = writeLabfile(labfileText('written by Ignition on'));
const run = (node: string, ...cmd: string[]) => lab(['ssh', node, '-f', file, '--', ...cmd]);
const stateDir = path.join(process.env.LAB_STATE_DIR ?? '/var/lib/lab', NAME);

describe('a lab on debian-12-ignition: provisioned by upstream Ignition', () => {
  afterAll(async () => {
    await lab(['down', '-f', file]);
  });

  it('lab validate refuses a Labfile file Ignition would refuse, before anything boots', async () => {
    const bad = writeLabfile(labfileText('x').replace('path: /etc/lab-motd', 'path: /etc/hostname'));
    const before = await inventory(NAME);
    const v = await lab(['validate', '-f', bad]);
    expect(v.code).toBe(2);
    expect(v.stderr).toContain(`${bad}:10:`);
    expect(v.stderr).toContain(
      "file /etc/hostname: lab's Ignition config for template debian-12-ignition already writes this path",
    );
    const up = await lab(['up', '-f', bad]);
    expect(up.code).toBe(2);
    expect(await inventory(NAME)).toEqual(before);
  });

  it(`lab up: ${NODES.length} healthy etcd members and docker, each node's identity its own`, async () => {
    const r = await lab(['up', '-f', file]);
    expect(r.code, r.stderr).toBe(0);
    const s = await statusJson(file);
    expect(s.nodes.map((n) => n.name)).toEqual(NODES);
    for (const n of s.nodes) {
      expect(n.state).toBe('running');
      expect(['leader', 'follower']).toContain(n.etcd?.state);
      expect(n.docker?.state).toBe('up');
    }
    expect(s.cluster.etcdMembers).toBe(NODES.length);
    expect(s.cluster.quorum).toBe(true);
    expect(s.cluster.duplicateMachineIds).toEqual([]);
    // In the guest: machine-id (lab's, from the SMBIOS UUID), the served host key (the one
    // lab pinned before the first boot), no cloud-init anywhere on the image.
    const pinned = pinnedHostKeys(NAME);
    const ids = new Set<string>();
    for (const n of s.nodes) {
      const g = await run(
        n.name,
        'sh',
        '-c',
        "cat /etc/machine-id; cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub; hostname; command -v cloud-init || echo no-cloud-init; dpkg-query -W -f='${Status}' cloud-init 2>&1 | tail -1",
      );
      expect(g.code, g.stderr).toBe(0);
      const [machine, hostKey, hostname, cloudInit, pkg] = g.stdout.trim().split('\n');
      expect(machine).toBe(n.machineId);
      expect(hostKey).toBe(pinned.get(n.name));
      expect(hostname).toBe(n.name);
      expect(cloudInit).toBe('no-cloud-init');
      expect(pkg).toMatch(/no packages found matching cloud-init/);
      ids.add(machine!);
    }
    expect(ids.size).toBe(NODES.length);
  });

  it("Ignition did the first boot: its journal shows the qemu platform's config and the files stage; the Labfile's file is there with its mode", async () => {
    for (const n of NODES) {
      const j = await run(n, 'sudo', '-n', 'journalctl', '-b', '-o', 'cat', '-t', 'ignition', '--no-pager');
      expect(j.code, j.stderr).toBe(0);
      process.stderr.write(`ignition journal of ${n}:\n${j.stdout}\n`);
      expect(j.stdout).toMatch(/^Ignition Debian 2\.14\.0/m);
      // The qemu platform's provider: fw_cfg's module loaded, the platform's config folder.
      expect(j.stdout).toMatch(/loading QEMU firmware config module/);
      expect(j.stdout).toMatch(/base\.platform\.d\/qemu/);
      // The config it parsed is, byte for byte, the file lab gave QEMU as fw_cfg's entry.
      const ign = readFileSync(path.join(stateDir, 'disks', `${n}.ign`));
      expect(j.stdout).toContain(
        `parsing config with SHA512: ${createHash('sha512').update(ign).digest('hex')}`,
      );
      expect(j.stdout).toMatch(/Stage: files/);
      expect(j.stdout).toMatch(/writing file "\/sysroot\/etc\/lab-motd"/);
      expect(j.stdout).toMatch(/files: files passed/);
      const f = await run(n, 'sudo', '-n', 'stat', '-c', '%a %U:%G', '/etc/lab-motd');
      expect(f.stdout.trim()).toBe('640 root:root');
      const c = await run(n, 'sudo', '-n', 'cat', '/etc/lab-motd');
      expect(c.stdout).toBe(`written by Ignition on ${n}\n`);
      // The user Ignition made, in the groups the probes need; its key where sshd reads it.
      const u = await run(n, 'id', '-nG');
      expect(u.stdout.trim().split(' ')).toEqual(expect.arrayContaining(['sudo', 'docker']));
      const k = await run(n, 'sh', '-c', 'ls ~/.ssh/authorized_keys.d');
      expect(k.stdout.trim()).toBe('ignition');
    }
  });

  it('lab logs shows the console log lab keeps: the initramfs running Ignition, no escape sequence', async () => {
    const r = await lab(['logs', NODES[0]!, '-f', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Finished .*Ignition \(files\)/);
    expect(r.stdout).toMatch(new RegExp(`^${NODES[0]} login:`, 'm'));
    expect(r.stdout).not.toContain('\u001b');
    expect(r.stdout).not.toContain('\r');
    const raw = await lab(['logs', NODES[0]!, '--raw', '--lines', '5', '-f', file]);
    expect(raw.stdout.split('\n').length).toBeLessThanOrEqual(6);
  });

  it('etcdctl put on one node, get on another; docker runs a container', async () => {
    const first = NODES[0]!;
    const last = NODES.at(-1)!;
    const put = await run(first, 'etcdctl', 'put', '/message', 'hello-ignition');
    expect(put.code, put.stderr).toBe(0);
    const get = await run(last, 'etcdctl', 'get', '--print-value-only', '/message');
    expect(get.stdout.trim()).toBe('hello-ignition');
    const d = await run(
      last,
      'sh',
      '-c',
      'docker import /usr/share/lab/busybox-rootfs.tar lab/busybox:local >/dev/null && docker run --rm lab/busybox:local echo from-docker',
    );
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout.trim()).toBe('from-docker');
  });

  it('an in-guest reboot runs no Ignition stage: the disk had its first boot', async () => {
    const n = NODES[0]!;
    const boot = async () => (await run(n, 'cat', '/proc/sys/kernel/random/boot_id')).stdout.trim();
    const before = await boot();
    // libvirt's domain id is per QEMU process: the same id after is the same QEMU.
    const domid = (await virsh(['domid', `${NAME}-${n}`])).trim();
    await run(n, 'sudo', '-n', 'systemctl', 'reboot');
    const after = await eventually(
      async () => {
        const b = await boot();
        return b && b !== before ? b : undefined;
      },
      300_000,
      3000,
    );
    expect(after).not.toBe(before);
    expect((await virsh(['domid', `${NAME}-${n}`])).trim()).toBe(domid);
    // The same QEMU, the same kernel command line (ignition.firstboot on it)...
    const cmdline = await run(n, 'cat', '/proc/cmdline');
    expect(cmdline.stdout).toContain('ignition.firstboot');
    // ...and no Ignition stage ran: lab-ignition-once saw the stamp, every stage skipped.
    const j = await run(n, 'sudo', '-n', 'journalctl', '-b', '-o', 'cat', '--no-pager', '-t', 'ignition');
    expect(j.code).toBe(0);
    expect(j.stdout.trim()).toBe('');
    const once = await run(
      n,
      'sudo',
      '-n',
      'journalctl',
      '-b',
      '-o',
      'cat',
      '--no-pager',
      '-u',
      'lab-ignition-once.service',
      '-u',
      'ignition-files.service',
    );
    expect(once.stdout).toMatch(/had its first boot: Ignition does not run/);
    expect(once.stdout).not.toMatch(/Finished .*Ignition \(files\)/);
    // The node is whole again: its data, its member.
    const get = await eventually(
      async () => {
        const g = await run(n, 'etcdctl', 'get', '--print-value-only', '/message');
        return g.code === 0 && g.stdout.trim() ? g.stdout.trim() : undefined;
      },
      180_000,
      3000,
    );
    expect(get).toBe('hello-ignition');
  });

  it('a changed first-boot config is a replace (Ignition runs once), as lab plan says', async () => {
    const changed = path.join(path.dirname(file), 'Labfile.yaml');
    const text = readFileSync(changed, 'utf8');
    writeFileSync(
      changed,
      text.replace(`content: "written by Ignition on ${NODES[0]}`, `content: "changed on ${NODES[0]}`),
    );
    try {
      const p = await lab(['plan', '-f', file]);
      expect(p.code, p.stderr).toBe(0);
      expect(p.stdout).toMatch(new RegExp(`replace[^\\n]*${NODES[0]}|${NODES[0]}[^\\n]*replace`));
      for (const other of NODES.slice(1))
        expect(p.stdout).not.toMatch(new RegExp(`replace[^\\n]*\\b${other}\\b`));
    } finally {
      writeFileSync(changed, text);
    }
  });
});

// The walkthrough's example on this template, as a user runs it: three members, the fleet
// units scheduled. Heavier than the CI budget allows beside the lab above: the full suite.
describe.runIf(FULL)('examples/debian-ignition.yaml, the walkthrough on debian-12-ignition', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-e2e-ex-'));
  const example = path.join(dir, 'Labfile.yaml');
  copyFileSync(path.join(import.meta.dirname, '../../examples/debian-ignition.yaml'), example);
  afterAll(async () => {
    await lab(['down', '-f', example]);
  });

  it('comes up healthy, its units placed as fleet would, etcd written and read across nodes', async () => {
    const up = await lab(['up', '-f', example]);
    expect(up.code, up.stderr).toBe(0);
    const s = await statusJson(example);
    expect(s.cluster.etcdMembers).toBe(3);
    expect(s.cluster.quorum).toBe(true);
    expect(s.cluster.duplicateMachineIds).toEqual([]);
    for (const n of s.nodes) expect(n.docker?.state).toBe('up');
    const units = await lab(['units', '--json', '-f', example]);
    expect(units.code, units.stderr).toBe(0);
    const rows = JSON.parse(units.stdout) as { unit: string; node: string | null; active: string }[];
    const apache = rows.filter((u) => u.unit.startsWith('apache.') && u.node);
    expect(apache.map((u) => u.active)).toEqual(['active', 'active']);
    expect(new Set(apache.map((u) => u.node)).size).toBe(2);
    expect(rows.filter((u) => u.unit === 'hello.service' && u.node).map((u) => u.active)).toEqual(['active']);
    const put = await lab([
      'ssh',
      'coreos1',
      '-f',
      example,
      '--',
      'etcdctl',
      'put',
      '/message',
      'walkthrough',
    ]);
    expect(put.code, put.stderr).toBe(0);
    const get = await lab([
      'ssh',
      'coreos3',
      '-f',
      example,
      '--',
      'etcdctl',
      'get',
      '--print-value-only',
      '/message',
    ]);
    expect(get.stdout.trim()).toBe('walkthrough');
    const motd = await lab(['ssh', 'coreos3', '-f', example, '--', 'cat', '/etc/motd']);
    expect(motd.stdout).toBe('Welcome to coreos3, a lab node.\n');
  });
});

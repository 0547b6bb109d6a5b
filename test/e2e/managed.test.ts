// A lab-managed libvirt network: lab creates it (isolated, DHCP reservation per MAC
// as a fallback to the static config), boots a node on it, and removes it on down.
// Its etcd serves the v2 API too: the walkthrough's etcdctl set/get work as typed.
import { execa } from 'execa';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inventory, lab, statusJson, virsh, writeLabfile } from './helpers.js';

const NAME = 'e2em';
const file = writeLabfile(`name: ${NAME}
template: debian-12-lab
network: { mode: managed, cidr: 10.78.0.0/24 }
tcg: { tbCache: 128MiB } # half of lab's default: read back from QEMU's command line
defaults: { memory: 768MiB, disk: 4GiB }
services: [etcd, docker]
etcd: { api: v2 } # the walkthrough's etcdctl set/get (and fleet) speak the v2 API
nodes:
  - { name: solo, ip: 10.78.0.10 }
`);

describe('a managed-network lab', () => {
  afterAll(async () => {
    await lab(['down', '-f', file]);
  });

  it('refuses a CIDR that collides with an existing route before creating anything', async () => {
    const clash = writeLabfile(`name: e2eclash
template: debian-12-lab
network: { mode: managed, cidr: 10.77.0.0/24 }
nodes: [{ name: x, ip: 10.77.0.99 }]
`);
    const before = await inventory('e2eclash');
    const r = await lab(['up', '-f', clash]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/collides with the host route 10\.77\.0\.0\/24/);
    expect(await inventory('e2eclash')).toEqual(before);
  });

  it('lab up creates the network and a healthy node; lab down keeps the network while a foreign domain uses it, then removes both', async () => {
    const before = await inventory(NAME);
    const r = await lab(['up', '-f', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(await virsh(['net-list', '--name'])).toContain(`lab-${NAME}`);
    const s = await statusJson(file);
    expect(s.nodes[0]!.etcd?.state).toBe('leader');
    // The Labfile's TCG translation cache reached QEMU itself (its command line, as ps
    // shows it); what the guest costs the host is printed.
    const qemu = String((await execa('ps', ['-eo', 'rss=,args='])).stdout)
      .split('\n')
      .find((l) => l.includes(`guest=${NAME}-solo`));
    expect(qemu).toMatch(/-accel tcg,tb-size=128(\s|,)/);
    const rssMiB = Math.round(Number(qemu!.trim().split(/\s+/)[0]) / 1024);
    process.stderr.write(
      `QEMU RSS of ${NAME}-solo (768 MiB guest, tcg.tbCache 128MiB), healthy: ${rssMiB} MiB\n`,
    );
    expect(s.nodes[0]!.docker?.state).toBe('up');
    // The walkthrough, typed in a login shell on the node: etcdctl set, then get.
    const set = await lab(['ssh', 'solo', '-f', file, '--', 'bash', '-lc', 'etcdctl set /message Hello']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout.trim()).toBe('Hello');
    const get = await lab(['ssh', 'solo', '-f', file, '--', 'bash', '-lc', 'etcdctl get /message']);
    expect(get.stdout.trim()).toBe('Hello');
    // A domain that is not the lab's, plugged into the lab's network: down keeps the
    // network (and says why) rather than pull it from under someone else.
    const foreign = path.join(path.dirname(file), 'guest.xml');
    writeFileSync(
      foreign,
      `<domain type='qemu'><name>not-${NAME}</name><memory unit='MiB'>32</memory><os><type arch='x86_64'>hvm</type></os><devices><interface type='network'><source network='lab-${NAME}'/></interface></devices></domain>`,
    );
    await virsh(['define', foreign]);
    await virsh(['start', `not-${NAME}`]);
    try {
      const kept = await lab(['down', '-f', file]);
      expect(kept.code).toBe(0);
      expect(kept.stderr).toMatch(
        new RegExp(`network lab-${NAME} is kept: 1 interface\\(s\\) of domains outside this lab`),
      );
      expect(await virsh(['net-list', '--name'])).toContain(`lab-${NAME}`);
      expect(await virsh(['domstate', `not-${NAME}`])).toMatch(/running/);
    } finally {
      await virsh(['destroy', `not-${NAME}`]);
      await virsh(['undefine', `not-${NAME}`]);
    }
    const down = await lab(['down', '-f', file]);
    expect(down.stdout).toContain(`network lab-${NAME}`);
    expect(await inventory(NAME)).toEqual(before);
  });
});

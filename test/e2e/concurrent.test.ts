// R13: different labs run concurrently on one host, on real libvirt with real TCG guests.
// - Two labs with lab-managed networks (and the same node name) come up at the same
//   moment, five times in a row (two in CI; five in `npm run test:e2e:full`): both healthy every time, with disjoint domains, networks,
//   bridges, subnets, MACs and UUIDs; one is taken down while the other runs (it stays
//   healthy), or both at once; nothing is left after each cycle.
// - Two labs that want overlapping subnets, both past preflight and let go at the same
//   moment (a test-only pause point before the network step): the network check and create
//   are one step under a host-wide lock, so exactly one gets the subnet and the other is
//   refused, naming the collision, and leaves nothing.
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  eventually,
  inventory,
  lab,
  rounds,
  statusJson,
  virsh,
  writeLabfile,
  type LabRun,
} from './helpers.js';

const labfile = (name: string, cidr: string, ip: string) =>
  writeLabfile(`name: ${name}
template: debian-12-lab
network: { mode: managed, cidr: ${cidr} }
defaults: { cpus: 1, memory: 640MiB, disk: 4GiB }
services: []
nodes:
  - { name: n1, ip: ${ip} }
`);

const A = { name: 'e2eca', file: labfile('e2eca', '10.82.0.0/24', '10.82.0.11') };
const B = { name: 'e2ecb', file: labfile('e2ecb', '10.83.0.0/24', '10.83.0.11') };

/** What libvirt says one lab's network and node are. */
async function footprint(name: string) {
  const net = await virsh(['net-dumpxml', `lab-${name}`]);
  const dom = await virsh(['dumpxml', `${name}-n1`]);
  return {
    domain: `${name}-n1`,
    network: `lab-${name}`,
    bridge: /<bridge name='([^']+)'/.exec(net)![1]!,
    subnet: /<ip address='([^']+)'/.exec(net)![1]!,
    mac: /<mac address='([^']+)'/.exec(dom)![1]!,
    uuid: /<uuid>([^<]+)<\/uuid>/.exec(dom)![1]!,
    dev: /<interface type='network'>[\s\S]*?<source network='([^']+)'/.exec(dom)?.[1],
  };
}

async function healthy(l: typeof A) {
  const s = await statusJson(l.file);
  expect(s.nodes.map((n) => n.state)).toEqual(['running']);
  const r = await lab(['ssh', 'n1', '-f', l.file, '--', 'cat', '/etc/machine-id']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

describe('two labs at once on one host', () => {
  const baseline: Record<string, Awaited<ReturnType<typeof inventory>>> = {};
  const report: string[] = [];

  afterAll(async () => {
    for (const name of [A.name, B.name, 'e2ecc', 'e2ecd']) await lab(['down', '--lab', name]);
    process.stderr.write(`\nCONCURRENT: ${report.join('; ')}\n`);
  });

  // Five rounds in the full suite (npm run test:e2e:full), two in CI: one of each kind of down.
  const ROUNDS = rounds(2, 5);
  it(
    `up A and up B together, ${ROUNDS} times: both healthy, nothing shared; down A while B runs, or both at once; nothing left`,
    { timeout: ROUNDS * 6 * 60_000 },
    async () => {
      baseline.a = await inventory(A.name);
      baseline.b = await inventory(B.name);
      for (let i = 1; i <= ROUNDS; i++) {
        const t0 = performance.now();
        const [ra, rb] = await Promise.all([lab(['up', '-f', A.file]), lab(['up', '-f', B.file])]);
        expect(ra.code, `cycle ${i} A: ${ra.stderr}`).toBe(0);
        expect(rb.code, `cycle ${i} B: ${rb.stderr}`).toBe(0);
        expect(ra.stdout).toContain('lab is healthy');
        expect(rb.stdout).toContain('lab is healthy');
        const [fa, fb] = [await footprint(A.name), await footprint(B.name)];
        expect(fa.dev).toBe(fa.network);
        expect(fb.dev).toBe(fb.network);
        for (const k of ['domain', 'network', 'bridge', 'subnet', 'mac', 'uuid'] as const)
          expect(fa[k], `${k} cycle ${i}`).not.toBe(fb[k]);
        const [ma, mb] = [await healthy(A), await healthy(B)];
        expect(ma).not.toBe(mb);
        if (i % 2 === 1) {
          // Down A while B runs: B is untouched and still answers.
          const d = await lab(['down', '-f', A.file]);
          expect(d.code, d.stderr).toBe(0);
          expect(await footprint(B.name)).toEqual(fb);
          expect(await healthy(B)).toBe(mb);
          expect((await lab(['down', '-f', B.file])).code).toBe(0);
        } else {
          const [da, db] = await Promise.all([lab(['down', '-f', A.file]), lab(['down', '-f', B.file])]);
          expect(da.code, da.stderr).toBe(0);
          expect(db.code, db.stderr).toBe(0);
        }
        expect(await inventory(A.name)).toEqual(baseline.a);
        expect(await inventory(B.name)).toEqual(baseline.b);
        report.push(
          `cycle ${i}: up ${(ra.ms / 1000).toFixed(1)}/${(rb.ms / 1000).toFixed(1)} s, all ${((performance.now() - t0) / 1000).toFixed(1)} s`,
        );
      }
    },
  );

  const RACES = rounds(2, 3);
  it(
    `two labs that want overlapping subnets, started together, ${RACES} times: exactly one gets it, the other is refused and leaves nothing`,
    { timeout: RACES * 4 * 60_000 },
    async () => {
      const C = { name: 'e2ecc', file: labfile('e2ecc', '10.84.0.0/24', '10.84.0.11') };
      const D = { name: 'e2ecd', file: labfile('e2ecd', '10.84.0.0/25', '10.84.0.12') };
      const before = { c: await inventory(C.name), d: await inventory(D.name) };
      const winners: string[] = [];
      for (let i = 1; i <= RACES; i++) {
        // Both pass preflight (no network exists yet) and wait at the point before the
        // network step (a test-only pause point); then both are let go at once.
        const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-e2e-pause-'));
        const env = { LAB_PAUSE: 'before-network', LAB_PAUSE_DIR: dir };
        const both = Promise.all([
          lab(['up', '-f', C.file, '--no-wait'], { env }),
          lab(['up', '-f', D.file, '--no-wait'], { env }),
        ]);
        await eventually(
          () =>
            Promise.resolve(
              readdirSync(dir).filter((f) => f.startsWith('before-network.')).length === 2 || undefined,
            ),
          120_000,
          100,
        );
        writeFileSync(path.join(dir, 'go'), '');
        const [rc, rd] = await both;
        expect(rc.stderr).toContain('pausepoint before-network');
        expect(rd.stderr).toContain('pausepoint before-network');
        const runs: [typeof C, LabRun][] = [
          [C, rc],
          [D, rd],
        ];
        const won = runs.filter(([, r]) => r.code === 0);
        const lost = runs.filter(([, r]) => r.code !== 0);
        expect(won, `round ${i}: ${rc.code}/${rd.code}`).toHaveLength(1);
        const [winner] = won[0]!;
        const [loser, loss] = lost[0]!;
        winners.push(winner.name);
        expect(loss.code).toBe(1);
        expect(loss.stderr).toMatch(
          new RegExp(
            `network\\.cidr 10\\.84\\.0\\.0/2[45] collides with (libvirt network lab-${winner.name}|the host route 10\\.84\\.0\\.0/2[45])`,
          ),
        );
        // The loser created nothing: no network, no domain, no lab folder (the winner's are there).
        const left = await inventory(loser.name);
        expect(left.files).toEqual([]);
        expect(left.domains.filter((d) => d.startsWith(`${loser.name}-`))).toEqual([]);
        expect(left.networks).not.toContain(`lab-${loser.name}`);
        expect(left.networks).toContain(`lab-${winner.name}`);
        expect(await virsh(['domstate', `${winner.name}-n1`])).toMatch(/running/);
        expect((await lab(['down', '-f', winner.file])).code).toBe(0);
        expect(await inventory(C.name)).toEqual(before.c);
        expect(await inventory(D.name)).toEqual(before.d);
      }
      report.push(`overlap winners: ${winners.join(' ')}`);
    },
  );
});

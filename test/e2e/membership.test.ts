// etcd membership on a running lab (issue 18), on real TCG guests: a fourth node joins a
// healthy 3-member cluster as a learner and is promoted, leaving the three untouched; a
// member is rebuilt (`lab reset`) under a steady writer and comes back as a new member of
// the same name. The member list, raft terms and keys are read from etcd itself (its v3
// gateway, from inside the harness's namespace); lab's libvirt calls are counted by the
// shims; "untouched" is the domain's UUID, its QEMU's PID and the guest's boot id.
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bridgeLabfile } from '../support/e2e-labfile.js';
import { mutating, ok, shimmed, verbCount, domainsOf } from './checkpoints.js';
import { lab, virsh, writeLabfile } from './helpers.js';

const NAME = 'e2emem';
const IPS: Record<string, string> = {
  m1: '10.77.0.81',
  m2: '10.77.0.82',
  m3: '10.77.0.83',
  m4: '10.77.0.84',
};
const labfileOf = (names: string[]) =>
  bridgeLabfile({
    name: NAME,
    services: '[etcd]',
    nodes: names.map((n) => `  - { name: ${n}, ip: ${IPS[n]} }\n`).join(''),
    tail: 'etcd: { api: v2 }\n',
  });
const three = writeLabfile(labfileOf(['m1', 'm2', 'm3']));
const four = writeLabfile(labfileOf(['m1', 'm2', 'm3', 'm4']));

/** One call to a member's v3 gateway, from the test (it runs in the harness's namespace). */
async function etcd(node: string, path: string, body: Record<string, unknown> = {}) {
  const r = await fetch(`http://${IPS[node]}:2379${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  if (!r.ok) throw new Error(`${node} ${path}: HTTP ${r.status}: ${await r.text()}`);
  return (await r.json()) as Record<string, unknown>;
}
const b64 = (s: string) => Buffer.from(s).toString('base64');
const members = async (via: string) =>
  (
    (await etcd(via, '/v3/cluster/member/list')).members as {
      ID: string;
      name: string;
      isLearner?: boolean;
    }[]
  )
    .map((m) => ({ id: m.ID, name: m.name, learner: m.isLearner === true }))
    .sort((a, b) => a.name.localeCompare(b.name));
const get = async (node: string, key: string) => {
  const kvs = (await etcd(node, '/v3/kv/range', { key: b64(key) })).kvs as { value: string }[] | undefined;
  return kvs?.[0] ? Buffer.from(kvs[0].value, 'base64').toString() : undefined;
};
const term = async (node: string) =>
  Number(((await etcd(node, '/v3/maintenance/status')).header as { raft_term: string }).raft_term);

/** What says a node was left alone: its domain's UUID, its QEMU's PID, its boot's id. */
async function untouched(node: string, file: string) {
  const uuid = (await virsh(['domuuid', `${NAME}-${node}`])).trim();
  const ps = String((await execa('ps', ['-eo', 'pid=,args='])).stdout).split('\n');
  const pid = ps
    .find((l) => l.includes(`guest=${NAME}-${node},`))
    ?.trim()
    .split(/\s+/)[0];
  const boot = await lab(['ssh', node, '-f', file, '--', 'cat', '/proc/sys/kernel/random/boot_id']);
  ok(boot);
  return { uuid, pid, boot: boot.stdout.trim() };
}

describe('etcd members join and are rebuilt on a running lab (3 -> 4 TCG nodes)', () => {
  beforeAll(async () => {
    ok(await lab(['up', '-f', three]));
  });
  afterAll(async () => {
    await lab(['down', '-f', four]);
  });

  it("three members bootstrap; the walkthrough's v2 lines work verbatim over lab ssh", async () => {
    expect((await members('m1')).map((m) => [m.name, m.learner])).toEqual([
      ['m1', false],
      ['m2', false],
      ['m3', false],
    ]);
    // A command over SSH is no login shell: etcdctl's API version comes from /etc/environment.
    const set = await lab(['ssh', 'm1', '-f', three, '--', 'etcdctl', 'set', '/message', 'hello']);
    ok(set);
    const got = await lab(['ssh', 'm3', '-f', three, '--', 'etcdctl', 'get', '/message']);
    ok(got);
    expect(got.stdout.trim()).toBe('hello');
    await etcd('m1', '/v3/kv/put', { key: b64('/kept'), value: b64('before the join') });
  });

  it('a fourth node joins as a learner and is promoted: the three get no call, keep their QEMU and boot; 4 members; the key reads back on it', async () => {
    const before = await Promise.all(['m1', 'm2', 'm3'].map((n) => untouched(n, three)));
    const { r, calls } = await shimmed(['up', '-f', four]);
    ok(r);
    expect(r.stderr).toContain('m4: joined etcd as a learner and was promoted once caught up');
    const changes = mutating(calls);
    expect(verbCount(changes, 'define')).toBe(1);
    expect(domainsOf(changes, 'start')).toEqual([`${NAME}-m4`]);
    for (const verb of ['destroy', 'undefine', 'suspend', 'resume', 'snapshot-revert'])
      expect(verbCount(changes, verb), verb).toBe(0);
    expect(
      changes.filter((c) => /^(qemu-img create|xorriso|genisoimage)/.test(c) && !c.includes('m4')),
    ).toEqual([]);
    expect(await Promise.all(['m1', 'm2', 'm3'].map((n) => untouched(n, four)))).toEqual(before);
    expect((await members('m1')).map((m) => [m.name, m.learner])).toEqual([
      ['m1', false],
      ['m2', false],
      ['m3', false],
      ['m4', false],
    ]);
    expect(await get('m4', '/kept')).toBe('before the join');
    const again = await shimmed(['up', '-f', four]);
    ok(again.r);
    expect(mutating(again.calls)).toEqual([]);
  });

  it('lab reset m2 under a writer at 10 writes/s on m1: no write fails, the raft term rises by 1 at most, m2 is back as a new member of the same name and has the data', async () => {
    const old = (await members('m1')).find((m) => m.name === 'm2')!;
    const termBefore = await term('m1');
    let writes = 0;
    const failures: string[] = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        const t0 = Date.now();
        try {
          await etcd('m1', '/v3/kv/put', { key: b64(`/w/${i}`), value: b64(String(i)) });
          writes += 1;
        } catch (err) {
          failures.push(`${i}: ${(err as Error).message}`);
        }
        await new Promise((res) => setTimeout(res, Math.max(0, 100 - (Date.now() - t0))));
      }
    })();
    const t0 = Date.now();
    const reset = await lab(['reset', 'm2', '-f', four]);
    stop = true;
    await writer;
    ok(reset);
    const seconds = (Date.now() - t0) / 1000;
    process.stderr.write(
      `\nmembership: reset m2 in ${seconds.toFixed(1)} s, ${writes} writes, ${failures.length} failed\n`,
    );
    expect(failures).toEqual([]);
    expect(writes).toBeGreaterThan(seconds * 5);
    expect(await term('m1')).toBeLessThanOrEqual(termBefore + 1);
    const now = (await members('m1')).find((m) => m.name === 'm2')!;
    expect(now.learner).toBe(false);
    expect(now.id).not.toBe(old.id);
    expect((await members('m1')).length).toBe(4);
    expect(await get('m2', '/kept')).toBe('before the join');
    expect(await get('m2', `/w/${writes - 1}`)).toBeDefined();
    const logs = await lab([
      'ssh',
      'm2',
      '-f',
      four,
      '--',
      'sudo',
      '-n',
      'journalctl',
      '-u',
      'etcd',
      '--no-pager',
      '-q',
    ]);
    ok(logs);
    expect(logs.stdout).not.toMatch(/panic|has already been bootstrapped/);
  });
});

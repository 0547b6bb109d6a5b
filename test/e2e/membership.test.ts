// etcd membership on a running lab (issue 18), on real TCG guests: a fourth node joins a
// healthy 3-member cluster as a learner and is promoted, leaving the three untouched; a
// member is rebuilt (`lab reset`) under a steady writer and comes back as a new member of
// the same name; the fourth, made the leader, is taken out of the Labfile and leaves etcd
// before its domain goes; a join whose node hangs leaves no member. The member list, raft
// terms and keys are read from etcd itself (its v3 gateway, from inside the harness's
// namespace); lab's libvirt calls are counted by the shims; "untouched" is the domain's
// UUID, its QEMU's PID and the guest's boot id.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bridgeLabfile } from '../support/e2e-labfile.js';
import { mutating, ok, shimmed, verbCount, domainsOf } from './checkpoints.js';
import { FULL, lab, virsh, writeLabfile } from './helpers.js';

const NAME = 'e2emem';
const IPS: Record<string, string> = {
  m1: '10.77.0.81',
  m2: '10.77.0.82',
  m3: '10.77.0.83',
  m4: '10.77.0.84',
  m5: '10.77.0.85',
};
const labfileOf = (names: string[], extra: Record<string, string> = {}) =>
  bridgeLabfile({
    name: NAME,
    services: '[etcd]',
    nodes: names.map((n) => `  - { name: ${n}, ip: ${IPS[n]}${extra[n] ? `, ${extra[n]}` : ''} }\n`).join(''),
    tail: 'etcd: { api: v2 }\n',
  });
const three = writeLabfile(labfileOf(['m1', 'm2', 'm3']));
const four = writeLabfile(labfileOf(['m1', 'm2', 'm3', 'm4']));
const labDir = path.join(process.env.LAB_STATE_DIR ?? '/var/lib/lab', NAME);

/** One call to a member's v3 gateway, from the test (it runs in the harness's namespace). */
async function etcd(node: string, path: string, body: Record<string, unknown> = {}, timeoutMs = 5000) {
  const r = await fetch(`http://${IPS[node]}:2379${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
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

/**
 * Puts at a steady 10 per second through `node`, each on its own (a slow one does not hold
 * the next back), until `stop()`: how many were sent, how many succeeded, which failed.
 */
function writer(node: string, prefix: string) {
  let sent = 0;
  let writes = 0;
  const failures: string[] = [];
  const inFlight = new Set<Promise<void>>();
  const t0 = Date.now();
  let slowestMs = 0;
  const retried: number[] = [];
  const timer = setInterval(() => {
    const i = sent++;
    const t = Date.now();
    // etcd gives up on a write after its request timeout: 5 s plus two election timeouts
    // (lab sets 5 s under TCG), 15 s. A proposal in flight while leadership moves is
    // dropped by raft (ErrProposalDropped) and times out so: an idempotent put, it is sent
    // again once, as a client of etcd 3.4 must (counted as retried). Failed: lost twice.
    const put = () => etcd(node, '/v3/kv/put', { key: b64(`${prefix}/${i}`), value: b64(String(i)) }, 15_000);
    const p: Promise<void> = put()
      .catch(() => {
        retried.push(i);
        return put();
      })
      .then(
        () => {
          writes += 1;
          slowestMs = Math.max(slowestMs, Date.now() - t);
        },
        (err: Error) => void failures.push(`${i}: ${err.message}`),
      )
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }, 100);
  return {
    async stop() {
      clearInterval(timer);
      await Promise.all(inFlight);
      return {
        sent,
        writes,
        failures,
        retried: retried.length,
        slowestMs,
        seconds: (Date.now() - t0) / 1000,
        last: `${prefix}/${sent - 1}`,
      };
    },
  };
}

/** The member id of the leader, as `node` sees it. */
const leaderSeenBy = async (node: string) => String((await etcd(node, '/v3/maintenance/status')).leader);

/** Makes `node` the leader (etcd's move-leader, asked of the leader), and waits until it leads. */
async function makeLeader(node: string) {
  const all = await members('m1');
  const target = all.find((m) => m.name === node)!.id;
  const leaderId = await leaderSeenBy('m1');
  const leader = all.find((m) => m.id === leaderId)!.name;
  if (leader !== node) await etcd(leader, '/v3/maintenance/transfer-leadership', { targetID: target });
  for (let i = 0; i < 50 && (await leaderSeenBy('m1')) !== target; i++)
    await new Promise((r) => setTimeout(r, 200));
  expect(await leaderSeenBy('m1')).toBe(target);
}

/** What is left of a node in the lab's folder: files, its state record, its host-key pin. */
function traces(node: string): string[] {
  const files = ['disks', 'console'].flatMap((d) =>
    (existsSync(path.join(labDir, d)) ? readdirSync(path.join(labDir, d)) : [])
      .filter((f) => f.startsWith(`${node}.`) || f.startsWith(`${node}-`))
      .map((f) => `${d}/${f}`),
  );
  const state = JSON.parse(readFileSync(path.join(labDir, 'private', 'state.json'), 'utf8')) as {
    nodes: Record<string, unknown>;
  };
  const knownHosts = readFileSync(path.join(labDir, 'private', 'known_hosts'), 'utf8');
  return [
    ...files,
    ...(state.nodes[node] ? ['state record'] : []),
    ...(knownHosts.split('\n').some((l) => l.split(/[ ,]/).includes(node)) ? ['known_hosts pin'] : []),
  ];
}

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
    const w = writer('m1', '/w');
    const reset = await lab(['reset', 'm2', '-f', four]);
    const { sent, writes, failures, seconds, last, slowestMs, retried } = await w.stop();
    ok(reset);
    process.stderr.write(
      `\nmembership: reset m2 in ${seconds.toFixed(1)} s, ${sent} writes sent (${(sent / seconds).toFixed(1)}/s), ${writes} succeeded, ${failures.length} failed, ${retried} sent again, slowest ${slowestMs} ms\n`,
    );
    expect(failures).toEqual([]);
    expect(writes).toBe(sent);
    expect(sent).toBeGreaterThanOrEqual(Math.floor(seconds * 10 * 0.9));
    expect(await term('m1')).toBeLessThanOrEqual(termBefore + 1);
    const now = (await members('m1')).find((m) => m.name === 'm2')!;
    expect(now.learner).toBe(false);
    expect(now.id).not.toBe(old.id);
    expect((await members('m1')).length).toBe(4);
    expect(await get('m2', '/kept')).toBe('before the join');
    expect(await get('m2', last)).toBe(String(sent - 1));
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

  it('m4, made the leader, is taken out of the Labfile under a writer at 10 writes/s: leadership moves off it, it leaves etcd, nothing of it is left; the three get no call', async () => {
    await makeLeader('m4');
    const before = await Promise.all(['m1', 'm2', 'm3'].map((n) => untouched(n, four)));
    const plan = JSON.parse((await lab(['plan', '-f', three, '--json'])).stdout) as {
      leaving: { node: string; member?: string; actions: string[] }[];
    };
    expect(plan.leaving).toEqual([
      expect.objectContaining({
        node: 'm4',
        member: 'leave',
        actions: ['leave-etcd', 'destroy', 'undefine', 'delete-files'],
      }),
    ]);
    const w = writer('m1', '/leave');
    const { r, calls } = await shimmed(['up', '-f', three]);
    const { sent, writes, failures, seconds, slowestMs, retried } = await w.stop();
    ok(r);
    process.stderr.write(
      `\nmembership: m4 left in ${seconds.toFixed(1)} s, ${sent} writes sent, ${writes} succeeded, ${failures.length} failed, ${retried} sent again, slowest ${slowestMs} ms\n`,
    );
    expect(r.stdout).toContain('m4: removed (not in the Labfile; it left etcd first)');
    expect(failures).toEqual([]);
    expect(writes).toBe(sent);
    // libvirt was asked to change m4 only, and only to end it.
    expect(mutating(calls).map((c) => c.split(' ')[0])).toEqual(['destroy', 'undefine']);
    expect([...domainsOf(calls, 'destroy'), ...domainsOf(calls, 'undefine')]).toEqual([
      `${NAME}-m4`,
      `${NAME}-m4`,
    ]);
    expect((await members('m1')).map((m) => [m.name, m.learner])).toEqual([
      ['m1', false],
      ['m2', false],
      ['m3', false],
    ]);
    const leader = await leaderSeenBy('m1');
    expect((await members('m1')).some((m) => m.id === leader)).toBe(true);
    expect(await Promise.all(['m1', 'm2', 'm3'].map((n) => untouched(n, three)))).toEqual(before);
    // Nothing of it: no domain in libvirt, no file, no state record, no pin.
    expect((await virsh(['list', '--all', '--name'])).split('\n')).not.toContain(`${NAME}-m4`);
    expect(traces('m4')).toEqual([]);
    expect(await get('m3', '/kept')).toBe('before the join');
    const again = await shimmed(['up', '-f', three]);
    ok(again.r);
    expect(mutating(again.calls)).toEqual([]);
  });

  it('a join whose node hangs before SSH fails at its deadline and leaves no member; taken out again, nothing of it is left', async () => {
    const five = writeLabfile(labfileOf(['m1', 'm2', 'm3', 'm5']));
    // The guest hangs (paused) as soon as it runs: it never answers SSH, never asks to join.
    let paused = false;
    const hang = (async () => {
      for (let i = 0; i < 600 && !paused; i++) {
        const st = await virsh(['domstate', `${NAME}-m5`]).catch(() => '');
        if (st.trim() === 'running') {
          await virsh(['suspend', `${NAME}-m5`]);
          paused = true;
        } else await new Promise((res) => setTimeout(res, 100));
      }
    })();
    const r = await lab(['up', '-f', five], { env: { LAB_TIMEOUT_SCALE: '0.05' } });
    await hang;
    expect(paused).toBe(true);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/m5 +FAILED at ssh/);
    expect((await members('m1')).map((m) => [m.name, m.learner])).toEqual([
      ['m1', false],
      ['m2', false],
      ['m3', false],
    ]);
    const { r: back, calls } = await shimmed(['up', '-f', three]);
    ok(back);
    expect(back.stdout).toContain('m5: removed (not in the Labfile)');
    expect(mutating(calls).map((c) => c.split(' ')[0])).toEqual(['destroy', 'undefine']);
    expect(traces('m5')).toEqual([]);
    expect((await members('m1')).length).toBe(3);
  });

  it.runIf(FULL)(
    'lab reset m2 while m3 gets a first-boot change, under a writer at 10 writes/s: one after another, no write fails, both back as new members with the data',
    async () => {
      const changed = writeLabfile(
        labfileOf(['m1', 'm2', 'm3'], { m3: 'files: [{ path: /etc/lab-e2e-note, content: changed }]' }),
      );
      const old = await members('m1');
      const termBefore = await term('m1');
      const w = writer('m1', '/two');
      // The voters etcd lists, every half second (a learner is not one yet).
      const history: string[][] = [];
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          const list = await members('m1').catch(() => undefined);
          if (list) history.push(list.filter((m) => !m.learner).map((m) => m.name));
          await new Promise((res) => setTimeout(res, 500));
        }
      })();
      const { r, calls } = await shimmed(['reset', 'm2', '-f', changed]);
      const { sent, writes, failures, seconds, last, slowestMs, retried } = await w.stop();
      watching = false;
      await watcher;
      ok(r);
      process.stderr.write(
        `\nmembership: m2 and m3 rebuilt in ${seconds.toFixed(1)} s, ${sent} writes sent, ${writes} succeeded, ${failures.length} failed, ${retried} sent again, slowest ${slowestMs} ms\n`,
      );
      expect(failures).toEqual([]);
      expect(writes).toBe(sent);
      expect(domainsOf(calls, 'start').sort()).toEqual([`${NAME}-m2`, `${NAME}-m3`]);
      // At most one leader change per rebuilt member (when it led, leadership moved off it).
      expect(await term('m1')).toBeLessThanOrEqual(termBefore + 2);
      const now = await members('m1');
      expect(now.map((m) => [m.name, m.learner])).toEqual([
        ['m1', false],
        ['m2', false],
        ['m3', false],
      ]);
      for (const n of ['m2', 'm3']) {
        expect(now.find((m) => m.name === n)!.id).not.toBe(old.find((m) => m.name === n)!.id);
        expect(await get(n, '/kept')).toBe('before the join');
        expect(await get(n, last)).toBe(String(sent - 1));
      }
      // One after another, as etcd listed its members all along: never both out at once.
      const seen = history.filter((h) => !h.includes('m2') || !h.includes('m3'));
      expect(history.filter((h) => !h.includes('m2') && !h.includes('m3'))).toEqual([]);
      expect(seen.some((h) => !h.includes('m2'))).toBe(true);
      expect(seen.some((h) => !h.includes('m3'))).toBe(true);
      for (const n of ['m2', 'm3']) {
        const logs = await lab([
          'ssh',
          n,
          '-f',
          changed,
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
        expect(logs.stdout, n).not.toMatch(/panic|has already been bootstrapped/);
      }
    },
  );
});

// etcd membership as a lab operation, against a model of etcd's gateway: every node's
// link answers /v3/cluster/member/* and /v3/maintenance/* from one shared member table,
// and keeps the files lab writes. What is asserted is what etcd and the guests were
// asked, in order.
import { describe, expect, it } from 'vitest';
import {
  ensureMembership,
  leaveBeforeRebuild,
  leaveCluster,
  Serial,
  type MemberRun,
  type Reachable,
} from '../../../lab/apply/membership.js';
import type { GuestLink } from '../../../lab/guest/agent.js';
import type { LabSpec } from '../../../lab/plan/model.js';
import { labSpec } from '../../support/lab-spec.js';

const LAB = labSpec({
  extra: 'services: [etcd]\n',
  nodes:
    '  - { name: a, ip: 10.9.0.2 }\n  - { name: b, ip: 10.9.0.3 }\n  - { name: c, ip: 10.9.0.4 }\n  - { name: d, ip: 10.9.0.5 }\n',
});
const node = (name: string) => LAB.nodes.find((n) => n.name === name)!;
const peer = (n: string) => `http://${node(n).ip}:2380`;

interface Member {
  id: string;
  name: string;
  peer: string;
  learner: boolean;
}

/** One etcd cluster and the guests around it. */
function world(opts: { members?: string[]; leader?: string; down?: string[]; behind?: number } = {}) {
  let next = 0x10;
  const members: Member[] = (opts.members ?? []).map((n) => ({
    id: (next++).toString(16),
    name: n,
    peer: peer(n),
    learner: false,
  }));
  let leader = opts.leader ?? opts.members?.[0];
  const down = new Set(opts.down ?? []);
  let behind = opts.behind ?? 0;
  const files = new Map<string, Map<string, string>>();
  const log: string[] = [];
  const idOf = (dec: string) => BigInt(dec).toString(16);
  const json = (status: number, body: unknown) =>
    Promise.resolve({ status, body: JSON.stringify(body), headers: {} });
  const listed = () => ({
    members: members.map((m) => ({
      ID: BigInt(`0x${m.id}`).toString(),
      name: m.name,
      peerURLs: [m.peer],
      ...(m.learner ? { isLearner: true } : {}),
    })),
  });
  const link = (n: string): GuestLink => ({
    node: n,
    close: () => {},
    listFiles: () => Promise.resolve([]),
    readFile(f) {
      const text = files.get(n)?.get(f);
      return text === undefined ? Promise.reject(new Error(`${f}: No such file`)) : Promise.resolve(text);
    },
    exec(argv, o) {
      if (argv.includes('systemctl')) {
        log.push(`${n}: ${argv.slice(3).join(' ')}`);
        // etcd starts: a member added for this node's peer URL takes its name.
        if (argv.includes('start')) started(n);
        return Promise.resolve({ stdout: '', stderr: '', code: 0 });
      }
      const path = argv.at(-1)!;
      if (!files.has(n)) files.set(n, new Map());
      files.get(n)!.set(path, o?.input ?? '');
      log.push(`${n}: write ${path}`);
      return Promise.resolve({ stdout: '', stderr: '', code: 0 });
    },
    http(_to, req) {
      if (down.has(n) || !members.some((m) => m.name === n))
        return Promise.reject(new Error('connect failed'));
      const body = JSON.parse(req.body ?? '{}') as Record<string, string | string[] | boolean>;
      const me = members.find((m) => m.name === n)!;
      switch (req.path) {
        case '/v3/cluster/member/list':
          return json(200, listed());
        case '/v3/maintenance/status':
          return json(200, {
            header: { member_id: BigInt(`0x${me.id}`).toString(), raft_term: '2' },
            leader: BigInt(`0x${members.find((m) => m.name === leader)?.id ?? '0'}`).toString(),
          });
        case '/v3/cluster/member/add': {
          const m = {
            id: (next++).toString(16),
            name: '',
            peer: (body.peerURLs as string[])[0]!,
            learner: body.isLearner === true,
          };
          members.push(m);
          log.push(`etcd: add ${m.peer}${m.learner ? ' as learner' : ''} (via ${n})`);
          return json(200, { member: { ID: BigInt(`0x${m.id}`).toString() }, ...listed() });
        }
        case '/v3/cluster/member/promote': {
          if (behind > 0) {
            behind -= 1;
            return json(400, {
              error: 'etcdserver: can only promote a learner member which is in sync with leader',
              code: 9,
            });
          }
          const m = members.find((x) => x.id === idOf(body.ID as string))!;
          m.learner = false;
          log.push(`etcd: promote ${m.peer}`);
          return json(200, listed());
        }
        case '/v3/cluster/member/remove': {
          const i = members.findIndex((x) => x.id === idOf(body.ID as string));
          log.push(`etcd: remove ${members[i]!.name || members[i]!.peer} (via ${n})`);
          members.splice(i, 1);
          return json(200, listed());
        }
        case '/v3/maintenance/transfer-leadership': {
          if (n !== leader) return json(400, { error: 'not leader' });
          leader = members.find((x) => x.id === idOf(body.targetID as string))!.name;
          log.push(`etcd: leader moved to ${leader}`);
          return json(200, {});
        }
      }
      return json(404, {});
    },
  });
  /** A node whose etcd starts once its membership is written: it names itself then. */
  const started = (n: string) => {
    const m = members.find((x) => x.peer === peer(n));
    if (m) m.name = n;
  };
  const run = (expectedPeers: string[] = [], fresh = false, leaving: Reachable[] = []): MemberRun => ({
    serial: new Serial(),
    fresh,
    linkTo: (x: Reachable) => Promise.resolve(down.has(x.name) ? undefined : link(x.name)),
    expectedPeers,
    removed: new Map(),
    leaving,
    settleMs: 0,
  });
  return {
    members,
    files,
    log,
    link,
    run,
    started,
    /** The node's etcd answers again. */
    up: (n: string) => down.delete(n),
    get leader() {
      return leader;
    },
  };
}

describe('ensureMembership', () => {
  it('a fresh lab: every member bootstraps with the static list, state new; etcd started without waiting', async () => {
    const w = world();
    const run = w.run([], true);
    expect(await ensureMembership(LAB, node('a'), w.link('a'), run, 10_000)).toBe('bootstrap');
    const env = w.files.get('a')!.get('/etc/default/etcd')!;
    expect(env).toContain(
      `ETCD_INITIAL_CLUSTER=a=${peer('a')},b=${peer('b')},c=${peer('c')},d=${peer('d')}\n`,
    );
    expect(env).toContain('ETCD_INITIAL_CLUSTER_STATE=new\n');
    expect(w.log).toEqual(['a: write /etc/default/etcd', 'a: start --no-block etcd.service']);
  });

  it('a bootstrap cut short: an original member that never started (unnamed, a voter) bootstraps too', async () => {
    const w = world({ members: ['a', 'b'] });
    w.members.push({ id: 'ff', name: '', peer: peer('c'), learner: false });
    expect(await ensureMembership(LAB, node('c'), w.link('c'), w.run(), 10_000)).toBe('bootstrap');
    expect(w.files.get('c')!.get('/etc/default/etcd')).toContain('ETCD_INITIAL_CLUSTER_STATE=new\n');
    expect(w.log.filter((l) => l.startsWith('etcd'))).toEqual([]);
  });

  it('a node with its membership already written is left alone', async () => {
    const w = world({ members: ['a', 'b', 'c'] });
    w.files.set('a', new Map([['/etc/default/etcd', 'x']]));
    expect(await ensureMembership(LAB, node('a'), w.link('a'), w.run(), 10_000)).toBe('present');
    expect(w.log).toEqual([]);
  });

  it('a new node joins a running cluster as a learner, boots existing, and is promoted once caught up', async () => {
    const w = world({ members: ['a', 'b', 'c'], behind: 2 });
    expect(await ensureMembership(LAB, node('d'), w.link('d'), w.run(['a', 'b', 'c']), 30_000)).toBe(
      'joined',
    );
    const env = w.files.get('d')!.get('/etc/default/etcd')!;
    expect(env).toContain(
      `ETCD_INITIAL_CLUSTER=a=${peer('a')},b=${peer('b')},c=${peer('c')},d=${peer('d')}\n`,
    );
    expect(env).toContain('ETCD_INITIAL_CLUSTER_STATE=existing\n');
    expect(w.log.filter((l) => !l.startsWith('d: write'))).toEqual([
      `etcd: add ${peer('d')} as learner (via a)`,
      'd: start --no-block etcd.service',
      `etcd: promote ${peer('d')}`,
    ]);
    expect(w.members.map((m) => [m.peer, m.learner])).toContainEqual([peer('d'), false]);
  });

  it('a join that cannot finish leaves no member behind', async () => {
    const w = world({ members: ['a', 'b', 'c'], behind: 1000 });
    await expect(ensureMembership(LAB, node('d'), w.link('d'), w.run(['a']), 1500)).rejects.toThrow(
      /d: member: joining etcd failed/,
    );
    expect(w.members.map((m) => m.name)).toEqual(['a', 'b', 'c']);
    // Its etcd had started (it named itself) before the promotion gave up.
    expect(w.log.at(-1)).toBe('etcd: remove d (via a)');
  });

  it('members that ran before but answer no more: no bootstrap beside them, nothing written', async () => {
    const w = world({ members: ['a', 'b', 'c'], down: ['a', 'b', 'c'] });
    await expect(
      ensureMembership(LAB, node('d'), w.link('d'), w.run(['a', 'b', 'c']), 10_000),
    ).rejects.toThrow(/no etcd member of the lab answers \(a, b, c ran before\)/);
    expect(w.log).toEqual([]);
  });

  it('a member whose data is gone (listed under its name) is removed, then joins anew', async () => {
    const w = world({ members: ['a', 'b', 'c'], leader: 'a' });
    expect(await ensureMembership(LAB, node('c'), w.link('c'), w.run(['a', 'b']), 30_000)).toBe('joined');
    expect(w.log.filter((l) => l.startsWith('etcd'))).toEqual([
      'etcd: remove c (via a)',
      `etcd: add ${peer('c')} as learner (via a)`,
      `etcd: promote ${peer('c')}`,
    ]);
  });
});

describe('leaveBeforeRebuild', () => {
  it('moves the leadership off the member, removes it, and holds the lock until it has joined again', async () => {
    const w = world({ members: ['a', 'b', 'c'], leader: 'b' });
    const run = w.run(['a', 'c']);
    await leaveBeforeRebuild(LAB, node('b'), run);
    expect(w.log).toEqual(['etcd: leader moved to a', 'etcd: remove b (via a)']);
    expect(run.removed.has('b')).toBe(true);
    // Another change waits for b's rejoin.
    let cWent = false;
    const c = leaveBeforeRebuild(LAB, node('c'), run).then(() => (cWent = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(cWent).toBe(false);
    expect(await ensureMembership(LAB, node('b'), w.link('b'), run, 30_000)).toBe('joined');
    w.started('b');
    await c;
    expect(w.log.filter((l) => l.startsWith('etcd'))).toEqual([
      'etcd: leader moved to a',
      'etcd: remove b (via a)',
      `etcd: add ${peer('b')} as learner (via a)`,
      `etcd: promote ${peer('b')}`,
      'etcd: remove c (via a)',
    ]);
  });

  it('is refused, touching nothing, when the members that stay could not keep the quorum', async () => {
    const w = world({ members: ['a', 'b', 'c'], down: ['c'] });
    await expect(leaveBeforeRebuild(LAB, node('b'), w.run())).rejects.toThrow(
      /refusing to remove b from etcd: 1 of the 2 members that stay answer, 2 are needed/,
    );
    expect(w.log).toEqual([]);
  });

  it('the only member: nothing to leave, and the fresh node bootstraps the cluster anew', async () => {
    const one = labSpec({ extra: 'services: [etcd]\n', nodes: '  - { name: a, ip: 10.9.0.2 }\n' });
    const w = world({ members: ['a'] });
    const run = w.run();
    await leaveBeforeRebuild(one, one.nodes[0]!, run);
    expect(w.log).toEqual([]);
    expect(await ensureMembership(one, one.nodes[0]!, w.link('a'), run, 10_000)).toBe('bootstrap');
  });
});

describe('quorum guard waits for members that stay', () => {
  it(
    'a member that answers again within the settle time lets the change go on; one that does not is refused',
    { timeout: 20_000 },
    async () => {
      const w = world({ members: ['a', 'b', 'c'], leader: 'a', down: ['c'] });
      const run = { ...w.run(['a', 'c']), settleMs: 6000 };
      // c answers again 2.5 s later (a member just promoted, still starting its endpoint).
      const back = setTimeout(() => w.up('c'), 2500);
      const t0 = Date.now();
      await leaveBeforeRebuild(LAB, node('b'), run);
      clearTimeout(back);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(2500);
      expect(w.log).toEqual(['etcd: remove b (via a)']);
      const still = world({ members: ['a', 'b', 'c'], leader: 'a', down: ['c'] });
      await expect(leaveBeforeRebuild(LAB, node('b'), { ...still.run(), settleMs: 2500 })).rejects.toThrow(
        /refusing to remove b from etcd/,
      );
      expect(still.log).toEqual([]);
    },
  );
});

describe('leaveCluster (a node the Labfile no longer names)', () => {
  // The Labfile after d was taken out of it.
  const ABC = labSpec({
    extra: 'services: [etcd]\n',
    nodes: '  - { name: a, ip: 10.9.0.2 }\n  - { name: b, ip: 10.9.0.3 }\n  - { name: c, ip: 10.9.0.4 }\n',
  });
  const d = { name: 'd', ip: node('d').ip };

  it('the leader leaves: leadership moved to a member that stays, then removed through one', async () => {
    const w = world({ members: ['a', 'b', 'c', 'd'], leader: 'd' });
    expect(await leaveCluster(ABC, d, w.run([], false, [d]))).toBe('removed');
    expect(w.log).toEqual(['etcd: leader moved to a', 'etcd: remove d (via a)']);
    expect(w.members.map((m) => m.name)).toEqual(['a', 'b', 'c']);
  });

  it('found by its peer URL when it never started (no name yet): removed', async () => {
    const w = world({ members: ['a', 'b', 'c'] });
    w.members.push({ id: 'ff', name: '', peer: peer('d'), learner: true });
    expect(await leaveCluster(ABC, d, w.run([], false, [d]))).toBe('removed');
    expect(w.log).toEqual([`etcd: remove ${peer('d')} (via a)`]);
  });

  it('not a member: nothing asked of etcd but the list', async () => {
    const w = world({ members: ['a', 'b', 'c'] });
    expect(await leaveCluster(ABC, d, w.run([], false, [d]))).toBe('not-a-member');
    expect(w.log).toEqual([]);
  });

  it('refused, touching nothing, when the members that stay could not keep the quorum', async () => {
    const w = world({ members: ['a', 'b', 'c', 'd'], down: ['b', 'c'] });
    await expect(leaveCluster(ABC, d, w.run([], false, [d]))).rejects.toThrow(
      /refusing to remove d from etcd: 1 of the 3 members that stay answer, 2 are needed/,
    );
    expect(w.log).toEqual([]);
  });

  it('refused when no member answers, itself included: lab cannot tell, and keeps it', async () => {
    const w = world({ members: ['a', 'b', 'c', 'd'], down: ['a', 'b', 'c', 'd'] });
    await expect(leaveCluster(ABC, d, w.run([], false, [d]))).rejects.toThrow(
      /no etcd member answers \(a, b, c, nor d\): lab cannot tell whether d is a member, and keeps it/,
    );
    expect(w.members).toHaveLength(4);
  });

  it('the last member cannot leave: the cluster would end', async () => {
    const w = world({ members: ['d'] });
    await expect(leaveCluster(ABC, d, w.run([], false, [d]))).rejects.toThrow(
      /d is the last etcd member: removing it would end the cluster/,
    );
    expect(w.members).toHaveLength(1);
  });

  it('one change at a time: a leave waits for the rebuild that holds the lock', async () => {
    const w = world({ members: ['a', 'b', 'c', 'd'], leader: 'a' });
    const run = w.run(['a', 'c'], false, [d]);
    await leaveBeforeRebuild(ABC, node('b'), run);
    let left = false;
    const leaving = leaveCluster(ABC, d, run).then(() => (left = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(left).toBe(false);
    expect(await ensureMembership(ABC, node('b'), w.link('b'), run, 30_000)).toBe('joined');
    w.started('b');
    await leaving;
    expect(w.log.filter((l) => l.startsWith('etcd'))).toEqual([
      'etcd: remove b (via a)',
      `etcd: add ${peer('b')} as learner (via a)`,
      `etcd: promote ${peer('b')}`,
      'etcd: remove d (via a)',
    ]);
  });
});

// The lab must be the spec type the functions take (a compile-time check of the fixture).
void (LAB satisfies LabSpec);

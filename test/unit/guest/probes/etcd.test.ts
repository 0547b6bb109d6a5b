import { describe, expect, it } from 'vitest';
import {
  etcdGet,
  etcdIdHex,
  etcdPut,
  parseEtcdEndpointStatus,
  parseEtcdMemberList,
  parseJsonKeepingBigInts,
  probeEtcd,
} from '../../../../lab/guest/probes/etcd.js';
import { fakeExec } from './fake-exec.js';

// Recorded shapes of etcdctl 3.4 `-w json`: uint64 ids as bare JSON numbers (FINDINGS G9).
const CLUSTER = '14841639068965178418'; // cdf818194e3a8c32
const N1 = '10276657743932975437'; // 8e9e05c52164694d
const N2 = '10501334649042878790'; // 91bc3c398fb3c146
const N3 = '18249187646912138824'; // fd422379fda50e48

const status = (member: string, leader: string, extra = '') =>
  `[{"Endpoint":"http://127.0.0.1:2379","Status":{"header":{"cluster_id":${CLUSTER},"member_id":${member},"revision":7,"raft_term":9},"version":"3.4.23","dbSize":20480,"leader":${leader},"raftIndex":31,"raftTerm":9,"raftAppliedIndex":31,"dbSizeInUse":16384${extra}}}]\n`;

const MEMBERS =
  `{"header":{"cluster_id":${CLUSTER},"member_id":${N1},"raft_term":9},"members":[` +
  `{"ID":${N1},"name":"node1","peerURLs":["http://10.88.0.11:2380"],"clientURLs":["http://10.88.0.11:2379"]},` +
  `{"ID":${N2},"name":"node2","peerURLs":["http://10.88.0.12:2380"],"clientURLs":["http://10.88.0.12:2379"]},` +
  `{"ID":${N3},"name":"","peerURLs":["http://10.88.0.13:2380"]}]}\n`;

const ETCDCTL =
  'env ETCDCTL_API=3 etcdctl --endpoints http://127.0.0.1:2379 --dial-timeout 2s --command-timeout 3s';

describe('parseJsonKeepingBigInts', () => {
  it('keeps 19- and 20-digit integers exact and leaves strings and small numbers alone', () => {
    expect(JSON.parse('2069328360744560680')).toBe(2069328360744560600); // the G9 rounding
    const doc = parseJsonKeepingBigInts(
      '{"a":2069328360744560680,"b":[18249187646912138824],"c":"id 10276657743932975437","d":-1234567890123456789,"e":42,"f":1.5e300}',
    );
    expect(doc).toEqual({
      a: '2069328360744560680',
      b: ['18249187646912138824'],
      c: 'id 10276657743932975437',
      d: '-1234567890123456789',
      e: 42,
      f: 1.5e300,
    });
  });

  it('does not touch digits inside strings with escaped quotes', () => {
    expect(parseJsonKeepingBigInts('["x\\"123456789012345678\\"", 123456789012345678]')).toEqual([
      'x"123456789012345678"',
      '123456789012345678',
    ]);
  });
});

describe('etcdIdHex', () => {
  it.each([
    [N1, '8e9e05c52164694d'],
    [N3, 'fd422379fda50e48'],
    [CLUSTER, 'cdf818194e3a8c32'],
    [255, 'ff'],
    [0, undefined],
    ['0', undefined],
    [undefined, undefined],
    [2 ** 64, undefined], // already rounded: refuse rather than guess
    [1.5, undefined],
  ])('%s -> %s', (input, hex) => {
    expect(etcdIdHex(input)).toBe(hex);
  });
});

describe('parseEtcdEndpointStatus', () => {
  it('finds the leader', () => {
    expect(parseEtcdEndpointStatus(status(N1, N1))).toEqual({
      state: 'leader',
      memberId: '8e9e05c52164694d',
      leaderId: '8e9e05c52164694d',
      raftTerm: 9,
      raftIndex: 31,
      version: '3.4.23',
      dbSize: 20480,
    });
  });

  it('sees a follower and names its leader', () => {
    const s = parseEtcdEndpointStatus(status(N2, N1));
    expect(s.state).toBe('follower');
    expect(s.memberId).toBe('91bc3c398fb3c146');
    expect(s.leaderId).toBe('8e9e05c52164694d');
  });

  it('tells apart ids that JSON.parse would round to the same number', () => {
    // 2069328360744560680 and ...600 are one double: a naive parse calls this member the leader.
    expect(JSON.parse('2069328360744560680')).toBe(JSON.parse('2069328360744560600'));
    const s = parseEtcdEndpointStatus(status('2069328360744560600', '2069328360744560680'));
    expect(s.state).toBe('follower');
    expect(s.memberId).toBe('1cb7bb2e29d227d8');
    expect(s.leaderId).toBe('1cb7bb2e29d22828');
  });

  it('is unhealthy without a leader or with an alarm', () => {
    const noLeader = `[{"Endpoint":"http://127.0.0.1:2379","Status":{"header":{"cluster_id":${CLUSTER},"member_id":${N3},"revision":1,"raft_term":4},"version":"3.4.23","dbSize":20480,"raftIndex":8,"raftTerm":4,"raftAppliedIndex":8,"dbSizeInUse":20480}}]`;
    expect(parseEtcdEndpointStatus(noLeader)).toMatchObject({
      state: 'unhealthy',
      memberId: 'fd422379fda50e48',
      error: 'no leader',
    });
    expect(
      parseEtcdEndpointStatus(status(N1, N1, ',"errors":["memberID:10276657743932975437 alarm:NOSPACE "]')),
    ).toMatchObject({
      state: 'unhealthy',
      error: 'memberID:10276657743932975437 alarm:NOSPACE ',
    });
  });

  it('throws on output that is not a status', () => {
    expect(() => parseEtcdEndpointStatus('[]')).toThrow(/no status/);
    expect(() => parseEtcdEndpointStatus('Error: context deadline exceeded')).toThrow();
  });
});

describe('parseEtcdMemberList', () => {
  it('reads ids exactly, names and URLs; an unstarted member has no name', () => {
    expect(parseEtcdMemberList(MEMBERS)).toEqual([
      {
        id: '8e9e05c52164694d',
        name: 'node1',
        peerUrls: ['http://10.88.0.11:2380'],
        clientUrls: ['http://10.88.0.11:2379'],
        isLearner: false,
      },
      {
        id: '91bc3c398fb3c146',
        name: 'node2',
        peerUrls: ['http://10.88.0.12:2380'],
        clientUrls: ['http://10.88.0.12:2379'],
        isLearner: false,
      },
      {
        id: 'fd422379fda50e48',
        name: '',
        peerUrls: ['http://10.88.0.13:2380'],
        clientUrls: [],
        isLearner: false,
      },
    ]);
  });
});

describe('probeEtcd', () => {
  it('reports role, members and names through etcdctl v3', async () => {
    const exec = fakeExec({
      [`${ETCDCTL} endpoint status -w json`]: { stdout: status(N2, N1) },
      [`${ETCDCTL} member list -w json`]: { stdout: MEMBERS },
    });
    expect(await probeEtcd(exec)).toMatchObject({
      state: 'follower',
      leaderId: '8e9e05c52164694d',
      members: 3,
      memberNames: ['node1', 'node2', 'unstarted:fd422379fda50e48'],
    });
  });

  it('is down when etcdctl fails', async () => {
    const exec = fakeExec({
      [`${ETCDCTL} endpoint status -w json`]: {
        code: 1,
        stderr:
          '{"level":"warn","ts":"2026-11-28T10:00:00.000Z","caller":"clientv3/retry_interceptor.go:62","msg":"retrying of unary invoker failed"}\n' +
          'Failed to get the status of endpoint http://127.0.0.1:2379 (context deadline exceeded)\n',
      },
    });
    const h = await probeEtcd(exec);
    expect(h.state).toBe('down');
    expect(h.error).toMatch(/^exit code 1: .*context deadline exceeded\)$/);
    expect(exec.calls).toHaveLength(1);
  });

  it('is down when etcdctl is not installed', async () => {
    expect(await probeEtcd(fakeExec({}))).toMatchObject({
      state: 'down',
      error: expect.stringMatching(/exit code 127/) as unknown,
    });
  });
});

describe('etcdPut / etcdGet', () => {
  it('puts and gets with `--` before the key, so values may start with a dash', async () => {
    const exec = fakeExec({
      [`${ETCDCTL} put -- /message -Hello`]: { stdout: 'OK\n' },
      [`${ETCDCTL} get --print-value-only -- /message`]: { stdout: '-Hello\n' },
      [`${ETCDCTL} get --print-value-only -- /missing`]: { stdout: '' },
      [`${ETCDCTL} get --print-value-only -- /empty`]: { stdout: '\n' },
    });
    await etcdPut(exec, '/message', '-Hello');
    expect(await etcdGet(exec, '/message')).toBe('-Hello');
    expect(await etcdGet(exec, '/missing')).toBeUndefined();
    expect(await etcdGet(exec, '/empty')).toBe('');
  });

  it('throws when etcdctl fails', async () => {
    const exec = fakeExec({
      [`${ETCDCTL} put -- /k v`]: { code: 1, stderr: 'Error: context deadline exceeded\n' },
    });
    await expect(etcdPut(exec, '/k', 'v')).rejects.toThrow(
      'etcdctl put /k: exit code 1: Error: context deadline exceeded',
    );
  });
});

import { describe, expect, it } from 'vitest';
import { NodeError } from '../../../../lab/errors.js';
import { parseLoadAvg, parseMemInfo, probeNode } from '../../../../lab/guest/probes/index.js';
import { fakeExec } from './fake-exec.js';

const ETCDCTL =
  'env ETCDCTL_API=3 etcdctl --endpoints http://127.0.0.1:2379 --dial-timeout 2s --command-timeout 3s';
const ID = '10276657743932975437';
const STATUS = `[{"Endpoint":"http://127.0.0.1:2379","Status":{"header":{"cluster_id":14841639068965178418,"member_id":${ID},"revision":1,"raft_term":2},"version":"3.4.23","dbSize":20480,"leader":${ID},"raftIndex":4,"raftTerm":2,"raftAppliedIndex":4,"dbSizeInUse":20480}}]`;
const MEMBERS = `{"header":{"cluster_id":14841639068965178418,"member_id":${ID},"raft_term":2},"members":[{"ID":${ID},"name":"solo","peerURLs":["http://10.88.0.10:2380"],"clientURLs":["http://10.88.0.10:2379"]}]}`;

const healthy = {
  'cat /etc/machine-id': { stdout: '5b3f0e2a9c4d4e8f8a1b2c3d4e5f6071\n' },
  [`${ETCDCTL} endpoint status -w json`]: { stdout: STATUS },
  [`${ETCDCTL} member list -w json`]: { stdout: MEMBERS },
  'sh -c command -v docker': { stdout: '/usr/bin/docker\n' },
  'sudo -n docker info --format {{json .}}': {
    stdout: '{"ServerVersion":"20.10.24+dfsg1","ContainersRunning":0}\n',
  },
  'sh -c command -v fleetctl': { code: 1 },
  'cat /proc/loadavg /proc/meminfo': {
    stdout:
      '0.52 0.58 0.59 1/123 4567\nMemTotal:         998012 kB\nMemFree:  100 kB\nMemAvailable:     612345 kB\n',
  },
};

describe('probeNode', () => {
  it('probes the requested services of a healthy node', async () => {
    expect(await probeNode(fakeExec(healthy), { services: ['etcd', 'docker'] })).toEqual({
      machineId: '5b3f0e2a9c4d4e8f8a1b2c3d4e5f6071',
      etcd: {
        state: 'leader',
        memberId: '8e9e05c52164694d',
        leaderId: '8e9e05c52164694d',
        raftTerm: 2,
        raftIndex: 4,
        version: '3.4.23',
        dbSize: 20480,
        members: 1,
        memberNames: ['solo'],
      },
      docker: { state: 'up', version: '20.10.24+dfsg1', containersRunning: 0 },
      fleet: 'absent',
      load: '0.52 0.58 0.59',
      memory: { totalMiB: 975, availableMiB: 598 },
    });
  });

  it('skips services that were not asked for', async () => {
    const exec = fakeExec(healthy);
    const h = await probeNode(exec, { services: [] });
    expect(h.etcd).toBeUndefined();
    expect(h.docker).toBeUndefined();
    expect(exec.calls.some((c) => c.includes('etcdctl') || c.includes('docker'))).toBe(false);
  });

  it('runs the docker check when a local image is given', async () => {
    const h = await probeNode(
      fakeExec({
        ...healthy,
        'sudo -n docker image inspect --format {{.Id}} lab/busybox:local': { stdout: 'sha256:1\n' },
        'sudo -n docker run --rm lab/busybox:local echo lab-docker-ok': { stdout: 'lab-docker-ok\n' },
      }),
      { services: ['docker'], localImage: '/tmp/bb.tar' },
    );
    expect(h.docker?.run).toEqual({ ok: true, detail: 'lab/busybox:local printed lab-docker-ok' });
  });

  it('never throws: failures land in lastError, the other probes still answer', async () => {
    const h = await probeNode(
      fakeExec({
        ...healthy,
        'cat /etc/machine-id': { stdout: '\n' },
        [`${ETCDCTL} endpoint status -w json`]: {
          code: 1,
          stderr: 'Error: dial tcp 127.0.0.1:2379: connect: connection refused\n',
        },
        'sudo -n docker info --format {{json .}}': new NodeError(
          'n1',
          'exec',
          '`sudo -n docker info --format {{json .}}` timed out after 30 s',
        ),
      }),
      { services: ['etcd', 'docker'] },
    );
    expect(h.machineId).toBeUndefined();
    expect(h.etcd).toEqual({
      state: 'down',
      error: 'exit code 1: Error: dial tcp 127.0.0.1:2379: connect: connection refused',
    });
    expect(h.docker).toBeUndefined();
    expect(h.load).toBe('0.52 0.58 0.59');
    expect(h.lastError).toBe(
      'machine-id: /etc/machine-id is not 32 lowercase hex digits: empty; ' +
        'etcd: exit code 1: Error: dial tcp 127.0.0.1:2379: connect: connection refused; ' +
        'docker: n1: exec: `sudo -n docker info --format {{json .}}` timed out after 30 s',
    );
  });
});

describe('parseLoadAvg', () => {
  it.each([
    ['0.52 0.58 0.59 1/123 4567\n', '0.52 0.58 0.59'],
    ['', undefined],
  ])('%j -> %j', (out, load) => {
    expect(parseLoadAvg(out)).toBe(load);
  });
});

describe('parseMemInfo', () => {
  it('reads MemTotal and MemAvailable in MiB', () => {
    expect(parseMemInfo('MemTotal:        2048000 kB\nMemFree: 1 kB\nMemAvailable:    1024000 kB\n')).toEqual(
      {
        totalMiB: 2000,
        availableMiB: 1000,
      },
    );
  });
  it('is undefined when a field is missing (old kernels lack MemAvailable)', () => {
    expect(parseMemInfo('MemTotal:        2048000 kB\n')).toBeUndefined();
  });
});

// The probes' fast paths: files over SFTP (readFile, listFiles) and docker's health from
// /_ping and /containers/json; each falls back to a command when the link cannot.
import { describe, expect, it } from 'vitest';
import { dockerServerVersion, probeDocker } from '../../../../lab/guest/probes/docker.js';
import { probeNode } from '../../../../lab/guest/probes/index.js';
import { probeMachineId } from '../../../../lab/guest/probes/machine-id.js';
import { observeUnits, unitMarker } from '../../../../lab/guest/units.js';
import type { Exec } from '../../../../lab/guest/probes/exec.js';
import { fakeExec } from './fake-exec.js';

const ID = '0123456789abcdef0123456789abcdef';
const LOADAVG = '0.52 0.58 0.59 1/97 821\n';
const MEMINFO = 'MemTotal:         738304 kB\nMemFree:          100000 kB\nMemAvailable:     420000 kB\n';

/** A link with files and HTTP answers; counts commands, requests and reads. */
function fastLink(
  files: Record<string, string>,
  http: Record<string, { status: number; body: string; headers?: Record<string, string> }>,
) {
  const base = fakeExec({});
  const reads: string[] = [];
  const requests: string[] = [];
  const link: Exec & { calls: string[][] } = {
    calls: base.calls,
    exec: base.exec.bind(base),
    readFile(file) {
      reads.push(file);
      return file in files
        ? Promise.resolve(files[file]!)
        : Promise.reject(new Error(`${file}: no such file`));
    },
    listFiles(dir) {
      reads.push(`${dir}/`);
      const names = Object.keys(files)
        .filter((f) => f.startsWith(`${dir}/`) && !f.slice(dir.length + 1).includes('/'))
        .map((f) => f.slice(dir.length + 1));
      return Promise.resolve(names);
    },
    http(_to, req) {
      requests.push(req.path);
      const r = http[req.path];
      return r ? Promise.resolve({ headers: {}, ...r }) : Promise.reject(new Error('refused'));
    },
  };
  return { link, reads, requests };
}

describe('files over SFTP', () => {
  it('machine-id, load and memory are read without a command', async () => {
    const { link, reads } = fastLink(
      { '/etc/machine-id': `${ID}\n`, '/proc/loadavg': LOADAVG, '/proc/meminfo': MEMINFO },
      {},
    );
    const h = await probeNode(link, { services: [], fleet: false, load: true });
    expect(h).toMatchObject({
      machineId: ID,
      load: '0.52 0.58 0.59',
      memory: { totalMiB: 721, availableMiB: 410 },
    });
    expect(link.calls).toEqual([]);
    expect(reads.sort()).toEqual(['/etc/machine-id', '/proc/loadavg', '/proc/meminfo']);
  });

  it('falls back to cat when SFTP fails (no sftp-server), with the same answers', async () => {
    const exec = fakeExec({
      'cat /etc/machine-id': { stdout: `${ID}\n` },
      'cat /proc/loadavg /proc/meminfo': { stdout: LOADAVG + MEMINFO },
    });
    const link: Exec = {
      ...exec,
      exec: exec.exec.bind(exec),
      readFile: () => Promise.reject(new Error('no SFTP')),
    };
    expect(await probeMachineId(link)).toBe(ID);
    const h = await probeNode(link, { services: [], fleet: false, load: true });
    expect(h).toMatchObject({ machineId: ID, load: '0.52 0.58 0.59' });
    expect(exec.calls.map((c) => c.join(' ')).sort()).toEqual([
      'cat /etc/machine-id',
      'cat /etc/machine-id',
      'cat /proc/loadavg /proc/meminfo',
    ]);
  });

  it('a machine-id that is not 32 hex digits is an error whichever way it was read', async () => {
    const { link } = fastLink({ '/etc/machine-id': 'uninitialized\n' }, {});
    await expect(probeMachineId(link)).rejects.toThrow(/not 32 lowercase hex digits: "uninitialized"/);
  });
});

describe('docker from /_ping and /containers/json', () => {
  it('reads the version from the Server header and counts the running containers', async () => {
    const { link, requests } = fastLink(
      {},
      {
        '/_ping': { status: 200, body: 'OK', headers: { server: 'Docker/20.10.24+dfsg1 (linux)' } },
        '/containers/json': { status: 200, body: '[{"Id":"a"},{"Id":"b"}]' },
      },
    );
    expect(await probeDocker(link)).toEqual({ state: 'up', version: '20.10.24+dfsg1', containersRunning: 2 });
    expect(requests).toEqual(['/_ping', '/containers/json']);
    expect(link.calls).toEqual([]);
  });

  it('asks /info when the ping names no version', async () => {
    const { link, requests } = fastLink(
      {},
      {
        '/_ping': { status: 200, body: 'OK', headers: { server: 'nginx' } },
        '/info': { status: 200, body: '{"ServerVersion":"24.0.7","ContainersRunning":1}' },
      },
    );
    expect(await probeDocker(link)).toEqual({ state: 'up', version: '24.0.7', containersRunning: 1 });
    expect(requests).toEqual(['/_ping', '/info']);
  });

  it('dockerServerVersion', () => {
    expect(dockerServerVersion('Docker/20.10.24+dfsg1 (linux)')).toBe('20.10.24+dfsg1');
    expect(dockerServerVersion('Docker/27.1.1')).toBe('27.1.1');
    expect(dockerServerVersion('Podman/4.3')).toBeUndefined();
    expect(dockerServerVersion(undefined)).toBeUndefined();
  });
});

describe('units over SFTP', () => {
  const HASH = 'a'.repeat(64);
  it('a lab with no units on a node with no lab unit file runs no command', async () => {
    const { link } = fastLink(
      { '/etc/systemd/system/ssh.service': '[Unit]\n', '/etc/systemd/system/x.timer': '' },
      {},
    );
    expect(await observeUnits(link, 'web', [])).toEqual(new Map());
    expect(link.calls).toEqual([]);
  });

  it("a file of this lab's is found, and then the script asks systemd", async () => {
    const { link } = fastLink(
      { '/etc/systemd/system/hello.service': `${unitMarker('web', HASH)}\n[Unit]\n` },
      {},
    );
    await observeUnits(link, 'web', []).catch(() => undefined);
    expect(link.calls.map((c) => c.slice(0, 2))).toEqual([['sh', '-c']]);
  });

  it("another lab's file is not this lab's: no command", async () => {
    const { link } = fastLink({ '/etc/systemd/system/hello.service': `${unitMarker('other', HASH)}\n` }, {});
    expect(await observeUnits(link, 'web', [])).toEqual(new Map());
    expect(link.calls).toEqual([]);
  });

  it('wanted units always go to the script', async () => {
    const { link } = fastLink({}, {});
    await observeUnits(link, 'web', ['hello.service']).catch(() => undefined);
    expect(link.calls.length).toBe(1);
  });
});

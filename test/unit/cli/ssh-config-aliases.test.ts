// `lab ssh-config` (issue 19): each node answers to NODE.LAB and LAB-NODE, unique on the
// host, and to its bare name and IP only when no other lab here has them. OpenSSH itself
// (ssh -G, which prints the config it would use and connects nowhere) says what each name
// reaches.
import { execa } from 'execa';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadLab } from '../../../lab/spec/load.js';
import { LabDir, renderSshConfig } from '../../../lab/store/lab-dir.js';
import { cli, example, tmp } from './lab-cli.js';

const { lab } = loadLab(example);
const hostLines = (config: string) => config.split('\n').filter((l) => l.startsWith('Host '));

/** What OpenSSH makes of `name` with this config: its HostName, User and HostKeyAlias. */
async function resolve(config: string, name: string) {
  const file = path.join(tmp('sshcfg'), 'config');
  writeFileSync(file, config);
  const r = await execa('ssh', ['-G', '-F', file, name], { stdin: 'ignore' });
  const get = (key: string) => new RegExp(`^${key} (.*)$`, 'm').exec(String(r.stdout))?.[1];
  return { hostname: get('hostname'), user: get('user'), alias: get('hostkeyalias') };
}

/** A state folder where lab `name` was brought up with these nodes (name -> IP). */
function recordLab(state: string, name: string, labfile: string, nodes: Record<string, string>): void {
  mkdirSync(path.join(state, name, 'private'), { recursive: true });
  const record = (ip: string) => ({ domain: 'd', ip, step: 'healthy', updated: '2024-01-01T00:00:00Z' });
  writeFileSync(
    path.join(state, name, 'private', 'state.json'),
    JSON.stringify({
      version: 1,
      serial: 1,
      lab: name,
      labfile,
      uri: 'qemu:///system',
      updated: '2024-01-01T00:00:00Z',
      network: { mode: 'bridge', bridge: 'br0' },
      nodes: Object.fromEntries(Object.entries(nodes).map(([n, ip]) => [n, record(ip)])),
    }),
  );
  writeFileSync(path.join(state, name, 'private', 'secret'), `${'ab'.repeat(32)}\n`, { mode: 0o600 });
}

const savedStateDir = process.env.LAB_STATE_DIR;
afterEach(() => {
  if (savedStateDir === undefined) delete process.env.LAB_STATE_DIR;
  else process.env.LAB_STATE_DIR = savedStateDir;
});

describe('ssh-config aliases', { timeout: 60_000 }, () => {
  it('alone on the host: NODE.LAB, LAB-NODE, the bare name and the IP', () => {
    expect(hostLines(renderSshConfig(lab, new LabDir(lab.name)))).toEqual([
      'Host coreos1.coreos-lab coreos-lab-coreos1 coreos1 10.52.0.52',
      'Host coreos2.coreos-lab coreos-lab-coreos2 coreos2 10.52.0.53',
      'Host coreos3.coreos-lab coreos-lab-coreos3 coreos3 10.52.0.54',
    ]);
  });

  it("a name or IP another lab has is left out; the lab's own names stay", () => {
    const taken = { names: new Set(['coreos1']), ips: new Set(['10.52.0.53']) };
    expect(hostLines(renderSshConfig(lab, new LabDir(lab.name), taken))).toEqual([
      'Host coreos1.coreos-lab coreos-lab-coreos1 10.52.0.52',
      'Host coreos2.coreos-lab coreos-lab-coreos2 coreos2',
      'Host coreos3.coreos-lab coreos-lab-coreos3 coreos3 10.52.0.54',
    ]);
  });

  it('OpenSSH takes every alias to the node, with its pinned host key alias; a left-out name to nowhere', async () => {
    const all = renderSshConfig(lab, new LabDir(lab.name));
    for (const name of ['coreos2.coreos-lab', 'coreos-lab-coreos2', 'coreos2', '10.52.0.53'])
      expect(await resolve(all, name), name).toEqual({
        hostname: '10.52.0.53',
        user: 'core',
        alias: 'coreos-lab-coreos2',
      });
    const some = renderSshConfig(lab, new LabDir(lab.name), { names: new Set(['coreos2']), ips: new Set() });
    expect((await resolve(some, 'coreos2')).alias).toBeUndefined();
  });

  it("the lab's own ssh_config (lab up writes it, for ssh -F and Ansible) has every alias", async () => {
    process.env.LAB_STATE_DIR = tmp('sshcfg-state');
    const dir = new LabDir(lab.name);
    await dir.ensure();
    await dir.writeAccessFiles(lab, Buffer.alloc(32, 7));
    expect(hostLines(readFileSync(dir.sshConfigFile, 'utf8'))).toEqual(hostLines(renderSshConfig(lab, dir)));
    expect(readFileSync(dir.sshConfigFile, 'utf8')).toContain(
      'Host coreos1.coreos-lab coreos-lab-coreos1 coreos1 10.52.0.52\n',
    );
  });

  it('lab ssh-config leaves out the names and IPs other labs on this host recorded', async () => {
    const state = tmp('sshcfg-labs');
    // The lab's own record does not count against it.
    recordLab(state, 'coreos-lab', example, { coreos1: '10.52.0.52', coreos2: '10.52.0.53' });
    recordLab(state, 'other', path.join(state, 'gone.yaml'), { coreos1: '10.9.0.1', web: '10.52.0.53' });
    const r = await cli(['ssh-config', '-f', example], { env: { LAB_STATE_DIR: state } });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(hostLines(r.stdout)).toEqual([
      'Host coreos1.coreos-lab coreos-lab-coreos1 10.52.0.52',
      'Host coreos2.coreos-lab coreos-lab-coreos2 coreos2',
      'Host coreos3.coreos-lab coreos-lab-coreos3 coreos3 10.52.0.54',
    ]);
  });
});

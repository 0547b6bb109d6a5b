// `lab inventory` (issue 19): an Ansible inventory from the Labfile and the lab's folder
// alone. The YAML is read back with the `yaml` package, the JSON as an inventory script's
// --list; ansible-inventory checks both when it is installed.
import { execa } from 'execa';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ansibleYaml, inventoryOf } from '../../../cmd/commands/inventory.js';
import { machineIdOf, nodeUuid } from '../../../lab/plan/identity.js';
import { loadLab } from '../../../lab/spec/load.js';
import { LabDir, renderSshConfig } from '../../../lab/store/lab-dir.js';
import { cli, example, helpExamples, installed, tmp, withLab } from './lab-cli.js';

const hasAnsible = await installed('ansible-inventory');
const hasJq = await installed('jq');

interface YamlInventory {
  all: {
    hosts: Record<string, Record<string, string>>;
    children: Record<string, { hosts: Record<string, unknown> }>;
  };
}

/** A lab of two templates, fleet on one node only, its own ssh user. */
const MIXED = `name: mixed
template: debian-12-lab
network: { mode: managed, cidr: 10.60.0.0/24, gateway: 10.60.0.1 }
ssh: { user: ops }
services: [etcd, docker]
nodes:
  - { name: web1, ip: 10.60.0.11 }
  - { name: old1, ip: 10.60.0.21, template: coreos-alpha, services: [etcd, fleet] }
`;

describe('lab inventory', { timeout: 120_000 }, () => {
  it('the example: groups per service and template, each node with its IP, user, machine-id and ssh_config', async () => {
    const state = tmp('inv-state');
    const r = await cli(['inventory', '-f', example], { env: { LAB_STATE_DIR: state } });
    expect(r.exitCode).toBe(0);
    const inv = parse(r.stdout) as YamlInventory;
    const sshConfig = path.join(state, 'coreos-lab', 'private', 'ssh_config');
    expect(Object.keys(inv.all.hosts)).toEqual(['coreos1', 'coreos2', 'coreos3']);
    expect(inv.all.hosts.coreos2).toEqual({
      ansible_host: '10.52.0.53',
      ansible_user: 'core',
      ansible_ssh_common_args: `-F ${sshConfig}`,
      machine_id: machineIdOf(nodeUuid('coreos-lab', 'coreos2')),
    });
    expect(inv.all.hosts.coreos2!.machine_id).toMatch(/^[0-9a-f]{32}$/);
    const members = (g: string) => Object.keys(inv.all.children[g]?.hosts ?? {});
    expect(Object.keys(inv.all.children)).toEqual(['docker', 'etcd', 'template_debian_12_lab']);
    for (const g of ['docker', 'etcd', 'template_debian_12_lab'])
      expect(members(g)).toEqual(['coreos1', 'coreos2', 'coreos3']);
    // Not up here: said on stderr, the inventory is printed all the same.
    expect(r.stderr).toBe(
      `warning: lab coreos-lab is not up on this host: ${sshConfig} does not exist yet (lab up writes it)\n`,
    );
  });

  it('--format json: the same, as an inventory script prints it (_meta.hostvars)', async () => {
    const state = tmp('inv-state');
    const yaml = parse(
      (await cli(['inventory', '-f', example], { env: { LAB_STATE_DIR: state } })).stdout,
    ) as YamlInventory;
    const r = await cli(['inventory', '-f', example, '--format', 'json'], { env: { LAB_STATE_DIR: state } });
    expect(r.exitCode).toBe(0);
    const doc = JSON.parse(r.stdout) as Record<string, { hosts?: string[]; children?: string[] }> & {
      _meta: { hostvars: Record<string, unknown> };
    };
    expect(doc._meta.hostvars).toEqual(yaml.all.hosts);
    expect(doc.all!.children).toEqual(['docker', 'etcd', 'template_debian_12_lab']);
    expect(doc.etcd!.hosts).toEqual(['coreos1', 'coreos2', 'coreos3']);
    expect(Object.keys(doc).sort()).toEqual(['_meta', 'all', 'docker', 'etcd', 'template_debian_12_lab']);
  });

  it('two templates, fleet on one node, a user of its own; read from the Labfile found here', async () => {
    const dir = tmp('inv-mixed');
    writeFileSync(path.join(dir, 'Labfile.yaml'), MIXED);
    const r = await cli(['inventory'], { cwd: dir });
    expect(r.exitCode).toBe(0);
    const inv = parse(r.stdout) as YamlInventory;
    const members = (g: string) => Object.keys(inv.all.children[g]?.hosts ?? {});
    expect(Object.keys(inv.all.children)).toEqual([
      'docker',
      'etcd',
      'fleet',
      'template_coreos_alpha',
      'template_debian_12_lab',
    ]);
    expect(members('etcd')).toEqual(['web1', 'old1']);
    expect(members('docker')).toEqual(['web1']);
    expect(members('fleet')).toEqual(['old1']);
    expect(members('template_coreos_alpha')).toEqual(['old1']);
    expect(inv.all.hosts.old1!.ansible_user).toBe('ops');
  });

  it('once up, no warning; an ssh_config of an older lab, without the IPs, is said', async () => {
    const state = tmp('inv-up');
    const env = { LAB_STATE_DIR: state };
    // lab up's access files, written the way it writes them (LabDir reads LAB_STATE_DIR once).
    const saved = process.env.LAB_STATE_DIR;
    process.env.LAB_STATE_DIR = state;
    const { lab } = loadLab(example);
    const dir = new LabDir(lab.name);
    if (saved === undefined) delete process.env.LAB_STATE_DIR;
    else process.env.LAB_STATE_DIR = saved;
    await dir.ensure();
    await dir.writeAccessFiles(lab, Buffer.alloc(32, 1));
    const up = await cli(['inventory', '-f', example], { env });
    expect(up.stderr).toBe('');
    expect(up.exitCode).toBe(0);
    writeFileSync(dir.sshConfigFile, renderSshConfig(lab, dir).replace(/ 10\.52\.0\.\d+$/gm, ''));
    const old = await cli(['inventory', '-f', example], { env });
    expect(old.exitCode).toBe(0);
    expect(old.stderr).toContain(
      "does not name the nodes' IPs (an older lab wrote it): lab up writes it anew",
    );
  });

  it('a state folder whose path has a space: ansible_ssh_common_args quotes it as a shell would', async () => {
    const { lab } = loadLab(example);
    const file = "/tmp/my lab's/coreos-lab/private/ssh_config";
    const args = (parse(ansibleYaml(inventoryOf(lab, file))) as YamlInventory).all.hosts.coreos1!
      .ansible_ssh_common_args!;
    const words = await execa('sh', ['-c', 'eval "set -- $1"; printf "%s\\n" "$@"', 'sh', args]);
    expect(String(words.stdout).split('\n')).toEqual(['-F', file]);
  });

  it('--format other than ansible or json is a usage error (exit 2)', async () => {
    const r = await cli(['inventory', '-f', example, '--format', 'ini']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('--format must be ansible or json, not ini');
  });

  it.skipIf(!hasAnsible)(
    'ansible-inventory reads both formats to the same hosts, groups and variables',
    async () => {
      const dir = tmp('inv-ansible');
      const yamlFile = path.join(dir, 'inventory.yaml');
      writeFileSync(yamlFile, (await cli(['inventory', '-f', example])).stdout);
      const script = path.join(dir, 'inventory.sh');
      writeFileSync(script, `#!/bin/sh\nexec lab inventory -f '${example}' --format json\n`, { mode: 0o755 });
      const list = async (inventory: string) => {
        const r = await withLab('ansible-inventory', ['-i', inventory, '--list']);
        expect(r.exitCode, r.stderr).toBe(0);
        return JSON.parse(r.stdout) as { _meta: { hostvars: Record<string, Record<string, string>> } };
      };
      const fromYaml = await list(yamlFile);
      expect(fromYaml._meta.hostvars.coreos1!.ansible_host).toBe('10.52.0.52');
      expect(await list(script)).toEqual(fromYaml);
    },
  );

  it("runs its help's examples as written", async () => {
    if (!hasAnsible)
      console.warn('ansible-inventory is not installed: the inventory is not checked by Ansible');
    const help = (await cli(['inventory', '--help'])).stdout;
    expect(help).toMatch(/^Usage: lab inventory \[-f Labfile\.yaml\] \[--format ansible\|json\]$/m);
    const examples = helpExamples(help);
    expect(examples.length).toBeGreaterThanOrEqual(2);
    const dir = tmp('inv-examples');
    copyFileSync(example, path.join(dir, 'Labfile.yaml'));
    copyFileSync(example, path.join(dir, 'Labfile.example.yaml'));
    for (const line of examples) {
      if (line.includes('| jq') && !hasJq) {
        console.warn(`jq is not installed: not run: ${line}`);
        continue;
      }
      const r = await withLab('bash', ['-o', 'pipefail', '-c', line], { cwd: dir });
      expect(r.exitCode, `${line}\n${r.stderr}`).toBe(0);
      expect(r.stderr).toContain('is not up on this host');
    }
    const written = readFileSync(path.join(dir, 'inventory.yaml'), 'utf8');
    expect((parse(written) as YamlInventory).all.hosts.coreos3!.ansible_host).toBe('10.52.0.54');
  });
});

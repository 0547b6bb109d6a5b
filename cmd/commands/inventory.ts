import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { KNOWN_SERVICES } from '../../lab/labfile/schema.js';
import type { LabSpec } from '../../lab/plan/model.js';
import { loadLab } from '../../lab/spec/load.js';
import { LabDir } from '../../lab/store/lab-dir.js';
import { labfilePath, parseFlags, UsageError } from '../args.js';
import { printWarnings } from '../output.js';

const HELP = `Usage: lab inventory [-f Labfile.yaml] [--format ansible|json]

Prints an Ansible inventory of the lab's nodes, from the Labfile and the lab's folder
alone (no libvirt, no SSH): a group per template (template_debian_12_lab) and per
service (etcd, docker, fleet); for each node ansible_host (its IP), ansible_user,
machine_id (the one lab gives it) and ansible_ssh_common_args: -F and the lab's
ssh_config, so Ansible logs in with the lab's key and checks the nodes' pinned host
keys (lab up writes that file). Use it as: ansible-playbook -i inventory.yaml site.yml

Options:
  --format ansible  Ansible's YAML inventory (the default)
  --format json     the JSON an inventory script prints (hostvars under _meta)

Examples:
  lab inventory > inventory.yaml
  lab inventory -f Labfile.example.yaml --format json | jq '._meta.hostvars.coreos1'
`;

/** One node's variables, as Ansible reads them. */
export interface HostVars {
  ansible_host: string;
  ansible_user: string;
  ansible_ssh_common_args: string;
  machine_id: string;
}

/** The inventory: each node's variables, and the groups (sorted) with their nodes. */
export interface Inventory {
  hosts: Record<string, HostVars>;
  groups: Record<string, string[]>;
}

export function run(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { format: { type: 'string' } }, HELP, false);
  if (!flags) return Promise.resolve(0);
  const format = flags.values.format ?? 'ansible';
  if (format !== 'ansible' && format !== 'json')
    throw new UsageError(`--format must be ansible or json, not ${String(format)}`, {
      hint: HELP.split('\n')[0],
    });
  const { lab } = loadLab(labfilePath(flags.values, { reads: true }));
  printWarnings(lab);
  const dir = new LabDir(lab.name);
  warnUnreachable(lab, dir.sshConfigFile);
  const inventory = inventoryOf(lab, dir.sshConfigFile);
  process.stdout.write(format === 'json' ? ansibleJson(inventory) : ansibleYaml(inventory));
  return Promise.resolve(0);
}

/** The lab's inventory; variables per host, none on `all`, which other inventories given with -i share. Pure. */
export function inventoryOf(lab: LabSpec, sshConfigFile: string): Inventory {
  const hosts: Record<string, HostVars> = {};
  const groups: Record<string, string[]> = {};
  const join = (group: string, node: string) => (groups[group] ??= []).push(node);
  for (const n of lab.nodes) {
    hosts[n.name] = {
      ansible_host: n.ip,
      ansible_user: lab.ssh.user,
      ansible_ssh_common_args: `-F ${shellWord(sshConfigFile)}`,
      machine_id: n.machineId,
    };
    join(`template_${n.template.name.replace(/[^A-Za-z0-9_]/g, '_')}`, n.name);
    for (const s of KNOWN_SERVICES) if (n.services.includes(s)) join(s, n.name);
  }
  const sorted = Object.fromEntries(Object.entries(groups).sort(([a], [b]) => a.localeCompare(b)));
  return { hosts, groups: sorted };
}

/** Ansible's YAML inventory: every host with its variables under `all`, the groups as its children. */
export function ansibleYaml(inv: Inventory): string {
  const children = Object.fromEntries(
    Object.entries(inv.groups).map(([g, nodes]) => [
      g,
      { hosts: Object.fromEntries(nodes.map((n) => [n, {}])) },
    ]),
  );
  return stringify({ all: { hosts: inv.hosts, children } });
}

/** What an inventory script prints for --list: groups with their hosts, variables in _meta.hostvars. */
export function ansibleJson(inv: Inventory): string {
  const groups = Object.fromEntries(Object.entries(inv.groups).map(([g, hosts]) => [g, { hosts }]));
  const doc = { _meta: { hostvars: inv.hosts }, all: { children: Object.keys(inv.groups) }, ...groups };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** Ansible splits ansible_ssh_common_args as a shell would (shlex): quote a path that needs it. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_./@%+=:,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'"'"'`)}'`;
}

/**
 * Says on stderr when Ansible could not reach the nodes yet: the lab is not up on this
 * host, or its ssh_config was written by a lab that did not name the nodes' IPs.
 */
function warnUnreachable(lab: LabSpec, sshConfigFile: string): void {
  let config: string;
  try {
    config = readFileSync(sshConfigFile, 'utf8');
  } catch {
    process.stderr.write(
      `warning: lab ${lab.name} is not up on this host: ${sshConfigFile} does not exist yet (lab up writes it)\n`,
    );
    return;
  }
  const hostLines = config.split('\n').filter((l) => l.startsWith('Host '));
  const named = (ip: string) => hostLines.some((l) => l.split(' ').includes(ip));
  if (!lab.nodes.every((n) => named(n.ip)))
    process.stderr.write(
      `warning: ${sshConfigFile} does not name the nodes' IPs (an older lab wrote it): lab up writes it anew\n`,
    );
}

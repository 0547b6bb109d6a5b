import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import type { FileSpec } from '../labfile/schema.js';
import type { LabSpec, NodeSpec } from '../plan/model.js';
import { etcdEnvironment, etcdctlEnvironment, etcdctlProfile } from './etcd.js';
import { DOCKER_DAEMON_JSON } from './units.js';
import type { ProvisioningBundle, ProvisioningRenderer, RenderInput } from './types.js';

const YAML_OPTS = { lineWidth: 0, sortMapEntries: false } as const;

/** A Labfile file as a `write_files` entry: cloud-init and coreos-cloudinit read the same keys. */
export function writeFilesEntry(f: FileSpec): Record<string, unknown> {
  return {
    path: f.path,
    content: f.content,
    ...(f.mode ? { permissions: f.mode.padStart(4, '0') } : {}),
    ...(f.owner ? { owner: f.owner } : {}),
  };
}

/** cloud-init network-config v2: the static address bound to the node's MAC. */
export function networkConfig(lab: LabSpec, node: NodeSpec): string {
  const nic: Record<string, unknown> = {
    match: { macaddress: node.mac },
    'set-name': node.template.nic,
    addresses: [`${node.ip}/${lab.network.prefix}`],
  };
  // gateway4 is deprecated upstream but it is what cloud-init 22.4 renders reliably.
  if (lab.network.gateway) nic.gateway4 = lab.network.gateway;
  if (lab.network.dns.length > 0) nic.nameservers = { addresses: lab.network.dns };
  // YAML 1.1 as cloud-init's PyYAML reads it: a MAC such as 52:54:00:52:10:30 is a base-60
  // integer there unless quoted (the node then came up with no address).
  return stringify({ version: 2, ethernets: { [node.template.nic]: nic } }, { ...YAML_OPTS, version: '1.1' });
}

function userData({ lab, node, keys, legacy }: RenderInput): string {
  const files: Record<string, unknown>[] = [];
  if (node.services.includes('etcd')) {
    // The image starts etcd once /etc/default/etcd exists. With a static bootstrap lab
    // writes it at runtime, member list included (apply/membership.ts); a discovery
    // bootstrap needs no member list, so the seed carries it.
    if (legacy || lab.etcd.bootstrap === 'discovery')
      files.push({
        path: '/etc/default/etcd',
        permissions: '0644',
        content: etcdEnvironment(lab, node, { legacy: legacy ?? false }),
      });
    files.push({
      path: '/etc/profile.d/lab-etcd.sh',
      permissions: '0644',
      content: etcdctlProfile(lab),
    });
    // pam_env reads /etc/environment for every SSH session, a command too (`lab ssh coreos1
    // -- etcdctl set ...`), where profile.d is read by login shells only.
    if (!legacy)
      files.push({ path: '/etc/environment', permissions: '0644', content: etcdctlEnvironment(lab) });
  }
  // Writing these files is what starts etcd and docker: the image gates both units on them.
  if (node.services.includes('docker'))
    files.push({
      path: '/etc/docker/daemon.json',
      permissions: '0644',
      content: DOCKER_DAEMON_JSON,
    });
  files.push(...node.files.map(writeFilesEntry));
  const doc = {
    hostname: node.name,
    manage_etc_hosts: true,
    users: [
      {
        name: lab.ssh.user,
        gecos: 'lab user',
        groups: node.services.includes('docker') ? ['sudo', 'docker'] : ['sudo'],
        shell: '/bin/bash',
        sudo: 'ALL=(ALL) NOPASSWD:ALL',
        lock_passwd: true,
        ssh_authorized_keys: keys.authorizedKeys,
      },
    ],
    // The host key is injected so the client can pin it before the first connection.
    ssh_deletekeys: true,
    ssh_genkeytypes: ['ed25519'],
    ssh_keys: { ed25519_private: keys.hostKey.privateKey, ed25519_public: keys.hostKey.publicKey },
    ...(files.length > 0 ? { write_files: files } : {}),
  };
  return `#cloud-config\n${stringify(doc, YAML_OPTS)}`;
}

/** cloud-init over a NoCloud `cidata` seed. Pure: same input, same bytes. */
export const renderCloudInit: ProvisioningRenderer = (input): ProvisioningBundle => {
  const user = userData(input);
  const network = networkConfig(input.lab, input.node);
  // A new instance-id when the config changes makes cloud-init apply it; stable otherwise.
  const instance = createHash('sha256').update(user).update('\0').update(network).digest('hex').slice(0, 12);
  const meta = stringify(
    { 'instance-id': `${input.lab.name}-${input.node.name}-${instance}`, 'local-hostname': input.node.name },
    YAML_OPTS,
  );
  return {
    dialect: 'cloud-init',
    delivery: 'nocloud',
    volumeLabel: 'cidata',
    files: { 'meta-data': meta, 'network-config': network, 'user-data': user },
  };
};

import { etcdEnvironment, etcdctlEnvironment, etcdctlProfile } from './etcd.js';
import { staticNetworkFile } from './network-files.js';
import { DOCKER_DAEMON_JSON, etcdMemberUnit, updatesOffFile } from './units.js';
import type { LabSpec, NodeSpec } from '../plan/model.js';
import type { ProvisioningBundle, ProvisioningRenderer, RenderInput } from './types.js';

/** The Ignition spec version when the template names none (Flatcar reads 3.4). */
export const DEFAULT_IGNITION_VERSION = '3.4.0';

/** An RFC 2397 data URL: Ignition's inline file contents. */
export function dataUrl(text: string): string {
  return `data:,${encodeURIComponent(text)}`;
}

interface IgnitionFile {
  path: string;
  mode: number;
  overwrite: boolean;
  contents: { source: string };
  user?: { name: string };
  group?: { name: string };
}

function file(path: string, content: string, mode: number, owner?: string): IgnitionFile {
  const [user, group] = owner?.split(':') ?? [];
  return {
    path,
    mode,
    overwrite: true,
    contents: { source: dataUrl(content) },
    ...(user ? { user: { name: user } } : {}),
    ...(group ? { group: { name: group } } : {}),
  };
}

/**
 * The Debian guest provisioned by Ignition (debian-12-ignition) runs Debian's packages, as
 * debian-12-lab does under cloud-init: its image starts etcd once /etc/default/etcd exists
 * (lab writes it at runtime with the membership) and docker once /etc/docker/daemon.json
 * does. Its user does not exist before Ignition makes it, so the config gives it the
 * groups, shell and sudo rule that Flatcar's and Fedora CoreOS's `core` has built in.
 */
function debianParts(input: RenderInput): { files: IgnitionFile[]; units: Record<string, unknown>[] } {
  const { lab, node, legacy } = input;
  const files: IgnitionFile[] = [
    // sudo looks the host name up; Debian's minimal image resolves it only from /etc/hosts.
    file(
      '/etc/hosts',
      `127.0.0.1\tlocalhost\n127.0.1.1\t${node.name}\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
      0o644,
    ),
    file(`/etc/sudoers.d/90-lab-${lab.ssh.user}`, `${lab.ssh.user} ALL=(ALL) NOPASSWD:ALL\n`, 0o440),
  ];
  const units: Record<string, unknown>[] = [];
  const etcd = node.services.includes('etcd') ? node.template.services.etcd : undefined;
  if (etcd) {
    if (legacy || lab.etcd.bootstrap === 'discovery')
      files.push(file('/etc/default/etcd', etcdEnvironment(lab, node, { legacy: legacy ?? false }), 0o644));
    files.push(file('/etc/profile.d/lab-etcd.sh', etcdctlProfile(lab), 0o644));
    // pam_env reads it for `lab ssh NODE -- etcdctl ...` too, where profile.d is login-only.
    if (!legacy) files.push(file('/etc/environment', etcdctlEnvironment(lab), 0o644));
    units.push({ name: etcd.unit, enabled: true });
  }
  const docker = node.services.includes('docker') ? node.template.services.docker : undefined;
  if (docker) {
    files.push(file('/etc/docker/daemon.json', DOCKER_DAEMON_JSON, 0o644));
    units.push({ name: docker.unit, enabled: true });
  }
  return { files, units };
}

function config(input: RenderInput): Record<string, unknown> {
  const { lab, node, keys, legacy } = input;
  const debian = node.template.os === 'debian';
  const net = staticNetworkFile(lab, node);
  const files: IgnitionFile[] = [
    file('/etc/hostname', `${node.name}\n`, 0o644),
    file(net.path, net.content, net.mode),
    // The host key lab pinned before boot: sshd generates only the keys that are missing.
    file('/etc/ssh/ssh_host_ed25519_key', keys.hostKey.privateKey, 0o600),
    file('/etc/ssh/ssh_host_ed25519_key.pub', `${keys.hostKey.publicKey}\n`, 0o644),
  ];
  const updates = updatesOffFile(node);
  if (updates) files.push(file(updates.path, updates.content, 0o644));
  const units: Record<string, unknown>[] = [];
  if (debian) {
    const parts = debianParts(input);
    files.push(...parts.files);
    units.push(...parts.units);
  } else {
    const etcd = node.services.includes('etcd') ? node.template.services.etcd : undefined;
    if (etcd) {
      files.push(file('/etc/profile.d/lab-etcd.sh', etcdctlProfile(lab), 0o644));
      const unit = etcdMemberUnit(lab, node, legacy ?? false);
      units.push({
        name: unit.name,
        enabled: true,
        ...(unit.contents ? { contents: unit.contents } : {}),
        ...(unit.dropin ? { dropins: [{ name: unit.dropin.name, contents: unit.dropin.contents }] } : {}),
      });
    }
    const docker = node.services.includes('docker') ? node.template.services.docker : undefined;
    if (docker) units.push({ name: docker.unit, enabled: true });
  }
  for (const f of node.files) files.push(file(f.path, f.content, parseInt(f.mode ?? '0644', 8), f.owner));
  const user: Record<string, unknown> = { name: lab.ssh.user, sshAuthorizedKeys: keys.authorizedKeys };
  if (debian) {
    user.groups = node.services.includes('docker') ? ['sudo', 'docker'] : ['sudo'];
    user.shell = '/bin/bash';
  }
  return {
    ignition: { version: node.template.provisioning.ignitionVersion ?? DEFAULT_IGNITION_VERSION },
    passwd: { users: [user] },
    storage: { files },
    systemd: { units },
  };
}

/**
 * Ignition spec v3 JSON for Flatcar and Fedora CoreOS, delivered over QEMU fw_cfg. It runs
 * on the first boot only: a changed config is planned as a replace. Pure.
 */
export const renderIgnition: ProvisioningRenderer = (input): ProvisioningBundle => ({
  dialect: 'ignition',
  delivery: 'fwcfg',
  files: { 'config.ign': `${JSON.stringify(config(input), null, 2)}\n` },
});

/** Keys of the right shape for rendering a config whose paths, not contents, are wanted. */
const PLACEHOLDER_KEYS = {
  authorizedKeys: ['ssh-ed25519 AAAA lab'],
  hostKey: { privateKey: 'x', publicKey: 'ssh-ed25519 AAAA lab' },
};

/** The node's Ignition config with placeholder keys: for checking it (ignition-validate). Pure. */
export function ignitionConfigToCheck(lab: LabSpec, node: NodeSpec): string {
  return JSON.stringify(config({ lab, node, keys: PLACEHOLDER_KEYS }));
}

/** The paths lab's own Ignition config for the node writes, the Labfile's files left out. Pure. */
export function ignitionOwnPaths(lab: LabSpec, node: NodeSpec): Set<string> {
  const cfg = config({ lab, node: { ...node, files: [] }, keys: PLACEHOLDER_KEYS });
  return new Set(((cfg.storage as { files: IgnitionFile[] }).files ?? []).map((f) => f.path));
}

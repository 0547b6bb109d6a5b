import { stringify } from 'yaml';
import { mergeCloudConfig } from '../labfile/cloud-config-fragment.js';
import { writeFilesEntry } from './cloud-init.js';
import { etcdClientUrls, etcdGeneration, etcdMemberSettings, membershipDropin } from './etcd.js';
import { staticNetworkFile } from './network-files.js';
import { etcdMemberUnit } from './units.js';
import type { ProvisioningBundle, ProvisioningRenderer, RenderInput } from './types.js';

// coreos-cloudinit parses YAML 1.1, where a bare off, on, yes or no is a boolean: 1.1 output
// quotes such strings (reboot_strategy: "off").
const YAML_OPTS = { lineWidth: 0, sortMapEntries: false, version: '1.1' } as const;

/** Where a config drive carries the user data (OpenStack layout, label `config-2`). */
export const CONFIG_DRIVE_USER_DATA = 'openstack/latest/user_data';

/** A v2/v3 setting name as a cloud-config key: Flatcar reads underscores only. */
const key = (setting: string) => setting.replaceAll('-', '_');

/**
 * `coreos.etcd` for etcd 0.x (the walkthrough's keys: name, addr, peer_addr, bind_addr,
 * discovery or peers), `coreos.etcd2` for etcd 2: the same values as every other dialect.
 */
function etcdSection({ lab, node, legacy }: RenderInput): Record<string, unknown> {
  if (etcdGeneration(node.template.services.etcd?.version) === 'v0') {
    // With a static bootstrap the peers come from the file lab writes at runtime (ETCD_PEERS).
    const peers = legacy ? lab.nodes.filter((n) => n.services.includes('etcd') && n.name !== node.name) : [];
    return {
      etcd: {
        name: node.name,
        addr: `${node.ip}:4001`,
        peer_addr: `${node.ip}:7001`,
        bind_addr: '0.0.0.0',
        ...(lab.etcd.bootstrap === 'discovery' && lab.etcd.discovery
          ? { discovery: lab.etcd.discovery }
          : peers.length > 0
            ? { peers: peers.map((p) => `${p.ip}:7001`).join(',') }
            : {}),
      },
    };
  }
  // coreos.etcd2 has no switch for the v2 API: etcd 2 serves only that one.
  const settings = etcdMemberSettings(lab, node, { legacy: legacy ?? false }).filter(
    ([k]) => k !== 'enable-v2',
  );
  return { etcd2: Object.fromEntries(settings.map(([k, v]) => [key(k), v])) };
}

function cloudConfig(input: RenderInput): string {
  const { lab, node, keys, legacy } = input;
  const etcd = node.services.includes('etcd') ? node.template.services.etcd : undefined;
  const generation = etcdGeneration(etcd?.version);
  const units: Record<string, unknown>[] = [];
  // With a static bootstrap, etcd 0.4 and 2 wait for the membership lab writes at runtime.
  const gated = !legacy && lab.etcd.bootstrap !== 'discovery';
  if (etcd && generation !== 'v3')
    units.push({
      name: etcd.unit,
      command: 'start',
      ...(gated
        ? { drop_ins: [(({ name, contents }) => ({ name, content: contents }))(membershipDropin())] }
        : {}),
    });
  if (etcd && generation === 'v3') {
    // No cloud-config section for etcd 3 (Flatcar's etcd-member): a drop-in sets its flags.
    const unit = etcdMemberUnit(lab, node, legacy ?? false);
    units.push({
      name: unit.name,
      enable: true,
      command: 'start',
      ...(unit.contents ? { content: unit.contents } : {}),
      ...(unit.dropin ? { drop_ins: [{ name: unit.dropin.name, content: unit.dropin.contents }] } : {}),
    });
  }
  const docker = node.services.includes('docker') ? node.template.services.docker : undefined;
  if (docker) units.push({ name: docker.unit, command: 'start' });
  const fleet = node.services.includes('fleet') ? node.template.services.fleet : undefined;
  if (fleet) units.push({ name: fleet.unit, command: 'start' });

  const net = staticNetworkFile(lab, node);
  const files: Record<string, unknown>[] = [
    { path: net.path, permissions: `0${net.mode.toString(8)}`, content: net.content },
    // The host key lab pinned before boot: sshd generates only the keys that are missing.
    { path: '/etc/ssh/ssh_host_ed25519_key', permissions: '0600', content: keys.hostKey.privateKey },
    {
      path: '/etc/ssh/ssh_host_ed25519_key.pub',
      permissions: '0644',
      content: `${keys.hostKey.publicKey}\n`,
    },
  ];
  files.push(...node.files.map(writeFilesEntry));
  const coreos: Record<string, unknown> = {
    ...(etcd && generation !== 'v3' ? etcdSection(input) : {}),
    ...(fleet
      ? {
          fleet: {
            public_ip: node.ip,
            metadata: `lab=${lab.name},node=${node.name}`,
            // The local member where the node runs one: the member list never enters a
            // node's first-boot config (a node joining later changes no other node's).
            etcd_servers:
              etcd && !legacy
                ? `http://127.0.0.1:${generation === 'v0' ? 4001 : 2379}`
                : etcdClientUrls(lab, generation === 'v0' ? 4001 : 2379),
          },
        }
      : {}),
    // A training lab must not reboot itself into a new version in the middle of a class.
    update: { reboot_strategy: 'off' },
    units,
  };
  const doc = {
    hostname: node.name,
    ssh_authorized_keys: keys.authorizedKeys,
    coreos,
    write_files: files,
  };
  // The Labfile's cloudConfig, already in the parser's spelling: maps merge, lists append.
  const merged = node.cloudConfig ? mergeCloudConfig(doc, node.cloudConfig) : doc;
  return `#cloud-config\n${stringify(merged, YAML_OPTS)}`;
}

/**
 * CoreOS / Flatcar cloud-config, read by coreos-cloudinit from a config drive. Only keys
 * that Flatcar's parser reads (underscores; the historical CoreOS parser read them too).
 * Pure: same input, same bytes.
 */
export const renderCoreosCloudinit: ProvisioningRenderer = (input): ProvisioningBundle => ({
  dialect: 'coreos-cloudinit',
  delivery: 'config-drive',
  volumeLabel: 'config-2',
  files: { [CONFIG_DRIVE_USER_DATA]: cloudConfig(input) },
});

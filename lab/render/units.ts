import type { LabSpec, NodeSpec } from '../plan/model.js';
import { MEMBERSHIP_GATE, etcdMemberSettings } from './etcd.js';

/** Docker's config on the Debian images: writing it is what lets their docker start. */
export const DOCKER_DAEMON_JSON = '{ "log-driver": "journald" }\n';

/** A systemd unit as a provisioning config carries it: whole contents, or a drop-in. */
export interface UnitConfig {
  name: string;
  contents?: string;
  dropin?: { name: string; contents: string };
}

/** `--flag=value` lines, continued with backslashes, for an ExecStart. */
function flagLines(settings: [string, string][]): string {
  return settings.map(([k, v]) => ` \\\n  --${k}=${v}`).join('');
}

/**
 * etcd 3 on a CoreOS-family image. Flatcar ships `etcd-member.service` (etcd in a
 * container through /usr/lib/coreos/etcd-wrapper): a drop-in replaces its ExecStart
 * with the member's flags, as Flatcar's "Customizing the etcd unit" does. An image
 * without etcd (Fedora CoreOS) gets a whole unit that runs the template's container.
 * With a static bootstrap the member list comes from the file lab writes at runtime
 * (systemd puts its values into the flags); the unit waits for that file.
 */
export function etcdMemberUnit(lab: LabSpec, node: NodeSpec, legacy = false): UnitConfig {
  const etcd = node.template.services.etcd!;
  const runtime = !legacy && lab.etcd.bootstrap !== 'discovery';
  const settings: [string, string][] = [
    ...etcdMemberSettings(lab, node, { legacy }),
    ...(runtime
      ? ([
          ['initial-cluster', '${ETCD_INITIAL_CLUSTER}'],
          ['initial-cluster-state', '${ETCD_INITIAL_CLUSTER_STATE}'],
        ] as [string, string][])
      : []),
  ];
  const gate = runtime ? MEMBERSHIP_GATE : { unit: '', service: '' };
  if (etcd.container) {
    const contents =
      `[Unit]\nDescription=etcd member (lab)\nWants=network-online.target\nAfter=network-online.target\n${gate.unit}\n` +
      `[Service]\n${gate.service}ExecStartPre=/usr/bin/mkdir -p /var/lib/etcd\nExecStartPre=-/usr/bin/podman rm -f etcd\n` +
      `ExecStart=/usr/bin/podman run --name etcd --net=host --volume /var/lib/etcd:/var/lib/etcd:z ${etcd.container} /usr/local/bin/etcd${flagLines(settings)}\n` +
      'ExecStop=/usr/bin/podman stop etcd\nRestart=on-failure\nRestartSec=5\n\n[Install]\nWantedBy=multi-user.target\n';
    return { name: etcd.unit, contents };
  }
  const head = runtime ? `[Unit]\n${gate.unit}\n` : '';
  const contents = `${head}[Service]\n${gate.service}ExecStart=\nExecStart=/usr/lib/coreos/etcd-wrapper $ETCD_OPTS${flagLines(settings)}\n`;
  return { name: etcd.unit, dropin: { name: '20-lab-etcd.conf', contents } };
}

/**
 * The file that keeps the OS from updating and rebooting itself: a training lab must stay
 * on one version for the length of a class. Flatcar reads update.conf; Fedora CoreOS's
 * zincati reads config.d. Container Linux and Debian get theirs elsewhere (cloud-config).
 */
export function updatesOffFile(node: NodeSpec): { path: string; content: string } | undefined {
  switch (node.template.os) {
    case 'flatcar':
      return { path: '/etc/flatcar/update.conf', content: 'REBOOT_STRATEGY=off\n' };
    case 'fedora-coreos':
      return {
        path: '/etc/zincati/config.d/90-lab-updates-off.toml',
        content: '[updates]\nenabled = false\n',
      };
    default:
      return undefined;
  }
}

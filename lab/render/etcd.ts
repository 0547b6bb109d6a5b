import type { LabSpec, NodeSpec } from '../plan/model.js';

/** Which configuration generation an image's etcd reads, from the template's version. */
export type EtcdGeneration = 'v0' | 'v2' | 'v3';

/** `0.4` -> v0 (CoreOS `coreos.etcd`), `2.x` -> v2 (`coreos.etcd2`), else v3. */
export function etcdGeneration(version: string | undefined): EtcdGeneration {
  if (version?.startsWith('0.')) return 'v0';
  if (version?.startsWith('2.')) return 'v2';
  return 'v3';
}

/**
 * One etcd member's settings (v2/v3 flag names without the leading dashes), in a fixed
 * order: every dialect writes the same values, as environment, cloud-config keys or flags.
 */
export function etcdMemberSettings(lab: LabSpec, node: NodeSpec): [string, string][] {
  const members = lab.nodes.filter((n) => n.services.includes('etcd'));
  const s: [string, string][] = [
    ['name', node.name],
    ['data-dir', '/var/lib/etcd/lab'],
    ['listen-peer-urls', `http://${node.ip}:2380`],
    ['listen-client-urls', `http://${node.ip}:2379,http://127.0.0.1:2379`],
    ['initial-advertise-peer-urls', `http://${node.ip}:2380`],
    ['advertise-client-urls', `http://${node.ip}:2379`],
  ];
  if (lab.etcd.bootstrap === 'discovery' && lab.etcd.discovery) s.push(['discovery', lab.etcd.discovery]);
  else s.push(['initial-cluster', members.map((m) => `${m.name}=http://${m.ip}:2380`).join(',')]);
  s.push(['initial-cluster-state', 'new'], ['initial-cluster-token', lab.etcd.token]);
  // Lab guests are often emulated (TCG) and share a few cores: etcd's defaults (100 ms
  // heartbeat, 1 s election) made leaders flap under that load. 5x slower timers keep
  // one leader and still elect a new one within seconds of a failure.
  s.push(['heartbeat-interval', '500'], ['election-timeout', '5000']);
  // etcd 3.4/3.5 serve the v2 API (etcdctl set/get, fleet) only when asked.
  if (lab.etcd.api === 'v2') s.push(['enable-v2', 'true']);
  return s;
}

/** The settings as etcd's environment variables: `listen-peer-urls` -> `ETCD_LISTEN_PEER_URLS`. */
export function etcdEnvName(setting: string): string {
  return `ETCD_${setting.toUpperCase().replaceAll('-', '_')}`;
}

/** The environment file etcd reads (Debian's /etc/default/etcd). */
export function etcdEnvironment(lab: LabSpec, node: NodeSpec): string {
  return etcdMemberSettings(lab, node)
    .map(([k, v]) => `${etcdEnvName(k)}=${v}\n`)
    .join('');
}

/** Client URLs of every etcd member (fleet's etcd_servers, etcdctl endpoints). */
export function etcdClientUrls(lab: LabSpec, port = 2379): string {
  return lab.nodes
    .filter((n) => n.services.includes('etcd'))
    .map((n) => `http://${n.ip}:${port}`)
    .join(',');
}

/** The profile snippet that points etcdctl at the local member, in the lab's API version. */
export function etcdctlProfile(lab: LabSpec): string {
  return `export ETCDCTL_API=${lab.etcd.api === 'v2' ? 2 : 3}\nexport ETCDCTL_ENDPOINTS=http://127.0.0.1:2379\n`;
}

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
 * Who the members are when a node's etcd first starts: a runtime fact lab decides over SSH
 * (bootstrap, join as a learner, rebuild), never part of a node's first-boot config.
 */
export interface EtcdMembership {
  /** `name=peer-url` of every member the new one is to meet, itself included. */
  cluster: { name: string; peerUrl: string }[];
  /** `new` for a bootstrap, `existing` to join a running cluster. */
  state: 'new' | 'existing';
}

/** The peer URL of a node's member. */
export const peerUrl = (node: Pick<NodeSpec, 'ip'>): string => `http://${node.ip}:2380`;

/** The static bootstrap every etcd node of the Labfile meets: all of them, state new. */
export function bootstrapMembership(lab: LabSpec): EtcdMembership {
  return {
    cluster: lab.nodes
      .filter((n) => n.services.includes('etcd'))
      .map((m) => ({ name: m.name, peerUrl: peerUrl(m) })),
    state: 'new',
  };
}

/** The membership as etcd's two settings. */
export function membershipSettings(m: EtcdMembership): [string, string][] {
  return [
    ['initial-cluster', m.cluster.map((c) => `${c.name}=${c.peerUrl}`).join(',')],
    ['initial-cluster-state', m.state],
  ];
}

/**
 * One etcd member's settings (v2/v3 flag names without the leading dashes), in a fixed
 * order: every dialect writes the same values, as environment, cloud-config keys or flags.
 * Without `membership` (the first-boot config) the member list is left out: lab writes it
 * at runtime. `legacy` renders the layout of labs made before that (membership inside, the
 * Labfile's etcd nodes, state new): only to recognise their config hash.
 */
export function etcdMemberSettings(
  lab: LabSpec,
  node: NodeSpec,
  opts: { membership?: EtcdMembership; legacy?: boolean } = {},
): [string, string][] {
  const s: [string, string][] = [
    ['name', node.name],
    ['data-dir', '/var/lib/etcd/lab'],
    ['listen-peer-urls', peerUrl(node)],
    ['listen-client-urls', `http://${node.ip}:2379,http://127.0.0.1:2379`],
    ['initial-advertise-peer-urls', peerUrl(node)],
    ['advertise-client-urls', `http://${node.ip}:2379`],
  ];
  if (lab.etcd.bootstrap === 'discovery' && lab.etcd.discovery) s.push(['discovery', lab.etcd.discovery]);
  else if (opts.legacy) s.push(...membershipSettings(bootstrapMembership(lab)).slice(0, 1));
  else if (opts.membership) s.push(...membershipSettings(opts.membership).slice(0, 1));
  if (opts.legacy || lab.etcd.bootstrap === 'discovery') s.push(['initial-cluster-state', 'new']);
  else if (opts.membership) s.push(['initial-cluster-state', opts.membership.state]);
  s.push(['initial-cluster-token', lab.etcd.token]);
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
export function etcdEnvironment(
  lab: LabSpec,
  node: NodeSpec,
  opts: { membership?: EtcdMembership; legacy?: boolean } = {},
): string {
  return etcdMemberSettings(lab, node, opts)
    .map(([k, v]) => `${etcdEnvName(k)}=${v}\n`)
    .join('');
}

/**
 * Where lab writes a node's membership at runtime, and what: Debian's etcd (debian-12-lab,
 * debian-12-ignition) reads
 * /etc/default/etcd (the image starts etcd only once it exists), so the whole member
 * environment goes there; the CoreOS-family units read /etc/lab/etcd-membership.env,
 * which their first-boot drop-in names and waits for (ConditionPathExists).
 */
export const MEMBERSHIP_ENV = '/etc/lab/etcd-membership.env';

export function membershipFile(
  lab: LabSpec,
  node: NodeSpec,
  membership: EtcdMembership,
): { path: string; content: string; unit: string } {
  const unit = node.template.services.etcd?.unit ?? 'etcd.service';
  // Debian's etcd package, provisioned by cloud-init or Ignition alike.
  if (node.template.provisioning.dialect === 'cloud-init' || node.template.os === 'debian')
    return { path: '/etc/default/etcd', content: etcdEnvironment(lab, node, { membership }), unit };
  if (etcdGeneration(node.template.services.etcd?.version) === 'v0') {
    const peers = membership.cluster.filter((c) => c.name !== node.name);
    const hostOf = (url: string) => new URL(url).hostname;
    return {
      path: MEMBERSHIP_ENV,
      content: `ETCD_PEERS=${peers.map((p) => `${hostOf(p.peerUrl)}:7001`).join(',')}\n`,
      unit,
    };
  }
  return {
    path: MEMBERSHIP_ENV,
    content: membershipSettings(membership)
      .map(([k, v]) => `${etcdEnvName(k)}=${v}\n`)
      .join(''),
    unit,
  };
}

/**
 * What a CoreOS-family etcd unit carries in its first-boot config: it starts only once lab
 * has written the membership, and reads it. The same lines whatever the members are.
 */
export const MEMBERSHIP_GATE = {
  unit: `ConditionPathExists=${MEMBERSHIP_ENV}\n`,
  service: `EnvironmentFile=${MEMBERSHIP_ENV}\n`,
} as const;

/** The gate as a drop-in of its own (etcd 2's unit, whose flags cloud-config sets). */
export function membershipDropin(): { name: string; contents: string } {
  return {
    name: '30-lab-membership.conf',
    contents: `[Unit]\n${MEMBERSHIP_GATE.unit}\n[Service]\n${MEMBERSHIP_GATE.service}`,
  };
}

/** Client URLs of every etcd member (fleet's etcd_servers, etcdctl endpoints). */
export function etcdClientUrls(lab: LabSpec, port = 2379): string {
  return lab.nodes
    .filter((n) => n.services.includes('etcd'))
    .map((n) => `http://${n.ip}:${port}`)
    .join(',');
}

/** /etc/environment's lines for etcdctl (pam_env: also for commands run over SSH). */
export function etcdctlEnvironment(lab: LabSpec): string {
  return `ETCDCTL_API=${lab.etcd.api === 'v2' ? 2 : 3}\nETCDCTL_ENDPOINTS=http://127.0.0.1:2379\n`;
}

/** The profile snippet that points etcdctl at the local member, in the lab's API version. */
export function etcdctlProfile(lab: LabSpec): string {
  return `export ETCDCTL_API=${lab.etcd.api === 'v2' ? 2 : 3}\nexport ETCDCTL_ENDPOINTS=http://127.0.0.1:2379\n`;
}

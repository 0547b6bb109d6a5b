import type { Labfile } from '../labfile/schema.js';
import type { LabSpec, NodeSpec } from './model.js';
import type { Report } from './report.js';

/** The lab's etcd settings, checked (bootstrap, the v2 API against the nodes' etcd), defaults filled in. */
export function resolveEtcd(labfile: Labfile, nodes: NodeSpec[], report: Report): LabSpec['etcd'] {
  const etcd = labfile.etcd ?? {};
  const bootstrap = etcd.bootstrap ?? (etcd.discovery ? 'discovery' : 'static');
  if (bootstrap === 'discovery' && !etcd.discovery)
    report.at(['etcd'], 'etcd.bootstrap discovery needs etcd.discovery: the discovery URL', 'bootstrap');
  if (bootstrap === 'static' && etcd.discovery)
    report.at(['etcd', 'discovery'], 'etcd.discovery is only used with bootstrap: discovery');

  // etcd 3.6 removed the v2 API that etcdctl set/get and fleet need.
  if (etcd.api === 'v2') {
    const tooNew = nodes.find((n) => {
      const [major, minor] = (n.template.services.etcd?.version ?? '').split('.').map(Number);
      return n.services.includes('etcd') && major === 3 && (minor ?? 0) >= 6;
    });
    if (tooNew)
      report.at(
        ['etcd', 'api'],
        `etcd.api v2 needs etcd 3.5 or older, but template ${tooNew.template.name} ships etcd ${tooNew.template.services.etcd!.version} (3.6 removed the v2 API)`,
      );
  }
  return {
    bootstrap,
    ...(etcd.discovery ? { discovery: etcd.discovery } : {}),
    api: etcd.api ?? 'v3',
    token: etcd.token ?? labfile.name,
  };
}

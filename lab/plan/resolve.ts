import type { Issue } from '../errors.js';
import type { PathKey, SourceMap } from '../labfile/parse.js';
import { aboutUnusable, type Unusable } from '../labfile/salvage.js';
import { parseSize, type Labfile } from '../labfile/schema.js';
import { resolveEtcd } from './etcd.js';
import { canonicalJson, sha256 } from './hash.js';
import { resolveUnits } from './lab-units.js';
import type { LabSpec } from './model.js';
import { checkNetwork, networkSpec } from './network.js';
import { resolveNodes } from './nodes.js';
import { dedupe, inSourceOrder, newReport, type Report } from './report.js';
import { usedTemplates, type TemplateLookup, type UsedTemplates } from './template-lookup.js';
import { ignitionOwnPaths } from '../render/ignition.js';

/**
 * A node whose etcd runs from a container the template pulls at boot (Fedora CoreOS's
 * podman unit, Flatcar's etcd-member through etcd-wrapper) needs a way out: a managed
 * network with `forward: none` has none, and that pull can never work.
 */
function checkPullsAtBoot(
  labfile: Labfile,
  nodes: ReturnType<typeof resolveNodes>,
  report: ReturnType<typeof newReport>,
): void {
  if (labfile.network.mode !== 'managed' || (labfile.network.forward ?? 'none') !== 'none') return;
  const pulls = nodes.find((n) => {
    const etcd = n.services.includes('etcd') ? n.template.services.etcd : undefined;
    return etcd !== undefined && (etcd.container !== undefined || etcd.unit === 'etcd-member.service');
  });
  if (pulls)
    report.at(
      labfile.network.forward === undefined ? ['network'] : ['network', 'forward'],
      `node ${pulls.name}: template ${pulls.template.name} pulls etcd's container at boot, which a managed network with forward: none can never reach: use forward: nat, or a bridge to a network with a way out`,
    );
}

/**
 * Labfile shape -> LabSpec: fills defaults and checks every cross-field rule
 * (duplicates, CIDR membership, templates, paths). Returns all issues at once, in the
 * order of the text they point at. Pure.
 *
 * The steps run in this order: network, the lab's template, nodes (one by one), etcd,
 * units. `unusable`: the values of a salvaged Labfile that stand for what the schema
 * refused (../labfile/salvage.ts); a check that needs one is skipped, and what the checks
 * say of one is left out, so that every other problem is still told.
 */
export function resolveLab(
  labfile: Labfile,
  source: SourceMap,
  lookup: TemplateLookup,
  unusable: readonly Unusable[] = [],
): { ok: true; lab: LabSpec } | { ok: false; issues: Issue[] } {
  const report = newReport(source);
  const usable = (path: PathKey[]) => !aboutUnusable(unusable, path);
  const checked = checkNetwork(labfile.network, report);
  // The host's address on a managed network is the gateway's or the first host's.
  const network = ['mode', 'cidr', 'gateway'].every((k) => usable(['network', k]))
    ? checked
    : { ...checked, hostIp: undefined };
  // A template reference the schema refused is not looked up: the nodes using it are left out.
  const found = usedTemplates(lookup, report);
  const templates: UsedTemplates = {
    use: (ref, path) => (usable(path) ? found.use(ref, path) : undefined),
    get: (ref) => found.get(ref),
  };
  templates.use(labfile.template, ['template']);
  const positions = new Map<string, PathKey[]>();
  const nodes = resolveNodes({ labfile, network, templates, report, positions });
  const etcd = resolveEtcd(labfile, nodes, report);
  if (usable(['network', 'mode']) && usable(['network', 'forward'])) checkPullsAtBoot(labfile, nodes, report);
  const units = resolveUnits(labfile, nodes, report);

  const user = labfile.ssh?.user ?? templates.get(labfile.template)?.ssh.user ?? 'core';
  const issues = () => report.issues.filter((i) => usable([...(source.pathOf(i) ?? [])]));
  if (issues().length > 0) return { ok: false, issues: inSourceOrder(dedupe(issues())) };

  const lab: LabSpec = {
    name: labfile.name,
    ...(labfile.libvirt ? { uri: labfile.libvirt } : {}),
    accelerator: labfile.accelerator ?? 'auto',
    tcg: { tbCacheMiB: tbCacheMiB(labfile, report) },
    network: networkSpec(labfile.name, labfile.network, network),
    ssh: { user, authorizedKeys: labfile.ssh?.authorizedKeys ?? [] },
    etcd,
    nodes,
    units,
    warnings: dedupe(report.warnings),
    labfileHash: sha256(canonicalJson(labfile)),
  };
  // What needs the whole lab: checked once everything else is right.
  checkIgnitionPaths(lab, positions, report);
  if (issues().length > 0) return { ok: false, issues: inSourceOrder(dedupe(issues())) };
  return { ok: true, lab };
}

/**
 * QEMU's TCG translation cache per guest. QEMU's own default is about 1 GiB of host memory
 * per guest; lab's (256 MiB) fits about four times as many guests, at the cost of more
 * retranslation in a busy guest. Below 32 MiB a booting guest mostly retranslates.
 */
export const DEFAULT_TB_CACHE_MIB = 256;

function sizeOrUndefined(text: string): number | undefined {
  try {
    return parseSize(text);
  } catch {
    return undefined;
  }
}

function tbCacheMiB(labfile: Labfile, report: Report): number {
  const text = labfile.tcg?.tbCache;
  // Not a size at all: the schema has said so already.
  const bytes = typeof text === 'string' ? sizeOrUndefined(text) : undefined;
  if (text === undefined || bytes === undefined) return DEFAULT_TB_CACHE_MIB;
  if (bytes % 2 ** 20 !== 0 || bytes < 32 * 2 ** 20 || bytes > 2 * 2 ** 30) {
    report.at(['tcg', 'tbCache'], `tcg.tbCache ${text}: expected whole MiB from 32MiB to 2GiB`);
    return DEFAULT_TB_CACHE_MIB;
  }
  return bytes / 2 ** 20;
}

/**
 * Ignition refuses a config that lists one path twice, and it finds out in the guest's
 * first boot, which then stops in the initramfs's emergency shell. A Labfile file at a
 * path lab's own Ignition config for that node already writes (/etc/hostname, the network
 * file, the host key...) is refused here instead, before anything boots.
 */
function checkIgnitionPaths(lab: LabSpec, positions: Map<string, PathKey[]>, report: Report): void {
  for (const node of lab.nodes) {
    if (node.template.provisioning.dialect !== 'ignition' || node.files.length === 0) continue;
    const at = positions.get(node.name);
    if (!at) continue;
    const own = ignitionOwnPaths(lab, node);
    node.files.forEach((f, k) => {
      if (own.has(f.path))
        report.at(
          [...at, 'files', k, 'path'],
          `file ${f.path}: lab's Ignition config for template ${node.template.name} already writes this path, and Ignition refuses a path listed twice: choose another path (or a drop-in folder such as ${f.path}.d/)`,
        );
    });
  }
}

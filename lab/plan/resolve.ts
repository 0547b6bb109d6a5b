import type { Issue } from '../errors.js';
import type { SourceMap } from '../labfile/parse.js';
import type { Labfile } from '../labfile/schema.js';
import { resolveEtcd } from './etcd.js';
import { canonicalJson, sha256 } from './hash.js';
import { resolveUnits } from './lab-units.js';
import type { LabSpec } from './model.js';
import { checkNetwork, networkSpec } from './network.js';
import { resolveNodes } from './nodes.js';
import { dedupe, newReport } from './report.js';
import { usedTemplates, type TemplateLookup } from './template-lookup.js';

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
 * (duplicates, CIDR membership, templates, paths). Returns all issues at once. Pure.
 *
 * The order of the steps below is the order of the issues, which users and the bad-input
 * corpus see: network, the lab's template, nodes (one by one), etcd, units.
 */
export function resolveLab(
  labfile: Labfile,
  source: SourceMap,
  lookup: TemplateLookup,
): { ok: true; lab: LabSpec } | { ok: false; issues: Issue[] } {
  const report = newReport(source);
  const network = checkNetwork(labfile.network, report);
  const templates = usedTemplates(lookup, report);
  templates.use(labfile.template, ['template']);
  const nodes = resolveNodes({ labfile, network, templates, report });
  const etcd = resolveEtcd(labfile, nodes, report);
  checkPullsAtBoot(labfile, nodes, report);
  const units = resolveUnits(labfile, nodes, report);

  const user = labfile.ssh?.user ?? templates.get(labfile.template)?.ssh.user ?? 'core';
  if (report.issues.length > 0) return { ok: false, issues: dedupe(report.issues) };

  return {
    ok: true,
    lab: {
      name: labfile.name,
      ...(labfile.libvirt ? { uri: labfile.libvirt } : {}),
      accelerator: labfile.accelerator ?? 'auto',
      network: networkSpec(labfile.name, labfile.network, network),
      ssh: { user, authorizedKeys: labfile.ssh?.authorizedKeys ?? [] },
      etcd,
      nodes,
      units,
      warnings: dedupe(report.warnings),
      labfileHash: sha256(canonicalJson(labfile)),
    },
  };
}

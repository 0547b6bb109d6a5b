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

import { checkCloudConfigFragment, mergeCloudConfig } from '../labfile/cloud-config-fragment.js';
import type { PathKey } from '../labfile/parse.js';
import type { Labfile } from '../labfile/schema.js';
import type { Template } from '../templates/schema.js';
import type { ExpandedNode } from './node-groups.js';
import type { Report } from './report.js';

/**
 * The lab-wide and the node's cloud-config fragments, checked against what the template's
 * coreos-cloudinit reads and merged (the node's last), in the spelling the parser reads.
 * A lab-wide fragment is checked for every node; the same issue is reported once.
 */
export function nodeCloudConfig(
  labfile: Labfile,
  n: ExpandedNode,
  template: Template,
  report: Report,
): Record<string, unknown> | undefined {
  const { source, issues, warnings } = report;
  const parts: [PathKey[], Record<string, unknown>][] = [];
  if (labfile.cloudConfig) parts.push([['cloudConfig'], labfile.cloudConfig]);
  if (n.cloudConfig) parts.push([[...n.at, 'cloudConfig'], n.cloudConfig]);
  if (parts.length === 0) return undefined;
  if (template.provisioning.dialect !== 'coreos-cloudinit') {
    for (const [path] of parts)
      issues.push(
        source.issueAt(
          path,
          `cloudConfig is for CoreOS cloud-config templates; ${n.name}'s template ${template.name} is provisioned with ${template.provisioning.dialect}`,
          { atKey: 'cloudConfig' },
        ),
      );
    return undefined;
  }
  let merged: Record<string, unknown> = {};
  for (const [path, fragment] of parts) {
    const checked = checkCloudConfigFragment(
      fragment,
      template.os === 'container-linux' ? 'coreos' : 'flatcar',
    );
    for (const p of checked.problems) {
      // At the key when the problem is a key (or its value); at the item in a list.
      const key = p.path.at(-1);
      const issue =
        typeof key === 'string'
          ? source.issueAt([...path, ...p.path.slice(0, -1)], p.message, { atKey: key })
          : source.issueAt([...path, ...p.path], p.message);
      (p.severity === 'error' ? issues : warnings).push(issue);
    }
    merged = mergeCloudConfig(merged, checked.value);
  }
  return merged;
}

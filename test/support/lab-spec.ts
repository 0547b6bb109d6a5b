import type { LabSpec } from '../../lab/plan/model.js';
import { checkLabfileText } from '../../lab/spec/load.js';

export const BRIDGE_NET = '{ mode: bridge, bridge: br0, cidr: 10.9.0.0/24 }';
export const MANAGED_NET = '{ mode: managed, cidr: 10.9.0.0/24 }';
/** Two nodes on 10.9.0.0/24, as Labfile list items. */
export const TWO_NODES = '  - { name: a, ip: 10.9.0.2 }\n  - { name: b, ip: 10.9.0.3 }\n';

/** A resolved lab from whole Labfile text; throws with every issue when it is not valid. */
export function specFrom(text: string, file = 'L'): LabSpec {
  const r = checkLabfileText(text, file);
  if (!r.ok) throw new Error(r.issues.map((i) => `${i.line}:${i.col}: ${i.message}`).join('; '));
  return r.lab;
}

/**
 * A resolved lab from its parts: `extra` is more top-level keys (each line ending in a
 * newline), `nodes` the list items of `nodes:`. Defaults: lab `r`, debian-12-lab, bridge br0.
 */
export function labSpec(
  parts: { name?: string; template?: string; network?: string; extra?: string; nodes?: string } = {},
): LabSpec {
  const {
    name = 'r',
    template = 'debian-12-lab',
    network = BRIDGE_NET,
    extra = '',
    nodes = TWO_NODES,
  } = parts;
  return specFrom(`name: ${name}\ntemplate: ${template}\nnetwork: ${network}\n${extra}nodes:\n${nodes}`);
}

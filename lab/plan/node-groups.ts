import type { PathKey } from '../labfile/parse.js';
import type { Labfile, LabfileNode } from '../labfile/schema.js';
import { intToIp, ipToInt } from './ipv4.js';

/** One plain node of the Labfile, a `count:` group's members included. */
export interface ExpandedNode extends LabfileNode {
  /** Where the node came from, for issue positions. */
  at: PathKey[];
}

/** Expands `count:` groups into plain nodes; IPs count up from the group's first one. */
export function expandNodes(labfile: Labfile): ExpandedNode[] {
  const out: ExpandedNode[] = [];
  labfile.nodes.forEach((entry, i) => {
    if ('count' in entry) {
      const { count, name, start = 1, ip, ...rest } = entry;
      for (let k = 0; k < count; k++) {
        const n = ipToInt(ip) + k;
        out.push({
          ...rest,
          name: name.replace('{n}', String(start + k)),
          ip: n > 0xffffffff ? '255.255.255.255' : intToIp(n),
          at: ['nodes', i],
        });
      }
    } else out.push({ ...entry, at: ['nodes', i] });
  });
  return out;
}

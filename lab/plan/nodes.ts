import type { PathKey } from '../labfile/parse.js';
import {
  absolutePathProblem,
  isUuidShaped,
  parseSize,
  type FileSpec,
  type Labfile,
  type ServiceName,
} from '../labfile/schema.js';
import type { Template } from '../templates/schema.js';
import { machineIdOf, nodeMac, nodeUuid } from './identity.js';
import { isHostIn } from './ipv4.js';
import type { NodeSpec } from './model.js';
import type { CheckedNetwork } from './network.js';
import { nodeCloudConfig } from './node-cloud-config.js';
import { expandNodes, type ExpandedNode } from './node-groups.js';
import type { Report } from './report.js';
import type { UsedTemplates } from './template-lookup.js';

/** A node's size when neither the node nor the Labfile's `defaults:` sets it. */
export const DEFAULTS = { cpus: 1, memory: '1GiB', disk: '8GiB' } as const;

/** A safe absolute guest path: no `..`, no empty or `.` segments, no control characters. */
export function checkGuestPath(p: string): string | undefined {
  return absolutePathProblem(p);
}

/** What resolving the nodes reads: the Labfile, its checked network and templates, the report. */
export interface NodesContext {
  labfile: Labfile;
  network: CheckedNetwork;
  templates: UsedTemplates;
  report: Report;
  /** Filled with where each resolved node came from (its name -> its Labfile path). */
  positions?: Map<string, PathKey[]>;
}

/** What the node steps share while walking the nodes in order. */
interface Walk extends NodesContext {
  /** The services of a node that names none. */
  labServices: ServiceName[];
  /** Each name, IP and MAC seen so far: to report a duplicate. */
  seen: { name: Map<string, PathKey[]>; ip: Map<string, string>; mac: Map<string, string> };
}

/**
 * The Labfile's nodes, groups expanded, checked one by one in Labfile order; a node whose
 * template cannot be had is reported and left out.
 */
export function resolveNodes(ctx: NodesContext): NodeSpec[] {
  const walk: Walk = {
    ...ctx,
    labServices: ctx.labfile.services ?? ['etcd', 'docker'],
    seen: { name: new Map(), ip: new Map(), mac: new Map() },
  };
  const nodes: NodeSpec[] = [];
  for (const n of expandNodes(ctx.labfile)) {
    const node = resolveNode(walk, n);
    if (node) {
      nodes.push(node);
      ctx.positions?.set(node.name, n.at);
    }
  }
  const count = walk.seen.name.size;
  if (count > 64) ctx.report.at(['nodes'], `a lab has at most 64 nodes (this one has ${count})`);
  return nodes;
}

/** One node: identity, addresses, template, sizes, files and cloud-config, in that order. */
function resolveNode(walk: Walk, n: ExpandedNode): NodeSpec | undefined {
  const { labfile, templates } = walk;
  const dupName = checkName(walk, n);
  checkIp(walk, n);
  const mac = checkMac(walk, n, dupName);

  const templateRef = n.template ?? labfile.template;
  const template = n.template
    ? templates.use(n.template, [...n.at, 'template'])
    : templates.get(labfile.template);
  const services = n.services ?? walk.labServices;
  const { memory, disk } = checkSizes(walk, n);
  if (template) checkTemplateFit(walk, n, template, services, memory);
  const files = checkFiles(walk, n);
  const cloudConfig = template ? nodeCloudConfig(labfile, n, template, walk.report) : undefined;
  const uuid = nodeUuid(labfile.name, n.name);
  if (!template) return undefined;
  return {
    name: n.name,
    domain: `${labfile.name}-${n.name}`,
    ip: n.ip,
    mac,
    uuid,
    machineId: machineIdOf(uuid),
    cpus: n.cpus ?? labfile.defaults?.cpus ?? DEFAULTS.cpus,
    memoryMiB: Math.floor(memory / 1024 ** 2),
    diskBytes: disk,
    templateRef,
    template,
    services,
    files,
    ...(cloudConfig ? { cloudConfig } : {}),
  };
}

/** Checks the node's name and the libvirt domain name made of it; true when the name is taken. */
function checkName({ labfile, seen, report }: Walk, n: ExpandedNode): boolean {
  const path = n.at;
  const domain = `${labfile.name}-${n.name}`;
  const dupName = seen.name.has(n.name);
  if (dupName) report.at([...path, 'name'], `duplicate node name "${n.name}"`);
  seen.name.set(n.name, path);
  if (domain.length > 63)
    report.at([...path, 'name'], `domain name "${domain}" is longer than 63 characters`);
  else if (isUuidShaped(domain))
    report.at([...path, 'name'], `domain name "${domain}" looks like a UUID (virsh would read it as one)`);
  return dupName;
}

/** Checks the node's IP: not taken, a host address of the network, not the gateway's or host's. */
function checkIp({ labfile, network, seen, report }: Walk, n: ExpandedNode): void {
  const path = n.at;
  const isGroup = path.length === 2 && 'count' in (labfile.nodes[path[1] as number] ?? {});
  const ipPath = isGroup ? path : [...path, 'ip'];
  const dupIp = seen.ip.get(n.ip);
  if (dupIp) report.at(ipPath, `ip ${n.ip} of ${n.name} is already used by ${dupIp}`);
  seen.ip.set(n.ip, n.name);
  if (!isHostIn(n.ip, network.cidr))
    report.at(
      ipPath,
      `ip ${n.ip} of ${n.name} is not a host address in network.cidr ${labfile.network.cidr}`,
    );
  else if (n.ip === labfile.network.gateway)
    report.at(ipPath, `ip ${n.ip} of ${n.name} is the gateway address`);
  else if (n.ip === network.hostIp)
    report.at(ipPath, `ip ${n.ip} of ${n.name} is the host's address on the managed network`);
}

/** The node's MAC (its own, or derived from lab and node name), checked not taken. */
function checkMac({ labfile, seen, report }: Walk, n: ExpandedNode, dupName: boolean): string {
  const path = n.at;
  const mac = n.mac ?? nodeMac(labfile.name, n.name);
  const dupMac = seen.mac.get(mac);
  if (dupMac && !dupName)
    report.at(
      n.mac ? [...path, 'mac'] : [...path, 'name'],
      `mac ${mac} of ${n.name} is already used by ${dupMac}${n.mac ? '' : ' (set mac: explicitly)'}`,
    );
  seen.mac.set(mac, n.name);
  return mac;
}

/** The node's memory and disk in bytes (defaults filled in), checked against lab's limits. */
function checkSizes({ labfile, report }: Walk, n: ExpandedNode): { memory: number; disk: number } {
  const path = n.at;
  const memory = parseSize(n.memory ?? labfile.defaults?.memory ?? DEFAULTS.memory);
  const disk = parseSize(n.disk ?? labfile.defaults?.disk ?? DEFAULTS.disk);
  if (memory < 64 * 1024 ** 2) report.at([...path, 'memory'], `memory of ${n.name} must be at least 64MiB`);
  if (memory > 1024 ** 4) report.at([...path, 'memory'], `memory of ${n.name} must be at most 1TiB`);
  if (disk > 64 * 1024 ** 4) report.at([...path, 'disk'], `disk of ${n.name} must be at most 64TiB`);
  return { memory, disk };
}

/** Checks that the node's template offers its services and is given the memory it needs. */
function checkTemplateFit(
  { labfile, report }: Walk,
  n: ExpandedNode,
  template: Template,
  services: ServiceName[],
  memory: number,
): void {
  const path = n.at;
  for (const s of services) {
    if (!template.services[s]) {
      const where = n.services ? [...path, 'services'] : labfile.services ? ['services'] : ['template'];
      report.at(
        where,
        `service ${s} is not available on template ${template.name} (it offers: ${Object.keys(template.services).join(', ') || 'none'})`,
      );
    }
  }
  if (memory < template.minMemoryMiB * 1024 ** 2) {
    report.at(
      n.memory ? [...path, 'memory'] : [...path, 'name'],
      `${n.name} has ${memory / 1024 ** 2}MiB of memory; template ${template.name} needs at least ${template.minMemoryMiB}MiB`,
    );
  }
}

/** The node's files, each path checked: a safe absolute guest path, listed once. */
function checkFiles({ report }: Walk, n: ExpandedNode): FileSpec[] {
  const files = n.files ?? [];
  const filePaths = new Set<string>();
  files.forEach((f, k) => {
    const problem = checkGuestPath(f.path);
    if (problem) report.at([...n.at, 'files', k, 'path'], `file path ${JSON.stringify(f.path)} ${problem}`);
    if (filePaths.has(f.path)) report.at([...n.at, 'files', k, 'path'], `file ${f.path} is listed twice`);
    filePaths.add(f.path);
  });
  return files;
}

import { createHash } from 'node:crypto';
import type { Issue } from '../errors.js';
import type { SourceMap, PathKey } from '../labfile/parse.js';
import {
  absolutePathProblem,
  isUuidShaped,
  parseSize,
  type Labfile,
  type LabfileNode,
  type ServiceName,
} from '../labfile/schema.js';
import type { Template } from '../templates/schema.js';
import { intToIp, ipToInt, isHostIn, netmaskOf, parseCidr } from './ipv4.js';
import { machineIdOf, nodeMac, nodeUuid } from './identity.js';
import type { LabSpec, NodeSpec } from './model.js';
import { UNIT_NAME_RE, parseFleetOptions, type UnitSpec } from './units.js';
import { checkCloudConfigFragment, mergeCloudConfig } from '../labfile/cloud-config-fragment.js';

export const DEFAULTS = { cpus: 1, memory: '1GiB', disk: '8GiB' } as const;

/** What the resolver knows of each template reference: the template, or why it failed. */
export type TemplateLookup = (
  ref: string,
) => { ok: true; template: Template } | { ok: false; message: string };

/** Canonical JSON: sorted keys, so equal Labfiles hash equal whatever their layout. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

interface Expanded extends LabfileNode {
  /** Where the node came from, for issue positions. */
  at: PathKey[];
}

/** Expands `count:` groups into plain nodes; IPs count up from the group's first one. */
function expandNodes(labfile: Labfile): Expanded[] {
  const out: Expanded[] = [];
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

/** A safe absolute guest path: no `..`, no empty or `.` segments, no control characters. */
export function checkGuestPath(p: string): string | undefined {
  return absolutePathProblem(p);
}

/**
 * Labfile shape -> LabSpec: fills defaults and checks every cross-field rule
 * (duplicates, CIDR membership, templates, paths). Returns all issues at once. Pure.
 */
export function resolveLab(
  labfile: Labfile,
  source: SourceMap,
  lookup: TemplateLookup,
): { ok: true; lab: LabSpec } | { ok: false; issues: Issue[] } {
  const issues: Issue[] = [];
  const at = (path: PathKey[], message: string, atKey?: string) =>
    issues.push(source.issueAt(path, message, atKey ? { atKey } : {}));
  const warnings: Issue[] = [];

  const net = labfile.network;
  const cidr = parseCidr(net.cidr);
  if (cidr.network !== ipToInt(net.cidr.split('/')[0]!)) {
    at(
      ['network', 'cidr'],
      `cidr ${net.cidr} has host bits set; did you mean ${intToIp(cidr.network)}/${cidr.prefix}?`,
    );
  }
  if (cidr.prefix > 30)
    at(['network', 'cidr'], `cidr ${net.cidr} is too small for a lab (use /30 or larger)`);
  if (net.gateway !== undefined && !isHostIn(net.gateway, cidr)) {
    at(['network', 'gateway'], `gateway ${net.gateway} is not a host address in network.cidr ${net.cidr}`);
  }
  if (net.mode === 'bridge' && net.bridge === undefined) {
    at(
      ['network'],
      'bridge mode needs network.bridge: the name of an existing host bridge such as br0',
      'mode',
    );
  }
  if (net.mode === 'bridge' && net.forward !== undefined) {
    at(['network', 'forward'], 'forward applies to managed networks only');
  }
  // A managed network gives the host the gateway address (or the first host address).
  const hostIp = net.mode === 'managed' ? (net.gateway ?? intToIp(cidr.first)) : undefined;

  const templates = new Map<string, Template>();
  const useTemplate = (ref: string, path: PathKey[]): Template | undefined => {
    if (templates.has(ref)) return templates.get(ref);
    const r = lookup(ref);
    if (!r.ok) {
      at(path, r.message);
      return undefined;
    }
    templates.set(ref, r.template);
    return r.template;
  };
  useTemplate(labfile.template, ['template']);

  const labServices: ServiceName[] = labfile.services ?? ['etcd', 'docker'];
  const seen = {
    name: new Map<string, PathKey[]>(),
    ip: new Map<string, string>(),
    mac: new Map<string, string>(),
  };
  const nodes: NodeSpec[] = [];
  for (const n of expandNodes(labfile)) {
    const path = n.at;
    const isGroup = path.length === 2 && 'count' in (labfile.nodes[path[1] as number] ?? {});
    const ipPath = isGroup ? path : [...path, 'ip'];
    const dupName = seen.name.has(n.name);
    if (dupName) at([...path, 'name'], `duplicate node name "${n.name}"`);
    seen.name.set(n.name, path);
    if (`${labfile.name}-${n.name}`.length > 63)
      at([...path, 'name'], `domain name "${labfile.name}-${n.name}" is longer than 63 characters`);
    else if (isUuidShaped(`${labfile.name}-${n.name}`))
      at(
        [...path, 'name'],
        `domain name "${labfile.name}-${n.name}" looks like a UUID (virsh would read it as one)`,
      );
    const dupIp = seen.ip.get(n.ip);
    if (dupIp) at(ipPath, `ip ${n.ip} of ${n.name} is already used by ${dupIp}`);
    seen.ip.set(n.ip, n.name);
    if (!isHostIn(n.ip, cidr))
      at(ipPath, `ip ${n.ip} of ${n.name} is not a host address in network.cidr ${net.cidr}`);
    else if (n.ip === net.gateway) at(ipPath, `ip ${n.ip} of ${n.name} is the gateway address`);
    else if (n.ip === hostIp)
      at(ipPath, `ip ${n.ip} of ${n.name} is the host's address on the managed network`);
    const mac = n.mac ?? nodeMac(labfile.name, n.name);
    const dupMac = seen.mac.get(mac);
    if (dupMac && !dupName)
      at(
        n.mac ? [...path, 'mac'] : [...path, 'name'],
        `mac ${mac} of ${n.name} is already used by ${dupMac}${n.mac ? '' : ' (set mac: explicitly)'}`,
      );
    seen.mac.set(mac, n.name);

    const templateRef = n.template ?? labfile.template;
    const template = n.template
      ? useTemplate(n.template, [...path, 'template'])
      : templates.get(labfile.template);
    const services = n.services ?? labServices;
    const memory = parseSize(n.memory ?? labfile.defaults?.memory ?? DEFAULTS.memory);
    const disk = parseSize(n.disk ?? labfile.defaults?.disk ?? DEFAULTS.disk);
    if (memory < 64 * 1024 ** 2) at([...path, 'memory'], `memory of ${n.name} must be at least 64MiB`);
    if (memory > 1024 ** 4) at([...path, 'memory'], `memory of ${n.name} must be at most 1TiB`);
    if (disk > 64 * 1024 ** 4) at([...path, 'disk'], `disk of ${n.name} must be at most 64TiB`);
    if (template) {
      for (const s of services) {
        if (!template.services[s]) {
          const where = n.services ? [...path, 'services'] : labfile.services ? ['services'] : ['template'];
          at(
            where,
            `service ${s} is not available on template ${template.name} (it offers: ${Object.keys(template.services).join(', ') || 'none'})`,
          );
        }
      }
      if (memory < template.minMemoryMiB * 1024 ** 2) {
        at(
          n.memory ? [...path, 'memory'] : [...path, 'name'],
          `${n.name} has ${memory / 1024 ** 2}MiB of memory; template ${template.name} needs at least ${template.minMemoryMiB}MiB`,
        );
      }
    }
    const files = n.files ?? [];
    const filePaths = new Set<string>();
    files.forEach((f, k) => {
      const problem = checkGuestPath(f.path);
      if (problem) at([...path, 'files', k, 'path'], `file path ${JSON.stringify(f.path)} ${problem}`);
      if (filePaths.has(f.path)) at([...path, 'files', k, 'path'], `file ${f.path} is listed twice`);
      filePaths.add(f.path);
    });
    const cloudConfig = template
      ? nodeCloudConfig(labfile, n, template, source, issues, warnings)
      : undefined;
    const uuid = nodeUuid(labfile.name, n.name);
    if (template) {
      nodes.push({
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
      });
    }
  }
  if (seen.name.size > 64) at(['nodes'], `a lab has at most 64 nodes (this one has ${seen.name.size})`);

  const etcd = labfile.etcd ?? {};
  const bootstrap = etcd.bootstrap ?? (etcd.discovery ? 'discovery' : 'static');
  if (bootstrap === 'discovery' && !etcd.discovery)
    at(['etcd'], 'etcd.bootstrap discovery needs etcd.discovery: the discovery URL', 'bootstrap');
  if (bootstrap === 'static' && etcd.discovery)
    at(['etcd', 'discovery'], 'etcd.discovery is only used with bootstrap: discovery');

  // etcd 3.6 removed the v2 API that etcdctl set/get and fleet need.
  if (etcd.api === 'v2') {
    const tooNew = nodes.find((n) => {
      const [major, minor] = (n.template.services.etcd?.version ?? '').split('.').map(Number);
      return n.services.includes('etcd') && major === 3 && (minor ?? 0) >= 6;
    });
    if (tooNew)
      at(
        ['etcd', 'api'],
        `etcd.api v2 needs etcd 3.5 or older, but template ${tooNew.template.name} ships etcd ${tooNew.template.services.etcd!.version} (3.6 removed the v2 API)`,
      );
  }
  const units = resolveUnits(labfile, nodes, source, issues);

  const user = labfile.ssh?.user ?? templates.get(labfile.template)?.ssh.user ?? 'core';
  if (issues.length > 0) return { ok: false, issues: dedupe(issues) };

  const bridge = net.bridge ?? defaultBridge(labfile.name);
  return {
    ok: true,
    lab: {
      name: labfile.name,
      ...(labfile.libvirt ? { uri: labfile.libvirt } : {}),
      accelerator: labfile.accelerator ?? 'auto',
      network: {
        mode: net.mode,
        bridge,
        ...(net.mode === 'managed' ? { libvirtName: `lab-${labfile.name}`, hostIp } : {}),
        cidr: `${intToIp(cidr.network)}/${cidr.prefix}`,
        prefix: cidr.prefix,
        netmask: netmaskOf(cidr.prefix),
        // On a managed network the host is the way out (NAT) or at least the only router.
        ...(net.gateway || hostIp ? { gateway: net.gateway ?? hostIp } : {}),
        dns: net.dns ?? [],
        forward: net.forward ?? 'none',
      },
      ssh: { user, authorizedKeys: labfile.ssh?.authorizedKeys ?? [] },
      etcd: {
        bootstrap,
        ...(etcd.discovery ? { discovery: etcd.discovery } : {}),
        api: etcd.api ?? 'v3',
        token: etcd.token ?? labfile.name,
      },
      nodes,
      units,
      warnings: dedupe(warnings),
      labfileHash: sha256(canonicalJson(labfile)),
    },
  };
}

/**
 * The lab-wide and the node's cloud-config fragments, checked against what the template's
 * coreos-cloudinit reads and merged (the node's last), in the spelling the parser reads.
 * A lab-wide fragment is checked for every node; the same issue is reported once.
 */
function nodeCloudConfig(
  labfile: Labfile,
  n: Expanded,
  template: Template,
  source: SourceMap,
  issues: Issue[],
  warnings: Issue[],
): Record<string, unknown> | undefined {
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

/** The Labfile's units, expanded (count) and checked: names, [X-Fleet] options, references. */
function resolveUnits(labfile: Labfile, nodes: NodeSpec[], source: SourceMap, issues: Issue[]): UnitSpec[] {
  const at = (path: PathKey[], message: string) => issues.push(source.issueAt(path, message));
  const units: UnitSpec[] = [];
  const where = new Map<string, PathKey[]>();
  // A unit of a node's own services (etcd.service) is lab's to manage, not the user's.
  const serviceUnits = new Set(nodes.flatMap((n) => Object.values(n.template.services).map((s) => s.unit)));
  (labfile.units ?? []).forEach((u, k) => {
    const path = ['units', k];
    const names = u.count
      ? Array.from({ length: u.count }, (_, i) => u.name.replaceAll('{n}', String(i + 1)))
      : [u.name];
    if (u.count && !u.name.includes('{n}'))
      at([...path, 'name'], `a unit with count needs {n} in its name, such as apache.{n}.service`);
    if (!u.count && u.name.includes('{n}')) at([...path, 'name'], `{n} in a unit name needs count`);
    const { options, problems } = parseFleetOptions(u.content);
    for (const p of problems)
      issues.push(source.issueAt([...path, 'content'], `${names[0]}: ${p.message}`, { lineInBlock: p.line }));
    for (const name of new Set(names)) {
      if (!name.includes('{n}') && !UNIT_NAME_RE.test(name))
        at([...path, 'name'], `unit name ${name} is not a systemd service name`);
      if (where.has(name)) at([...path, 'name'], `unit ${name} is listed twice`);
      if (serviceUnits.has(name))
        at([...path, 'name'], `unit ${name} is a service lab configures itself (services:)`);
      where.set(name, path);
      units.push({ name, content: u.content, hash: sha256(u.content), fleet: options });
    }
  });
  for (const u of units) {
    const of = u.fleet.machineOf;
    if (of && !where.has(of))
      at(
        [...where.get(u.name)!, 'content'],
        `${u.name} must run beside ${of}, which is not a unit of this lab`,
      );
    if (of === u.name) at([...where.get(u.name)!, 'content'], `${u.name} cannot run beside itself`);
  }
  return units;
}

function dedupe(issues: Issue[]): Issue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.line}:${i.col}:${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The bridge a managed network gets when the Labfile names none: short (IFNAMSIZ) and per lab. */
export function defaultBridge(lab: string): string {
  return `lab${sha256(lab).slice(0, 8)}`;
}

import { XMLParser } from 'fast-xml-parser';
import type { DomainInput } from './types.js';
import { LAB_XMLNS } from './types.js';
import { EXACT_XML, buildXml } from './xml.js';

/**
 * The libvirt domain of one node, built as an object tree (buildXml escapes every value
 * once and refuses one XML cannot carry; no string concatenation). Pure: same input,
 * same bytes.
 */
export function renderDomainXml(input: DomainInput): string {
  const { lab, node, paths, type } = input;
  const os: Record<string, unknown> = { type: { '@_arch': 'x86_64', '@_machine': 'pc', '#text': 'hvm' } };
  const boot = node.template.boot;
  if (paths.kernel && 'cmdline' in boot) {
    os.kernel = paths.kernel;
    if (paths.initrd) os.initrd = paths.initrd;
    os.cmdline = boot.cmdline;
  } else os.boot = { '@_dev': 'hd' };

  const disks: Record<string, unknown>[] = [
    {
      '@_type': 'file',
      '@_device': 'disk',
      driver: { '@_name': 'qemu', '@_type': 'qcow2', '@_discard': 'unmap' },
      source: { '@_file': paths.disk },
      target: { '@_dev': 'vda', '@_bus': 'virtio' },
    },
  ];
  if (paths.seed) {
    disks.push({
      '@_type': 'file',
      '@_device': 'cdrom',
      driver: { '@_name': 'qemu', '@_type': 'raw' },
      source: { '@_file': paths.seed },
      target: { '@_dev': 'hdc', '@_bus': 'ide' },
      readonly: '',
    });
  }
  const iface =
    lab.network.mode === 'bridge'
      ? { '@_type': 'bridge', source: { '@_bridge': lab.network.bridge } }
      : { '@_type': 'network', source: { '@_network': lab.network.libvirtName } };

  const domain: Record<string, unknown> = {
    '@_type': type,
    name: node.domain,
    uuid: node.uuid,
    metadata: {
      'lab:node': {
        '@_xmlns:lab': LAB_XMLNS,
        'lab:lab': lab.name,
        'lab:node': node.name,
        'lab:labfile-hash': lab.labfileHash,
        'lab:config-hash': input.configHash,
        'lab:ip': node.ip,
        'lab:mac': node.mac,
        // 2: etcd's member list is not in the first-boot config (none: the layout before).
        'lab:schema': METADATA_SCHEMA,
      },
    },
    memory: { '@_unit': 'MiB', '#text': node.memoryMiB },
    currentMemory: { '@_unit': 'MiB', '#text': node.memoryMiB },
    vcpu: node.cpus,
    // Ignition over fw_cfg; a template without a key name gets Ignition's QEMU default.
    ...(paths.fwcfg
      ? {
          sysinfo: {
            '@_type': 'fwcfg',
            entry: {
              '@_name': node.template.provisioning.fwcfgName ?? 'opt/com.coreos/config',
              '@_file': paths.fwcfg,
            },
          },
        }
      : {}),
    os,
    // ACPI lets `virsh shutdown` work; fw_cfg Ignition needs it too. QEMU's default TCG
    // translation cache is 1 GiB of host memory per guest: the Labfile's tcg.tbCache
    // (256 MiB unless it says otherwise) is plenty.
    features: {
      acpi: '',
      ...(type === 'qemu' ? { tcg: { 'tb-cache': { '@_unit': 'MiB', '#text': lab.tcg.tbCacheMiB } } } : {}),
    },
    ...(type === 'kvm' ? { cpu: { '@_mode': 'host-passthrough' } } : {}),
    clock: { '@_offset': 'utc' },
    on_poweroff: 'destroy',
    on_reboot: 'restart',
    on_crash: 'destroy',
    devices: {
      emulator: input.emulator ?? '/usr/bin/qemu-system-x86_64',
      disk: disks,
      interface: { ...iface, mac: { '@_address': node.mac }, model: { '@_type': 'virtio' } },
      // append='on': a reboot keeps the first boot's console log.
      serial: {
        '@_type': 'pty',
        log: { '@_file': paths.console, '@_append': 'on' },
        target: { '@_port': 0 },
      },
      console: { '@_type': 'pty', target: { '@_type': 'serial', '@_port': 0 } },
      channel: { '@_type': 'unix', target: { '@_type': 'virtio', '@_name': 'org.qemu.guest_agent.0' } },
      rng: { '@_model': 'virtio', backend: { '@_model': 'random', '#text': '/dev/urandom' } },
      memballoon: { '@_model': 'none' },
    },
  };
  return buildXml({ domain }).replace(/<(readonly|acpi)><\/\1>/g, '<$1/>');
}

/** The layout of what a domain's config hash covers; domains without one are schema 1. */
export const METADATA_SCHEMA = 2;

export interface LabMetadata {
  lab: string;
  node: string;
  labfileHash: string;
  configHash: string;
  ip: string;
  mac: string;
  /** 1 for domains lab defined before the schema was recorded. */
  schema: number;
}

const parser = new XMLParser(EXACT_XML);

function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (isRecord(v)) return text(v['#text']);
  return undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * lab's metadata from `virsh dumpxml` output or from the fragment `virsh metadata`
 * prints; undefined when the domain carries none (it is not a lab's). Pure.
 */
export function parseLabMetadata(xml: string): LabMetadata | undefined {
  const doc = parser.parse(xml) as Record<string, unknown>;
  if ('domain' in doc) {
    const metadata = isRecord(doc.domain) ? doc.domain.metadata : undefined;
    return isRecord(metadata) ? findLabElement(metadata, true) : undefined;
  }
  // `virsh metadata DOMAIN URI` has already picked our element by its namespace and
  // prints it bare, `<node><lab>…</lab>…</node>`: no prefix, no xmlns (libvirt 9.0).
  return findLabElement(doc, false);
}

/**
 * The `node` element in lab's namespace among `holder`'s children, whatever prefix
 * libvirt gives it; `nsRequired` false also accepts one with no namespace declared.
 */
function findLabElement(holder: Record<string, unknown>, nsRequired: boolean): LabMetadata | undefined {
  for (const [tag, el] of Object.entries(holder)) {
    const [prefix, local] = tag.includes(':')
      ? [tag.slice(0, tag.indexOf(':')), tag.split(':')[1]]
      : ['', tag];
    if (local !== 'node' || !isRecord(el)) continue;
    const ns = el[prefix ? `@_xmlns:${prefix}` : '@_xmlns'];
    if (ns !== LAB_XMLNS && (nsRequired || ns !== undefined)) continue;
    const get = (name: string) => text(el[prefix ? `${prefix}:${name}` : name]) ?? text(el[name]);
    const lab = get('lab');
    const node = get('node');
    if (!lab || !node) continue;
    return {
      lab,
      node,
      labfileHash: get('labfile-hash') ?? '',
      configHash: get('config-hash') ?? '',
      ip: get('ip') ?? '',
      mac: get('mac') ?? '',
      schema: Number(get('schema') ?? 1) || 1,
    };
  }
  return undefined;
}

export interface DomainSummary {
  name: string;
  uuid: string;
  type: string;
  memoryMiB: number;
  vcpus: number;
  disks: string[];
  mac?: string;
  bridge?: string;
  network?: string;
  /** `<features><tcg><tb-cache>` in MiB (a TCG domain lab defined). */
  tbCacheMiB?: number;
}

const UNIT_MIB: Record<string, number> = {
  KiB: 1 / 1024,
  k: 1 / 1024,
  MiB: 1,
  M: 1,
  GiB: 1024,
  G: 1024,
  b: 1 / 1024 ** 2,
  bytes: 1 / 1024 ** 2,
};

/** The facts of a domain that decide whether it must be redefined. Pure. */
export function parseDomainXml(xml: string): DomainSummary {
  const doc = new XMLParser({
    ...EXACT_XML,
    isArray: (n) => n === 'disk' || n === 'interface',
  }).parse(xml) as {
    domain?: Record<string, unknown>;
  };
  const d = doc.domain ?? {};
  const mem = d.memory as { '#text'?: string; '@_unit'?: string } | string | undefined;
  const memText = typeof mem === 'object' ? mem['#text'] : mem;
  const unit = typeof mem === 'object' ? (mem['@_unit'] ?? 'KiB') : 'KiB';
  const devices = (d.devices ?? {}) as {
    disk?: { source?: { '@_file'?: string } }[];
    interface?: { mac?: { '@_address'?: string }; source?: { '@_bridge'?: string; '@_network'?: string } }[];
  };
  const nic = devices.interface?.[0];
  const tb = (
    d.features as { tcg?: { 'tb-cache'?: { '#text'?: string | number; '@_unit'?: string } } } | undefined
  )?.tcg?.['tb-cache'];
  const tbText = tb?.['#text'];
  return {
    name: text(d.name) ?? '',
    uuid: text(d.uuid) ?? '',
    type: text(d['@_type']) ?? '',
    memoryMiB: Math.round(Number(memText ?? 0) * (UNIT_MIB[unit] ?? 1 / 1024)),
    vcpus: Number(text(d.vcpu) ?? 0),
    disks: (devices.disk ?? [])
      .map((x) => x.source?.['@_file'])
      .filter((f): f is string => typeof f === 'string'),
    ...(nic?.mac?.['@_address'] ? { mac: nic.mac['@_address'] } : {}),
    ...(nic?.source?.['@_bridge'] ? { bridge: nic.source['@_bridge'] } : {}),
    ...(nic?.source?.['@_network'] ? { network: nic.source['@_network'] } : {}),
    ...(tbText !== undefined
      ? { tbCacheMiB: Math.round(Number(tbText) * (UNIT_MIB[tb?.['@_unit'] ?? 'KiB'] ?? 1 / 1024)) }
      : {}),
  };
}

import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import type { DomainInput } from './types.js';
import { LAB_XMLNS } from './types.js';

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  textNodeName: '#text',
  format: true,
  indentBy: '  ',
  suppressEmptyNode: true,
  processEntities: true,
});

/**
 * The libvirt domain of one node, built as an object tree (the builder escapes every
 * value; no string concatenation). Pure: same input, same bytes.
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
      },
    },
    memory: { '@_unit': 'MiB', '#text': node.memoryMiB },
    currentMemory: { '@_unit': 'MiB', '#text': node.memoryMiB },
    vcpu: node.cpus,
    ...(paths.fwcfg && 'fwcfgName' in node.template.provisioning
      ? {
          sysinfo: {
            '@_type': 'fwcfg',
            entry: { '@_name': node.template.provisioning.fwcfgName, '@_file': paths.fwcfg },
          },
        }
      : {}),
    os,
    // ACPI lets `virsh shutdown` work; fw_cfg Ignition needs it too. QEMU's default TCG
    // translation cache is 1 GiB of host memory per guest: 256 MiB is plenty.
    features: {
      acpi: '',
      ...(type === 'qemu' ? { tcg: { 'tb-cache': { '@_unit': 'MiB', '#text': 256 } } } : {}),
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
  return (builder.build({ domain }) as string).replace(/<(readonly|acpi)><\/\1>/g, '<$1/>');
}

export interface LabMetadata {
  lab: string;
  node: string;
  labfileHash: string;
  configHash: string;
  ip: string;
  mac: string;
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  textNodeName: '#text',
});

function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (v && typeof v === 'object' && '#text' in v) return String((v as { '#text': unknown })['#text']);
  return undefined;
}

/**
 * lab's metadata from `virsh dumpxml` output or from the fragment `virsh metadata`
 * prints; undefined when the domain carries none (it is not a lab's). The element is
 * recognised by its namespace URI, whatever prefix libvirt gives it.
 */
export function parseLabMetadata(xml: string): LabMetadata | undefined {
  const doc = parser.parse(xml) as Record<string, unknown>;
  const dom = doc.domain as Record<string, unknown> | undefined;
  const holder = (dom ? dom.metadata : doc) as Record<string, unknown> | undefined;
  if (!holder || typeof holder !== 'object') return undefined;
  for (const [tag, value] of Object.entries(holder)) {
    if (!value || typeof value !== 'object') continue;
    const el = value as Record<string, unknown>;
    const nsAttr = Object.keys(el).find((k) => k.startsWith('@_xmlns') && el[k] === LAB_XMLNS);
    if (!nsAttr) continue;
    const prefix = tag.includes(':') ? `${tag.split(':')[0]}:` : '';
    const get = (name: string) => text(el[`${prefix}${name}`]);
    const lab = get('lab');
    const node = get('node');
    if (!lab || !node) return undefined;
    return {
      lab,
      node,
      labfileHash: get('labfile-hash') ?? '',
      configHash: get('config-hash') ?? '',
      ip: get('ip') ?? '',
      mac: get('mac') ?? '',
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
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    parseTagValue: false,
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
  return {
    name: text(d.name) ?? '',
    uuid: text(d.uuid) ?? '',
    type: String(d['@_type'] ?? ''),
    memoryMiB: Math.round(Number(memText ?? 0) * (UNIT_MIB[unit] ?? 1 / 1024)),
    vcpus: Number(text(d.vcpu) ?? 0),
    disks: (devices.disk ?? [])
      .map((x) => x.source?.['@_file'])
      .filter((f): f is string => typeof f === 'string'),
    ...(nic?.mac?.['@_address'] ? { mac: nic.mac['@_address'] } : {}),
    ...(nic?.source?.['@_bridge'] ? { bridge: nic.source['@_bridge'] } : {}),
    ...(nic?.source?.['@_network'] ? { network: nic.source['@_network'] } : {}),
  };
}

import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import type { LabSpec, NodeSpec } from '../../../lab/plan/model.js';
import { parseDomainXml, parseLabMetadata, renderDomainXml } from '../../../lab/render/domain-xml.js';
import { LAB_XMLNS, type DomainInput, type NodePaths } from '../../../lab/render/types.js';
import { BRIDGE_NET, labSpec } from '../../support/lab-spec.js';

const NODES = '  - { name: a, ip: 10.9.0.2 }\n  - { name: b, ip: 10.9.0.3 }\n';

const lab = (template = 'debian-12-lab', network = BRIDGE_NET): LabSpec =>
  labSpec({ template, network, nodes: NODES });
const paths: NodePaths = {
  disk: '/d/a.qcow2',
  seed: '/d/a.iso',
  console: '/d/a.log',
  kernel: '/i/vmlinuz',
  initrd: '/i/initrd.img',
};
const render = (over: Partial<DomainInput> = {}, l = lab()) =>
  renderDomainXml({ lab: l, node: l.nodes[0]!, paths, type: 'qemu', configHash: 'h', ...over });
const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_', parseTagValue: false });
/** The value at a dotted path of the parsed document, e.g. at(xml, 'domain.os.cmdline'). */
const at = (xml: string, dotted: string): unknown =>
  dotted
    .split('.')
    .reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], parser.parse(xml));

// Recorded from libvirt 9.0 (`virsh -c test:///default`) after defining a golden domain:
// dumpxml keeps our prefix and converts units; `virsh metadata D URI` prints the element bare.
const DUMPXML = `<domain type='qemu'>
  <name>coreos-lab-coreos1</name>
  <uuid>04317e5c-2f33-8761-8670-442a79657421</uuid>
  <metadata>
    <lab:node xmlns:lab="https://lab.invalid/xmlns/lab/1">
      <lab:lab>coreos-lab</lab:lab>
      <lab:node>coreos1</lab:node>
      <lab:labfile-hash>7c1d</lab:labfile-hash>
      <lab:config-hash>2296</lab:config-hash>
      <lab:ip>192.168.2.52</lab:ip>
      <lab:mac>52:54:00:68:60:97</lab:mac>
    </lab:node>
  </metadata>
  <memory unit='KiB'>1048576</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='/var/lib/lab/coreos-lab/disks/coreos1.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <source file='/var/lib/lab/coreos-lab/disks/coreos1-seed.iso'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <interface type='bridge'>
      <mac address='52:54:00:68:60:97'/>
      <source bridge='br0'/>
      <target dev='testnet0'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>
`;
const VIRSH_METADATA = `<node>
  <lab>coreos-lab</lab>
  <node>coreos1</node>
  <labfile-hash>7c1d</labfile-hash>
  <config-hash>2296</config-hash>
  <ip>192.168.2.52</ip>
  <mac>52:54:00:68:60:97</mac>
</node>
`;
const RECORDED_META = {
  lab: 'coreos-lab',
  node: 'coreos1',
  labfileHash: '7c1d',
  configHash: '2296',
  ip: '192.168.2.52',
  mac: '52:54:00:68:60:97',
  // Recorded before lab:schema existed: a schema-1 domain.
  schema: 1,
};

describe('renderDomainXml', () => {
  it('escapes hostile text instead of breaking the document', () => {
    const l = lab();
    const hostile = `a</cmdline><devices><disk file='/etc/shadow'/>&amp;"`;
    const node: NodeSpec = {
      ...l.nodes[0]!,
      template: { ...l.nodes[0]!.template, boot: { kernel: 'k', cmdline: hostile } },
    };
    const xml = render({ node, paths: { ...paths, console: `/tmp/x'"<>&.log` } }, l);
    expect(XMLValidator.validate(xml)).toBe(true);
    expect(xml.match(/<devices>/g)).toHaveLength(1);
    expect(at(xml, 'domain.os.cmdline')).toBe(hostile);
    expect(at(xml, 'domain.devices.serial.log.@_file')).toBe(`/tmp/x'"<>&.log`);
  });

  it('keeps hostile names as text in metadata, and parseLabMetadata reads them back', () => {
    // Names are validated upstream; the renderer must not rely on it.
    const l = lab();
    const evil = `x<&'">y</lab:node><z>`;
    const hostileLab: LabSpec = { ...l, name: evil, labfileHash: `]]>&` };
    const node: NodeSpec = { ...l.nodes[0]!, name: evil, domain: `d${evil}`, ip: '"<', mac: "'&" };
    const xml = renderDomainXml({ lab: hostileLab, node, paths, type: 'kvm', configHash: '<!--' });
    expect(XMLValidator.validate(xml)).toBe(true);
    expect(parseLabMetadata(xml)).toEqual({
      lab: evil,
      node: evil,
      labfileHash: ']]>&',
      configHash: '<!--',
      ip: '"<',
      mac: "'&",
      schema: 2,
    });
    expect(parseDomainXml(xml).name).toBe(`d${evil}`);
  });

  it('holds one namespaced metadata element that round-trips through parseLabMetadata', () => {
    const l = lab();
    const xml = render({ node: l.nodes[1]!, configHash: 'cafe' }, l);
    expect(Object.keys(at(xml, 'domain.metadata') as object)).toEqual(['lab:node']);
    expect(at(xml, 'domain.metadata.lab:node.@_xmlns:lab')).toBe(LAB_XMLNS);
    expect(parseLabMetadata(xml)).toEqual({
      lab: 'r',
      node: 'b',
      labfileHash: l.labfileHash,
      configHash: 'cafe',
      ip: '10.9.0.3',
      mac: l.nodes[1]!.mac,
      schema: 2,
    });
  });

  it('KVM gets host-passthrough; TCG gets qemu64 and a bounded translation cache (G10)', () => {
    const kvm = render({ type: 'kvm' });
    const tcg = render({ type: 'qemu' });
    expect(at(kvm, 'domain.@_type')).toBe('kvm');
    expect(at(kvm, 'domain.cpu')).toEqual({ '@_mode': 'host-passthrough' });
    expect(at(kvm, 'domain.features')).toEqual({ acpi: '' });
    expect(at(tcg, 'domain.@_type')).toBe('qemu');
    expect(at(tcg, 'domain.cpu')).toBeUndefined();
    expect(at(tcg, 'domain.features')).toEqual({
      acpi: '',
      tcg: { 'tb-cache': { '@_unit': 'MiB', '#text': '256' } },
    });
  });

  it("the Labfile's tcg.tbCache is the domain's translation cache; libvirt's KiB reads back as MiB", () => {
    const l = labSpec({
      template: 'debian-12-lab',
      network: BRIDGE_NET,
      nodes: NODES,
      extra: 'tcg: { tbCache: 128MiB }\n',
    });
    const xml = render({}, l);
    expect(at(xml, 'domain.features.tcg')).toEqual({ 'tb-cache': { '@_unit': 'MiB', '#text': '128' } });
    expect(parseDomainXml(xml).tbCacheMiB).toBe(128);
    // As libvirt 9.0's dumpxml gives it back.
    const fromLibvirt = DUMPXML.replace(
      '<vcpu placement',
      "<features><acpi/><tcg><tb-cache unit='KiB'>131072</tb-cache></tcg></features>\n  <vcpu placement",
    );
    expect(parseDomainXml(fromLibvirt).tbCacheMiB).toBe(128);
    expect(parseDomainXml(DUMPXML).tbCacheMiB).toBeUndefined();
  });

  it('boots the kernel directly when given one, else from the disk', () => {
    expect(at(render(), 'domain.os')).toEqual({
      type: { '@_arch': 'x86_64', '@_machine': 'pc', '#text': 'hvm' },
      kernel: '/i/vmlinuz',
      initrd: '/i/initrd.img',
      cmdline: 'root=LABEL=labroot ro console=ttyS0 net.ifnames=0 apparmor=0',
    });
    const bios = render({ paths: { disk: '/d/a.qcow2', seed: '/d/a.iso', console: '/d/a.log' } });
    expect(at(bios, 'domain.os.boot')).toEqual({ '@_dev': 'hd' });
    expect(at(bios, 'domain.os.kernel')).toBeUndefined();
  });

  it('attaches the seed as a read-only IDE cdrom only when there is one', () => {
    const withSeed = parseDomainXml(render());
    expect(withSeed.disks).toEqual(['/d/a.qcow2', '/d/a.iso']);
    expect(render()).toMatch(/<target dev="hdc" bus="ide"\/>\s*<readonly\/>/);
    const noSeed = { disk: '/d/a.qcow2', console: '/d/a.log', kernel: '/i/vmlinuz' };
    expect(parseDomainXml(render({ paths: noSeed })).disks).toEqual(['/d/a.qcow2']);
  });

  it.each([
    ['bridge', '{ mode: bridge, bridge: br7, cidr: 10.9.0.0/24 }', { bridge: 'br7' }],
    ['managed', '{ mode: managed, cidr: 10.9.0.0/24 }', { network: 'lab-r' }],
  ])('puts the NIC on the %s network', (_mode, net, where) => {
    const l = lab('debian-12-lab', net);
    const d = parseDomainXml(render({}, l));
    expect(d).toMatchObject({ mac: l.nodes[0]!.mac, ...where });
    expect(d.bridge === undefined || d.network === undefined).toBe(true);
  });

  it('adds the Ignition fw_cfg entry with ACPI kept when the delivery is fw_cfg', () => {
    const l = lab('flatcar-stable');
    const xml = render({ paths: { disk: '/d/a.qcow2', console: '/d/a.log', fwcfg: '/d/a.ign' } }, l);
    expect(at(xml, 'domain.sysinfo')).toEqual({
      '@_type': 'fwcfg',
      entry: { '@_name': 'opt/org.flatcar-linux/config', '@_file': '/d/a.ign' },
    });
    expect(at(xml, 'domain.features.acpi')).toBe('');
    expect(at(xml, 'domain.os.boot')).toEqual({ '@_dev': 'hd' });
    expect(at(render(), 'domain.sysinfo')).toBeUndefined();
  });

  it('keeps the console log across reboots and names the default emulator', () => {
    expect(at(render(), 'domain.devices.serial.log')).toEqual({ '@_file': '/d/a.log', '@_append': 'on' });
    expect(at(render(), 'domain.devices.emulator')).toBe('/usr/bin/qemu-system-x86_64');
    expect(at(render({ emulator: '/opt/q' }), 'domain.devices.emulator')).toBe('/opt/q');
  });
});

describe('parseLabMetadata', () => {
  it('reads recorded `virsh dumpxml` output', () => {
    expect(parseLabMetadata(DUMPXML)).toEqual(RECORDED_META);
  });

  it('reads the bare fragment `virsh metadata DOMAIN URI` prints', () => {
    expect(parseLabMetadata(VIRSH_METADATA)).toEqual(RECORDED_META);
  });

  it('finds the element by namespace whatever the prefix, and ignores foreign metadata', () => {
    const frag = `<x:node xmlns:x="${LAB_XMLNS}"><x:lab>r</x:lab><x:node>a</x:node></x:node>`;
    expect(parseLabMetadata(frag)).toMatchObject({ lab: 'r', node: 'a' });
    expect(parseLabMetadata(`<node xmlns="${LAB_XMLNS}"><lab>r</lab><node>a</node></node>`)).toMatchObject({
      lab: 'r',
    });
    expect(parseLabMetadata(frag.replace('lab.invalid', 'other.example'))).toBeUndefined();
    const foreign = DUMPXML.replace(
      'https://lab.invalid/xmlns/lab/1',
      'http://openstack.org/xmlns/libvirt/nova/1.1',
    );
    expect(parseLabMetadata(foreign)).toBeUndefined();
    expect(parseLabMetadata('<domain><name>x</name></domain>')).toBeUndefined();
    expect(parseLabMetadata('<domain><metadata/></domain>')).toBeUndefined();
  });
});

describe('parseDomainXml', () => {
  it('reads recorded `virsh dumpxml` output (units in KiB, attributes on vcpu)', () => {
    expect(parseDomainXml(DUMPXML)).toEqual({
      name: 'coreos-lab-coreos1',
      uuid: '04317e5c-2f33-8761-8670-442a79657421',
      type: 'qemu',
      memoryMiB: 1024,
      vcpus: 1,
      disks: [
        '/var/lib/lab/coreos-lab/disks/coreos1.qcow2',
        '/var/lib/lab/coreos-lab/disks/coreos1-seed.iso',
      ],
      mac: '52:54:00:68:60:97',
      bridge: 'br0',
    });
  });

  it('reads back what renderDomainXml wrote', () => {
    const l = lab();
    expect(parseDomainXml(render({ type: 'kvm', node: l.nodes[1]! }, l))).toEqual({
      name: 'r-b',
      uuid: l.nodes[1]!.uuid,
      type: 'kvm',
      memoryMiB: 1024,
      vcpus: 1,
      disks: ['/d/a.qcow2', '/d/a.iso'],
      mac: l.nodes[1]!.mac,
      bridge: 'br0',
    });
  });
});

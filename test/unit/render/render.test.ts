import { XMLParser } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { nodeKeys } from '../../../lab/apply/context.js';
import { checkLabfileText } from '../../../lab/load.js';
import type { LabSpec } from '../../../lab/plan/model.js';
import { renderCloudInit } from '../../../lab/render/cloud-init.js';
import { parseDomainXml, parseLabMetadata, renderDomainXml } from '../../../lab/render/domain-xml.js';
import { renderProvisioning } from '../../../lab/render/provisioning.js';

const secret = Buffer.alloc(32, 3);
function lab(extra = '', nodes = '  - { name: a, ip: 10.9.0.2 }\n  - { name: b, ip: 10.9.0.3 }\n'): LabSpec {
  const r = checkLabfileText(
    `name: r\ntemplate: debian-12-lab\nnetwork: { mode: bridge, bridge: br0, cidr: 10.9.0.0/24 }\n${extra}nodes:\n${nodes}`,
    'L',
  );
  if (!r.ok) throw new Error(r.issues.map((i) => i.message).join('; '));
  return r.lab;
}
const paths = {
  disk: '/d/a.qcow2',
  seed: '/d/a.iso',
  console: '/d/a.log',
  kernel: '/i/vmlinuz',
  initrd: '/i/initrd.img',
};
const render = (l: LabSpec, i = 0) =>
  renderCloudInit({ lab: l, node: l.nodes[i]!, keys: nodeKeys(l, l.nodes[i]!, secret) });

describe('cloud-init renderer', () => {
  it('lists every etcd node in the static initial-cluster, in node order', () => {
    const l = lab(
      '',
      '  - { name: a, ip: 10.9.0.2 }\n  - { name: b, ip: 10.9.0.3 }\n  - { name: c, ip: 10.9.0.4, services: [docker] }\n',
    );
    const ud = parse(render(l).files['user-data']!) as { write_files: { path: string; content: string }[] };
    const env = ud.write_files.find((f) => f.path === '/etc/default/etcd')!.content;
    expect(env).toContain('ETCD_INITIAL_CLUSTER=a=http://10.9.0.2:2380,b=http://10.9.0.3:2380\n');
    expect(env).toContain('ETCD_LISTEN_CLIENT_URLS=http://10.9.0.2:2379,http://127.0.0.1:2379\n');
    const udc = parse(render(l, 2).files['user-data']!) as { write_files: { path: string }[] };
    expect(udc.write_files.map((f) => f.path)).toEqual(['/etc/docker/daemon.json']);
  });

  it('leaves no placeholder for the guest to guess ($private_ipv4 and friends)', () => {
    const out = Object.values(render(lab()).files).join('\n');
    expect(out).not.toMatch(/\$(private|public)_ipv4|\{\{|%[a-z]/);
  });

  it('instance-id changes exactly when the config changes', () => {
    const id = (l: LabSpec) =>
      (parse(render(l).files['meta-data']!) as Record<string, string>)['instance-id'];
    expect(id(lab())).toBe(id(lab()));
    expect(id(lab('defaults: { memory: 2GiB }\n'))).toBe(id(lab())); // not part of the guest config
    expect(id(lab('services: [docker]\n'))).not.toBe(id(lab()));
  });

  it('turns on the etcd v2 API only when asked', () => {
    expect(render(lab()).files['user-data']).not.toContain('ETCD_ENABLE_V2');
    expect(render(lab('etcd: { api: v2 }\n')).files['user-data']).toContain('ETCD_ENABLE_V2=true');
  });

  it('binds the static address to the MAC and names the gateway and DNS', () => {
    const l = lab();
    const nc = parse(render(l).files['network-config']!) as { ethernets: { eth0: Record<string, unknown> } };
    expect(nc.ethernets.eth0).toEqual({
      match: { macaddress: l.nodes[0]!.mac },
      'set-name': 'eth0',
      addresses: ['10.9.0.2/24'],
    });
  });

  it('refuses a dialect it cannot render, with a clear message', () => {
    const l = lab();
    const node = {
      ...l.nodes[0]!,
      template: {
        ...l.nodes[0]!.template,
        name: 'flatcar-x',
        provisioning: { dialect: 'ignition' as const, delivery: 'fwcfg' as const },
      },
    };
    expect(() => renderProvisioning({ lab: l, node, keys: nodeKeys(l, node, secret) })).toThrow(
      /flatcar-x uses the ignition dialect/,
    );
  });
});

describe('domain XML', () => {
  it('escapes hostile text instead of breaking the document', () => {
    const l = lab();
    const hostile = `a</cmdline><devices><disk file='/etc/shadow'/>&amp;"`;
    const node = {
      ...l.nodes[0]!,
      template: { ...l.nodes[0]!.template, boot: { kernel: 'k', cmdline: hostile } },
    };
    const xml = renderDomainXml({
      lab: l,
      node,
      paths: { ...paths, console: `/tmp/x'"<>&.log` },
      type: 'qemu',
      configHash: 'h',
    });
    const doc = new XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: '@_',
      processEntities: true,
      htmlEntities: false,
    }).parse(xml) as {
      domain: { os: { cmdline: string }; devices: { serial: { log: { '@_file': string } } } };
    };
    // The text survives as text: one <devices> element, the values read back unchanged.
    expect(xml.match(/<devices>/g)).toHaveLength(1);
    expect(doc.domain.os.cmdline).toBe(hostile);
    expect(doc.domain.devices.serial.log['@_file']).toBe(`/tmp/x'"<>&.log`);
  });

  it('round-trips its metadata and machine shape through the parsers', () => {
    const l = lab();
    const xml = renderDomainXml({ lab: l, node: l.nodes[1]!, paths, type: 'kvm', configHash: 'cafe' });
    expect(parseLabMetadata(xml)).toEqual({
      lab: 'r',
      node: 'b',
      labfileHash: l.labfileHash,
      configHash: 'cafe',
      ip: '10.9.0.3',
      mac: l.nodes[1]!.mac,
    });
    expect(parseDomainXml(xml)).toMatchObject({
      name: 'r-b',
      uuid: l.nodes[1]!.uuid,
      type: 'kvm',
      memoryMiB: 1024,
      vcpus: 1,
      bridge: 'br0',
      mac: l.nodes[1]!.mac,
    });
  });

  it('finds lab metadata by namespace whatever the prefix, and ignores foreign metadata', () => {
    const frag = `<x:node xmlns:x="https://lab.invalid/xmlns/lab/1"><x:lab>r</x:lab><x:node>a</x:node></x:node>`;
    expect(parseLabMetadata(frag)).toMatchObject({ lab: 'r', node: 'a' });
    expect(parseLabMetadata(frag.replace('lab.invalid', 'other.example'))).toBeUndefined();
    expect(parseLabMetadata('<domain><name>x</name></domain>')).toBeUndefined();
  });

  it('KVM gets host-passthrough; TCG gets a bounded translation cache instead', () => {
    const l = lab();
    const kvm = renderDomainXml({ lab: l, node: l.nodes[0]!, paths, type: 'kvm', configHash: 'h' });
    const tcg = renderDomainXml({ lab: l, node: l.nodes[0]!, paths, type: 'qemu', configHash: 'h' });
    expect(kvm).toContain('<domain type="kvm">');
    expect(kvm).toContain('host-passthrough');
    expect(kvm).not.toContain('tb-cache');
    expect(tcg).toContain('<tb-cache unit="MiB">256</tb-cache>');
    expect(tcg).not.toContain('host-passthrough');
  });
});

// S7: every user-influenced string that reaches libvirt XML is escaped once, by the
// builder, and read back exactly. Property-based (fast-check): arbitrary Unicode with
// `<>&'"`, `]]>`, entity-looking text, TAB/LF/CR, C0 controls and lone surrogates.
//
// What the renderer does with a code point XML 1.0 cannot carry (C0 controls but TAB/LF/CR,
// lone surrogates, U+FFFE/U+FFFF): it refuses it (XmlCharError naming where), rather than
// dropping it: a path without the character names another file, a name another domain.
// TAB, LF and CR are legal but a parser rewrites them (CR to LF; TAB/LF in an attribute to
// a space), so the renderer writes them as character references.
//
// The seed is fixed so a failure reproduces; LAB_FUZZ_SEED and LAB_FUZZ_RUNS explore more.
import { execa } from 'execa';
import fc from 'fast-check';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { LabSpec, NodeSpec } from '../../../lab/plan/model.js';
import { parseDomainXml, parseLabMetadata, renderDomainXml } from '../../../lab/render/domain-xml.js';
import { networkOwnedBy, renderNetworkXml } from '../../../lab/render/network-xml.js';
import type { DomainInput, DomainType } from '../../../lab/render/types.js';
import { XmlCharError, escapeXml, findNonXmlChar, stripNonXmlChars } from '../../../lab/render/xml.js';
import { BRIDGE_NET, MANAGED_NET, labSpec } from '../../support/lab-spec.js';

const SEED = Number(process.env.LAB_FUZZ_SEED ?? 20_070_007);
const RUNS = Number(process.env.LAB_FUZZ_RUNS ?? 300);
/** Cases run through the real virt-xml-validate and xmllint (a process each). */
const SAMPLE = 25;
const fcParams = { seed: SEED, numRuns: RUNS };

// ---------------------------------------------------------------------------------------
// Strings

/** Markup, entity-looking text and whitespace that have broken XML writers before. */
const HOSTILE = [
  '<',
  '>',
  '&',
  "'",
  '"',
  ']]>',
  ']]',
  '&amp;',
  '&lt;',
  '&#10;',
  '&#x1;',
  '&nbsp;',
  '<!--',
  '-->',
  '<![CDATA[',
  '</name>',
  '<domain>',
  '<?xml version="1.0"?>',
  '\t',
  '\n',
  '\r',
  '\r\n',
  ' ',
  'true',
  '$(id)',
  '; touch /tmp/pwned',
  '\\',
  '/',
  '\u00a0',
  '\u0085',
  '\u2028',
  '\ufeff',
  '\u{1f600}',
];
/** One code point XML 1.0 cannot carry. */
const illegalChar = fc.oneof(
  fc
    .integer({ min: 0, max: 0x1f })
    .filter((c) => c !== 0x9 && c !== 0xa && c !== 0xd)
    .map((c) => String.fromCharCode(c)),
  fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)), // lone surrogate
  fc.constantFrom('\ufffe', '\uffff'),
);
const unit = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...HOSTILE) },
  { weight: 4, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: illegalChar },
);
/** Anything, XML-legal or not. */
const anyText = fc.string({ unit, maxLength: 14 });
/** What XML 1.0 can carry: anyText with the rest filtered out. */
const xmlText = anyText.map(stripNonXmlChars);

// ---------------------------------------------------------------------------------------
// Domain XML

const baseLab = (network: string): LabSpec => labSpec({ network, nodes: '  - { name: a, ip: 10.9.0.2 }\n' });
const BASE = { bridge: baseLab(BRIDGE_NET), managed: baseLab(MANAGED_NET) };

/** Every string a domain's XML carries that a Labfile, template, host or state dir decides. */
interface DomainFields {
  labName: string;
  nodeName: string;
  domain: string;
  uuid: string;
  labfileHash: string;
  configHash: string;
  ip: string;
  mac: string;
  /** The bridge (bridge mode) or the libvirt network name (managed mode). */
  net: string;
  disk: string;
  console: string;
  emulator: string;
  seed: string | undefined;
  fwcfg: string | undefined;
  fwcfgName: string | undefined;
  kernel: string | undefined;
  initrd: string | undefined;
  cmdline: string | undefined;
}
interface DomainCase {
  f: DomainFields;
  mode: 'bridge' | 'managed';
  type: DomainType;
}

const FIELDS: (keyof DomainFields)[] = [
  'labName',
  'nodeName',
  'domain',
  'uuid',
  'labfileHash',
  'configHash',
  'ip',
  'mac',
  'net',
  'disk',
  'console',
  'emulator',
  'seed',
  'fwcfg',
  'fwcfgName',
  'kernel',
  'initrd',
  'cmdline',
];

function domainCase(
  text: fc.Arbitrary<string>,
  typed: Partial<Record<keyof DomainFields, fc.Arbitrary<string>>> = {},
) {
  const t = (k: keyof DomainFields) => typed[k] ?? text;
  const opt = (k: keyof DomainFields) => fc.option(t(k), { nil: undefined });
  return fc.record({
    f: fc.record({
      labName: t('labName'),
      nodeName: t('nodeName'),
      domain: t('domain'),
      uuid: t('uuid'),
      labfileHash: t('labfileHash'),
      configHash: t('configHash'),
      ip: t('ip'),
      mac: t('mac'),
      net: t('net'),
      disk: t('disk'),
      console: t('console'),
      emulator: t('emulator'),
      seed: opt('seed'),
      fwcfg: opt('fwcfg'),
      fwcfgName: opt('fwcfgName'),
      kernel: opt('kernel'),
      initrd: opt('initrd'),
      cmdline: opt('cmdline'),
    }),
    mode: fc.constantFrom('bridge' as const, 'managed' as const),
    type: fc.constantFrom('qemu' as const, 'kvm' as const),
  });
}

/** The renderer's input carrying the case's strings (the Labfile validation bypassed). */
function domainInput({ f, mode, type }: DomainCase): DomainInput {
  const base = BASE[mode];
  const n0 = base.nodes[0]!;
  const lab: LabSpec = {
    ...base,
    name: f.labName,
    labfileHash: f.labfileHash,
    network:
      mode === 'bridge'
        ? { ...base.network, bridge: f.net }
        : { ...base.network, libvirtName: f.net, bridge: 'virbr-lab-r' },
  };
  const node: NodeSpec = {
    ...n0,
    name: f.nodeName,
    domain: f.domain,
    uuid: f.uuid,
    ip: f.ip,
    mac: f.mac,
    template: {
      ...n0.template,
      boot: f.cmdline === undefined ? { firmware: 'bios' } : { kernel: 'vmlinuz', cmdline: f.cmdline },
      provisioning: {
        ...n0.template.provisioning,
        ...(f.fwcfgName === undefined ? {} : { fwcfgName: f.fwcfgName }),
      },
    },
  };
  return {
    lab,
    node,
    type,
    configHash: f.configHash,
    emulator: f.emulator,
    paths: {
      disk: f.disk,
      console: f.console,
      ...(f.seed === undefined ? {} : { seed: f.seed }),
      ...(f.fwcfg === undefined ? {} : { fwcfg: f.fwcfg }),
      ...(f.kernel === undefined ? {} : { kernel: f.kernel }),
      ...(f.initrd === undefined ? {} : { initrd: f.initrd }),
    },
  };
}

/** The same case with every string but empty ones replaced by a plain one: the shape to compare with. */
function benign(c: DomainCase): DomainCase {
  const f = Object.fromEntries(
    Object.entries(c.f).map(([k, v]) => [k, v ? `/plain-${k}` : v]),
  ) as unknown as DomainFields;
  return { ...c, f };
}

/** Where each field's value must be read back (paths in the parsed document, arrays by index). */
function domainValuePaths({ f, mode }: DomainCase): [keyof DomainFields, string][] {
  const meta = 'domain.0.metadata.0.lab:node.0';
  const dev = 'domain.0.devices.0';
  // The renderer takes an empty path for none.
  const kernelBoot = !!f.kernel && f.cmdline !== undefined;
  const out: [keyof DomainFields, string][] = [
    ['domain', 'domain.0.name.0'],
    ['uuid', 'domain.0.uuid.0'],
    ['labName', `${meta}.lab:lab.0`],
    ['nodeName', `${meta}.lab:node.0`],
    ['labfileHash', `${meta}.lab:labfile-hash.0`],
    ['configHash', `${meta}.lab:config-hash.0`],
    ['ip', `${meta}.lab:ip.0`],
    ['mac', `${meta}.lab:mac.0`],
    ['mac', `${dev}.interface.0.mac.0.@_address`],
    ['net', `${dev}.interface.0.source.0.@_${mode === 'bridge' ? 'bridge' : 'network'}`],
    ['disk', `${dev}.disk.0.source.0.@_file`],
    ['console', `${dev}.serial.0.log.0.@_file`],
    ['emulator', `${dev}.emulator.0`],
  ];
  if (f.seed) out.push(['seed', `${dev}.disk.1.source.0.@_file`]);
  if (f.fwcfg) {
    out.push(['fwcfg', 'domain.0.sysinfo.0.entry.0.@_file']);
    if (f.fwcfgName !== undefined) out.push(['fwcfgName', 'domain.0.sysinfo.0.entry.0.@_name']);
  }
  if (kernelBoot) {
    out.push(['kernel', 'domain.0.os.0.kernel.0'], ['cmdline', 'domain.0.os.0.cmdline.0']);
    if (f.initrd) out.push(['initrd', 'domain.0.os.0.initrd.0']);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Reading back

/** Every element an array, text and attributes verbatim, character references decoded. */
const reader = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  textNodeName: '#text',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  htmlEntities: true,
  isArray: (_name, _jpath, _leaf, isAttribute) => isAttribute !== true,
});
type Tree = Record<string, unknown>;
const read = (xml: string) => reader.parse(xml) as Tree;

/** The value at a dotted path; an element's text whether or not it has attributes. */
function valueAt(doc: Tree, dotted: string): unknown {
  const v = dotted.split('.').reduce<unknown>((cur, k) => (cur as Tree | undefined)?.[k], doc);
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) return (v as Tree)['#text'] ?? '';
  return v;
}

/** Each rendered field's value as read from the document, keyed `field@path`. */
function readBack(doc: Tree, c: DomainCase): Record<string, unknown> {
  return Object.fromEntries(domainValuePaths(c).map(([k, at]) => [`${k}@${at}`, valueAt(doc, at)]));
}
function wanted(c: DomainCase): Record<string, unknown> {
  return Object.fromEntries(domainValuePaths(c).map(([k, at]) => [`${k}@${at}`, c.f[k]]));
}

/** The document with every string replaced by `s`: element names, counts and attribute sets. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(shape);
  if (typeof v === 'object' && v !== null)
    return Object.fromEntries(
      Object.entries(v)
        .filter(([k]) => k !== '#text')
        .map(([k, x]) => [k, shape(x)]),
    );
  return 's';
}

/**
 * What a strict reader needs beyond well-formedness: only XML characters; no raw CR or
 * TAB anywhere and no raw LF but the builder's own line breaks, so no value carries one
 * a parser would rewrite.
 */
function expectCarriable(xml: string): void {
  expect(findNonXmlChar(xml)).toBeUndefined();
  expect(xml).not.toMatch(/[\t\r]/);
  const lines = xml.split('\n').slice(0, -1);
  expect(lines.filter((l) => !/^ *<[^<]*(>|<\/[^<]*>)$/.test(l))).toEqual([]);
  expect(xml.endsWith('>\n')).toBe(true);
  expect(XMLValidator.validate(xml)).toBe(true);
}

// ---------------------------------------------------------------------------------------

describe('S7 domain XML fuzz', () => {
  it(
    'is well-formed, has the expected elements, and reads back every value exactly',
    { timeout: 60_000 },
    () => {
      fc.assert(
        fc.property(domainCase(xmlText), (c) => {
          const xml = renderDomainXml(domainInput(c));
          expectCarriable(xml);
          const doc = read(xml);
          expect(Object.keys(doc)).toEqual(['domain']);
          expect(doc.domain).toHaveLength(1);
          // Element names, counts and attributes are those of a plain render of the same case.
          expect(shape(doc)).toEqual(shape(read(renderDomainXml(domainInput(benign(c))))));
          const d = (doc.domain as Tree[])[0]!;
          expect(d.name).toHaveLength(1);
          const devices = (d.devices as Tree[])[0]!;
          expect(devices.disk).toHaveLength(c.f.seed ? 2 : 1);
          expect(devices.interface).toHaveLength(1);
          expect(d.sysinfo ?? []).toHaveLength(c.f.fwcfg ? 1 : 0);
          expect(readBack(doc, c)).toEqual(wanted(c));
          // No double escaping: `&amp;amp;` only where a value itself held `&amp;`.
          if (!Object.values(c.f).some((v) => v?.includes('&amp;'))) expect(xml).not.toContain('&amp;amp;');
        }),
        fcParams,
      );
    },
  );

  it(
    "lab's own readers (parseLabMetadata, parseDomainXml) get every value back exactly",
    { timeout: 60_000 },
    () => {
      fc.assert(
        fc.property(domainCase(xmlText), (c) => {
          const { f } = c;
          const xml = renderDomainXml(domainInput(c));
          const meta = parseLabMetadata(xml);
          if (f.labName && f.nodeName)
            expect(meta).toEqual({
              lab: f.labName,
              node: f.nodeName,
              labfileHash: f.labfileHash,
              configHash: f.configHash,
              ip: f.ip,
              mac: f.mac,
              schema: 2,
            });
          else expect(meta).toBeUndefined(); // no lab or node name: not a lab's domain
          const d = parseDomainXml(xml);
          expect(d.name).toBe(f.domain);
          expect(d.uuid).toBe(f.uuid);
          expect(d.type).toBe(c.type);
          expect(d.disks).toEqual(f.seed ? [f.disk, f.seed] : [f.disk]);
          expect(d.mac).toBe(f.mac || undefined);
          expect(c.mode === 'bridge' ? d.bridge : d.network).toBe(f.net || undefined);
        }),
        fcParams,
      );
    },
  );

  it('refuses a value XML 1.0 cannot carry, naming where it is', { timeout: 60_000 }, () => {
    const injected = fc
      .record({
        c: domainCase(xmlText),
        pick: fc.nat(),
        at: fc.nat(),
        bad: illegalChar,
      })
      .map(({ c, pick, at, bad }) => {
        const rendered = [...new Set(domainValuePaths(c).map(([k]) => k))];
        const field = rendered[pick % rendered.length]!;
        const v = c.f[field]!;
        const i = at % (v.length + 1);
        return { c: { ...c, f: { ...c.f, [field]: v.slice(0, i) + bad + v.slice(i) } }, field };
      });
    fc.assert(
      fc.property(injected, ({ c, field }) => {
        const value = c.f[field]!;
        fc.pre(findNonXmlChar(value) !== undefined);
        let err: unknown;
        try {
          renderDomainXml(domainInput(c));
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(XmlCharError);
        const e = err as XmlCharError;
        // The first place the value is written to (metadata comes before devices), as a
        // path in the builder's tree: disk is the one array there.
        const [, at] = domainValuePaths(c).find(([k]) => k === field)!;
        expect(e.where).toBe(at.replace(/\.disk\.(\d)/, '.disk[$1]').replace(/\.0(?=\.|$)/g, ''));
        expect(e.codePoint).toBe(findNonXmlChar(value)!.codePoint);
        expect(e.message).toMatch(/ holds U\+[0-9A-F]{4,6}, which XML 1\.0 cannot carry$/);
      }),
      fcParams,
    );
  });

  it('escapes each markup character exactly once', () => {
    const v = `a&b<c>d"e'f]]>g&amp;h`;
    const f = Object.fromEntries(FIELDS.map((k) => [k, v])) as unknown as DomainFields;
    const xml = renderDomainXml(domainInput({ mode: 'bridge', type: 'qemu', f }));
    const escaped = 'a&amp;b&lt;c&gt;d&quot;e&apos;f]]&gt;g&amp;amp;h';
    expect(escapeXml(v)).toBe(escaped);
    // Every field once, the MAC twice; no other `&` in the document.
    expect(xml.split(escaped)).toHaveLength(FIELDS.length + 2);
    expect(xml.split(escaped).join('')).not.toContain('&');
  });
});

// ---------------------------------------------------------------------------------------
// Network XML

interface NetworkCase {
  labName: string;
  name: string;
  bridge: string;
  hostIp: string;
  netmask: string;
  nat: boolean;
  hosts: { mac: string; name: string; ip: string }[];
}
function networkCase(
  text: fc.Arbitrary<string>,
  typed: Partial<Record<'name' | 'bridge' | 'ip' | 'mac', fc.Arbitrary<string>>> = {},
) {
  return fc.record({
    labName: text,
    name: typed.name ?? text,
    bridge: typed.bridge ?? text,
    hostIp: typed.ip ?? text,
    netmask: typed.ip ?? text,
    nat: fc.boolean(),
    hosts: fc.array(fc.record({ mac: typed.mac ?? text, name: text, ip: typed.ip ?? text }), {
      maxLength: 3,
    }),
  });
}

function networkLab(c: NetworkCase): LabSpec {
  const base = BASE.managed;
  return {
    ...base,
    name: c.labName,
    network: {
      ...base.network,
      libvirtName: c.name || 'x', // renderNetworkXml refuses a lab without a network name
      bridge: c.bridge,
      hostIp: c.hostIp || '10.9.0.1',
      netmask: c.netmask,
      forward: c.nat ? 'nat' : 'none',
    },
    nodes: c.hosts.map((h) => ({ ...base.nodes[0]!, ...h })),
  };
}

describe('S7 network XML fuzz', () => {
  it('is well-formed, has one host per node, and reads back every value exactly', { timeout: 60_000 }, () => {
    fc.assert(
      fc.property(networkCase(xmlText), (c) => {
        const lab = networkLab(c);
        const xml = renderNetworkXml(lab);
        expectCarriable(xml);
        const doc = read(xml);
        expect(Object.keys(doc)).toEqual(['network']);
        const n = (doc.network as Tree[])[0]!;
        expect(n.name).toHaveLength(1);
        expect(n.forward ?? []).toHaveLength(c.nat ? 1 : 0);
        const hosts = valueAt(doc, 'network.0.ip.0.dhcp.0.host') as Tree[] | undefined;
        expect(hosts ?? []).toHaveLength(c.hosts.length);
        expect(valueAt(doc, 'network.0.name.0')).toBe(lab.network.libvirtName);
        expect(valueAt(doc, 'network.0.metadata.0.lab:network.0.lab.0')).toBe(c.labName);
        expect(valueAt(doc, 'network.0.bridge.0.@_name')).toBe(c.bridge);
        expect(valueAt(doc, 'network.0.ip.0.@_address')).toBe(lab.network.hostIp);
        expect(valueAt(doc, 'network.0.ip.0.@_netmask')).toBe(c.netmask);
        c.hosts.forEach((h, i) => {
          const el = hosts![i]!;
          expect([el['@_mac'], el['@_name'], el['@_ip']]).toEqual([h.mac, h.name, h.ip]);
          expect(Object.keys(el).sort()).toEqual(['@_ip', '@_mac', '@_name']);
        });
        expect(networkOwnedBy(xml, c.labName)).toBe(true);
        expect(networkOwnedBy(xml, `${c.labName}x`)).toBe(false);
      }),
      fcParams,
    );
  });

  it('refuses a value XML 1.0 cannot carry', { timeout: 60_000 }, () => {
    const injected = fc.record({ c: networkCase(xmlText), bad: illegalChar, which: fc.nat() });
    fc.assert(
      fc.property(injected, ({ c, bad, which }) => {
        const lab = networkLab(c);
        const spots: (() => void)[] = [
          () => (lab.name += bad),
          () => (lab.network.libvirtName += bad),
          () => (lab.network.bridge += bad),
          () => (lab.network.netmask = bad + lab.network.netmask),
          ...lab.nodes.map((n) => () => (n.name = bad + n.name)),
        ];
        spots[which % spots.length]!();
        expect(() => renderNetworkXml(lab)).toThrow(XmlCharError);
      }),
      fcParams,
    );
  });
});

// ---------------------------------------------------------------------------------------
// The real validators: libvirt's RelaxNG schemas (virt-xml-validate) and libxml2 itself.

/** Legal for the schema too: the typed fields get values of their RelaxNG patterns. */
const hex = (n: number) =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: n, maxLength: n });
const uniMac = fc
  .tuple(hex(1), fc.constantFrom(...'02468aAcCeE'), fc.array(hex(2), { minLength: 5, maxLength: 5 }))
  .map(([a, b, rest]) => [`${a}${b}`, ...rest].join(':'));
const ipv4 = fc.ipV4();
/** absFilePath: `(/|[a-zA-Z]:\\).+` where `.` is anything but LF and CR. */
const absPath = xmlText.map((s) => `/${s.replace(/[\n\r]/g, '')}`).filter((s) => s.length > 1);
/** objectNameWithSlash: `[^\n]+`. */
const domainName = xmlText.map((s) => s.replace(/\n/g, '')).filter((s) => s.length > 0);
/** interface-bridge-attributes and deviceName: `[a-zA-Z0-9_.\-\\:/ ]*` (no space in a network's). */
const bridgeName = (space: boolean) =>
  fc.string({ unit: fc.constantFrom(...`abcXYZ019_.-\\:/${space ? ' ' : ''}`), minLength: 1, maxLength: 15 });
const schemaDomainCase = domainCase(xmlText, {
  domain: domainName,
  uuid: fc.uuid(),
  mac: uniMac,
  disk: absPath,
  seed: absPath,
  console: absPath,
  emulator: absPath,
  kernel: absPath,
  initrd: absPath,
}).map((c) => (c.mode === 'bridge' ? c : { ...c, f: { ...c.f, net: c.f.net || 'n' } }));
// The bridge of bridge mode follows its own pattern; the managed network's name is free text.
const schemaDomainCases = fc
  .tuple(schemaDomainCase, bridgeName(true))
  .map(([c, br]) => (c.mode === 'bridge' ? { ...c, f: { ...c.f, net: br } } : c));
const schemaNetworkCases = networkCase(xmlText, {
  name: xmlText.filter((s) => s.length > 0),
  bridge: bridgeName(false),
  ip: ipv4,
  mac: uniMac,
}).map((c) => ({ ...c, hosts: c.hosts.map((h) => ({ ...h, name: h.name || 'h' })) }));

const scratch = mkdtempSync(path.join(os.tmpdir(), 'lab-xml-fuzz-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** libxml2's own reading, in canonical form (C14N escapes every rewritten character). */
async function libxml2Canonical(file: string): Promise<string> {
  const r = await execa('xmllint', ['--c14n', file], { reject: false, timeout: 30_000 });
  expect(r.exitCode, `${file}: ${r.stderr || r.message}`).toBe(0); // xmllint: libxml2-utils
  return r.stdout;
}
async function validate(file: string, kind: 'domain' | 'network'): Promise<void> {
  const r = await execa('virt-xml-validate', [file, kind], { reject: false, timeout: 60_000 });
  expect(r.exitCode, `${file}: ${r.stderr || r.message}`).toBe(0); // libvirt-clients
}
/** At most `n` at once: each is a process that loads the whole schema. */
async function eachLimited<T>(items: T[], n: number, fn: (x: T, i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

describe('S7 sample through virt-xml-validate and libxml2', () => {
  it(
    `${SAMPLE} fuzzed domains validate and libxml2 reads every value back exactly`,
    { timeout: 120_000 },
    async () => {
      const cases = fc.sample(schemaDomainCases, { seed: SEED, numRuns: SAMPLE });
      // The sample is not all plain: markup, entity-looking text and line breaks are in it.
      expect(cases.some((c) => /[<>&'"]/.test(c.f.domain))).toBe(true);
      expect(cases.some((c) => Object.values(c.f).some((v) => v !== undefined && /[\t\n\r]/.test(v)))).toBe(
        true,
      );
      await eachLimited(cases, 4, async (c, i) => {
        const file = path.join(scratch, `domain-${i}.xml`);
        writeFileSync(file, renderDomainXml(domainInput(c)));
        await validate(file, 'domain');
        const doc = read(await libxml2Canonical(file));
        expect(readBack(doc, c), `case ${i}`).toEqual(wanted(c));
      });
    },
  );

  it(
    `${SAMPLE} fuzzed managed networks validate and libxml2 reads every value back exactly`,
    { timeout: 120_000 },
    async () => {
      const cases = fc.sample(schemaNetworkCases, { seed: SEED, numRuns: SAMPLE });
      await eachLimited(cases, 4, async (c, i) => {
        const file = path.join(scratch, `network-${i}.xml`);
        const lab = networkLab(c);
        writeFileSync(file, renderNetworkXml(lab));
        await validate(file, 'network');
        const doc = read(await libxml2Canonical(file));
        expect(valueAt(doc, 'network.0.name.0')).toBe(lab.network.libvirtName);
        expect(valueAt(doc, 'network.0.metadata.0.lab:network.0.lab.0')).toBe(c.labName);
        const hosts = (valueAt(doc, 'network.0.ip.0.dhcp.0.host') ?? []) as Tree[];
        expect(hosts.map((h) => h['@_name'])).toEqual(c.hosts.map((h) => h.name));
      });
    },
  );

  it('the checks can fail: a raw control character, a bare attribute, a raw LF in an attribute', async () => {
    const good = renderDomainXml(domainInput(fc.sample(schemaDomainCases, { seed: SEED, numRuns: 1 })[0]!));
    const bad = [good.replace('<name>', '<name>\u0001'), good.replace(/ file="[^"]*"/, ' file')];
    for (const [i, xml] of bad.entries()) {
      const file = path.join(scratch, `bad-${i}.xml`);
      writeFileSync(file, xml);
      const r = await execa('virt-xml-validate', [file, 'domain'], { reject: false, timeout: 60_000 });
      expect(r.exitCode).not.toBe(0);
      expect(() => expectCarriable(xml)).toThrow();
    }
    // Well-formed, but a parser reads a space where the value had a line break.
    const lf = good.replace(/ file="/, ' file="a\nb');
    expect(() => expectCarriable(lf)).toThrow();
    writeFileSync(path.join(scratch, 'lf.xml'), lf);
    expect(await libxml2Canonical(path.join(scratch, 'lf.xml'))).toContain('file="a b');
  });
});

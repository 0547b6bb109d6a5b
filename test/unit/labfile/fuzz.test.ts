// Property-based fuzz of the Labfile checker (fast-check): whatever the text, it never
// throws, and a refusal always says where. FUZZ_SEED and FUZZ_RUNS override the fixed
// seed and the run count (e.g. FUZZ_RUNS=20000 for a long hunt); a failure prints the
// seed and the shrunk input to replay it.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isScalar, parseDocument, stringify, visit } from 'yaml';
import { formatIssue } from '../../../lab/errors.js';
import { parseLabfileShape } from '../../../lab/labfile/parse.js';
import { checkLabfileText } from '../../../lab/spec/load.js';
import { parseTemplate } from '../../../lab/templates/parse.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20240611);
const RUNS = Number(process.env.FUZZ_RUNS ?? 0);
const runs = (n: number) => ({ seed: SEED, numRuns: RUNS || n });

const goodFile = path.join(import.meta.dirname, '../../fixtures/good/example.yaml');
const good = readFileSync(goodFile, 'utf8');
const templateFile = path.join(import.meta.dirname, '../../../vm-templates/debian-12-lab.yaml');
const goodTemplate = readFileSync(templateFile, 'utf8');

/** The checker's answer, with every property a caller relies on. Throws nothing itself. */
function check(text: string, file: string) {
  const r = checkLabfileText(text, file);
  if (r.ok) return r;
  expect(r.issues.length).toBeGreaterThan(0);
  for (const i of r.issues) {
    expect(i.file).toBe(file);
    expect(Number.isInteger(i.line) && i.line >= 0).toBe(true);
    expect(Number.isInteger(i.col) && i.col >= 0).toBe(true);
    expect(typeof i.message === 'string' && i.message.length > 0).toBe(true);
    if (i.line > 0) expect(i.source).toBeTypeOf('string');
    // What the CLI prints is terminal-safe: no control character but newlines, no bidi override.
    // eslint-disable-next-line no-control-regex
    expect(formatIssue(i)).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
  }
  return r;
}

/** A located issue points inside the text: an existing line, a column on it (or just past its end). */
function expectInside(text: string, issues: { line: number; col: number }[]) {
  const lines = (text.startsWith('\ufeff') ? text.slice(1) : text).split('\n');
  for (const i of issues) {
    if (i.line === 0) continue;
    expect(i.line).toBeGreaterThanOrEqual(1);
    expect(i.line).toBeLessThanOrEqual(lines.length);
    expect(i.col).toBeGreaterThanOrEqual(1);
    expect(i.col).toBeLessThanOrEqual(lines[i.line - 1]!.length + 1);
  }
}

// Pieces of YAML syntax and of Labfiles, glued at random: more of the parser's corners
// than random characters reach.
const yamlPiece = fc.oneof(
  fc.constantFrom(
    'name: ',
    'template: ',
    'network:',
    'nodes:',
    'mode: bridge',
    'cidr: 10.0.0.0/24',
    '- ',
    '  ',
    '\t',
    '\n',
    '\r\n',
    '{',
    '}',
    '[',
    ']',
    ', ',
    ': ',
    '? ',
    '&a ',
    '*a',
    '<<: ',
    '!!str ',
    '!!binary ',
    '!x ',
    '"',
    "'",
    '#',
    '|',
    '>-',
    '---',
    '...',
    '%YAML 1.2',
    '~',
    '\ufeff',
    '\u0000',
    '1e309',
    '0x1F',
    '.nan',
    '-.inf',
    '18446744073709551616',
    '../',
    '/etc/../root',
    '<a&b>',
    ']]>',
    '{n}',
    '\u202e',
    'count: 64',
    'files: [{ path: ',
    'units: [{ name: ',
    'cloudConfig: ',
  ),
  fc.string({ maxLength: 8 }),
);
const yamlish = fc.array(yamlPiece, { maxLength: 40 }).map((parts) => parts.join(''));

/** Values to put where a good Labfile has a scalar: the hostile and the merely wrong. */
const hostile = fc.oneof(
  fc.constantFrom<unknown>(
    1e308,
    -1,
    0,
    2 ** 64,
    Number.MAX_SAFE_INTEGER + 2,
    0.5,
    '1e309',
    'NaN',
    '-0',
    '',
    ' ',
    '../x',
    '/etc/../root/x',
    '/',
    '//x',
    'a/b',
    'a b',
    '-rf',
    '123',
    'deadbeef-1234-5678-9abc-def012345678',
    'Node1',
    'a'.repeat(64),
    'a'.repeat(300),
    '<a&b>',
    '\'"]]>',
    '\u0000',
    '\n',
    '\u001b[2J',
    '\u202eevil',
    'nоde', // Cyrillic o
    '💥',
    '\ufeff',
    '{n}',
    '4755',
    'qemu:///system\n',
    'https://x/\nExecStartPre=/bin/sh',
    null,
    true,
    [],
    {},
    [1, 2],
    { a: 1 },
  ),
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.integer(),
  fc.double(),
  fc.jsonValue({ maxDepth: 2 }),
);

/** Where the good text has scalars: [start, end) of each in the text. */
function scalarRanges(text: string): [number, number][] {
  const ranges: [number, number][] = [];
  visit(parseDocument(text), {
    Scalar(_, node) {
      if (isScalar(node) && node.range) ranges.push([node.range[0], node.range[1]]);
    },
  });
  return ranges;
}
const goodScalars = scalarRanges(good);
const templateScalars = scalarRanges(goodTemplate);

/** The text with one scalar replaced by a value, written quoted (valid YAML) or raw. */
const mutation = (text: string, ranges: [number, number][]) =>
  fc
    .record({ at: fc.nat({ max: ranges.length - 1 }), value: hostile, raw: fc.boolean() })
    .map(({ at, value, raw }) => {
      const [start, end] = ranges[at]!;
      const written = raw
        ? typeof value === 'string'
          ? value
          : JSON.stringify(value)
        : typeof value === 'string'
          ? JSON.stringify(value)
          : stringify(value, { flow: true }).trimEnd();
      return text.slice(0, start) + written + text.slice(end);
    });

describe('fuzz: the Labfile checker', { timeout: RUNS ? 3_600_000 : 60_000 }, () => {
  it('accepts the good Labfile it mutates (the baseline)', () => {
    expect(checkLabfileText(good, goodFile).ok).toBe(true);
    expect(parseTemplate(goodTemplate, templateFile).ok).toBe(true);
    expect(goodScalars.length).toBeGreaterThan(20);
  });

  it('never throws on arbitrary strings; a refusal is located', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' })),
        (t) => {
          check(t, 'Labfile.yaml');
        },
      ),
      runs(600),
    );
  });

  it('never throws on YAML-ish text; a refusal points inside the text', () => {
    fc.assert(
      fc.property(yamlish, (t) => {
        const r = check(t, 'Labfile.yaml');
        if (!r.ok) expectInside(t, r.issues);
      }),
      runs(1500),
    );
  });

  it('never throws on any JSON value written as YAML', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.anything({ maxDepth: 3 })), (v) => {
        let text: unknown;
        try {
          text = stringify(v); // undefined for undefined, despite its type
        } catch {
          // not representable as YAML: not the checker's business
        }
        if (typeof text !== 'string') return;
        const r = check(text, 'Labfile.yaml');
        if (!r.ok) expectInside(text, r.issues);
      }),
      runs(500),
    );
  });

  it('never throws on a good Labfile with one scalar replaced; a refusal points inside the text', () => {
    fc.assert(
      fc.property(mutation(good, goodScalars), (t) => {
        const r = check(t, goodFile);
        if (!r.ok) expectInside(t, r.issues);
      }),
      runs(1500),
    );
  });

  it('never throws on a good Labfile with two scalars replaced', () => {
    fc.assert(
      fc.property(
        mutation(good, goodScalars).chain((t) => {
          const ranges = scalarRanges(t);
          return ranges.length > 0 ? mutation(t, ranges) : fc.constant(t);
        }),
        (t) => {
          const r = check(t, goodFile);
          if (!r.ok) expectInside(t, r.issues);
        },
      ),
      runs(400),
    );
  });

  it('never throws on Labfiles built from parts: groups, units, files, cloudConfig with any values', () => {
    const anyValue = fc.oneof(hostile, fc.anything({ maxDepth: 2 }));
    // Mostly sensible values, so that the cross-field rules after the schema run too.
    const or = <T>(good: fc.Arbitrary<T>) =>
      fc.oneof({ arbitrary: good, weight: 12 }, { arbitrary: anyValue, weight: 1 });
    // A key left out most of the time (yaml writes no undefined value).
    const sometimes = <T>(a: fc.Arbitrary<T>) =>
      fc.oneof({ arbitrary: fc.constant(undefined), weight: 3 }, { arbitrary: a, weight: 1 });
    const fragment = fc.oneof(
      fc.constant({
        coreos: { units: [{ name: 'a.service', drop_ins: [{ name: 'x.conf', content: 'y' }] }] },
      }),
      fc.constant({ write_files: [{ path: '/etc/x', content: 'y', permissions: '0644' }] }),
      fc.dictionary(fc.constantFrom('coreos', 'write_files', 'hostname', 'users', 'x-y'), anyValue),
    );
    const machine = {
      mac: sometimes(or(fc.constantFrom('52:54:00:00:00:01', '52:54:00:00:00:02'))),
      template: sometimes(or(fc.constantFrom('debian-12-lab', 'flatcar-stable-cloudconfig', './x.yaml'))),
      cpus: sometimes(or(fc.integer({ min: 0, max: 65 }))),
      memory: sometimes(or(fc.constantFrom('64MiB', '1GiB', '2GiB', '2TiB'))),
      disk: sometimes(or(fc.constantFrom('4GiB', '65TiB'))),
      services: sometimes(or(fc.constantFrom(['etcd'], ['etcd', 'docker'], ['fleet']))),
      files: sometimes(
        fc.array(
          fc.record({
            path: or(fc.constantFrom('/etc/motd', '/etc/issue')),
            content: or(fc.string()),
            mode: sometimes(or(fc.constantFrom('0644', '600'))),
            owner: sometimes(or(fc.constantFrom('root', 'core:core'))),
          }),
          { maxLength: 2 },
        ),
      ),
      cloudConfig: sometimes(fragment),
    };
    const single = fc.record({
      name: or(fc.constantFrom('a', 'b', 'c')),
      ip: or(fc.constantFrom('10.9.0.2', '10.9.0.3', '10.9.0.4', '10.9.0.255', '10.9.0.1')),
      ...machine,
    });
    const group = fc.record({
      count: or(fc.integer({ min: 1, max: 3 })),
      name: or(fc.constantFrom('w{n}', 'n-{n}')),
      start: sometimes(or(fc.integer({ min: 0, max: 10_000 }))),
      ip: or(fc.constantFrom('10.9.0.10', '10.9.0.253')),
      ...machine,
    });
    const labfile = fc.record({
      name: or(fc.constant('t')),
      template: or(fc.constantFrom('debian-12-lab', 'flatcar-stable-cloudconfig', 'coreos-alpha')),
      network: fc.record({
        mode: or(fc.constantFrom('bridge', 'managed')),
        bridge: or(fc.constant('br0')),
        cidr: or(fc.constantFrom('10.9.0.0/24', '10.9.0.0/31', '10.9.0.7/24')),
        gateway: sometimes(or(fc.constant('10.9.0.1'))),
        forward: sometimes(fc.constantFrom('none', 'nat')),
      }),
      defaults: sometimes(fc.record({ memory: or(fc.constantFrom('1GiB', '32MiB')) })),
      etcd: sometimes(
        fc.record({
          bootstrap: sometimes(or(fc.constantFrom('static', 'discovery'))),
          discovery: sometimes(or(fc.constant('https://discovery.example/abc'))),
          api: sometimes(fc.constantFrom('v2', 'v3')),
        }),
      ),
      nodes: fc.array(fc.oneof(single, group), { minLength: 1, maxLength: 4 }),
      units: sometimes(
        fc.array(
          fc.record({
            name: or(fc.constantFrom('a.service', 'b.service', 'w.{n}.service', 'etcd.service')),
            count: sometimes(or(fc.integer({ min: 1, max: 3 }))),
            content: or(
              fc.oneof(
                fc.constantFrom(
                  '[Service]\nExecStart=/bin/true\n[X-Fleet]\nX-Conflicts=a.*\nMachineOf=a.service\n',
                  '[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\n',
                  '[X-Fleet]\nMachineID=zz\nMachineMetadata=x\n',
                ),
                fc.string({ minLength: 1 }),
              ),
            ),
          }),
          { maxLength: 3 },
        ),
      ),
      cloudConfig: sometimes(fragment),
    });
    let accepted = 0;
    let crossField = 0;
    fc.assert(
      fc.property(labfile, (v) => {
        let text: unknown;
        try {
          text = stringify(v);
        } catch {
          // not representable as YAML
        }
        if (typeof text !== 'string') return;
        const r = check(text, goodFile);
        if (r.ok) accepted++;
        else {
          expectInside(text, r.issues);
          if (parseLabfileShape(text, goodFile).ok) crossField++;
        }
      }),
      runs(600),
    );
    // The generator reaches past the schema: some Labfiles pass, some fail only later.
    expect(accepted).toBeGreaterThan(0);
    expect(crossField).toBeGreaterThan(0);
    if (process.env.FUZZ_STATS) console.log({ accepted, crossField });
  });

  it('never throws on a good template with one scalar replaced; a refusal points inside it', () => {
    fc.assert(
      fc.property(mutation(goodTemplate, templateScalars), (t) => {
        const r = parseTemplate(t, templateFile);
        if (r.ok) return;
        for (const i of r.issues) expect(typeof i.message === 'string' && i.message.length > 0).toBe(true);
        expectInside(t, r.issues);
      }),
      runs(1000),
    );
  });
});

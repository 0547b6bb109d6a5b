// Contract tests for the CoreOS dialects: every Ignition config lab renders is valid
// against the official Ignition JSON Schema of its spec version, and every CoreOS
// cloud-config uses only keys that Flatcar's coreos-cloudinit reads (Flatcar ignores
// the rest silently, dashed spellings included). Data in test/contract/data (SOURCE).
import AjvDraft04 from 'ajv-draft-04';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { nodeKeys } from '../../lab/render/node.js';
import { COREOS_CLOUDINIT_KEYS } from '../../lab/labfile/coreos-cloudinit-keys.js';
import { labSpec } from '../support/lab-spec.js';
import { renderIgnition } from '../../lab/render/ignition.js';
import { ignitionValidate } from '../../lab/providers/ignition-validate.js';
import type { RenderInput } from '../../lab/render/types.js';

const golden = path.join(import.meta.dirname, '../golden');
const data = path.join(import.meta.dirname, 'data');
const files = (readdirSync(golden, { recursive: true }) as string[]).map((f) => path.join(golden, f)).sort();
const ignitionFiles = files.filter((f) => f.endsWith('/config.ign'));
const cloudConfigs = files.filter((f) => f.endsWith('/openstack/latest/user_data'));
const rel = (f: string) => path.relative(golden, f);

// A CommonJS module: its default export is the module object, the class is .default.
const ajv = new AjvDraft04.default({ allErrors: true, strict: false });
const validators = new Map(
  ['3_3', '3_4', '3_5', '3_6'].map((v) => {
    const schema = JSON.parse(
      readFileSync(path.join(data, 'ignition-schemas', `v${v}.json`), 'utf8'),
    ) as object;
    return [v.replace('_', '.'), ajv.compile(schema)] as const;
  }),
);

/** Schema errors of an Ignition config, by the spec version it declares. */
function ignitionErrors(config: unknown): string[] {
  const version = (config as { ignition?: { version?: string } }).ignition?.version ?? '';
  const validate = validators.get(version.split('.').slice(0, 2).join('.'));
  if (!validate) return [`no schema for Ignition spec version ${JSON.stringify(version)}`];
  return validate(config) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
}

/** A template's node rendered at another Ignition spec version. */
function renderedAt(template: string, version: string): string {
  const lab = labSpec({
    name: 'v',
    template,
    extra: 'services: [etcd, docker]\n',
    nodes: "  - { name: a, ip: 10.9.0.2, files: [{ path: /x, content: 'y', owner: core }] }\n",
  });
  const node = lab.nodes[0]!;
  const input: RenderInput = {
    lab,
    node: {
      ...node,
      template: {
        ...node.template,
        provisioning: { ...node.template.provisioning, ignitionVersion: version },
      },
    },
    keys: nodeKeys(lab, node, Buffer.alloc(32, 2)),
  };
  return renderIgnition(input).files['config.ign']!;
}

describe('Ignition configs pass the official JSON Schema of their spec version', () => {
  it('there are Ignition goldens to check', () => {
    expect(ignitionFiles.length).toBeGreaterThanOrEqual(4);
  });
  it.each(ignitionFiles.map(rel))('%s', (f) => {
    expect(ignitionErrors(JSON.parse(readFileSync(path.join(golden, f), 'utf8')))).toEqual([]);
  });

  it.each(['3.3.0', '3.4.0', '3.5.0', '3.6.0'])('a Flatcar node rendered as spec %s', (version) => {
    const config = JSON.parse(renderedAt('flatcar-stable', version)) as { ignition: { version: string } };
    expect(config.ignition.version).toBe(version);
    expect(ignitionErrors(config)).toEqual([]);
  });

  it('fails an invalid config (the check can fail)', () => {
    const bad = JSON.parse(readFileSync(ignitionFiles[0]!, 'utf8')) as Record<string, unknown>;
    (bad.storage as { files: unknown[] }).files.push({ path: 42, mode: 'rw' });
    bad.systemd = { units: [{ enabled: true }] };
    expect(ignitionErrors(bad).length).toBeGreaterThanOrEqual(3);
    expect(ignitionErrors({ ignition: { version: '2.2.0' } })).toEqual([
      'no schema for Ignition spec version "2.2.0"',
    ]);
  });
});

/** ignition-validate's errors, or a failure saying it is missing (CI installs it). */
async function validateErrors(config: string): Promise<string[]> {
  const findings = await ignitionValidate(config);
  if (!findings)
    throw new Error('ignition-validate is not installed or does not read this version: apt install ignition');
  return findings.filter((f) => f.level === 'error').map((f) => `$.${f.at.join('.')}: ${f.message}`);
}

// Upstream Ignition 2.14 (Debian 12's `ignition`), the program debian-12-ignition boots with.
describe('ignition-validate reads every rendered config of spec 3.0-3.3 as valid', () => {
  const readable = ignitionFiles.filter((f) => /"version": "3\.[0-3]\.0"/.test(readFileSync(f, 'utf8')));
  it('there are goldens of those versions', () => {
    expect(readable.map(rel)).toContain('ignition3/out/i1/config.ign');
  });
  it.each(readable.map(rel))('%s', async (f) => {
    expect(await validateErrors(readFileSync(path.join(golden, f), 'utf8'))).toEqual([]);
  });
  it.each(
    ['debian-12-ignition', 'flatcar-stable'].flatMap((t) =>
      ['3.0.0', '3.1.0', '3.2.0', '3.3.0'].map((v) => [t, v] as const),
    ),
  )('a %s node rendered as spec %s', async (template, version) => {
    expect(await validateErrors(renderedAt(template, version))).toEqual([]);
  });
  it('fails a config Ignition refuses, with its message (the check can fail)', async () => {
    const bad = JSON.parse(renderedAt('debian-12-ignition', '3.3.0')) as { storage: { files: unknown[] } };
    bad.storage.files.push(bad.storage.files[0]);
    expect(await validateErrors(JSON.stringify(bad))).toEqual([
      `$.storage.files.${bad.storage.files.length - 1}: duplicate entry defined`,
    ]);
  });
});

/** The key table: section -> keys, from Flatcar's coreos-cloudinit. */
const KEYS = new Map(
  readFileSync(path.join(data, 'coreos-cloudinit-keys.txt'), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [section, rest] = l.split(':');
      return [section!.trim(), new Set(rest!.trim().split(/\s+/))] as const;
    }),
);

/** Keys of a cloud-config that Flatcar's coreos-cloudinit would not read, as paths. */
function unreadKeys(doc: unknown): string[] {
  const out: string[] = [];
  const check = (value: unknown, section: string, at: string) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
    const allowed = KEYS.get(section);
    for (const [k, v] of Object.entries(value)) {
      if (!allowed?.has(k)) out.push(`${at}${k}`);
      else if (section === 'config' && k === 'coreos') check(v, 'coreos', `${at}coreos.`);
      else if (section === 'config' && k === 'write_files') each(v, 'file', `${at}write_files`);
      else if (section === 'config' && k === 'users') each(v, 'user', `${at}users`);
      else if (section === 'unit' && k === 'drop_ins') each(v, 'dropin', `${at}drop_ins`);
    }
  };
  const each = (list: unknown, section: string, at: string) => {
    if (Array.isArray(list)) list.forEach((item, i) => check(item, section, `${at}[${i}].`));
  };
  // The coreos: section's own keys are the sections below it.
  KEYS.set('coreos', new Set(['etcd', 'etcd2', 'fleet', 'flannel', 'locksmith', 'oem', 'update', 'units']));
  KEYS.set('dropin', new Set(['name', 'content']));
  check(doc, 'config', '');
  const coreos = (doc as { coreos?: Record<string, unknown> }).coreos ?? {};
  for (const [section, value] of Object.entries(coreos)) {
    if (section === 'units') each(value, 'unit', 'coreos.units');
    else if (KEYS.has(section)) check(value, section, `coreos.${section}.`);
  }
  return out;
}

describe("CoreOS cloud-configs use only keys Flatcar's coreos-cloudinit reads", () => {
  it("lab's own key table (lab/labfile) is the vendored list, section by section", () => {
    const vendored = Object.fromEntries(
      [...KEYS].filter(([s]) => !['coreos', 'dropin'].includes(s)).map(([s, keys]) => [s, [...keys]]),
    );
    expect(COREOS_CLOUDINIT_KEYS).toEqual(vendored);
  });

  it('there are cloud-config goldens to check', () => {
    expect(cloudConfigs.length).toBeGreaterThanOrEqual(4);
  });
  it.each(cloudConfigs.map(rel))('%s', (f) => {
    const text = readFileSync(path.join(golden, f), 'utf8');
    expect(text.startsWith('#cloud-config\n')).toBe(true);
    // coreos-cloudinit reads YAML 1.1: parse it that way (off is a boolean there).
    const doc = parse(text, { version: '1.1' }) as { coreos?: { update?: { reboot_strategy?: unknown } } };
    expect(unreadKeys(doc)).toEqual([]);
    expect(doc.coreos?.update?.reboot_strategy).toBe('off');
  });

  it('finds dashed and unknown keys (the check can fail)', () => {
    const doc: unknown = parse(
      '#cloud-config\nhostname: a\nssh-authorized-keys: []\ncoreos:\n  update: { reboot-strategy: "off" }\n' +
        '  etcd2: { advertise-client-urls: x, name: a }\n  fleet: { public-ip: 1.2.3.4 }\n' +
        '  units: [{ name: a.service, drop-ins: [{ name: x.conf, content: y }] }, { name: b, drop_ins: [{ name: z, contents: q }] }]\n' +
        'write_files: [{ path: /a, mode: "0644" }]\n',
    );
    expect(unreadKeys(doc)).toEqual([
      'ssh-authorized-keys',
      'write_files[0].mode',
      'coreos.update.reboot-strategy',
      'coreos.etcd2.advertise-client-urls',
      'coreos.fleet.public-ip',
      'coreos.units[0].drop-ins',
      'coreos.units[1].drop_ins[0].contents',
    ]);
  });
});

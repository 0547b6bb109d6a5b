// Every problem of a Labfile in one run (issue 19): what the schema refuses does not hide
// what the cross-field checks find in the rest; a check that needs a refused value is
// skipped, and nothing is said of the placeholder standing for it.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LabfileError } from '../../../lab/errors.js';
import { parseLabfileShape } from '../../../lab/labfile/parse.js';
import { checkLabfileText, loadLab } from '../../../lab/spec/load.js';

const lines = (text: string, file = 'Labfile.yaml') => {
  const r = checkLabfileText(text, file);
  return r.ok ? [] : r.issues.map((i) => `${i.line}:${i.col}: ${i.message}`);
};

const KNOWN =
  '(known: coreos-alpha, debian-12-ignition, debian-12-lab, fedora-coreos-stable, flatcar-alpha, flatcar-beta, flatcar-stable, flatcar-stable-cloudconfig)';

describe('a Labfile with problems of every kind', () => {
  const text = [
    'name: t',
    'template: debian-12-lab',
    'network: { mode: bridge, bridge: br0, cidr: 192.168.2.0/24 }',
    'nodes:',
    '  - { name: n1, ip: 192.168.2.10, cpus: two }', // (a) the schema refuses it
    '  - { name: n2, ip: 192.168.2.11, template: debain-12-lab }', // (b) no such template
    '  - { name: n3, ip: 192.168.3.12 }', // (c) outside the CIDR
    '  - { name: n4, ip: 192.168.2.10 }', // (d) n1's address
    '',
  ].join('\n');

  it('gets all four in one run, in the order of the text', () => {
    expect(lines(text)).toEqual([
      '5:41: cpus: expected number, got string "two"',
      `6:45: unknown template "debain-12-lab" ${KNOWN}`,
      '7:21: ip 192.168.3.12 of n3 is not a host address in network.cidr 192.168.2.0/24',
      '8:21: ip 192.168.2.10 of n4 is already used by n1',
    ]);
  });

  it('in the same order whatever order the checks run in', () => {
    // The duplicate first, the refused value last: still the order of the text.
    const swapped = text
      .replace('cpus: two }', '}')
      .replace('{ name: n4, ip: 192.168.2.10 }', '{ name: n4, ip: 192.168.2.10, cpus: two }');
    expect(lines(swapped).map((l) => l.split(':').slice(0, 2).join(':'))).toEqual([
      '6:45',
      '7:21',
      '8:21',
      '8:41',
    ]);
  });

  it('loadLab throws them all as one LabfileError: exit 2, file:line:col first', () => {
    const file = path.join(import.meta.dirname, '../../fixtures/bad/all-at-once.yaml');
    let err: unknown;
    try {
      loadLab(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LabfileError);
    const e = err as LabfileError;
    expect(e.exitCode).toBe(2);
    expect(e.issues).toHaveLength(4);
    expect(e.message.split('\n')[0]).toMatch(new RegExp(`^${file}:10:41: cpus: `));
    expect(e.message.split('\n').filter((l) => l.startsWith(`${file}:`))).toHaveLength(4);
  });
});

const head = 'name: t\ntemplate: debian-12-lab\n';
const bridge = 'network: { mode: bridge, bridge: br0, cidr: 192.168.2.0/24 }\n';

describe('a refused value skips only the checks that need it', () => {
  it.each([
    [
      'an invalid CIDR: no address is outside it; a duplicate address is still one',
      `${head}network: { mode: bridge, bridge: br0, cidr: 192.168.2.0/33 }\nnodes:\n  - { name: a, ip: 10.0.0.1 }\n  - { name: b, ip: 10.0.0.1 }\n`,
      [
        '3:45: cidr: expected an IPv4 CIDR such as 192.168.2.0/24',
        '6:20: ip 10.0.0.1 of b is already used by a',
      ],
    ],
    [
      "an invalid gateway: the host's address on a managed network is not known",
      `${head}network: { mode: managed, cidr: 192.168.2.0/24, gateway: 192.168.2 }\nnodes:\n  - { name: a, ip: 192.168.2.1 }\n  - { name: b, ip: 192.168.3.1 }\n`,
      [
        '3:58: gateway: expected an IPv4 address such as 192.168.2.52',
        '6:20: ip 192.168.3.1 of b is not a host address in network.cidr 192.168.2.0/24',
      ],
    ],
    [
      "an invalid mode: neither bridge mode's nor managed mode's own rules",
      `${head}network: { mode: brigde, cidr: 192.168.2.0/24, forward: nat }\nnodes:\n  - { name: a, ip: 192.168.2.1 }\n`,
      ['3:18: mode: expected one of "bridge", "managed"'],
    ],
    [
      "a refused lab template: its nodes' own checks still run, its nodes' template checks do not",
      `name: t\ntemplate: 7\n${bridge}nodes:\n  - { name: a, ip: 192.168.9.1 }\n  - { name: b, ip: 192.168.2.2, template: nope }\n`,
      [
        '2:11: template: expected string, got number 7',
        '5:20: ip 192.168.9.1 of a is not a host address in network.cidr 192.168.2.0/24',
        `6:43: unknown template "nope" ${KNOWN}`,
      ],
    ],
    [
      "a refused node name: that node's address is still checked",
      `${head}${bridge}nodes:\n  - { name: A, ip: 192.168.2.10 }\n  - { name: b, ip: 192.168.2.10 }\n`,
      [
        '5:13: name: expected a hostname: lower-case letters, digits and dashes',
        '6:20: ip 192.168.2.10 of b is already used by unnamed-0',
      ],
    ],
    [
      'a missing address: nothing is said of the one standing for it',
      `${head}${bridge}nodes:\n  - { name: a }\n  - { name: b, ip: 0.0.0.0 }\n`,
      [
        '5:5: missing required key "ip"',
        '6:20: ip 0.0.0.0 of b is not a host address in network.cidr 192.168.2.0/24',
      ],
    ],
    [
      "a misspelt key stands for the one meant: no memory is not the default's too little",
      `name: t\ntemplate: fedora-coreos-stable\n${bridge}nodes:\n  - { name: a, ip: 192.168.2.10, memroy: 4GiB }\n`,
      ['5:34: unknown key "memroy" (did you mean "memory"?)'],
    ],
    [
      'refused services: no service is asked of the template',
      `${head}${bridge}services: [etcd, dokcer]\nnodes:\n  - { name: a, ip: 192.168.2.10, files: [{ path: etc/x, content: "" }] }\n`,
      [
        '4:18: services[1]: expected one of "etcd", "docker", "fleet"',
        '6:50: file path "etc/x" must be an absolute path (start with /)',
      ],
    ],
    [
      'no usable nodes: the network and the template are checked still',
      `name: t\ntemplate: nope\nnetwork: { mode: bridge, cidr: 192.168.2.0/24 }\nnodes: []\n`,
      [
        '2:11: unknown template "nope" ' + KNOWN,
        '3:12: bridge mode needs network.bridge: the name of an existing host bridge such as br0',
        '4:8: nodes: a lab needs at least one node',
      ],
    ],
    [
      "a group's refused address: nothing said of its members' addresses",
      `${head}${bridge}nodes:\n  - { count: 2, name: "n{n}", ip: 192.168.2.256 }\n  - { name: x, ip: 192.168.3.1 }\n`,
      [
        '5:35: ip: expected an IPv4 address such as 192.168.2.52',
        '6:20: ip 192.168.3.1 of x is not a host address in network.cidr 192.168.2.0/24',
      ],
    ],
  ])('%s', (_, text, want) => {
    expect(lines(text)).toEqual(want);
  });

  it('a Labfile the schema refuses stays refused when nothing else is found', () => {
    const r = checkLabfileText(
      `${head}${bridge}colour: blue\nnodes:\n  - { name: a, ip: 192.168.2.10 }\n`,
      'L',
    );
    expect(r.ok).toBe(false);
    expect(lines(`${head}${bridge}colour: blue\nnodes:\n  - { name: a, ip: 192.168.2.10 }\n`)).toEqual([
      '4:1: unknown key "colour"',
    ]);
  });
});

describe('the bad-input corpus, with a schema error added', () => {
  // Each Labfile the schema passes but the cross-field checks refuse: with a refused value
  // added in a line of its own, every one of its issues is still found, one line lower.
  const dir = path.join(import.meta.dirname, '../../fixtures/bad');
  const cases = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => [f, readFileSync(path.join(dir, f), 'utf8')] as const)
    .filter(
      ([f, text]) => /^[a-z#]/.test(text) && !/^accelerator:/m.test(text) && parseLabfileShape(text, f).ok,
    );

  it('has cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });

  it.each(cases)('%s: its issues and the new one', (f, text) => {
    const before = lines(text, path.join(dir, f));
    const after = lines(`accelerator: warp\n${text}`, path.join(dir, f));
    const shifted = before.map((l) => l.replace(/^(\d+):/, (_, n: string) => `${Number(n) + 1}:`));
    expect(after).toEqual(['1:14: accelerator: expected one of "auto", "kvm", "tcg"', ...shifted]);
  });
});

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatIssue } from '../../../lab/errors.js';
import { checkLabfileText } from '../../../lab/spec/load.js';
import { parseSize } from '../../../lab/labfile/schema.js';

const root = path.join(import.meta.dirname, '../../..');
const base = `name: t
template: debian-12-lab
network: { mode: managed, cidr: 10.9.0.0/24 }
nodes:
`;

describe('Labfile parsing', () => {
  it('accepts the example Labfile and resolves its nodes', () => {
    const r = checkLabfileText(
      readFileSync(path.join(root, 'Labfile.example.yaml'), 'utf8'),
      'Labfile.example.yaml',
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.lab.nodes.map((n) => [n.name, n.ip])).toEqual([
      ['coreos1', '10.52.0.52'],
      ['coreos2', '10.52.0.53'],
      ['coreos3', '10.52.0.54'],
    ]);
    expect(
      r.lab.nodes.every((n) => n.memoryMiB === 768 && n.cpus === 1 && n.diskBytes === 8 * 1024 ** 3),
    ).toBe(true);
    expect(r.lab.network).toMatchObject({
      mode: 'managed',
      hostIp: '10.52.0.1',
      prefix: 24,
      libvirtName: 'lab-coreos-lab',
    });
    expect(r.lab.nodes[2]!.files).toEqual([
      { path: '/etc/motd', content: 'Welcome to coreos3, a lab node.\n', mode: '0644' },
    ]);
  });

  it('expands count: groups into numbered nodes with consecutive IPs', () => {
    const r = checkLabfileText(
      `${base}  - { count: 3, name: "w{n}", start: 7, ip: 10.9.0.20, memory: 512MiB }\n  - { name: solo, ip: 10.9.0.2 }\n`,
      'L',
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.lab.nodes.map((n) => `${n.name}=${n.ip}/${n.memoryMiB}`)).toEqual([
      'w7=10.9.0.20/512',
      'w8=10.9.0.21/512',
      'w9=10.9.0.22/512',
      'solo=10.9.0.2/1024',
    ]);
  });

  it('reports every problem at once, not just the first', () => {
    const r = checkLabfileText(
      `${base}  - { name: a, ip: 10.9.0.300 }\n  - { name: B, ip: 10.9.0.3, colour: red }\n`,
      'L',
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.map((i) => `${i.line}:${i.col}`)).toEqual(['5:20', '6:13', '6:30']);
  });

  it('formats an issue with its source line and a caret under the column', () => {
    const r = checkLabfileText(`${base}  - { name: a, ip: 10.9.1.3 }\n`, 'Labfile.yaml');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(formatIssue(r.issues[0]!)).toBe(
      'Labfile.yaml:5:20: ip 10.9.1.3 of a is not a host address in network.cidr 10.9.0.0/24\n' +
        '  5 |   - { name: a, ip: 10.9.1.3 }\n' +
        '                         ^',
    );
  });

  it('the managed network host address is not given to a node', () => {
    const r = checkLabfileText(`${base}  - { name: a, ip: 10.9.0.1 }\n`, 'L');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues[0]!.message).toContain("host's address on the managed network");
  });

  it.each([
    ['512MiB', 512 * 1024 ** 2],
    ['1GiB', 1024 ** 3],
    ['8G', 8 * 1024 ** 3],
    ['2T', 2 * 1024 ** 4],
    ['64K', 64 * 1024],
  ])('parseSize(%s)', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it('gives the same lab hash for the same Labfile written differently', () => {
    const a = checkLabfileText(`${base}  - { name: a, ip: 10.9.0.3 }\n`, 'L');
    const b = checkLabfileText(
      `nodes:\n  - ip: 10.9.0.3\n    name: a\nnetwork: { cidr: 10.9.0.0/24, mode: managed }\ntemplate: debian-12-lab\nname: t\n`,
      'L',
    );
    expect(a.ok && b.ok).toBe(true);
    if (a.ok && b.ok) expect(a.lab.labfileHash).toBe(b.lab.labfileHash);
  });
});

describe('tcg.tbCache', () => {
  const withTb = (tb: string) =>
    checkLabfileText(
      `name: t\ntemplate: debian-12-lab\ntcg: { tbCache: ${tb} }\nnetwork: { mode: managed, cidr: 10.9.0.0/24 }\nnodes:\n  - { name: a, ip: 10.9.0.2 }\n`,
      'L',
    );

  it('is 256 MiB unless the Labfile says otherwise, and may be set in whole MiB', () => {
    const none = checkLabfileText(`${base}  - { name: a, ip: 10.9.0.2 }\n`, 'L');
    expect(none.ok && none.lab.tcg.tbCacheMiB).toBe(256);
    const r = withTb('128MiB');
    expect(r.ok && r.lab.tcg.tbCacheMiB).toBe(128);
    const g = withTb('1G');
    expect(g.ok && g.lab.tcg.tbCacheMiB).toBe(1024);
  });

  it('too small, too large or not whole MiB: exit 2 at its line and column; a typo is named', () => {
    for (const tb of ['16MiB', '3GiB', '1500K']) {
      const r = withTb(tb);
      expect(r.ok, tb).toBe(false);
      if (r.ok) continue;
      expect(r.issues.map((i) => `${i.line}:${i.col} ${i.message}`)).toEqual([
        `3:17 tcg.tbCache ${tb}: expected whole MiB from 32MiB to 2GiB`,
      ]);
    }
    const typo = checkLabfileText(
      `name: t\ntemplate: debian-12-lab\ntcg: { tbcache: 64MiB }\nnetwork: { mode: managed, cidr: 10.9.0.0/24 }\nnodes:\n  - { name: a, ip: 10.9.0.2 }\n`,
      'L',
    );
    expect(typo.ok).toBe(false);
    if (!typo.ok) expect(typo.issues[0]!.message).toMatch(/tbCache/);
  });
});

describe('etcd.api v2', () => {
  const labfile = (template: string) =>
    `name: v\ntemplate: ${template}\nnetwork: { mode: bridge, bridge: br0, cidr: 10.9.0.0/24 }\n` +
    `etcd: { api: v2 }\nnodes:\n  - { name: a, ip: 10.9.0.2, memory: 2GiB }\n`;
  it('is refused on an image whose etcd is 3.6 or newer (it removed the v2 API)', () => {
    const file = path.join(root, 'test/fixtures/templates/Labfile.yaml');
    const r = checkLabfileText(labfile('./etcd-36.yaml'), file);
    expect(r.ok ? [] : r.issues.map((i) => `${i.line}:${i.col}: ${i.message}`)).toEqual([
      '4:14: etcd.api v2 needs etcd 3.5 or older, but template etcd-36 ships etcd 3.6 (3.6 removed the v2 API)',
    ]);
  });
  it('is fine on etcd 3.4 and 3.5', () => {
    for (const t of ['debian-12-lab', 'flatcar-stable'])
      expect(checkLabfileText(labfile(t), 'L').ok).toBe(true);
  });
});

describe('examples/', () => {
  const dir = path.join(root, 'examples');
  it.each(readdirSync(dir).filter((f) => f.endsWith('.yaml')))('%s is a valid Labfile', (f) => {
    const r = checkLabfileText(readFileSync(path.join(dir, f), 'utf8'), f);
    expect(r.ok ? [] : r.issues).toEqual([]);
  });
});

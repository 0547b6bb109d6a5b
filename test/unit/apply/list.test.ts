// lab list over a state folder and a fake virsh: a lab with state and domains, a lab whose
// domains are gone, an orphan (domains, no state), and a domain of nobody's.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHealthy, listLabs } from '../../../lab/apply/list.js';
import { emptyNodeStatus } from '../../../lab/apply/status.js';
import { LAB_XMLNS } from '../../../lab/render/types.js';
import { assertMatchesSchema } from '../../support/json-schema.js';
import { labSpec } from '../../support/lab-spec.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-list-'));
const saved = {
  path: process.env.PATH,
  state: process.env.LAB_STATE_DIR,
  uri: process.env.LIBVIRT_DEFAULT_URI,
};

const meta = (lab: string, node: string) =>
  `<domain><metadata><lab:node xmlns:lab='${LAB_XMLNS}'><lab:lab>${lab}</lab:lab><lab:node>${node}</lab:node></lab:node></metadata></domain>`;

function state(lab: string, nodes: string[], network: object) {
  const folder = path.join(dir, 'state', lab);
  mkdirSync(path.join(folder, 'private'), { recursive: true });
  mkdirSync(path.join(folder, 'disks'), { recursive: true });
  writeFileSync(
    path.join(folder, 'private', 'state.json'),
    JSON.stringify({
      version: 1,
      serial: 3,
      lab,
      uri: 'test:///lab',
      updated: '2026-12-08T00:00:00.000Z',
      network,
      nodes: Object.fromEntries(
        nodes.map((n) => [
          n,
          { domain: `${lab}-${n}`, ip: '10.9.0.2', step: 'healthy', updated: '2026-12-08T00:00:00.000Z' },
        ]),
      ),
    }),
  );
  return folder;
}

beforeAll(() => {
  const xml = path.join(dir, 'xml');
  mkdirSync(xml);
  writeFileSync(path.join(xml, 'web-a'), meta('web', 'a'));
  writeFileSync(path.join(xml, 'web-b'), meta('web', 'b'));
  writeFileSync(path.join(xml, 'ghost-x'), meta('ghost', 'x'));
  writeFileSync(path.join(xml, 'someone'), '<domain><name>someone</name></domain>');
  writeFileSync(
    path.join(dir, 'virsh'),
    `#!/bin/sh
shift 3
case "$1" in
  list) printf ' 1    web-a     running\\n -    web-b     shut off\\n 2    ghost-x   running\\n 3    someone   running\\n' ;;
  dumpxml) cat ${xml}/$4 ;;
  *) exit 9 ;;
esac
`,
  );
  chmodSync(path.join(dir, 'virsh'), 0o755);
  const web = state('web', ['a', 'b'], { mode: 'managed', bridge: 'virbr-web', cidr: '10.9.0.0/24' });
  // 3 MiB of overlay, allocated.
  writeFileSync(path.join(web, 'disks', 'a.qcow2'), Buffer.alloc(3 * 2 ** 20, 1));
  state('gone', ['m1'], { mode: 'bridge', bridge: 'br0' });
  process.env.PATH = `${dir}:${saved.path ?? ''}`;
  process.env.LAB_STATE_DIR = path.join(dir, 'state');
  process.env.LIBVIRT_DEFAULT_URI = 'test:///lab';
});
afterAll(() => {
  process.env.PATH = saved.path;
  if (saved.state === undefined) delete process.env.LAB_STATE_DIR;
  else process.env.LAB_STATE_DIR = saved.state;
  if (saved.uri === undefined) delete process.env.LIBVIRT_DEFAULT_URI;
  else process.env.LIBVIRT_DEFAULT_URI = saved.uri;
  rmSync(dir, { recursive: true, force: true });
});

describe('lab list', () => {
  it('finds labs by their state and by libvirt metadata; an orphan is marked; a domain of nobody is not a lab', async () => {
    const labs = await listLabs({ probe: false });
    assertMatchesSchema('list', JSON.parse(JSON.stringify(labs)));
    expect(labs.map((l) => [l.lab, l.nodes, l.running, l.orphan, l.network])).toEqual([
      ['ghost', 1, 1, true, null],
      ['gone', 1, 0, false, 'bridge br0'],
      ['web', 2, 1, false, 'managed 10.9.0.0/24'],
    ]);
    const web = labs.find((l) => l.lab === 'web')!;
    expect(web.diskBytes).toBeGreaterThanOrEqual(3 * 2 ** 20);
    expect(web.healthy).toBeNull();
    expect(labs.find((l) => l.lab === 'ghost')!.labfile).toBeNull();
  });

  it('a node is healthy only when running, linked, probed, and its services answer', () => {
    const lab = labSpec({ extra: 'services: [etcd, docker]\n' });
    const node = lab.nodes[0]!;
    const ok = {
      ...emptyNodeStatus(node, 'running'),
      link: 'up' as const,
      machineId: 'a'.repeat(32),
      etcd: { state: 'follower' as const },
      docker: { state: 'up' as const },
    };
    expect(isHealthy(node, ok)).toBe(true);
    expect(isHealthy(node, { ...ok, link: 'down' })).toBe(false);
    expect(isHealthy(node, { ...ok, etcd: { state: 'unhealthy' } })).toBe(false);
    expect(isHealthy(node, { ...ok, docker: null })).toBe(false);
    expect(isHealthy(node, { ...ok, state: 'paused' })).toBe(false);
  });
});

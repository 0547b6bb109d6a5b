import { describe, expect, it } from 'vitest';
import { convergeUnits } from '../../../lab/apply/units.js';
import type { GuestLink } from '../../../lab/guest/agent.js';
import { checkLabfileText } from '../../../lab/spec/load.js';

/** A guest that keeps unit files and their states, driven by the argv lab sends. */
function fakeGuest(node: string) {
  const files = new Map<string, string>();
  const active = new Set<string>();
  const link: GuestLink = {
    node,
    close: () => {},
    http: () => Promise.reject(new Error('no http')),
    readFile: () => Promise.reject(new Error('no sftp')),
    listFiles: () => Promise.reject(new Error('no sftp')),
    exec(argv, opts) {
      const ok = (stdout = '') => Promise.resolve({ stdout, stderr: '', code: 0 });
      const cmd = argv[0] === 'sudo' ? argv.slice(1) : argv;
      const names = cmd.slice(cmd.indexOf('--') + 1);
      const show = (list: string[]) =>
        list
          .map(
            (n) =>
              `Id=${n}\nLoadState=${files.has(n) ? 'loaded' : 'not-found'}\nActiveState=${active.has(n) ? 'active' : 'inactive'}\n` +
              `SubState=${active.has(n) ? 'running' : 'dead'}\nDescription=${/Description=(.*)/.exec(files.get(n) ?? '')?.[1] ?? n}\n`,
          )
          .join('\n');
      // The observing script: markers of this lab's files, ---, systemctl show of wanted + found.
      if (cmd[0] === 'sh' && cmd[2]?.includes('# lab unit lab=')) {
        const [lab, ...wanted] = cmd.slice(4);
        const mine = [...files].filter(([, text]) => text.startsWith(`# lab unit lab=${lab!} `));
        return ok(
          mine.map(([n, text]) => `/etc/systemd/system/${n}:${text.split('\n')[0]!}\n`).join('') +
            '---\n' +
            show([...wanted, ...mine.map(([n]) => n)]),
        );
      }
      if (cmd[0] === 'install') files.set(cmd.at(-1)!.split('/').at(-1)!, opts?.input ?? '');
      else if (cmd[0] === 'rm') for (const p of names) files.delete(p.split('/').at(-1)!);
      else if (cmd[1] === 'stop') for (const n of names) active.delete(n);
      else if (cmd[1] === 'start' || cmd[1] === 'restart') for (const n of names) active.add(n);
      return ok();
    },
  };
  return { link, files, active };
}

const r = checkLabfileText(
  `name: u
template: debian-12-lab
network: { mode: bridge, bridge: br0, cidr: 10.9.0.0/24 }
nodes:
  - { name: n1, ip: 10.9.0.11 }
  - { name: n2, ip: 10.9.0.12 }
  - { name: n3, ip: 10.9.0.13 }
units:
  - { name: hello.service, content: "[Unit]\\nDescription=MyApp\\n[Service]\\nExecStart=/bin/sleep 1d\\n" }
  - name: apache.{n}.service
    count: 2
    content: "[Unit]\\nDescription=My Apache Frontend\\n[Service]\\nExecStart=/bin/true\\n[X-Fleet]\\nX-Conflicts=apache.*.service\\n"
`,
  'L',
);
if (!r.ok) throw new Error(r.issues.map((i) => i.message).join('; '));
const lab = r.lab;

describe('convergeUnits', () => {
  it('places, then leaves alone, then moves the units of a node that went down', async () => {
    const guests = new Map(['n1', 'n2', 'n3'].map((n) => [n, fakeGuest(n)]));
    const links = new Map([...guests].map(([n, g]) => [n, g.link]));
    const first = await convergeUnits(lab, links, new Set(['n1', 'n2', 'n3']), { deadlineMs: 1000 });
    expect(first.problems).toEqual([]);
    expect(first.rows.map((x) => [x.unit, x.node, x.active, x.description])).toEqual([
      ['hello.service', 'n1', 'active', 'MyApp'],
      ['apache.1.service', 'n2', 'active', 'My Apache Frontend'],
      ['apache.2.service', 'n3', 'active', 'My Apache Frontend'],
    ]);

    // A re-run with every node up changes nothing.
    const again = await convergeUnits(lab, links, new Set(), { deadlineMs: 1000 });
    expect(again.changes).toEqual([]);

    // n2 went down and came back (restarted by this run): its files are still there but
    // nothing runs; apache.1 moves to n1 (n3 runs apache.2), and n2 is cleaned.
    guests.get('n2')!.active.clear();
    const moved = await convergeUnits(lab, links, new Set(['n2']), { deadlineMs: 1000 });
    expect(moved.problems).toEqual([]);
    expect(moved.rows.map((x) => [x.unit, x.node])).toEqual([
      ['hello.service', 'n1'],
      ['apache.1.service', 'n1'],
      ['apache.2.service', 'n3'],
    ]);
    expect([...guests.get('n2')!.files.keys()]).toEqual([]);
    expect(moved.changes).toEqual([
      { node: 'n1', written: ['apache.1.service'], removed: [], started: ['apache.1.service'] },
      { node: 'n2', written: [], removed: ['apache.1.service'], started: [] },
    ]);
  });

  it('names a unit that fits nowhere, and one that does not start', async () => {
    const one = new Map([['n1', fakeGuest('n1').link]]);
    const res = await convergeUnits(lab, one, new Set(), { deadlineMs: 300 });
    expect(res.problems).toEqual([
      'unit apache.2.service runs nowhere: every node that is up runs a unit it conflicts with (apache.*.service)',
    ]);
    const stuck = fakeGuest('n1');
    const exec = stuck.link.exec.bind(stuck.link);
    stuck.link.exec = (argv, opts) =>
      argv.includes('start') ? Promise.resolve({ stdout: '', stderr: '', code: 0 }) : exec(argv, opts);
    const res2 = await convergeUnits(lab, new Map([['n1', stuck.link]]), new Set(), { deadlineMs: 300 });
    expect(res2.problems).toContain('unit hello.service on n1 is inactive (dead)');
  });
});

describe('convergeUnits through fleet (the image has it)', () => {
  const w = checkLabfileText(
    `name: walk
template: coreos-alpha
network: { mode: bridge, bridge: br0, cidr: 192.168.2.0/24 }
services: [etcd, docker, fleet]
nodes:
  - { name: coreos1, ip: 192.168.2.52 }
  - { name: coreos2, ip: 192.168.2.53 }
units:
  - { name: hello.service, content: "[Unit]\\nDescription=MyApp\\n[Service]\\nExecStart=/bin/true\\n" }
`,
    'L',
  );
  if (!w.ok) throw new Error(w.issues.map((i) => i.message).join('; '));
  const walk = w.lab;

  it('stages the unit files and fleetctl starts them; rows come from fleetctl list-units', async () => {
    const calls: string[] = [];
    let started = false;
    const id = walk.nodes[1]!.machineId;
    const link: GuestLink = {
      node: 'coreos1',
      close: () => {},
      http: () => Promise.reject(new Error('no http')),
      readFile: () => Promise.reject(new Error('no sftp')),
      listFiles: () => Promise.reject(new Error('no sftp')),
      exec(argv) {
        calls.push(argv.join(' '));
        const ok = (stdout = '') => Promise.resolve({ stdout, stderr: '', code: 0 });
        if (argv[0] === 'sh') return ok('/usr/bin/fleetctl\n');
        if (argv[1] === 'list-machines') return ok('MACHINE\t\tIP\t\tMETADATA\n');
        if (argv[1] === 'list-units')
          return ok(
            'UNIT\t\tLOAD\tACTIVE\tSUB\tDESC\tMACHINE\n' +
              (started ? `hello.service\tloaded\tactive\trunning\tMyApp\t${id}/192.168.2.53\n` : ''),
          );
        if (argv[1] === 'start') started = true;
        return ok();
      },
    };
    const res = await convergeUnits(walk, new Map([['coreos1', link]]), new Set(), { deadlineMs: 1000 });
    expect(calls).toContain('install -D -m 0644 /dev/stdin .lab-units/hello.service');
    expect(calls).toContain('fleetctl start --no-block .lab-units/hello.service');
    expect(res.problems).toEqual([]);
    expect(res.rows).toEqual([
      {
        unit: 'hello.service',
        node: 'coreos2',
        machineId: id,
        ip: '192.168.2.53',
        load: 'loaded',
        active: 'active',
        sub: 'running',
        description: 'MyApp',
      },
    ]);
    // Running already: nothing is submitted again.
    calls.length = 0;
    const again = await convergeUnits(walk, new Map([['coreos1', link]]), new Set(), { deadlineMs: 1000 });
    expect(again.changes).toEqual([]);
    expect(calls.some((c) => c.startsWith('fleetctl start'))).toBe(false);
  });
});

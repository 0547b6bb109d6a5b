import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { nodeKeys } from '../../../lab/render/node.js';
import type { LabSpec } from '../../../lab/plan/model.js';
import { renderCloudInit } from '../../../lab/render/cloud-init.js';
import { bootstrapMembership, membershipFile } from '../../../lab/render/etcd.js';
import { BRIDGE_NET, TWO_NODES, labSpec } from '../../support/lab-spec.js';

const secret = Buffer.alloc(32, 1);
/** A resolved lab from Labfile text: `extra` top-level keys, `nodes` list items. */
const lab = (extra = '', nodes = TWO_NODES, network = BRIDGE_NET): LabSpec =>
  labSpec({ extra, nodes, network });
const render = (l: LabSpec, i = 0) =>
  renderCloudInit({ lab: l, node: l.nodes[i]!, keys: nodeKeys(l, l.nodes[i]!, secret) });

interface UserData {
  users: { name: string; groups: string[]; ssh_authorized_keys: string[] }[];
  write_files?: { path: string; content: string; permissions?: string; owner?: string }[];
  [key: string]: unknown;
}
const userData = (l: LabSpec, i = 0) => parse(render(l, i).files['user-data']!) as UserData;
const writtenFile = (l: LabSpec, path: string, i = 0) =>
  userData(l, i).write_files?.find((f) => f.path === path);
const instanceId = (l: LabSpec, i = 0) =>
  (parse(render(l, i).files['meta-data']!) as Record<string, string>)['instance-id'];

describe('renderCloudInit', () => {
  it('makes a NoCloud cidata bundle of three files; user-data is #cloud-config', () => {
    const b = render(lab());
    expect(b).toMatchObject({ dialect: 'cloud-init', delivery: 'nocloud', volumeLabel: 'cidata' });
    expect(Object.keys(b.files).sort()).toEqual(['meta-data', 'network-config', 'user-data']);
    expect(b.files['user-data']!.startsWith('#cloud-config\n')).toBe(true);
    const meta = parse(b.files['meta-data']!) as Record<string, string>;
    expect(Object.keys(meta)).toEqual(['instance-id', 'local-hostname']);
    expect(meta['instance-id']).toMatch(/^r-a-[0-9a-f]{12}$/);
    expect(meta['local-hostname']).toBe('a');
  });

  it('the seed has no member list: lab writes /etc/default/etcd at runtime, every etcd node in order for a bootstrap', () => {
    const l = lab('', `${TWO_NODES}  - { name: c, ip: 10.9.0.4, services: [docker] }\n`);
    expect(writtenFile(l, '/etc/default/etcd')).toBeUndefined();
    const f = membershipFile(l, l.nodes[0]!, bootstrapMembership(l));
    expect(f.path).toBe('/etc/default/etcd');
    expect(f.unit).toBe('etcd.service');
    expect(f.content).toContain('ETCD_INITIAL_CLUSTER=a=http://10.9.0.2:2380,b=http://10.9.0.3:2380\n');
    expect(f.content).toContain('ETCD_LISTEN_CLIENT_URLS=http://10.9.0.2:2379,http://127.0.0.1:2379\n');
    expect(f.content).toContain('ETCD_INITIAL_CLUSTER_STATE=new\nETCD_INITIAL_CLUSTER_TOKEN=r\n');
    // c runs docker only: no etcd files.
    expect(userData(l, 2).write_files!.map((f) => f.path)).toEqual(['/etc/docker/daemon.json']);
    // A join: the members met, state existing.
    const joining = membershipFile(l, l.nodes[1]!, {
      cluster: [
        { name: 'a', peerUrl: 'http://10.9.0.2:2380' },
        { name: 'b', peerUrl: 'http://10.9.0.3:2380' },
      ],
      state: 'existing',
    });
    expect(joining.content).toContain('ETCD_NAME=b\n');
    expect(joining.content).toContain('ETCD_INITIAL_CLUSTER_STATE=existing\n');
  });

  it('uses the discovery URL instead of a static list when bootstrap is discovery', () => {
    const env = writtenFile(
      lab('etcd: { bootstrap: discovery, discovery: "https://d.example/abc" }\n'),
      '/etc/default/etcd',
    )!.content;
    expect(env).toContain('ETCD_DISCOVERY=https://d.example/abc\n');
    expect(env).not.toContain('ETCD_INITIAL_CLUSTER=');
  });

  it('turns on the etcd v2 API and etcdctl v2 only when asked, for login shells and for commands over SSH', () => {
    const env = (l: LabSpec) => membershipFile(l, l.nodes[0]!, bootstrapMembership(l)).content;
    const v3 = lab();
    expect(env(v3)).not.toContain('ETCD_ENABLE_V2');
    expect(writtenFile(v3, '/etc/profile.d/lab-etcd.sh')!.content).toBe(
      'export ETCDCTL_API=3\nexport ETCDCTL_ENDPOINTS=http://127.0.0.1:2379\n',
    );
    expect(writtenFile(v3, '/etc/environment')!.content).toBe(
      'ETCDCTL_API=3\nETCDCTL_ENDPOINTS=http://127.0.0.1:2379\n',
    );
    const v2 = lab('etcd: { api: v2 }\n');
    expect(env(v2)).toContain('ETCD_ENABLE_V2=true\n');
    expect(writtenFile(v2, '/etc/profile.d/lab-etcd.sh')!.content).toContain('export ETCDCTL_API=2\n');
    expect(writtenFile(v2, '/etc/environment')!.content).toContain('ETCDCTL_API=2\n');
  });

  it.each([
    ['[etcd, docker]', ['sudo', 'docker'], true],
    ['[etcd]', ['sudo'], false],
  ])('services %s: groups %j, daemon.json %s', (services, groups, docker) => {
    const l = lab(`services: ${services}\n`);
    expect(userData(l).users[0]!.groups).toEqual(groups);
    expect(writtenFile(l, '/etc/docker/daemon.json') !== undefined).toBe(docker);
  });

  it('starts services by writing their config, never with runcmd (FINDINGS G5)', () => {
    const ud = userData(lab('services: [etcd, docker]\n'));
    expect(Object.keys(ud)).not.toContain('runcmd');
    expect(Object.keys(ud)).not.toContain('bootcmd');
    expect(ud.write_files!.map((f) => [f.path, f.permissions])).toEqual([
      ['/etc/profile.d/lab-etcd.sh', '0644'],
      ['/etc/environment', '0644'],
      ['/etc/docker/daemon.json', '0644'],
    ]);
  });

  it('injects the lab key, the extra keys and the node host key', () => {
    const l = lab(
      'ssh: { authorizedKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGw1lT4kD8eq8jR0J0WQ0R8hVQm8s7YwqgS0eYc7b5bY x@y"] }\n',
    );
    const keys = nodeKeys(l, l.nodes[0]!, secret);
    const ud = userData(l);
    expect(ud.users[0]!.ssh_authorized_keys).toEqual(keys.authorizedKeys);
    expect(ud.users[0]!.ssh_authorized_keys).toHaveLength(2);
    expect(ud.ssh_keys).toEqual({
      ed25519_private: keys.hostKey.privateKey,
      ed25519_public: keys.hostKey.publicKey,
    });
    expect(ud.ssh_genkeytypes).toEqual(['ed25519']);
  });

  it('leaves no placeholder for the guest to fill in ($private_ipv4 and friends)', () => {
    for (const l of [lab(), lab('etcd: { api: v2 }\n')])
      for (const text of Object.values(render(l).files))
        expect(text).not.toMatch(/\$(private|public)_ipv4|\{\{|%[a-zA-Z]/);
  });

  it('instance-id changes exactly when user-data or network-config changes', () => {
    const base = instanceId(lab());
    expect(instanceId(lab())).toBe(base);
    // Not part of a's guest config: its memory, another node's memory.
    expect(instanceId(lab('defaults: { memory: 2GiB }\n'))).toBe(base);
    expect(
      instanceId(lab('', '  - { name: a, ip: 10.9.0.2 }\n  - { name: b, ip: 10.9.0.3, memory: 2GiB }\n')),
    ).toBe(base);
    // Nor the member list: a node added to the lab changes no other node's config.
    expect(instanceId(lab('', `${TWO_NODES}  - { name: c, ip: 10.9.0.4 }\n`))).toBe(base);
    // Part of it: services, a file, the network.
    expect(instanceId(lab('services: [docker]\n'))).not.toBe(base);
    expect(
      instanceId(lab('', `  - { name: a, ip: 10.9.0.2, files: [{ path: /x, content: y }] }\n`)),
    ).not.toBe(base);
    expect(
      instanceId(lab('', TWO_NODES, '{ mode: bridge, bridge: br0, cidr: 10.9.0.0/24, dns: [10.9.0.1] }')),
    ).not.toBe(base);
  });

  it('binds the static address to the MAC, with gateway and DNS only when set', () => {
    const bare = lab();
    const nc = (l: LabSpec) => parse(render(l).files['network-config']!) as Record<string, unknown>;
    expect(nc(bare)).toEqual({
      version: 2,
      ethernets: {
        eth0: { match: { macaddress: bare.nodes[0]!.mac }, 'set-name': 'eth0', addresses: ['10.9.0.2/24'] },
      },
    });
    const full = lab(
      '',
      TWO_NODES,
      '{ mode: bridge, bridge: br0, cidr: 10.9.0.0/24, gateway: 10.9.0.1, dns: [10.9.0.1, 9.9.9.9] }',
    );
    expect(nc(full)).toMatchObject({
      ethernets: { eth0: { gateway4: '10.9.0.1', nameservers: { addresses: ['10.9.0.1', '9.9.9.9'] } } },
    });
  });

  it.each([
    ['0600', 'root:root', { permissions: '0600', owner: 'root:root' }],
    ['755', undefined, { permissions: '0755' }],
    [undefined, 'core', { owner: 'core' }],
  ])('writes a Labfile file with mode %s, owner %s', (mode, owner, expected) => {
    const spec = JSON.stringify({
      path: '/etc/x',
      content: 'y\n',
      ...(mode ? { mode } : {}),
      ...(owner ? { owner } : {}),
    });
    const f = writtenFile(lab('', `  - { name: a, ip: 10.9.0.2, files: [${spec}] }\n`), '/etc/x')!;
    expect(f).toEqual({ path: '/etc/x', content: 'y\n', ...expected });
  });

  it('keeps hostile file content as data: YAML-escaped, no key injection', () => {
    const hostile = `x: 1\n</write_files>&'"<\nruncmd: [reboot]\n#cloud-config\n---\n- |\n  {{ v }}`;
    const spec = JSON.stringify({ path: '/etc/a b\'<&>"', content: hostile });
    const ud = userData(lab('', `  - { name: a, ip: 10.9.0.2, files: [${spec}] }\n`));
    expect(Object.keys(ud)).not.toContain('runcmd');
    expect(ud.write_files!.at(-1)).toEqual({ path: '/etc/a b\'<&>"', content: hostile });
  });

  it('is pure: the same input gives the same bytes', () => {
    expect(render(lab())).toEqual(render(lab()));
  });
});

describe('networkConfig as cloud-init reads it (PyYAML, YAML 1.1)', () => {
  it('a MAC of digits only stays a string: unquoted, 52:54:00:52:10:30 is a base-60 integer in YAML 1.1', () => {
    // Seen in the e2e suite: node u3 of lab e2eupg came up with no address ("Not all
    // expected physical devices present: {41135227830}").
    const l = lab();
    const node = { ...l.nodes[0]!, mac: '52:54:00:52:10:30' };
    const text = render({ ...l, nodes: [node, l.nodes[1]!] }).files['network-config']!;
    const doc = parse(text, { version: '1.1' }) as {
      ethernets: Record<string, { match: { macaddress: unknown } }>;
    };
    expect(doc.ethernets.eth0!.match.macaddress).toBe('52:54:00:52:10:30');
    // A MAC with a hex letter was always read right: its bytes do not change (config hashes keep).
    expect(render(l).files['network-config']).toContain(`macaddress: ${l.nodes[0]!.mac}\n`);
  });
});

import { describe, expect, it } from 'vitest';
import { checkCloudConfigFragment, mergeCloudConfig } from '../../../lab/labfile/cloud-config-fragment.js';
import { checkLabfileText } from '../../../lab/spec/load.js';

describe('checkCloudConfigFragment', () => {
  const fragment = {
    'manage-etc-hosts': 'localhost',
    coreos: {
      update: { 'reboot-strategy': 'etcd-lock', group: 'stable' },
      units: [{ name: 'a.service', 'drop-ins': [{ name: 'x.conf', content: 'y' }] }],
    },
    write_files: [{ path: '/a', content: 'b', permissions: '0644' }],
  };

  it("rewrites dashed keys into Flatcar's spelling, with a warning each", () => {
    const r = checkCloudConfigFragment(fragment, 'flatcar');
    expect(r.value).toEqual({
      manage_etc_hosts: 'localhost',
      coreos: {
        update: { reboot_strategy: 'etcd-lock', group: 'stable' },
        units: [{ name: 'a.service', drop_ins: [{ name: 'x.conf', content: 'y' }] }],
      },
      write_files: [{ path: '/a', content: 'b', permissions: '0644' }],
    });
    expect(r.problems.map((p) => [p.severity, p.path.join('.')])).toEqual([
      ['warning', 'manage-etc-hosts'],
      ['warning', 'coreos.update.reboot-strategy'],
      ['warning', 'coreos.units.0.drop-ins'],
    ]);
  });

  it('rewrites them silently for the historical CoreOS parser, which read both', () => {
    const r = checkCloudConfigFragment(fragment, 'coreos');
    expect(r.problems).toEqual([]);
    expect((r.value.coreos as { update: object }).update).toEqual({
      reboot_strategy: 'etcd-lock',
      group: 'stable',
    });
  });

  it('refuses keys that no spelling knows: they would be ignored', () => {
    const r = checkCloudConfigFragment(
      {
        runcmd: ['x'],
        coreos: { etcd3: {}, fleet: { 'public-ipv4': 'x' } },
        write_files: [{ mode: '0644' }],
      },
      'flatcar',
    );
    expect(r.problems.map((p) => [p.severity, p.path.join('.'), p.message.split(' (')[0]])).toEqual([
      ['error', 'runcmd', 'coreos-cloudinit reads no key runcmd here'],
      ['error', 'coreos.etcd3', 'coreos-cloudinit reads no key etcd3 here'],
      ['error', 'coreos.fleet.public-ipv4', 'coreos-cloudinit reads no key public-ipv4 here'],
      ['error', 'write_files.0.mode', 'coreos-cloudinit reads no key mode here'],
    ]);
  });

  it('merges: maps merge, lists append, the fragment wins on scalars', () => {
    expect(
      mergeCloudConfig(
        { hostname: 'a', coreos: { units: [{ name: 'etcd' }], update: { reboot_strategy: 'off' } } },
        { hostname: 'b', coreos: { units: [{ name: 'mine' }], update: { group: 'beta' } } },
      ),
    ).toEqual({
      hostname: 'b',
      coreos: {
        units: [{ name: 'etcd' }, { name: 'mine' }],
        update: { reboot_strategy: 'off', group: 'beta' },
      },
    });
  });
});

describe('cloudConfig in a Labfile', () => {
  const lab = (template: string, extra: string) =>
    checkLabfileText(
      `name: c\ntemplate: ${template}\nnetwork: { mode: bridge, bridge: br0, cidr: 10.9.0.0/24 }\n` +
        `defaults: { memory: 2GiB }\nnodes:\n  - { name: a, ip: 10.9.0.2 }\n${extra}`,
      'L',
    );
  it('gives located warnings for rewritten keys and still validates', () => {
    const r = lab(
      'flatcar-stable-cloudconfig',
      'cloudConfig: { coreos: { update: { reboot-strategy: "off" } } }\n',
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.lab.warnings.map((w) => `${w.line}:${w.col}: ${w.message}`)).toEqual([
      "7:36: Flatcar's coreos-cloudinit reads reboot_strategy, not reboot-strategy (it ignores dashed keys): written as reboot_strategy",
    ]);
    expect(r.lab.nodes[0]!.cloudConfig).toEqual({ coreos: { update: { reboot_strategy: 'off' } } });
  });
});

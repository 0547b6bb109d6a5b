import { rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { chosenNodes } from '../../../lab/apply/checkpoint-restore.js';
import { roomShortfall } from '../../../lab/apply/checkpoint-save.js';
import {
  definitionDrift,
  diskIdentity,
  findCheckpoint,
  sameDisk,
  secretDigest,
} from '../../../lab/apply/checkpoints.js';
import { parseNames } from '../../../lab/providers/snapshots.js';
import { parseImageInfo } from '../../../lab/providers/qemu-img.js';
import { renderNode } from '../../../lab/render/node.js';
import { renderSnapshotXml } from '../../../lab/render/snapshot-xml.js';
import { CHECKPOINT_NAME, snapshotName, type Checkpoint } from '../../../lab/store/checkpoints.js';
import { labSpec } from '../../support/lab-spec.js';

const secret = Buffer.alloc(32, 5);
const lab = labSpec({ extra: 'services: [etcd]\n' });
const desired = lab.nodes.map((node) =>
  renderNode({
    lab,
    node,
    paths: { disk: `/d/${node.name}`, seed: '/s', console: '/c' },
    secret,
    type: 'qemu',
  }),
);
const checkpoint = (over: Partial<Checkpoint['nodes'][string]> = {}): Checkpoint => ({
  name: 'ex3',
  snapshot: snapshotName('ex3'),
  created: '2026-12-07T00:00:00.000Z',
  pausedMs: 900,
  labfileHash: lab.labfileHash,
  secret: secret.toString('hex'),
  nodes: Object.fromEntries(
    desired.map((d) => [
      d.spec.name,
      {
        domain: d.spec.domain,
        uuid: d.spec.uuid,
        configHash: d.configHash,
        memoryMiB: d.spec.memoryMiB,
        vcpus: d.spec.cpus,
        diskIno: 1,
        ...over,
      },
    ]),
  ),
});

describe('checkpoints: what a restore would bring back', () => {
  it("no drift when the definitions are the Labfile's", () => {
    expect(definitionDrift(checkpoint(), desired)).toEqual([]);
  });

  it('names every node whose memory, vCPUs or first-boot config the Labfile has changed since', () => {
    const cp = checkpoint({ memoryMiB: 768, vcpus: 2, configHash: 'old' });
    expect(definitionDrift(cp, desired.slice(0, 1))).toEqual([
      'a: its first-boot config has changed since',
      `a: 768 MiB of memory then, ${desired[0]!.spec.memoryMiB} MiB in the Labfile`,
      'a: 2 vCPUs then, 1 in the Labfile',
    ]);
  });

  it("an unknown checkpoint is an error that lists the lab's checkpoints, or says how to take one", () => {
    const book = { version: 1 as const, checkpoints: { ex3: checkpoint() } };
    expect(findCheckpoint(book, 'ex3', 'r').name).toBe('ex3');
    expect(() => findCheckpoint(book, 'ex4', 'r')).toThrow(/lab r has no checkpoint ex4/);
    expect(() => findCheckpoint(book, 'ex4', 'r')).toThrow(
      expect.objectContaining({ hint: 'its checkpoints: ex3' }),
    );
    expect(() => findCheckpoint({ version: 1, checkpoints: {} }, 'x', 'r')).toThrow(
      expect.objectContaining({ hint: 'take one with: lab checkpoint save x' }),
    );
  });

  it("compares the lab's secret by digest, whatever its spelling", () => {
    expect(secretDigest(secret)).toBe(secretDigest(secret.toString('hex')));
    expect(secretDigest(Buffer.alloc(32, 6))).not.toBe(secretDigest(secret));
  });
});

describe('checkpoint names, snapshots and sizes', () => {
  it.each([
    ['exercise3', true],
    ['ex-3.b_1', true],
    ['', false],
    ['Ex3', false],
    ['-x', false],
    ['a/b', false],
    ['a b', false],
    ['x'.repeat(41), false],
  ])('%j is a checkpoint name: %s', (name, ok) => {
    expect(CHECKPOINT_NAME.test(name)).toBe(ok);
  });

  it("a snapshot's XML escapes what it carries and names no disk or memory file (internal)", () => {
    const xml = renderSnapshotXml({ name: snapshotName('ex3'), lab: 'l<&>', checkpoint: 'ex3' });
    expect(xml).toContain('<name>lab-ckpt-ex3</name>');
    expect(xml).toContain('l&lt;&amp;&gt;');
    expect(xml).not.toMatch(/<memory|<disks/);
  });

  it('reads snapshot-list names and the memory state qemu-img reports per snapshot', () => {
    expect(parseNames('lab-ckpt-a\n  lab-ckpt-b  \n\n')).toEqual(['lab-ckpt-a', 'lab-ckpt-b']);
    const info = parseImageInfo(
      JSON.stringify({
        format: 'qcow2',
        'virtual-size': 4,
        snapshots: [{ name: 'lab-ckpt-a', 'vm-state-size': 510_000_000, id: '1' }],
      }),
    );
    expect(info.snapshots).toEqual([{ name: 'lab-ckpt-a', vmStateBytes: 510_000_000 }]);
    expect(parseImageInfo(JSON.stringify({ format: 'qcow2', 'virtual-size': 4 })).snapshots).toBeUndefined();
  });
});

describe('which nodes a restore brings back', () => {
  // a, b and c: etcd members; w: docker only.
  const four = labSpec({
    extra: 'services: [etcd]\n',
    nodes:
      '  - { name: a, ip: 10.9.0.2 }\n  - { name: b, ip: 10.9.0.3 }\n  - { name: c, ip: 10.9.0.4 }\n' +
      '  - { name: w, ip: 10.9.0.5, services: [docker] }\n',
  });
  const cp: Checkpoint = {
    ...checkpoint(),
    nodes: Object.fromEntries(four.nodes.map((n) => [n.name, checkpoint().nodes.a!])),
  };
  const ctx = { lab: four };

  it("all of them when none or every one is named, in the Labfile's order", () => {
    expect(chosenNodes(ctx, cp, [])).toEqual(['a', 'b', 'c', 'w']);
    expect(chosenNodes(ctx, cp, ['w', 'c', 'b', 'a'])).toEqual(['a', 'b', 'c', 'w']);
  });

  it('a node named twice is still one node: never the whole lab by count', () => {
    expect(chosenNodes(ctx, cp, ['w', 'w', 'w', 'w'])).toEqual(['w']);
  });

  it('an etcd member alone, or with others short of all, is refused with the reason', () => {
    expect(() => chosenNodes(ctx, cp, ['b'])).toThrow(/b is an etcd member.*etcd-io\/etcd#10254/);
    expect(() => chosenNodes(ctx, cp, ['w', 'a'])).toThrow(/a is an etcd member/);
  });

  it('an unknown node, or one the checkpoint does not hold, is bad input (exit 2), even padded to the count', () => {
    expect(() => chosenNodes(ctx, cp, ['x', 'y', 'z', 'q'])).toThrow(
      expect.objectContaining({ exitCode: 2 }),
    );
    expect(() => chosenNodes(ctx, cp, ['x'])).toThrow(/no node x in lab r \(nodes: a, b, c, w\)/);
    const older: Checkpoint = { ...cp, nodes: { a: cp.nodes.a!, b: cp.nodes.b!, c: cp.nodes.c! } };
    expect(() => chosenNodes(ctx, older, ['w'])).toThrow(/does not hold w: joined since/);
  });
});

describe('checkpoints: room on the disk, checked before any node is paused', () => {
  const GiB = 1024 ** 3;
  it('needs every guest’s memory and 512 MiB of spare, and says how much is free and needed', () => {
    // Three 768 MiB guests: 2.25 GiB + 0.5 GiB.
    const need = 3 * 768 * 1024 ** 2 + 512 * 1024 ** 2;
    expect(roomShortfall(need, [768, 768, 768], '/d')).toBeUndefined();
    expect(roomShortfall(100 * GiB, [768, 768, 768], '/d')).toBeUndefined();
    expect(roomShortfall(need - 1, [768, 768, 768], '/d')).toBe(
      "not enough disk for a checkpoint: 2.7 GiB free in /d, up to 2.8 GiB needed (each node's memory, and some spare)",
    );
    expect(roomShortfall(0, [4096], '/var/lib/lab/x/disks')).toMatch(
      /0\.0 GiB free in \/var\/lib\/lab\/x\/disks, up to 4\.5 GiB needed/,
    );
  });
});

describe("checkpoints: a node's disk known again", () => {
  const st = (ino: bigint, birthtimeNs: bigint) => ({ ino, birthtimeNs });
  it('the same inode and birth time: the same file', () => {
    expect(sameDisk({ diskIno: 12, diskBirthNs: '1765000000123456789' }, st(12n, 1765000000123456789n))).toBe(
      true,
    );
  });
  it('a new file that was given the freed inode number of the old one is another file', () => {
    // As in CI on 2026-12-07: a replaced overlay had its predecessor's inode on ext4.
    expect(sameDisk({ diskIno: 12, diskBirthNs: '1765000000123456789' }, st(12n, 1765000099000000000n))).toBe(
      false,
    );
    expect(sameDisk({ diskIno: 12, diskBirthNs: '1765000000123456789' }, st(13n, 1765000000123456789n))).toBe(
      false,
    );
  });
  it('a checkpoint taken before birth times were recorded: the inode alone', () => {
    expect(sameDisk({ diskIno: 12 }, st(12n, 5n))).toBe(true);
    expect(sameDisk({ diskIno: 12 }, st(14n, 5n))).toBe(false);
  });
  it('recorded from a real file: itself matches, a file made again at its path does not', () => {
    const f = path.join(os.tmpdir(), `lab-disk-${process.pid}.qcow2`);
    writeFileSync(f, 'a');
    const was = diskIdentity(statSync(f, { bigint: true }));
    expect(sameDisk(was, statSync(f, { bigint: true }))).toBe(true);
    rmSync(f);
    writeFileSync(f, 'b');
    expect(sameDisk(was, statSync(f, { bigint: true }))).toBe(false);
    rmSync(f);
  });
});

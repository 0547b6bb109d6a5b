import { describe, expect, it } from 'vitest';
import {
  findDuplicateMachineIds,
  parseMachineId,
  probeMachineId,
} from '../../../../lab/guest/probes/machine-id.js';
import { machineIdOf, nodeUuid } from '../../../../lab/plan/identity.js';
import { fakeExec } from './fake-exec.js';

describe('parseMachineId', () => {
  it('accepts the id systemd derives from the domain UUID', () => {
    const id = machineIdOf(nodeUuid('t', 'node1'));
    expect(parseMachineId(`${id}\n`)).toBe(id);
  });

  it.each([
    ['', /: empty$/],
    ['uninitialized\n', /: "uninitialized"$/],
    ['0A1B2C3D4E5F60718293A4B5C6D7E8F9\n', /not 32 lowercase hex/],
    ['0a1b2c3d\n', /not 32 lowercase hex/],
  ])('refuses %j', (out, message) => {
    expect(() => parseMachineId(out)).toThrow(message);
  });
});

describe('probeMachineId', () => {
  it('reads /etc/machine-id', async () => {
    const exec = fakeExec({ 'cat /etc/machine-id': { stdout: '5b3f0e2a9c4d4e8f8a1b2c3d4e5f6071\n' } });
    expect(await probeMachineId(exec)).toBe('5b3f0e2a9c4d4e8f8a1b2c3d4e5f6071');
  });

  it('throws when it cannot be read', async () => {
    const exec = fakeExec({
      'cat /etc/machine-id': { code: 1, stderr: 'cat: /etc/machine-id: No such file or directory\n' },
    });
    await expect(probeMachineId(exec)).rejects.toThrow(
      'cat /etc/machine-id: exit code 1: cat: /etc/machine-id: No such file or directory',
    );
  });
});

describe('findDuplicateMachineIds', () => {
  it('maps each shared id to its nodes, sorted; distinct ids give an empty map', () => {
    const a = '5b3f0e2a9c4d4e8f8a1b2c3d4e5f6071';
    const b = '0000000000000000000000000000000b';
    const ids = new Map([
      ['node3', a],
      ['node1', a],
      ['node2', 'ffffffffffffffffffffffffffffffff'],
      ['node5', b],
      ['node4', b],
    ]);
    expect([...findDuplicateMachineIds(ids)]).toEqual([
      [b, ['node4', 'node5']],
      [a, ['node1', 'node3']],
    ]);
    expect(
      findDuplicateMachineIds(
        new Map([
          ['node1', a],
          ['node2', b],
        ]),
      ).size,
    ).toBe(0);
  });
});

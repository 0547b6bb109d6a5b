import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { hostKey, machineIdOf, networkUuid, nodeMac, nodeUuid, userKey } from '../../../lab/plan/identity.js';

const secret = Buffer.alloc(32, 1);

describe('deterministic identities', () => {
  it('are stable for the same lab and node', () => {
    expect(nodeUuid('lab', 'n1')).toBe(nodeUuid('lab', 'n1'));
    expect(nodeMac('lab', 'n1')).toBe(nodeMac('lab', 'n1'));
    expect(hostKey(secret, 'lab', 'n1').privateKey).toBe(hostKey(secret, 'lab', 'n1').privateKey);
  });

  it('never collide over many generated labs and nodes (UUIDs, machine-ids, host keys)', () => {
    const uuids = new Set<string>();
    const ids = new Set<string>();
    let count = 0;
    for (let l = 0; l < 40; l++) {
      for (let n = 0; n < 50; n++) {
        // Names that differ by little: the hashing must separate them.
        const u = nodeUuid(`lab${l}`, `node${n}`);
        uuids.add(u);
        ids.add(machineIdOf(u));
        count++;
      }
    }
    // lab "a" + node "bc" must differ from lab "ab" + node "c".
    expect(nodeUuid('a', 'bc')).not.toBe(nodeUuid('ab', 'c'));
    expect(uuids.size).toBe(count);
    expect(ids.size).toBe(count);
  });

  it('MACs are locally administered QEMU MACs, distinct within a lab of 64 nodes', () => {
    const macs = Array.from({ length: 64 }, (_, i) => nodeMac('coreos-lab', `coreos${i}`));
    for (const m of macs) expect(m).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect(new Set(macs).size).toBe(64);
  });

  it("a lab's network UUID is fixed (a repeated net-define updates, never clashes), version 8, distinct per lab and from its nodes'", () => {
    expect(networkUuid('coreos')).toBe(networkUuid('coreos'));
    expect(networkUuid('coreos')).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    const labs = Array.from({ length: 500 }, (_, i) => `lab${i}`);
    expect(new Set(labs.map(networkUuid)).size).toBe(500);
    // A node named like nothing else still never shares the network's UUID.
    expect(
      labs.some((l) => networkUuid(l) === nodeUuid(l, '') || networkUuid(l) === nodeUuid(l, 'network')),
    ).toBe(false);
  });

  it('UUIDs are RFC 9562 version 8, and the machine-id is the UUID without dashes', () => {
    const u = nodeUuid('coreos-lab', 'coreos1');
    expect(u).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(machineIdOf(u)).toBe(u.replaceAll('-', ''));
  });

  it('derives OpenSSH ed25519 keys that ssh2 parses, distinct per node and per lab secret', () => {
    const k1 = hostKey(secret, 'lab', 'n1');
    const k2 = hostKey(secret, 'lab', 'n2');
    const other = hostKey(Buffer.alloc(32, 2), 'lab', 'n1');
    const parsed = ssh2.utils.parseKey(k1.privateKey);
    if (parsed instanceof Error) throw parsed;
    expect(parsed.type).toBe('ssh-ed25519');
    expect(Buffer.compare(parsed.getPublicSSH(), k1.publicBlob)).toBe(0);
    expect(k1.publicKey).toBe(`ssh-ed25519 ${k1.publicBlob.toString('base64')} n1@lab`);
    expect(
      new Set(
        [k1.publicKey, k2.publicKey, other.publicKey, userKey(secret, 'lab').publicKey].map(
          (k) => k.split(' ')[1],
        ),
      ).size,
    ).toBe(4);
    // A signature made with the private key verifies with the public one.
    const sig = parsed.sign(Buffer.from('hello'));
    expect(parsed.verify(Buffer.from('hello'), sig)).toBe(true);
  });
});

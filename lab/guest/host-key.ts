/** Host key pinning: a node must present exactly the host key lab made for it. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ServerHostKeyAlgorithm } from 'ssh2';
import { LabError } from '../errors.js';

/** The node presented another host key than the one lab made for it. Never retried. */
export class HostKeyMismatchError extends LabError {
  constructor(
    readonly node: string,
    readonly host: string,
    readonly expected: string,
    readonly presented: string,
  ) {
    super(`${node}: host key of ${host} does not match: expected ${expected}, presented ${presented}`, {
      hint:
        'something other than this lab node answers at that address (another VM, a re-used IP), ' +
        'or the node was re-provisioned outside lab. lab refuses to connect; check the address, then `lab up` again.',
    });
  }
}

/** `SHA256:…` as ssh-keygen -l prints it, for a raw public key blob. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type inside a public key blob (`ssh-ed25519`), to offer only that host key algorithm. */
export function hostKeyAlgorithms(blob: Buffer): ServerHostKeyAlgorithm[] | undefined {
  if (blob.length < 4) return undefined;
  const type = blob.subarray(4, 4 + blob.readUInt32BE(0)).toString('latin1');
  if (type === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  return /^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521))$/.test(type)
    ? [type as ServerHostKeyAlgorithm]
    : undefined;
}

/** True when the presented host key blob is the pinned one, byte for byte. */
export function sameKey(expected: Buffer, presented: Buffer): boolean {
  // The length is public (it follows from the key type); the bytes are compared in constant time.
  return expected.length === presented.length && timingSafeEqual(expected, presented);
}

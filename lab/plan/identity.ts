import { createHash, createHmac, createPrivateKey, createPublicKey } from 'node:crypto';

/**
 * Deterministic identities. Same lab and node name -> same UUID and MAC, so a node
 * that is re-created keeps its machine-id (systemd derives it from the SMBIOS UUID
 * when /etc/machine-id is empty) and its DHCP reservation. Pure.
 */

function digest(...parts: string[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(`${p.length}:${p}`);
  return h.digest();
}

/** RFC 9562 version-8 (custom) UUID from the lab and node names. */
export function nodeUuid(lab: string, node: string): string {
  return uuidOf(digest('lab/uuid/v1', lab, node));
}

/**
 * The UUID of a lab's managed network: fixed, so that defining it again (a net-define whose
 * reply was lost, asked again) updates the same network instead of clashing with it.
 */
export function networkUuid(lab: string): string {
  return uuidOf(digest('lab/network-uuid/v1', lab));
}

function uuidOf(d: Buffer): string {
  const b = d.subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x80; // version 8
  b[8] = (b[8]! & 0x3f) | 0x80; // RFC 4122 variant
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The machine-id a guest derives from its domain UUID. */
export function machineIdOf(uuid: string): string {
  return uuid.replaceAll('-', '').toLowerCase();
}

/** A MAC in QEMU's locally administered 52:54:00 range, from the lab and node names. */
export function nodeMac(lab: string, node: string): string {
  const b = digest('lab/mac/v1', lab, node);
  return ['52', '54', '00', ...[b[0]!, b[1]!, b[2]!].map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

export interface SshKeyPair {
  /** OpenSSH private key file ("-----BEGIN OPENSSH PRIVATE KEY-----"). Secret. */
  privateKey: string;
  /** `ssh-ed25519 AAAA… comment` */
  publicKey: string;
  /** The raw public key blob, as an SSH server presents it. */
  publicBlob: Buffer;
  /** `SHA256:…` as ssh-keygen -l prints it. */
  fingerprint: string;
}

/**
 * An ed25519 key pair derived from the lab's secret, so the host key a node will
 * present is known before the node boots (known_hosts written up front; the client
 * never trusts an unknown key). The secret lives only in the lab's 0700 folder.
 */
export function deriveKeyPair(secret: Buffer, purpose: string, comment: string): SshKeyPair {
  const seed = createHmac('sha256', secret).update(`lab/ssh-key/v1/${purpose}`).digest();
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const priv = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' });
  const pub = spki.subarray(spki.length - 32);
  const publicBlob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  // checkint only has to match itself; derive it so output is byte-for-byte stable.
  const checkint = createHmac('sha256', secret).update(`lab/checkint/${purpose}`).digest().subarray(0, 4);
  let privSection = Buffer.concat([
    checkint,
    checkint,
    sshString('ssh-ed25519'),
    sshString(pub),
    sshString(Buffer.concat([seed, pub])),
    sshString(comment),
  ]);
  const pad: number[] = [];
  for (let i = 1; (privSection.length + pad.length) % 8 !== 0; i++) pad.push(i);
  privSection = Buffer.concat([privSection, Buffer.from(pad)]);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'binary'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    u32(1),
    sshString(publicBlob),
    sshString(privSection),
  ]);
  const b64 = body
    .toString('base64')
    .replace(/(.{70})/g, '$1\n')
    .replace(/\n$/, '');
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `ssh-ed25519 ${publicBlob.toString('base64')} ${comment}`,
    publicBlob,
    fingerprint: `SHA256:${createHash('sha256').update(publicBlob).digest('base64').replace(/=+$/, '')}`,
  };
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function sshString(v: string | Buffer): Buffer {
  const data = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
  return Buffer.concat([u32(data.length), data]);
}

/** The lab's login key and each node's host key. */
export function userKey(secret: Buffer, lab: string): SshKeyPair {
  return deriveKeyPair(secret, 'user', `lab-${lab}`);
}
export function hostKey(secret: Buffer, lab: string, node: string): SshKeyPair {
  return deriveKeyPair(secret, `host/${node}`, `${node}@${lab}`);
}

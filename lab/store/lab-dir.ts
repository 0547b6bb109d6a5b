import { randomBytes } from 'node:crypto';
import { constants, existsSync, statSync } from 'node:fs';
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { LabSpec, NodeSpec } from '../plan/model.js';
import { hostKey, userKey, type SshKeyPair } from '../plan/identity.js';
import type { NodePaths } from '../render/types.js';

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * Where labs keep their files. As root, system places that QEMU (running as
 * libvirt-qemu) can reach: /root is 0700, so ~/.cache would be unreadable to it.
 */
export function stateRoot(): string {
  if (process.env.LAB_STATE_DIR) return path.resolve(process.env.LAB_STATE_DIR);
  if (isRoot()) return '/var/lib/lab';
  return path.join(process.env.XDG_STATE_HOME ?? path.join(os.homedir(), '.local', 'state'), 'lab');
}

export function cacheRoot(): string {
  if (process.env.LAB_CACHE_DIR) return path.resolve(process.env.LAB_CACHE_DIR);
  if (isRoot()) return '/var/cache/lab/images';
  return path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'lab', 'images');
}

/** The files of one lab. `private/` is 0700: the lab secret, the login key, known_hosts. */
export class LabDir {
  readonly root: string;
  readonly private: string;
  readonly disks: string;
  readonly console: string;
  constructor(readonly lab: string) {
    this.root = path.join(stateRoot(), lab);
    this.private = path.join(this.root, 'private');
    this.disks = path.join(this.root, 'disks');
    this.console = path.join(this.root, 'console');
  }

  get secretFile() {
    return path.join(this.private, 'secret');
  }
  get keyFile() {
    return path.join(this.private, 'id_ed25519');
  }
  get knownHostsFile() {
    return path.join(this.private, 'known_hosts');
  }
  get sshConfigFile() {
    return path.join(this.private, 'ssh_config');
  }
  get stateFile() {
    return path.join(this.private, 'state.json');
  }
  get lockFile() {
    return path.join(this.root, 'lock');
  }

  exists(): boolean {
    return existsSync(this.secretFile);
  }

  nodePaths(node: NodeSpec, image: { kernel?: string; initrd?: string }): NodePaths {
    const delivery = node.template.provisioning.delivery;
    return {
      disk: path.join(this.disks, `${node.name}.qcow2`),
      ...(delivery === 'fwcfg'
        ? { fwcfg: path.join(this.disks, `${node.name}.ign`) }
        : { seed: path.join(this.disks, `${node.name}-seed.iso`) }),
      console: path.join(this.console, `${node.name}.log`),
      ...(image.kernel ? { kernel: image.kernel } : {}),
      ...(image.initrd ? { initrd: image.initrd } : {}),
    };
  }

  /**
   * Creates the folders with their modes. Parents stay traversable (0711) so QEMU
   * can open the disks it is given, without being able to list anything.
   */
  async ensure(): Promise<void> {
    await mkdir(stateRoot(), { recursive: true, mode: 0o711 });
    await mkdir(this.root, { recursive: true, mode: 0o711 });
    await chmod(this.root, 0o711);
    await mkdir(this.private, { recursive: true, mode: 0o700 });
    await chmod(this.private, 0o700);
    await mkdir(this.disks, { recursive: true, mode: 0o711 });
    await mkdir(this.console, { recursive: true, mode: 0o711 });
  }

  /** The lab's secret (32 random bytes), made once; every key is derived from it. */
  async secret(create: boolean): Promise<Buffer | undefined> {
    try {
      const hex = (await readFile(this.secretFile, 'utf8')).trim();
      if (/^[0-9a-f]{64}$/.test(hex)) return Buffer.from(hex, 'hex');
    } catch {
      /* none yet */
    }
    if (!create) return undefined;
    await this.ensure();
    const secret = randomBytes(32);
    await writeAtomic(this.secretFile, `${secret.toString('hex')}\n`, 0o600);
    return secret;
  }

  /** Writes the login key, known_hosts and an OpenSSH config, all derived from the secret. */
  async writeAccessFiles(lab: LabSpec, secret: Buffer): Promise<SshKeyPair> {
    const user = userKey(secret, lab.name);
    await writeAtomic(this.keyFile, user.privateKey, 0o600);
    await writeAtomic(`${this.keyFile}.pub`, `${user.publicKey}\n`, 0o644);
    await writeAtomic(this.knownHostsFile, renderKnownHosts(lab, secret), 0o600);
    await writeAtomic(this.sshConfigFile, renderSshConfig(lab, this), 0o600);
    return user;
  }

  async remove(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }
}

/** known_hosts: each node's pinned host key under its name and its IP. */
export function renderKnownHosts(lab: LabSpec, secret: Buffer): string {
  return lab.nodes
    .map((n) => {
      const k = hostKey(secret, lab.name, n.name).publicKey.split(' ').slice(0, 2).join(' ');
      return `${lab.name}-${n.name},${n.ip} ${k}\n`;
    })
    .join('');
}

/** Node names and IPs another lab on this host has: ssh-config leaves them out, as aliases. */
export interface TakenAliases {
  names: ReadonlySet<string>;
  ips: ReadonlySet<string>;
}

/**
 * An OpenSSH client config so plain ssh, scp and Ansible reach the nodes with strict checking.
 * Each node answers to `<node>.<lab>` and `<lab>-<node>`, unique on the host, and to its bare
 * name and IP unless another lab (`taken`) has them: an IP too, since Ansible connects to the
 * IP through `ssh -F` this file.
 */
export function renderSshConfig(lab: LabSpec, dir: LabDir, taken?: TakenAliases): string {
  return lab.nodes
    .map((n) =>
      [
        [
          'Host',
          `${n.name}.${lab.name}`,
          `${lab.name}-${n.name}`,
          ...(taken?.names.has(n.name) ? [] : [n.name]),
          ...(taken?.ips.has(n.ip) ? [] : [n.ip]),
        ].join(' '),
        `  HostName ${n.ip}`,
        `  User ${lab.ssh.user}`,
        `  IdentityFile ${dir.keyFile}`,
        `  IdentitiesOnly yes`,
        `  UserKnownHostsFile ${dir.knownHostsFile}`,
        `  StrictHostKeyChecking yes`,
        `  HostKeyAlias ${lab.name}-${n.name}`,
        `  LogLevel ERROR`,
        '',
      ].join('\n'),
    )
    .join('\n');
}

/**
 * Write to a new temp file (created with its final mode by the open itself: O_EXCL, never
 * a chmod afterwards, so no other process can open a key in between), fsync, rename.
 * Readers never see half a file.
 */
export async function writeAtomic(file: string, content: string | Buffer, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await rm(tmp, { force: true });
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await fh.chmod(mode); // the umask may have taken bits away (0644 under 077): put back exactly
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

/**
 * OpenSSH's rule, applied before a key is used: the private folder and the files in it
 * must not be readable by group or others. Returns what is wrong, or undefined.
 */
export function unprotectedPrivateFiles(dir: LabDir): string | undefined {
  const check: [string, number][] = [
    [dir.private, 0o077],
    [dir.keyFile, 0o077],
    [dir.secretFile, 0o077],
  ];
  for (const [file, bad] of check) {
    let mode: number;
    try {
      mode = statSync(file).mode & 0o777;
    } catch {
      continue;
    }
    if (mode & bad)
      return `${file} has mode ${mode.toString(8).padStart(4, '0')}: a private key or secret must not be readable by others`;
  }
  return undefined;
}

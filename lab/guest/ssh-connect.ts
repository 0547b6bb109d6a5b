/** Opening an SSH connection to a node: login with the lab's key, host key pinned. */
import ssh2 from 'ssh2';
import type { Client, ConnectConfig } from 'ssh2';
import { LabError, NodeError, describeError } from '../errors.js';
import { abortError } from '../runtime/clock.js';
import { HostKeyMismatchError, fingerprintOf, hostKeyAlgorithms, sameKey } from './host-key.js';

// ssh2 is CommonJS whose exports Node's ESM loader cannot name: take them from the default export.
const { Client: SshClient } = ssh2;

/** Where a node's sshd is and what it must prove. */
export interface SshTarget {
  node: string;
  host: string;
  port?: number;
  user: string;
  /** OpenSSH private key file text (the lab's login key). */
  privateKey: string;
  /** The raw public key blob the node must present (RFC 4253 §6.6); nothing else is accepted. */
  hostKey: Buffer;
}

/** How long a login may take, how often to send keepalives, and what aborts it. */
export interface ConnectOptions {
  timeoutMs: number;
  /**
   * SSH keepalive period (default 10 s); after three unanswered ones the connection is
   * closed. Kept-open connections use a shorter one, to notice a destroyed guest soon.
   */
  keepaliveMs?: number;
  signal?: AbortSignal;
}

/**
 * Connects and authenticates with the lab's key only (no password, no keyboard-interactive,
 * no agent). The host key must equal `target.hostKey` byte for byte. `ready` wraps the
 * logged-in client as soon as it is ready, before any later event of it.
 */
export function connectClient<T>(
  target: SshTarget,
  options: ConnectOptions,
  ready: (client: Client) => T,
): Promise<T> {
  const { signal } = options;
  const port = target.port ?? 22;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const client = new SshClient();
    let presented: Buffer | undefined;
    let settled = false;
    const finish = (err?: LabError) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (err) {
        client.destroy();
        reject(err);
      } else {
        resolve(ready(client));
      }
    };
    const onAbort = () => finish(abortError(signal!));
    signal?.addEventListener('abort', onAbort, { once: true });
    const mismatch = () => hostKeyMismatch(target, port, presented);
    client.once('ready', () => finish());
    // Stays attached after `ready`: an 'error' without a listener would crash the process.
    client.on('error', (err: Error) => {
      finish(
        mismatch() ??
          new NodeError(target.node, 'ssh', `${target.user}@${target.host}:${port}: ${err.message}`, {
            cause: err,
          }),
      );
    });
    client.once('close', () =>
      finish(
        mismatch() ??
          new NodeError(
            target.node,
            'ssh',
            `${target.user}@${target.host}:${port}: connection closed during login`,
          ),
      ),
    );
    const config = loginConfig(target, port, options, (key) => {
      presented = Buffer.from(key);
      return sameKey(target.hostKey, presented);
    });
    try {
      client.connect(config);
    } catch (err) {
      finish(new NodeError(target.node, 'ssh', `cannot connect: ${describeError(err)}`, { cause: err }));
    }
  });
}

/** The error for a login that failed after the node presented a key other than the pinned one. */
function hostKeyMismatch(
  target: SshTarget,
  port: number,
  presented: Buffer | undefined,
): HostKeyMismatchError | undefined {
  return presented !== undefined && !sameKey(target.hostKey, presented)
    ? new HostKeyMismatchError(
        target.node,
        `${target.host}:${port}`,
        fingerprintOf(target.hostKey),
        fingerprintOf(presented),
      )
    : undefined;
}

/** ssh2's settings for one login: publickey only, the pinned key's algorithm, keepalives. */
function loginConfig(
  target: SshTarget,
  port: number,
  options: ConnectOptions,
  hostVerifier: (key: Buffer) => boolean,
): ConnectConfig {
  const algorithms = hostKeyAlgorithms(target.hostKey);
  return {
    host: target.host,
    port,
    username: target.user,
    privateKey: target.privateKey,
    authHandler: ['publickey'],
    tryKeyboard: false,
    hostVerifier,
    readyTimeout: options.timeoutMs,
    // A guest that is destroyed mid-command is noticed within about 3 keepalives.
    keepaliveInterval: options.keepaliveMs ?? 10_000,
    keepaliveCountMax: 3,
    ...(algorithms ? { algorithms: { serverHostKey: algorithms } } : {}),
  };
}

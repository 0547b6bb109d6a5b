import { createHash, timingSafeEqual } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import ssh2 from 'ssh2';
import type { Client, ClientChannel, ConnectConfig, PseudoTtyOptions, ServerHostKeyAlgorithm } from 'ssh2';
import { LabError, NodeError, describeError } from '../errors.js';
import { DeadlineError, abortError, formatSeconds, pollUntil, type Clock } from './wait.js';

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

export interface ConnectOptions {
  timeoutMs: number;
  /**
   * SSH keepalive period (default 10 s); after three unanswered ones the connection is
   * closed. Kept-open connections use a shorter one, to notice a destroyed guest soon.
   */
  keepaliveMs?: number;
  signal?: AbortSignal;
}

export interface GuestExecOptions {
  /** Default 60 s. On expiry the channel is closed and exec rejects. */
  timeoutMs?: number;
  /** Written to the command's stdin, then EOF. Without it stdin is closed at once. */
  input?: string | Buffer;
  signal?: AbortSignal;
  /** Set through `env K=V` in the command: sshd drops most `env` requests (AcceptEnv). */
  env?: Record<string, string>;
}

export interface GuestExecResult {
  stdout: string;
  stderr: string;
  /** The exit status; 128 + N when killed by signal N, as a shell reports it. */
  code: number;
}

/** Terminal streams for `lab ssh`; process.stdin/stdout/stderr by default. */
export interface TerminalIo {
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean; isRaw?: boolean; setRawMode?(mode: boolean): unknown };
  stdout?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number };
  stderr?: NodeJS.WritableStream;
  cols?: number;
  rows?: number;
  term?: string;
}

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

/**
 * Quotes argv for the remote POSIX shell: every word in single quotes, `'` as `'\''`.
 * sshd runs the command through the user's shell, so this is the only way an argument
 * reaches the guest unchanged.
 */
export function shellQuote(argv: readonly string[]): string {
  return argv
    .map((arg) => {
      // A NUL cannot cross a shell command line: refuse rather than truncate.
      if (arg.includes('\0')) throw new TypeError('shellQuote: argument contains a NUL byte');
      return `'${arg.replaceAll("'", `'\\''`)}'`;
    })
    .join(' ');
}

/** The key type inside a public key blob (`ssh-ed25519`), to offer only that host key algorithm. */
function hostKeyAlgorithms(blob: Buffer): ServerHostKeyAlgorithm[] | undefined {
  if (blob.length < 4) return undefined;
  const type = blob.subarray(4, 4 + blob.readUInt32BE(0)).toString('latin1');
  if (type === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  return /^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521))$/.test(type)
    ? [type as ServerHostKeyAlgorithm]
    : undefined;
}

function sameKey(expected: Buffer, presented: Buffer): boolean {
  // The length is public (it follows from the key type); the bytes are compared in constant time.
  return expected.length === presented.length && timingSafeEqual(expected, presented);
}

function exitCodeOf(code: number | null | undefined, signal: string | undefined): number | undefined {
  if (typeof code === 'number') return code;
  if (signal === undefined) return undefined;
  const n = (osConstants.signals as Record<string, number | undefined>)[`SIG${signal}`];
  return n === undefined ? 255 : 128 + n;
}

/** argv for messages: one line, bounded. Never includes `input` or env values. */
function display(argv: readonly string[]): string {
  const text = argv.join(' ').replace(/\s+/g, ' ');
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/** One SSH connection to one node, with a pinned host key. */
export class GuestSession {
  private closed = false;

  private constructor(
    readonly target: SshTarget,
    private readonly client: Client,
  ) {
    client.on('close', () => {
      this.closed = true;
    });
  }

  get node(): string {
    return this.target.node;
  }

  /** False once the connection has closed, from either side. */
  get isOpen(): boolean {
    return !this.closed;
  }

  /**
   * Connects and authenticates with the lab's key only (no password, no keyboard-interactive,
   * no agent). The host key must equal `target.hostKey` byte for byte.
   */
  static connect(target: SshTarget, options: ConnectOptions): Promise<GuestSession> {
    const { timeoutMs, signal } = options;
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
          resolve(new GuestSession(target, client));
        }
      };
      const onAbort = () => finish(abortError(signal!));
      signal?.addEventListener('abort', onAbort, { once: true });
      const mismatch = () =>
        presented !== undefined && !sameKey(target.hostKey, presented)
          ? new HostKeyMismatchError(
              target.node,
              `${target.host}:${port}`,
              fingerprintOf(target.hostKey),
              fingerprintOf(presented),
            )
          : undefined;
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
      const algorithms = hostKeyAlgorithms(target.hostKey);
      const config: ConnectConfig = {
        host: target.host,
        port,
        username: target.user,
        privateKey: target.privateKey,
        authHandler: ['publickey'],
        tryKeyboard: false,
        hostVerifier: (key: Buffer): boolean => {
          presented = Buffer.from(key);
          return sameKey(target.hostKey, presented);
        },
        readyTimeout: timeoutMs,
        // A guest that is destroyed mid-command is noticed within about 3 keepalives.
        keepaliveInterval: options.keepaliveMs ?? 10_000,
        keepaliveCountMax: 3,
        ...(algorithms ? { algorithms: { serverHostKey: algorithms } } : {}),
      };
      try {
        client.connect(config);
      } catch (err) {
        finish(new NodeError(target.node, 'ssh', `cannot connect: ${describeError(err)}`, { cause: err }));
      }
    });
  }

  /**
   * Runs argv on the guest (quoted with shellQuote) and collects its output. A non-zero
   * exit is a result, not an error; a timeout, an abort or a lost connection rejects.
   */
  exec(argv: string[], options: GuestExecOptions = {}): Promise<GuestExecResult> {
    if (argv.length === 0) return Promise.reject(new TypeError('exec: empty argv'));
    const env = Object.entries(options.env ?? {});
    for (const [key] of env) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key))
        return Promise.reject(new TypeError(`exec: bad env name ${key}`));
    }
    const full = env.length ? ['env', ...env.map(([k, v]) => `${k}=${v}`), ...argv] : argv;
    const timeoutMs = options.timeoutMs ?? 60_000;
    const what = display(argv);
    const { signal } = options;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortError(signal));
        return;
      }
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let channel: ClientChannel | undefined;
      let code: number | undefined;
      let settled = false;
      const finish = (err: Error | undefined) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err) {
          channel?.close();
          reject(err);
          return;
        }
        resolve({
          stdout: Buffer.concat(stdout).toString('utf8'),
          stderr: Buffer.concat(stderr).toString('utf8'),
          code: code ?? 255,
        });
      };
      const onAbort = () => finish(abortError(signal!));
      signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(
        () =>
          finish(new NodeError(this.node, 'exec', `\`${what}\` timed out after ${formatSeconds(timeoutMs)}`)),
        timeoutMs,
      );
      if (this.closed) {
        finish(new NodeError(this.node, 'exec', `\`${what}\`: the SSH connection is closed`));
        return;
      }
      this.client.exec(shellQuote(full), (err, ch) => {
        if (err) {
          finish(new NodeError(this.node, 'exec', `\`${what}\`: ${err.message}`, { cause: err }));
          return;
        }
        channel = ch;
        if (settled) {
          ch.close(); // timed out or aborted while the channel was opening
          return;
        }
        ch.on('error', (e: Error) =>
          finish(new NodeError(this.node, 'exec', `\`${what}\`: ${e.message}`, { cause: e })),
        );
        ch.on('data', (chunk: Buffer) => stdout.push(chunk));
        ch.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        ch.on('exit', (exitCode: number | null, exitSignal?: string) => {
          code = exitCodeOf(exitCode, exitSignal);
        });
        ch.on('close', () => {
          if (code === undefined) {
            finish(
              new NodeError(this.node, 'exec', `\`${what}\`: connection closed before the command finished`),
            );
          } else {
            finish(undefined);
          }
        });
        ch.end(options.input);
      });
    });
  }

  /** An interactive login shell (`lab ssh NODE`), with a pty when stdin is a terminal. Resolves with its exit status. */
  shell(io: TerminalIo = {}): Promise<number> {
    return this.interact(io, (pty, cb) => {
      if (pty) this.client.shell(pty, cb);
      else this.client.shell(false, cb);
    });
  }

  /** `lab ssh NODE -- CMD`: runs argv with output streamed live; a pty only when stdin is a terminal. */
  execInteractive(argv: string[], io: TerminalIo = {}): Promise<number> {
    if (argv.length === 0) return Promise.reject(new TypeError('execInteractive: empty argv'));
    const command = shellQuote(argv);
    return this.interact(io, (pty, cb) => {
      this.client.exec(command, pty ? { pty } : {}, cb);
    });
  }

  private interact(
    io: TerminalIo,
    open: (
      pty: PseudoTtyOptions | undefined,
      cb: (err: Error | undefined, ch: ClientChannel) => void,
    ) => void,
  ): Promise<number> {
    const stdin = io.stdin ?? process.stdin;
    const stdout = io.stdout ?? process.stdout;
    const stderr = io.stderr ?? process.stderr;
    const tty = stdin.isTTY === true;
    const pty: PseudoTtyOptions | undefined = tty
      ? {
          rows: io.rows ?? stdout.rows ?? 24,
          cols: io.cols ?? stdout.columns ?? 80,
          term: io.term ?? process.env.TERM ?? 'xterm-256color',
        }
      : undefined;
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new NodeError(this.node, 'ssh', 'the SSH connection is closed'));
        return;
      }
      open(pty, (err, ch) => {
        if (err) {
          reject(new NodeError(this.node, 'ssh', `cannot open a session: ${err.message}`, { cause: err }));
          return;
        }
        const wasRaw = stdin.isRaw === true;
        const rawMode = tty && typeof stdin.setRawMode === 'function';
        if (rawMode) stdin.setRawMode!(true);
        const onInput = (chunk: Buffer | string) => ch.write(chunk);
        const onInputEnd = () => ch.end();
        // Node turns SIGWINCH into 'resize' on a TTY stdout.
        const onResize = () => ch.setWindow(stdout.rows ?? 24, stdout.columns ?? 80, 0, 0);
        stdin.on('data', onInput);
        stdin.on('end', onInputEnd);
        stdin.resume();
        if (tty && stdout.isTTY) stdout.on('resize', onResize);
        let code: number | undefined;
        let failed: Error | undefined;
        ch.on('error', (e: Error) => {
          failed = e;
          ch.close();
        });
        ch.on('data', (chunk: Buffer) => stdout.write(chunk));
        ch.stderr.on('data', (chunk: Buffer) => stderr.write(chunk));
        ch.on('exit', (exitCode: number | null, exitSignal?: string) => {
          code = exitCodeOf(exitCode, exitSignal);
        });
        ch.on('close', () => {
          stdin.removeListener('data', onInput);
          stdin.removeListener('end', onInputEnd);
          stdout.removeListener('resize', onResize);
          stdin.pause();
          if (rawMode) stdin.setRawMode!(wasRaw);
          if (failed) reject(new NodeError(this.node, 'ssh', failed.message, { cause: failed }));
          else if (code === undefined)
            reject(new NodeError(this.node, 'ssh', 'connection closed before the session ended'));
          else resolve(code);
        });
      });
    });
  }

  /** Ends the connection; running commands are cut off. */
  /**
   * One HTTP request to a service inside the guest, through the SSH connection itself
   * (direct-tcpip to 127.0.0.1:PORT, or streamlocal to a unix socket): no process is
   * started in the guest, which under TCG costs a second or more per command.
   */
  http(
    to: { port: number } | { socket: string },
    request: { method: string; path: string; body?: string; timeoutMs?: number },
  ): Promise<{ status: number; body: string }> {
    const timeoutMs = request.timeoutMs ?? 15_000;
    return new Promise((resolve, reject) => {
      let done = false;
      const fail = (err: Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        reject(
          new NodeError(
            this.node,
            'http',
            `${request.method} ${request.path} via ${'port' in to ? `port ${to.port}` : to.socket}: ${err.message}`,
            { cause: err },
          ),
        );
      };
      const timer = setTimeout(
        () => fail(new Error(`timed out after ${formatSeconds(timeoutMs)}`)),
        timeoutMs,
      );
      const onChannel = (err: Error | undefined, channel: ClientChannel) => {
        if (err) return fail(err);
        const req = httpRequest(
          {
            method: request.method,
            path: request.path,
            headers: {
              host: 'localhost',
              connection: 'close',
              ...(request.body !== undefined
                ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(request.body) }
                : {}),
            },
            // A Duplex is all node:http needs of its connection.
            createConnection: () => channel as unknown as Socket, // eslint-disable-line @typescript-eslint/no-unnecessary-type-assertion
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('error', fail);
            res.on('end', () => {
              if (done) return;
              done = true;
              clearTimeout(timer);
              resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
            });
          },
        );
        req.on('error', fail);
        req.end(request.body);
      };
      try {
        if ('port' in to) this.client.forwardOut('127.0.0.1', 0, '127.0.0.1', to.port, onChannel);
        else this.client.openssh_forwardOutStreamLocal(to.socket, onChannel);
      } catch (err) {
        fail(err as Error);
      }
    });
  }

  /**
   * One round trip on the connection, no process in the guest: true when the server
   * answers within the time. A connection whose link was cut looks open until its
   * keepalives fail (about 10 s); a reused connection is asked first. The request is a
   * cancel of a forwarding that was never asked for (RFC 4254 7.1): the server answers
   * it, with success or failure, and changes nothing.
   */
  ping(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      try {
        this.client.unforwardIn('127.0.0.1', 0, () => {
          clearTimeout(timer);
          resolve(!this.closed);
        });
      } catch {
        clearTimeout(timer);
        resolve(false);
      }
    });
  }

  close(): void {
    this.closed = true;
    this.client.end();
  }
}

export interface WaitForSshOptions {
  /** Time budget from the call, in ms. */
  deadlineMs: number;
  signal?: AbortSignal;
  /** Called after each failed attempt (1-based), for progress output. */
  onAttempt?: (attempt: number, err: unknown) => void;
  clock?: Clock;
  /** Upper bound for one attempt's connect + login, in ms (default 15 s). */
  attemptTimeoutMs?: number;
}

/**
 * Connects to a booting node: retries with backoff (250 ms × 1.5, at most 3 s) until the
 * deadline. A host key mismatch fails at once: it is a security event, not a slow boot.
 */
export async function waitForSsh(target: SshTarget, options: WaitForSshOptions): Promise<GuestSession> {
  const { signal } = options;
  let lastError: unknown;
  try {
    return await pollUntil(
      async ({ attempt, remainingMs }) => {
        try {
          const timeoutMs = Math.max(1000, Math.min(options.attemptTimeoutMs ?? 15_000, remainingMs));
          return await GuestSession.connect(target, { timeoutMs, ...(signal ? { signal } : {}) });
        } catch (err) {
          options.onAttempt?.(attempt, err);
          if (err instanceof HostKeyMismatchError || signal?.aborted) throw err;
          lastError = err;
          return undefined;
        }
      },
      {
        deadlineMs: options.deadlineMs,
        initialMs: 250,
        factor: 1.5,
        maxMs: 3000,
        describe: `SSH on ${target.node}`,
        ...(signal ? { signal } : {}),
        ...(options.clock ? { clock: options.clock } : {}),
      },
    );
  } catch (err) {
    if (!(err instanceof DeadlineError)) throw err;
    // The inner NodeError repeats "node: ssh:"; its cause is the plain reason.
    const reason =
      lastError instanceof NodeError && lastError.cause instanceof Error
        ? lastError.cause.message
        : describeError(lastError);
    throw new NodeError(
      target.node,
      'ssh',
      `no SSH answer after ${formatSeconds(err.elapsedMs)}: last error: ${reason} (${target.user}@${target.host}:${target.port ?? 22}, ${err.attempts} attempts)`,
      {
        cause: lastError ?? err,
        hint: `is the VM running? its serial console log (in the lab folder, console/${target.node}.log) shows what it is doing`,
      },
    );
  }
}

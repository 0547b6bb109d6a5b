/** GuestSession: one SSH connection to one node, for commands, HTTP to its services and `lab ssh`. */
import type { Client, ClientChannel, SFTPWrapper } from 'ssh2';
import { NodeError } from '../errors.js';
import { abortError, formatSeconds } from '../runtime/clock.js';
import { exitCodeOf } from './exit-status.js';
import { httpOverSsh, type HttpRequest, type HttpResponse, type HttpTo } from './http-over-ssh.js';
import { shellQuote } from './shell-quote.js';
import { connectClient, type ConnectOptions, type SshTarget } from './ssh-connect.js';
import { runTerminal, type OpenChannel, type TerminalIo } from './terminal.js';

/** Options of GuestSession.exec. */
export interface GuestExecOptions {
  /** Default 60 s. On expiry the channel is closed and exec rejects. */
  timeoutMs?: number;
  /** Written to the command's stdin, then EOF. Without it stdin is closed at once. */
  input?: string | Buffer;
  signal?: AbortSignal;
  /** Set through `env K=V` in the command: sshd drops most `env` requests (AcceptEnv). */
  env?: Record<string, string>;
}

/** What a command printed, and how it ended. */
export interface GuestExecResult {
  stdout: string;
  stderr: string;
  /** The exit status; 128 + N when killed by signal N, as a shell reports it. */
  code: number;
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

  /** The node's name. */
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
    return connectClient(target, options, (client) => new GuestSession(target, client));
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
    return this.runCommand(full, display(argv), options);
  }

  /** Runs argv on a new channel until it exits, times out or is aborted. */
  private runCommand(argv: string[], what: string, options: GuestExecOptions): Promise<GuestExecResult> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const { signal } = options;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortError(signal));
        return;
      }
      let channel: ClientChannel | undefined;
      let settled = false;
      const finish = (result: Error | GuestExecResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (result instanceof Error) {
          channel?.close();
          reject(result);
        } else {
          resolve(result);
        }
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
      this.client.exec(shellQuote(argv), (err, ch) => {
        if (err) {
          finish(new NodeError(this.node, 'exec', `\`${what}\`: ${err.message}`, { cause: err }));
          return;
        }
        channel = ch;
        if (settled) {
          ch.close(); // timed out or aborted while the channel was opening
          return;
        }
        collectOutput(ch, this.node, what, finish);
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

  /** Runs the channel `open` makes on the local terminal, if the connection is still open. */
  private interact(io: TerminalIo, open: OpenChannel): Promise<number> {
    if (this.closed) return Promise.reject(new NodeError(this.node, 'ssh', 'the SSH connection is closed'));
    return runTerminal(this.node, io, open);
  }

  /** One HTTP request to a service inside the guest, through this connection (see http-over-ssh.ts). */
  http(to: HttpTo, request: HttpRequest): Promise<HttpResponse> {
    return httpOverSsh(this.client, this.node, to, request);
  }

  /** The connection's SFTP channel, opened at the first read and kept (one sftp-server). */
  private sftp?: Promise<SFTPWrapper>;

  /**
   * Reads a guest file over SFTP: no command and no shell in the guest, which under TCG
   * costs ~0.3 s a command alone and over 1 s on a busy host (measured: /proc/loadavg
   * and /proc/meminfo of five nodes, 0.8 s by `cat`, 0.1 s by SFTP).
   */
  readFile(file: string, options: { timeoutMs?: number } = {}): Promise<string> {
    return this.overSftp(file, options.timeoutMs, (sftp, done) =>
      sftp.readFile(file, (err, data) => done(err, err ? undefined : data.toString('utf8'))),
    );
  }

  /** The regular files of a guest folder, over SFTP (links and folders left out). */
  listFiles(dir: string, options: { timeoutMs?: number } = {}): Promise<string[]> {
    return this.overSftp(dir, options.timeoutMs, (sftp, done) =>
      sftp.readdir(dir, (err, list) =>
        done(
          err,
          err
            ? undefined
            : list
                .filter((e) => (e.attrs.mode & 0o170000) === 0o100000)
                .map((e) => e.filename)
                .sort(),
        ),
      ),
    );
  }

  /** One SFTP request on the kept channel, under a timeout; errors name the node and path. */
  private overSftp<T>(
    what: string,
    timeoutMs = 15_000,
    ask: (sftp: SFTPWrapper, done: (err: Error | null | undefined, value: T | undefined) => void) => void,
  ): Promise<T> {
    const fail = (why: string, cause?: unknown) =>
      new NodeError(this.node, 'read', `${what}: ${why}`, cause ? { cause } : undefined);
    if (this.closed) return Promise.reject(fail('the SSH connection is closed'));
    this.sftp ??= new Promise<SFTPWrapper>((resolve, reject) =>
      this.client.sftp((err, sftp) => (err ? reject(err) : resolve(sftp))),
    );
    const opened = this.sftp;
    opened.catch(() => {
      if (this.sftp === opened) this.sftp = undefined; // asked again next time
    });
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(fail(`timed out after ${formatSeconds(timeoutMs)}`)), timeoutMs);
      opened.then(
        (sftp) =>
          ask(sftp, (err, value) => {
            clearTimeout(timer);
            if (err) reject(fail(err.message, err));
            else resolve(value as T);
          }),
        (err: Error) => {
          clearTimeout(timer);
          reject(fail(`no SFTP: ${err.message}`, err));
        },
      );
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

  /** Ends the connection; running commands are cut off. */
  close(): void {
    this.closed = true;
    this.client.end();
  }
}

/**
 * Gathers a command channel's output and exit status; on close, hands over the result,
 * or an error when the channel failed or closed before the command exited.
 */
function collectOutput(
  ch: ClientChannel,
  node: string,
  what: string,
  finish: (result: Error | GuestExecResult) => void,
): void {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  let code: number | undefined;
  ch.on('error', (e: Error) =>
    finish(new NodeError(node, 'exec', `\`${what}\`: ${e.message}`, { cause: e })),
  );
  ch.on('data', (chunk: Buffer) => stdout.push(chunk));
  ch.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  ch.on('exit', (exitCode: number | null, exitSignal?: string) => {
    code = exitCodeOf(exitCode, exitSignal);
  });
  ch.on('close', () => {
    if (code === undefined) {
      finish(new NodeError(node, 'exec', `\`${what}\`: connection closed before the command finished`));
    } else {
      finish({
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        code,
      });
    }
  });
}

/**
 * The lab's connection agent: a small background process per lab that keeps one SSH
 * connection per node open between commands, as OpenSSH's ControlPersist does. A handshake
 * with an emulated guest costs one to two seconds, and its first channel almost one more;
 * through the agent a re-run of `lab up` or `lab status --json` pays them once, not every
 * time. The agent listens on a unix socket in the lab's private folder (0700), speaks one
 * JSON document per line, keeps the host key pinning of GuestSession, and exits after it
 * has been idle for a while (LAB_AGENT_IDLE_S, default 600 s), on SIGTERM, or when its
 * socket file is removed (the lab folder is gone). LAB_AGENT=0 disables it: every command
 * then connects on its own.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { LabError, NodeError, describeError } from '../errors.js';
import type { Exec, ExecResult } from './probes/index.js';
import { GuestSession, HostKeyMismatchError, type SshTarget } from './ssh.js';
import { sleep } from './wait.js';

export type HttpTo = { port: number } | { socket: string };
export interface HttpRequest {
  method: string;
  path: string;
  body?: string;
  timeoutMs?: number;
}

/** What a probe or a check needs of a node: commands, HTTP to its services, and an end. */
export interface GuestLink extends Required<Exec> {
  readonly node: string;
  close(): void;
}

interface WireTarget {
  node: string;
  host: string;
  port?: number;
  user: string;
  privateKey: string;
  /** base64 of the pinned host key blob. */
  hostKey: string;
}

type Request =
  | { id: number; op: 'connect'; target: WireTarget; timeoutMs: number }
  | {
      id: number;
      op: 'exec';
      target: WireTarget;
      argv: string[];
      timeoutMs?: number;
      input?: string;
    }
  | { id: number; op: 'http'; target: WireTarget; to: HttpTo; request: HttpRequest };

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

type Reply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { message: string; node?: string; step?: string; mismatch?: boolean } };

/** `cat /etc/machine-id`, the probes' way to read it. */
function isMachineIdRead(argv: readonly string[]): boolean {
  return argv.length === 2 && argv[0] === 'cat' && argv[1] === '/etc/machine-id';
}

/** Socket paths are limited to 107 bytes; a deeper lab folder goes without the agent. */
const MAX_SOCKET_PATH = 100;

export function agentPaths(privateDir: string) {
  return { socket: path.join(privateDir, 'agent.sock'), pid: path.join(privateDir, 'agent.pid') };
}

const wire = (t: SshTarget): WireTarget => ({
  node: t.node,
  host: t.host,
  ...(t.port !== undefined ? { port: t.port } : {}),
  user: t.user,
  privateKey: t.privateKey,
  hostKey: t.hostKey.toString('base64'),
});

// ---------------------------------------------------------------- server

/** Runs the agent until idle, SIGTERM or its socket file is gone. `lab __agent` calls it. */
export async function runAgent(socketPath: string, idleMs: number): Promise<void> {
  const { pid: pidFile } = agentPaths(path.dirname(socketPath));
  const sessions = new Map<string, Promise<GuestSession>>();
  const clients = new Set<Socket>();
  let lastActivity = Date.now();

  const keyOf = (t: WireTarget) =>
    createHash('sha256')
      .update(JSON.stringify([t.node, t.host, t.port ?? 22, t.user, t.hostKey, t.privateKey]))
      .digest('hex');

  /** The open session for a target, connecting when there is none or it was closed. */
  const session = async (t: WireTarget, timeoutMs = 15_000): Promise<GuestSession> => {
    const key = keyOf(t);
    const existing = sessions.get(key);
    if (existing) {
      const s = await existing.catch(() => undefined);
      if (s?.isOpen) return s;
      sessions.delete(key);
    }
    const fresh = GuestSession.connect(
      { ...t, hostKey: Buffer.from(t.hostKey, 'base64') },
      { timeoutMs, keepaliveMs: 3000 },
    );
    sessions.set(key, fresh);
    fresh.catch(() => sessions.delete(key));
    return fresh;
  };

  const machineIds = new WeakMap<GuestSession, ExecResult>();
  const once = async (req: Request, s: GuestSession): Promise<unknown> => {
    switch (req.op) {
      case 'connect':
        return null;
      case 'exec': {
        // /etc/machine-id does not change while a system runs (machine-id(5)), and a
        // connection lasts one boot at most: read it once per connection.
        const memo = isMachineIdRead(req.argv) ? machineIds.get(s) : undefined;
        if (memo) return memo;
        const r = await s.exec(req.argv, {
          ...(req.timeoutMs !== undefined ? { timeoutMs: req.timeoutMs } : {}),
          ...(req.input !== undefined ? { input: req.input } : {}),
        });
        if (isMachineIdRead(req.argv) && r.code === 0 && /^[0-9a-f]{32}\n?$/.test(r.stdout))
          machineIds.set(s, r);
        return r;
      }
      case 'http':
        return s.http(req.to, req.request);
    }
  };
  const handle = async (req: Request): Promise<unknown> => {
    if (req.op === 'connect') {
      // "Connected" must mean the node answers now: a kept connection is asked first,
      // and one that does not answer (its link was cut) is replaced by a fresh one.
      const key = keyOf(req.target);
      const entry = sessions.get(key);
      const kept = await entry?.catch(() => undefined);
      if (kept?.isOpen && !(await kept.ping(Math.min(3000, req.timeoutMs)))) {
        kept.close();
        if (sessions.get(key) === entry) sessions.delete(key);
      }
    }
    const s = await session(req.target, req.op === 'connect' ? req.timeoutMs : undefined);
    try {
      return await once(req, s);
    } catch (err) {
      // A connection that died under the request (the guest rebooted since it was opened:
      // its new kernel resets the old TCP connection) is opened again, and the request
      // tried once more. Probes and checks are reads or idempotent writes.
      if (s.isOpen) throw err;
      return once(req, await session(req.target));
    }
  };

  const server = createServer((socket) => {
    clients.add(socket);
    socket.on('close', () => clients.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffer = '';
    socket.on('data', (chunk: Buffer) => {
      lastActivity = Date.now();
      buffer += chunk.toString('utf8');
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        let req: Request;
        try {
          req = JSON.parse(line) as Request;
        } catch {
          socket.destroy();
          return;
        }
        void handle(req).then(
          (result) => send(socket, { id: req.id, ok: true, result }),
          (err: unknown) =>
            send(socket, {
              id: req.id,
              ok: false,
              error: {
                message: describeError(err),
                ...(err instanceof NodeError ? { node: err.node, step: err.step } : {}),
                ...(err instanceof HostKeyMismatchError ? { mismatch: true } : {}),
              },
            }),
        );
      }
    });
  });
  const send = (socket: Socket, reply: Reply) => {
    lastActivity = Date.now();
    if (!socket.destroyed) socket.write(`${JSON.stringify(reply)}\n`);
  };

  await rm(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, resolve);
  });
  await chmod(socketPath, 0o600);
  await writeFile(pidFile, `${process.pid}\n`, { mode: 0o600 });

  await new Promise<void>((resolve) => {
    const stop = () => {
      clearInterval(watch);
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    const watch = setInterval(() => {
      const idle = clients.size === 0 && Date.now() - lastActivity > idleMs;
      if (idle || !existsSync(socketPath)) stop();
    }, 1000);
  });
  server.close();
  for (const c of clients) c.destroy();
  for (const s of sessions.values()) void s.then((x) => x.close()).catch(() => {});
  // Only our own files: another agent may have taken the path over meanwhile.
  if (readPid(pidFile) === process.pid) {
    await rm(socketPath, { force: true });
    await rm(pidFile, { force: true });
  }
}

function readPid(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- client

/** A connection to the lab's agent. */
export class AgentClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();
  private buffer = '';

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('utf8');
      let nl;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const reply = JSON.parse(this.buffer.slice(0, nl)) as Reply;
        this.buffer = this.buffer.slice(nl + 1);
        const p = this.pending.get(reply.id);
        if (!p) continue;
        this.pending.delete(reply.id);
        if (reply.ok) p.resolve(reply.result);
        else p.reject(remoteError(reply.error));
      }
    });
    const failAll = () => {
      for (const p of this.pending.values()) p.reject(new LabError('the connection agent went away'));
      this.pending.clear();
    };
    socket.on('close', failAll);
    socket.on('error', failAll);
  }

  /**
   * The lab's agent, started when it is not running. Undefined when the agent is disabled
   * or cannot start: callers then connect on their own.
   */
  static async get(privateDir: string, opts: { start: boolean }): Promise<AgentClient | undefined> {
    if (process.env.LAB_AGENT === '0') return undefined;
    const { socket } = agentPaths(privateDir);
    if (socket.length > MAX_SOCKET_PATH || !existsSync(privateDir)) return undefined;
    const first = await dial(socket);
    if (first) return new AgentClient(first);
    if (!opts.start) return undefined;
    startAgent(socket);
    // It listens within a few hundred ms (a Node start); give up after 5 s.
    for (let waited = 0; waited < 5000; waited += 50) {
      await sleep(50);
      const s = await dial(socket);
      if (s) return new AgentClient(s);
    }
    return undefined;
  }

  private call(req: WithoutId<Request>, timeoutMs: number): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      // The agent has its own timeouts; this one covers an agent that hangs.
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new LabError(`the connection agent did not answer within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs + 5000);
      timer.unref();
      this.pending.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.socket.write(`${JSON.stringify({ ...req, id })}\n`);
    });
  }

  /** Makes sure the agent holds a connection to the node; rejects when it cannot connect. */
  async connect(target: SshTarget, timeoutMs = 15_000): Promise<void> {
    await this.call({ op: 'connect', target: wire(target), timeoutMs }, timeoutMs);
  }

  /** Asks the agent to connect to these nodes, without waiting for it. */
  warm(targets: readonly SshTarget[]): void {
    for (const t of targets) this.connect(t).catch(() => {});
  }

  /** A GuestLink whose commands and requests go through the agent's connection. */
  link(target: SshTarget): GuestLink {
    const w = wire(target);
    return {
      node: target.node,
      exec: async (argv, opts) =>
        (await this.call(
          {
            op: 'exec',
            target: w,
            argv,
            ...(opts?.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
            ...(opts?.input !== undefined ? { input: opts.input } : {}),
          },
          opts?.timeoutMs ?? 60_000,
        )) as ExecResult,
      http: async (to, request) =>
        (await this.call({ op: 'http', target: w, to, request }, request.timeoutMs ?? 15_000)) as {
          status: number;
          body: string;
        },
      // The connection stays with the agent.
      close: () => {},
    };
  }

  close(): void {
    this.socket.end();
  }
}

function remoteError(e: { message: string; node?: string; step?: string; mismatch?: boolean }): Error {
  if (e.node && e.step) {
    const prefix = `${e.node}: ${e.step}: `;
    return new NodeError(
      e.node,
      e.step,
      e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message,
    );
  }
  return new LabError(e.mismatch ? `${e.message} (refused by the connection agent)` : e.message);
}

function dial(socketPath: string): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    if (!existsSync(socketPath)) return resolve(undefined);
    const s = connect(socketPath);
    s.once('connect', () => {
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', () => resolve(undefined));
  });
}

/** Starts `lab __agent` detached: it outlives this command, with no terminal and no output. */
function startAgent(socketPath: string): void {
  const cli = fileURLToPath(new URL('../../cmd/lab.js', import.meta.url));
  const idle = process.env.LAB_AGENT_IDLE_S ?? '600';
  const child = execa(process.execPath, [...process.execArgv, cli, '__agent', socketPath, idle], {
    detached: true,
    stdio: 'ignore',
    cleanup: false,
    reject: false,
  });
  child.unref();
  child.catch(() => {});
}

/**
 * Stops the lab's agent, if one runs: SIGTERM to the PID in its pid file, once it is
 * confirmed to be a `lab __agent` for this very socket (a recycled PID is left alone).
 */
export async function stopAgent(privateDir: string): Promise<boolean> {
  const { socket, pid: pidFile } = agentPaths(privateDir);
  const pid = readPid(pidFile);
  if (!pid) return false;
  let cmdline = '';
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return false;
  }
  const argv = cmdline.split('\0');
  if (!argv.includes('__agent') || !argv.includes(socket)) return false;
  process.kill(pid, 'SIGTERM');
  for (let waited = 0; waited < 3000 && existsSync(`/proc/${pid}`); waited += 50) await sleep(50);
  return true;
}

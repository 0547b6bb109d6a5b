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
 *
 * This module is the client side: AgentClient, and starting and stopping the agent. The
 * agent process itself is agent-server.ts; what both speak is agent-protocol.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { spawnProgram } from '../runtime/exec.js';
import { cliPath } from '../runtime/package-root.js';
import { LabError, NodeError } from '../errors.js';
import { sleep } from '../runtime/clock.js';
import {
  MAX_SOCKET_PATH,
  agentPaths,
  PROTOCOL,
  readPid,
  wire,
  type Reply,
  type Request,
  type WireError,
  type WithoutId,
} from './agent-protocol.js';
import type { Exec, ExecResult } from './probes/index.js';
import type { SshTarget } from './ssh-connect.js';

export { agentPaths } from './agent-protocol.js';
export type { HttpRequest, HttpTo } from './http-over-ssh.js';

/** What a probe or a check needs of a node: commands, HTTP to its services, and an end. */
export interface GuestLink extends Required<Exec> {
  readonly node: string;
  close(): void;
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
          headers: Record<string, string>;
        },
      readFile: async (file, opts) => (await this.sftp({ op: 'read', target: w, file }, opts)) as string,
      listFiles: async (dir, opts) => (await this.sftp({ op: 'list', target: w, dir }, opts)) as string[],
      // The connection stays with the agent.
      close: () => {},
    };
  }

  /** An SFTP request (read, list) with its optional timeout, 15 s by default. */
  private sftp(
    req: WithoutId<Extract<Request, { op: 'read' | 'list' }>>,
    opts: { timeoutMs?: number } | undefined,
  ): Promise<unknown> {
    return this.call(
      { ...req, ...(opts?.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) },
      opts?.timeoutMs ?? 15_000,
    );
  }

  /** Ends this connection; the agent keeps running. */
  close(): void {
    this.socket.end();
  }
}

/** The agent's report of a failure, as an error of this process. */
function remoteError(e: WireError): Error {
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

/** A connection to the agent's socket; undefined when nothing listens there. */
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
  const cli = cliPath();
  const idle = process.env.LAB_AGENT_IDLE_S ?? '600';
  // Not awaited: a detached child is unref'd by spawnProgram, and its end is of no interest.
  void spawnProgram(process.execPath, [...process.execArgv, cli, '__agent', socketPath, idle], {
    detached: true,
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: 'ignore',
    track: false,
  });
}

/**
 * Stops the lab's agent, if one runs: SIGTERM to the PID in its pid file, once it is
 * confirmed to be a `lab __agent` for this very socket (a recycled PID is left alone).
 * Agents of older protocol versions (an older lab left them running) are stopped too.
 */
export async function stopAgent(privateDir: string): Promise<boolean> {
  let stopped = false;
  for (let version = PROTOCOL; version >= 1; version--)
    if (await stopAgentAt(agentPaths(privateDir, version))) stopped = true;
  return stopped;
}

async function stopAgentAt({ socket, pid: pidFile }: { socket: string; pid: string }): Promise<boolean> {
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
  for (let waited = 0; waited < 3000 && !hasEnded(pid); waited += 20) await sleep(20);
  return true;
}

/**
 * Whether process `pid` has ended: gone, or a zombie. The detached agent's parent is init,
 * which reaps when it likes: a PID 1 that reaps once a second kept stopAgent waiting
 * 1.3 s on a process that had exited in 0.1 s (measured, before a checkpoint restore).
 */
export function hasEnded(pid: number): boolean {
  try {
    return procState(readFileSync(`/proc/${pid}/stat`, 'utf8')) === 'Z';
  } catch {
    return true;
  }
}

/** The state letter of a `/proc/PID/stat` line (after the command name, which may hold spaces or parentheses). Pure. */
export function procState(stat: string): string | undefined {
  return /^\S+\s+\(.*\)\s+(\S)/s.exec(stat)?.[1];
}

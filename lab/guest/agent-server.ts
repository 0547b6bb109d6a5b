/**
 * The connection agent's process (`lab __agent`, see agent.ts): answers requests on its
 * socket from SSH connections it keeps open, until idle, told to stop, or its socket is gone.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { LabError, NodeError, describeError } from '../errors.js';
import {
  agentPaths,
  readPid,
  type Reply,
  type Request,
  type WireError,
  type WireTarget,
} from './agent-protocol.js';
import { HostKeyMismatchError } from './host-key.js';
import type { ExecResult } from './probes/index.js';
import { GuestSession } from './session.js';

/** When the agent last had something to do: a request came in or a reply went out. */
interface Activity {
  last: number;
}

/** Runs the agent until idle, SIGTERM or its socket file is gone. `lab __agent` calls it. */
export async function runAgent(socketPath: string, idleMs: number): Promise<void> {
  const { pid: pidFile } = agentPaths(path.dirname(socketPath));
  const requests = new AgentRequests();
  const clients = new Set<Socket>();
  const activity: Activity = { last: Date.now() };
  const server = createServer((socket) => serveClient(socket, clients, activity, requests));
  await listen(server, socketPath, pidFile);
  await untilStopped(socketPath, () => clients.size === 0 && Date.now() - activity.last > idleMs);
  server.close();
  for (const c of clients) c.destroy();
  requests.closeAll();
  await removeOwnFiles(socketPath, pidFile);
}

// ---------------------------------------------------------------- the socket

/** Listens on the socket path (mode 0600) and writes the pid file that stopAgent reads. */
async function listen(server: Server, socketPath: string, pidFile: string): Promise<void> {
  await rm(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, resolve);
  });
  await chmod(socketPath, 0o600);
  await writeFile(pidFile, `${process.pid}\n`, { mode: 0o600 });
}

/** Reads one client's requests, one JSON document per line, and writes each reply when it is ready. */
function serveClient(
  socket: Socket,
  clients: Set<Socket>,
  activity: Activity,
  requests: AgentRequests,
): void {
  clients.add(socket);
  socket.on('close', () => clients.delete(socket));
  socket.on('error', () => socket.destroy());
  const send = (reply: Reply) => {
    activity.last = Date.now();
    if (!socket.destroyed) socket.write(`${JSON.stringify(reply)}\n`);
  };
  let buffer = '';
  socket.on('data', (chunk: Buffer) => {
    activity.last = Date.now();
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
      void requests.handle(req).then(
        (result) => send({ id: req.id, ok: true, result }),
        (err: unknown) => send({ id: req.id, ok: false, error: wireError(err) }),
      );
    }
  });
}

/** A failure as it crosses the socket: the message, and what the client needs to rebuild it. */
function wireError(err: unknown): WireError {
  return {
    message: describeError(err),
    ...(err instanceof NodeError ? { node: err.node, step: err.step } : {}),
    ...(err instanceof HostKeyMismatchError ? { mismatch: true } : {}),
  };
}

// ---------------------------------------------------------------- stopping

/** Resolves on SIGTERM or SIGINT, or at a once-a-second check that finds the agent idle or its socket file gone. */
function untilStopped(socketPath: string, isIdle: () => boolean): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = () => {
      clearInterval(watch);
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    const watch = setInterval(() => {
      if (isIdle() || !existsSync(socketPath)) stop();
    }, 1000);
  });
}

/** Removes the socket and the pid file, when they are still this process's. */
async function removeOwnFiles(socketPath: string, pidFile: string): Promise<void> {
  // Only our own files: another agent may have taken the path over meanwhile.
  if (readPid(pidFile) === process.pid) {
    await rm(socketPath, { force: true });
    await rm(pidFile, { force: true });
  }
}

// ---------------------------------------------------------------- requests

/** `cat /etc/machine-id`, the probes' way to read it. */
function isMachineIdRead(argv: readonly string[]): boolean {
  return argv.length === 2 && argv[0] === 'cat' && argv[1] === '/etc/machine-id';
}

/** Answers requests from the kept connections: one method per verb. */
class AgentRequests {
  private readonly pool = new SessionPool();
  private readonly machineIds = new WeakMap<GuestSession, ExecResult>();
  private readonly machineIdFiles = new WeakMap<GuestSession, string>();

  /** Answers one request, on the target's kept connection or a new one. */
  async handle(req: Request): Promise<unknown> {
    if (req.op === 'connect') {
      // "Connected" must mean the node answers now: a kept connection is asked first,
      // and one that does not answer (its link was cut) is replaced by a fresh one.
      await this.pool.dropIfSilent(req.target, req.timeoutMs);
    }
    const s = await this.pool.get(req.target, req.op === 'connect' ? req.timeoutMs : undefined);
    try {
      return await this.run(req, s);
    } catch (err) {
      // A connection that died under the request (the guest rebooted since it was opened:
      // its new kernel resets the old TCP connection) is opened again, and the request
      // tried once more. Probes and checks are reads or idempotent writes.
      if (s.isOpen) throw err;
      return this.run(req, await this.pool.get(req.target));
    }
  }

  /** Closes every kept connection. */
  closeAll(): void {
    this.pool.closeAll();
  }

  /** Carries out one request on a session: `connect` needs nothing more than the session. */
  private async run(req: Request, s: GuestSession): Promise<unknown> {
    switch (req.op) {
      case 'connect':
        return null;
      case 'exec':
        return this.exec(req, s);
      case 'http':
        return s.http(req.to, req.request);
      case 'read':
        return this.read(req, s);
      case 'list':
        return s.listFiles(req.dir, req.timeoutMs !== undefined ? { timeoutMs: req.timeoutMs } : {});
      default:
        throw new LabError(
          `the connection agent does not know the request ${JSON.stringify((req as { op: unknown }).op)}`,
        );
    }
  }

  /** Reads a file; a good read of /etc/machine-id is answered from memory afterwards. */
  private async read(req: Extract<Request, { op: 'read' }>, s: GuestSession): Promise<string> {
    const machineId = req.file === '/etc/machine-id';
    const memo = machineId ? this.machineIdFiles.get(s) : undefined;
    if (memo) return memo;
    const text = await s.readFile(req.file, req.timeoutMs !== undefined ? { timeoutMs: req.timeoutMs } : {});
    if (machineId && /^[0-9a-f]{32}\n?$/.test(text)) this.machineIdFiles.set(s, text);
    return text;
  }

  /** Runs a command; a good read of /etc/machine-id is answered from memory afterwards. */
  private async exec(req: Extract<Request, { op: 'exec' }>, s: GuestSession): Promise<ExecResult> {
    // /etc/machine-id does not change while a system runs (machine-id(5)), and a
    // connection lasts one boot at most: read it once per connection.
    const memo = isMachineIdRead(req.argv) ? this.machineIds.get(s) : undefined;
    if (memo) return memo;
    const r = await s.exec(req.argv, {
      ...(req.timeoutMs !== undefined ? { timeoutMs: req.timeoutMs } : {}),
      ...(req.input !== undefined ? { input: req.input } : {}),
    });
    if (isMachineIdRead(req.argv) && r.code === 0 && /^[0-9a-f]{32}\n?$/.test(r.stdout))
      this.machineIds.set(s, r);
    return r;
  }
}

/** The kept connections, one per target (node, address, user and both keys). */
class SessionPool {
  private readonly sessions = new Map<string, Promise<GuestSession>>();

  /** The open session for a target, connecting when there is none or it was closed. */
  async get(t: WireTarget, timeoutMs = 15_000): Promise<GuestSession> {
    const key = keyOf(t);
    const existing = this.sessions.get(key);
    if (existing) {
      const s = await existing.catch(() => undefined);
      if (s?.isOpen) return s;
      this.sessions.delete(key);
    }
    const fresh = GuestSession.connect(
      { ...t, hostKey: Buffer.from(t.hostKey, 'base64') },
      { timeoutMs, keepaliveMs: 3000 },
    );
    this.sessions.set(key, fresh);
    fresh.catch(() => this.sessions.delete(key));
    return fresh;
  }

  /** Closes and forgets the target's kept session when it does not answer a ping. */
  async dropIfSilent(t: WireTarget, timeoutMs: number): Promise<void> {
    const key = keyOf(t);
    const entry = this.sessions.get(key);
    const kept = await entry?.catch(() => undefined);
    if (kept?.isOpen && !(await kept.ping(Math.min(3000, timeoutMs)))) {
      kept.close();
      if (this.sessions.get(key) === entry) this.sessions.delete(key);
    }
  }

  /** Closes every session, including ones still connecting. */
  closeAll(): void {
    for (const s of this.sessions.values()) void s.then((x) => x.close()).catch(() => {});
  }
}

/** The pool's key for a target: a hash of everything that makes a connection. */
function keyOf(t: WireTarget): string {
  return createHash('sha256')
    .update(JSON.stringify([t.node, t.host, t.port ?? 22, t.user, t.hostKey, t.privateKey]))
    .digest('hex');
}

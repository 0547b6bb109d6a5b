import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import ssh2 from 'ssh2';
import type { Connection, ServerChannel } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { NodeError } from '../../../lab/errors.js';
import { hostKey, userKey } from '../../../lab/plan/identity.js';
import { AgentClient, agentPaths } from '../../../lab/guest/agent.js';
import { runAgent } from '../../../lab/guest/agent-server.js';
import { GuestSession, HostKeyMismatchError, waitForSsh, type SshTarget } from '../../../lab/guest/ssh.js';

const { Server, utils } = ssh2;
const secret = Buffer.alloc(32, 1);
const host = hostKey(secret, 't', 'n1');
const user = userKey(secret, 't');
const userPub = utils.parseKey(user.publicKey);

/** Canned replies by the exact command line the client sends. */
function reply(command: string, ch: ServerChannel): void {
  switch (command) {
    case `'echo' 'a b'`:
      ch.write('a b\n');
      ch.exit(0);
      ch.end();
      return;
    case `'sh' '-c' 'echo oops >&2; exit 3'`:
      ch.stderr.write('oops\n');
      ch.exit(3);
      ch.end();
      return;
    case `'env' 'ETCDCTL_API=3' 'etcdctl' 'version'`:
      ch.write('etcdctl version: 3.4.23\nAPI version: 3.4\n');
      ch.exit(0);
      ch.end();
      return;
    case `'cat'`: {
      const chunks: Buffer[] = [];
      ch.on('data', (c: Buffer) => chunks.push(c));
      ch.on('end', () => {
        ch.write(Buffer.concat(chunks));
        ch.exit(0);
        ch.end();
      });
      return;
    }
    case `'cat' '/etc/machine-id'`:
      ch.write('0123456789abcdef0123456789abcdef\n');
      ch.exit(0);
      ch.end();
      return;
    case `'sleep' '60'`:
      return; // never answers: the client's timeout must end it
    default:
      ch.stderr.write(`sh: 1: ${command}: not found\n`);
      ch.exit(127);
      ch.end();
  }
}

let server: InstanceType<typeof Server>;
let port: number;
const commands: string[] = [];
const connections: Connection[] = [];
const windows: { rows: number; cols: number; term?: string }[] = [];

beforeAll(async () => {
  server = new Server({ hostKeys: [host.privateKey] }, (client) => {
    connections.push(client);
    client.on('error', () => {}); // clients that refuse our host key hang up mid-handshake
    client.on('authentication', (ctx) => {
      if (
        ctx.method === 'publickey' &&
        !(userPub instanceof Error) &&
        !Array.isArray(userPub) &&
        ctx.username === 'core' &&
        ctx.key.data.equals(userPub.getPublicSSH()) &&
        (!ctx.signature || userPub.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) === true)
      ) {
        ctx.accept();
      } else {
        ctx.reject(['publickey']);
      }
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        const session = accept();
        session.on('exec', (acceptExec, _reject, info) => {
          commands.push(info.command);
          reply(info.command, acceptExec());
        });
        session.on('pty', (acceptPty, _reject, info) => {
          windows.push({ rows: info.rows, cols: info.cols, term: info.term });
          acceptPty?.();
        });
        session.on('window-change', (acceptWc, _reject, info) => {
          windows.push({ rows: info.rows, cols: info.cols });
          acceptWc?.();
          shellChannel?.exit(7);
          shellChannel?.end();
        });
        let shellChannel: ServerChannel | undefined;
        session.on('shell', (acceptShell) => {
          shellChannel = acceptShell();
          shellChannel.write('ready\n');
        });
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as net.AddressInfo).port;
});

afterAll(() => {
  for (const c of connections) c.end();
  server.close();
});

const target = (over: Partial<SshTarget> = {}): SshTarget => ({
  node: 'n1',
  host: '127.0.0.1',
  port,
  user: 'core',
  privateKey: user.privateKey,
  hostKey: host.publicBlob,
  ...over,
});

/**
 * A TCP relay to the test server whose open connections can be frozen: bytes stop in both
 * directions and nothing is closed, as when a guest's link is cut. New connections flow.
 */
async function freezableRelay(): Promise<{ port: number; freeze(): void; close(): void }> {
  const open = new Set<{ frozen: boolean; a: net.Socket; b: net.Socket }>();
  const relay = net.createServer((a) => {
    const b = net.connect(port, '127.0.0.1');
    const link = { frozen: false, a, b };
    open.add(link);
    a.on('data', (d) => !link.frozen && b.write(d));
    b.on('data', (d) => !link.frozen && a.write(d));
    const end = () => {
      a.destroy();
      b.destroy();
      open.delete(link);
    };
    a.on('close', end).on('error', end);
    b.on('close', end).on('error', end);
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  return {
    port: (relay.address() as net.AddressInfo).port,
    freeze: () => {
      for (const l of open) l.frozen = true;
    },
    close: () => {
      for (const l of open) {
        l.a.destroy();
        l.b.destroy();
      }
      relay.close();
    },
  };
}

describe('GuestSession', () => {
  it('connects with the pinned host key and round-trips exec', async () => {
    const s = await GuestSession.connect(target(), { timeoutMs: 5000 });
    try {
      expect(await s.exec(['echo', 'a b'])).toEqual({ stdout: 'a b\n', stderr: '', code: 0 });
      expect(commands).toContain(`'echo' 'a b'`);
      expect(await s.exec(['sh', '-c', 'echo oops >&2; exit 3'])).toEqual({
        stdout: '',
        stderr: 'oops\n',
        code: 3,
      });
      expect((await s.exec(['etcdctl', 'version'], { env: { ETCDCTL_API: '3' } })).stdout).toMatch(
        /3\.4\.23/,
      );
      expect((await s.exec(['cat'], { input: "it's $(here)\n" })).stdout).toBe("it's $(here)\n");
      expect((await s.exec(['no-such-cmd'])).code).toBe(127);
    } finally {
      s.close();
    }
  });

  it('ping: a round trip without a process; false within its time once the link is cut', async () => {
    const relay = await freezableRelay();
    const s = await GuestSession.connect(target({ port: relay.port }), { timeoutMs: 5000 });
    try {
      const before = commands.length;
      expect(await s.ping(2000)).toBe(true);
      expect(commands.length).toBe(before); // no exec
      relay.freeze();
      const t0 = performance.now();
      expect(await s.ping(300)).toBe(false);
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(s.isOpen).toBe(true); // it still looks open: that is why it is asked
    } finally {
      s.close();
      relay.close();
    }
  });

  it('rejects a command that outlives its timeout, naming node and command', async () => {
    const s = await GuestSession.connect(target(), { timeoutMs: 5000 });
    try {
      const err = await s.exec(['sleep', '60'], { timeoutMs: 200 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NodeError);
      expect((err as Error).message).toBe('n1: exec: `sleep 60` timed out after 0.2 s');
      // The session is still usable after a timed-out command.
      expect((await s.exec(['echo', 'a b'])).stdout).toBe('a b\n');
    } finally {
      s.close();
    }
  });

  it('refuses a host that presents another key', async () => {
    const other = hostKey(secret, 't', 'n2');
    const err = await GuestSession.connect(target({ hostKey: other.publicBlob }), { timeoutMs: 5000 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HostKeyMismatchError);
    expect((err as HostKeyMismatchError).expected).toBe(other.fingerprint);
    expect((err as HostKeyMismatchError).presented).toBe(host.fingerprint);
    expect((err as Error).message).toBe(
      `n1: host key of 127.0.0.1:${port} does not match: expected ${other.fingerprint}, presented ${host.fingerprint}`,
    );
  });

  it('logs in with the lab key only: another key is refused', async () => {
    const stranger = userKey(Buffer.alloc(32, 2), 't');
    const err = await GuestSession.connect(target({ privateKey: stranger.privateKey }), {
      timeoutMs: 5000,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodeError);
    expect((err as Error).message).toBe(
      `n1: ssh: core@127.0.0.1:${port}: All configured authentication methods failed`,
    );
  });

  it('streams an interactive command without a pty when stdin is not a terminal', async () => {
    const s = await GuestSession.connect(target(), { timeoutMs: 5000 });
    try {
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      const seen: Buffer[] = [];
      stdout.on('data', (c: Buffer) => seen.push(c));
      const code = await s.execInteractive(['sh', '-c', 'echo oops >&2; exit 3'], {
        stdin: new PassThrough(),
        stdout,
        stderr,
      });
      expect(code).toBe(3);
      expect((stderr.read() as Buffer | null)?.toString()).toBe('oops\n');
      expect(await s.execInteractive(['echo', 'a b'], { stdin: new PassThrough(), stdout, stderr })).toBe(0);
      expect(Buffer.concat(seen).toString()).toBe('a b\n');
    } finally {
      s.close();
    }
  });

  it('runs a pty shell in raw mode, forwards window changes and restores the terminal', async () => {
    const s = await GuestSession.connect(target(), { timeoutMs: 5000 });
    try {
      const stdin = Object.assign(new PassThrough(), { isTTY: true, isRaw: false, setRawMode: vi.fn() });
      const stdout = Object.assign(new PassThrough(), { isTTY: true, rows: 30, columns: 100 });
      stdout.once('data', () => {
        stdout.rows = 40;
        stdout.columns = 120;
        stdout.emit('resize');
      });
      const code = await s.shell({ stdin, stdout, stderr: new PassThrough(), term: 'xterm' });
      expect(code).toBe(7);
      expect(windows.slice(-2)).toEqual([
        { rows: 30, cols: 100, term: 'xterm' },
        { rows: 40, cols: 120 },
      ]);
      expect(stdin.setRawMode.mock.calls).toEqual([[true], [false]]);
    } finally {
      s.close();
    }
  });
});

describe('waitForSsh', () => {
  it('does not retry a host key mismatch', async () => {
    const before = connections.length;
    const onAttempt = vi.fn();
    const err = await waitForSsh(target({ hostKey: hostKey(secret, 't', 'n2').publicBlob }), {
      deadlineMs: 10_000,
      onAttempt,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyMismatchError);
    expect(onAttempt).toHaveBeenCalledTimes(1);
    expect(connections.length - before).toBe(1);
  });

  it('returns a session once the node answers', async () => {
    const s = await waitForSsh(target(), { deadlineMs: 5000 });
    expect((await s.exec(['echo', 'a b'])).stdout).toBe('a b\n');
    s.close();
  });

  it('gives up at the deadline with a clear NodeError when nothing listens', async () => {
    const probe = net.createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const closedPort = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const attempts: number[] = [];
    const started = performance.now();
    const err = await waitForSsh(target({ port: closedPort }), {
      deadlineMs: 1000,
      onAttempt: (n) => attempts.push(n),
    }).catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(err).toBeInstanceOf(NodeError);
    expect((err as NodeError).step).toBe('ssh');
    expect((err as Error).message).toMatch(
      new RegExp(
        `^n1: ssh: no SSH answer after 1(\\.\\d)? s: last error: connect ECONNREFUSED 127\\.0\\.0\\.1:${closedPort} `,
      ),
    );
    // 250 + 375 + 375 (cut at the deadline) ms of backoff: 4 attempts, the last at the deadline.
    expect(attempts).toEqual([1, 2, 3, 4]);
    expect(elapsed).toBeGreaterThanOrEqual(990);
    expect(elapsed).toBeLessThan(3000);
  });
});

describe('the connection agent', () => {
  let dir: string;
  let agentDone: Promise<void>;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lab-agent-'));
    agentDone = runAgent(agentPaths(dir).socket, 60_000);
    // It listens once its pid file is written.
    for (let i = 0; i < 100 && !existsSync(agentPaths(dir).pid); i++)
      await new Promise((r) => setTimeout(r, 20));
  });
  afterAll(async () => {
    rmSync(agentPaths(dir).socket, { force: true }); // the agent ends when its socket is gone
    await agentDone;
  });

  it('listens on a 0600 socket and writes its pid (0600)', () => {
    const { socket, pid } = agentPaths(dir);
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    expect(statSync(pid).mode & 0o777).toBe(0o600);
    expect(readFileSync(pid, 'utf8').trim()).toBe(String(process.pid));
  });

  it('runs commands over one kept connection, shared by every client', async () => {
    const before = connections.length;
    for (let i = 0; i < 2; i++) {
      const client = (await AgentClient.get(dir, { start: false }))!;
      expect(client).toBeDefined();
      const r = await client.link(target()).exec(['echo', 'a b']);
      expect(r).toMatchObject({ stdout: 'a b\n', code: 0 });
      const failed = await client.link(target()).exec(['sh', '-c', 'echo oops >&2; exit 3']);
      expect(failed).toMatchObject({ stderr: 'oops\n', code: 3 });
      client.close();
    }
    expect(connections.length - before).toBe(1);
  });

  it('keeps the host key pinned: another key is refused, with the node named', async () => {
    const client = (await AgentClient.get(dir, { start: false }))!;
    const other = hostKey(Buffer.alloc(32, 2), 't', 'n1').publicBlob;
    await expect(client.connect(target({ hostKey: other }))).rejects.toThrow(
      /n1: host key of 127\.0\.0\.1:\d+ does not match/,
    );
    client.close();
  });

  it('opens a connection again when the old one died (the guest rebooted), and the request goes through', async () => {
    const client = (await AgentClient.get(dir, { start: false }))!;
    await client.connect(target());
    const before = connections.length;
    for (const c of connections) c.end(); // the server side hangs up, as a rebooted guest resets it
    await new Promise((r) => setTimeout(r, 50));
    const r = await client.link(target()).exec(['echo', 'a b']);
    expect(r.stdout).toBe('a b\n');
    expect(connections.length).toBe(before + 1);
    client.close();
  });

  it('connect asks a kept connection first: one whose link was cut is replaced, not reported as connected', async () => {
    const relay = await freezableRelay();
    const client = (await AgentClient.get(dir, { start: false }))!;
    try {
      const via = target({ port: relay.port });
      await client.connect(via);
      const before = connections.length;
      await client.connect(via); // alive: kept, no new connection
      expect(connections.length).toBe(before);
      relay.freeze();
      const t0 = performance.now();
      await client.connect(via, 5000);
      expect(performance.now() - t0).toBeLessThan(4500);
      expect(connections.length).toBe(before + 1);
      expect((await client.link(via).exec(['echo', 'a b'])).stdout).toBe('a b\n');
    } finally {
      client.close();
      relay.close();
    }
  });

  it('passes stdin through, and reads /etc/machine-id once per connection (it does not change while a system runs)', async () => {
    const client = (await AgentClient.get(dir, { start: false }))!;
    const link = client.link(target());
    expect((await link.exec(['cat'], { input: 'unit file\n' })).stdout).toBe('unit file\n');
    const reads = () => commands.filter((c) => c === `'cat' '/etc/machine-id'`).length;
    const before = reads();
    for (let i = 0; i < 3; i++)
      expect((await link.exec(['cat', '/etc/machine-id'])).stdout).toBe('0123456789abcdef0123456789abcdef\n');
    expect(reads() - before).toBe(1);
    // A new connection (the guest rebooted) reads it again.
    for (const c of connections) c.end();
    await new Promise((r) => setTimeout(r, 50));
    await link.exec(['cat', '/etc/machine-id']);
    expect(reads() - before).toBe(2);
    client.close();
  });

  it('LAB_AGENT=0 turns it off: callers connect on their own', async () => {
    vi.stubEnv('LAB_AGENT', '0');
    try {
      expect(await AgentClient.get(dir, { start: false })).toBeUndefined();
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

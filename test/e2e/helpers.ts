import { execa } from 'execa';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { assertMatchesSchema } from '../support/json-schema.js';

/** The built CLI, run as a user would run it: node dist/cmd/lab.js. */
export const LAB = path.join(import.meta.dirname, '../../dist/cmd/lab.js');
export const URI = process.env.LIBVIRT_DEFAULT_URI ?? '';

/**
 * The full suite (`npm run test:e2e:full`, LAB_E2E_FULL=1) repeats the heavy scenarios as
 * often as their issue asks; CI runs a real, smaller number of each to stay within its time.
 */
export const FULL = process.env.LAB_E2E_FULL === '1';
export const rounds = (ci: number, full: number): number => (FULL ? full : ci);

if (!existsSync(LAB)) throw new Error('dist/cmd/lab.js is missing: run npm run build first');
if (!URI.includes('socket='))
  throw new Error('run the e2e suite through test/e2e/run.sh (private libvirtd in a netns)');

export interface LabRun {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `lab ARGS`, never throwing: tests assert on the exit code and output. */
export async function lab(
  args: string[],
  opts: { timeoutMs?: number; env?: Record<string, string>; cwd?: string } = {},
): Promise<LabRun> {
  const t0 = performance.now();
  const r = await execa('node', [LAB, ...args], {
    reject: false,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    timeout: opts.timeoutMs ?? 20 * 60_000,
    stdin: 'ignore',
    env: opts.env ?? {},
    stripFinalNewline: false,
  });
  const run = {
    code: r.exitCode ?? -1,
    stdout: String(r.stdout),
    stderr: String(r.stderr),
    ms: Math.round(performance.now() - t0),
  };
  // Keep the CI log useful: every lab run's output, with its timing.
  process.stderr.write(
    `\n${opts.cwd ? `(in ${opts.cwd}) ` : ''}$ lab ${args.join(' ')}  -> exit ${run.code} in ${(run.ms / 1000).toFixed(1)} s\n${run.stderr}${run.stdout}\n`,
  );
  return run;
}

export async function virsh(args: string[]): Promise<string> {
  const r = await execa('virsh', ['-q', '-c', URI, ...args], { stdin: 'ignore' });
  return String(r.stdout);
}

/** What exists on the host that a lab could leave behind. */
export async function inventory(
  labName: string,
): Promise<{ domains: string[]; networks: string[]; files: string[] }> {
  const stateDir = path.join(process.env.LAB_STATE_DIR ?? '/var/lib/lab', labName);
  const files = existsSync(stateDir) ? readdirSync(stateDir, { recursive: true }).map(String).sort() : [];
  return {
    domains: (await virsh(['list', '--all', '--name'])).split('\n').filter(Boolean).sort(),
    networks: (await virsh(['net-list', '--all', '--name'])).split('\n').filter(Boolean).sort(),
    files,
  };
}

/** The host keys lab pinned before the nodes' first boot (its known_hosts), by node name. */
export function pinnedHostKeys(labName: string): Map<string, string> {
  const file = path.join(process.env.LAB_STATE_DIR ?? '/var/lib/lab', labName, 'private', 'known_hosts');
  return new Map(
    readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const [names, type, blob] = l.split(' ');
        return [names!.split(',')[0]!.replace(`${labName}-`, ''), `${type} ${blob}`] as const;
      }),
  );
}

export function writeLabfile(text: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-e2e-'));
  const file = path.join(dir, 'Labfile.yaml');
  writeFileSync(file, text);
  return file;
}

export interface StatusJson {
  lab: string;
  nodes: {
    name: string;
    state: string;
    link: 'up' | 'down' | null;
    ip: string;
    machineId: string | null;
    etcd: { state: string; leaderId?: string; members?: number; raftTerm?: number } | null;
    docker: { state: string; version?: string } | null;
    fleet: unknown;
    lastError: string | null;
  }[];
  cluster: {
    etcdLeader: string | null;
    etcdMembers: number | null;
    quorum: boolean | null;
    duplicateMachineIds: string[];
  };
}

export async function statusJson(file: string): Promise<StatusJson> {
  const r = await lab(['status', '--json', '-f', file], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`lab status failed: ${r.stderr}`);
  const json: unknown = JSON.parse(r.stdout);
  // Every status the suite reads keeps to its documented shape (schemas/cli/status.json).
  assertMatchesSchema('status', json);
  return json as StatusJson;
}

/** Polls `fn` every `everyMs` until it returns a value or `deadlineMs` passes. */
export async function eventually<T>(
  fn: () => Promise<T | undefined>,
  deadlineMs: number,
  everyMs = 2000,
): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`condition not met within ${deadlineMs / 1000} s`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * A real terminal for the live screen: a private tmux server (its own socket, no user
 * config) running one command in a detached session; `close` kills only this server.
 *
 * The command's exit status is not read from tmux: Debian's tmux runs `utempter del`
 * (libutempter) when a pane's terminal closes and waits for it with SIGCHLD set to its
 * default, so the command's own SIGCHLD, when it lands in that moment, is discarded and
 * tmux never reaps it (seen here: the process a zombie for 30 s after exiting 0, reaped
 * only when another child of the server exited). A fixed sh script between tmux and the
 * command waits for it (a blocking wait, no signal involved) and writes its status to a
 * file, atomically; argv reaches the command as arguments, never as shell text.
 */
export class Terminal {
  private readonly socket = `lab-e2e-${process.pid}`;
  /** Sessions opened so far on this process's tmux server: each gets its own name. */
  private static opened = 0;
  private constructor(
    private readonly session: string,
    private readonly statusFile: string,
  ) {}

  static async open(argv: string[], size = { columns: 150, rows: 40 }): Promise<Terminal> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-e2e-tty-'));
    const t = new Terminal(`main-${++Terminal.opened}`, path.join(dir, 'status'));
    await t.tmux([
      'new-session',
      '-d',
      '-s',
      t.session,
      '-x',
      String(size.columns),
      '-y',
      String(size.rows),
      // More than one argument: tmux runs argv directly, without a shell of its own.
      'sh',
      '-c',
      'f=$1; shift; "$@"; echo $? > "$f.tmp" && mv "$f.tmp" "$f"',
      'sh',
      t.statusFile,
      ...argv,
    ]);
    // The screen stays after the command exits, so the last frame can still be read.
    await t.tmux(['set-option', '-t', t.session, 'remain-on-exit', 'on']);
    return t;
  }

  private async tmux(args: string[]): Promise<string> {
    const r = await execa('tmux', ['-L', this.socket, '-f', '/dev/null', ...args], { stdin: 'ignore' });
    return String(r.stdout);
  }

  /** The last screen captured: failures print it. */
  last = '';

  /** What the terminal shows now, as text. */
  async screen(): Promise<string> {
    this.last = await this.tmux(['capture-pane', '-p', '-t', this.session]);
    return this.last;
  }

  /** Polls the screen until `ok` accepts it; on timeout the error shows the last screen. */
  async waitFor(ok: (screen: string) => boolean, deadlineMs: number): Promise<string> {
    try {
      return await eventually(
        async () => {
          const text = await this.screen();
          return ok(text) ? text : undefined;
        },
        deadlineMs,
        500,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; the screen was:\n${this.last}`);
    }
  }

  async keys(...keys: string[]): Promise<void> {
    await this.tmux(['send-keys', '-t', this.session, ...keys]);
  }

  /** The command's exit status once it has exited, else undefined. */
  exitStatus(): Promise<number | undefined> {
    const text = existsSync(this.statusFile) ? readFileSync(this.statusFile, 'utf8').trim() : '';
    return Promise.resolve(/^\d+$/.test(text) ? Number(text) : undefined);
  }

  async close(): Promise<void> {
    const tmux = (args: string[]) =>
      execa('tmux', ['-L', this.socket, '-f', '/dev/null', ...args], { reject: false, stdin: 'ignore' });
    await tmux(['kill-session', '-t', this.session]);
    // The server goes with the last session.
    if (!String((await tmux(['list-sessions'])).stdout).trim()) await tmux(['kill-server']);
    rmSync(path.dirname(this.statusFile), { recursive: true, force: true });
  }
}

/**
 * The table row of `node` on a captured screen (a selection marker may precede the name):
 * the lowest one, as the screen drawn after a shell sits below the one from before it.
 */
export function screenRow(screen: string, node: string): string | undefined {
  return screen.split('\n').findLast((l) => new RegExp(`^[\\s>▶*]*${node}\\s`).test(l));
}

import { execa, type Options, type ResultPromise } from 'execa';
import { LabError } from '../errors.js';

/** A command that exited non-zero, timed out or could not be started. */
export class CommandError extends LabError {
  constructor(
    public readonly command: string[],
    public readonly exitCode_: number | undefined,
    public readonly stderr: string,
    reason: string,
  ) {
    super(`${command.join(' ')}: ${reason}${stderr ? `: ${tail(stderr)}` : ''}`);
  }
}

export interface RunOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  input?: string | Buffer;
  env?: Record<string, string>;
  /** Exit codes that are not failures (default: only 0). */
  okExitCodes?: number[];
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/**
 * Called with every command run, when it ends (a detached one when it starts, with
 * `detached` set and exit code -1); `--debug` and the converge tests listen here.
 */
export type CommandObserver = (
  argv: string[],
  result: { exitCode: number; ms: number; detached?: boolean },
) => void;
const observers = new Set<CommandObserver>();
export function observeCommands(fn: CommandObserver): () => void {
  observers.add(fn);
  return () => observers.delete(fn);
}

/** The programs lab is running now (not the lock holder or the connection agent). */
const children = new Set<{ kill(signal?: NodeJS.Signals): boolean }>();

/** Counts `child` among the running programs until it ends; returns it. */
export function trackChild<
  T extends { kill(signal?: NodeJS.Signals): boolean; finally(f: () => void): unknown },
>(child: T): T {
  children.add(child);
  void Promise.resolve(child.finally(() => children.delete(child))).catch(() => undefined);
  return child;
}

/**
 * Ends every program lab is running, for an exit that cannot wait for them (a second
 * Ctrl-C): an orphaned qemu-img or mmdebstrap would go on writing after lab is gone.
 */
export function killChildren(signal: NodeJS.Signals = 'SIGKILL'): number {
  let n = 0;
  for (const c of children) if (c.kill(signal)) n++;
  children.clear();
  return n;
}

function tail(text: string, lines = 6): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

/**
 * The one way `lab` runs a program: an argv array (never a shell string), LC_ALL=C,
 * a timeout on every call, and failures turned into CommandError.
 */
export async function run(file: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const argv = [file, ...args];
  const started = performance.now();
  const result = await trackChild(
    execa(file, args, {
      reject: false,
      timeout: options.timeoutMs ?? 120_000,
      cancelSignal: options.signal,
      input: options.input,
      env: { LC_ALL: 'C', ...options.env },
      stripFinalNewline: false,
    }),
  );
  const exitCode = result.exitCode ?? -1;
  for (const fn of observers) fn(argv, { exitCode, ms: performance.now() - started });
  const stderr = String(result.stderr ?? '');
  const stdout = String(result.stdout ?? '');
  if (result.failed && !(result.exitCode !== undefined && options.okExitCodes?.includes(result.exitCode))) {
    let reason: string;
    if (result.timedOut) reason = `timed out after ${options.timeoutMs ?? 120_000} ms`;
    else if (result.isCanceled) reason = 'cancelled';
    else if (result.exitCode === undefined)
      reason =
        (result as { code?: string }).code === 'ENOENT' ? 'not found' : (result.shortMessage ?? 'failed');
    else reason = `exit code ${result.exitCode}`;
    throw new CommandError(argv, result.exitCode, stderr, reason);
  }
  return { stdout, stderr, exitCode };
}

/** A program `spawnProgram` started: execa's child, a promise of its result. */
export type Child = ResultPromise;

/** How `spawnProgram` starts a program: execa's stream options, and whether Ctrl-C twice ends it. */
export type SpawnOptions = Pick<
  Options,
  | 'stdin'
  | 'stdio'
  | 'stdout'
  | 'stderr'
  | 'all'
  | 'buffer'
  | 'timeout'
  | 'cancelSignal'
  | 'forceKillAfterDelay'
  | 'env'
> & {
  /**
   * Counted among the programs a second Ctrl-C ends (default true). The lock holder
   * and the connection agent are not: the kernel drops a lock with its holder, and the
   * agent outlives the command on purpose.
   */
  track?: boolean;
  /** Started in a session of its own, outliving this process (the connection agent). */
  detached?: boolean;
};

/**
 * The way `lab` starts a program it streams to or from, or leaves running (an image
 * build's log, an unpacker's output, the lock holder, the agent): an argv array (never
 * a shell string), LC_ALL=C, and `--debug` sees it as it sees `run`. The caller owns
 * the child: it reads its exit code (`reject` is off).
 */
export function spawnProgram(file: string, args: string[], options: SpawnOptions = {}): ResultPromise {
  const { track = true, detached = false, env, ...rest } = options;
  const argv = [file, ...args];
  const started = performance.now();
  const child = execa(file, args, {
    ...rest,
    env: { LC_ALL: 'C', ...(env as Record<string, string> | undefined) },
    reject: false,
    ...(detached ? { detached: true, cleanup: false } : {}),
  });
  if (detached) {
    for (const fn of observers) fn(argv, { exitCode: -1, ms: 0, detached: true });
    child.unref();
    child.catch(() => {});
    return child;
  }
  void Promise.resolve(child).then(
    (r) => {
      for (const fn of observers) fn(argv, { exitCode: r.exitCode ?? -1, ms: performance.now() - started });
    },
    () => undefined,
  );
  return track ? trackChild(child) : child;
}

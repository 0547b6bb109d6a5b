import { XMLParser } from 'fast-xml-parser';
import { writeFile, rm, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HostError } from '../errors.js';
import { realClock, type Clock } from '../runtime/clock.js';
import { LAB_XMLNS } from '../render/types.js';
import { CommandError, run, type RunResult } from '../runtime/exec.js';
import { approveUri } from './uri.js';

export type DomainState =
  | 'running'
  | 'shut off'
  | 'paused'
  | 'crashed'
  | 'pmsuspended'
  | 'in shutdown'
  | 'blocked'
  | 'idle'
  | 'dying'
  | 'missing';

/** Parses the x86_64 domain types (`kvm`, `qemu`) that `virsh capabilities` offers. Pure. */
export function parseCapabilityDomainTypes(xml: string): string[] {
  const doc = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    isArray: (n) => ['guest', 'domain'].includes(n),
  }).parse(xml) as {
    capabilities?: { guest?: { arch?: { '@_name'?: string; domain?: { '@_type'?: string }[] } }[] };
  };
  const types = new Set<string>();
  for (const g of doc.capabilities?.guest ?? []) {
    if (g.arch?.['@_name'] !== 'x86_64') continue;
    for (const d of g.arch.domain ?? []) if (d['@_type']) types.add(d['@_type']);
  }
  return [...types].sort();
}

/**
 * libvirt's words for a connection that could not be made or was lost mid-call (libvirtd
 * restarting or crashing, a socket reset), as opposed to an operation libvirt refused. A
 * call that failed so may or may not have been carried out: it is asked again, and a verb
 * that is not idempotent names the answer that means "already done" (`settled`).
 * Sources: libvirt's virNetSocket/virNetClient messages ("End of file while reading
 * data", "Cannot recv data", "client socket is closed"), virsh's "failed to connect to the
 * hypervisor"; dmacvicar/terraform-provider-libvirt#266 (End of file while reading data).
 */
const LOST_CONNECTION = new RegExp(
  [
    // libvirtd (or a modular daemon) not listening right now: restarting. Not its
    // virtlogd/virtlockd sockets (a refused start), not "Permission denied" (access).
    String.raw`Failed to connect socket to '[^']*(?:libvirt|virtqemud|virtnetworkd|virtproxyd|virtstoraged)(?:-admin)?-sock(?:-ro)?': (?:No such file or directory|Connection refused)`,
    // The RPC connection broke mid-call (virNetSocket/virNetClient), not a QEMU monitor.
    'End of file while reading data',
    String.raw`Cannot (?:recv|write) data: (?:Connection reset by peer|Broken pipe|Input/output error)`,
    'client socket is closed',
    'no valid connection',
    String.raw`Disconnected from \S+ due to (?:end of file|I/O error|keepalive timeout)`,
  ].join('|'),
  'i',
);

/**
 * Whether virsh's error output says a connection that had been made was lost in the
 * middle of a call (not refused at connect). Pure.
 */
export function isLostMidCall(stderr: string): boolean {
  return /End of file while reading data|Cannot (?:recv|write) data|client socket is closed|Disconnected from \S+ due to/i.test(
    stderr,
  );
}

/** Whether virsh's error output says the connection to libvirt failed, not the operation. Pure. */
export function isLostConnection(stderr: string): boolean {
  return LOST_CONNECTION.test(stderr);
}

/** How a Virsh rides out a libvirtd restart or a dropped connection. */
export interface VirshRetry {
  /** How long one call keeps asking again after lost connections, in ms (0: never). */
  budgetMs: number;
  /** First pause, growing ×1.5 up to 3 s, spread ±10 %. */
  initialMs?: number;
  clock?: Clock;
  /** Told once per call, at its first retry, and once more when it then succeeds. */
  onRetry?: (info: {
    verb: string;
    error: string;
    attempt: number;
    elapsedMs: number;
    recovered: boolean;
  }) => void;
}

/** A libvirtd restart takes a few seconds (one QEMU monitor reconnect per running guest). */
export const DEFAULT_VIRSH_RETRY: VirshRetry = { budgetMs: 90_000 };

/**
 * Until a Virsh has once reached libvirt, a refused connection is more likely a libvirtd
 * that is not running at all than one restarting: it is said within this, not the budget.
 */
const FIRST_CONNECT_BUDGET_MS = 5_000;

/**
 * Talks to libvirt through virsh: verbs, not raw output. Every call has a timeout, and is
 * an argv (`-c URI`, the command, its arguments; never one COMMAND_STRING, which virsh
 * splits like a shell) with names given as named options (`--domain NAME`), so that a
 * name like `--help` or `-rf` is a name and never an option.
 *
 * R24: a call whose connection failed or dropped (libvirtd restarting) is asked again with
 * backoff within `retry.budgetMs`; never a refusal, and never a read answered from a
 * broken connection (`domstate` failing so is not "missing"). A verb that is not
 * idempotent (start, destroy, undefine, net-start…) whose earlier attempt was lost reads
 * libvirt's "already done" answer as done.
 */
export class Virsh {
  private readonly retry: VirshRetry;
  /** Has any call of this Virsh reached libvirt? */
  private reached = false;
  /** The URI every call passes with `-c`: the one given, an alias resolved, checked (S11). */
  readonly uri: string;
  /** Throws UnsafeUriError for a URI that turns checks off: no Virsh, so no call, for it. */
  constructor(
    uri: string,
    private readonly signal?: AbortSignal,
    retry: VirshRetry = DEFAULT_VIRSH_RETRY,
  ) {
    this.uri = approveUri(uri);
    this.retry = retry;
  }

  /** The same URI and retry (and its reports), not cut by a signal: for steps that must finish once begun. */
  uncancellable(): Virsh {
    const twin = new Virsh(this.uri, undefined, this.retry);
    twin.reached = this.reached;
    return twin;
  }

  /**
   * One virsh call with the retry above: for this folder's verb modules (snapshots.ts),
   * never for raw output in the layers above.
   */
  async call(
    args: string[],
    timeoutMs = 60_000,
    okExitCodes?: number[],
    opts: { settled?: RegExp; budgetMs?: number } = {},
  ): Promise<RunResult> {
    const clock = this.retry.clock ?? realClock;
    // Read at each retry: a call may find out on the way that libvirt had been reached.
    const budgetMs = () =>
      Math.min(opts.budgetMs ?? this.retry.budgetMs, this.reached ? Infinity : FIRST_CONNECT_BUDGET_MS);
    const verb = args[0] ?? '';
    const started = clock.now();
    let delayMs = this.retry.initialMs ?? 250;
    let lost: string | undefined;
    for (let attempt = 1; ; attempt++) {
      let result: RunResult | undefined;
      let error: CommandError | undefined;
      try {
        result = await run('virsh', ['-q', '-c', this.uri, ...args], {
          timeoutMs,
          ...(this.signal ? { signal: this.signal } : {}),
          ...(okExitCodes ? { okExitCodes } : {}),
        });
      } catch (err) {
        if (!(err instanceof CommandError)) throw err;
        error = err;
      }
      const stderr = error?.stderr ?? result?.stderr ?? '';
      const failed = error !== undefined || result?.exitCode !== 0;
      // libvirt answered (done, or refused in its own words): a later refused connection
      // is libvirtd going away, not a daemon that was never there.
      // So is a connection lost in the middle of a call: it had been made. (A revert lost
      // after 5 s in flight was else given only the first-connect budget, and failed.)
      if (
        !failed ||
        (stderr && !isLostConnection(stderr) && !/failed to connect to the hypervisor/i.test(stderr)) ||
        isLostMidCall(stderr)
      )
        this.reached = true;
      // The attempt whose answer was lost did the work: libvirt says it is already done.
      if (failed && lost && opts.settled?.test(stderr)) {
        this.tell(verb, lost, attempt, clock.now() - started, true);
        return { stdout: '', stderr, exitCode: 0 };
      }
      // An "ok" non-zero exit (domstate of a missing domain) must not hide a lost connection.
      if (!failed || !isLostConnection(stderr)) {
        if (error) throw error;
        if (lost) this.tell(verb, lost, attempt, clock.now() - started, true);
        return result!;
      }
      const elapsed = clock.now() - started;
      if (elapsed + delayMs > budgetMs() || this.signal?.aborted)
        throw error ?? new CommandError(['virsh', ...args], result?.exitCode, stderr, 'lost connection');
      if (!lost) {
        lost = stderr.trim().split('\n').at(-1) ?? 'lost connection';
        this.tell(verb, lost, attempt, elapsed, false);
      }
      const random = clock.random ? clock.random() : 0.5;
      await clock.sleep(delayMs * (1 + 0.2 * (random - 0.5)), this.signal);
      delayMs = Math.min(delayMs * 1.5, 3000);
    }
  }

  private tell(verb: string, error: string, attempt: number, elapsedMs: number, recovered: boolean) {
    this.retry.onRetry?.({ verb, error, attempt, elapsedMs, recovered });
  }

  /** Fails with a HostError that says what to do when libvirt cannot be reached. */
  async check(): Promise<string> {
    try {
      // A libvirtd that is not running is said at once, not after the calls' long budget.
      const r = await this.call(['version', '--daemon'], 20_000, undefined, { budgetMs: 5_000 });
      return r.stdout.trim();
    } catch (err) {
      if (err instanceof CommandError && err.message.includes('not found')) {
        throw new HostError('virsh is not installed', {
          hint: 'install libvirt-clients (Debian/Ubuntu) or libvirt-client (Fedora)',
          cause: err,
        });
      }
      throw new HostError(`cannot reach libvirt at ${this.uri}`, {
        hint: 'is libvirtd (or virtqemud) running, and may this user use it? Set LIBVIRT_DEFAULT_URI or `libvirt:` in the Labfile to choose another.',
        cause: err,
      });
    }
  }

  async capabilities(): Promise<string[]> {
    return parseCapabilityDomainTypes((await this.call(['capabilities'])).stdout);
  }

  async listDomains(): Promise<string[]> {
    const r = await this.call(['list', '--all', '--name']);
    return r.stdout
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean);
  }

  /** Every domain's name and state in one call (`virsh list --all`). */
  async listDomainStates(): Promise<Map<string, DomainState>> {
    return parseDomainList((await this.call(['list', '--all'])).stdout);
  }

  async dumpXml(name: string): Promise<string | undefined> {
    const r = await this.call(['dumpxml', '--inactive', '--domain', name], 60_000, [1]);
    return r.exitCode === 0 ? r.stdout : undefined;
  }

  /** The lab metadata element of a domain, or undefined when it has none (not ours). */
  async labMetadata(name: string): Promise<string | undefined> {
    const r = await this.call(['metadata', '--domain', name, '--uri', LAB_XMLNS], 60_000, [1]);
    return r.exitCode === 0 && r.stdout.trim() ? r.stdout : undefined;
  }

  async domState(name: string): Promise<DomainState> {
    const r = await this.call(['domstate', '--domain', name], 60_000, [1]);
    if (r.exitCode !== 0) return 'missing';
    return r.stdout.trim() as DomainState;
  }

  async domUuid(name: string): Promise<string | undefined> {
    const r = await this.call(['domuuid', '--domain', name], 60_000, [1]);
    return r.exitCode === 0 ? r.stdout.trim() : undefined;
  }

  /** Defines (or redefines) a domain from XML text, via a private temp file. */
  async define(xml: string): Promise<void> {
    await this.withXmlFile(xml, (file) => this.call(['define', '--file', file], 180_000));
  }

  async start(name: string): Promise<void> {
    await this.call(['start', '--domain', name], 120_000, undefined, {
      settled: /domain is already active/i,
    });
  }

  /** Hard stop; fine when it is already off. */
  async destroy(name: string): Promise<void> {
    const state = await this.domState(name);
    if (state === 'missing' || state === 'shut off') return;
    await this.call(['destroy', '--domain', name], 60_000, undefined, {
      settled: /domain is not running/i,
    });
  }

  async undefine(name: string): Promise<void> {
    if ((await this.domState(name)) === 'missing') return;
    const gone = { settled: /failed to get domain|Domain not found/i };
    // A checkpoint's snapshots live in the node's overlay, which down deletes: their
    // libvirt metadata goes with the domain (else: "cannot delete inactive domain with
    // N snapshots").
    const all = ['undefine', '--domain', name, '--snapshots-metadata'];
    await this.call([...all, '--nvram'], 60_000, [1], gone).then(async (r) => {
      if (r.exitCode !== 0) await this.call(all, 60_000, undefined, gone);
    });
  }

  async listNetworks(): Promise<string[]> {
    const r = await this.call(['net-list', '--all', '--name']);
    return r.stdout
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean);
  }

  async netDumpXml(name: string): Promise<string | undefined> {
    const r = await this.call(['net-dumpxml', '--network', name], 60_000, [1]);
    return r.exitCode === 0 ? r.stdout : undefined;
  }

  async netIsActive(name: string): Promise<boolean> {
    const r = await this.call(['net-info', '--network', name], 60_000, [1]);
    return r.exitCode === 0 && /^Active:\s+yes/m.test(r.stdout);
  }

  async netDefine(xml: string): Promise<void> {
    await this.withXmlFile(xml, (file) => this.call(['net-define', '--file', file]));
  }

  async netStart(name: string): Promise<void> {
    await this.call(['net-start', '--network', name], 60_000, undefined, {
      settled: /network is already active/i,
    });
  }

  async netDestroy(name: string): Promise<void> {
    if (await this.netIsActive(name))
      await this.call(['net-destroy', '--network', name], 60_000, undefined, {
        settled: /network is not active/i,
      });
  }

  async netUndefine(name: string): Promise<void> {
    if ((await this.listNetworks()).includes(name))
      await this.call(['net-undefine', '--network', name], 60_000, undefined, {
        settled: /failed to get network|Network not found/i,
      });
  }

  /** Runs `fn` with `xml` in a private temporary file (virsh reads objects from files). */
  async withXmlFile<T>(xml: string, fn: (file: string) => Promise<T>): Promise<T> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lab-xml-'));
    const file = path.join(dir, 'object.xml');
    try {
      await writeFile(file, xml, { mode: 0o600 });
      return await fn(file);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/**
 * Parses `virsh list --all`: a header, a dashed rule, then `Id Name State` rows whose Id is
 * `-` for inactive domains and whose state may have a space (`shut off`). Pure.
 */
export function parseDomainList(stdout: string): Map<string, DomainState> {
  const out = new Map<string, DomainState>();
  for (const line of stdout.split('\n')) {
    const m = /^\s*(?:\d+|-)\s+(\S+)\s+(\S.*?)\s*$/.exec(line);
    if (m) out.set(m[1]!, m[2] as DomainState);
  }
  return out;
}

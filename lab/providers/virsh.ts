import { XMLParser } from 'fast-xml-parser';
import { writeFile, rm, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HostError } from '../errors.js';
import { LAB_XMLNS } from '../render/types.js';
import { CommandError, run } from './exec.js';

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

/** The libvirt URI lab talks to: the Labfile's, else LIBVIRT_DEFAULT_URI, else qemu:///system. */
export function resolveUri(fromLabfile?: string): string {
  return fromLabfile || process.env.LIBVIRT_DEFAULT_URI || 'qemu:///system';
}

/** Options in a libvirt URI that weaken security unless the user says so (LAB_ALLOW_INSECURE_URI=1). */
export function checkUriSafety(uri: string): string | undefined {
  if (/[?&]no_verify=1/.test(uri)) return 'no_verify=1 turns off TLS certificate checks';
  if (/^[a-z]+\+tcp:\/\//.test(uri)) return 'plain TCP transport is unencrypted and unauthenticated';
  return undefined;
}

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
 * Talks to libvirt through virsh: verbs, not raw output. Every call has a timeout, and is
 * an argv (`-c URI`, the command, its arguments; never one COMMAND_STRING, which virsh
 * splits like a shell) with names given as named options (`--domain NAME`), so that a
 * name like `--help` or `-rf` is a name and never an option.
 */
export class Virsh {
  constructor(
    readonly uri: string,
    private readonly signal?: AbortSignal,
  ) {}

  private async virsh(args: string[], timeoutMs = 60_000, okExitCodes?: number[]) {
    return run('virsh', ['-q', '-c', this.uri, ...args], {
      timeoutMs,
      ...(this.signal ? { signal: this.signal } : {}),
      ...(okExitCodes ? { okExitCodes } : {}),
    });
  }

  /** Fails with a HostError that says what to do when libvirt cannot be reached. */
  async check(): Promise<string> {
    try {
      const r = await this.virsh(['version', '--daemon'], 20_000);
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
    return parseCapabilityDomainTypes((await this.virsh(['capabilities'])).stdout);
  }

  async listDomains(): Promise<string[]> {
    const r = await this.virsh(['list', '--all', '--name']);
    return r.stdout
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean);
  }

  /** Every domain's name and state in one call (`virsh list --all`). */
  async listDomainStates(): Promise<Map<string, DomainState>> {
    return parseDomainList((await this.virsh(['list', '--all'])).stdout);
  }

  async dumpXml(name: string): Promise<string | undefined> {
    const r = await this.virsh(['dumpxml', '--inactive', '--domain', name], 60_000, [1]);
    return r.exitCode === 0 ? r.stdout : undefined;
  }

  /** The lab metadata element of a domain, or undefined when it has none (not ours). */
  async labMetadata(name: string): Promise<string | undefined> {
    const r = await this.virsh(['metadata', '--domain', name, '--uri', LAB_XMLNS], 60_000, [1]);
    return r.exitCode === 0 && r.stdout.trim() ? r.stdout : undefined;
  }

  async domState(name: string): Promise<DomainState> {
    const r = await this.virsh(['domstate', '--domain', name], 60_000, [1]);
    if (r.exitCode !== 0) return 'missing';
    return r.stdout.trim() as DomainState;
  }

  async domUuid(name: string): Promise<string | undefined> {
    const r = await this.virsh(['domuuid', '--domain', name], 60_000, [1]);
    return r.exitCode === 0 ? r.stdout.trim() : undefined;
  }

  /** Defines (or redefines) a domain from XML text, via a private temp file. */
  async define(xml: string): Promise<void> {
    await this.withXmlFile(xml, (file) => this.virsh(['define', '--file', file], 180_000));
  }

  async start(name: string): Promise<void> {
    await this.virsh(['start', '--domain', name], 120_000);
  }

  /** Hard stop; fine when it is already off. */
  async destroy(name: string): Promise<void> {
    const state = await this.domState(name);
    if (state === 'missing' || state === 'shut off') return;
    await this.virsh(['destroy', '--domain', name], 60_000);
  }

  async undefine(name: string): Promise<void> {
    if ((await this.domState(name)) === 'missing') return;
    await this.virsh(['undefine', '--domain', name, '--nvram'], 60_000, [1]).then(async (r) => {
      if (r.exitCode !== 0) await this.virsh(['undefine', '--domain', name], 60_000);
    });
  }

  async listNetworks(): Promise<string[]> {
    const r = await this.virsh(['net-list', '--all', '--name']);
    return r.stdout
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean);
  }

  async netDumpXml(name: string): Promise<string | undefined> {
    const r = await this.virsh(['net-dumpxml', '--network', name], 60_000, [1]);
    return r.exitCode === 0 ? r.stdout : undefined;
  }

  async netIsActive(name: string): Promise<boolean> {
    const r = await this.virsh(['net-info', '--network', name], 60_000, [1]);
    return r.exitCode === 0 && /^Active:\s+yes/m.test(r.stdout);
  }

  async netDefine(xml: string): Promise<void> {
    await this.withXmlFile(xml, (file) => this.virsh(['net-define', '--file', file]));
  }

  async netStart(name: string): Promise<void> {
    await this.virsh(['net-start', '--network', name]);
  }

  async netDestroy(name: string): Promise<void> {
    if (await this.netIsActive(name)) await this.virsh(['net-destroy', '--network', name]);
  }

  async netUndefine(name: string): Promise<void> {
    if ((await this.listNetworks()).includes(name)) await this.virsh(['net-undefine', '--network', name]);
  }

  private async withXmlFile<T>(xml: string, fn: (file: string) => Promise<T>): Promise<T> {
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

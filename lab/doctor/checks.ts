/**
 * What `lab doctor` concludes from what it found on the host: one check per question,
 * each with what to do when it fails. Pure: the facts come in (doctor.ts gathers them).
 */
import type { LabSpec, NetworkSpec } from '../plan/model.js';

export type CheckStatus = 'ok' | 'fail' | 'skip' | 'warn';

/** One answer of `lab doctor`; the shape of `--json` (schemas/cli/doctor.json). */
export interface DoctorCheck {
  id: string;
  what: string;
  status: CheckStatus;
  detail: string;
  /** The Debian/Ubuntu package that fixes it. */
  package?: string;
  hint?: string;
}

export interface DoctorReport {
  /** No check failed (warnings and skips do not count). */
  ok: boolean;
  checks: DoctorCheck[];
}

export function report(checks: DoctorCheck[]): DoctorReport {
  return { ok: !checks.some((c) => c.status === 'fail'), checks };
}

/** When a program is needed: always, to build an image, for a managed network. */
export type ProgramNeed = 'always' | 'build' | 'managed';

export interface ProgramSpec {
  id: string;
  what: string;
  /** Any one of them will do, the first preferred. */
  programs: string[];
  package: string;
  need: ProgramNeed;
  hint?: string;
  /** Folders looked in beside PATH. */
  dirs?: string[];
}

/**
 * The host programs lab runs. Packages as scripts/install-host-deps.sh installs them,
 * checked with `dpkg -S` on Debian 12; genisoimage is not installed there (apt-cache).
 * gzip, cp, flock and bash are not here: Debian's essential packages always have them.
 */
export const PROGRAMS: readonly ProgramSpec[] = [
  { id: 'qemu-img', what: 'qemu-img', programs: ['qemu-img'], package: 'qemu-utils', need: 'always' },
  {
    id: 'qemu-system',
    what: 'qemu-system-x86_64',
    programs: ['qemu-system-x86_64'],
    package: 'qemu-system-x86',
    need: 'always',
  },
  { id: 'virsh', what: 'virsh', programs: ['virsh'], package: 'libvirt-clients', need: 'always' },
  {
    id: 'iso-tool',
    what: 'ISO tool',
    programs: ['xorriso', 'genisoimage'],
    package: 'xorriso',
    need: 'always',
    hint: 'genisoimage (package genisoimage) does as well',
  },
  { id: 'gpgv', what: 'gpgv', programs: ['gpgv'], package: 'gpgv', need: 'always' },
  { id: 'xz', what: 'xz', programs: ['xz'], package: 'xz-utils', need: 'always' },
  { id: 'bzip2', what: 'bzip2', programs: ['bzip2'], package: 'bzip2', need: 'always' },
  { id: 'mmdebstrap', what: 'mmdebstrap', programs: ['mmdebstrap'], package: 'mmdebstrap', need: 'build' },
  {
    id: 'dnsmasq',
    what: 'dnsmasq',
    programs: ['dnsmasq'],
    package: 'dnsmasq-base',
    need: 'managed',
    // libvirtd runs it, not this user, whose PATH often lacks sbin.
    dirs: ['/usr/sbin', '/sbin'],
  },
  { id: 'ip', what: 'ip', programs: ['ip'], package: 'iproute2', need: 'managed' },
];

const NEED_WORDS: Record<Exclude<ProgramNeed, 'always'>, string> = {
  build: 'needed only to build images',
  managed: 'needed only for managed networks',
};

/**
 * Whether the Labfile needs what is needed only sometimes: `why` when it does, `false`
 * when it does not, undefined without a Labfile.
 */
export interface LabNeeds {
  build?: string | false;
  managed?: string | false;
}

/** What the lab needs of the sometimes-needed programs; `mustBuild`: templates whose image is not built yet. */
export function labNeeds(lab: LabSpec | undefined, mustBuild: string[]): LabNeeds {
  if (!lab) return {};
  return {
    build: mustBuild.length > 0 && `this Labfile's ${mustBuild.join(', ')} image must be built`,
    managed: lab.network.mode === 'managed' && 'this Labfile has a managed network',
  };
}

/** One program's check: `found` is where it is (undefined: nowhere). */
export function programCheck(spec: ProgramSpec, found: string | undefined, needs: LabNeeds): DoctorCheck {
  const base = { id: `program.${spec.id}`, what: spec.what };
  if (found) return { ...base, status: 'ok', detail: found };
  const missing = `${spec.programs.join(' or ')} not found on PATH`;
  const fix = { package: spec.package, ...(spec.hint ? { hint: spec.hint } : {}) };
  if (spec.need === 'always') return { ...base, status: 'fail', detail: missing, ...fix };
  const why = needs[spec.need];
  if (why) return { ...base, status: 'fail', detail: `${missing}: ${why}`, ...fix };
  if (why === false)
    return { ...base, status: 'skip', detail: `${missing}; not needed by this Labfile`, ...fix };
  return { ...base, status: 'warn', detail: `${missing} (${NEED_WORDS[spec.need]})`, ...fix };
}

/** What one libvirt call (`virsh capabilities`, no retry) came to. */
export type LibvirtProbe =
  | { kind: 'answered'; domainTypes: string[] }
  | { kind: 'failed'; error: string; timedOut: boolean }
  /** The URI turns checks off: lab refuses it before any call. */
  | { kind: 'refused'; error: string; hint?: string }
  | { kind: 'no-virsh' };

/** virsh's last error line, without its `error: ` prefix. */
function lastErrorLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return (lines.at(-1) ?? '').replace(/^error:\s*/, '');
}

const START_LIBVIRT =
  'start libvirtd: systemctl start libvirtd (virtqemud.socket with modular daemons); or name another URI with --uri or LIBVIRT_DEFAULT_URI';

export function libvirtCheck(uri: string, probe: LibvirtProbe, timeoutMs: number): DoctorCheck {
  const base = { id: 'libvirt', what: `libvirt at ${uri}` };
  switch (probe.kind) {
    case 'answered':
      return {
        ...base,
        status: 'ok',
        detail: `answers; x86_64 guests: ${probe.domainTypes.join(', ') || 'none'}`,
      };
    case 'refused':
      return { ...base, status: 'fail', detail: probe.error, ...(probe.hint ? { hint: probe.hint } : {}) };
    case 'no-virsh':
      return {
        ...base,
        status: 'skip',
        detail: 'not asked: virsh is not installed',
        package: 'libvirt-clients',
      };
  }
  const line = lastErrorLine(probe.error);
  if (probe.timedOut)
    return {
      ...base,
      status: 'fail',
      detail: `not reachable: no answer within ${timeoutMs / 1000} s`,
      hint: 'libvirtd may be hung: systemctl status libvirtd (or virtqemud)',
    };
  // libvirt's words when the socket or polkit keeps this user out.
  if (
    /permission denied|authentication (?:unavailable|failed)|not authorized|access denied|polkit/i.test(line)
  )
    return {
      ...base,
      status: 'fail',
      detail: `not allowed: ${line}`,
      hint: 'add this user to the libvirt group (adduser USER libvirt) and log in again, or use qemu:///session',
    };
  return { ...base, status: 'fail', detail: `not reachable: ${line || 'virsh failed'}`, hint: START_LIBVIRT };
}

/** What was found about KVM: chooseAccelerator's (or probeKvm's) answer, or why it was not asked. */
export type KvmFinding =
  | { kind: 'probed'; usable: boolean; reason: string; libvirtAsked: boolean }
  /** libvirt answered, but offers nothing that runs an x86_64 guest. */
  | { kind: 'error'; error: string; hint?: string }
  | { kind: 'not-asked'; reason: string };

/** Whether KVM runs guests, judged against what the Labfile asks for. */
export function kvmCheck(found: KvmFinding, wanted: LabSpec['accelerator']): DoctorCheck {
  const base = { id: 'kvm', what: 'KVM' };
  if (found.kind === 'error')
    return {
      ...base,
      status: 'fail',
      detail: found.error,
      package: 'qemu-system-x86',
      ...(found.hint ? { hint: found.hint } : {}),
    };
  if (found.kind === 'not-asked') return { ...base, status: 'skip', detail: found.reason };
  const reason = found.reason.replace(/\s*\n\s*/g, ' ').trim();
  const note = found.libvirtAsked ? '' : ' (libvirt not asked: it did not answer)';
  if (wanted === 'tcg')
    return { ...base, status: 'ok', detail: `not used: the Labfile asks for TCG (${reason})${note}` };
  if (found.usable) return { ...base, status: 'ok', detail: `${reason}${note}` };
  if (wanted === 'kvm')
    return {
      ...base,
      status: 'fail',
      detail: `the Labfile asks for KVM, which is not usable here: ${reason}${note}`,
      hint: 'accelerator: auto lets lab fall back to TCG',
    };
  return {
    ...base,
    status: 'warn',
    detail: `not usable: ${reason}${note}; guests run under TCG software emulation (much slower)`,
  };
}

/** What /sys/class/net says of an interface. */
export interface InterfaceFacts {
  exists: boolean;
  bridge: boolean;
  /** IFF_UP in its flags: set up by an administrator. */
  adminUp: boolean;
  /** /sys/class/net/NAME/operstate: up, down, unknown, lowerlayerdown... */
  operstate: string;
}

/** Bridge mode: the Labfile's bridge exists, is a bridge and is up. */
export function bridgeCheck(net: NetworkSpec, facts: InterfaceFacts | undefined): DoctorCheck {
  const base = { id: 'bridge', what: `bridge ${net.bridge}` };
  if (net.mode === 'managed' || !facts)
    return { ...base, status: 'skip', detail: 'managed network: lab creates the bridge itself' };
  if (!facts.exists)
    return {
      ...base,
      status: 'fail',
      detail: `bridge ${net.bridge} does not exist on this host`,
      hint: `create it first (ip link add ${net.bridge} type bridge), or use network.mode: managed`,
    };
  if (!facts.bridge)
    return {
      ...base,
      status: 'fail',
      detail: `${net.bridge} exists but is not a bridge`,
      hint: 'name a bridge in network.bridge, or use network.mode: managed',
    };
  if (!facts.adminUp)
    return {
      ...base,
      status: 'fail',
      detail: `bridge ${net.bridge} is down`,
      hint: `ip link set ${net.bridge} up`,
    };
  // A bridge has carrier only while one of its ports is up (Linux br_port_carrier_check).
  if (facts.operstate !== 'up' && facts.operstate !== 'unknown')
    return {
      ...base,
      status: 'warn',
      detail: `up, but no port of it is up (operstate ${facts.operstate}): the nodes reach the LAN only through a host interface that joins it`,
    };
  return { ...base, status: 'ok', detail: `a bridge, ${facts.operstate}` };
}

/** MemAvailable from /proc/meminfo, in MiB, or undefined. */
export function parseMemAvailableMiB(meminfo: string): number | undefined {
  const m = /^MemAvailable:\s+(\d+) kB$/m.exec(meminfo);
  return m ? Math.floor(Number(m[1]) / 1024) : undefined;
}

/**
 * Host memory a guest takes beyond its RAM under TCG: its translation cache, which
 * lab caps at 256 MiB in the domain XML (render/domain-xml.ts, `tb-cache`); QEMU's
 * default would be 1 GiB per guest.
 */
export const TCG_CACHE_MIB = 256;

const mib = (n: number) => `${Math.round(n)} MiB`;

/**
 * Free memory for the Labfile's nodes: their RAM, and the translation cache of each
 * under TCG. `existing` nodes may be running already, their memory no longer available.
 */
export function memoryCheck(
  nodes: { memoryMiB: number }[],
  opts: { tcg: boolean; availableMiB: number | undefined; existing: number },
): DoctorCheck {
  const base = { id: 'memory', what: 'memory' };
  if (opts.availableMiB === undefined)
    return { ...base, status: 'skip', detail: 'MemAvailable not found in /proc/meminfo' };
  const needMiB = nodes.reduce((sum, n) => sum + n.memoryMiB + (opts.tcg ? TCG_CACHE_MIB : 0), 0);
  const how = `${nodes.length} node(s) need ${mib(needMiB)}${opts.tcg ? ` (under TCG, ${TCG_CACHE_MIB} MiB of translation cache each)` : ''}`;
  const detail = `${how}, ${mib(opts.availableMiB)} available`;
  if (needMiB <= opts.availableMiB) return { ...base, status: 'ok', detail };
  const hint = 'free memory, give the nodes less (defaults.memory), or run fewer nodes';
  if (opts.existing > 0)
    return {
      ...base,
      status: 'warn',
      detail: `${detail}; ${opts.existing} of them exist already and may be running (their memory is in use)`,
      hint,
    };
  return { ...base, status: 'fail', detail: `not enough: ${detail}`, hint };
}

/** Free disk under the state folder for the nodes not made yet (`reserveBytes` each, as `lab up` demands). */
export function diskCheck(opts: {
  under: string;
  freeBytes: number | undefined;
  newNodes: number;
  reserveBytes: number;
}): DoctorCheck {
  const base = { id: 'disk', what: 'disk' };
  if (opts.freeBytes === undefined)
    return { ...base, status: 'skip', detail: `cannot tell the free space under ${opts.under}` };
  const need = opts.newNodes * opts.reserveBytes;
  const detail = `${mib(opts.freeBytes / 1024 ** 2)} free under ${opts.under}; ${opts.newNodes} new node(s) need at least ${mib(need / 1024 ** 2)}`;
  if (opts.freeBytes >= need) return { ...base, status: 'ok', detail };
  return {
    ...base,
    status: 'fail',
    detail: `not enough: ${detail}`,
    hint: 'free some space, or point LAB_STATE_DIR at a larger disk',
  };
}

/** The checks that need a Labfile, skipped for want of one, saying so. */
export function labfileSkips(why: string): DoctorCheck[] {
  return [
    { id: 'bridge', what: 'bridge', status: 'skip', detail: why },
    { id: 'memory', what: 'memory', status: 'skip', detail: why },
    { id: 'disk', what: 'disk', status: 'skip', detail: why },
  ];
}

/**
 * `lab doctor`'s look at the host: which programs are on PATH, one libvirt call, whether
 * KVM runs a guest, the Labfile's bridge, free memory and disk. checks.ts judges.
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import path from 'node:path';
import { NODE_DISK_RESERVE } from '../apply/host-paths.js';
import { BadInputError, describeError, LabError, LabfileError } from '../errors.js';
import { LAB_NAME_RE } from '../labfile/schema.js';
import type { LabSpec } from '../plan/model.js';
import { chooseAccelerator, interfaceExists, isBridge, probeKvm, type KvmProbe } from '../providers/host.js';
import { imageReady } from '../providers/images.js';
import { resolveUri, UnsafeUriError } from '../providers/uri.js';
import { parseCapabilityDomainTypes, Virsh } from '../providers/virsh.js';
import { CommandError } from '../runtime/exec.js';
import { loadLab } from '../spec/load.js';
import { LabDir, stateRoot } from '../store/lab-dir.js';
import { readState } from '../store/state-file.js';
import {
  bridgeCheck,
  diskCheck,
  kvmCheck,
  labfileSkips,
  labNeeds,
  libvirtCheck,
  memoryCheck,
  parseMemAvailableMiB,
  programCheck,
  PROGRAMS,
  report,
  type DoctorCheck,
  type DoctorReport,
  type InterfaceFacts,
  type KvmFinding,
  type LibvirtProbe,
} from './checks.js';

/** libvirt is asked once, and not for longer: a libvirtd that is down is said at once. */
export const LIBVIRT_PROBE_TIMEOUT_MS = 2000;

/** What the doctor looks at: a Labfile (or why there is none) and the URI. */
export interface DoctorTarget {
  labfile?: string;
  /** Why there is no Labfile: a skip, or a warning (a lab named that has none). */
  noLabfile?: { status: 'skip' | 'warn'; detail: string; hint?: string };
  /** --uri: before the Labfile's. */
  uri?: string;
  /** The URI a lab's state recorded: after the Labfile's. */
  recordedUri?: string;
}

/** `--lab NAME`: the Labfile and URI its state recorded. */
export async function labTarget(name: string): Promise<DoctorTarget> {
  if (!LAB_NAME_RE.test(name))
    throw new BadInputError(
      `--lab ${JSON.stringify(name)}: not a lab name (lowercase letters, digits and -)`,
    );
  const dir = new LabDir(name);
  const { state } = await readState(dir.stateFile);
  const none = (detail: string, hint?: string): DoctorTarget['noLabfile'] => ({
    status: 'warn',
    detail: `${detail}: the checks of its Labfile are skipped`,
    ...(hint ? { hint } : {}),
  });
  if (!state)
    return {
      noLabfile: none(`no recorded state for lab ${name} (${dir.stateFile})`, 'name its Labfile: -f FILE'),
    };
  const recordedUri = state.uri;
  if (!state.labfile)
    return { recordedUri, noLabfile: none(`lab ${name} has no recorded Labfile`, 'name it: -f FILE') };
  if (!existsSync(state.labfile))
    return {
      recordedUri,
      noLabfile: none(
        `lab ${name} was brought up from ${state.labfile}, which is gone`,
        'name its Labfile: -f FILE',
      ),
    };
  return { labfile: state.labfile, recordedUri };
}

/** The first of `programs` in PATH's folders (and `dirs`) that this user may run. */
export function findProgram(
  programs: string[],
  pathEnv = process.env.PATH ?? '',
  dirs: string[] = [],
): string | undefined {
  const folders = [...pathEnv.split(path.delimiter).filter((d) => path.isAbsolute(d)), ...dirs];
  for (const program of programs)
    for (const dir of folders) {
      const file = path.join(dir, program);
      try {
        accessSync(file, constants.X_OK);
        return file;
      } catch {
        /* not here */
      }
    }
  return undefined;
}

/** One `virsh capabilities` with no retry and a short timeout: reachable, allowed, and what it offers. */
async function probeLibvirt(uri: string, timeoutMs: number): Promise<{ probe: LibvirtProbe; uri: string }> {
  let virsh: Virsh;
  try {
    virsh = new Virsh(uri, undefined, { budgetMs: 0 });
  } catch (err) {
    // A URI that turns libvirt's checks off is refused as by every command (exit 2, S11).
    if (err instanceof UnsafeUriError) throw err;
    const hint = err instanceof LabError ? err.hint : undefined;
    return { uri, probe: { kind: 'refused', error: describeError(err), ...(hint ? { hint } : {}) } };
  }
  try {
    // Raw output of a providers call: Virsh has no verb that takes a timeout.
    const r = await virsh.call(['capabilities'], timeoutMs);
    return { uri: virsh.uri, probe: { kind: 'answered', domainTypes: parseCapabilityDomainTypes(r.stdout) } };
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
    const timedOut = /timed out after/.test(err.message);
    return { uri: virsh.uri, probe: { kind: 'failed', error: err.stderr || err.message, timedOut } };
  }
}

/**
 * Whether KVM runs guests: as `lab up` decides (chooseAccelerator), or by the test guest
 * alone when libvirt did not answer. `probed` is the test guest's run, started beside the
 * libvirt call (undefined: no qemu-system-x86_64 to run it).
 */
async function findKvm(libvirt: LibvirtProbe, probed: Promise<KvmProbe> | undefined): Promise<KvmFinding> {
  const noQemu = 'qemu-system-x86_64 is not installed';
  if (libvirt.kind === 'answered') {
    let used: KvmProbe | undefined;
    try {
      const choice = await chooseAccelerator(
        { capabilities: () => Promise.resolve(libvirt.domainTypes) },
        'auto',
        async () => (used = (await probed) ?? { usable: false, reason: noQemu, ms: 0 }),
      );
      return {
        kind: 'probed',
        usable: choice.type === 'kvm',
        reason: used?.reason ?? 'libvirt does not offer KVM here',
        libvirtAsked: true,
      };
    } catch (err) {
      const hint = err instanceof LabError ? err.hint : undefined;
      return { kind: 'error', error: describeError(err), ...(hint ? { hint } : {}) };
    }
  }
  if (!probed) return { kind: 'not-asked', reason: `not tried: ${noQemu}` };
  const r = await probed;
  return { kind: 'probed', usable: r.usable, reason: r.reason, libvirtAsked: false };
}

function readInterface(name: string): InterfaceFacts {
  const sys = (file: string) => {
    try {
      return readFileSync(path.join('/sys/class/net', name, file), 'utf8').trim();
    } catch {
      return '';
    }
  };
  return {
    exists: interfaceExists(name),
    bridge: isBridge(name),
    adminUp: (Number.parseInt(sys('flags'), 16) & 0x1) === 1, // IFF_UP
    operstate: sys('operstate') || 'unknown',
  };
}

/** Free bytes for this user on the file system of `dir`, or of its nearest existing parent. */
async function freeBytesUnder(dir: string): Promise<number | undefined> {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const fs = await statfs(d).catch(() => undefined);
    if (fs) return fs.bavail * fs.bsize;
    if (d === path.dirname(d)) return undefined;
  }
}

function readMemAvailableMiB(): number | undefined {
  try {
    return parseMemAvailableMiB(readFileSync('/proc/meminfo', 'utf8'));
  } catch {
    return undefined;
  }
}

/** Templates whose image lab up would have to build (not in the cache yet), by name. */
function imagesToBuild(lab: LabSpec): string[] {
  const names = new Set<string>();
  for (const n of lab.nodes)
    if ('build' in n.template.image && !imageReady(n.template)) names.add(n.template.name);
  return [...names].sort();
}

export interface DoctorDeps {
  /** The KVM test guest (providers/host.ts probeKvm). */
  probeKvm?: () => Promise<KvmProbe>;
}

/** Every check, in a fixed order: Labfile, programs, libvirt, KVM, bridge, memory, disk. */
export async function doctor(target: DoctorTarget, deps: DoctorDeps = {}): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  let lab: LabSpec | undefined;
  if (target.labfile) {
    try {
      lab = loadLab(target.labfile).lab;
      checks.push({
        id: 'labfile',
        what: 'Labfile',
        status: 'ok',
        detail: `${target.labfile}: lab ${lab.name}, ${lab.nodes.length} node(s), ${lab.network.mode} network`,
      });
    } catch (err) {
      if (!(err instanceof LabError)) throw err;
      // A LabfileError's lines start with file:line:col; the caret display is left out.
      const more =
        err instanceof LabfileError && err.issues.length > 1 ? ` (and ${err.issues.length - 1} more)` : '';
      const first = describeError(err).split('\n')[0]!;
      checks.push({
        id: 'labfile',
        what: 'Labfile',
        status: 'fail',
        detail: `${first.startsWith(target.labfile) ? first : `${target.labfile}: ${first}`}${more}`,
        hint: `lab validate -f ${target.labfile} lists every problem`,
      });
    }
  } else {
    const none = target.noLabfile ?? { status: 'skip' as const, detail: 'none given' };
    checks.push({ id: 'labfile', what: 'Labfile', ...none });
  }

  const needs = labNeeds(lab, lab ? imagesToBuild(lab) : []);
  const found = new Map(PROGRAMS.map((p) => [p.id, findProgram(p.programs, process.env.PATH, p.dirs)]));
  for (const p of PROGRAMS) checks.push(programCheck(p, found.get(p.id), needs));

  const uri = resolveUri(target.uri ?? lab?.uri ?? target.recordedUri);
  // The test guest runs while libvirt is asked: doctor takes the longer of the two, not both.
  const probe = deps.probeKvm ?? (() => probeKvm());
  const probed = found.get('qemu-system')
    ? probe().catch((err: unknown): KvmProbe => ({ usable: false, reason: describeError(err), ms: 0 }))
    : undefined;
  const libvirt = found.get('virsh')
    ? await probeLibvirt(uri, LIBVIRT_PROBE_TIMEOUT_MS)
    : { uri, probe: { kind: 'no-virsh' } as const };
  checks.push(libvirtCheck(libvirt.uri, libvirt.probe, LIBVIRT_PROBE_TIMEOUT_MS));

  const wanted = lab?.accelerator ?? 'auto';
  const kvm = await findKvm(libvirt.probe, probed);
  checks.push(kvmCheck(kvm, wanted));

  if (!lab) {
    checks.push(...labfileSkips('no Labfile to check it for'));
    return report(checks);
  }
  checks.push(
    bridgeCheck(lab.network, lab.network.mode === 'bridge' ? readInterface(lab.network.bridge) : undefined),
  );
  const dir = new LabDir(lab.name);
  const existing = lab.nodes.filter((n) => existsSync(path.join(dir.disks, `${n.name}.qcow2`))).length;
  const tcg = wanted === 'tcg' || !(kvm.kind === 'probed' && kvm.usable);
  checks.push(memoryCheck(lab.nodes, { tcg, availableMiB: readMemAvailableMiB(), existing }));
  checks.push(
    diskCheck({
      under: stateRoot(),
      freeBytes: await freeBytesUnder(stateRoot()),
      newNodes: lab.nodes.length - existing,
      reserveBytes: NODE_DISK_RESERVE,
    }),
  );
  return report(checks);
}

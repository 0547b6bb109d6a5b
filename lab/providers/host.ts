import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HostError } from '../errors.js';
import type { DomainType } from '../render/types.js';
import { cacheRoot, writeAtomic } from '../store/lab-dir.js';
import { run } from '../runtime/exec.js';
import type { Virsh } from './virsh.js';

/**
 * A 512-byte boot sector that writes 0x31 to QEMU's isa-debug-exit port: QEMU then
 * exits with (0x31 << 1) | 1 = 99. Booting it proves the accelerator runs guest code.
 */
function probeBootSector(): Buffer {
  const b = Buffer.alloc(512);
  Buffer.from([0xb0, 0x31, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]).copy(b); // mov al,0x31; out 0xf4,al; hlt; jmp $-1
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}

export interface KvmProbe {
  usable: boolean;
  reason: string;
  ms: number;
}

/**
 * Does KVM really run guests? /dev/kvm existing proves nothing: on some hosts it is
 * there but unusable or pathologically slow. Boot a tiny guest with -accel kvm and
 * demand a quick, correct exit. Cached per host boot (boot_id).
 */
export async function probeKvm(timeoutMs = 4000): Promise<KvmProbe> {
  if (!existsSync('/dev/kvm')) return { usable: false, reason: '/dev/kvm does not exist', ms: 0 };
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const cacheFile = path.join(path.dirname(cacheRoot()), 'kvm-probe.json');
  try {
    const cached = JSON.parse(await readFile(cacheFile, 'utf8')) as KvmProbe & { bootId: string };
    if (cached.bootId === bootId) return { usable: cached.usable, reason: cached.reason, ms: cached.ms };
  } catch {
    /* no cache yet */
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lab-kvm-'));
  const started = performance.now();
  let result: KvmProbe;
  try {
    const disk = path.join(dir, 'boot.bin');
    await writeFile(disk, probeBootSector());
    const r = await run(
      'qemu-system-x86_64',
      [
        '-accel',
        'kvm',
        '-display',
        'none',
        '-nodefaults',
        '-no-reboot',
        '-device',
        'isa-debug-exit,iobase=0xf4,iosize=0x04',
        '-drive',
        `file=${disk},format=raw,if=floppy`,
        '-boot',
        'a',
      ],
      { timeoutMs, okExitCodes: [99] },
    ).catch((err: unknown) => err as Error);
    const ms = Math.round(performance.now() - started);
    if (r instanceof Error) {
      result = {
        usable: false,
        reason: /timed out/.test(r.message)
          ? `a test guest under KVM did not finish within ${timeoutMs / 1000} s`
          : `QEMU could not run a guest under KVM (${r.message.split('\n')[0]})`,
        ms,
      };
    } else result = { usable: true, reason: `a test guest ran under KVM in ${ms} ms`, ms };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  await mkdir(path.dirname(cacheFile), { recursive: true });
  await writeAtomic(cacheFile, JSON.stringify({ ...result, bootId }), 0o644);
  return result;
}

export interface AcceleratorChoice {
  type: DomainType;
  /** One line for the user when lab falls back to TCG. */
  warning?: string;
}

/**
 * kvm when asked or when libvirt offers it and it really runs guests; else qemu (TCG),
 * said once, in one line. No x86_64 guest at all (no qemu-system-x86_64 libvirt knows
 * of) is a HostError: neither would run. `probe` is there for the tests.
 */
export async function chooseAccelerator(
  virsh: Pick<Virsh, 'capabilities'>,
  wanted: 'auto' | 'kvm' | 'tcg',
  probe: () => Promise<KvmProbe> = probeKvm,
): Promise<AcceleratorChoice> {
  if (wanted === 'tcg') return { type: 'qemu' };
  const offered = await virsh.capabilities();
  if (offered.length === 0)
    throw new HostError('libvirt offers no x86_64 guest: neither KVM nor TCG can run one', {
      hint: 'install QEMU for x86_64 (Debian: apt-get install qemu-system-x86), then restart libvirtd',
    });
  if (wanted === 'kvm')
    return {
      type: 'kvm',
      ...(offered.includes('kvm')
        ? {}
        : { warning: 'libvirt does not offer KVM here, but the Labfile asks for it' }),
    };
  if (!offered.includes('kvm')) {
    return {
      type: 'qemu',
      warning:
        'KVM is not available through libvirt on this host: guests run under TCG software emulation (much slower)',
    };
  }
  const kvm = await probe();
  if (!kvm.usable)
    return {
      type: 'qemu',
      warning: `KVM is not usable (${kvm.reason.replace(/\s*\n\s*/g, ' ').trim()}): guests run under TCG software emulation (much slower)`,
    };
  return { type: 'kvm' };
}

/** True when the Linux interface exists (in this network namespace). */
export function interfaceExists(name: string): boolean {
  return existsSync(path.join('/sys/class/net', name));
}

export function isBridge(name: string): boolean {
  return existsSync(path.join('/sys/class/net', name, 'bridge'));
}

/** IPv4 routes of this namespace as CIDRs (`ip -4 -j route`). */
export async function hostRoutes(): Promise<string[]> {
  const r = await run('ip', ['-4', '-j', 'route', 'show', 'table', 'all'], { timeoutMs: 10_000 });
  const routes = JSON.parse(r.stdout || '[]') as { dst?: string; type?: string }[];
  return routes
    .filter((x) => x.dst && x.dst !== 'default' && (x.type === undefined || x.type === 'unicast'))
    .map((x) => (x.dst!.includes('/') ? x.dst! : `${x.dst}/32`));
}

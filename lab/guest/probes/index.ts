import { describeError } from '../../errors.js';
import { dockerRunCheck, probeDocker, type DockerHealth } from './docker.js';
import { probeEtcd, type EtcdHealth } from './etcd.js';
import { probeFleet, type FleetHealth } from './fleet.js';
import { probeMachineId } from './machine-id.js';

import type { Exec } from './exec.js';

export type { Exec, ExecResult } from './exec.js';

/**
 * One probe's answers about one node's services (what `lab status` wraps in NodeStatus).
 * `fleet` is always probed: `absent` says the image has no fleetctl.
 */
export interface NodeHealth {
  machineId?: string;
  etcd?: EtcdHealth;
  docker?: DockerHealth & { run?: { ok: boolean; detail: string } };
  fleet: FleetHealth | 'absent';
  /** `/proc/loadavg`'s 1, 5 and 15 minute averages: `0.52 0.58 0.59`. */
  load?: string;
  /** From `/proc/meminfo`: MemTotal and MemAvailable. */
  memory?: { totalMiB: number; availableMiB: number };
  /** Every failure of this look, `probe: message`, joined with `; `. */
  lastError?: string;
}

export interface ProbeNodeOptions {
  /** The services the node should run (`etcd`, `docker`, `fleet`); others are not probed. */
  services: readonly string[];
  /** A rootfs tarball in the guest: when set, docker also runs a container from it. */
  localImage?: string;
  /** Whether the image has fleet at all (its template says); without it fleet is `absent`, unprobed. */
  fleet?: boolean;
  /** Also read the guest's load average and memory (for `lab status`). */
  load?: boolean;
}

/** The load averages from `/proc/loadavg`, or undefined. Pure. */
export function parseLoadAvg(stdout: string): string | undefined {
  const m = /^(\d+\.\d+) (\d+\.\d+) (\d+\.\d+) /.exec(stdout);
  return m ? `${m[1]} ${m[2]} ${m[3]}` : undefined;
}

/** MemTotal and MemAvailable from `/proc/meminfo`, in MiB, or undefined. Pure. */
export function parseMemInfo(text: string): { totalMiB: number; availableMiB: number } | undefined {
  const kib = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const total = kib('MemTotal');
  const available = kib('MemAvailable');
  if (total === undefined || available === undefined) return undefined;
  return { totalMiB: Math.round(total / 1024), availableMiB: Math.round(available / 1024) };
}

/** /proc/loadavg then /proc/meminfo: over SFTP when the link has it, else with one cat. */
async function readProcFiles(exec: Exec): Promise<string> {
  if (exec.readFile) {
    const files = await Promise.all(
      ['/proc/loadavg', '/proc/meminfo'].map((f) => exec.readFile!(f, { timeoutMs: 10_000 })),
    ).catch(() => undefined);
    if (files) return files.join('');
  }
  return (await exec.exec(['cat', '/proc/loadavg', '/proc/meminfo'], { timeoutMs: 10_000 })).stdout;
}

/** Runs the probes for the requested services at once, over one connection. Never throws. */
export async function probeNode(exec: Exec, options: ProbeNodeOptions): Promise<NodeHealth> {
  const errors: string[] = [];
  // Each probe is caught on its own, so one failure leaves the others' answers.
  const attempt = async <T>(name: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (err) {
      errors.push(`${name}: ${describeError(err)}`);
      return undefined;
    }
  };
  const wants = (s: string) => options.services.includes(s);
  const [machineId, etcd, docker, fleet, load] = await Promise.all([
    attempt('machine-id', () => probeMachineId(exec)),
    wants('etcd') ? attempt('etcd', () => probeEtcd(exec)) : undefined,
    wants('docker')
      ? attempt('docker', async () => {
          const health: NonNullable<NodeHealth['docker']> = await probeDocker(exec);
          if (health.state === 'up' && options.localImage) {
            const { ok, detail } = await dockerRunCheck(exec, options.localImage);
            health.run = { ok, detail };
          }
          return health;
        })
      : undefined,
    options.fleet === false ? ('absent' as const) : attempt('fleet', () => probeFleet(exec)),
    options.load === false
      ? undefined
      : attempt('load', async () => {
          const stdout = await readProcFiles(exec);
          return { load: parseLoadAvg(stdout), memory: parseMemInfo(stdout) };
        }),
  ]);
  if (etcd?.error && etcd.state !== 'leader' && etcd.state !== 'follower') errors.push(`etcd: ${etcd.error}`);
  if (docker?.error && docker.state !== 'up') errors.push(`docker: ${docker.error}`);
  if (docker?.run && !docker.run.ok) errors.push(`docker run: ${docker.run.detail}`);
  if (fleet && fleet !== 'absent' && fleet.error) errors.push(`fleet: ${fleet.error}`);
  // Completion order varies; a fixed order keeps the message stable between looks.
  const order = ['machine-id', 'etcd', 'docker', 'fleet', 'load'];
  errors.sort((a, b) => order.indexOf(a.split(/[: ]/)[0]!) - order.indexOf(b.split(/[: ]/)[0]!));
  return {
    ...(machineId !== undefined ? { machineId } : {}),
    ...(etcd ? { etcd } : {}),
    ...(docker ? { docker } : {}),
    fleet: fleet ?? {
      machines: [],
      units: [],
      error: errors.find((e) => e.startsWith('fleet: '))?.slice(7) ?? 'failed',
    },
    ...(load?.load !== undefined ? { load: load.load } : {}),
    ...(load?.memory !== undefined ? { memory: load.memory } : {}),
    ...(errors.length ? { lastError: errors.join('; ') } : {}),
  };
}

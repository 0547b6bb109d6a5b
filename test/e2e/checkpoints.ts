// What the e2e tests count lab's work with, from outside lab: lab runs with the virsh
// shim logging every call lab makes (harness/virsh-shim.sh, VIRSH_SHIM_LOG) and the same
// log fed by qemu-img, xorriso and genisoimage (harness/log-shim.sh); and the lab's
// checkpoints as `lab checkpoint list --json` and libvirt list them.
import { expect } from 'vitest';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lab, virsh, type LabRun } from './helpers.js';
import { assertMatchesSchema } from '../support/json-schema.js';

/** The shims' folder: a process whose command line holds it is one of them. */
export const shimDir = mkdtempSync(path.join(os.tmpdir(), 'lab-e2e-ck-shim-'));
symlinkSync(path.join(import.meta.dirname, 'harness/virsh-shim.sh'), path.join(shimDir, 'virsh'));
for (const tool of ['qemu-img', 'xorriso', 'genisoimage'])
  symlinkSync(path.join(import.meta.dirname, 'harness/log-shim.sh'), path.join(shimDir, tool));
let logs = 0;

/** The environment that puts the shims first, logging into a fresh file; `calls()` reads it. */
export function shimEnv(env: Record<string, string> = {}) {
  const log = path.join(shimDir, `calls-${++logs}.log`);
  writeFileSync(log, '');
  return {
    env: { ...env, VIRSH_SHIM_LOG: log, PATH: `${shimDir}:${process.env.PATH ?? ''}` },
    calls: () =>
      readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((c) => c.replace(/^-q -c \S+ /, '')),
  };
}

/** Runs lab with every virsh call it makes logged by the shim; returns the run and the calls. */
export async function shimmed(args: string[], env: Record<string, string> = {}) {
  const shim = shimEnv(env);
  const r = await lab(args, { env: shim.env });
  return { r, calls: shim.calls() };
}

/**
 * The calls that change a domain, a network or a snapshot (or a guest's clock, or a NIC's
 * link), and the overlays and seeds made on disk (qemu-img create, an ISO tool).
 */
const MUTATING =
  /^(define|start|shutdown|destroy|undefine|net-define|net-start|net-destroy|net-undefine|suspend|resume|snapshot-create|snapshot-revert|snapshot-delete|domtime|domif-setlink)( |$)|^qemu-img create |^(xorriso|genisoimage) .*-o /;
export const mutating = (calls: string[]) => calls.filter((c) => MUTATING.test(c));
export const verbCount = (calls: string[], verb: string) =>
  calls.filter((c) => c.startsWith(`${verb} `)).length;
/** The domains a verb was asked of. */
export const domainsOf = (calls: string[], verb: string) =>
  calls.filter((c) => c.startsWith(`${verb} `)).map((c) => /--domain (\S+)/.exec(c)?.[1]);

export const ok = (r: LabRun) => expect(r.code, r.stderr).toBe(0);

export interface CheckpointList {
  checkpoints: { name: string; stale: string[]; sizeBytes: number; nodes: string[] }[];
  restored?: { name: string };
}
export async function checkpointList(file: string): Promise<CheckpointList> {
  const r = await lab(['checkpoint', 'list', '--json', '-f', file]);
  ok(r);
  const json: unknown = JSON.parse(r.stdout);
  assertMatchesSchema('checkpoint-list', json);
  return json as CheckpointList;
}

/** libvirt's snapshots of one domain. */
export const snapshotsOf = async (domain: string) =>
  (await virsh(['snapshot-list', '--domain', domain, '--name'])).split('\n').filter(Boolean);

/** Every domain of the lab and its state, by node name. */
export async function domainStates(labName: string): Promise<Map<string, string>> {
  return new Map(
    (await virsh(['list', '--all']))
      .split('\n')
      .map((l) => /^\s*(?:\d+|-)\s+(\S+)\s+(.+?)\s*$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null && m[1]!.startsWith(`${labName}-`))
      .map((m) => [m[1]!.slice(labName.length + 1), m[2]!]),
  );
}

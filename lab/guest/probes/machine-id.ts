import { LabError } from '../../errors.js';
import type { Exec } from './exec.js';

/** The id in `/etc/machine-id`: 32 lowercase hex digits. Throws on anything else. Pure. */
export function parseMachineId(stdout: string): string {
  const id = stdout.trim();
  if (/^[0-9a-f]{32}$/.test(id)) return id;
  // systemd leaves it empty, or "uninitialized", until first boot has committed it.
  const shown = id === '' ? 'empty' : JSON.stringify(id.length > 40 ? `${id.slice(0, 40)}...` : id);
  throw new LabError(`/etc/machine-id is not 32 lowercase hex digits: ${shown}`);
}

/** Reads the guest's machine-id: over SFTP when the link has it, else with cat. */
export async function probeMachineId(exec: Exec): Promise<string> {
  const text = await exec.readFile?.('/etc/machine-id', { timeoutMs: 10_000 }).catch(() => undefined);
  if (text !== undefined) return parseMachineId(text);
  const r = await exec.exec(['cat', '/etc/machine-id'], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new LabError(`cat /etc/machine-id: exit code ${r.code}: ${r.stderr.trim()}`);
  return parseMachineId(r.stdout);
}

/**
 * Machine-ids held by more than one node -> those nodes (sorted). Cloned ids break fleet,
 * journald and DHCP identities, so this is a health item of its own. Pure.
 */
export function findDuplicateMachineIds(ids: ReadonlyMap<string, string>): Map<string, string[]> {
  const byId = new Map<string, string[]>();
  for (const [node, id] of ids) byId.set(id, [...(byId.get(id) ?? []), node]);
  return new Map(
    [...byId]
      .filter(([, nodes]) => nodes.length > 1)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([id, nodes]) => [id, nodes.sort()]),
  );
}

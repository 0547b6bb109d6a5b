/**
 * libvirt's verbs for checkpoints: pause and resume, internal snapshots with memory, and
 * the guest clock. Each is idempotent where a lost reply may be asked again (R24).
 */
import { LabError } from '../errors.js';
import { renderSnapshotXml } from '../render/snapshot-xml.js';
import type { Virsh } from './virsh.js';

/** Pauses a running domain (its vCPUs stop; QEMU and its memory stay). */
export async function suspend(virsh: Virsh, domain: string): Promise<void> {
  if ((await virsh.domState(domain)) === 'paused') return;
  await virsh.call(['suspend', '--domain', domain], 60_000);
}

/** Resumes a paused domain; a running one is left as it is. */
export async function resume(virsh: Virsh, domain: string): Promise<void> {
  if ((await virsh.domState(domain)) !== 'paused') return;
  await virsh.call(['resume', '--domain', domain], 60_000, undefined, {
    settled: /not paused|already running/i,
  });
}

/** An internal snapshot with memory of a (paused) domain, under `name`. */
export async function createSnapshot(
  virsh: Virsh,
  domain: string,
  snap: { name: string; lab: string; checkpoint: string },
): Promise<void> {
  await virsh.withXmlFile(renderSnapshotXml(snap), (file) =>
    virsh.call(['snapshot-create', '--domain', domain, '--xmlfile', file, '--atomic'], 600_000, undefined, {
      settled: /already exists/i,
    }),
  );
}

/** Brings a domain back to a snapshot, paused: the caller resumes every node together. */
export async function revertSnapshot(virsh: Virsh, domain: string, name: string): Promise<void> {
  await virsh.call(['snapshot-revert', '--domain', domain, '--snapshotname', name, '--paused'], 600_000);
}

/**
 * Deletes a snapshot; `metadataOnly` forgets it in libvirt without touching the disk
 * (the disk that held it is gone, or about to be). A missing one is fine.
 */
export async function deleteSnapshot(
  virsh: Virsh,
  domain: string,
  name: string,
  opts: { metadataOnly?: boolean } = {},
): Promise<void> {
  await virsh
    .call(
      [
        'snapshot-delete',
        '--domain',
        domain,
        '--snapshotname',
        name,
        ...(opts.metadataOnly ? ['--metadata'] : []),
      ],
      600_000,
      [1],
      { settled: /not found|no domain snapshot/i },
    )
    .then((r) => {
      if (r.exitCode !== 0 && !/not found|no domain snapshot/i.test(r.stderr))
        throw new LabError(`could not delete snapshot ${name} of ${domain}: ${r.stderr.trim()}`);
    });
}

/**
 * Forgets every snapshot of `domain` whose name starts with `prefix`, in libvirt only: for
 * a node whose disk (which holds them) is about to be re-created. Returns their names.
 */
export async function forgetSnapshots(virsh: Virsh, domain: string, prefix: string): Promise<string[]> {
  const names = (await snapshotNames(virsh, domain)).filter((n) => n.startsWith(prefix));
  for (const name of names) await deleteSnapshot(virsh, domain, name, { metadataOnly: true });
  return names;
}

/** The names of a domain's snapshots (none for a missing domain). */
export async function snapshotNames(virsh: Virsh, domain: string): Promise<string[]> {
  const r = await virsh.call(['snapshot-list', '--domain', domain, '--name'], 60_000, [1]);
  if (r.exitCode !== 0) return [];
  return parseNames(r.stdout);
}

/** `virsh snapshot-list --name`: one name a line. Pure. */
export function parseNames(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

/**
 * Sets the guest's clock to the host's through the guest agent (`domtime --now`): a
 * reverted guest's clock is as far behind as the checkpoint is old.
 */
export async function setGuestTime(virsh: Virsh, domain: string): Promise<void> {
  await virsh.call(['domtime', '--domain', domain, '--now'], 30_000);
}

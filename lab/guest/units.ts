import type { Exec } from './probes/index.js';

/** Where lab writes the units it schedules (the admin's place for units, not the image's). */
export const UNIT_DIR = '/etc/systemd/system';

/** The first line of every unit file lab writes: whose it is and which content. */
export function unitMarker(lab: string, hash: string): string {
  return `# lab unit lab=${lab} sha256=${hash}`;
}

/** The file lab writes for a unit: the marker line, then the content, newline-terminated. */
export function unitFileText(lab: string, u: { content: string; hash: string }): string {
  return `${unitMarker(lab, u.hash)}\n${u.content.endsWith('\n') ? u.content : `${u.content}\n`}`;
}

/** A unit lab finds on a node: its content hash and what systemd says of it. */
export interface ObservedUnit {
  name: string;
  /** From the marker line; undefined when the file is not lab's (or gone). */
  hash?: string;
  load: string;
  active: string;
  sub: string;
  description: string;
}

/**
 * `find ... -exec grep -H -m1 '^# lab unit ' {} +` output -> unit name -> content hash,
 * for this lab's units only. Pure.
 */
export function parseUnitMarkers(stdout: string, lab: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^\/etc\/systemd\/system\/([^/:]+\.service):# lab unit lab=(\S+) sha256=([0-9a-f]{64})$/.exec(
      line,
    );
    if (m && m[2] === lab) found.set(m[1]!, m[3]!);
  }
  return found;
}

/** `systemctl show -p Id,LoadState,ActiveState,SubState,Description` output -> one record per unit. Pure. */
export function parseSystemctlShow(stdout: string): Map<string, Omit<ObservedUnit, 'hash'>> {
  const units = new Map<string, Omit<ObservedUnit, 'hash'>>();
  for (const block of stdout.split(/\n\s*\n/)) {
    const kv = new Map<string, string>();
    for (const line of block.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) kv.set(line.slice(0, eq), line.slice(eq + 1));
    }
    const id = kv.get('Id');
    if (!id) continue;
    units.set(id, {
      name: id,
      load: kv.get('LoadState') ?? '',
      active: kv.get('ActiveState') ?? '',
      sub: kv.get('SubState') ?? '',
      description: kv.get('Description') ?? '',
    });
  }
  return units;
}

/**
 * One look, one command: a constant script reads the first line of each unit file in
 * UNIT_DIR with shell builtins (no process per file) and prints this lab's markers, then
 * one `systemctl show` of the wanted units and the found ones. The lab name and unit
 * names go in as positional arguments, never into the script's text. An emulated guest
 * pays for every process and channel: a re-run makes this the only one per node.
 */
/** The script, for a unit folder (UNIT_DIR in a guest; a test's folder in the tests). */
export function observeScript(dir: string = UNIT_DIR): string {
  return [
    'lab=$1; shift',
    `for f in ${dir}/*.service; do`,
    '  [ -f "$f" ] || continue',
    '  IFS= read -r first < "$f" || continue',
    '  case $first in "# lab unit lab=$lab "*) printf \'%s:%s\\n\' "$f" "$first"; set -- "$@" "${f##*/}";; esac',
    'done',
    'echo ---',
    '[ $# -eq 0 ] || exec systemctl show --property=Id,LoadState,ActiveState,SubState,Description -- "$@"',
  ].join('\n');
}

/**
 * This lab's units on one node, with their state; `also` adds units to ask systemd about
 * (the ones that should be there).
 */
export async function observeUnits(
  link: Exec,
  lab: string,
  also: readonly string[],
): Promise<Map<string, ObservedUnit>> {
  const wanted = [...new Set(also)].sort();
  // Over SFTP first: a lab with no units, on a node with none of its files, needs no
  // command at all (a no-op up of five TCG nodes spent 0.7 s here on the script).
  if (wanted.length === 0 && (await noMarkersOverSftp(link, lab))) return new Map();
  const r = await link.exec(['sh', '-c', observeScript(), 'sh', lab, ...wanted], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`looking for units exited ${r.code}: ${r.stderr.trim().slice(-300)}`);
  const cut = r.stdout.indexOf('---\n');
  const markers = parseUnitMarkers(cut < 0 ? r.stdout : r.stdout.slice(0, cut), lab);
  const shown = parseSystemctlShow(cut < 0 ? '' : r.stdout.slice(cut + 4));
  const out = new Map<string, ObservedUnit>();
  for (const name of [...new Set([...wanted, ...markers.keys()])].sort()) {
    const s = shown.get(name) ?? {
      name,
      load: 'not-found',
      active: 'inactive',
      sub: 'dead',
      description: '',
    };
    const hash = markers.get(name);
    out.set(name, { ...s, ...(hash ? { hash } : {}) });
  }
  return out;
}

/**
 * True when SFTP shows no unit file of this lab in UNIT_DIR (each regular `*.service`
 * file's first line read); false when one is there or SFTP cannot tell.
 */
async function noMarkersOverSftp(link: Exec, lab: string): Promise<boolean> {
  if (!link.listFiles || !link.readFile) return false;
  try {
    const files = (await link.listFiles(UNIT_DIR, { timeoutMs: 15_000 })).filter((f) =>
      f.endsWith('.service'),
    );
    const firsts = await Promise.all(
      files.map(
        async (f) => (await link.readFile!(`${UNIT_DIR}/${f}`, { timeoutMs: 15_000 })).split('\n', 1)[0],
      ),
    );
    return !firsts.some((line) => line?.startsWith(`# lab unit lab=${lab} `));
  } catch {
    return false;
  }
}

/** Fails with the command's own words when it exits non-zero. */
async function must(
  link: Exec,
  argv: string[],
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<void> {
  const r = await link.exec(argv, { timeoutMs: 120_000, ...opts });
  if (r.code !== 0)
    throw new Error(`${argv.join(' ')} exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(-300)}`);
}

/**
 * Brings one node to `want` (unit name -> content with its marker): writes new and changed
 * unit files, removes this lab's units that should not be there, and starts what must run.
 * argv only, content through stdin: nothing of a unit reaches a shell.
 */
export async function applyUnits(
  link: Exec,
  want: ReadonlyMap<string, { content: string; hash: string }>,
  seen: ReadonlyMap<string, ObservedUnit>,
  lab: string,
): Promise<{ written: string[]; removed: string[]; started: string[] }> {
  const written = [...want].filter(([name, u]) => seen.get(name)?.hash !== u.hash).map(([name]) => name);
  const removed = [...seen.values()].filter((u) => u.hash && !want.has(u.name)).map((u) => u.name);
  if (removed.length) {
    await must(link, ['sudo', 'systemctl', 'stop', '--', ...removed]);
    await must(link, ['sudo', 'rm', '-f', '--', ...removed.map((n) => `${UNIT_DIR}/${n}`)]);
  }
  for (const name of written) {
    const u = want.get(name)!;
    const text = unitFileText(lab, u);
    await must(link, ['sudo', 'install', '-m', '0644', '/dev/stdin', `${UNIT_DIR}/${name}`], { input: text });
  }
  if (written.length || removed.length) await must(link, ['sudo', 'systemctl', 'daemon-reload']);
  // A rewritten unit restarts with its new content; one that stopped starts again.
  const restart = written.filter((n) => seen.get(n)?.active === 'active');
  const start = [...want.keys()].filter((n) => !restart.includes(n) && seen.get(n)?.active !== 'active');
  if (restart.length) await must(link, ['sudo', 'systemctl', 'restart', '--no-block', '--', ...restart]);
  if (start.length) await must(link, ['sudo', 'systemctl', 'start', '--no-block', '--', ...start]);
  return { written, removed, started: [...restart, ...start] };
}

/** Where the units go on a fleet node before `fleetctl start` submits them (the login's home). */
export const FLEET_STAGING = '.lab-units';

/**
 * Through fleet, where the image has it (the walkthrough's CoreOS): each unit file is
 * staged in the login's home and `fleetctl start` submits and starts it; fleet itself
 * places units by their [X-Fleet] section and moves them off machines that die.
 */
export async function fleetStartUnits(
  link: Exec,
  units: readonly { name: string; content: string; hash: string }[],
  lab: string,
): Promise<void> {
  for (const u of units) {
    const text = unitFileText(lab, u);
    await must(link, ['install', '-D', '-m', '0644', '/dev/stdin', `${FLEET_STAGING}/${u.name}`], {
      input: text,
    });
  }
  if (units.length)
    await must(link, ['fleetctl', 'start', '--no-block', ...units.map((u) => `${FLEET_STAGING}/${u.name}`)]);
}

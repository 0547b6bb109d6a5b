/**
 * The status table as data: what each cell says, and which columns fit a terminal width.
 * Pure: the component only maps tones to colors and lays the segments out.
 */
import type { NodeStatus } from '../../apply/status.js';
import type { NodeView, StatusSnapshot } from '../../apply/status-snapshot.js';

export type ColumnKey =
  'node' | 'state' | 'ip' | 'machineId' | 'etcd' | 'docker' | 'fleet' | 'load' | 'mem' | 'age';

/** What a cell means; the view picks a color for it (or none without color). */
export type Tone = 'good' | 'warn' | 'bad' | 'muted' | 'accent';

export interface Cell {
  text: string;
  tone?: Tone;
}

export type Row = Record<ColumnKey, Cell>;

export interface ColumnSpec {
  key: ColumnKey;
  header: string;
  /** A column never grows past this, and shrinks no lower than this before the row is cut. */
  min: number;
  max: number;
  /** A width kept whatever the cells say, so that the table does not jump as they change. */
  fixed?: number;
}

/** Display order, left to right. */
export const COLUMNS: readonly ColumnSpec[] = [
  { key: 'node', header: 'NODE', min: 6, max: 16 },
  { key: 'state', header: 'STATE', min: 7, max: 11 },
  { key: 'ip', header: 'IP', min: 7, max: 15 },
  { key: 'machineId', header: 'MACHINE-ID', min: 12, max: 13 },
  { key: 'etcd', header: 'ETCD', min: 6, max: 16 },
  { key: 'docker', header: 'DOCKER', min: 6, max: 28 },
  { key: 'fleet', header: 'FLEET', min: 5, max: 11 },
  { key: 'load', header: 'LOAD', min: 4, max: 5 },
  { key: 'mem', header: 'MEM', min: 5, max: 14 },
  // Always as wide as `⠋ probing…`: probes start and end every few seconds.
  { key: 'age', header: 'AGE', min: 3, max: 10, fixed: 10 },
];

/**
 * Which columns go first when the table is too wide, first to last. NODE, STATE and ETCD
 * are not in it: they answer "is my cluster up?" and always stay. Host-side figures (memory,
 * load) go first; AGE, where probes show, outlasts the machine-id (whose duplicates also
 * get a warning line); the address and docker go last.
 */
export const DROP_ORDER: readonly ColumnKey[] = ['mem', 'load', 'fleet', 'machineId', 'age', 'docker', 'ip'];

/** Spaces between two columns. */
export const GAP = 2;

export interface FittedColumn {
  key: ColumnKey;
  header: string;
  width: number;
}

/** A piece of a laid-out line: text and the tone it is drawn in. */
export interface Segment {
  text: string;
  tone?: Tone;
}

/** Line breaks, tabs and other control characters as single spaces. */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f]+/g, ' ');
}

/**
 * One line of at most `width` characters, the last one `…` when something was cut. Line
 * breaks and control characters (a guest's error output has them) become spaces: a cell
 * that broke into lines would push the table past the screen.
 */
export function truncate(raw: string, width: number): string {
  const text = oneLine(raw);
  if (text.length <= width) return text;
  return width <= 0 ? '' : `${text.slice(0, width - 1)}…`;
}

/**
 * The columns that fit `width` (the prefix, e.g. a selection marker, included), with their
 * widths: each as wide as its widest cell up to its max; then columns drop in DROP_ORDER;
 * then the widest ones shrink towards their min. Rows are still cut at `width` after this.
 */
export function fitColumns(rows: readonly Row[], width: number, prefix = 0): FittedColumn[] {
  let cols: FittedColumn[] = COLUMNS.map((c) => ({
    key: c.key,
    header: c.header,
    width: c.fixed ?? Math.min(c.max, Math.max(c.header.length, ...rows.map((r) => r[c.key].text.length))),
  }));
  const total = () => prefix + cols.reduce((sum, c) => sum + c.width, 0) + GAP * (cols.length - 1);
  for (const key of DROP_ORDER) {
    if (total() <= width) break;
    cols = cols.filter((c) => c.key !== key);
  }
  const floor = (c: FittedColumn) => Math.min(c.width, COLUMNS.find((s) => s.key === c.key)!.min);
  const floors = new Map(cols.map((c) => [c.key, floor(c)]));
  while (total() > width) {
    const widest = cols
      .filter((c) => c.width > floors.get(c.key)!)
      .reduce<FittedColumn | undefined>((a, c) => (a && a.width >= c.width ? a : c), undefined);
    if (!widest) break;
    widest.width--;
  }
  return cols;
}

/** One table line: each cell cut and padded to its column, the whole line cut at `width`. */
export function layoutRow(row: Row, cols: readonly FittedColumn[], width: number, prefix = ''): Segment[] {
  const segments: Segment[] = [{ text: prefix }];
  cols.forEach((c, i) => {
    const cell = row[c.key];
    const last = i === cols.length - 1;
    // The last cell is not padded: trailing spaces would only count against the width.
    const text = truncate(cell.text, c.width);
    segments.push({ text: last ? text : text.padEnd(c.width), ...(cell.tone ? { tone: cell.tone } : {}) });
    if (!last) segments.push({ text: ' '.repeat(GAP) });
  });
  return cutSegments(segments, width);
}

/** The header line of the table, in the same layout as the rows. */
export function headerRow(cols: readonly FittedColumn[]): Row {
  const row = Object.fromEntries(COLUMNS.map((c) => [c.key, { text: '' }])) as Row;
  for (const c of cols) row[c.key] = { text: c.header };
  return row;
}

/** Segments cut so that their texts together are at most `width` long, `…` marking a cut. */
export function cutSegments(segments: readonly Segment[], width: number): Segment[] {
  const length = segments.reduce((n, s) => n + s.text.length, 0);
  if (length <= width) return segments.filter((s) => s.text !== '');
  const out: Segment[] = [];
  let room = width;
  for (const s of segments) {
    if (room <= 0) break;
    const text = s.text.length < room ? s.text : truncate(s.text, room);
    out.push({ ...s, text });
    room -= text.length;
  }
  // A cut at a segment boundary still needs its mark.
  const last = out.at(-1);
  if (last && !last.text.endsWith('…')) last.text = truncate(`${last.text}…`, last.text.length);
  return out.filter((s) => s.text !== '');
}

/** `3s`, `42s`, `1m`, `2h`, `3d`: how long ago, clamped at 0. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** The first 12 hex digits: enough to tell machines apart, as `docker ps` shortens ids. */
export function shortMachineId(id: string): string {
  return id.slice(0, 12);
}

export function stateCell(view: NodeView): Cell {
  const { state } = view.status;
  if (state === 'running' && view.status.link === 'down') return { text: 'link down', tone: 'bad' };
  if (state === 'running')
    return view.reachable === false ? { text: 'unreachable', tone: 'bad' } : { text: state, tone: 'good' };
  if (state === 'unknown') return { text: state, tone: 'muted' };
  return { text: state, tone: state === 'missing' || state === 'crashed' ? 'bad' : 'warn' };
}

export function etcdCell(etcd: NodeStatus['etcd']): Cell {
  if (!etcd) return { text: '-' };
  const term = etcd.raftTerm !== undefined ? ` term ${etcd.raftTerm}` : '';
  switch (etcd.state) {
    case 'leader':
      return { text: `leader${term}`, tone: 'accent' };
    case 'follower':
      return { text: `follower${term}`, tone: 'good' };
    case 'unhealthy':
      return { text: `unhealthy${term}`, tone: 'warn' };
    case 'down':
      return { text: 'down', tone: 'bad' };
  }
}

export function dockerCell(docker: NodeStatus['docker']): Cell {
  if (!docker) return { text: '-' };
  if (docker.state === 'absent') return { text: 'absent', tone: 'muted' };
  if (docker.state === 'down') return { text: 'down', tone: 'bad' };
  const running = docker.containersRunning !== undefined ? ` (${docker.containersRunning} running)` : '';
  return { text: `${docker.version ?? 'up'}${running}`, tone: 'good' };
}

export function fleetCell(fleet: NodeStatus['fleet']): Cell {
  if (!fleet) return { text: '-' };
  if (fleet === 'absent') return { text: 'absent', tone: 'muted' };
  const n = fleet.machines.length;
  const text = `${n} machine${n === 1 ? '' : 's'}`;
  return fleet.error ? { text: n ? `${text}!` : 'error', tone: 'bad' } : { text, tone: 'good' };
}

/** The 1-minute load average. */
export function loadCell(load: string | null): Cell {
  return { text: load?.split(' ')[0] ?? '-' };
}

/** Used of total MiB; used is total less available, as `free` counts it. */
export function memCell(memory: NodeStatus['memory']): Cell {
  if (!memory) return { text: '-' };
  const used = memory.totalMiB - memory.availableMiB;
  const share = memory.totalMiB ? used / memory.totalMiB : 0;
  return { text: `${used}/${memory.totalMiB} MiB`, ...(share > 0.9 ? { tone: 'bad' as const } : {}) };
}

export function machineIdCell(id: string | null, duplicate: boolean, color: boolean): Cell {
  if (!id) return { text: '-' };
  // Without color the red would be lost: the `!` keeps "this id is shared" on screen.
  if (duplicate) return { text: shortMachineId(id) + (color ? '' : '!'), tone: 'bad' };
  return { text: shortMachineId(id) };
}

/**
 * Age of the last probe, with a spinner while the next one is in flight: a slow guest shows
 * its age growing instead of hiding it. Before the first probe: `probing…`.
 */
export function ageCell(view: NodeView, now: number, spinner: string): Cell {
  if (view.probing)
    return {
      text: `${spinner} ${view.probedAt === null ? 'probing…' : formatAge(now - view.probedAt)}`,
      tone: 'accent',
    };
  return { text: view.probedAt === null ? '-' : formatAge(now - view.probedAt), tone: 'muted' };
}

export interface RowContext {
  now: number;
  /** Names of the nodes whose machine-id another node shares. */
  duplicates: ReadonlySet<string>;
  color: boolean;
  /** The spinner's current frame. */
  spinner: string;
}

/** Every cell of a node's row. A node that is not running has only its state (and the probe age). */
export function nodeRow(view: NodeView, ctx: RowContext): Row {
  const s = view.status;
  const dash: Cell = { text: '-' };
  const row: Row = {
    node: { text: s.name },
    state: stateCell(view),
    ip: dash,
    machineId: dash,
    etcd: dash,
    docker: dash,
    fleet: dash,
    load: dash,
    mem: dash,
    age: ageCell(view, ctx.now, ctx.spinner),
  };
  if (s.state !== 'running') return row;
  return {
    ...row,
    ip: { text: s.ip },
    machineId: machineIdCell(s.machineId, ctx.duplicates.has(s.name), ctx.color),
    etcd: etcdCell(s.etcd),
    docker: dockerCell(s.docker),
    fleet: fleetCell(s.fleet),
    load: loadCell(s.load),
    mem: memCell(s.memory),
  };
}

/**
 * `lab coreos3  qemu:///system  KVM`. `probing` (a spinner frame) is appended when probes are
 * in flight and the AGE column, which shows them per node, did not fit.
 */
export function titleLine(snap: StatusSnapshot, probing?: string): Segment[] {
  const accel = snap.accelerator === 'unknown' ? 'accelerator ?' : snap.accelerator.toUpperCase();
  return [
    { text: `lab ${snap.lab}`, tone: 'accent' },
    { text: `  ${snap.uri}  ` },
    { text: accel, ...(snap.accelerator === 'tcg' ? { tone: 'warn' as const } : {}) },
    ...(probing ? [{ text: `  ${probing} probing…`, tone: 'accent' as const }] : []),
  ];
}

/** `etcd: quorum yes, 3 members, leader coreos1`. */
export function verdictLine(cluster: StatusSnapshot['cluster']): Segment[] {
  if (cluster.quorum === null) return [{ text: 'etcd: quorum unknown', tone: 'muted' }];
  const members = cluster.etcdMembers === null ? '? members' : `${cluster.etcdMembers} members`;
  const leader = cluster.etcdLeader ? `leader ${cluster.etcdLeader}` : 'no leader';
  return [
    { text: 'etcd: ' },
    cluster.quorum ? { text: 'quorum yes', tone: 'good' } : { text: 'quorum NO', tone: 'bad' },
    { text: `, ${members}, ` },
    { text: leader, ...(cluster.etcdLeader ? {} : { tone: 'bad' as const }) },
  ];
}

/** The warning under the table, or null when every machine-id is distinct. */
export function duplicateWarning(nodes: readonly string[]): string | null {
  if (nodes.length === 0) return null;
  return `duplicate machine-id: cloned image? ${nodes.join(', ')} share one; etcd and fleet need distinct ids`;
}

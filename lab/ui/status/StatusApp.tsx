/**
 * The live `lab status` screen: a header with the cluster verdict, one row per node, and a
 * details pane. It draws what a StatusSource pushes and does no I/O of its own.
 */
import { Box, Text, useApp, useInput, useStdout, type Key } from 'ink';
import { useCallback, useEffect, useLayoutEffect, useReducer, useRef, useState } from 'react';
import { describeError } from '../../errors.js';
import type { NodeDetails, StatusSnapshot, StatusSource } from '../../apply/status-snapshot.js';
import {
  cutSegments,
  duplicateWarning,
  fitColumns,
  headerRow,
  layoutRow,
  oneLine,
  nodeRow,
  titleLine,
  truncate,
  verdictLine,
  type Segment,
  type Tone,
} from './columns.js';

export interface StatusAppProps {
  source: StatusSource;
  initialSelected?: number;
  /** False when the caller saw NO_COLOR (or no color support): then no styling at all. */
  color: boolean;
  /** `s` on a node: called, then the app exits; the caller runs the shell and mounts again. */
  onShell: (node: string, selectedIndex: number) => void;
  /** The clock for probe ages (tests pin it). */
  now?: () => number;
  /** Terminal width override (tests); otherwise the stdout's, following resizes. */
  columns?: number;
}

const SPINNER = '⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏';
/** Journal lines shown per unit in the details pane. */
const JOURNAL_LINES = 6;
const TONE_COLORS: Record<Tone, string> = {
  good: 'green',
  warn: 'yellow',
  bad: 'red',
  muted: 'gray',
  accent: 'cyan',
};

interface DetailsState {
  node: string;
  data: NodeDetails | null;
  error?: string;
}

export function StatusApp(props: StatusAppProps) {
  const { source, color, onShell, now = Date.now } = props;
  const { exit } = useApp();
  const snap = useSnapshot(source);
  const width = useColumns(props.columns);
  const probing = snap.nodes.some((n) => n.probing);
  // Ages and the spinner are computed at render time: the ticker only asks for a render.
  useTicker(probing ? 250 : 1000);
  const [selected, setSelected] = useState(props.initialSelected ?? 0);
  const details = useDetails(source);
  const last = snap.nodes.length - 1;
  const clamp = (i: number) => Math.max(0, Math.min(i, last));
  const sel = clamp(selected);
  const selectedName = snap.nodes[sel]?.status.name;

  useLatestInput((input, key) => {
    if (input === 'c' && key.ctrl) return exit();
    if (details.state) {
      if (key.escape || key.return || input === 'q') details.close();
      return;
    }
    // Functional updates: two keys before the next render both count.
    if (key.upArrow || input === 'k') setSelected((s) => clamp(clamp(s) - 1));
    else if (key.downArrow || input === 'j') setSelected((s) => clamp(clamp(s) + 1));
    else if (key.return && selectedName) details.open(selectedName);
    else if (input === 's' && selectedName) {
      onShell(selectedName, sel);
      exit();
    } else if (input === 'r') source.refresh();
    else if (input === 'q') exit();
  });

  const t = now();
  const ctx = {
    now: t,
    duplicates: new Set(snap.cluster.duplicateMachineIds),
    color,
    spinner: SPINNER[Math.floor(t / 100) % SPINNER.length]!,
  };
  const rows = snap.nodes.map((n) => nodeRow(n, ctx));
  const cols = fitColumns(rows, width, 2);
  const probingAside = probing && !cols.some((c) => c.key === 'age') ? ctx.spinner : undefined;
  const warning = duplicateWarning(snap.cluster.duplicateMachineIds);
  const errors = snap.nodes.filter((n) => n.status.lastError);

  return (
    <Box flexDirection="column">
      <Line segments={cutSegments(titleLine(snap, probingAside), width)} color={color} />
      <Line segments={cutSegments(verdictLine(snap.cluster), width)} color={color} />
      <Text> </Text>
      <Line segments={layoutRow(headerRow(cols), cols, width, '  ')} color={color} bold />
      {rows.map((row, i) => (
        <Line
          key={snap.nodes[i]!.status.name}
          // Without color, inverse is styling too: a `>` marker shows the selection instead.
          segments={layoutRow(row, cols, width, i === sel && !color ? '> ' : '  ')}
          color={color}
          inverse={i === sel && color}
        />
      ))}
      {warning && <Line segments={[{ text: truncate(warning, width), tone: 'bad' }]} color={color} />}
      {errors.map((n) => (
        <Line
          key={n.status.name}
          segments={[{ text: truncate(`${n.status.name}: ${n.status.lastError}`, width), tone: 'warn' }]}
          color={color}
        />
      ))}
      {details.state && <DetailsPane state={details.state} width={width} color={color} />}
      <Text> </Text>
      <Line
        segments={[
          {
            text: truncate(
              details.state
                ? 'esc/enter/q close details'
                : '↑↓/jk select  enter details  s shell  r refresh  q quit',
              width,
            ),
            tone: 'muted',
          },
        ]}
        color={color}
      />
    </Box>
  );
}

/**
 * One line of segments; colors only when `color`, so NO_COLOR output carries no escapes.
 * The up view draws its lines with it too.
 */
export function Line(props: {
  segments: readonly Segment[];
  color: boolean;
  bold?: boolean;
  inverse?: boolean;
}) {
  const { segments, color } = props;
  return (
    <Text
      wrap="truncate"
      {...(color && props.bold ? { bold: true } : {})}
      {...(props.inverse ? { inverse: true } : {})}
    >
      {segments.length === 0
        ? ' '
        : segments.map((s, i) => (
            <Text key={i} {...(color && s.tone ? { color: TONE_COLORS[s.tone] } : {})}>
              {oneLine(s.text)}
            </Text>
          ))}
    </Text>
  );
}

function DetailsPane(props: { state: DetailsState; width: number; color: boolean }) {
  const { state, width, color } = props;
  const lines: Segment[] = [{ text: `details of ${state.node}`, tone: 'accent' }];
  const d = state.data;
  if (state.error) lines.push({ text: `error: ${state.error}`, tone: 'bad' });
  else if (!d) lines.push({ text: 'loading…', tone: 'muted' });
  else {
    lines.push(
      d.failedUnits.length
        ? { text: `failed units: ${d.failedUnits.join(', ')}`, tone: 'bad' }
        : { text: 'failed units: none', tone: 'good' },
      { text: `addresses: ${d.addresses.join(', ') || '-'}` },
      { text: `disk: ${d.disk ?? '-'}` },
    );
    if (d.error) lines.push({ text: `could not read: ${d.error}`, tone: 'warn' });
    for (const j of d.journal) {
      lines.push({ text: `${j.unit}:`, tone: 'accent' });
      const tail = j.lines.slice(-JOURNAL_LINES);
      if (tail.length === 0) lines.push({ text: '  (no journal lines)', tone: 'muted' });
      for (const l of tail) lines.push({ text: `  ${l}` });
    }
  }
  return (
    <Box flexDirection="column" marginTop={1}>
      {lines.map((l, i) => (
        <Line key={i} segments={[{ ...l, text: truncate(l.text, width) }]} color={color} />
      ))}
    </Box>
  );
}

/** The source's latest snapshot, following its pushes while mounted. */
function useSnapshot(source: StatusSource): StatusSnapshot {
  const [snap, setSnap] = useState(() => source.snapshot());
  useEffect(() => {
    // A push between the first render and this subscription would otherwise be missed.
    setSnap(source.snapshot());
    return source.subscribe(setSnap);
  }, [source]);
  return snap;
}

/** The terminal width: the override, or stdout's columns (100 when it has none), updated on resize. */
function useColumns(override: number | undefined): number {
  const { stdout } = useStdout();
  const read = () => stdout.columns || 100;
  const [columns, setColumns] = useState(read);
  useEffect(() => {
    const onResize = () => setColumns(read());
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout]);
  return override ?? columns;
}

/**
 * useInput whose handler always sees the latest render: ink subscribes a new handler in a
 * passive effect, so a key pressed right after a change could otherwise reach the old one.
 */
function useLatestInput(handler: (input: string, key: Key) => void): void {
  const latest = useRef(handler);
  useLayoutEffect(() => {
    latest.current = handler;
  });
  useInput(useCallback((input: string, key: Key) => latest.current(input, key), []));
}

/** Re-renders every `periodMs`. */
function useTicker(periodMs: number): void {
  const [, tick] = useReducer((n: number) => n + 1, 0);
  useEffect(() => {
    const id = setInterval(tick, periodMs);
    return () => clearInterval(id);
  }, [periodMs]);
}

/** The details pane: open loads a node's details; a reply for a closed or replaced pane is dropped. */
function useDetails(source: StatusSource) {
  const [state, setState] = useState<DetailsState | null>(null);
  const request = useRef(0);
  useEffect(
    () => () => {
      request.current++;
    },
    [],
  );
  return {
    state,
    open(node: string) {
      const id = ++request.current;
      setState({ node, data: null });
      source.details(node).then(
        (data) => {
          if (request.current === id) setState({ node, data });
        },
        (err: unknown) => {
          if (request.current === id) setState({ node, data: null, error: describeError(err) });
        },
      );
    },
    close() {
      request.current++;
      setState(null);
    },
  };
}

/**
 * The live `lab up` view: lab-wide downloads, one line per node, failures in full, recent
 * log lines. UpView is a pure render of UpViewState; mountUpView drives it on stderr.
 */
import { Box, Text, render } from 'ink';
import { NODE_STEPS, type LabEvent } from '../../events.js';
import { cutSegments, truncate, type Segment } from '../status/columns.js';
import { Line } from '../status/StatusApp.js';
import {
  formatDuration,
  formatTransfer,
  initialUpState,
  isLastStep,
  reduceUp,
  type NodeProgress,
  type UpViewState,
} from './progress.js';

export interface UpViewProps {
  state: UpViewState;
  /** The time the elapsed times and the spinner are drawn at (ms). */
  now: number;
  color: boolean;
  columns?: number;
}

const SPINNER = '⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏';
/** The steps drawn as a pipeline: `pending` is the state before any of them. */
const PIPELINE = NODE_STEPS.filter((s) => s !== 'pending');
const ARROW = ' › ';
/** The widest pipeline: all steps, plus the brackets around the current one. */
const PIPELINE_WIDTH = PIPELINE.join(ARROW).length + 2;
/** Room a detail keeps before the pipeline is dropped for it. */
const DETAIL_MIN = 20;
const TIME_WIDTH = 7;

export function UpView({ state, now, color, columns = 100 }: UpViewProps) {
  const width = columns;
  const nameWidth = Math.max(4, ...state.nodes.map((n) => n.node.length));
  const stepWidth = Math.max(8, ...state.nodes.map((n) => n.step.length));
  const spinner = SPINNER[Math.floor(now / 100) % SPINNER.length]!;
  const details = state.nodes.map((n) => detailOf(n));
  const fixed = 2 + nameWidth + 2 + stepWidth + 2 + TIME_WIDTH + 1 + TIME_WIDTH;
  const detailRoom = details.some((d) => d.text) ? 2 + DETAIL_MIN : 0;
  const pipeline = fixed + 2 + PIPELINE_WIDTH + detailRoom <= width;
  const failed = state.nodes.filter((n) => n.status === 'fail');
  const healthy = state.nodes.filter((n) => n.step === 'healthy' && n.status !== 'fail').length;

  const header: Segment[] = [
    {
      text: `  ${'NODE'.padEnd(nameWidth)}  ${'STEP'.padEnd(stepWidth)}  ${'IN STEP'.padStart(TIME_WIDTH)} ${'TOTAL'.padStart(TIME_WIDTH)}`,
      tone: 'muted',
    },
  ];
  return (
    <Box flexDirection="column">
      {state.transfers.map((t) => (
        <Line
          key={t.step}
          segments={cutSegments(
            [{ text: `${t.step}  ` }, { text: formatTransfer(t), tone: 'accent' }],
            width,
          )}
          color={color}
        />
      ))}
      <Line segments={cutSegments(header, width)} color={color} />
      {state.nodes.map((n, i) => {
        const segments: Segment[] = [
          icon(n, spinner),
          { text: ` ${n.node.padEnd(nameWidth)}  ${n.step.padEnd(stepWidth)}  ${times(n, now)}` },
        ];
        if (pipeline) segments.push({ text: '  ' }, ...pipelineSegments(n, color));
        const detail = details[i]!;
        if (detail.text) segments.push({ text: '  ' }, detail);
        return <Line key={n.node} segments={cutSegments(segments, width)} color={color} />;
      })}
      {failed.map((n) => (
        // Wrapped at the width, not cut: the final screen stays in the scrollback, and this is the why.
        <Box key={n.node} width={width}>
          <Text wrap="wrap" {...(color ? { color: 'red' } : {})}>
            ✗ {n.node} {n.step}: {n.detail ?? 'failed'}
          </Text>
        </Box>
      ))}
      {state.log.map((l, i) => (
        <Line
          key={i}
          segments={[
            { text: truncate(l, width), ...(l.startsWith('warning: ') ? { tone: 'warn' as const } : {}) },
          ]}
          color={color}
        />
      ))}
      <Line
        segments={cutSegments(
          [
            {
              text: `${healthy}/${state.nodes.length} healthy${failed.length ? `, ${failed.length} failed` : ''}, ${formatDuration(now - state.startedAt)}`,
              tone: failed.length ? 'bad' : 'muted',
            },
          ],
          width,
        )}
        color={color}
      />
    </Box>
  );
}

function icon(n: NodeProgress, spinner: string): Segment {
  if (n.status === 'fail') return { text: '✗', tone: 'bad' };
  if (n.status !== 'start' && isLastStep(n.step)) return { text: '✓', tone: 'good' };
  if (n.step === 'pending') return { text: '·', tone: 'muted' };
  return { text: spinner, tone: 'accent' };
}

/** Time in the current step (none once the node is through) and since the node started; blank while pending. */
function times(n: NodeProgress, now: number): string {
  if (n.step === 'pending') return ' '.repeat(2 * TIME_WIDTH + 1);
  const through = n.status !== 'start' && n.status !== 'fail' && isLastStep(n.step);
  const inStep = through ? '' : formatDuration((n.until ?? now) - n.since);
  const total = formatDuration((n.finishedAt ?? now) - n.startedAt);
  return `${inStep.padStart(TIME_WIDTH)} ${total.padStart(TIME_WIDTH)}`;
}

/** What follows the pipeline: a failure's mark (its text is printed in full below), a transfer, or the detail. */
function detailOf(n: NodeProgress): Segment {
  if (n.status === 'fail') return { text: 'failed (see below)', tone: 'bad' };
  if (n.status === 'start' && n.progress?.step === n.step)
    return { text: formatTransfer(n.progress), tone: 'accent' };
  return { text: n.detail ?? '', tone: 'muted' };
}

/**
 * `image › disk › [boot] › ssh …`: steps before the current one done (green), the current
 * one bracketed (and yellow, red when failed), padded so the details line up.
 */
function pipelineSegments(n: NodeProgress, color: boolean): Segment[] {
  const at = PIPELINE.indexOf(n.step as (typeof PIPELINE)[number]);
  if (at < 0) return [{ text: ''.padEnd(PIPELINE_WIDTH) }];
  const finished = n.status === 'done' || n.status === 'skip';
  const segments: Segment[] = [];
  let length = 0;
  PIPELINE.forEach((step, i) => {
    const current = i === at && !finished;
    const text = (i ? ARROW : '') + (current ? `[${step}]` : step);
    const done = i < at || (i === at && finished);
    segments.push({ text, tone: done ? 'good' : current ? (n.status === 'fail' ? 'bad' : 'warn') : 'muted' });
    length += text.length;
  });
  segments.push({ text: ' '.repeat(PIPELINE_WIDTH - length) });
  // Without color the brackets alone say where the node is.
  return color ? segments : segments.map((s) => ({ text: s.text }));
}

export interface UpViewHandle {
  onEvent(event: LabEvent): void;
  /** Draws the final state once and unmounts: the last screen stays in the scrollback. */
  finish(): Promise<void>;
}

/** Redraws at most this often on events; the ticker keeps spinners and times moving in between. */
const EVENT_REDRAW_MS = 100;
const TICK_MS = 250;

/**
 * Renders the up view on stderr (stdout stays for the command's result) and folds events into
 * it. Use only when stderr is a TTY; the plain printer covers pipes and CI.
 */
export function mountUpView(
  nodeNames: readonly string[],
  color: boolean,
  opts: { stream?: NodeJS.WriteStream; now?: () => number } = {},
): UpViewHandle {
  const stream = opts.stream ?? process.stderr;
  const now = opts.now ?? Date.now;
  let state = initialUpState(nodeNames, now());
  const view = () => <UpView state={state} now={now()} color={color} columns={stream.columns || 100} />;
  const ink = render(view(), { stdout: stream, patchConsole: false, exitOnCtrlC: false });
  let pending: NodeJS.Timeout | undefined;
  let finished = false;
  let lastDraw = now();
  const draw = () => {
    pending = undefined;
    lastDraw = now();
    ink.rerender(view());
  };
  const ticker = setInterval(draw, TICK_MS);
  // Never what keeps the process alive: a crash before finish() must still exit.
  ticker.unref();
  return {
    onEvent(event) {
      state = reduceUp(state, event, now());
      if (pending || finished) return;
      pending = setTimeout(draw, Math.max(0, EVENT_REDRAW_MS - (now() - lastDraw)));
      pending.unref();
    },
    async finish() {
      if (finished) return;
      finished = true;
      clearInterval(ticker);
      clearTimeout(pending);
      draw();
      ink.unmount();
      await ink.waitUntilExit();
    },
  };
}

/** A problem found in a Labfile or template, located in its source. */
export interface Issue {
  file: string;
  line: number; // 1-based; 0 when the whole file is meant
  col: number; // 1-based
  message: string;
  /** The offending source line, for the caret display. */
  source?: string;
}

/** An expected failure: printed as message + hint, never with a stack. */
export class LabError extends Error {
  exitCode = 1;
  hint?: string;
  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    if (options?.hint) this.hint = options.hint;
  }
}

/** Bad input: every problem, not just the first. Exit code 2. */
export class LabfileError extends LabError {
  override exitCode = 2;
  constructor(
    public readonly issues: Issue[],
    hint?: string,
  ) {
    super(issues.map(formatIssue).join('\n'), hint === undefined ? undefined : { hint });
  }
}

/** The host cannot do what is asked: no virsh, no bridge, no ISO tool. */
export class HostError extends LabError {}

/** A request that names what does not exist (a node, a checkpoint's node): exit 2, nothing done. */
export class BadInputError extends LabError {
  override exitCode = 2;
}

/** One node failed at one step. */
export class NodeError extends LabError {
  constructor(
    public readonly node: string,
    public readonly step: string,
    message: string,
    options?: { cause?: unknown; hint?: string },
  ) {
    super(`${node}: ${step}: ${message}`, options);
  }
}

/** The user interrupted (Ctrl-C, SIGINT). Exit code 130. */
export class InterruptedError extends LabError {
  override exitCode = 130;
}

/** Asked to stop by SIGTERM (a service manager, `kill`, CI's timeout). Exit code 143. */
export class TerminatedError extends InterruptedError {
  override exitCode = 143;
}

/**
 * Text from a Labfile made safe for a terminal, one character for one so the caret stays
 * under its column: a tab becomes a space, other control characters their control
 * pictures (␛, ␀), bidi overrides and line separators U+FFFD. Newlines stay where `keep`.
 */
export function printable(text: string, keep = ''): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g, (c) => {
    if (keep.includes(c)) return c;
    if (c === '\t') return ' ';
    const code = c.charCodeAt(0);
    if (code < 0x20) return String.fromCharCode(0x2400 + code);
    if (code === 0x7f) return '\u2421';
    return '\ufffd';
  });
}

/** `file:line:col: message`, then the source line and a caret under the column. */
export function formatIssue(issue: Issue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}:${issue.col}` : issue.file;
  let text = `${printable(where)}: ${printable(issue.message, '\n')}`;
  if (issue.source !== undefined && issue.line > 0) {
    const gutter = `${issue.line} | `;
    text += `\n  ${gutter}${printable(issue.source)}\n  ${' '.repeat(gutter.length + Math.max(0, issue.col - 1))}^`;
  }
  return text;
}

/** The message of any thrown value, with the causes chained. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur !== undefined && depth < 5; depth++) {
    if (cur instanceof Error) {
      if (!parts.some((p) => p.includes(cur instanceof Error ? cur.message : ''))) parts.push(cur.message);
      cur = cur.cause;
    } else {
      parts.push(typeof cur === 'string' ? cur : JSON.stringify(cur));
      break;
    }
  }
  return parts.join(': ');
}

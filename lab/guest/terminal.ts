/** Interactive sessions (`lab ssh`): the local terminal wired to one channel, with a pty when it is a TTY. */
import type { ClientChannel, PseudoTtyOptions } from 'ssh2';
import { NodeError } from '../errors.js';
import { exitCodeOf } from './exit-status.js';

/** Terminal streams for `lab ssh`; process.stdin/stdout/stderr by default. */
export interface TerminalIo {
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean; isRaw?: boolean; setRawMode?(mode: boolean): unknown };
  stdout?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number };
  stderr?: NodeJS.WritableStream;
  cols?: number;
  rows?: number;
  term?: string;
}

type TerminalIn = NonNullable<TerminalIo['stdin']>;
type TerminalOut = NonNullable<TerminalIo['stdout']>;

/** Opens a session channel, with the pty when there is one. */
export type OpenChannel = (
  pty: PseudoTtyOptions | undefined,
  cb: (err: Error | undefined, ch: ClientChannel) => void,
) => void;

/** Runs one interactive channel on the local terminal; resolves with its exit status. */
export function runTerminal(node: string, io: TerminalIo, open: OpenChannel): Promise<number> {
  const stdin: TerminalIn = io.stdin ?? process.stdin;
  const stdout: TerminalOut = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const tty = stdin.isTTY === true;
  const pty: PseudoTtyOptions | undefined = tty
    ? {
        rows: io.rows ?? stdout.rows ?? 24,
        cols: io.cols ?? stdout.columns ?? 80,
        term: io.term ?? process.env.TERM ?? 'xterm-256color',
      }
    : undefined;
  return new Promise((resolve, reject) => {
    open(pty, (err, ch) => {
      if (err) {
        reject(new NodeError(node, 'ssh', `cannot open a session: ${err.message}`, { cause: err }));
        return;
      }
      const detach = attachTerminal(ch, stdin, stdout, tty);
      let code: number | undefined;
      let failed: Error | undefined;
      ch.on('error', (e: Error) => {
        failed = e;
        ch.close();
      });
      ch.on('data', (chunk: Buffer) => stdout.write(chunk));
      ch.stderr.on('data', (chunk: Buffer) => stderr.write(chunk));
      ch.on('exit', (exitCode: number | null, exitSignal?: string) => {
        code = exitCodeOf(exitCode, exitSignal);
      });
      ch.on('close', () => {
        detach();
        if (failed) reject(new NodeError(node, 'ssh', failed.message, { cause: failed }));
        else if (code === undefined)
          reject(new NodeError(node, 'ssh', 'connection closed before the session ended'));
        else resolve(code);
      });
    });
  });
}

/**
 * Feeds the local keys (raw, on a TTY) and window size changes to the channel. Returns
 * the undo, which gives the terminal back as it was.
 */
function attachTerminal(ch: ClientChannel, stdin: TerminalIn, stdout: TerminalOut, tty: boolean): () => void {
  const wasRaw = stdin.isRaw === true;
  const rawMode = tty && typeof stdin.setRawMode === 'function';
  if (rawMode) stdin.setRawMode!(true);
  const onInput = (chunk: Buffer | string) => ch.write(chunk);
  const onInputEnd = () => ch.end();
  // Node turns SIGWINCH into 'resize' on a TTY stdout.
  const onResize = () => ch.setWindow(stdout.rows ?? 24, stdout.columns ?? 80, 0, 0);
  stdin.on('data', onInput);
  stdin.on('end', onInputEnd);
  stdin.resume();
  if (tty && stdout.isTTY) stdout.on('resize', onResize);
  return () => {
    stdin.removeListener('data', onInput);
    stdin.removeListener('end', onInputEnd);
    stdout.removeListener('resize', onResize);
    stdin.pause();
    if (rawMode) stdin.setRawMode!(wasRaw);
  };
}

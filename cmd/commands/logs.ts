import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { labContext } from '../../lab/apply/context.js';
import { LabError } from '../../lab/errors.js';
import { ignoreEvents } from '../../lab/events.js';
import { loadLab } from '../../lab/spec/load.js';
import { ConsoleText } from '../../lab/ui/logs/console-text.js';
import { labfilePath, parseFlags, UsageError } from '../args.js';
import { interruptible } from '../signals.js';

const HELP = `Usage: lab logs NODE [-f Labfile.yaml] [--follow] [--lines N] [--raw]

Prints the serial console log lab keeps for NODE (kernel, systemd and the first-boot
provisioning as the guest printed them; a reboot appends to it). The guest's terminal
sequences are removed, so nothing in the log can drive your terminal; --raw prints
the bytes as they are.

Options:
  --follow, -F   keep printing what the guest writes, until Ctrl-C
  --lines N      only the last N lines first
  --raw          the log's bytes, escape sequences included

Examples:
  lab logs coreos1
  lab logs coreos2 --lines 40 --follow
`;

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = constants;
const POLL_MS = 250;

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(
    argv,
    { follow: { type: 'boolean', short: 'F' }, lines: { type: 'string' }, raw: { type: 'boolean' } },
    HELP,
  );
  if (!flags) return 0;
  const [nodeName, ...extra] = flags.positionals;
  if (!nodeName) throw new UsageError('which node? lab logs NODE', { hint: HELP.split('\n')[0] });
  if (extra.length) throw new UsageError(`unexpected ${extra.join(' ')}: lab logs takes one node`);
  const lines = flags.values.lines === undefined ? undefined : Number(flags.values.lines);
  if (lines !== undefined && !(Number.isInteger(lines) && lines >= 0))
    throw new UsageError(`--lines ${String(flags.values.lines)}: expected a whole number of lines`);
  const { lab } = loadLab(labfilePath(flags.values, { reads: true }));
  const node = lab.nodes.find((n) => n.name === nodeName);
  if (!node)
    throw new UsageError(
      `no node "${nodeName}" in lab ${lab.name} (nodes: ${lab.nodes.map((n) => n.name).join(', ')})`,
    );
  const file = labContext(lab, ignoreEvents).dir.nodePaths(node, {}).console;
  const fh = await openLog(file, node.name);
  try {
    const out = new LogWriter(Boolean(flags.values.raw));
    const size = (await fh.stat()).size;
    let offset = lines === undefined ? 0 : await startOfLastLines(fh, size, lines);
    offset = await copy(fh, offset, size, out);
    if (!flags.values.follow) {
      out.end();
      return 0;
    }
    const stop = interruptible('stopping');
    try {
      while (!stop.signal.aborted) {
        await new Promise((r) => setTimeout(r, POLL_MS));
        const now = (await fh.stat()).size;
        if (now < offset) {
          process.stderr.write(`lab logs: ${node.name}'s log was truncated: from its start\n`);
          offset = 0;
        }
        offset = await copy(fh, offset, now, out);
      }
    } finally {
      stop.dispose();
    }
    out.end();
    return 0;
  } finally {
    await fh.close();
  }
}

/** The log, never through a symlink or into a FIFO (the folder is lab's; S10 all the same). */
async function openLog(file: string, node: string): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new LabError(`${node} has no console log yet (${file})`, {
        hint: 'lab up creates it when the node first starts',
      });
    if (code === 'ELOOP') throw new LabError(`refusing ${file}: it is a symlink`);
    throw err;
  }
  if (!(await fh.stat()).isFile()) {
    await fh.close();
    throw new LabError(`refusing ${file}: it is not a regular file`);
  }
  return fh;
}

/** Where the last `n` lines of the first `size` bytes start (0 when there are fewer). */
async function startOfLastLines(fh: FileHandle, size: number, n: number): Promise<number> {
  if (n === 0) return size;
  const block = 64 * 1024;
  let end = size;
  let seen = 0;
  // A last line without its newline is a line too: skip the final newline, if any.
  let skip = true;
  while (end > 0) {
    const start = Math.max(0, end - block);
    const buf = Buffer.alloc(end - start);
    await fh.read(buf, 0, buf.length, start);
    for (let i = buf.length - 1; i >= 0; i--) {
      if (buf[i] !== 0x0a) {
        skip = false;
        continue;
      }
      if (skip) {
        skip = false;
        continue;
      }
      seen += 1;
      if (seen === n) return start + i + 1;
    }
    end = start;
  }
  return 0;
}

/** Copies bytes [from, to) to the writer; returns where it stopped. */
async function copy(fh: FileHandle, from: number, to: number, out: LogWriter): Promise<number> {
  const buf = Buffer.alloc(64 * 1024);
  let at = from;
  while (at < to) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, to - at), at);
    if (bytesRead === 0) break;
    out.write(buf.subarray(0, bytesRead));
    at += bytesRead;
  }
  return at;
}

/** Raw bytes, or text made safe for a terminal (UTF-8 and sequences cut across reads kept whole). */
class LogWriter {
  private readonly decoder = new StringDecoder('utf8');
  private readonly text = new ConsoleText();
  constructor(private readonly raw: boolean) {}
  write(bytes: Buffer): void {
    if (this.raw) process.stdout.write(bytes);
    else process.stdout.write(this.text.push(this.decoder.write(bytes)));
  }
  end(): void {
    if (!this.raw) process.stdout.write(this.text.push(this.decoder.end()) + this.text.end());
  }
}

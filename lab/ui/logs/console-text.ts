/**
 * A guest's serial console log, made safe to print in the instructor's terminal. The
 * bytes come from the guest, which a student controls: an escape sequence in them would
 * be run by the terminal that shows them (set the title, remap keys, hide text). So
 * terminal sequences are removed (CSI `ESC [ ... final`, OSC `ESC ] ... BEL` or
 * `ESC \`, DCS/APC/PM/SOS strings, and two-byte `ESC x`), carriage returns dropped, and
 * any other control character shown as its control picture (printable()). Newlines and
 * tabs stay. Fed in chunks as they are read: a sequence cut by a chunk's end is held
 * until the next chunk completes it. Pure.
 */
import { printable } from '../../errors.js';

// A complete sequence at the start of the text, or a start that may still complete.
// eslint-disable-next-line no-control-regex
const CSI = /^\u001b\[[\u0030-\u003f]*[\u0020-\u002f]*[\u0040-\u007e]/;
// eslint-disable-next-line no-control-regex
const STRING = /^\u001b[\]PX^_][\s\S]*?(\u0007|\u001b\\)/;
// Not [ ] P X ^ _ : those start a CSI or a string, above.
// eslint-disable-next-line no-control-regex
const TWO_BYTE = /^\u001b[\u0020-\u002f]*[\u0030-\u004f\u0051-\u0057\u0059-\u005a\u005c\u0060-\u007e]/;
/** Longest run kept waiting for its end: past it, its ESC is shown and the rest read as text. */
const MAX_PENDING = 4096;

export class ConsoleText {
  private pending = '';

  /** The printable text of `chunk`, what came before it held back included. */
  push(chunk: string): string {
    let text = this.pending + chunk;
    this.pending = '';
    let out = '';
    for (;;) {
      const esc = text.indexOf('\u001b');
      if (esc < 0) {
        out += clean(text);
        return out;
      }
      out += clean(text.slice(0, esc));
      text = text.slice(esc);
      const m = CSI.exec(text) ?? STRING.exec(text) ?? TWO_BYTE.exec(text);
      if (m) {
        text = text.slice(m[0].length);
        continue;
      }
      if (incomplete(text) && text.length < MAX_PENDING) {
        this.pending = text;
        return out;
      }
      // Not a sequence (or one too long to be real): show the ESC, go on after it.
      out += printable('\u001b');
      text = text.slice(1);
    }
  }

  /** What is still held at the end of the input: an unfinished sequence is dropped. */
  end(): string {
    this.pending = '';
    return '';
  }
}

/** The text, or the start of a sequence that more bytes could still complete. */
function incomplete(text: string): boolean {
  if (text.length === 1) return true; // a lone ESC
  const second = text[1]!;
  // eslint-disable-next-line no-control-regex
  if (second === '[') return /^\u001b\[[\u0030-\u003f]*[\u0020-\u002f]*$/.test(text);
  // eslint-disable-next-line no-control-regex
  if (']PX^_'.includes(second)) return !/(\u0007|\u001b\\)/.test(text.slice(2));
  // eslint-disable-next-line no-control-regex
  return /^\u001b[\u0020-\u002f]*$/.test(text);
}

/** Carriage returns out (a serial console's CRLF), other controls as pictures. */
function clean(text: string): string {
  return printable(text.replaceAll('\r', ''), '\n\t');
}

// A guest's console log made safe for the terminal that shows it (lab logs).
import { describe, expect, it } from 'vitest';
import { ConsoleText } from '../../../lab/ui/logs/console-text.js';

const once = (text: string) => {
  const t = new ConsoleText();
  return t.push(text) + t.end();
};

describe('ConsoleText', () => {
  it("drops systemd's colours and the console's carriage returns, keeps the text", () => {
    expect(
      once('[\u001b[0;32m  OK  \u001b[0m] Reached target \u001b[0;1;39mmulti-user.target\u001b[0m.\r\n'),
    ).toBe('[  OK  ] Reached target multi-user.target.\n');
  });
  it('removes what a guest could use to drive the terminal: titles, DCS strings, cursor moves, charset switches', () => {
    expect(
      once('a\u001b]0;pwned\u0007b\u001b]2;x\u001b\\c\u001bP1$r\u001b\\d\u001b[2J\u001b[Ae\u001b(0f\u001bcg'),
    ).toBe('abcdefg');
  });
  it('shows other control characters as their pictures, keeps tabs and newlines', () => {
    expect(once('x\u0000y\u0008z\tw\n\u007f')).toBe('x\u2400y\u2408z\tw\n\u2421');
  });
  it('holds a sequence cut between two reads until it is whole', () => {
    const t = new ConsoleText();
    expect(t.push('ok \u001b[0;3')).toBe('ok ');
    expect(t.push('2mgreen\u001b')).toBe('green');
    expect(t.push('[0m done\u001b]0;ti')).toBe(' done');
    expect(t.push('tle\u0007!')).toBe('!');
    expect(t.end()).toBe('');
  });
  it('an ESC that starts no sequence is shown, not swallowed with what follows', () => {
    expect(once('a\u001b\u0001b')).toBe('a\u241b\u2401b');
  });
  it('gives up on an unterminated string past 4 KiB: the text after it is not lost for ever', () => {
    const t = new ConsoleText();
    expect(t.push('\u001b]0;' + 'x'.repeat(5000))).toBe('\u241b]0;' + 'x'.repeat(5000));
  });
});

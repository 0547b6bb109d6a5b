import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { fingerprintOf, shellQuote } from '../../../lab/guest/ssh.js';
import { hostKey } from '../../../lab/plan/identity.js';

const hostile = [
  'a b',
  '',
  "it's",
  "''",
  '"double" quotes',
  '$(touch /tmp/lab-pwned)',
  '`id`',
  '$HOME ${PATH}',
  'line1\nline2',
  'trailing newline\n',
  '; rm -rf / #',
  'a && b || c | d > e < f',
  '*',
  '~',
  '-n',
  '\\',
  "back\\'slash",
  'tab\there',
  'ünïcödé ✓',
];

describe('shellQuote', () => {
  it.each(hostile)('passes %j through a real /bin/sh unchanged', (arg) => {
    const script = `printf '%s\\0' ${shellQuote([arg, 'next'])}`;
    const out = execFileSync('/bin/sh', ['-c', script], { encoding: 'utf8' });
    expect(out.split('\0').slice(0, -1)).toEqual([arg, 'next']);
  });

  it('passes all of them at once, as separate words', () => {
    const out = execFileSync('/bin/sh', ['-c', `printf '%s\\n\\0' ${shellQuote(hostile)}`], {
      encoding: 'utf8',
    });
    expect(out.split('\n\0').slice(0, -1)).toEqual(hostile);
  });

  it('quotes every word, even harmless ones', () => {
    expect(shellQuote(['echo', 'a b', "it's"])).toBe(`'echo' 'a b' 'it'\\''s'`);
  });

  it('refuses a NUL byte rather than truncating', () => {
    expect(() => shellQuote(['a\0b'])).toThrow(/NUL/);
  });
});

describe('fingerprintOf', () => {
  it('matches the fingerprint identity.ts computes', () => {
    const k = hostKey(Buffer.alloc(32, 1), 't', 'n1');
    expect(fingerprintOf(k.publicBlob)).toBe(k.fingerprint);
  });
});

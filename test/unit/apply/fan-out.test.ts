import { describe, expect, it } from 'vitest';
import { fanOutSummary, prefixed, type FanOutResult } from '../../../lab/apply/fan-out.js';
import { parseLinkState } from '../../../lab/providers/drills.js';
import { assertMatchesSchema } from '../../support/json-schema.js';

const r = (node: string, code: number | null, out = '', err = '', error?: string): FanOutResult => ({
  node,
  code,
  stdout: out,
  stderr: err,
  ...(error ? { error } : {}),
  ms: 1,
});

describe('lab exec output', () => {
  it('prefixes every line with the node, padded; stderr is marked apart; a last line without newline is kept', () => {
    const p = prefixed(r('m1', 0, 'one\ntwo\n', 'warn'), 6);
    expect(p.stdout).toBe('m1     | one\nm1     | two\n');
    expect(p.stderr).toBe('m1     ! warn\n');
    expect(prefixed(r('m1', 0), 2)).toEqual({ stdout: '', stderr: '' });
    expect(prefixed(r('m1', 0, '\n'), 2).stdout).toBe('m1 | \n');
  });

  it('the summary names each node that did not exit 0, and why', () => {
    const s = fanOutSummary([r('a', 0), r('b', 3), r('c', null, '', '', 'shut off, not running')]);
    expect(s.failed).toEqual(['b', 'c']);
    expect(s.text).toBe('3 nodes: 1 exited 0; b exited 3; c: shut off, not running');
    expect(fanOutSummary([r('a', 0)])).toEqual({ text: '1 node: 1 exited 0', failed: [] });
    assertMatchesSchema('exec', [r('a', 0, 'x\n'), r('c', null, '', '', 'shut off, not running')]);
  });
});

describe('virsh domif-getlink', () => {
  it('reads the state from the last word (MAC or interface first)', () => {
    expect(parseLinkState('52:54:00:aa:bb:cc up\n')).toBe('up');
    expect(parseLinkState('vnet3 down')).toBe('down');
    expect(parseLinkState('')).toBeUndefined();
    expect(parseLinkState('vnet3 unknown')).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import { durationFlag, splitAtDashes } from '../../../cmd/args.js';

describe('the argument helpers of lab ssh, exec and stop', () => {
  it('splits at the first --: the command keeps its own -- and flags', () => {
    expect(splitAtDashes(['n1', '-f', 'L', '--', 'sh', '-c', 'x', '--', '-y'])).toEqual({
      own: ['n1', '-f', 'L'],
      command: ['sh', '-c', 'x', '--', '-y'],
    });
    expect(splitAtDashes(['n1'])).toEqual({ own: ['n1'], command: [] });
  });

  it('a duration flag: its value, the fallback when absent, exit 2 for zero or nonsense', () => {
    expect(durationFlag('timeout', '30s', 5)).toBe(30_000);
    expect(durationFlag('timeout', '2m', 5)).toBe(120_000);
    expect(durationFlag('timeout', undefined, 5)).toBe(5);
    for (const bad of ['0', 'soon', '-3s'])
      expect(() => durationFlag('timeout', bad, 5)).toThrow(
        expect.objectContaining({
          exitCode: 2,
          message: `--timeout "${bad}": expected a duration such as 30s or 10m`,
        }),
      );
  });
});

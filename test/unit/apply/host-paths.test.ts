import { describe, expect, it } from 'vitest';
import { untraversable } from '../../../lab/apply/host-paths.js';

const tree = (modes: Record<string, number>) => (p: string) =>
  modes[p] === undefined ? undefined : { mode: 0o40000 | modes[p] };

describe('folders QEMU must be able to enter', () => {
  it('finds the first parent without o+x', () => {
    const stat = tree({ '/': 0o755, '/root': 0o700, '/root/labs': 0o755, '/root/labs/x': 0o711 });
    expect(untraversable('/root/labs/x', stat)).toEqual({ dir: '/root', mode: 0o700 });
  });
  it('accepts a path whose every folder has o+x, and stops at the first missing one', () => {
    const stat = tree({ '/': 0o755, '/var': 0o755, '/var/lib': 0o751 });
    expect(untraversable('/var/lib/lab/demo', stat)).toBeUndefined();
    expect(untraversable('/var/lib', stat)).toBeUndefined();
  });
  it('a 0711 folder is enough (enter without listing)', () => {
    const stat = tree({ '/': 0o755, '/srv': 0o711, '/srv/lab': 0o710 });
    expect(untraversable('/srv/lab', stat)).toEqual({ dir: '/srv/lab', mode: 0o710 });
  });
});

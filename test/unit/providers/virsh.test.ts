import { describe, expect, it } from 'vitest';
import { parseDomainList } from '../../../lab/providers/virsh.js';

describe('parseDomainList', () => {
  it('reads running and shut-off domains, with the space in "shut off"', () => {
    const out = ` Id   Name      State
--------------------------
 3    coreos1   running
 -    coreos2   shut off
 -    other     paused

`;
    expect([...parseDomainList(out)]).toEqual([
      ['coreos1', 'running'],
      ['coreos2', 'shut off'],
      ['other', 'paused'],
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import { parseAddresses, parseDf } from '../../../lab/apply/monitor.js';

describe('guest details parsers', () => {
  it('ip -o addr lines to "dev address"', () => {
    const out =
      '2: enp1s0    inet 10.77.0.11/24 brd 10.77.0.255 scope global enp1s0\\       valid_lft forever preferred_lft forever\n' +
      '3: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\\       valid_lft forever\n';
    expect(parseAddresses(out)).toEqual(['enp1s0 10.77.0.11/24', 'docker0 172.17.0.1/16']);
  });
  it('df output to "used of size (pcent)"', () => {
    expect(parseDf(' Used  Size Use%\n 1.2G  3.9G  31%\n')).toBe('1.2G of 3.9G (31%)');
    expect(parseDf('')).toBeNull();
  });
});

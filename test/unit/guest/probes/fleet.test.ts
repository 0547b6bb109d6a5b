import { describe, expect, it } from 'vitest';
import {
  parseFleetMachines,
  parseFleetTable,
  parseFleetUnits,
  probeFleet,
} from '../../../../lab/guest/probes/fleet.js';
import { fakeExec } from './fake-exec.js';

// From the CoreOS walkthrough (seed/coreos-intro.ja.txt): padded with spaces there.
const MACHINES = `MACHINE         IP              METADATA
deb19cd2...     192.168.2.53    -
960a9f62...     192.168.2.52    -
`;
const UNITS_SUBMITTED = `UNIT                    LOAD    ACTIVE  SUB     DESC                    MACHINE
apache.1.service        -       -       -       My Apache Frontend      -
apache.2.service        -       -       -       My Apache Frontend      -
hello.service           -       -       -       MyApp                   -
`;
const UNITS_STARTED = `UNIT                    LOAD    ACTIVE  SUB     DESC                    MACHINE
apache.1.service        loaded  active  running My Apache Frontend      960a9f62.../192.168.2.52
apache.2.service        loaded  active  running My Apache Frontend      deb19cd2.../192.168.2.53
`;
// fleetctl itself pads with tabs (Go tabwriter, tab width 8); `-l` prints whole machine-ids.
const MACHINES_LONG =
  'MACHINE\t\t\t\t\tIP\t\tMETADATA\n' +
  'deb19cd2e7a54c8a9b5d1e0f3c6a7b82\t192.168.2.53\tregion=tokyo,role=web\n' +
  '960a9f62c1d84b3e8f7a6b5c4d3e2f10\t192.168.2.52\t-\n';

describe('parseFleetTable', () => {
  it('cuts cells at the header columns, keeping spaces inside a cell', () => {
    expect(parseFleetTable(UNITS_STARTED)[0]).toEqual({
      unit: 'apache.1.service',
      load: 'loaded',
      active: 'active',
      sub: 'running',
      desc: 'My Apache Frontend',
      machine: '960a9f62.../192.168.2.52',
    });
  });

  it('is empty for output without a table', () => {
    expect(parseFleetTable('')).toEqual([]);
    expect(parseFleetTable('Error retrieving list of active machines: googleapi: Error 503\n')).toEqual([]);
  });
});

describe('parseFleetMachines', () => {
  it('reads the walkthrough listing (truncated ids)', () => {
    expect(parseFleetMachines(MACHINES)).toEqual([
      { id: 'deb19cd2', truncated: true, ip: '192.168.2.53', metadata: {} },
      { id: '960a9f62', truncated: true, ip: '192.168.2.52', metadata: {} },
    ]);
  });

  it('reads tab-padded -l output with whole ids and metadata', () => {
    expect(parseFleetMachines(MACHINES_LONG)).toEqual([
      {
        id: 'deb19cd2e7a54c8a9b5d1e0f3c6a7b82',
        truncated: false,
        ip: '192.168.2.53',
        metadata: { region: 'tokyo', role: 'web' },
      },
      { id: '960a9f62c1d84b3e8f7a6b5c4d3e2f10', truncated: false, ip: '192.168.2.52', metadata: {} },
    ]);
  });
});

describe('parseFleetUnits', () => {
  it('reads submitted, not yet scheduled units: `-` columns are absent', () => {
    expect(parseFleetUnits(UNITS_SUBMITTED)).toEqual([
      { unit: 'apache.1.service', desc: 'My Apache Frontend' },
      { unit: 'apache.2.service', desc: 'My Apache Frontend' },
      { unit: 'hello.service', desc: 'MyApp' },
    ]);
  });

  it('reads running units and the machine each runs on', () => {
    expect(parseFleetUnits(UNITS_STARTED)).toEqual([
      {
        unit: 'apache.1.service',
        load: 'loaded',
        active: 'active',
        sub: 'running',
        desc: 'My Apache Frontend',
        machineId: '960a9f62',
        machineIp: '192.168.2.52',
      },
      {
        unit: 'apache.2.service',
        load: 'loaded',
        active: 'active',
        sub: 'running',
        desc: 'My Apache Frontend',
        machineId: 'deb19cd2',
        machineIp: '192.168.2.53',
      },
    ]);
  });

  it('reads the walkthrough single-unit listing', () => {
    const text = `UNIT            LOAD    ACTIVE  SUB     DESC    MACHINE
hello.service   loaded  active  running MyApp   960a9f62.../192.168.2.52
`;
    expect(parseFleetUnits(text)).toEqual([
      {
        unit: 'hello.service',
        load: 'loaded',
        active: 'active',
        sub: 'running',
        desc: 'MyApp',
        machineId: '960a9f62',
        machineIp: '192.168.2.52',
      },
    ]);
  });
});

describe('probeFleet', () => {
  it('is absent when the image has no fleetctl (Debian 12)', async () => {
    const exec = fakeExec({ 'sh -c command -v fleetctl': { code: 1 } });
    expect(await probeFleet(exec)).toBe('absent');
    expect(exec.calls).toHaveLength(1);
  });

  it('lists machines and units when fleetctl is there', async () => {
    const exec = fakeExec({
      'sh -c command -v fleetctl': { stdout: '/usr/bin/fleetctl\n' },
      'fleetctl list-machines -l': { stdout: MACHINES_LONG },
      'fleetctl list-units -l': {
        code: 1,
        stderr:
          'Error retrieving list of units from repository: googleapi: Error 503: fleet server unable to communicate with etcd\n',
      },
    });
    const h = await probeFleet(exec);
    expect(h).not.toBe('absent');
    if (h === 'absent') return;
    expect(h.machines.map((m) => m.ip)).toEqual(['192.168.2.53', '192.168.2.52']);
    expect(h.units).toEqual([]);
    expect(h.error).toMatch(/^list-units: exit code 1: Error retrieving list of units/);
  });
});

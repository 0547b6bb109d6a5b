// ignition-validate's report, as lab reads it (the program itself runs in
// test/contract/coreos.test.ts and test/unit/cli/validate-ignition.test.ts).
import { describe, expect, it } from 'vitest';
import {
  IGNITION_VALIDATE_VERSIONS,
  parseIgnitionValidate,
} from '../../../lab/providers/ignition-validate.js';

describe('parseIgnitionValidate', () => {
  it('reads errors and warnings with their JSON path, as Ignition 2.14 prints them', () => {
    expect(
      parseIgnitionValidate(
        'error at $.storage.files.1, line 1 col 104: duplicate entry defined\n' +
          'warning at $.storage.files.0.mode, line 1 col 77: setuid/setgid/sticky bits are not supported in spec versions older than 3.4.0\n',
      ),
    ).toEqual([
      { level: 'error', at: ['storage', 'files', '1'], message: 'duplicate entry defined' },
      {
        level: 'warning',
        at: ['storage', 'files', '0', 'mode'],
        message: 'setuid/setgid/sticky bits are not supported in spec versions older than 3.4.0',
      },
    ]);
  });
  it('a line of another shape is an error about the whole config', () => {
    expect(parseIgnitionValidate("couldn't parse config: unsupported config version\n")).toEqual([
      { level: 'error', at: [], message: "couldn't parse config: unsupported config version" },
    ]);
    expect(parseIgnitionValidate('\n\n')).toEqual([]);
  });
  it('runs only on the spec versions Ignition 2.14 reads', () => {
    for (const v of ['3.0.0', '3.1.0', '3.2.0', '3.3.0'])
      expect(IGNITION_VALIDATE_VERSIONS.test(v)).toBe(true);
    for (const v of ['3.4.0', '3.5.0', '2.2.0', '3.3.1'])
      expect(IGNITION_VALIDATE_VERSIONS.test(v)).toBe(false);
  });
});

import { LabError } from '../lab/errors.js';

/** A usage mistake: exit 2, with the command's usage line as the hint. */
export class UsageError extends LabError {
  override exitCode = 2;
}

// lab start: one of the failure drills, all in drill.ts.
import { drillCommand } from './drill.js';

export const { run } = drillCommand('start');

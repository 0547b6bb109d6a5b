// Takes the lock given as argv[2], says so on stdout, then waits until killed.
import { acquireLock } from '../../../lab/store/lock.js';

await acquireLock(process.argv[2]!, 'lab t');
process.stdout.write('held\n');
setInterval(() => {}, 60_000);

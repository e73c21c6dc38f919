// A child process of the data-lock race test: says it is ready, waits for the moment it is told,
// takes the data directory's lock, reports the outcome and holds a won lock until told to exit.
import { createInterface } from 'node:readline';
import { lockDataDir } from '../../runtime/data-lock.ts';
import type { AnxError } from '../../runtime/errors.ts';

const dataDir = process.argv[2] as string;
const lines = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
lines.on('line', (line) => {
  const [word, at] = line.split(' ');
  if (word !== 'go') return process.exit(0);
  // Spin to the shared moment so that every contender tries within the same fraction of a millisecond.
  while (Date.now() < Number(at)) {}
  try {
    lockDataDir(dataDir);
    process.stdout.write('took\n');
  } catch (err) {
    process.stdout.write(`${(err as AnxError).code ?? (err as Error).message}\n`);
  }
});

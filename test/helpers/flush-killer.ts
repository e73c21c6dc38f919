// A child process of the durability test: commits a batch through the kernel's commit queue and kills
// itself with SIGKILL. With `follow-up` it dies in that commit's follow-up (where the runtime acknowledges,
// dispatches and answers): whatever a follow-up could promise must be flushed to the file by then. With
// `visible` it dies the moment a reader sees the batch, before the queue reports the commit: the control
// that shows the test's flushed view can be behind what readers saw.
import { CommitQueue } from '../../runtime/store/commit-queue.ts';
import { openStore } from '../../runtime/store/store.ts';

const [dataDir, countArg, mode] = process.argv.slice(2) as [string, string, 'follow-up' | 'visible'];
// Bounded: a child that somehow never gets to its kill exits on its own (the test then fails on its status).
setTimeout(() => process.exit(3), 20_000).unref();
const store = openStore(dataDir);
const queue = new CommitQueue(store.root);
const count = Number(countArg);
// Earlier commits first, so the killed one is not the environment's first.
for (let round = 0; round < 3; round++) {
  for (let i = 0; i < count; i++) queue.put(store.records, ['warm', round, i], 'x'.repeat(200));
  await queue.flush();
}
for (let i = 0; i < count; i++) queue.put(store.records, ['acked', i], 'y'.repeat(200));
queue.afterCommit(() => process.kill(process.pid, 'SIGKILL'));
void queue.flush();
if (mode === 'visible') {
  const last = ['acked', count - 1];
  const poll = (): void => {
    store.root.resetReadTxn();
    if (store.records.get(last) !== undefined) process.kill(process.pid, 'SIGKILL');
    setImmediate(poll);
  };
  poll();
}

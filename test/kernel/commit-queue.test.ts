// The group commit queue: withdrawn writes, waiting for the commit of a batch, and flushes that stand behind commits in flight.
import { afterEach, expect, it } from 'vitest';
import { CommitQueue } from '../../runtime/store/commit-queue.ts';
import { openStore, type Store } from '../../runtime/store/store.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
  cleanupTempDirs();
});

it('skips a write withdrawn before its commit starts, and refuses to withdraw one already committing', async () => {
  store = openStore(tempDir());
  const q = new CommitQueue(store.root);
  const kept = q.putWithdrawable(store.meta, 'kept', 1);
  const gone = q.putWithdrawable(store.meta, 'gone', 2);
  expect(q.withdraw(gone)).toBe(true);
  const flushing = q.flush();
  expect(q.withdraw(kept)).toBe(false);
  await flushing;
  expect(store.meta.get('kept')).toBe(1);
  expect(store.meta.get('gone')).toBeUndefined();
});

it('makes a lazy value only for a write still staged when its transaction runs', async () => {
  store = openStore(tempDir());
  const q = new CommitQueue(store.root);
  const made: string[] = [];
  const make = (name: string, value: number) => () => {
    made.push(name);
    return value;
  };
  q.putLazy(store.meta, 'kept', make('kept', 1));
  expect(q.withdraw(q.putLazy(store.meta, 'gone', make('gone', 2)))).toBe(true);
  expect(made).toEqual([]);
  await q.flush();
  expect(made).toEqual(['kept']);
  expect(store.meta.get('kept')).toBe(1);
  expect(store.meta.get('gone')).toBeUndefined();
});

it('resolves committed() at the commit of the batch staged now, whoever starts it', async () => {
  store = openStore(tempDir());
  const q = new CommitQueue(store.root);
  const order: string[] = [];
  q.put(store.meta, 'a', 1);
  q.afterCommit(() => order.push('callback'));
  const committed = q.committed().then(() => order.push('committed'));
  await Promise.resolve();
  expect(order).toEqual([]);
  void q.flush();
  await committed;
  expect(order).toEqual(['callback', 'committed']);
  expect(store.meta.get('a')).toBe(1);
});

it('makes a flush with nothing staged wait for the commit in flight', async () => {
  store = openStore(tempDir());
  const q = new CommitQueue(store.root);
  q.put(store.meta, 'big', new Uint8Array(4 << 20));
  let first = false;
  const inFlight = q.flush().then(() => {
    first = true;
  });
  // Someone else flushed these writes: an empty flush, a callback-only flush and drain() all stand behind it.
  await q.flush();
  expect(first).toBe(true);
  q.put(store.meta, 'next', 1);
  void q.flush();
  let ran = false;
  q.afterCommit(() => {
    ran = true;
    expect(store?.meta.get('next')).toBe(1);
  });
  await q.flush();
  expect(ran).toBe(true);
  await inFlight;
  await q.drain();
});

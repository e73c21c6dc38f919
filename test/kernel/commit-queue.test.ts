// The group commit queue: withdrawn writes, waiting for the commit of a batch, flushes that stand behind commits in flight,
// and which batches commit on the calling thread.
import { afterEach, expect, it } from 'vitest';
import { CommitQueue, INLINE_COMMIT_MAX_WRITES } from '../../runtime/store/commit-queue.ts';
import { openStore, type Store } from '../../runtime/store/store.ts';
import { watchTransactions } from '../helpers/lmdb.ts';
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

it('commits a small batch on this thread when nothing else is committing, and the rest on the write thread', async () => {
  store = openStore(tempDir());
  const q = new CommitQueue(store.root);
  const taken = watchTransactions(store.root).paths;
  // Small, nothing in flight: committed before flush() returns.
  q.put(store.meta, 'small', 1);
  const small = q.flush();
  expect(taken).toEqual(['inline']);
  expect(store.meta.get('small')).toBe(1);
  await small;
  // Larger than the limit: the write thread.
  for (let i = 0; i <= INLINE_COMMIT_MAX_WRITES; i++) q.put(store.meta, `big-${i}`, i);
  const big = q.flush();
  // Small, but staged while the big one commits: the write thread too, after it, in order.
  q.put(store.meta, `big-${INLINE_COMMIT_MAX_WRITES}`, 'last');
  const behind = q.flush();
  expect(taken).toEqual(['inline', 'thread', 'thread']);
  await Promise.all([big, behind]);
  expect(store.meta.get('big-0')).toBe(0);
  expect(store.meta.get(`big-${INLINE_COMMIT_MAX_WRITES}`)).toBe('last');
});

it('commits all or nothing on either path, and reports the failure', async () => {
  store = openStore(tempDir());
  const taken = watchTransactions(store.root).paths;
  for (const writes of [2, INLINE_COMMIT_MAX_WRITES + 2]) {
    const q = new CommitQueue(store.root);
    const failures: unknown[] = [];
    q.onFailure((err) => failures.push(err));
    for (let i = 0; i < writes - 1; i++) q.put(store.meta, `w${writes}-${i}`, i);
    // A key longer than LMDB allows makes its put throw inside the transaction.
    q.put(store.meta, 'k'.repeat(4096), 'too long a key');
    let ran = false;
    q.afterCommit(() => {
      ran = true;
    });
    const waiter = q.committed();
    await q.flush();
    await expect(waiter).rejects.toThrow();
    expect(failures).toHaveLength(1);
    expect(ran).toBe(false);
    expect([writes, store.meta.get(`w${writes}-0`)]).toEqual([writes, undefined]);
  }
  expect(taken).toEqual(['inline', 'thread']);
});

it('runs the callbacks registered first before the others of their commit, each list in staging order', async () => {
  store = openStore(tempDir());
  const q = new CommitQueue(store.root);
  const order: string[] = [];
  q.put(store.meta, 'a', 1);
  q.afterCommit(() => order.push('event 1'));
  q.afterCommit(() => order.push('record 1'), true);
  q.afterCommit(() => order.push('event 2'));
  q.afterCommit(() => order.push('record 2'), true);
  await q.flush();
  expect(order).toEqual(['record 1', 'record 2', 'event 1', 'event 2']);
  // A batch holding only a first callback still commits and runs it.
  q.afterCommit(() => order.push('alone'), true);
  await q.flush();
  expect(order.at(-1)).toBe('alone');
});

// The event indexes trail the events by a bounded tail: queries read the same as with every entry written at
// once, before and after the tail is written, across a restart that reads it back, and on a data directory
// written before the tail existed.
import type { Key } from 'lmdb';
import { afterEach, expect, it } from 'vitest';
import { systemClock } from '../../runtime/clock.ts';
import type { EventInput, EventV1 } from '../../runtime/events/event.ts';
import { EventLog, INDEX_TAIL_EVENTS, INDEXED_THROUGH_KEY } from '../../runtime/events/log.ts';
import { CommitQueue } from '../../runtime/store/commit-queue.ts';
import { openStore, type Store } from '../../runtime/store/store.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
  cleanupTempDirs();
});

/** Event `i` of a mix of runs, tasks and actors; some events name no run or no task. */
function input(i: number): EventInput {
  const e: EventInput = { kind: 'status', payload: { i }, actor: `actor/${i % 3}` };
  if (i % 4 !== 0) e.run_id = `run-${i % 2}`;
  if (i % 5 !== 0) e.task_id = `run-${i % 2}/t${i % 7}`;
  return e;
}

/** What a query must return: every event under `id`, chosen as `trace` chooses (run, then task, then actor). */
function expected(all: EventV1[], id: string): number[] {
  for (const field of ['run_id', 'task_id', 'actor'] as const) {
    const seqs = all.filter((e) => e[field] === id).map((e) => e.seq);
    if (seqs.length > 0) return seqs;
  }
  return [];
}

const IDS = ['run-0', 'run-1', 'run-1/t3', 'run-0/t0', 'actor/0', 'actor/2', 'nobody'];

function expectQueriesRight(log: EventLog, all: EventV1[]): void {
  for (const id of IDS) {
    const want = expected(all, id);
    expect(
      log.trace(id).map((e) => e.seq),
      id,
    ).toEqual(want);
    expect(log.count(id), id).toBe(want.length);
    const mid = want[Math.floor(want.length / 2)] ?? 0;
    expect(
      log.trace(id, { afterSeq: mid }).map((e) => e.seq),
      `${id} after ${mid}`,
    ).toEqual(want.filter((s) => s > mid));
  }
}

function indexed(s: Store): number {
  let n = 0;
  for (const db of [s.eventsByRun, s.eventsByTask, s.eventsByActor]) n += db.getKeysCount({});
  return n;
}

async function append(log: EventLog, q: CommitQueue, from: number, to: number): Promise<EventV1[]> {
  const out: EventV1[] = [];
  for (let i = from; i < to; i++) {
    out.push(log.append(input(i)));
    // Several events per group commit, as a busy actor writes them.
    if (i % 7 === 6) await q.flush();
  }
  await q.flush();
  return out;
}

it('answers from the tail in memory until the index entries are written, then from the databases', async () => {
  store = openStore(tempDir());
  const q = new CommitQueue(store.root);
  const log = new EventLog(store, q, systemClock);
  const all = await append(log, q, 0, INDEX_TAIL_EVENTS - 1);
  // Nothing indexed yet: the watermark says so, and every query still finds every event.
  expect(indexed(store)).toBe(0);
  expect(store.meta.get(INDEXED_THROUGH_KEY)).toBe(0);
  expectQueriesRight(log, all);

  // The event that fills the tail writes every entry, and the watermark, in its own commit.
  all.push(...(await append(log, q, INDEX_TAIL_EVENTS - 1, INDEX_TAIL_EVENTS)));
  expect(store.meta.get(INDEXED_THROUGH_KEY)).toBe(INDEX_TAIL_EVENTS);
  const runEntries = [...store.eventsByRun.getKeys({})].map((k) => (k as Key[])[1] as number);
  expect(runEntries.sort((a, b) => a - b)).toEqual(
    all.filter((e) => e.run_id !== undefined).map((e) => e.seq),
  );
  expectQueriesRight(log, all);

  // Half in the databases, half in the tail.
  all.push(...(await append(log, q, INDEX_TAIL_EVENTS, INDEX_TAIL_EVENTS + 100)));
  expectQueriesRight(log, all);
  expect(log.trace('run-1', { limit: 3 }).map((e) => e.seq)).toEqual(expected(all, 'run-1').slice(0, 3));
});

it('reads the tail back after a crash, and a clean stop writes it', async () => {
  const dir = tempDir();
  store = openStore(dir);
  let q = new CommitQueue(store.root);
  const first = new EventLog(store, q, systemClock);
  const all = await append(first, q, 0, INDEX_TAIL_EVENTS + 40);
  // The host dies here: the tail of 40 was never written. The next start reads it back from the events.
  await store.close();
  store = openStore(dir);
  q = new CommitQueue(store.root);
  const second = new EventLog(store, q, systemClock);
  expectQueriesRight(second, all);
  all.push(...(await append(second, q, INDEX_TAIL_EVENTS + 40, INDEX_TAIL_EVENTS + 60)));
  expectQueriesRight(second, all);

  second.writeIndex();
  await q.flush();
  expect(store.meta.get(INDEXED_THROUGH_KEY)).toBe(all.length);
  expect(store.eventsByActor.getKeysCount({})).toBe(all.length);
  expectQueriesRight(second, all);
});

it('writes each entry once when the index is written while a query is reading, and entries land in between', async () => {
  store = openStore(tempDir());
  const q = new CommitQueue(store.root);
  const log = new EventLog(store, q, systemClock);
  const all = await append(log, q, 0, 30);
  // Runs after the commit and before the log drops the entries that landed: both hold them then.
  let inBetween = false;
  q.afterCommit(() => {
    expect(store?.eventsByActor.getKeysCount({})).toBe(30);
    expectQueriesRight(log, all);
    inBetween = true;
  });
  // Staged, not committed: the tail moves to the entries waiting to land and queries still find them.
  log.writeIndex();
  expectQueriesRight(log, all);
  const landing = q.flush();
  expectQueriesRight(log, all);
  await landing;
  expect(inBetween).toBe(true);
  expectQueriesRight(log, all);
});

it('takes a data directory from before the tail as wholly indexed, and keeps the watermark from its next event', async () => {
  const dir = tempDir();
  store = openStore(dir);
  // As the runtime wrote events before: each with its index entries, and no watermark.
  const old: EventV1[] = [];
  await store.root.transaction(() => {
    for (let i = 0; i < 20; i++) {
      const e: EventV1 = { schema_version: '1', seq: i + 1, ts: 1_000 + i, ...input(i) };
      old.push(e);
      store?.events.put(e.seq, e);
      if (e.run_id !== undefined) store?.eventsByRun.put([e.run_id, e.seq], null);
      if (e.task_id !== undefined) store?.eventsByTask.put([e.task_id, e.seq], null);
      if (e.actor !== undefined) store?.eventsByActor.put([e.actor, e.seq], null);
    }
  });
  const q = new CommitQueue(store.root);
  const log = new EventLog(store, q, systemClock);
  expectQueriesRight(log, old);
  const all = old.concat(await append(log, q, 20, 25));
  expect(store.meta.get(INDEXED_THROUGH_KEY)).toBe(20);
  expectQueriesRight(log, all);
  await store.close();
  store = openStore(dir);
  expectQueriesRight(new EventLog(store, new CommitQueue(store.root), systemClock), all);
});

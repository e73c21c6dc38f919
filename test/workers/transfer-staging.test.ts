// The home's staging of chunked deliveries on a real LMDB: durable across a restart, checked whole, dropped when stale or
// over; and the checks of transfer fields and chunks against hostile input.
import { randomBytes } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import {
  ArtifactTooLargeError,
  checkChunk,
  checkHead,
  chunkOf,
  headOf,
  REMOTE_CHUNK_BYTES,
  sha256Hex,
  TRANSFER_IDLE_MS,
  TransferIncompleteError,
  TransferMismatchError,
  TransferStaging,
} from '../../actors/remote-transfer.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { ActorSystem } from '../../runtime/kernel/actor-system.ts';
import { openStore, type Store } from '../../runtime/store/store.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const W = 'did:agentnexus:z6MkworkerWorkerWorkerWorkerWorkerWorkerWork';
const open: Array<{ sys: ActorSystem; store: Store; staging: TransferStaging }> = [];
/** Tasks the staging is told are still open. */
const openTasks = new Set<string>();

async function boot(dir: string, clock: ManualClock) {
  const store = openStore(dir);
  const sys = new ActorSystem({ store, clock });
  await sys.start();
  const staging = new TransferStaging(sys, (worker, taskId) => openTasks.has(`${worker} ${taskId}`));
  const entry = { sys, store, staging };
  open.push(entry);
  return entry;
}

async function shutdown(entry: (typeof open)[number]): Promise<void> {
  open.splice(open.indexOf(entry), 1);
  entry.staging.close();
  await entry.sys.stop();
  await entry.store.close();
}

afterEach(async () => {
  for (const entry of [...open]) await shutdown(entry);
  openTasks.clear();
  cleanupTempDirs();
});

/** Stages chunks `indexes` of `content` for task `taskId` and commits them. */
async function stage(
  s: { sys: ActorSystem; staging: TransferStaging },
  taskId: string,
  content: Uint8Array,
  indexes: number[],
) {
  const head = headOf(content);
  for (const i of indexes) s.staging.put(W, taskId, head, i, chunkOf(content, i));
  await s.sys.commits.flush();
  return head;
}

it('keeps staged chunks across a restart and hands over the whole content only once every chunk is there and it matches', async () => {
  const dir = tempDir();
  const clock = new ManualClock();
  let s = await boot(dir, clock);
  openTasks.add(`${W} run1/write/1`);
  const content = new Uint8Array(randomBytes(2 * REMOTE_CHUNK_BYTES + 10));
  const head = await stage(s, 'run1/write/1', content, [0, 2]);
  expect(() => s.staging.take(W, 'run1/write/1', head)).toThrow(TransferIncompleteError);

  await shutdown(s);
  s = await boot(dir, clock);
  // Chunk 2 again (a retry) changes nothing; chunk 1 completes it.
  await stage(s, 'run1/write/1', content, [2, 1]);
  expect(Buffer.from(s.staging.take(W, 'run1/write/1', head)).equals(Buffer.from(content))).toBe(true);

  // Chunks that are each right but do not make the content the transfer names: refused, and dropped.
  const claimed = { ...head, sha256: sha256Hex(new Uint8Array(head.size)) };
  for (const i of [0, 1, 2]) s.staging.put(W, 'run1/write/1', claimed, i, chunkOf(content, i));
  await s.sys.commits.flush();
  expect(() => s.staging.take(W, 'run1/write/1', claimed)).toThrow(TransferMismatchError);
  await s.sys.commits.flush();
  expect(() => s.staging.take(W, 'run1/write/1', claimed)).toThrow(TransferIncompleteError);
});

it('drops a transfer when its task is over, when it was idle for 15 minutes, and when its task starts another', async () => {
  const clock = new ManualClock();
  const s = await boot(tempDir(), clock);
  const content = new Uint8Array(randomBytes(REMOTE_CHUNK_BYTES + 1));
  for (const t of ['run1/a/1', 'run1/b/1', 'run1/c/1']) openTasks.add(`${W} ${t}`);
  for (const t of ['run1/a/1', 'run1/b/1', 'run1/c/1']) await stage(s, t, content, [0]);
  const staged = () => s.staging.list().map((t) => t.task_id);
  expect(await s.staging.sweep()).toBe(0);

  openTasks.delete(`${W} run1/a/1`);
  expect(await s.staging.sweep()).toBe(1);
  expect(staged()).toEqual(['run1/b/1', 'run1/c/1']);

  clock.advance(TRANSFER_IDLE_MS - 1000);
  await stage(s, 'run1/c/1', content, [1]);
  clock.advance(2000);
  expect(await s.staging.sweep()).toBe(1);
  expect(staged()).toEqual(['run1/c/1']);

  // Another content for the same task replaces what was staged for it.
  const next = new Uint8Array(randomBytes(10));
  await stage(s, 'run1/c/1', next, [0]);
  expect(s.staging.list()).toEqual([
    { worker: W, task_id: 'run1/c/1', sha256: sha256Hex(next), size: 10, received: 1 },
  ]);
});

it('answers transfer fields and chunks that are wrong-typed, truncated, oversized or tampered with typed errors', () => {
  const content = new Uint8Array(randomBytes(REMOTE_CHUNK_BYTES + 100));
  const head = headOf(content);
  const limit = 1024 * 1024;
  for (const bad of [null, 'x', { ...head, sha256: 'ABC' }, { ...head, size: -1 }, { ...head, size: '5' }])
    expect(() => checkHead(bad, limit, 'content')).toThrow(/expected/);
  expect(() => checkHead({ ...head, count: 5 }, limit, 'content')).toThrow(TransferMismatchError);
  expect(() => checkHead({ ...head, size: limit + 1, count: 5 }, limit, 'content')).toThrow(
    ArtifactTooLargeError,
  );
  expect(checkHead(head, limit, 'content')).toEqual(head);

  const last = chunkOf(content, 1);
  expect(checkChunk(head, 1, last, sha256Hex(last))).toBe(last);
  expect(() => checkChunk(head, 2, last, sha256Hex(last))).toThrow(TransferMismatchError);
  expect(() => checkChunk(head, 1.5, last)).toThrow(TransferMismatchError);
  expect(() => checkChunk(head, 1, 'bytes')).toThrow(TransferMismatchError);
  expect(() => checkChunk(head, 1, last.subarray(1), sha256Hex(last))).toThrow(TransferMismatchError);
  const tampered = new Uint8Array(last);
  tampered[0] = (tampered[0] as number) ^ 1;
  expect(() => checkChunk(head, 1, tampered, sha256Hex(last))).toThrow(TransferMismatchError);
});

// What a host has acknowledged survives a machine crash, not only a killed process. With lmdb-js's
// overlapping sync a commit becomes visible to readers before it is flushed; after a process crash LMDB
// reopens at the latest visible commit (the OS still holds its pages), after a machine crash at the
// latest flushed one. Opening with `safeRestore` shows that second view without crashing the machine:
// a commit whose follow-ups ran must be in it.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { open, type RootDatabaseOptionsWithPath } from 'lmdb';
import { afterEach, expect, it } from 'vitest';
import { INLINE_COMMIT_MAX_WRITES } from '../../runtime/store/commit-queue.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

afterEach(cleanupTempDirs);

const KILLER = fileURLToPath(new URL('../helpers/flush-killer.ts', import.meta.url));
const SMALL = INLINE_COMMIT_MAX_WRITES >> 2;
const LARGE = INLINE_COMMIT_MAX_WRITES * 40;

/**
 * Runs the killer on a fresh directory and returns how many of the killed batch's records the flushed
 * view holds: what a machine crash at that moment would have left.
 */
async function flushedAfterKill(count: number, mode: 'follow-up' | 'visible'): Promise<number> {
  const dir = tempDir();
  const child = spawn(process.execPath, ['--import', 'tsx', KILLER, dir, String(count), mode], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const signal = await new Promise<NodeJS.Signals | null>((resolve) =>
    child.once('exit', (_code, sig) => resolve(sig)),
  );
  expect(signal).toBe('SIGKILL');
  // `safeRestore` (lmdb-js, not in its type declarations): use the last flushed transaction, not the latest committed one.
  const root = open({
    path: dir,
    safeRestore: true,
    maxDbs: 64,
    compression: false,
  } as RootDatabaseOptionsWithPath);
  try {
    const records = root.openDB({ name: 'records' });
    let n = 0;
    for (const key of records.getKeys()) if ((key as unknown[])[0] === 'acked') n++;
    return n;
  } finally {
    await root.close();
  }
}

it('flushes a small commit (on the calling thread) before its follow-ups run', async () => {
  for (let round = 0; round < 5; round++) expect(await flushedAfterKill(SMALL, 'follow-up')).toBe(SMALL);
}, 60_000);

it("flushes a large commit (on LMDB's write thread) before its follow-ups run", async () => {
  for (let round = 0; round < 5; round++) expect(await flushedAfterKill(LARGE, 'follow-up')).toBe(LARGE);
}, 60_000);

it('sees a commit that was visible but not yet flushed as missing (the check is not blind)', async () => {
  // The window between a commit becoming visible and its flush is short; a few tries catch it.
  let behind = false;
  for (let attempt = 0; attempt < 20 && !behind; attempt++)
    behind = (await flushedAfterKill(LARGE, 'visible')) < LARGE;
  expect(behind).toBe(true);
}, 120_000);

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { Host } from '../../runtime/host.ts';
import { openStore, STORE_FORMAT, STORE_FORMAT_KEY, StoreError } from '../../runtime/store/store.ts';
import { CLI } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

afterAll(cleanupTempDirs);

/** A data directory holding `probe`, with its format marker set to `format` (removed when undefined). */
async function directoryOfFormat(format: unknown): Promise<string> {
  const dir = tempDir();
  const store = openStore(dir);
  await store.meta.put('probe', 'kept');
  if (format === undefined) await store.meta.remove(STORE_FORMAT_KEY);
  else await store.meta.put(STORE_FORMAT_KEY, format);
  await store.close();
  return dir;
}

async function markerOf(dir: string): Promise<unknown> {
  // Read past the check: the marker as it is on disk.
  const { open } = await import('lmdb');
  const root = open({ path: dir, maxDbs: 64, compression: false });
  const meta = root.openDB({ name: 'meta', useRecords: false } as never);
  const found = { marker: meta.get(STORE_FORMAT_KEY), probe: meta.get('probe') };
  await root.close();
  return found;
}

it('marks a new data directory with the store format it writes', async () => {
  const dir = tempDir();
  const store = openStore(dir);
  expect(store.meta.get(STORE_FORMAT_KEY)).toBe(STORE_FORMAT);
  await store.close();
});

it('opens a directory of an older format (or from before the marker) and marks it with its own', async () => {
  for (const older of [undefined, 1]) {
    const dir = await directoryOfFormat(older);
    const store = openStore(dir);
    expect(store.meta.get('probe')).toBe('kept');
    expect(store.meta.get(STORE_FORMAT_KEY)).toBe(STORE_FORMAT);
    await store.close();
  }
});

it('refuses a directory written in a newer format, and leaves it as it was', async () => {
  const dir = await directoryOfFormat(STORE_FORMAT + 1);
  let err: unknown;
  try {
    openStore(dir);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(StoreError);
  expect(err).toMatchObject({
    code: 'ANX_STORE_FORMAT',
    message: expect.stringContaining(
      `written in store format ${STORE_FORMAT + 1} by a newer anx-runtime; this one`,
    ),
    hint: expect.stringContaining('run the newer anx-runtime on it'),
  });
  expect((err as Error).message).toContain(`reads formats up to ${STORE_FORMAT}`);
  expect(await markerOf(dir)).toEqual({ marker: STORE_FORMAT + 1, probe: 'kept' });
  // The host gives the same error and leaves the directory free for the runtime that can open it.
  await expect(Host.open({ dataDir: dir })).rejects.toMatchObject({ code: 'ANX_STORE_FORMAT' });
  await expect(Host.open({ dataDir: dir })).rejects.toMatchObject({ code: 'ANX_STORE_FORMAT' });
});

it('refuses a directory whose format marker is not a format number', async () => {
  for (const bad of ['2', 0, 1.5, { v: 2 }]) {
    const dir = await directoryOfFormat(bad);
    expect(() => openStore(dir)).toThrow(/unreadable format marker/);
    expect(await markerOf(dir)).toEqual({ marker: bad, probe: 'kept' });
  }
});

it('`start` on a directory of a newer format exits 5 with what to do, and starts nothing', async () => {
  const newer = await directoryOfFormat(STORE_FORMAT + 1);
  const r = spawnSync(process.execPath, [CLI, '--data-dir', newer, 'start', '--port', '0'], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(r.status, r.stderr).toBe(5);
  expect(r.stderr).toContain(
    `error: the data directory ${newer} was written in store format ${STORE_FORMAT + 1} by a newer anx-runtime`,
  );
  expect(r.stderr).toContain('hint: run the newer anx-runtime on it');
  expect(existsSync(join(newer, 'daemon.json'))).toBe(false);
});

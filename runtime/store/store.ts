// The host's one LMDB environment and the named databases the kernel keeps in it.
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { type Database, type DatabaseOptions, type Key, open, type RootDatabase } from 'lmdb';
import { AnxError } from '../errors.ts';
import { VERSION } from '../version.ts';

/** Raised when the data directory cannot be opened (permissions, another process holding it, disk full). */
export class StoreError extends AnxError {}

/**
 * Named databases. Keys use lmdb's ordered-binary encoding, so arrays sort element by element:
 * `[run_id, seq]` ranges give one run's events in order.
 */
export interface Store {
  readonly path: string;
  readonly root: RootDatabase;
  /** Host metadata: counters, host identity, format version. */
  readonly meta: Database<unknown, string>;
  /**
   * Persisted actors by address: kind, machine version, snapshot, status, timers; and, under
   * `[address, field, id]`, the entries of machines that store a context field entry by entry.
   */
  readonly actors: Database<unknown, string | [string, string, string]>;
  /** Envelopes committed but not yet acknowledged by their receiver, by host sequence. */
  readonly outbox: Database<Uint8Array, number>;
  /** Ids already accepted per receiver (`[to, id]` → ts): dedupe and replay protection. */
  readonly seen: Database<number, Key>;
  /** EventV1 by host sequence. */
  readonly events: Database<unknown, number>;
  /** Event indexes: `[value, seq]` → null. */
  readonly eventsByRun: Database<null, Key>;
  readonly eventsByTask: Database<null, Key>;
  readonly eventsByActor: Database<null, Key>;
  /** Actor-owned append-only records (`[collection, owner, seq]`), e.g. a DID's inbox. */
  readonly records: Database<unknown, Key>;
  /** Pending timers by absolute deadline (`[at, address, timerId]` → event), so passivated actors wake up. */
  readonly timers: Database<unknown, Key>;
  close(): Promise<void>;
}

/**
 * The layout this runtime writes, kept in `meta` under `STORE_FORMAT_KEY`. A runtime opens a data directory
 * of its own format or an older one (reading the older layout as it is, and marking the directory with its
 * own format, since its writes from then on are in that layout), and refuses one of a newer format, whose
 * records it could misread or overwrite.
 *
 * 1. No marker: directories written before the marker existed (every event indexed in the commit of the
 *    event, a vault latest-version pointer per key).
 * 2. Event index entries written in groups behind the `events.indexed` watermark, record sequence numbers
 *    reserved in blocks (`seq.records`), vault versions with small content inline and no latest pointer.
 * 3. Actors whose machine names `entryFields` (playbook runs: their stage executions) keep each entry of
 *    those fields as a record of its own at `[address, field, id]` in `actors`, their record listing the
 *    ids; records written whole before (no `p`) are read as they are.
 */
export const STORE_FORMAT = 3;
export const STORE_FORMAT_KEY = 'store.format';

const WRITABLE_HINT =
  'check that the directory is writable and not on a full disk, or pass another --data-dir';

export interface StoreOptions {
  /** Skip fsync on commit: only for benchmarks and throwaway tests; a machine crash may lose commits. */
  noSync?: boolean;
}

/** Opens (creating if needed) the LMDB environment under `dir`. */
export function openStore(dir: string, options: StoreOptions = {}): Store {
  let root: RootDatabase;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // LMDB creates its files 0644: in a directory others can enter (one that existed before, say) the
    // messages, vault and audit log would be theirs to read. Created empty and owner-only first, LMDB
    // keeps that mode; files of an older environment are made owner-only too.
    for (const file of ['data.mdb', 'lock.mdb']) {
      const path = join(dir, file);
      closeSync(openSync(path, 'a', 0o600));
      chmodSync(path, 0o600);
    }
    root = open({
      path: dir,
      // Always a directory: lmdb would take a path with a dot in its last segment for a file.
      noSubdir: false,
      maxDbs: 64,
      compression: false,
      noSync: options.noSync ?? false,
      // Each host process owns its environment; reads happen on the main thread.
      maxReaders: 256,
    });
  } catch (err) {
    throw new StoreError(
      'ANX_STORE_OPEN',
      `cannot open the data directory ${dir}: ${(err as Error).message}`,
      {
        cause: err,
        hint: WRITABLE_HINT,
      },
    );
  }
  // Plain msgpack maps (no shared record structures): faster to write, readable by any msgpack reader.
  const db = <V, K extends Key>(name: string, extra: Record<string, unknown> = {}) =>
    root.openDB<V, K>({ name, useRecords: false, ...extra } as DatabaseOptions & { name: string });
  const meta = db<unknown, string>('meta');
  try {
    checkFormat(dir, meta);
  } catch (err) {
    void root.close();
    throw err;
  }
  const store: Store = {
    path: dir,
    root,
    meta,
    actors: db('actors'),
    outbox: db('outbox', { encoding: 'binary' }),
    seen: db('seen'),
    events: db('events'),
    eventsByRun: db('events_by_run'),
    eventsByTask: db('events_by_task'),
    eventsByActor: db('events_by_actor'),
    records: db('records'),
    timers: db('timers'),
    close: async () => {
      await root.flushed;
      await root.close();
    },
  };
  return store;
}

/** Refuses a data directory of a newer format than `STORE_FORMAT`; marks an older one with it. */
function checkFormat(dir: string, meta: Database<unknown, string>): void {
  const found = meta.get(STORE_FORMAT_KEY);
  if (found === STORE_FORMAT) return;
  if (found !== undefined && !(Number.isInteger(found) && (found as number) >= 1))
    throw new StoreError(
      'ANX_STORE_FORMAT',
      `the data directory ${dir} has an unreadable format marker (${JSON.stringify(found)} under "${STORE_FORMAT_KEY}" in meta)`,
      { hint: 'restore the directory from a backup, or start with an empty --data-dir' },
    );
  if (found !== undefined && (found as number) > STORE_FORMAT)
    throw new StoreError(
      'ANX_STORE_FORMAT',
      `the data directory ${dir} was written in store format ${found} by a newer anx-runtime; this one (${VERSION}) reads formats up to ${STORE_FORMAT}`,
      { hint: 'run the newer anx-runtime on it, or start this one with another --data-dir' },
    );
  // Before anything else is written: from here on the directory holds this format's layout.
  try {
    meta.putSync(STORE_FORMAT_KEY, STORE_FORMAT);
  } catch (err) {
    throw new StoreError(
      'ANX_STORE_OPEN',
      `cannot write to the data directory ${dir}: ${(err as Error).message}`,
      {
        cause: err,
        hint: WRITABLE_HINT,
      },
    );
  }
}

/** The last key of a numerically keyed database, or 0 when it is empty. */
export function lastNumericKey(database: Database<unknown, number> | Database<Uint8Array, number>): number {
  for (const key of database.getKeys({ reverse: true, limit: 1 })) return key as number;
  return 0;
}

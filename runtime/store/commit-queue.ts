// Groups many actors' writes into one LMDB transaction, and runs follow-ups only after that transaction commits.
import type { Database, Key, RootDatabase } from 'lmdb';

// biome-ignore lint/suspicious/noExplicitAny: one queue carries writes to databases of every value and key type.
type AnyDatabase = Database<any, any>;

/** Staged writes as flat parallel arrays: several writes per transition, so no object per write. */
interface Ops {
  dbs: AnyDatabase[];
  keys: Key[];
  /** The value to put, or REMOVE. */
  values: unknown[];
}

const REMOVE = Symbol('remove');

function emptyOps(): Ops {
  return { dbs: [], keys: [], values: [] };
}

/**
 * Writes staged with `put`/`remove` go into the next group commit. `flush()` starts that commit and
 * resolves when it is durable; callbacks registered with `afterCommit` run then, in staging order.
 * Nothing is dispatched or acknowledged before the transaction holding it commits.
 */
export class CommitQueue {
  private ops: Ops = emptyOps();
  private callbacks: Array<() => void> = [];
  private pending = 0;
  private idleWaiters: Array<() => void> = [];
  private failure: ((err: unknown) => void) | undefined;
  private batchNumber = 0;
  private prepare: (() => void) | undefined;

  constructor(private readonly root: RootDatabase) {}

  put(db: AnyDatabase, key: Key, value: unknown): void {
    this.ops.dbs.push(db);
    this.ops.keys.push(key);
    this.ops.values.push(value);
  }

  remove(db: AnyDatabase, key: Key): void {
    this.ops.dbs.push(db);
    this.ops.keys.push(key);
    this.ops.values.push(REMOVE);
  }

  afterCommit(fn: () => void): void {
    this.callbacks.push(fn);
  }

  /** True when nothing is staged and no commit is in flight. */
  get idle(): boolean {
    return this.ops.dbs.length === 0 && this.callbacks.length === 0 && this.pending === 0;
  }

  /** Identifies the group commit that staged writes currently join; it changes at every flush. */
  get batch(): number {
    return this.batchNumber;
  }

  get staged(): number {
    return this.ops.dbs.length;
  }

  /** Runs at the start of every flush, so writes that are cheaper to stage once per commit join it. */
  beforeFlush(fn: () => void): void {
    this.prepare = fn;
  }

  /** Called with the error when a group commit fails (the host reports it and stops accepting work). */
  onFailure(fn: (err: unknown) => void): void {
    this.failure = fn;
  }

  /** Commits everything staged so far as one transaction. */
  flush(): Promise<void> {
    if (this.ops.dbs.length === 0 && this.callbacks.length === 0) return Promise.resolve();
    this.prepare?.();
    const { dbs, keys, values } = this.ops;
    const callbacks = this.callbacks;
    this.batchNumber++;
    this.ops = emptyOps();
    this.callbacks = [];
    this.pending++;
    const commit =
      dbs.length === 0
        ? Promise.resolve()
        : this.root.transaction(() => {
            // Inside a transaction callback put/remove join this transaction directly.
            for (let i = 0; i < dbs.length; i++) {
              const value = values[i];
              if (value === REMOVE) (dbs[i] as AnyDatabase).remove(keys[i] as Key);
              else (dbs[i] as AnyDatabase).put(keys[i] as Key, value);
            }
          });
    return Promise.resolve(commit).then(
      () => {
        this.pending--;
        for (const fn of callbacks) fn();
        this.settle();
      },
      (err: unknown) => {
        this.pending--;
        this.settle();
        if (this.failure) this.failure(err);
        else throw err;
      },
    );
  }

  /** Resolves when every staged write has committed and its callbacks have run. */
  async drain(): Promise<void> {
    while (!this.idle) {
      if (this.ops.dbs.length > 0 || this.callbacks.length > 0) await this.flush();
      else await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
  }

  private settle(): void {
    if (this.pending === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}

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
/** A staged write withdrawn before its commit: the transaction skips it. */
const SKIP = Symbol('skip');

/** A value made only when its write is still staged as the transaction runs (see `putLazy`). */
class LazyValue {
  constructor(readonly make: () => unknown) {}
}

/** Names one staged write, so it can be withdrawn while its group commit has not started. */
export interface StagedWrite {
  batch: number;
  index: number;
}

/**
 * A batch of at most this many writes commits on the calling thread when no other commit is in flight
 * (see `commitInline`). A stage handoff writes about 14; a busy host's batches are far larger.
 */
export const INLINE_COMMIT_MAX_WRITES = 64;

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
  /** Callbacks that run before the others of their commit (see `afterCommit`). */
  private firstCallbacks: Array<() => void> = [];
  private pending = 0;
  private idleWaiters: Array<() => void> = [];
  private failure: ((err: unknown) => void) | undefined;
  private batchNumber = 0;
  private prepare: (() => void) | undefined;
  private lastCommit: Promise<void> = Promise.resolve();
  private commitWaiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];

  constructor(private readonly root: RootDatabase) {}

  put(db: AnyDatabase, key: Key, value: unknown): void {
    this.ops.dbs.push(db);
    this.ops.keys.push(key);
    this.ops.values.push(value);
  }

  /** Like `put`, and names the write so `withdraw` can take it back before its commit starts. */
  putWithdrawable(db: AnyDatabase, key: Key, value: unknown): StagedWrite {
    this.put(db, key, value);
    return { batch: this.batchNumber, index: this.ops.dbs.length - 1 };
  }

  /**
   * Like `putWithdrawable`, with the value made by `make` inside the transaction, and only if the
   * write was not withdrawn: for values that are usually withdrawn and cost something to encode.
   */
  putLazy(db: AnyDatabase, key: Key, make: () => unknown): StagedWrite {
    return this.putWithdrawable(db, key, new LazyValue(make));
  }

  /**
   * Takes back a write staged with `putWithdrawable`, if its group commit has not started: the write
   * never happens. True when withdrawn; false when it is committing or committed (remove it instead).
   */
  withdraw(write: StagedWrite): boolean {
    if (write.batch !== this.batchNumber || write.index >= this.ops.values.length) return false;
    this.ops.values[write.index] = SKIP;
    return true;
  }

  /**
   * Resolves once the group commit that writes staged now join is durable (its `afterCommit`
   * callbacks have run); rejects if that commit fails. It does not start the commit.
   */
  committed(): Promise<void> {
    return new Promise((resolve, reject) => this.commitWaiters.push({ resolve, reject }));
  }

  remove(db: AnyDatabase, key: Key): void {
    this.ops.dbs.push(db);
    this.ops.keys.push(key);
    this.ops.values.push(REMOVE);
  }

  /**
   * Runs `fn` once the group commit that writes staged now join is durable, in staging order; with
   * `first`, before the callbacks registered without it (for handing committed work on before the
   * bookkeeping that listens to the same commit).
   */
  afterCommit(fn: () => void, first = false): void {
    if (first) this.firstCallbacks.push(fn);
    else this.callbacks.push(fn);
  }

  /** True when nothing is staged and no commit is in flight. */
  get idle(): boolean {
    return !this.waiting && this.pending === 0;
  }

  /** Writes, callbacks or waiters are waiting for the next group commit. */
  private get waiting(): boolean {
    return (
      this.ops.dbs.length > 0 ||
      this.callbacks.length > 0 ||
      this.firstCallbacks.length > 0 ||
      this.commitWaiters.length > 0
    );
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

  /** Commits everything staged so far as one transaction; resolves once all of it is durable. */
  flush(): Promise<void> {
    // Nothing staged: writes staged earlier may still be committing (someone else flushed them).
    if (!this.waiting) return this.lastCommit;
    this.prepare?.();
    const { dbs, keys, values } = this.ops;
    const callbacks =
      this.firstCallbacks.length === 0 ? this.callbacks : this.firstCallbacks.concat(this.callbacks);
    const waiters = this.commitWaiters;
    this.batchNumber++;
    this.ops = emptyOps();
    this.callbacks = [];
    this.firstCallbacks = [];
    this.commitWaiters = [];
    this.pending++;
    // Inside a transaction callback put/remove join that transaction directly.
    const write = () => {
      for (let i = 0; i < dbs.length; i++) {
        const value = values[i];
        if (value === SKIP) continue;
        if (value === REMOVE) (dbs[i] as AnyDatabase).remove(keys[i] as Key);
        else (dbs[i] as AnyDatabase).put(keys[i] as Key, value instanceof LazyValue ? value.make() : value);
      }
    };
    // A batch with no writes still waits for the commits before it: its callbacks and waiters may
    // stand for writes those commits carry.
    let commit: Promise<unknown>;
    if (dbs.length === 0) commit = this.lastCommit;
    else if (this.pending === 1 && dbs.length <= INLINE_COMMIT_MAX_WRITES) commit = this.commitInline(write);
    // On the write thread the callback runs inside LMDB's batch transaction (other modules' writes share
    // it): as a child transaction, a write that throws takes back this batch's writes, not just itself.
    else commit = this.root.childTransaction(write);
    const done = commit.then(
      () => {
        this.pending--;
        for (const fn of callbacks) fn();
        for (const w of waiters) w.resolve();
        this.settle();
      },
      (err: unknown) => {
        this.pending--;
        for (const w of waiters) w.reject(err);
        this.settle();
        if (this.failure) this.failure(err);
        else throw err;
      },
    );
    this.lastCommit = done.then(
      () => {},
      () => {},
    );
    return done;
  }

  /**
   * Commits on this thread: the transaction, its pages and their fsync happen before this returns, so
   * nothing waits for LMDB's write thread to open the transaction, call back into this one and report
   * the commit (about 0.2 ms of a small commit). Only for a small batch with no other commit in flight:
   * there is nothing to overlap with then, while under load the batches grow past the limit and go to
   * the write thread, which syncs one batch while this thread stages the next. Atomic like the other
   * path: a write that throws aborts the whole transaction.
   */
  private commitInline(write: () => void): Promise<unknown> {
    try {
      this.root.transactionSync(write);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Resolves when every staged write has committed and its callbacks have run. */
  async drain(): Promise<void> {
    while (!this.idle) {
      if (this.waiting) await this.flush();
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

/**
 * Gathers items staged with each group commit (events, appended records) and hands each commit's items,
 * in staging order, to `deliver` once that commit has landed: one callback per commit, not one per item.
 * With `first`, that callback runs before the commit's others (see `CommitQueue.afterCommit`).
 */
export class PerCommit<T> {
  private current: { batch: number; items: T[] } | undefined;

  constructor(
    private readonly commits: CommitQueue,
    private readonly deliver: (items: readonly T[]) => void,
    private readonly first = false,
  ) {}

  add(item: T): void {
    const batch = this.commits.batch;
    if (this.current !== undefined && this.current.batch === batch) {
      this.current.items.push(item);
      return;
    }
    const pending = { batch, items: [item] };
    this.current = pending;
    this.commits.afterCommit(() => this.deliver(pending.items), this.first);
  }
}

// Groups many actors' writes into one LMDB transaction, and runs follow-ups only after that transaction commits.
import type { Database, Key, RootDatabase } from 'lmdb';

// biome-ignore lint/suspicious/noExplicitAny: one queue carries writes to databases of every value and key type.
type AnyDatabase = Database<any, any>;

type Op =
  | { put: true; db: AnyDatabase; key: Key; value: unknown }
  | { put: false; db: AnyDatabase; key: Key };

/**
 * Writes staged with `put`/`remove` go into the next group commit. `flush()` starts that commit and
 * resolves when it is durable; callbacks registered with `afterCommit` run then, in staging order.
 * Nothing is dispatched or acknowledged before the transaction holding it commits.
 */
export class CommitQueue {
  private ops: Op[] = [];
  private callbacks: Array<() => void> = [];
  private pending = 0;
  private idleWaiters: Array<() => void> = [];
  private failure: ((err: unknown) => void) | undefined;
  private batchNumber = 0;

  constructor(private readonly root: RootDatabase) {}

  put(db: AnyDatabase, key: Key, value: unknown): void {
    this.ops.push({ put: true, db, key, value });
  }

  remove(db: AnyDatabase, key: Key): void {
    this.ops.push({ put: false, db, key });
  }

  afterCommit(fn: () => void): void {
    this.callbacks.push(fn);
  }

  /** True when nothing is staged and no commit is in flight. */
  get idle(): boolean {
    return this.ops.length === 0 && this.callbacks.length === 0 && this.pending === 0;
  }

  /** Identifies the group commit that staged writes currently join; it changes at every flush. */
  get batch(): number {
    return this.batchNumber;
  }

  get staged(): number {
    return this.ops.length;
  }

  /** Called with the error when a group commit fails (the host reports it and stops accepting work). */
  onFailure(fn: (err: unknown) => void): void {
    this.failure = fn;
  }

  /** Commits everything staged so far as one transaction. */
  flush(): Promise<void> {
    if (this.ops.length === 0 && this.callbacks.length === 0) return Promise.resolve();
    const ops = this.ops;
    const callbacks = this.callbacks;
    this.batchNumber++;
    this.ops = [];
    this.callbacks = [];
    this.pending++;
    const commit =
      ops.length === 0
        ? Promise.resolve()
        : this.root.transaction(() => {
            // Inside a transaction callback put/remove join this transaction directly.
            for (const op of ops) {
              if (op.put) op.db.put(op.key, op.value);
              else op.db.remove(op.key);
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
      if (this.ops.length > 0 || this.callbacks.length > 0) await this.flush();
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

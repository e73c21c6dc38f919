// A durable ReplayGuard: accepted (sender, id) pairs are committed to LMDB with the envelope they admitted.
import type { ReplayGuard } from '../envelope/replay.ts';
import type { CommitQueue } from '../store/commit-queue.ts';
import type { Store } from '../store/store.ts';

/**
 * Remembers accepted wire ids in the `seen` database (`['wire', from, id]` → ts), staged in the same
 * group commit as the accepted envelope, so a replay after a crash is still refused. Ids staged but
 * not yet committed are held in memory so two copies arriving together are caught too.
 */
export class DurableReplayGuard implements ReplayGuard {
  private readonly staged = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly commits: CommitQueue,
  ) {}

  seen(from: string, id: string): boolean {
    return this.staged.has(`${from}\u0000${id}`) || this.store.seen.doesExist(['wire', from, id]);
  }

  remember(from: string, id: string, ts: number): void {
    const key = `${from}\u0000${id}`;
    this.staged.add(key);
    this.commits.put(this.store.seen, ['wire', from, id], ts);
    this.commits.afterCommit(() => this.staged.delete(key));
  }
}

// Freeze: a host switch to read-only mode (no new runs, vault writes, worker commands), persisted and audited.
import type { Database } from 'lmdb';
import type { Clock } from '../clock.ts';
import { describeValue } from '../errors.ts';
import type { CommitQueue } from '../store/commit-queue.ts';
import type { AuditLog } from './audit.ts';
import { AuthorityRequestError, FrozenError } from './errors.ts';

/** The freeze switch as persisted in `meta` under `authority.freeze`. */
export interface FreezeStatus {
  frozen: boolean;
  /** Who flipped it last (a DID or `operator`). */
  by: string | null;
  /** When it was last flipped (ms since the epoch), null if never. */
  at: number | null;
  reason: string | null;
}

const KEY = 'authority.freeze';

/** Who asked for a write, for the audit record of a refusal. */
export interface WriteAttempt {
  actor?: string;
  principal?: string;
  resource?: string;
}

/**
 * The freeze switch. `assertWritable` is synchronous and cheap: every write entry point (run
 * start, vault write, worker command, stage delivery, token issue) calls it before changing anything,
 * so a freeze takes effect for the next request. The switch is persisted and survives restarts.
 */
export class FreezeState {
  private status: FreezeStatus;
  private readonly listeners = new Set<(status: FreezeStatus) => void>();

  constructor(
    private readonly meta: Database<unknown, string>,
    private readonly commits: CommitQueue,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {
    const stored = meta.get(KEY) as FreezeStatus | undefined;
    this.status =
      stored !== undefined && typeof stored.frozen === 'boolean'
        ? stored
        : { frozen: false, by: null, at: null, reason: null };
  }

  get isFrozen(): boolean {
    return this.status.frozen;
  }

  get state(): FreezeStatus {
    return { ...this.status };
  }

  /**
   * Throws `FrozenError` (`ANX_FROZEN`) when the host is frozen, and audits the refusal.
   *
   * @example
   * ```ts
   * host.authority.freeze.assertWritable('vault.put', { actor });
   * ```
   */
  assertWritable(action: string, attempt: WriteAttempt = {}): void {
    if (!this.status.frozen) return;
    const error = new FrozenError(action, this.status.at ?? this.clock.now());
    this.audit.append({
      action,
      decision: 'deny',
      code: error.code,
      reason: 'host is frozen',
      ...attempt,
    });
    throw error;
  }

  /** Makes the host read-only; durable (and audited) when this resolves. Freezing a frozen host changes nothing. */
  async freeze(by: string, reason?: string): Promise<FreezeStatus> {
    return this.set(true, by, reason);
  }

  /** Allows writes again; durable and audited when this resolves. */
  async thaw(by: string, reason?: string): Promise<FreezeStatus> {
    return this.set(false, by, reason);
  }

  /** Told after every change of the switch. */
  onChange(fn: (status: FreezeStatus) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private async set(frozen: boolean, by: string, reason: string | undefined): Promise<FreezeStatus> {
    if (typeof by !== 'string' || by.length === 0 || by.length > 256)
      throw new AuthorityRequestError(
        `"by" expected who freezes or thaws (a DID or a name), got ${describeValue(by)}`,
      );
    if (reason !== undefined && (typeof reason !== 'string' || reason.length > 1_024))
      throw new AuthorityRequestError('"reason" expected a string of at most 1024 characters');
    const changed = this.status.frozen !== frozen;
    if (changed) {
      this.status = { frozen, by, at: this.clock.now(), reason: reason ?? null };
      this.commits.put(this.meta, KEY, this.status);
    }
    this.audit.append({
      action: frozen ? 'host.freeze' : 'host.thaw',
      decision: 'allow',
      actor: by,
      ...(reason === undefined ? {} : { reason }),
      details: { changed },
    });
    await this.audit.flush();
    if (changed) for (const fn of this.listeners) fn(this.state);
    return this.state;
  }
}

// Replay protection: the ReplayGuard seam and a bounded in-memory guard that forgets ids once out of the window.

/**
 * Remembers which (sender, id) pairs were accepted. The receive pipeline asks `seen` before the
 * expensive checks and calls `remember` only once an envelope is fully accepted. An id may be
 * forgotten once its `ts` has left the replay window, because the window check refuses it then.
 */
export interface ReplayGuard {
  seen(from: string, id: string): boolean;
  remember(from: string, id: string, ts: number): void;
}

/** Options of `MemoryReplayGuard`. */
export interface MemoryReplayGuardOptions {
  /** Replay window in ms, the same as the receiver's; default 5 minutes. */
  windowMs?: number;
  /**
   * Most ids held. When full, the ids with the oldest `ts` go first, which re-opens replay for
   * them: size it above (peak accepted messages per second) × 2 × window. Default 200 000.
   */
  maxEntries?: number;
  /** Time source; default the wall clock. */
  clock?: { now(): number };
}

/** Default replay window: ±5 minutes around the receiver's clock. */
export const DEFAULT_REPLAY_WINDOW_MS = 5 * 60 * 1000;

const BUCKETS_PER_WINDOW = 8;

/**
 * A bounded in-memory `ReplayGuard`. Ids are grouped in time buckets by `ts`, so dropping the ids
 * whose `ts` fell out of the window costs one bucket at a time, not a scan of every id.
 *
 * @example
 * ```ts
 * const guard = new MemoryReplayGuard({ windowMs: 300_000 });
 * acceptEnvelope(bytes, { suite, guard });
 * ```
 */
export class MemoryReplayGuard implements ReplayGuard {
  private readonly windowMs: number;
  private readonly maxEntries: number;
  private readonly clock: { now(): number };
  private readonly bucketMs: number;
  // key -> bucket index holding it (re-remembering moves it; stale bucket entries are skipped).
  private readonly entries = new Map<string, number>();
  private readonly buckets = new Map<number, { keys: string[]; head: number }>();
  private nextPruneAt = 0;

  constructor(options: MemoryReplayGuardOptions = {}) {
    this.windowMs = options.windowMs ?? DEFAULT_REPLAY_WINDOW_MS;
    this.maxEntries = Math.max(1, options.maxEntries ?? 200_000);
    this.clock = options.clock ?? { now: () => Date.now() };
    this.bucketMs = Math.max(1, Math.ceil(this.windowMs / BUCKETS_PER_WINDOW));
  }

  /** How many ids are held right now. */
  get size(): number {
    return this.entries.size;
  }

  seen(from: string, id: string): boolean {
    this.prune();
    return this.entries.has(keyOf(from, id));
  }

  remember(from: string, id: string, ts: number): void {
    this.prune();
    const key = keyOf(from, id);
    const bucket = Math.floor(ts / this.bucketMs);
    this.entries.set(key, bucket);
    let list = this.buckets.get(bucket);
    if (list === undefined) {
      list = { keys: [], head: 0 };
      this.buckets.set(bucket, list);
    }
    list.keys.push(key);
    while (this.entries.size > this.maxEntries) this.evictOldest();
  }

  private prune(): void {
    const now = this.clock.now();
    if (now < this.nextPruneAt) return;
    this.nextPruneAt = now + this.bucketMs;
    // A bucket may go once its newest possible ts is older than the window's far edge.
    const oldestKept = Math.floor((now - this.windowMs) / this.bucketMs);
    for (const [bucket] of this.buckets) {
      if (bucket < oldestKept) this.dropBucket(bucket);
    }
  }

  private dropBucket(bucket: number): void {
    const list = this.buckets.get(bucket);
    this.buckets.delete(bucket);
    if (list === undefined) return;
    for (let i = list.head; i < list.keys.length; i++) {
      const key = list.keys[i] as string;
      if (this.entries.get(key) === bucket) this.entries.delete(key);
    }
  }

  private evictOldest(): void {
    let oldest: number | undefined;
    for (const [bucket] of this.buckets) {
      if (oldest === undefined || bucket < oldest) oldest = bucket;
    }
    if (oldest === undefined) return;
    const list = this.buckets.get(oldest) as { keys: string[]; head: number };
    while (list.head < list.keys.length && this.entries.size > this.maxEntries) {
      const key = list.keys[list.head++] as string;
      if (this.entries.get(key) === oldest) this.entries.delete(key);
    }
    if (list.head >= list.keys.length) this.buckets.delete(oldest);
  }
}

// Ids never contain NUL, so the pair splits unambiguously.
function keyOf(from: string, id: string): string {
  return `${from}\0${id}`;
}

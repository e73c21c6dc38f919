// Revocations over the relay: every host puts the revocations its DIDs sign into a JetStream KV bucket and watches it into LMDB.
import type { NatsConnection } from '@nats-io/transport-node';
import type { Revocation, RevocationList } from '../../runtime/authority/index.ts';
import { type Clock, systemClock } from '../../runtime/clock.ts';
import { AnxError } from '../../runtime/errors.ts';
import { Bucket, type KV, removedEntry } from './kv-bucket.ts';
import { didKey, REVOCATION_BUCKET } from './subjects.ts';

type Watch = Awaited<ReturnType<KV['watch']>>;

/** Default of `--revocation-max-staleness`: how long the list may be out of sync before foreign tokens are refused. */
export const DEFAULT_REVOCATION_MAX_STALENESS_MS = 5 * 60_000;

export interface RevocationFeedOptions {
  /** Time source of the staleness rule (the host clock). */
  clock?: Clock;
  /**
   * Out of sync longer than this (ms), token checks whose chain has a link issued by a DID of another
   * host fail with `ANX_REVOCATION_STALE`. Default 5 minutes.
   */
  maxStalenessMs?: number;
}

/** KV key of a revocation: `<link id>.<issuer multikey>` (one entry per revoker of a link). */
export function revocationKey(rev: Pick<Revocation, 'tid' | 'iss'>): string {
  return `${rev.tid}.${didKey(rev.iss)}`;
}

/**
 * Distributes revocations: local ones are put into the bucket `REVOCATION_BUCKET` as they are made
 * (and all of this host's again after every reconnect, for those made while the hub was away);
 * the watch stores every valid one in the local list, which every token check reads. The bucket
 * keeps entries until their token expires (TTL per bucket: 400 days; revocations of longer-lived
 * tokens are put again at every reconnect).
 *
 * The feed also says how fresh the list is: a probe asks the bucket for its last sequence every few
 * seconds, and the list counts as in sync when the watch has applied every entry up to it. While it
 * is not (hub or leaf unreachable, a stalled watch) for longer than `maxStalenessMs`, checks of tokens
 * with a link issued by a DID of another host fail closed (`ANX_REVOCATION_STALE`). The last moment in
 * sync is recorded when the feed falls behind or stops, so a restart does not take an old list as fresh.
 */
export class RevocationFeed {
  private kv: KV | undefined;
  private readonly bucket: Bucket;
  private stopped = false;
  private readonly unsubscribe: () => void;
  private synced = false;
  private readonly syncWaiters: Array<() => void> = [];
  private readonly clock: Clock;
  readonly maxStalenessMs: number;
  /** When the list was last known to hold every entry of the bucket. */
  private lastInSync: number;
  private inSync = false;
  /** Highest bucket sequence the current watch has applied (or knows to be superseded). */
  private applied = 0;
  private watch: Watch | undefined;
  private probeTimer: ReturnType<typeof setTimeout> | undefined;
  private behind = 0;
  /** The current watch has read the bucket's existing entries. */
  private caughtUp = false;

  constructor(
    nc: NatsConnection,
    private readonly list: RevocationList,
    private readonly isLocal: (did: string) => boolean,
    private readonly onInvalid: (key: string, error: AnxError) => void,
    options: RevocationFeedOptions = {},
  ) {
    this.bucket = new Bucket(nc, REVOCATION_BUCKET, { history: 1, ttl: 400 * 24 * 60 * 60_000 });
    this.clock = options.clock ?? systemClock;
    this.maxStalenessMs = options.maxStalenessMs ?? DEFAULT_REVOCATION_MAX_STALENESS_MS;
    if (!Number.isSafeInteger(this.maxStalenessMs) || this.maxStalenessMs <= 0)
      throw new AnxError(
        'ANX_ARGUMENT_INVALID',
        `revocation max staleness expected a positive number of ms, got ${String(options.maxStalenessMs)}`,
      );
    // A host that never synced counts from now; one that did, from when it last was in sync.
    this.lastInSync = list.lastSyncedAt ?? this.clock.now();
    this.unsubscribe = list.onRevocation((rev, origin) => {
      if (origin === 'local') void this.publish(rev).catch(() => {});
    });
  }

  /** Opens the bucket and starts the watch; retries in the background while the hub is away. */
  start(): void {
    this.list.setFreshness({
      syncedAt: () => (this.inSync ? this.clock.now() : this.lastInSync),
      maxStalenessMs: this.maxStalenessMs,
      isLocal: this.isLocal,
    });
    void this.run();
    this.scheduleProbe();
  }

  /** When the local list was last known to hold every revocation of the relay (now, while in sync). */
  get syncedAt(): number {
    return this.inSync ? this.clock.now() : this.lastInSync;
  }

  /** True once the bucket's existing entries have been read into the local list. */
  get isSynced(): boolean {
    return this.synced;
  }

  /** Resolves when the bucket's existing entries are stored locally (or after `timeoutMs`); true if synced. */
  waitSynced(timeoutMs: number): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(this.synced), timeoutMs);
      timer.unref?.();
      this.syncWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  async publish(rev: Revocation): Promise<void> {
    await this.bucket.putJson(revocationKey(rev), rev);
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe();
    if (this.probeTimer !== undefined) clearTimeout(this.probeTimer);
    this.watch?.stop();
    try {
      this.list.recordSyncedAt(this.syncedAt);
    } catch {
      // The host closed first: the time recorded when the feed last fell behind stands.
    }
    this.list.setFreshness(undefined);
  }

  private scheduleProbe(): void {
    if (this.stopped) return;
    const every = Math.min(5_000, Math.max(200, Math.floor(this.maxStalenessMs / 4)));
    this.probeTimer = setTimeout(() => {
      void this.probe().finally(() => this.scheduleProbe());
    }, every);
    this.probeTimer.unref?.();
  }

  /** Asks the bucket for its last sequence: in sync when the watch has applied it. */
  private async probe(): Promise<void> {
    const kv = this.kv;
    let caughtUp = false;
    if (kv !== undefined && this.caughtUp && this.watch !== undefined) {
      try {
        caughtUp = this.applied >= (await kv.status()).streamInfo.state.last_seq;
      } catch {
        caughtUp = false;
      }
    }
    if (caughtUp) {
      this.behind = 0;
      this.lastInSync = this.clock.now();
      this.inSync = true;
      return;
    }
    this.fallBehind();
    // A watch that stays behind while the bucket answers has stalled: start it again.
    if (this.watch !== undefined && ++this.behind >= 3) {
      this.behind = 0;
      this.watch.stop();
    }
  }

  private fallBehind(): void {
    if (!this.inSync) return;
    // It was in sync until the last probe that said so (or until now, when the watch ends).
    this.inSync = false;
    this.list.recordSyncedAt(this.lastInSync);
  }

  private async open(): Promise<KV> {
    this.kv ??= await this.bucket.open();
    return this.kv;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        const kv = await this.open();
        // Revocations made here while the hub was unreachable go out now.
        for (const rev of this.list.all()) if (this.isLocal(rev.iss)) await this.publish(rev);
        // Entries up to here that the watch's initial read does not show were superseded or expired.
        const before = (await kv.status()).streamInfo.state.last_seq;
        this.applied = 0;
        this.caughtUp = false;
        const watch = await kv.watch();
        this.watch = watch;
        const status = await kv.status();
        if (status.values === 0) this.markSynced(before);
        for await (const entry of watch) {
          if (this.stopped) break;
          if (entry.operation === 'PUT') await this.take(entry.key, entry.value);
          else await this.removed(entry.key, entry.operation);
          this.applied = Math.max(this.applied, entry.revision);
          // `delta` counts the entries still pending in the initial read: 0 means caught up.
          if (entry.delta === 0) this.markSynced(before);
        }
      } catch {
        this.kv = undefined;
        this.bucket.reset();
      }
      this.watch = undefined;
      this.caughtUp = false;
      this.fallBehind();
      if (!this.stopped) await new Promise((r) => setTimeout(r, 1_000));
    }
  }

  private markSynced(before: number): void {
    if (this.caughtUp) return;
    this.caughtUp = true;
    this.applied = Math.max(this.applied, before);
    this.lastInSync = this.clock.now();
    this.inSync = true;
    if (this.synced) return;
    this.synced = true;
    for (const fn of this.syncWaiters.splice(0)) fn();
  }

  /**
   * A delete or purge marker: a revocation is never withdrawn, so the local list keeps it; one of this
   * host's DIDs made is put back for hosts that have not read it yet.
   */
  private async removed(key: string, operation: 'DEL' | 'PURGE'): Promise<void> {
    const rev = this.list.all().find((r) => revocationKey(r) === key);
    const restore = rev !== undefined && this.isLocal(rev.iss);
    if (restore) await this.publish(rev).catch(() => {});
    this.onInvalid(key, removedEntry(REVOCATION_BUCKET, key, operation, restore, rev !== undefined));
  }

  private async take(key: string, value: Uint8Array): Promise<void> {
    try {
      let raw: unknown;
      try {
        raw = JSON.parse(new TextDecoder().decode(value));
      } catch (cause) {
        throw new AnxError('ANX_REVOCATION_INVALID', 'a revocation expected JSON', { cause });
      }
      const rev = raw as Partial<Revocation>;
      if (
        typeof rev.tid !== 'string' ||
        typeof rev.iss !== 'string' ||
        key !== revocationKey(rev as Revocation)
      )
        throw new AnxError(
          'ANX_REVOCATION_INVALID',
          `a revocation was stored under a key (${key}) that does not name it`,
        );
      await this.list.add(raw);
    } catch (err) {
      this.onInvalid(
        key,
        err instanceof AnxError ? err : new AnxError('ANX_REVOCATION_INVALID', String(err)),
      );
    }
  }
}

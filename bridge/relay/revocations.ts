// Revocations over the relay: every host puts the revocations its DIDs sign into a JetStream KV bucket and watches it into LMDB.
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Revocation, RevocationList } from '../../runtime/authority/index.ts';
import { AnxError } from '../../runtime/errors.ts';
import { JETSTREAM_DOMAIN } from './nats-server.ts';
import { didKey, REVOCATION_BUCKET } from './subjects.ts';

type KV = Awaited<ReturnType<Kvm['create']>>;

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
 */
export class RevocationFeed {
  private kv: KV | undefined;
  private stopped = false;
  private readonly unsubscribe: () => void;
  private synced = false;
  private readonly syncWaiters: Array<() => void> = [];

  constructor(
    private readonly nc: NatsConnection,
    private readonly list: RevocationList,
    private readonly isLocal: (did: string) => boolean,
    private readonly onInvalid: (key: string, error: AnxError) => void,
  ) {
    this.unsubscribe = list.onRevocation((rev, origin) => {
      if (origin === 'local') void this.publish(rev).catch(() => {});
    });
  }

  /** Opens the bucket and starts the watch; retries in the background while the hub is away. */
  start(): void {
    void this.run();
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
    const kv = await this.open();
    await kv.put(revocationKey(rev), new TextEncoder().encode(JSON.stringify(rev)));
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe();
  }

  private async open(): Promise<KV> {
    this.kv ??= await new Kvm(jetstream(this.nc, { domain: JETSTREAM_DOMAIN, timeout: 5_000 })).create(
      REVOCATION_BUCKET,
      { history: 1, ttl: 400 * 24 * 60 * 60_000 },
    );
    return this.kv;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        const kv = await this.open();
        // Revocations made here while the hub was unreachable go out now.
        for (const rev of this.list.all()) if (this.isLocal(rev.iss)) await this.publish(rev);
        const watch = await kv.watch();
        if ((await kv.status()).values === 0) this.markSynced();
        for await (const entry of watch) {
          if (this.stopped) break;
          if (entry.operation === 'PUT') await this.take(entry.key, entry.value);
          // `delta` counts the entries still pending in the initial read: 0 means caught up.
          if (entry.delta === 0) this.markSynced();
        }
      } catch {
        this.kv = undefined;
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, 1_000));
    }
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    for (const fn of this.syncWaiters.splice(0)) fn();
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

// A JetStream KV bucket on the hub: opened on first use, written as JSON, and followed by a watch that starts again after every failure.
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { AnxError } from '../../runtime/errors.ts';
import { JETSTREAM_DOMAIN } from './nats-server.ts';

export type KV = Awaited<ReturnType<Kvm['create']>>;
export type KvEntry = KV extends { watch(): Promise<AsyncIterable<infer E>> } ? E : never;

/** One bucket of the relay, as a feed of signed statements uses it. */
export class Bucket {
  private kv: KV | undefined;

  constructor(
    private readonly nc: NatsConnection,
    readonly name: string,
    private readonly config: { history: number; ttl?: number },
  ) {}

  /** The bucket, created with `config` if it does not exist yet. */
  async open(): Promise<KV> {
    this.kv ??= await new Kvm(jetstream(this.nc, { domain: JETSTREAM_DOMAIN, timeout: 5_000 })).create(
      this.name,
      this.config,
    );
    return this.kv;
  }

  /** Forgets the open handle (after a failure): the next `open` asks the hub again. */
  reset(): void {
    this.kv = undefined;
  }

  async putJson(key: string, value: unknown): Promise<void> {
    await (await this.open()).put(key, new TextEncoder().encode(JSON.stringify(value)));
  }

  /**
   * Until `stopped()`: runs `begin` (a feed puts its own entries again there, for those made while the
   * hub was away), then hands every entry put in the bucket to `onEntry`; after a failure it waits a
   * second and starts over.
   *
   * No host deletes entries: every feed's entries are signed statements that stay until replaced or
   * expired (expiry leaves no marker). A delete or purge marker therefore comes from someone holding the
   * join URL, not from the statement's author, so it changes nothing a feed has taken; `onRemoved` gets
   * the key (a feed puts its own entry back there) and the relay reports it.
   */
  async follow(hooks: {
    stopped(): boolean;
    begin?(kv: KV): Promise<void>;
    onEntry(entry: KvEntry): Promise<void> | void;
    onRemoved?(key: string, operation: 'DEL' | 'PURGE'): Promise<void> | void;
  }): Promise<void> {
    while (!hooks.stopped()) {
      try {
        const kv = await this.open();
        await hooks.begin?.(kv);
        for await (const entry of await kv.watch()) {
          if (hooks.stopped()) break;
          if (entry.operation === 'PUT') await hooks.onEntry(entry);
          else await hooks.onRemoved?.(entry.key, entry.operation);
        }
      } catch {
        this.reset();
      }
      if (!hooks.stopped()) await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}

/**
 * The report of a delete or purge marker in a relay bucket (`ANX_RELAY_ENTRY_REMOVED`): what the
 * hosts had taken from the entry stays in force, and `restored` says whether this host, the author's,
 * put the entry back.
 */
export function removedEntry(
  bucket: string,
  key: string,
  operation: 'DEL' | 'PURGE',
  restored: boolean,
  known: boolean,
): AnxError {
  const what = operation === 'DEL' ? 'deleted' : 'purged';
  const kept = known
    ? 'the verified copy this host holds stays in force'
    : 'this host held no verified copy of it';
  return new AnxError(
    'ANX_RELAY_ENTRY_REMOVED',
    `entry ${key} of relay bucket ${bucket} was ${what} on the hub; ${kept}${restored ? ", and this host (its author's) put it back" : ''}`,
    {
      hint: "no host removes relay entries, so whoever did holds the join URL: to shut them out, delete hub/credentials.json in the hub's data directory, restart `anx-runtime relay start` and give the hosts the new join URL it prints",
    },
  );
}

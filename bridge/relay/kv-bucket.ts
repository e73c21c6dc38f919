// A JetStream KV bucket on the hub: opened on first use, written as JSON, and followed by a watch that starts again after every failure.
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
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
   * hub was away), then hands every entry of a watch to `onEntry`; after a failure it waits a second
   * and starts over.
   */
  async follow(hooks: {
    stopped(): boolean;
    begin?(kv: KV): Promise<void>;
    onEntry(entry: KvEntry): Promise<void> | void;
  }): Promise<void> {
    while (!hooks.stopped()) {
      try {
        const kv = await this.open();
        await hooks.begin?.(kv);
        for await (const entry of await kv.watch()) {
          if (hooks.stopped()) break;
          await hooks.onEntry(entry);
        }
      } catch {
        this.reset();
      }
      if (!hooks.stopped()) await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}

// The directory: signed agent cards in a JetStream KV bucket, watched into a local cache and queried there.
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { CryptoSuite } from '../../runtime/crypto/suite.ts';
import { type AgentCard, CardError, type SignedCard, verifyCard } from './cards.ts';
import { JETSTREAM_DOMAIN } from './nats-server.ts';
import { DIRECTORY_BUCKET, didKey } from './subjects.ts';

type KV = Awaited<ReturnType<Kvm['create']>>;

/**
 * Keeps every valid card of the relay's directory in memory (by DID) from a KV watch, so queries
 * never wait for the network. Cards that do not verify are ignored and reported to `onInvalid`.
 */
export class Directory {
  private kv: KV | undefined;
  private readonly cards = new Map<string, AgentCard>();
  private readonly listeners = new Set<(card: AgentCard) => void>();
  private stopped = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly suite: CryptoSuite,
    private readonly onInvalid: (key: string, error: CardError) => void,
  ) {}

  /** Opens (creating if needed) the bucket and starts the watch; retries in the background while the hub is away. */
  start(): void {
    void this.run();
  }

  get size(): number {
    return this.cards.size;
  }

  get(did: string): AgentCard | undefined {
    return this.cards.get(did);
  }

  all(): AgentCard[] {
    return [...this.cards.values()];
  }

  /** Told of every valid card as it arrives. */
  onCard(fn: (card: AgentCard) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async publish(signed: SignedCard): Promise<void> {
    const kv = await this.open();
    await kv.put(didKey(signed.card.did), new TextEncoder().encode(JSON.stringify(signed)));
  }

  /** Writes raw bytes under a key: for tests of forged cards. */
  async putRaw(key: string, bytes: Uint8Array): Promise<void> {
    const kv = await this.open();
    await kv.put(key, bytes);
  }

  stop(): void {
    this.stopped = true;
  }

  private async open(): Promise<KV> {
    this.kv ??= await new Kvm(jetstream(this.nc, { domain: JETSTREAM_DOMAIN, timeout: 5_000 })).create(
      DIRECTORY_BUCKET,
      { history: 1 },
    );
    return this.kv;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        const kv = await this.open();
        const watch = await kv.watch();
        for await (const entry of watch) {
          if (this.stopped) break;
          if (entry.operation !== 'PUT') {
            for (const [did, card] of this.cards) if (didKey(did) === entry.key) this.cards.delete(card.did);
            continue;
          }
          this.take(entry.key, entry.value);
        }
      } catch {
        this.kv = undefined;
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, 1_000));
    }
  }

  private take(key: string, value: Uint8Array): void {
    let card: AgentCard;
    try {
      let raw: unknown;
      try {
        raw = JSON.parse(new TextDecoder().decode(value));
      } catch (cause) {
        throw new CardError('card expected JSON', { cause });
      }
      card = verifyCard(raw, this.suite, key);
    } catch (err) {
      this.onInvalid(key, err instanceof CardError ? err : new CardError(String(err)));
      return;
    }
    const known = this.cards.get(card.did);
    if (known !== undefined && known.ts > card.ts) return;
    this.cards.set(card.did, card);
    for (const fn of this.listeners) fn(card);
  }
}

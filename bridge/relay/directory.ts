// The directory: signed agent cards in a JetStream KV bucket, watched into a local cache and queried there.
import type { NatsConnection } from '@nats-io/transport-node';
import type { CryptoSuite } from '../../runtime/crypto/suite.ts';
import type { AnxError } from '../../runtime/errors.ts';
import { type AgentCard, CardError, type SignedCard, verifyCard } from './cards.ts';
import { Bucket, removedEntry } from './kv-bucket.ts';
import { DIRECTORY_BUCKET, didKey } from './subjects.ts';

/**
 * Keeps every valid card of the relay's directory in memory (by DID) from a KV watch, so queries
 * never wait for the network. Cards that do not verify are ignored and reported to `onInvalid`.
 *
 * A card is signed by its DID and never withdrawn, so a delete or purge of its key (only someone
 * holding the join URL can make one) leaves the card known here; the host of a local DID puts the
 * card back in the bucket, for hosts that join later. Either way the removal is reported.
 */
export class Directory {
  private readonly bucket: Bucket;
  private readonly cards = new Map<string, AgentCard>();
  /** The bytes of each card taken, by key: what goes back into the bucket after a removal. */
  private readonly stored = new Map<string, Uint8Array>();
  private readonly listeners = new Set<(card: AgentCard) => void>();
  private stopped = false;

  constructor(
    nc: NatsConnection,
    private readonly suite: CryptoSuite,
    private readonly onInvalid: (key: string, error: AnxError) => void,
    private readonly isLocal: (did: string) => boolean = () => false,
  ) {
    this.bucket = new Bucket(nc, DIRECTORY_BUCKET, { history: 1 });
  }

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
    await this.bucket.putJson(didKey(signed.card.did), signed);
  }

  /** Writes raw bytes under a key: for tests of forged cards. */
  async putRaw(key: string, bytes: Uint8Array): Promise<void> {
    await (await this.bucket.open()).put(key, bytes);
  }

  stop(): void {
    this.stopped = true;
  }

  private async run(): Promise<void> {
    await this.bucket.follow({
      stopped: () => this.stopped,
      onEntry: (entry) => this.take(entry.key, entry.value),
      onRemoved: async (key, operation) => {
        const card = [...this.cards.values()].find((c) => didKey(c.did) === key);
        const bytes = this.stored.get(key);
        const restore = card !== undefined && bytes !== undefined && this.isLocal(card.did);
        if (restore) await (await this.bucket.open()).put(key, bytes).catch(() => {});
        this.onInvalid(key, removedEntry(DIRECTORY_BUCKET, key, operation, restore, card !== undefined));
      },
    });
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
    this.stored.set(key, value);
    for (const fn of this.listeners) fn(card);
  }
}

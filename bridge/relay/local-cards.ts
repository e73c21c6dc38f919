// The cards of a host's own identities, kept in its LMDB: discovery lists them with or without a relay.
import type { Database } from 'lmdb';
import { AnxError } from '../../runtime/errors.ts';
import type { Host } from '../../runtime/host.ts';
import {
  type AgentCard,
  type CardQuery,
  cardMatches,
  makeCard,
  type SignedCard,
  signCard,
  verifyCard,
} from './cards.ts';

/** A card as discovery returns it: the card with what the host knows of its DID now. */
export type DiscoveredCard = AgentCard & { online: boolean; trust: number };

const byHost = new WeakMap<Host, LocalCards>();

/** The card store of `host` (one per host, opened on first use). */
export function localCards(host: Host): LocalCards {
  let cards = byHost.get(host);
  if (cards === undefined) {
    cards = new LocalCards(host);
    byHost.set(host, cards);
  }
  return cards;
}

/**
 * Signed cards of local identities by DID. A local identity that never published one is listed with
 * a card of its name alone, so discovery on a host shows everyone who lives on it.
 */
export class LocalCards {
  private readonly db: Database<SignedCard, string>;

  constructor(private readonly host: Host) {
    this.db = host.store.root.openDB<SignedCard, string>({ name: 'cards', useRecords: false } as never);
  }

  /** Checks, signs and stores the card of a local DID; fields not given are empty. */
  async publish(input: Partial<AgentCard> & { did: string }): Promise<AgentCard> {
    if (input === null || typeof input !== 'object' || Array.isArray(input))
      throw new AnxError('ANX_CARD_INVALID', 'card expected an object with at least "did"');
    const now = this.host.clock.now();
    const card = makeCard({ ...input, ts: now }, now);
    if (!this.host.keystore.has(card.did))
      throw new AnxError(
        'ANX_NOT_LOCAL_IDENTITY',
        `this host holds no key for ${card.did}, so it cannot sign its card`,
        { hint: 'publish cards of identities listed by `anx-runtime id list`' },
      );
    await this.db.put(
      card.did,
      signCard(card, (m) => this.host.keystore.sign(card.did, m)),
    );
    // The card's qps and concurrency are what this host enforces on the DID's inbound messages.
    this.host.authority.rateLimits.setLimits(card);
    return card;
  }

  /** The card of a local DID: the published one, else one carrying its name alone. */
  get(did: string): AgentCard | undefined {
    const record = this.host.keystore.list().find((r) => r.did === did);
    if (record === undefined) return undefined;
    return (
      this.stored(did) ?? makeCard({ did, name: record.name ?? '', ts: record.createdAt }, record.createdAt)
    );
  }

  /** Every local identity's card. */
  all(): AgentCard[] {
    return this.host.keystore
      .list()
      .map(
        (r) =>
          this.stored(r.did) ?? makeCard({ did: r.did, name: r.name ?? '', ts: r.createdAt }, r.createdAt),
      );
  }

  /**
   * Local cards matching `query`, merged with `remote` (a relay directory's matches): for a DID in both,
   * the newer card wins. Local identities count as online while the host runs, unless `online` says otherwise.
   */
  discover(
    query: CardQuery,
    options: {
      remote?: DiscoveredCard[];
      online?: (did: string) => boolean;
      trust?: (did: string) => number;
    } = {},
  ): DiscoveredCard[] {
    const found = new Map<string, DiscoveredCard>();
    for (const card of options.remote ?? []) found.set(card.did, card);
    for (const card of this.all()) {
      const facts = {
        online: options.online?.(card.did) ?? true,
        trust: options.trust?.(card.did) ?? this.host.authority.trust.score(card.did).score,
      };
      if (!cardMatches(card, query, facts)) continue;
      const other = found.get(card.did);
      if (other === undefined || other.ts < card.ts) found.set(card.did, { ...card, ...facts });
    }
    return [...found.values()].sort((a, b) => a.did.localeCompare(b.did));
  }

  /** A stored card that still verifies (a damaged record is ignored rather than served). */
  private stored(did: string): AgentCard | undefined {
    const signed = this.db.get(did);
    if (signed === undefined) return undefined;
    try {
      return verifyCard(signed, this.host.suite);
    } catch {
      return undefined;
    }
  }
}

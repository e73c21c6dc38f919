// Agent cards: what a DID offers (roles, capabilities, limits, endpoints), signed by that DID's key.
import type { CryptoSuite } from '../../runtime/crypto/suite.ts';
import { AnxError, describeValue } from '../../runtime/errors.ts';
import { parseDid } from '../../runtime/identity/did.ts';

/** A card as published: every field present, lists of short strings, limits as non-negative integers. */
export interface AgentCard {
  v: 1;
  did: string;
  name: string;
  roles: string[];
  capabilities: string[];
  tags: string[];
  protocols: string[];
  /** Requests per second the DID accepts (0 = no stated budget). */
  qps: number;
  /** Requests the DID works on at once (0 = no stated limit). */
  concurrency: number;
  /** Where else the DID can be reached (URLs); informational. */
  endpoints: string[];
  /** Publication time, ms since the epoch: a newer card replaces an older one. */
  ts: number;
}

/** A card with its Ed25519 signature (lowercase hex) by the card's DID. */
export interface SignedCard {
  card: AgentCard;
  sig: string;
}

/** A card that is malformed, or whose signature or DID does not verify (`ANX_CARD_INVALID`). */
export class CardError extends AnxError {
  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super('ANX_CARD_INVALID', message, options);
  }
}

const CARD_PREFIX = new TextEncoder().encode('anx-card-sig\0');
const LIST_MAX = 64;
const ITEM = /^[A-Za-z0-9._:/@+-]{1,128}$/;

/** Canonical JSON: object keys sorted, no whitespace. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value as Record<string, unknown>)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Signing input: ASCII `anx-card-sig`, 0x00, then the card's canonical JSON in UTF-8. */
export function cardSigningInput(card: AgentCard): Uint8Array {
  const body = new TextEncoder().encode(canonicalJson(card));
  const out = new Uint8Array(CARD_PREFIX.length + body.length);
  out.set(CARD_PREFIX, 0);
  out.set(body, CARD_PREFIX.length);
  return out;
}

function list(value: unknown, field: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > LIST_MAX)
    throw new CardError(
      `"${field}" expected a list of at most ${LIST_MAX} items, got ${describeValue(value)}`,
    );
  for (const item of value) {
    if (typeof item !== 'string' || (field === 'endpoints' ? item.length > 512 : !ITEM.test(item)))
      throw new CardError(
        `"${field}" expected items like "code.review" (1-128 of [A-Za-z0-9._:/@+-]), got ${describeValue(item)}`,
      );
  }
  return [...value] as string[];
}

function count(value: unknown, field: string): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 1_000_000_000)
    throw new CardError(`"${field}" expected a non-negative integer, got ${describeValue(value)}`);
  return value;
}

/** Builds a card from loose input, checking every field (throws `CardError`). */
export function makeCard(input: Partial<AgentCard> & { did: string }, now: number): AgentCard {
  try {
    parseDid(input.did, 'did');
  } catch (cause) {
    throw new CardError(`"did" expected a did:agentnexus DID, got ${describeValue(input.did)}`, { cause });
  }
  const name = input.name ?? '';
  if (typeof name !== 'string' || name.length > 128)
    throw new CardError(`"name" expected at most 128 characters, got ${describeValue(name)}`);
  return {
    v: 1,
    did: input.did,
    name,
    roles: list(input.roles, 'roles'),
    capabilities: list(input.capabilities, 'capabilities'),
    tags: list(input.tags, 'tags'),
    protocols: list(input.protocols, 'protocols'),
    qps: count(input.qps, 'qps'),
    concurrency: count(input.concurrency, 'concurrency'),
    endpoints: list(input.endpoints, 'endpoints'),
    ts: typeof input.ts === 'number' ? input.ts : now,
  };
}

/** Signs a card with its DID's key (through a signer, so the key stays in the keystore). */
export function signCard(card: AgentCard, sign: (message: Uint8Array) => Uint8Array): SignedCard {
  return { card, sig: Buffer.from(sign(cardSigningInput(card))).toString('hex') };
}

/**
 * Checks a stored card: well-formed, published under its own DID's key (`key` is the multikey it was
 * stored under), signed by that DID. Returns the card or throws `CardError`.
 */
export function verifyCard(raw: unknown, suite: CryptoSuite, key?: string): AgentCard {
  const signed = raw as Partial<SignedCard> | null;
  if (
    typeof signed !== 'object' ||
    signed === null ||
    typeof signed.card !== 'object' ||
    typeof signed.sig !== 'string'
  )
    throw new CardError('card expected {card, sig}, got something else');
  const input = signed.card as Partial<AgentCard> & { did: string };
  if (input.v !== 1) throw new CardError(`card "v" expected 1, got ${describeValue(input.v)}`);
  const card = makeCard(input, 0);
  if (canonicalJson(card) !== canonicalJson(input))
    throw new CardError('card has fields outside the card format');
  const parsed = parseDid(card.did, 'did');
  if (key !== undefined && key !== parsed.multikey)
    throw new CardError(`card of ${card.did} was stored under another DID's key (${key})`);
  if (!/^[0-9a-f]{128}$/.test(signed.sig)) throw new CardError('card "sig" expected 64 bytes in hex');
  if (!suite.verify(parsed.publicKey, cardSigningInput(card), new Uint8Array(Buffer.from(signed.sig, 'hex'))))
    throw new CardError(`card signature does not verify against ${card.did}`);
  return card;
}

/** What `discover` filters on. */
export interface CardQuery {
  capability?: string;
  role?: string;
  tag?: string;
  protocol?: string;
  minTrust?: number;
  online?: boolean;
}

/** True when `card` matches every given filter. */
export function cardMatches(
  card: AgentCard,
  query: CardQuery,
  facts: { online: boolean; trust: number },
): boolean {
  if (query.capability !== undefined && !card.capabilities.includes(query.capability)) return false;
  if (query.role !== undefined && !card.roles.includes(query.role)) return false;
  if (query.tag !== undefined && !card.tags.includes(query.tag)) return false;
  if (query.protocol !== undefined && !card.protocols.includes(query.protocol)) return false;
  if (query.minTrust !== undefined && facts.trust < query.minTrust) return false;
  if (query.online === true && !facts.online) return false;
  return true;
}

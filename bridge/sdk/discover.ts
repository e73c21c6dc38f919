// Agent cards in the SDK: the discovery query and the card a client publishes, checked at the edge.
import type { AgentCard, CardQuery } from '../relay/cards.ts';
import type { DiscoveredCard } from '../relay/local-cards.ts';
import { SdkArgumentError } from './errors.ts';

/**
 * What `discover` filters on; every filter given must match: `capability`, `role`, `tag`, `protocol`
 * (names as in the card), `minTrust` (0 to 1; unknown agents count as 0.5) and `online` (local
 * identities are online while their host runs).
 */
export type DiscoverQuery = CardQuery;

/** An agent found by `discover`: its signed card's fields, whether it is online, and its trust (0 to 1). */
export type DiscoveredAgent = DiscoveredCard;

/** Card fields a client may publish besides its name and `caps`. */
export interface CardFields {
  /** Display name; defaults to the name given to `connect`. */
  name?: string;
  roles?: string[];
  /** Capabilities; `caps` at connect sets the same list. */
  capabilities?: string[];
  tags?: string[];
  protocols?: string[];
  /** Requests per second the agent accepts (0 = no stated budget). */
  qps?: number;
  /** Requests the agent works on at once (0 = no stated limit). */
  concurrency?: number;
  /** Other URLs the agent can be reached at. */
  endpoints?: string[];
}

export type { AgentCard };

const ITEM = /^[A-Za-z0-9._:/@+-]{1,128}$/;
const ITEM_TEXT = 'like "code.review" (1-128 of [A-Za-z0-9._:/@+-])';
const LIST_MAX = 64;

function checkItem(argument: string, value: unknown): string {
  if (typeof value !== 'string' || !ITEM.test(value))
    throw new SdkArgumentError(argument, `a name ${ITEM_TEXT}`, value);
  return value;
}

/** A list of card items (`caps`, `roles`, …): at most 64, each like "code.review". */
export function checkItems(
  argument: string,
  value: unknown,
  item: (v: unknown) => boolean = (v) => typeof v === 'string' && ITEM.test(v),
): string[] {
  if (!Array.isArray(value) || value.length > LIST_MAX)
    throw new SdkArgumentError(argument, `a list of at most ${LIST_MAX} names ${ITEM_TEXT}`, value);
  for (const [i, v] of value.entries()) {
    if (!item(v)) throw new SdkArgumentError(`${argument}[${i}]`, `a name ${ITEM_TEXT}`, v);
  }
  return [...value];
}

function checkCount(argument: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > 1_000_000_000)
    throw new SdkArgumentError(argument, 'a non-negative integer', value);
  return value;
}

/** Checks a discovery query; throws `SdkArgumentError` naming the bad filter. */
export function checkDiscoverQuery(query: unknown): CardQuery {
  if (query === undefined) return {};
  if (query === null || typeof query !== 'object' || Array.isArray(query))
    throw new SdkArgumentError('query', 'an object such as { capability: "code.review" }', query);
  const q = query as Record<string, unknown>;
  const known = new Set(['capability', 'role', 'tag', 'protocol', 'minTrust', 'online']);
  for (const key of Object.keys(q)) {
    if (!known.has(key))
      throw new SdkArgumentError(key, `nothing (known filters: ${[...known].join(', ')})`, q[key]);
  }
  const out: CardQuery = {};
  for (const name of ['capability', 'role', 'tag', 'protocol'] as const) {
    if (q[name] !== undefined) out[name] = checkItem(name, q[name]);
  }
  if (q['minTrust'] !== undefined) {
    const t = q['minTrust'];
    if (typeof t !== 'number' || !(t >= 0 && t <= 1))
      throw new SdkArgumentError('minTrust', 'a number from 0 to 1', t);
    out.minTrust = t;
  }
  if (q['online'] !== undefined) {
    if (typeof q['online'] !== 'boolean') throw new SdkArgumentError('online', 'true or false', q['online']);
    if (q['online']) out.online = true;
  }
  return out;
}

/** The query as the local API's `GET /v1/discover` takes it. */
export function discoverSearch(query: CardQuery): URLSearchParams {
  const search = new URLSearchParams();
  for (const name of ['capability', 'role', 'tag', 'protocol'] as const) {
    const v = query[name];
    if (v !== undefined) search.set(name, v);
  }
  if (query.minTrust !== undefined) search.set('min_trust', String(query.minTrust));
  if (query.online === true) search.set('online', '1');
  return search;
}

/** Checks card fields; throws `SdkArgumentError` naming the bad field. Returns only the fields given. */
export function checkCardFields(argument: string, fields: unknown): CardFields {
  if (fields === null || typeof fields !== 'object' || Array.isArray(fields))
    throw new SdkArgumentError(argument, 'an object of card fields', fields);
  const f = fields as Record<string, unknown>;
  const out: CardFields = {};
  for (const key of Object.keys(f)) {
    const value = f[key];
    if (value === undefined) continue;
    const at = `${argument}.${key}`;
    switch (key) {
      case 'name':
        if (typeof value !== 'string' || value.length > 128)
          throw new SdkArgumentError(at, 'a name of at most 128 characters', value);
        out.name = value;
        break;
      case 'roles':
      case 'capabilities':
      case 'tags':
      case 'protocols':
        out[key] = checkItems(at, value);
        break;
      case 'endpoints':
        out.endpoints = checkItems(
          at,
          value,
          (v) => typeof v === 'string' && v.length > 0 && v.length <= 512,
        );
        break;
      case 'qps':
      case 'concurrency':
        out[key] = checkCount(at, value);
        break;
      default:
        throw new SdkArgumentError(
          at,
          'nothing (card fields: name, roles, capabilities, tags, protocols, qps, concurrency, endpoints)',
          value,
        );
    }
  }
  return out;
}

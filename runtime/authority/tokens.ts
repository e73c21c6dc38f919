// Capability tokens: signed, offline-verifiable grants of actions on a resource, delegated only by narrowing.
import { createHash } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { CryptoSuite } from '../crypto/suite.ts';
import { sharedVerifyPool, type VerifyItem, type VerifyPool } from '../crypto/verify-pool.ts';
import { CONTEXT_KEYS, type EnvelopeContext } from '../envelope/envelope.ts';
import { describeValue } from '../errors.ts';
import { type Did, isDid, publicKeyOfDid } from '../identity/did.ts';
import type { AuditLog } from './audit.ts';
import { canonicalize, fromB64u, toB64u, toHex, utf8 } from './canonical.ts';
import { AuthorityRequestError, TokenError, type TokenErrorCode } from './errors.ts';
import type { FreezeState } from './freeze.ts';
import type { RevocationList } from './revocation.ts';

/** Text form of a token: this prefix, then base64url (no padding) of the chain's canonical JSON. */
export const TOKEN_PREFIX = 'anx1.';
/** Domain-separation prefix of a link's signing input (followed by a 0x00 byte). */
export const TOKEN_SIG_DOMAIN = 'anx-cap-v1';
/** Longest chain: the root grant and up to 7 delegations. */
export const MAX_CHAIN = 8;
/** Longest token text. */
export const MAX_TOKEN_CHARS = 32_768;

const ACTION = /^(\*|[a-z][a-z0-9_.:-]{0,63})$/;
const RESOURCE = /^[\x21-\x7e]{1,512}$/;
const CTX_VALUE = /^[\x20-\x7e]{1,256}$/;
const STAGE = /^[A-Za-z0-9_.:-]{1,64}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const LINK_FIELDS = ['act', 'aud', 'cst', 'cth', 'exp', 'iss', 'nbf', 'nonce', 'prf', 'res', 'sig', 'v'];

/**
 * Conditions on how a grant may be used. Every key is optional; a delegation may add keys or make
 * them stricter, never drop or loosen them. A verifier that meets a key it does not know refuses
 * the token (it cannot tell whether the condition holds).
 */
export interface TokenConstraints {
  /** The request's context must carry exactly these values (session, run, Enclave, task, stage). */
  ctx?: EnvelopeContext;
  /** The request's stage must be one of these. */
  stages?: string[];
  /** The request may write at most this many bytes. */
  max_bytes?: number;
}

/** One signed link of a chain (wire names; see docs/capability-tokens.md). */
export interface TokenLink {
  v: 1;
  /** Who grants (signs this link). The root link's issuer must be the resource's owner. */
  iss: Did;
  /** Who may use (or further delegate) the grant. */
  aud: Did;
  /** The resource, or `*` for every resource of the owner; a path narrows by `/` segments. */
  res: string;
  /** Allowed actions, sorted and unique; `*` allows every action. */
  act: string[];
  cst: TokenConstraints;
  /** SHA-256 (hex) of the canonical JSON of `cst`. */
  cth: string;
  /** Valid from (ms since the epoch, inclusive). */
  nbf: number;
  /** Valid until (ms since the epoch, exclusive). */
  exp: number;
  /** 16 random bytes, base64url: two grants with equal fields still differ. */
  nonce: string;
  /** Id of the parent link (hex SHA-256 of its canonical JSON with `sig`), null for the root. */
  prf: string | null;
  /** Ed25519 signature (base64url) by `iss` over `anx-cap-v1`, 0x00, canonical JSON without `sig`. */
  sig: string;
}

/** What a request asks to do, checked against a token. */
export interface TokenRequest {
  /** The DID presenting the token: must be the last link's audience. */
  actor: Did;
  resource: string;
  action: string;
  /** The resource's owner: the chain must start at this DID. */
  owner: Did;
  /** Time of the check (ms since the epoch); default the host clock. */
  now?: number;
  /** Context the request runs in, matched against `ctx` and `stages` constraints. */
  context?: EnvelopeContext;
  /** Bytes the request writes, matched against `max_bytes`. */
  bytes?: number;
}

/** A token that grants the request: who granted what to whom. */
export interface TokenGrant {
  /** Id of the last link (what `revoke` names by default). */
  id: string;
  /** Ids of every link, root first. */
  chain: string[];
  owner: Did;
  issuer: Did;
  holder: Did;
  resource: string;
  actions: string[];
  constraints: TokenConstraints;
  notBefore: number;
  expiresAt: number;
}

/** A decoded token: its links with their ids (signatures checked). */
export interface DecodedToken {
  links: TokenLink[];
  ids: string[];
}

/** A link whose signature has not been verified yet, with what verifying it takes. */
interface UnverifiedLink extends VerifyItem {
  index: number;
  id: string;
}

/** A token checked in every way but its signatures. */
interface ParsedToken extends DecodedToken {
  unverified: UnverifiedLink[];
}

export interface IssueRequest {
  /** A local DID that owns the resource (it signs). */
  issuer: Did;
  audience: Did;
  resource: string;
  actions: string[];
  constraints?: TokenConstraints;
  notBefore?: number;
  /** Absolute expiry (ms since the epoch); or give `ttlMs`. */
  expiresAt?: number;
  ttlMs?: number;
}

export interface DelegateRequest {
  /** The token being narrowed; its holder (last audience) signs the new link and must be local. */
  parent: string;
  audience: Did;
  /** Default: the parent's resource. */
  resource?: string;
  /** Default: the parent's actions. */
  actions?: string[];
  /** Merged over the parent's constraints (which always stay in force). */
  constraints?: TokenConstraints;
  notBefore?: number;
  expiresAt?: number;
  ttlMs?: number;
}

/** Signs with a local DID's key (the keystore), so private keys never reach this module. */
export interface Signer {
  has(did: Did): boolean;
  sign(did: Did, message: Uint8Array): Uint8Array;
}

const fail = (code: TokenErrorCode, message: string, hint?: string): never => {
  throw new TokenError(code, message, hint === undefined ? undefined : { hint });
};

const DEFAULT_TTL_MS = 60 * 60_000;
/** The latest expiry a token can be issued with (the end of the year 9999: a date every clock can show). */
const TOKEN_EXP_MAX = Date.UTC(10000, 0, 1) - 1;

// ---- encoding ----

/** The bytes a link's signature covers: `anx-cap-v1`, 0x00, canonical JSON of the link without `sig`. */
export function linkSigningInput(link: Omit<TokenLink, 'sig'> & { sig?: string }): Uint8Array {
  const { sig: _sig, ...unsigned } = link;
  return utf8(`${TOKEN_SIG_DOMAIN}\0${canonicalize(unsigned)}`);
}

/** Hex SHA-256 of text's UTF-8 bytes (straight from the string with the node suite: ids are hashed often). */
function sha256Hex(suite: CryptoSuite, text: string): string {
  return suite.name === 'node'
    ? createHash('sha256').update(text, 'utf8').digest('hex')
    : toHex(suite.sha256(utf8(text)));
}

/** A link's id: hex SHA-256 of its canonical JSON including `sig`. */
export function linkId(suite: CryptoSuite, link: TokenLink): string {
  return sha256Hex(suite, canonicalize(link));
}

/** Hex SHA-256 of the canonical JSON of constraints. */
export function constraintsHash(suite: CryptoSuite, cst: TokenConstraints): string {
  return sha256Hex(suite, canonicalize(cst));
}

/** The text form of a chain (root first). */
export function encodeToken(links: TokenLink[]): string {
  return TOKEN_PREFIX + toB64u(utf8(canonicalize(links)));
}

/** How many distinct constraints a verifier remembers the hash of. */
const CONSTRAINT_HASHES = 256;
/** How many refused token texts a verifier remembers (a bad token presented again is refused at once). */
const REFUSALS_KEPT = 256;

/** True when the keys of every object in `value` are in sorted order (as canonical JSON has them). */
function keysSorted(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return true;
  if (Array.isArray(value)) return value.every(keysSorted);
  let previous: string | undefined;
  for (const key of Object.keys(value)) {
    if (previous !== undefined && !(previous < key)) return false;
    if (!keysSorted((value as Record<string, unknown>)[key])) return false;
    previous = key;
  }
  return true;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Checks constraints' shape (throws `ANX_TOKEN_INVALID`), returning them as typed. */
export function parseConstraints(raw: unknown, where = 'constraints'): TokenConstraints {
  if (!isObject(raw)) return fail('ANX_TOKEN_INVALID', `${where} expected an object`);
  for (const key of Object.keys(raw)) {
    if (key !== 'ctx' && key !== 'stages' && key !== 'max_bytes')
      fail(
        'ANX_TOKEN_INVALID',
        `${where} has an unknown constraint "${key}" (known: ctx, stages, max_bytes)`,
        'a token with a condition this verifier cannot check is refused',
      );
  }
  if (raw.ctx !== undefined) {
    if (!isObject(raw.ctx)) fail('ANX_TOKEN_INVALID', `${where}.ctx expected an object`);
    for (const [key, value] of Object.entries(raw.ctx as Record<string, unknown>)) {
      if (!(CONTEXT_KEYS as readonly string[]).includes(key))
        fail(
          'ANX_TOKEN_INVALID',
          `${where}.ctx expected keys among ${CONTEXT_KEYS.join(', ')}, got "${key}"`,
        );
      if (typeof value !== 'string' || !CTX_VALUE.test(value))
        fail('ANX_TOKEN_INVALID', `${where}.ctx.${key} expected 1-256 printable characters`);
    }
  }
  if (raw.stages !== undefined) {
    const stages = raw.stages;
    if (!Array.isArray(stages) || stages.length === 0 || stages.length > 64)
      fail('ANX_TOKEN_INVALID', `${where}.stages expected a list of 1 to 64 stage names`);
    for (const s of stages as unknown[])
      if (typeof s !== 'string' || !STAGE.test(s))
        fail('ANX_TOKEN_INVALID', `${where}.stages has a malformed stage name`);
    if (new Set(stages as string[]).size !== (stages as string[]).length)
      fail('ANX_TOKEN_INVALID', `${where}.stages repeats a stage`);
  }
  if (raw.max_bytes !== undefined) {
    const n = raw.max_bytes;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
      fail('ANX_TOKEN_INVALID', `${where}.max_bytes expected a non-negative integer`);
  }
  return raw as TokenConstraints;
}

function parseActions(raw: unknown, where: string): string[] {
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > 64)
    return fail('ANX_TOKEN_INVALID', `${where} expected a list of 1 to 64 actions`);
  for (let i = 0; i < raw.length; i++) {
    const a = raw[i];
    if (typeof a !== 'string' || !ACTION.test(a))
      fail('ANX_TOKEN_INVALID', `${where} expected actions like "vault.put" or "*", got ${describeValue(a)}`);
    if (i > 0 && (raw[i - 1] as string) >= (a as string))
      fail('ANX_TOKEN_INVALID', `${where} expected sorted, unique actions`);
  }
  return raw as string[];
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A did:agentnexus DID whose key decodes (through the DID key cache: tokens repeat the same DIDs). */
function isTokenDid(value: unknown): value is Did {
  if (typeof value !== 'string' || !value.startsWith('did:agentnexus:')) return false;
  try {
    publicKeyOfDid(value);
    return true;
  } catch {
    return false;
  }
}

function parseLink(raw: unknown, index: number): TokenLink {
  const where = `token link ${index}`;
  if (!isObject(raw)) return fail('ANX_TOKEN_INVALID', `${where} expected an object`);
  const keys = Object.keys(raw).sort();
  if (keys.length !== LINK_FIELDS.length || keys.some((k, i) => k !== LINK_FIELDS[i]))
    fail('ANX_TOKEN_INVALID', `${where} expected exactly the fields ${LINK_FIELDS.join(', ')}`);
  if (raw.v !== 1) fail('ANX_TOKEN_INVALID', `${where} "v" expected 1, got ${describeValue(raw.v)}`);
  if (!isTokenDid(raw.iss)) fail('ANX_TOKEN_INVALID', `${where} "iss" expected a did:agentnexus DID`);
  if (!isTokenDid(raw.aud)) fail('ANX_TOKEN_INVALID', `${where} "aud" expected a did:agentnexus DID`);
  if (typeof raw.res !== 'string' || !RESOURCE.test(raw.res))
    fail('ANX_TOKEN_INVALID', `${where} "res" expected 1-512 printable ASCII characters without spaces`);
  parseActions(raw.act, `${where} "act"`);
  parseConstraints(raw.cst, `${where} "cst"`);
  if (typeof raw.cth !== 'string' || !HEX64.test(raw.cth))
    fail('ANX_TOKEN_INVALID', `${where} "cth" expected 64 hex digits`);
  for (const f of ['nbf', 'exp'] as const) {
    const n = raw[f];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
      fail('ANX_TOKEN_INVALID', `${where} "${f}" expected ms since the epoch as an integer`);
  }
  if ((raw.exp as number) <= (raw.nbf as number))
    fail('ANX_TOKEN_INVALID', `${where} expires before it starts`);
  if (typeof raw.nonce !== 'string' || fromB64u(raw.nonce)?.length !== 16)
    fail('ANX_TOKEN_INVALID', `${where} "nonce" expected 16 bytes in base64url`);
  if (raw.prf !== null && (typeof raw.prf !== 'string' || !HEX64.test(raw.prf)))
    fail('ANX_TOKEN_INVALID', `${where} "prf" expected null or 64 hex digits`);
  if (typeof raw.sig !== 'string' || fromB64u(raw.sig)?.length !== 64)
    fail('ANX_TOKEN_INVALID', `${where} "sig" expected 64 bytes in base64url`);
  return raw as unknown as TokenLink;
}

// ---- narrowing rules ----

/** True when `child` names `parent` or something under it (`parent` `*` covers everything). */
export function resourceWithin(child: string, parent: string): boolean {
  if (parent === '*' || child === parent) return true;
  return child.startsWith(parent.endsWith('/') ? parent : `${parent}/`);
}

/** True when every action of `child` is allowed by `parent`. */
export function actionsWithin(child: readonly string[], parent: readonly string[]): boolean {
  if (parent.includes('*')) return true;
  return child.every((a) => a !== '*' && parent.includes(a));
}

/** Why `child` constraints are looser than `parent`'s, or undefined when they are the same or tighter. */
export function constraintsLooser(child: TokenConstraints, parent: TokenConstraints): string | undefined {
  for (const [key, value] of Object.entries(parent.ctx ?? {})) {
    if (child.ctx?.[key as keyof EnvelopeContext] !== value)
      return `it drops or changes the ctx.${key} constraint`;
  }
  if (parent.stages !== undefined) {
    if (child.stages === undefined) return 'it drops the stages constraint';
    const allowed = parent.stages;
    if (!child.stages.every((s) => allowed.includes(s))) return 'it adds stages the parent does not allow';
  }
  if (parent.max_bytes !== undefined) {
    if (child.max_bytes === undefined) return 'it drops the max_bytes constraint';
    if (child.max_bytes > parent.max_bytes) return 'it raises max_bytes';
  }
  return undefined;
}

/** Why `child` grants more than `parent`, or undefined when it only narrows. */
export function widening(
  child: Pick<TokenLink, 'res' | 'act' | 'cst' | 'nbf' | 'exp'>,
  parent: Pick<TokenLink, 'res' | 'act' | 'cst' | 'nbf' | 'exp'>,
): string | undefined {
  if (!resourceWithin(child.res, parent.res))
    return `its resource "${child.res}" is not within "${parent.res}"`;
  if (!actionsWithin(child.act, parent.act))
    return `its actions [${child.act.join(', ')}] are not within [${parent.act.join(', ')}]`;
  const looser = constraintsLooser(child.cst, parent.cst);
  if (looser !== undefined) return looser;
  if (child.exp > parent.exp) return 'it expires after its parent';
  if (child.nbf < parent.nbf) return 'it starts before its parent';
  return undefined;
}

/** Why `request` falls outside `cst`, or undefined when it meets every constraint. */
export function constraintsUnmet(
  cst: TokenConstraints,
  request: Pick<TokenRequest, 'context' | 'bytes'>,
): string | undefined {
  for (const [key, value] of Object.entries(cst.ctx ?? {})) {
    const got = request.context?.[key as keyof EnvelopeContext];
    if (got !== value)
      return `the token is limited to ${key} "${value}", the request has ${got === undefined ? 'none' : `"${got}"`}`;
  }
  if (cst.stages !== undefined) {
    const stage = request.context?.stage;
    if (stage === undefined || !cst.stages.includes(stage))
      return `the token is limited to stages [${cst.stages.join(', ')}], the request is in ${stage === undefined ? 'no stage' : `"${stage}"`}`;
  }
  if (cst.max_bytes !== undefined) {
    if (request.bytes === undefined)
      return 'the token limits bytes written, and the request does not say how many';
    if (request.bytes > cst.max_bytes)
      return `the token allows ${cst.max_bytes} bytes, the request writes ${request.bytes}`;
  }
  return undefined;
}

/** Normalizes actions given by a caller: sorted and unique. */
function normalizeActions(actions: unknown, field: string): string[] {
  if (!Array.isArray(actions) || actions.length === 0)
    throw new AuthorityRequestError(`"${field}" expected a non-empty list of actions like "vault.put"`);
  const out = [...new Set(actions as string[])].sort();
  try {
    return parseActions(out, `"${field}"`);
  } catch (err) {
    throw new AuthorityRequestError((err as Error).message);
  }
}

// ---- verification ----

/**
 * Verifies tokens from their text alone: shape, every signature, the chain's order and that each
 * delegation only narrows. Needs no host and no state but its caches, so the CLI can inspect a token
 * with no daemon running; revocation, time and a request's scope are the `TokenService`'s to check.
 *
 * @example
 * ```ts
 * const grant = new TokenVerifier(nodeSuite).inspect(token);
 * ```
 */
export class TokenVerifier {
  private readonly cache = new Map<string, DecodedToken>();
  /** Ids of links whose signature verified (an id is the hash of every byte of the link). */
  private readonly verifiedLinks = new Map<string, true>();
  /** Hashes of constraints by their canonical JSON. */
  private readonly constraintHashes = new Map<string, string>();
  /** Token texts refused by `decode`, with their error (bounded like the cache). */
  private readonly refusals = new Map<string, TokenError>();

  /** `cacheSize`: verified chains kept (by token text); default 4096, 0 disables. */
  constructor(
    private readonly suite: CryptoSuite,
    private readonly cacheSize = 4_096,
  ) {}

  /**
   * Parses a token and checks everything that does not depend on a request: its shape, every
   * signature, the links' order (`prf`, issuer = previous audience) and that every delegation only
   * narrows. Throws `ANX_TOKEN_INVALID` or `ANX_TOKEN_WIDENED`.
   */
  decode(token: string): DecodedToken {
    const known = this.known(token);
    if (known !== undefined) return known;
    try {
      const parsed = this.parse(token);
      const verdicts = parsed.unverified.map((u) => this.suite.verify(u.publicKey, u.message, u.signature));
      return this.finish(token, parsed, verdicts);
    } catch (err) {
      throw this.refusedToken(token, err);
    }
  }

  /**
   * `decode` with the signatures verified on `pool`'s worker threads: the same checks, errors and
   * caches, without holding the event loop for the Ed25519 work.
   */
  async decodeAsync(token: string, pool: VerifyPool): Promise<DecodedToken> {
    const known = this.known(token);
    if (known !== undefined) return known;
    try {
      const parsed = this.parse(token);
      const verdicts = parsed.unverified.length === 0 ? [] : await pool.verifyAll(parsed.unverified);
      return this.finish(token, parsed, verdicts);
    } catch (err) {
      throw this.refusedToken(token, err);
    }
  }

  /**
   * A token decoded before: its result, or the error it was refused with, thrown again. Decoding
   * depends on the text alone, so a token prepared on the pool and refused costs nothing a second
   * time at its check.
   */
  private known(token: string): DecodedToken | undefined {
    const refusal = this.refusals.get(token);
    if (refusal !== undefined) throw refusal;
    return this.cache.get(token);
  }

  /** Remembers why a token text was refused (a `TokenError`; anything else is not about the token). */
  private refusedToken(token: string, err: unknown): unknown {
    if (err instanceof TokenError && typeof token === 'string')
      this.remember(this.refusals, token, err, REFUSALS_KEPT);
    return err;
  }

  /** Everything `decode` checks but the signatures, and the signatures that still need verifying. */
  private parse(token: string): ParsedToken {
    if (typeof token !== 'string' || !token.startsWith(TOKEN_PREFIX))
      fail('ANX_TOKEN_INVALID', `a token expected text starting with "${TOKEN_PREFIX}"`);
    if (token.length > MAX_TOKEN_CHARS)
      fail('ANX_TOKEN_INVALID', `a token expected at most ${MAX_TOKEN_CHARS} characters`);
    const bytes = fromB64u(token.slice(TOKEN_PREFIX.length));
    if (bytes === undefined)
      return fail('ANX_TOKEN_INVALID', 'a token expected base64url (no padding) after its prefix');
    let text: string;
    let raw: unknown;
    try {
      text = UTF8.decode(bytes);
      raw = JSON.parse(text);
    } catch {
      return fail('ANX_TOKEN_INVALID', 'a token expected UTF-8 JSON inside its base64url');
    }
    if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_CHAIN)
      fail('ANX_TOKEN_INVALID', `a token expected a chain of 1 to ${MAX_CHAIN} links`);
    const links = (raw as unknown[]).map((l, i) => parseLink(l, i));
    // Each link's canonical JSON is made once: its id hashes it, its signing input is it without
    // `sig` (which sorts between "res" and "v", and whose base64url value needs no escaping).
    // JSON.stringify writes what JSON.parse read in the order it read it, which is the canonical
    // form when every object's keys came sorted; otherwise (keys unsorted, or integer-like `ctx`
    // keys that JavaScript reorders) the canonical form is built key by key.
    const sorted = links.every(keysSorted);
    const full = links.map((l) => (sorted ? JSON.stringify(l) : canonicalize(l)));
    // The text must be the canonical encoding: one token, one spelling (ids and caches rely on it).
    if (text !== `[${full.join(',')}]`) fail('ANX_TOKEN_INVALID', 'a token expected its canonical encoding');
    const ids: string[] = [];
    const unverified: UnverifiedLink[] = [];
    for (let i = 0; i < links.length; i++) {
      const link = links[i] as TokenLink;
      if (this.constraintsHash(link.cst, sorted) !== link.cth)
        fail('ANX_TOKEN_INVALID', `token link ${i}: "cth" does not match its constraints`);
      if (i === 0) {
        if (link.prf !== null)
          fail('ANX_TOKEN_INVALID', 'token link 0 names a parent, but a chain starts at its root');
      } else {
        const parent = links[i - 1] as TokenLink;
        if (link.prf !== ids[i - 1])
          fail('ANX_TOKEN_INVALID', `token link ${i}: "prf" is not the id of link ${i - 1}`);
        if (link.iss !== parent.aud)
          fail(
            'ANX_TOKEN_INVALID',
            `token link ${i} is signed by ${link.iss}, but link ${i - 1} was granted to ${parent.aud}`,
          );
      }
      const canonical = full[i] as string;
      const id = sha256Hex(this.suite, canonical);
      // A link whose exact bytes verified before needs no second verification: its id covers them all.
      if (!this.verifiedLinks.has(id)) {
        const unsigned = canonical.replace(`,"sig":"${link.sig}"`, '');
        unverified.push({
          index: i,
          id,
          publicKey: publicKeyOfDid(link.iss),
          message: utf8(`${TOKEN_SIG_DOMAIN}\0${unsigned}`),
          signature: fromB64u(link.sig) as Uint8Array,
        });
      }
      ids.push(id);
    }
    return { links, ids, unverified };
  }

  /** Applies the signature verdicts (one per `unverified` link), then the narrowing rules; caches the result. */
  private finish(token: string, parsed: ParsedToken, verdicts: readonly boolean[]): DecodedToken {
    const { links, ids, unverified } = parsed;
    for (let k = 0; k < unverified.length; k++) {
      const { index, id } = unverified[k] as UnverifiedLink;
      if (verdicts[k] !== true)
        fail(
          'ANX_TOKEN_INVALID',
          `token link ${index}: the signature does not verify against ${(links[index] as TokenLink).iss}`,
        );
      this.remember(this.verifiedLinks, id, true, this.cacheSize * 2);
    }
    for (let i = 1; i < links.length; i++) {
      const why = widening(links[i] as TokenLink, links[i - 1] as TokenLink);
      if (why !== undefined)
        fail(
          'ANX_TOKEN_WIDENED',
          `token link ${i} widens its parent: ${why}`,
          'a delegation may only narrow a grant',
        );
    }
    const decoded: DecodedToken = { links, ids };
    this.remember(this.cache, token, decoded, this.cacheSize);
    return decoded;
  }

  /** `constraintsHash`, remembered by the constraints' canonical JSON (most tokens share a few). */
  private constraintsHash(cst: TokenConstraints, sorted: boolean): string {
    const json = sorted ? JSON.stringify(cst) : canonicalize(cst);
    let hash = this.constraintHashes.get(json);
    if (hash === undefined) {
      hash = sha256Hex(this.suite, json);
      this.remember(this.constraintHashes, json, hash, CONSTRAINT_HASHES);
    }
    return hash;
  }

  /** Bounded insert: the oldest entry goes first. */
  private remember<K, V>(map: Map<K, V>, key: K, value: V, limit: number): void {
    if (limit <= 0) return;
    if (map.size >= limit) map.delete(map.keys().next().value as K);
    map.set(key, value);
  }

  /** What a token grants, without checking time, revocation or a request (for `token inspect`). */
  inspect(token: string): TokenGrant & { links: TokenLink[] } {
    const { links, ids } = this.decode(token);
    return { ...grantOf(links, ids), links };
  }
}

function checkRequest(request: TokenRequest): void {
  if (request === null || typeof request !== 'object')
    throw new AuthorityRequestError('a token check expected a request {actor, owner, resource, action}');
}

function grantOf(links: TokenLink[], ids: string[]): TokenGrant {
  const leaf = links[links.length - 1] as TokenLink;
  let nbf = 0;
  let exp = Number.MAX_SAFE_INTEGER;
  for (const l of links) {
    nbf = Math.max(nbf, l.nbf);
    exp = Math.min(exp, l.exp);
  }
  return {
    id: ids[ids.length - 1] as string,
    chain: ids,
    owner: (links[0] as TokenLink).iss,
    issuer: leaf.iss,
    holder: leaf.aud,
    resource: leaf.res,
    actions: leaf.act,
    constraints: leaf.cst,
    notBefore: nbf,
    expiresAt: exp,
  };
}

// ---- the service ----

export interface TokenServiceOptions {
  suite: CryptoSuite;
  clock: Clock;
  signer: Signer;
  revocations: RevocationList;
  audit: AuditLog;
  freeze: FreezeState;
  /** Verified chains kept (by token text), so a token used again costs no signature checks. Default 4096; 0 disables. */
  cacheSize?: number;
  /** Where `checkAsync` and `prepare` verify signatures. Default: the process's shared pool. */
  verifyPool?: VerifyPool;
}

/**
 * Issues, delegates, checks and revokes capability tokens. Checking is offline: signatures,
 * narrowing and the chain back to the owner are verified from the token alone; the only local
 * state consulted is the revocation list (LMDB), and a check fails closed when it cannot be read.
 */
export class TokenService {
  private readonly suite: CryptoSuite;
  private readonly clock: Clock;
  private readonly verifier: TokenVerifier;

  constructor(private readonly options: TokenServiceOptions) {
    this.suite = options.suite;
    this.clock = options.clock;
    this.verifier = new TokenVerifier(options.suite, options.cacheSize);
  }

  get revocations(): RevocationList {
    return this.options.revocations;
  }

  /** See `TokenVerifier.decode`. */
  decode(token: string): DecodedToken {
    return this.verifier.decode(token);
  }

  /**
   * Checks that `token` lets `request.actor` do `request.action` on `request.resource` of
   * `request.owner` now. Returns the grant or throws `TokenError` with one of `ANX_TOKEN_INVALID`,
   * `ANX_TOKEN_WIDENED`, `ANX_TOKEN_SCOPE`, `ANX_TOKEN_REVOKED`, `ANX_REVOCATION_UNAVAILABLE`, `ANX_REVOCATION_STALE`,
   * `ANX_TOKEN_NOT_YET_VALID`, `ANX_TOKEN_EXPIRED`, `ANX_TOKEN_AUDIENCE`. A refusal is audited
   * (action `token.check`) unless `options.audit` is false.
   *
   * @example
   * ```ts
   * const grant = host.authority.tokens.check(cap, { actor, owner, resource: 'vault:enc-1/notes', action: 'vault.put' });
   * ```
   */
  check(token: string, request: TokenRequest, options: { audit?: boolean } = {}): TokenGrant {
    try {
      checkRequest(request);
      return this.evaluate(this.decode(token), request);
    } catch (err) {
      throw this.refused(err, request, options);
    }
  }

  /**
   * `check` with the token's signatures verified on worker threads (see `VerifyPool`): what an
   * asynchronous entry point (the local API) uses, so a burst of new tokens neither stalls the event
   * loop nor is bound to one core. Same answers, errors and audit records as `check`.
   */
  async checkAsync(
    token: string,
    request: TokenRequest,
    options: { audit?: boolean } = {},
  ): Promise<TokenGrant> {
    try {
      checkRequest(request);
      return this.evaluate(await this.verifier.decodeAsync(token, this.pool), request);
    } catch (err) {
      throw this.refused(err, request, options);
    }
  }

  /**
   * Verifies a token's signatures on worker threads ahead of a synchronous `check` (which then finds
   * its links verified). Never throws: a token that does not decode is refused, and audited, by the
   * `check` that follows.
   */
  async prepare(token: unknown): Promise<void> {
    if (typeof token !== 'string') return;
    try {
      await this.verifier.decodeAsync(token, this.pool);
    } catch {
      // The check at the point of use refuses it with its own error and audit record.
    }
  }

  private get pool(): VerifyPool {
    return this.options.verifyPool ?? sharedVerifyPool();
  }

  /** Audits a refusal (unless told not to) and returns the error to throw. */
  private refused(err: unknown, request: TokenRequest, options: { audit?: boolean }): unknown {
    if (options.audit !== false && err instanceof TokenError) {
      this.options.audit.append({
        action: 'token.check',
        decision: 'deny',
        actor: typeof request?.actor === 'string' ? request.actor : undefined,
        principal: typeof request?.owner === 'string' ? request.owner : undefined,
        resource: typeof request?.resource === 'string' ? request.resource : undefined,
        code: err.code,
        reason: err.message,
        details: { requested: typeof request?.action === 'string' ? request.action : null },
      });
    }
    return err;
  }

  private evaluate({ links, ids }: DecodedToken, request: TokenRequest): TokenGrant {
    const root = links[0] as TokenLink;
    const leaf = links[links.length - 1] as TokenLink;
    if (root.iss !== request.owner)
      fail(
        'ANX_TOKEN_SCOPE',
        `the token's chain starts at ${root.iss}, not at the resource's owner ${request.owner}`,
        'ask the owner of the resource for a grant',
      );
    this.options.revocations.assertNotRevoked(links, ids);
    const now = request.now ?? this.clock.now();
    for (let i = 0; i < links.length; i++) {
      const link = links[i] as TokenLink;
      if (now < link.nbf)
        fail('ANX_TOKEN_NOT_YET_VALID', `token link ${i} is valid from ${new Date(link.nbf).toISOString()}`);
      if (now >= link.exp)
        fail(
          'ANX_TOKEN_EXPIRED',
          `token link ${i} expired at ${new Date(link.exp).toISOString()}`,
          'ask for a new grant',
        );
    }
    if (leaf.aud !== request.actor)
      fail(
        'ANX_TOKEN_AUDIENCE',
        `the token was granted to ${leaf.aud}, but ${String(request.actor)} presents it`,
        'a token can only be used by its audience; delegate it to the actor instead',
      );
    if (typeof request.resource !== 'string' || !resourceWithin(request.resource, leaf.res))
      fail('ANX_TOKEN_SCOPE', `the token covers "${leaf.res}", not "${String(request.resource)}"`);
    if (typeof request.action !== 'string' || !actionsWithin([request.action], leaf.act))
      fail('ANX_TOKEN_SCOPE', `the token allows [${leaf.act.join(', ')}], not "${String(request.action)}"`);
    for (const link of links) {
      const unmet = constraintsUnmet(link.cst, request);
      if (unmet !== undefined) fail('ANX_TOKEN_SCOPE', unmet);
    }
    return grantOf(links, ids);
  }

  /** See `TokenVerifier.inspect`. */
  inspect(token: string): TokenGrant & { links: TokenLink[] } {
    return this.verifier.inspect(token);
  }

  /**
   * Issues a root grant signed by `issuer` (a local DID, the resource's owner). Refused while the
   * host is frozen; audited.
   */
  issue(request: IssueRequest): { token: string; grant: TokenGrant } {
    this.options.freeze.assertWritable('token.issue', { actor: request?.issuer });
    const link = this.sign({
      iss: this.localDid(request.issuer, 'issuer'),
      aud: this.did(request.audience, 'audience'),
      res: this.resource(request.resource),
      act: normalizeActions(request.actions, 'actions'),
      cst: this.constraints(request.constraints ?? {}),
      ...this.window(request, undefined),
      prf: null,
    });
    return this.finish([link], 'token.issue');
  }

  /**
   * Narrows `parent` to `audience`, signed by the parent's holder (a local DID). Fields not given
   * stay as the parent's; constraints given are merged over the parent's. Throws
   * `ANX_TOKEN_WIDENED` (before signing) when the result would grant more than the parent.
   */
  delegate(request: DelegateRequest): { token: string; grant: TokenGrant } {
    const { links, ids } = this.decode(request.parent);
    const parent = links[links.length - 1] as TokenLink;
    this.options.freeze.assertWritable('token.delegate', { actor: parent.aud });
    this.options.revocations.assertNotRevoked(links, ids);
    const now = this.clock.now();
    if (now >= parent.exp) fail('ANX_TOKEN_EXPIRED', 'the parent token has expired', 'ask for a new grant');
    if (links.length >= MAX_CHAIN)
      throw new AuthorityRequestError(
        `a chain holds at most ${MAX_CHAIN} links; this token cannot be delegated further`,
      );
    const cst = this.constraints({
      ...parent.cst,
      ...(request.constraints ?? {}),
      ...(parent.cst.ctx === undefined && request.constraints?.ctx === undefined
        ? {}
        : { ctx: { ...parent.cst.ctx, ...request.constraints?.ctx } }),
    });
    const unsigned = {
      iss: this.localDid(parent.aud, "the parent token's holder"),
      aud: this.did(request.audience, 'audience'),
      res: request.resource === undefined ? parent.res : this.resource(request.resource),
      act: request.actions === undefined ? parent.act : normalizeActions(request.actions, 'actions'),
      cst,
      ...this.window(request, parent),
      prf: ids[ids.length - 1] as string,
    };
    const why = widening({ ...unsigned, cst }, parent);
    if (why !== undefined) {
      this.options.audit.append({
        action: 'token.delegate',
        decision: 'deny',
        actor: parent.aud,
        principal: (links[0] as TokenLink).iss,
        resource: unsigned.res,
        code: 'ANX_TOKEN_WIDENED',
        reason: why,
      });
      fail(
        'ANX_TOKEN_WIDENED',
        `the delegation would widen its parent: ${why}`,
        'a delegation may only narrow a grant',
      );
    }
    return this.finish([...links, this.sign(unsigned)], 'token.delegate');
  }

  /**
   * Revokes a token's last link (or `linkIndex`), signed by `by` — a local DID that issued that
   * link or one before it (default: the first local issuer from the end). Stored locally, passed to
   * revocation listeners (the relay distributes it), audited. Allowed while frozen: it only takes
   * power away.
   */
  async revoke(request: { token: string; by?: Did; reason?: string; linkIndex?: number }): Promise<{
    id: string;
    by: Did;
  }> {
    const { links, ids } = this.decode(request.token);
    const index = request.linkIndex ?? links.length - 1;
    if (!Number.isInteger(index) || index < 0 || index >= links.length)
      throw new AuthorityRequestError(
        `"linkIndex" expected 0..${links.length - 1}, got ${String(request.linkIndex)}`,
      );
    const issuers = links.slice(0, index + 1).map((l) => l.iss);
    let by = request.by;
    if (by === undefined) {
      by = [...issuers].reverse().find((did) => this.options.signer.has(did));
      if (by === undefined)
        throw new AuthorityRequestError(
          'this host holds no key of any issuer of the token, so it cannot revoke it',
          "revoke on the host that holds the issuer's key",
        );
    } else {
      this.localDid(by, 'by');
      if (!issuers.includes(by))
        throw new AuthorityRequestError(
          `${by} did not issue link ${index} or any link before it, so its revocation would have no effect`,
        );
    }
    const target = links[index] as TokenLink;
    const revocation = await this.options.revocations.revoke({
      tid: ids[index] as string,
      by,
      exp: target.exp,
      ...(request.reason === undefined ? {} : { reason: request.reason }),
    });
    this.options.audit.append({
      action: 'token.revoke',
      decision: 'allow',
      actor: by,
      principal: (links[0] as TokenLink).iss,
      resource: target.res,
      ...(request.reason === undefined ? {} : { reason: request.reason }),
      details: { token: revocation.tid, link: index },
    });
    await this.options.audit.flush();
    return { id: revocation.tid, by };
  }

  private finish(
    links: TokenLink[],
    action: 'token.issue' | 'token.delegate',
  ): { token: string; grant: TokenGrant } {
    const token = encodeToken(links);
    const grant = this.inspect(token);
    this.options.audit.append({
      action,
      decision: 'allow',
      actor: grant.issuer,
      principal: grant.owner,
      resource: grant.resource,
      details: {
        token: grant.id,
        audience: grant.holder,
        actions: grant.actions,
        expires: grant.expiresAt,
        depth: links.length,
      },
    });
    const { links: _links, ...plain } = grant;
    return { token, grant: plain };
  }

  private sign(unsigned: Omit<TokenLink, 'v' | 'cth' | 'nonce' | 'sig'>): TokenLink {
    const link: Omit<TokenLink, 'sig'> = {
      v: 1,
      ...unsigned,
      cth: constraintsHash(this.suite, unsigned.cst),
      nonce: toB64u(this.suite.randomBytes(16)),
    };
    const sig = this.options.signer.sign(link.iss, linkSigningInput(link));
    return { ...link, sig: toB64u(sig) };
  }

  private window(
    request: { notBefore?: number; expiresAt?: number; ttlMs?: number },
    parent: TokenLink | undefined,
  ): { nbf: number; exp: number } {
    const now = this.clock.now();
    const int = (v: unknown, field: string): number => {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
        throw new AuthorityRequestError(
          `"${field}" expected ms as a non-negative integer, got ${describeValue(v)}`,
        );
      return v;
    };
    const nbf =
      request.notBefore === undefined ? Math.max(now, parent?.nbf ?? 0) : int(request.notBefore, 'notBefore');
    let exp: number;
    if (request.expiresAt !== undefined) exp = int(request.expiresAt, 'expiresAt');
    else if (request.ttlMs !== undefined) exp = nbf + int(request.ttlMs, 'ttlMs');
    else exp = parent?.exp ?? nbf + DEFAULT_TTL_MS;
    if (exp <= nbf) throw new AuthorityRequestError('a token must expire after it becomes valid');
    if (exp > TOKEN_EXP_MAX)
      throw new AuthorityRequestError(
        `${request.expiresAt !== undefined ? '"expiresAt"' : '"ttlMs"'} expected an expiry before the year 10000, got ${describeValue(request.expiresAt ?? request.ttlMs)}`,
      );
    return { nbf, exp };
  }

  private did(value: unknown, field: string): Did {
    if (!isDid(value, 'agentnexus'))
      throw new AuthorityRequestError(
        `"${field}" expected a did:agentnexus DID, got ${describeValue(value)}`,
      );
    return value;
  }

  private localDid(value: unknown, field: string): Did {
    const did = this.did(value, field);
    if (!this.options.signer.has(did))
      throw new AuthorityRequestError(
        `${field} ${did} is not an identity of this host, so it cannot sign`,
        'sign on the host that holds its key (`anx-runtime id list` shows local identities)',
      );
    return did;
  }

  private resource(value: unknown): string {
    if (typeof value !== 'string' || !RESOURCE.test(value))
      throw new AuthorityRequestError(
        `"resource" expected 1-512 printable ASCII characters without spaces (like "vault:enc-1/notes"), got ${describeValue(value)}`,
      );
    return value;
  }

  private constraints(value: unknown): TokenConstraints {
    try {
      const cst = parseConstraints(JSON.parse(JSON.stringify(value ?? {})));
      if (cst.stages !== undefined) cst.stages = [...cst.stages].sort();
      return cst;
    } catch (err) {
      throw new AuthorityRequestError((err as Error).message);
    }
  }
}

// Revocations of capability tokens: signed by an issuer in the chain, kept in LMDB, checked on every use (failing closed).
import type { Database } from 'lmdb';
import type { Clock } from '../clock.ts';
import type { CryptoSuite } from '../crypto/suite.ts';
import type { Did } from '../identity/did.ts';
import type { CommitQueue } from '../store/commit-queue.ts';
import { toB64u } from './canonical.ts';
import { RevocationError, TokenError } from './errors.ts';
import { checkStatementShape, checkStatementSignature, statementSigningInput } from './statement.ts';
import type { Signer, TokenLink } from './tokens.ts';

/** Domain-separation prefix of a revocation's signing input (followed by a 0x00 byte). */
export const REVOCATION_SIG_DOMAIN = 'anx-cap-revoke-v1';

/**
 * A signed statement that a token link (`tid`, its id) is revoked. It takes effect for a chain
 * when `iss` issued that link or any link before it; the issuer of a later link cannot revoke
 * what it was given.
 */
export interface Revocation {
  v: 1;
  /** Id of the revoked link (hex SHA-256, as in the token's `prf`). */
  tid: string;
  iss: Did;
  /** When it was signed (ms since the epoch). */
  ts: number;
  /** The revoked link's expiry: after it the revocation may be forgotten. */
  exp: number;
  reason?: string;
  /** Ed25519 (base64url) by `iss` over `anx-cap-revoke-v1`, 0x00, canonical JSON without `sig`. */
  sig: string;
}

const HEX64 = /^[0-9a-f]{64}$/;
/** Key (in the `revocations` database, beside the link ids) of when the list was last known in sync. */
const SYNCED_AT_KEY = 'synced_at';

/**
 * How up to date the list must be for tokens that other hosts issued: set while the host is joined
 * to a relay, whose revocation feed is the only way revocations made elsewhere arrive.
 */
export interface RevocationFreshness {
  /** When the list was last known to hold every revocation of the relay (ms since the epoch). */
  syncedAt(): number;
  /** Older than this (ms), the list no longer vouches for links issued by DIDs of other hosts. */
  maxStalenessMs: number;
  /** DIDs of this host: their revocations are made here, so the local list is complete for them. */
  isLocal(did: string): boolean;
}
/** Revocations are kept this long past their token's expiry (clock skew between hosts). */
const KEEP_AFTER_EXPIRY_MS = 24 * 60 * 60_000;

export function revocationSigningInput(rev: Omit<Revocation, 'sig'> & { sig?: string }): Uint8Array {
  return statementSigningInput(REVOCATION_SIG_DOMAIN, rev as unknown as Record<string, unknown>);
}

const REVOCATION_FIELDS = ['v', 'tid', 'iss', 'ts', 'exp', 'reason', 'sig'];

/** Checks a revocation's shape and signature; returns it typed or throws `RevocationError`. */
export function verifyRevocation(raw: unknown, suite: CryptoSuite): Revocation {
  const fail = (message: string): never => {
    throw new RevocationError(message);
  };
  const r = checkStatementShape(raw, 'a revocation', REVOCATION_FIELDS, fail);
  if (typeof r.tid !== 'string' || !HEX64.test(r.tid)) fail('a revocation "tid" expected 64 hex digits');
  if (r.reason !== undefined && (typeof r.reason !== 'string' || r.reason.length > 1_024))
    fail('a revocation "reason" expected at most 1024 characters');
  checkStatementSignature(r, 'a revocation', REVOCATION_SIG_DOMAIN, suite, fail);
  return r as unknown as Revocation;
}

/**
 * The local revocation list (LMDB database `revocations`: link id → revocations of it). Every
 * token check reads it; when it cannot be read the check fails with `ANX_REVOCATION_UNAVAILABLE`
 * instead of letting the token through.
 */
export class RevocationList {
  private readonly listeners = new Set<(rev: Revocation, origin: 'local' | 'remote') => void>();
  private readonly staged = new Map<string, Revocation[]>();
  /** Set by the host when the list must not be trusted (store closing, a failed commit). */
  private unavailable: string | undefined;
  private freshness: RevocationFreshness | undefined;

  constructor(
    private readonly db: Database<unknown, string>,
    private readonly commits: CommitQueue,
    private readonly suite: CryptoSuite,
    private readonly clock: Clock,
    private readonly signer: Signer,
  ) {}

  /** Marks the list unreadable (every check then fails closed) or readable again (`undefined`). */
  setUnavailable(reason: string | undefined): void {
    this.unavailable = reason;
  }

  /**
   * Makes checks of chains with links issued elsewhere depend on how fresh the list is (the relay's
   * revocation feed sets it; `undefined`, the default without a relay, checks the list as it is).
   */
  setFreshness(freshness: RevocationFreshness | undefined): void {
    this.freshness = freshness;
  }

  /** When the list was last recorded as in sync with the relay (survives restarts), if ever. */
  get lastSyncedAt(): number | undefined {
    const at = this.db.get(SYNCED_AT_KEY);
    return typeof at === 'number' ? at : undefined;
  }

  /** Records when the list was last known in sync, so a restarted host does not take an old list as fresh. */
  recordSyncedAt(at: number): void {
    this.commits.put(this.db, SYNCED_AT_KEY, at);
    void this.commits.flush().catch(() => {});
  }

  /**
   * Throws `ANX_TOKEN_REVOKED` when a revocation applies to the chain, `ANX_REVOCATION_UNAVAILABLE`
   * when the list cannot be read, `ANX_REVOCATION_STALE` when a link was issued by a DID of another
   * host and the list has been out of sync with the relay for longer than allowed.
   */
  assertNotRevoked(links: readonly TokenLink[], ids: readonly string[]): void {
    if (this.unavailable !== undefined)
      throw new TokenError(
        'ANX_REVOCATION_UNAVAILABLE',
        `the revocation list cannot be read (${this.unavailable}), so no token is accepted`,
        {
          hint: 'retry once the host is healthy again',
        },
      );
    for (let i = 0; i < ids.length; i++) {
      let found: unknown;
      try {
        found = this.db.get(ids[i] as string);
      } catch (cause) {
        throw new TokenError(
          'ANX_REVOCATION_UNAVAILABLE',
          'the revocation list cannot be read, so no token is accepted',
          {
            cause,
            hint: 'retry once the host is healthy again',
          },
        );
      }
      if (found === undefined) continue;
      if (!Array.isArray(found))
        throw new TokenError(
          'ANX_REVOCATION_UNAVAILABLE',
          `the revocation entry of link ${i} is unreadable, so the token is refused`,
        );
      for (const rev of found as Revocation[]) {
        if (links.slice(0, i + 1).some((l) => l.iss === rev.iss))
          throw new TokenError(
            'ANX_TOKEN_REVOKED',
            `token link ${i} was revoked by ${rev.iss} at ${new Date(rev.ts).toISOString()}${rev.reason === undefined ? '' : ` (${rev.reason})`}`,
            {
              hint: 'ask the issuer for a new grant',
            },
          );
      }
    }
    if (this.freshness !== undefined) this.assertFresh(links, this.freshness);
  }

  private assertFresh(links: readonly TokenLink[], f: RevocationFreshness): void {
    const age = this.clock.now() - f.syncedAt();
    if (age <= f.maxStalenessMs) return;
    const foreign = links.find((l) => !f.isLocal(l.iss));
    if (foreign === undefined) return;
    throw new TokenError(
      'ANX_REVOCATION_STALE',
      `the revocation list has not been in sync with the relay for ${Math.round(age / 1_000)} s (at most ${Math.round(f.maxStalenessMs / 1_000)} s allowed), so a token with a link issued by ${foreign.iss}, a DID of another host, is refused`,
      {
        hint: 'restore the connection to the relay (the leaf and the hub); tokens are accepted again once the revocation feed has caught up',
      },
    );
  }

  /** Signs a revocation with a local DID's key, stores it durably and tells listeners. */
  async revoke(input: { tid: string; by: Did; exp: number; reason?: string }): Promise<Revocation> {
    // The checks every other host applies (`verifyRevocation`): one they would refuse is refused here.
    if (!HEX64.test(input.tid)) throw new RevocationError('a revocation "tid" expected 64 hex digits');
    if (input.reason !== undefined && input.reason.length > 1_024)
      throw new RevocationError('a revocation "reason" expected at most 1024 characters');
    const unsigned: Omit<Revocation, 'sig'> = {
      v: 1,
      tid: input.tid,
      iss: input.by,
      ts: this.clock.now(),
      exp: input.exp,
      ...(input.reason === undefined ? {} : { reason: input.reason }),
    };
    const rev: Revocation = {
      ...unsigned,
      sig: toB64u(this.signer.sign(input.by, revocationSigningInput(unsigned))),
    };
    await this.store(rev, 'local');
    return rev;
  }

  /**
   * Takes a revocation from elsewhere (the relay, an API call): verifies it and stores it.
   * Returns false when it was already known. Throws `RevocationError` when it does not verify.
   */
  async add(raw: unknown): Promise<boolean> {
    const rev = verifyRevocation(raw, this.suite);
    return this.store(rev, 'remote');
  }

  /** Every stored revocation (for distribution to hosts that join later). */
  all(): Revocation[] {
    const out: Revocation[] = [];
    for (const { value } of this.db.getRange({}))
      if (Array.isArray(value)) out.push(...(value as Revocation[]));
    return out;
  }

  has(tid: string): boolean {
    return this.db.get(tid) !== undefined;
  }

  /** Told of every new revocation, with where it came from. */
  onRevocation(fn: (rev: Revocation, origin: 'local' | 'remote') => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Forgets revocations of links that expired more than a day ago (they fail on expiry anyway). */
  prune(now = this.clock.now()): number {
    let removed = 0;
    for (const { key, value } of this.db.getRange({})) {
      const list = Array.isArray(value) ? (value as Revocation[]) : [];
      if (list.length > 0 && list.every((r) => r.exp + KEEP_AFTER_EXPIRY_MS < now)) {
        this.commits.remove(this.db, key);
        removed++;
      }
    }
    if (removed > 0) void this.commits.flush().catch(() => {});
    return removed;
  }

  private async store(rev: Revocation, origin: 'local' | 'remote'): Promise<boolean> {
    // Staged but uncommitted lists are not visible to reads yet: keep them, so two revocations of one link both land.
    const existing = this.staged.get(rev.tid) ?? (this.db.get(rev.tid) as Revocation[] | undefined) ?? [];
    if (existing.some((r) => r.iss === rev.iss)) return false;
    const next = [...existing, rev];
    this.staged.set(rev.tid, next);
    this.commits.put(this.db, rev.tid, next);
    try {
      await this.commits.flush();
    } finally {
      if (this.staged.get(rev.tid) === next) this.staged.delete(rev.tid);
    }
    for (const fn of this.listeners) fn(rev, origin);
    return true;
  }
}

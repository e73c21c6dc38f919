// Public entry of the authority layer: capability tokens, revocation, audit log, freeze, rate limits and trust.
/**
 * # Contract
 *
 * ```ts
 * // runtime/host.ts: `host.authority: Authority`
 * class Authority {
 *   readonly audit: AuditLog;
 *   //   audit.append(input: AuditInput): AuditEntry   staged into the host's next group commit
 *   //   audit.flush(): Promise<void>                   durable after this resolves
 *   //   audit.verify(): AuditVerifyResult              { ok, count, head, problems[] }
 *   //   audit.list(filter?: AuditFilter): AuditEntry[]
 *   readonly tokens: TokenService;
 *   //   tokens.check(token, { actor, resource, action, owner, now?, context?, bytes? }, { audit? }): TokenGrant
 *   //     throws TokenError: ANX_TOKEN_INVALID | ANX_TOKEN_EXPIRED | ANX_TOKEN_NOT_YET_VALID | ANX_TOKEN_REVOKED
 *   //       | ANX_TOKEN_WIDENED | ANX_TOKEN_AUDIENCE | ANX_TOKEN_SCOPE | ANX_REVOCATION_UNAVAILABLE
 *   //       | ANX_REVOCATION_STALE (a link issued on another host while the relay's revocation feed is out of sync)
 *   //     (a refusal is audited as `token.check` unless `{ audit: false }`)
 *   //   tokens.issue({ issuer, audience, resource, actions, constraints?, notBefore?, expiresAt?|ttlMs? }): { token, grant }
 *   //   tokens.delegate({ parent, audience, resource?, actions?, constraints?, expiresAt?|ttlMs? }): { token, grant }
 *   //   tokens.revoke({ token, by?, reason?, linkIndex? }): Promise<{ id, by }>
 *   //   tokens.inspect(token): TokenGrant & { links }
 *   readonly freeze: FreezeState;
 *   //   freeze.assertWritable(action: string, attempt?: { actor?, principal?, resource? }): void  throws FrozenError ANX_FROZEN (audited)
 *   //   freeze.isFrozen: boolean ; freeze.state: FreezeStatus
 *   //   freeze.freeze(by: string, reason?): Promise<FreezeStatus> ; freeze.thaw(by, reason?): Promise<FreezeStatus>
 *   readonly trust: TrustStore;
 *   //   trust.score(did): { did, score: number (0..1, neutral 0.5), breakdown: TrustBreakdown }
 *   //   trust.record(did, kind: 'success' | 'failure' | 'timeout' | 'bad_signature' | 'rate_limited'): TrustScore ; trust.note(did, kind): void
 *   //   trust.attest({ issuer, subject, value: -100..100, note?, ttlMs? }): Attestation ; trust.addAttestation(signed)
 *   readonly rateLimits: RateLimiter;
 *   //   rateLimits.take(senderDid, recipientCard: { did, qps, concurrency } | recipientDid): Permit
 *   //     throws RateLimitedError ANX_RATE_LIMITED (audited; lowers the sender's trust); permit.release() when handled
 *   //   rateLimits.setLimits({ did, qps, concurrency })
 * }
 * interface AuditInput { action: string; decision: 'allow' | 'deny'; actor?: string; principal?: string;
 *   resource?: string; code?: string; reason?: string; details?: Record<string, unknown> }
 * ```
 *
 * Resources are strings such as `vault:<enclave_id>/<path>`, `run:<run_id>`, `dispatch:<owner>`;
 * a token for `vault:enc-1` covers `vault:enc-1/notes` (narrowing by `/` segments), `*` covers
 * every resource of its owner. The format and verification algorithm are in docs/capability-tokens.md.
 *
 * @example
 * ```ts
 * const { token } = host.authority.tokens.issue({ issuer: owner, audience: worker, resource: 'vault:enc-1', actions: ['vault.put'], ttlMs: 3_600_000 });
 * host.authority.freeze.assertWritable('vault.put', { actor: worker });
 * host.authority.tokens.check(token, { actor: worker, owner, resource: 'vault:enc-1/notes', action: 'vault.put' });
 * ```
 */
import type { Database } from 'lmdb';
import type { Clock } from '../clock.ts';
import type { CryptoSuite } from '../crypto/suite.ts';
import type { CommitQueue } from '../store/commit-queue.ts';
import type { Store } from '../store/store.ts';
import {
  AUDIT_GENESIS,
  type AuditEntry,
  type AuditFilter,
  type AuditInput,
  AuditLog,
  type AuditProblem,
  type AuditVerifyResult,
  auditHash,
} from './audit.ts';
import { canonicalize } from './canonical.ts';
import {
  AttestationError,
  AuthorityRequestError,
  FrozenError,
  RateLimitedError,
  RevocationError,
  TokenError,
  type TokenErrorCode,
} from './errors.ts';
import { FreezeState, type FreezeStatus, type WriteAttempt } from './freeze.ts';
import { type Permit, type RateCard, RateLimiter } from './rate-limit.ts';
import { type Revocation, RevocationList, verifyRevocation } from './revocation.ts';
import {
  type DecodedToken,
  type DelegateRequest,
  encodeToken,
  type IssueRequest,
  linkId,
  linkSigningInput,
  type Signer,
  type TokenConstraints,
  type TokenGrant,
  type TokenLink,
  type TokenRequest,
  TokenService,
  widening,
} from './tokens.ts';
import {
  type Attestation,
  NEUTRAL_TRUST,
  type TrustBreakdown,
  type TrustEventKind,
  type TrustScore,
  TrustStore,
  verifyAttestation,
} from './trust.ts';

export type {
  Attestation,
  AuditEntry,
  AuditFilter,
  AuditInput,
  AuditProblem,
  AuditVerifyResult,
  DecodedToken,
  DelegateRequest,
  FreezeStatus,
  IssueRequest,
  Permit,
  RateCard,
  Revocation,
  Signer,
  TokenConstraints,
  TokenErrorCode,
  TokenGrant,
  TokenLink,
  TokenRequest,
  TrustBreakdown,
  TrustEventKind,
  TrustScore,
  WriteAttempt,
};
export {
  AttestationError,
  AUDIT_GENESIS,
  AuditLog,
  AuthorityRequestError,
  auditHash,
  canonicalize,
  encodeToken,
  FreezeState,
  FrozenError,
  linkId,
  linkSigningInput,
  NEUTRAL_TRUST,
  RateLimitedError,
  RateLimiter,
  RevocationError,
  RevocationList,
  TokenError,
  TokenService,
  TrustStore,
  verifyAttestation,
  verifyRevocation,
  widening,
};

export interface AuthorityOptions {
  store: Store;
  commits: CommitQueue;
  suite: CryptoSuite;
  clock: Clock;
  /** Signs with local identities (the keystore). */
  signer: Signer;
  /** 32 bytes derived from the host key: MACs the audit head, so LMDB edits alone cannot rewrite it. */
  auditKey: Uint8Array;
  /** Trust evidence half-life (ms); default 7 days. */
  trustHalfLifeMs?: number;
}

/** Who acts for whom, checked and recorded: one per host, as `host.authority`. */
export class Authority {
  readonly audit: AuditLog;
  readonly tokens: TokenService;
  readonly revocations: RevocationList;
  readonly freeze: FreezeState;
  readonly trust: TrustStore;
  readonly rateLimits: RateLimiter;
  private pruneHandle: unknown;
  private readonly clock: Clock;

  constructor(options: AuthorityOptions) {
    const { store, commits, suite, clock, signer } = options;
    this.clock = clock;
    const db = <K extends string | number>(name: string) =>
      store.root.openDB<unknown, K>({ name, useRecords: false } as never) as Database<unknown, K>;
    this.audit = new AuditLog(db<number>('audit'), store.meta, commits, suite, clock, options.auditKey);
    this.freeze = new FreezeState(store.meta, commits, this.audit, clock);
    this.trust = new TrustStore(
      db<string>('trust'),
      commits,
      suite,
      clock,
      signer,
      options.trustHalfLifeMs === undefined ? {} : { halfLifeMs: options.trustHalfLifeMs },
    );
    this.revocations = new RevocationList(db<string>('revocations'), commits, suite, clock, signer);
    this.tokens = new TokenService({
      suite,
      clock,
      signer,
      revocations: this.revocations,
      audit: this.audit,
      freeze: this.freeze,
    });
    this.rateLimits = new RateLimiter(db<string>('authority'), commits, clock, this.audit, (sender) => {
      this.trust.note(sender, 'rate_limited');
    });
    this.schedulePrune();
  }

  /**
   * What a token says (every link and the grant), whether it holds now, why not when it is revoked,
   * and why its revocation status cannot be told now (the list unreadable, or stale for a link issued
   * on another host). Unlike `tokens.check` it asks nothing of the caller: it is for showing a token,
   * not for using it.
   */
  inspectToken(token: string): ReturnType<TokenService['inspect']> & {
    valid_now: boolean;
    revoked: string | null;
    unverifiable: string | null;
  } {
    const grant = this.tokens.inspect(token);
    const now = this.clock.now();
    let revoked: string | null = null;
    let unverifiable: string | null = null;
    try {
      this.revocations.assertNotRevoked(grant.links, grant.chain);
    } catch (err) {
      if ((err as TokenError).code === 'ANX_TOKEN_REVOKED') revoked = (err as Error).message;
      else unverifiable = (err as Error).message;
    }
    return {
      ...grant,
      valid_now: now >= grant.notBefore && now < grant.expiresAt && revoked === null && unverifiable === null,
      revoked,
      unverifiable,
    };
  }

  /** Stops the hourly revocation prune. */
  close(): void {
    if (this.pruneHandle !== undefined) this.clock.clearTimeout(this.pruneHandle);
    this.revocations.setUnavailable('the host is closing');
    // Scores noted from events go into the host's last commit: a clean stop leaves nothing to replay.
    this.trust.writeEvents();
  }

  private schedulePrune(): void {
    this.pruneHandle = this.clock.setTimeout(() => {
      try {
        this.revocations.prune();
      } catch {
        // A prune that fails leaves revocations in place: still safe.
      }
      this.schedulePrune();
    }, 60 * 60_000);
  }
}

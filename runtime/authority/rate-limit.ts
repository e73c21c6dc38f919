// Receiver-side rate limits: each local DID's card states a qps budget and a concurrency limit, enforced per recipient.
import type { Database } from 'lmdb';
import type { Clock } from '../clock.ts';
import type { CommitQueue } from '../store/commit-queue.ts';
import type { AuditLog } from './audit.ts';
import { AuthorityRequestError, RateLimitedError } from './errors.ts';

/** The part of an agent card that limits its inbound traffic (0 = no stated limit). */
export interface RateCard {
  did: string;
  qps: number;
  concurrency: number;
}

/** A taken slot: call `release()` when the message is handled (frees one unit of concurrency). */
export interface Permit {
  release(): void;
}

interface Bucket {
  tokens: number;
  at: number;
  inFlight: number;
  qps: number;
  concurrency: number;
}

const NOOP: Permit = { release() {} };

/**
 * Token buckets per recipient DID: a bucket holds up to `qps` tokens (one second of budget) and
 * refills at `qps` per second; each inbound message takes one, and holds one unit of `concurrency`
 * until released. A refusal throws `RateLimitedError` (`ANX_RATE_LIMITED`), is audited and lowers
 * the sender's trust (once per sender and recipient per second). Limits of local DIDs are persisted (LMDB `authority`, `limits/<did>`), so
 * they hold across restarts without the relay.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly limits = new Map<string, RateCard>();
  private readonly reported = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly db: Database<unknown, string>,
    private readonly commits: CommitQueue,
    private readonly clock: Clock,
    private readonly audit: AuditLog,
    private readonly onLimited: (sender: string) => void,
  ) {
    for (const { key, value } of db.getRange({ start: 'limits/', end: 'limits0' })) {
      const card = value as RateCard;
      if (typeof card?.did === 'string') this.limits.set(String(key).slice('limits/'.length), card);
    }
  }

  /** Sets (and persists) the limits a local DID accepts, as its card states them. */
  setLimits(card: RateCard): void {
    const qps = Number(card?.qps);
    const concurrency = Number(card?.concurrency);
    if (
      typeof card?.did !== 'string' ||
      !Number.isInteger(qps) ||
      qps < 0 ||
      !Number.isInteger(concurrency) ||
      concurrency < 0
    )
      throw new AuthorityRequestError(
        'rate limits expected {did, qps, concurrency} with non-negative integers',
      );
    const known = this.limits.get(card.did);
    if (known?.qps === qps && known.concurrency === concurrency) return;
    const limits = { did: card.did, qps, concurrency };
    this.limits.set(card.did, limits);
    this.buckets.delete(card.did);
    this.commits.put(this.db, `limits/${card.did}`, limits);
    void this.commits.flush().catch(() => {});
  }

  /** The limits a local DID accepts, if any were set. */
  limitsOf(did: string): RateCard | undefined {
    return this.limits.get(did);
  }

  /**
   * Takes one message from `senderDid` to `recipientCard.did` (default: the recipient's stored
   * limits). Throws `RateLimitedError` when the recipient's qps budget or concurrency limit is used
   * up. The returned permit must be released when the message is handled.
   *
   * @example
   * ```ts
   * const permit = host.authority.rateLimits.take(sender, { did: recipient, qps: 10, concurrency: 2 });
   * try { await handle(); } finally { permit.release(); }
   * ```
   */
  take(senderDid: string, recipientCard: RateCard | string): Permit {
    const card = typeof recipientCard === 'string' ? this.limits.get(recipientCard) : recipientCard;
    if (card === undefined || (card.qps <= 0 && card.concurrency <= 0)) return NOOP;
    const now = this.clock.now();
    let bucket = this.buckets.get(card.did);
    if (bucket === undefined || bucket.qps !== card.qps || bucket.concurrency !== card.concurrency) {
      bucket = {
        tokens: card.qps,
        at: now,
        inFlight: bucket?.inFlight ?? 0,
        qps: card.qps,
        concurrency: card.concurrency,
      };
      this.buckets.set(card.did, bucket);
    }
    if (card.qps > 0) {
      bucket.tokens = Math.min(card.qps, bucket.tokens + ((now - bucket.at) * card.qps) / 1_000);
      bucket.at = now;
      if (bucket.tokens < 1) {
        const wait = Math.ceil(((1 - bucket.tokens) * 1_000) / card.qps);
        this.refuse(senderDid, card, `the qps budget of ${card.did} (${card.qps}/s) is used up`, wait);
      }
    }
    if (card.concurrency > 0 && bucket.inFlight >= card.concurrency)
      this.refuse(
        senderDid,
        card,
        `${card.did} already handles ${bucket.inFlight} messages (its limit is ${card.concurrency})`,
        100,
      );
    if (card.qps > 0) bucket.tokens -= 1;
    bucket.inFlight++;
    const held = bucket;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        held.inFlight = Math.max(0, held.inFlight - 1);
      },
    };
  }

  private refuse(sender: string, card: RateCard, message: string, retryAfterMs: number): never {
    const error = new RateLimitedError(message, retryAfterMs);
    // One audit record and one trust event per sender and recipient per second: a flood is one
    // offence, and must not turn into thousands of writes.
    const pair = `${sender} ${card.did}`;
    const now = this.clock.now();
    const last = this.reported.get(pair);
    if (last !== undefined && now - last.at < 1_000) {
      last.suppressed++;
      throw error;
    }
    if (this.reported.size > 10_000) this.reported.clear();
    this.reported.set(pair, { at: now, suppressed: 0 });
    this.audit.append({
      action: 'message.receive',
      decision: 'deny',
      actor: sender,
      principal: card.did,
      code: error.code,
      reason: message,
      details: {
        qps: card.qps,
        concurrency: card.concurrency,
        retryAfterMs,
        refusedBefore: last?.suppressed ?? 0,
      },
    });
    this.onLimited(sender);
    throw error;
  }
}

// The audit log: append-only, hash-chained records of authorization decisions and high-risk actions, in LMDB.
import type { Database } from 'lmdb';
import type { Clock } from '../clock.ts';
import type { CryptoSuite } from '../crypto/suite.ts';
import { describeValue } from '../errors.ts';
import type { CommitQueue } from '../store/commit-queue.ts';
import { canonicalize, toHex, utf8 } from './canonical.ts';
import { AuthorityRequestError } from './errors.ts';

/** What a caller records. `action` names what was attempted (`token.issue`, `vault.put`, `dispatch`...). */
export interface AuditInput {
  action: string;
  decision: 'allow' | 'deny';
  /** The DID that acted. */
  actor?: string;
  /** The DID it acted for. */
  principal?: string;
  resource?: string;
  /** Error code of a denial (`ANX_TOKEN_REVOKED`, `ANX_FROZEN`...). */
  code?: string;
  reason?: string;
  details?: Record<string, unknown>;
}

/** One record as stored: the input plus its place in the chain. */
export interface AuditEntry extends AuditInput {
  seq: number;
  ts: number;
  /** Hash of the previous record (64 zeros for the first). */
  prev: string;
  /** SHA-256 (hex) of the previous hash's 32 bytes followed by this record's canonical JSON without `hash`. */
  hash: string;
}

/** What `verify` found wrong, at which sequence number. */
export interface AuditProblem {
  seq: number;
  kind: 'altered' | 'missing' | 'reordered' | 'unreadable' | 'head';
  message: string;
}

export interface AuditVerifyResult {
  ok: boolean;
  /** Records read. */
  count: number;
  /** The last record's sequence number and hash as the head says (null for an empty log). */
  head: { seq: number; hash: string } | null;
  problems: AuditProblem[];
}

export interface AuditFilter {
  action?: string;
  decision?: 'allow' | 'deny';
  /** Matches `actor` or `principal`. */
  did?: string;
  afterSeq?: number;
  since?: number;
  until?: number;
  limit?: number;
  /** Newest first. */
  reverse?: boolean;
}

interface Head {
  seq: number;
  hash: string;
  /** HMAC-SHA256 of `seq:hash` with a key derived from the host key (kept outside LMDB). */
  mac: string;
}

export const AUDIT_GENESIS = '0'.repeat(64);
const HEAD_KEY = 'audit.head';
const ACTION = /^[a-z][a-z0-9_.:-]{0,63}$/;
const TEXT_MAX = 1_024;
const DETAILS_MAX = 16_384;

/** The canonical JSON that a record's hash covers: every field but `hash`. */
export function auditRecordBytes(entry: Omit<AuditEntry, 'hash'> & { hash?: string }): Uint8Array {
  const { hash: _hash, ...rest } = entry;
  return utf8(canonicalize(rest));
}

/** `H(prev ‖ canonical record)`: SHA-256 over the previous hash's 32 bytes and the record's canonical JSON. */
export function auditHash(suite: CryptoSuite, entry: Omit<AuditEntry, 'hash'>): string {
  const body = auditRecordBytes(entry);
  const input = new Uint8Array(32 + body.length);
  input.set(Buffer.from(entry.prev, 'hex'), 0);
  input.set(body, 32);
  return toHex(suite.sha256(input));
}

function text(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string')
    throw new AuthorityRequestError(`audit "${field}" expected a string, got ${typeof value}`);
  return value.length > TEXT_MAX ? `${value.slice(0, TEXT_MAX - 3)}...` : value;
}

/**
 * Append-only, hash-chained log in its own LMDB database (`audit`, keyed by sequence number), with
 * a head (last sequence and hash, MAC'd with a key derived from the host key) in `meta`.
 * `append` stages the record into the host's next group commit, so a record written together
 * with a state change lands in the same transaction; `flush()` waits until it is durable.
 */
export class AuditLog {
  private seq: number;
  private last: string;
  private flushScheduled: Promise<void> | undefined;
  private readonly listeners = new Set<(entry: AuditEntry) => void>();
  /** Records staged for the next group commit (always the newest): `list` shows them before LMDB does. */
  private readonly staged = new Map<number, AuditEntry>();

  constructor(
    private readonly db: Database<unknown, number>,
    private readonly meta: Database<unknown, string>,
    private readonly commits: CommitQueue,
    private readonly suite: CryptoSuite,
    private readonly clock: Clock,
    private readonly headKey: Uint8Array,
  ) {
    const head = meta.get(HEAD_KEY) as Head | undefined;
    if (head !== undefined && typeof head.seq === 'number' && typeof head.hash === 'string') {
      this.seq = head.seq;
      this.last = head.hash;
    } else {
      // No head: continue after the last stored record (verify reports a missing head if records exist).
      this.seq = 0;
      this.last = AUDIT_GENESIS;
      for (const { value } of db.getRange({ reverse: true, limit: 1 })) {
        const entry = value as AuditEntry;
        this.seq = entry.seq;
        this.last = entry.hash;
      }
    }
  }

  /** Sequence number of the last record (0 when empty). */
  get lastSeq(): number {
    return this.seq;
  }

  /**
   * Appends one record and returns it. Throws `AuthorityRequestError` for malformed input (an
   * unknown decision, an action that is not a dotted lowercase name, details that are not JSON).
   *
   * @example
   * ```ts
   * host.authority.audit.append({ action: 'vault.put', decision: 'deny', actor, code: 'ANX_FROZEN' });
   * ```
   */
  append(input: AuditInput): AuditEntry {
    if (input === null || typeof input !== 'object')
      throw new AuthorityRequestError('audit record expected an object');
    if (typeof input.action !== 'string' || !ACTION.test(input.action))
      throw new AuthorityRequestError(
        `audit "action" expected a lowercase dotted name like "token.issue", got ${describeValue(input.action)}`,
      );
    if (input.decision !== 'allow' && input.decision !== 'deny')
      throw new AuthorityRequestError(
        `audit "decision" expected "allow" or "deny", got ${describeValue(input.decision)}`,
      );
    let details: Record<string, unknown> | undefined;
    if (input.details !== undefined) {
      // JSON round trip: what is stored is exactly what was hashed (no undefined, no class instances).
      let json: string;
      try {
        json = JSON.stringify(input.details);
        canonicalize(JSON.parse(json));
      } catch (cause) {
        throw new AuthorityRequestError(
          `audit "details" expected plain JSON data: ${(cause as Error).message}`,
        );
      }
      details = json.length > DETAILS_MAX ? { truncated: true, size: json.length } : JSON.parse(json);
    }
    const unhashed: Omit<AuditEntry, 'hash'> = {
      seq: this.seq + 1,
      ts: this.clock.now(),
      action: input.action,
      decision: input.decision,
      prev: this.last,
    };
    for (const field of ['actor', 'principal', 'resource', 'code', 'reason'] as const) {
      const value = text(input[field], field);
      if (value !== undefined) unhashed[field] = value;
    }
    if (details !== undefined) unhashed.details = details;
    const entry: AuditEntry = { ...unhashed, hash: auditHash(this.suite, unhashed) };
    this.seq = entry.seq;
    this.last = entry.hash;
    this.staged.set(entry.seq, entry);
    this.commits.put(this.db, entry.seq, entry);
    this.commits.afterCommit(() => this.staged.delete(entry.seq));
    this.commits.put(this.meta, HEAD_KEY, {
      seq: entry.seq,
      hash: entry.hash,
      mac: this.mac(entry.seq, entry.hash),
    });
    this.scheduleFlush();
    for (const fn of this.listeners) fn(entry);
    return entry;
  }

  /** Resolves when every record appended so far is committed. */
  async flush(): Promise<void> {
    await (this.flushScheduled ?? Promise.resolve());
    await this.commits.flush();
  }

  /** Told of every appended record (after it is staged). */
  onAppend(fn: (entry: AuditEntry) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Records matching `filter`, oldest first unless `reverse`. */
  list(filter: AuditFilter = {}): AuditEntry[] {
    const limit = Math.max(1, Math.min(filter.limit ?? 100, 10_000));
    const after = filter.afterSeq ?? 0;
    const out: AuditEntry[] = [];
    for (const entry of this.entries(after, filter.reverse === true)) {
      if (
        filter.action !== undefined &&
        entry.action !== filter.action &&
        !entry.action.startsWith(`${filter.action}.`)
      )
        continue;
      if (filter.decision !== undefined && entry.decision !== filter.decision) continue;
      if (filter.did !== undefined && entry.actor !== filter.did && entry.principal !== filter.did) continue;
      if (filter.since !== undefined && entry.ts < filter.since) continue;
      if (filter.until !== undefined && entry.ts > filter.until) continue;
      out.push(entry);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Records after `after`, committed ones then those staged for the next commit (or the reverse). */
  private *entries(after: number, reverse: boolean): Generator<AuditEntry> {
    const staged = [...this.staged.values()].filter((e) => e.seq > after);
    const firstStaged = staged[0]?.seq ?? Number.POSITIVE_INFINITY;
    if (reverse) {
      yield* staged.reverse();
      for (const { value } of this.db.getRange({ reverse: true, end: after })) {
        const entry = value as AuditEntry;
        if (entry.seq < firstStaged) yield entry;
      }
    } else {
      for (const { value } of this.db.getRange({ start: after + 1 })) {
        const entry = value as AuditEntry;
        if (entry.seq < firstStaged) yield entry;
      }
      yield* staged;
    }
  }

  /**
   * Reads the whole log and checks it: consecutive sequence numbers from 1, each record's `prev`
   * equal to the previous record's hash, each hash recomputed from the stored record, and the last
   * record equal to the MAC'd head. Any edit, deletion, insertion or reordering of records shows up.
   */
  verify(): AuditVerifyResult {
    const problems: AuditProblem[] = [];
    let expectedSeq = 1;
    let prev = AUDIT_GENESIS;
    let count = 0;
    let lastSeq = 0;
    let lastHash = AUDIT_GENESIS;
    let previousFlagged = false;
    for (const { key, value } of this.db.getRange({})) {
      count++;
      const entry = value as AuditEntry | null;
      if (
        entry === null ||
        typeof entry !== 'object' ||
        typeof entry.seq !== 'number' ||
        typeof entry.hash !== 'string' ||
        typeof entry.prev !== 'string' ||
        !/^[0-9a-f]{64}$/.test(entry.prev)
      ) {
        problems.push({
          seq: Number(key),
          kind: 'unreadable',
          message: `record under key ${String(key)} is not an audit record`,
        });
        expectedSeq = Number(key) + 1;
        previousFlagged = true;
        continue;
      }
      // One problem per record; a record right after a flagged one is not blamed for the break.
      let problem: AuditProblem | undefined;
      if (entry.seq !== key) {
        problem = {
          seq: Number(key),
          kind: 'reordered',
          message: `record stored under ${String(key)} says it is number ${entry.seq}`,
        };
      } else if (key !== expectedSeq) {
        problem = {
          seq: expectedSeq,
          kind: 'missing',
          message: `records ${expectedSeq}..${Number(key) - 1} are missing`,
        };
      } else {
        let recomputed: string | undefined;
        try {
          recomputed = auditHash(this.suite, entry);
        } catch {
          recomputed = undefined;
        }
        if (recomputed !== entry.hash)
          problem = {
            seq: entry.seq,
            kind: 'altered',
            message: `record ${entry.seq} does not match its hash`,
          };
        else if (entry.prev !== prev && !previousFlagged)
          problem = {
            seq: entry.seq,
            kind: 'altered',
            message: `record ${entry.seq} does not follow the record before it (its "prev" differs): a record before it was replaced`,
          };
      }
      if (problem !== undefined) problems.push(problem);
      previousFlagged = problem !== undefined;
      prev = entry.hash;
      expectedSeq = Number(key) + 1;
      lastSeq = Number(key);
      lastHash = entry.hash;
    }
    const head = this.meta.get(HEAD_KEY) as Head | undefined;
    if (head === undefined) {
      if (count > 0)
        problems.push({ seq: lastSeq, kind: 'head', message: 'the log has records but no head' });
    } else {
      if (typeof head.mac !== 'string' || head.mac !== this.mac(head.seq, head.hash))
        problems.push({ seq: head.seq, kind: 'head', message: "the head does not carry this host's MAC" });
      if (head.seq !== lastSeq || head.hash !== lastHash)
        problems.push({
          seq: head.seq,
          kind: head.seq > lastSeq ? 'missing' : 'head',
          message:
            head.seq > lastSeq
              ? `records after ${lastSeq} are missing (the head says ${head.seq})`
              : `the head names record ${head.seq} but the log ends at ${lastSeq}`,
        });
    }
    return {
      ok: problems.length === 0,
      count,
      head:
        head === undefined
          ? count > 0
            ? { seq: lastSeq, hash: lastHash }
            : null
          : { seq: head.seq, hash: head.hash },
      problems,
    };
  }

  private mac(seq: number, hash: string): string {
    return toHex(this.suite.hmacSha256(this.headKey, utf8(`${seq}:${hash}`)));
  }

  private scheduleFlush(): void {
    if (this.flushScheduled !== undefined) return;
    this.flushScheduled = Promise.resolve().then(() => {
      this.flushScheduled = undefined;
      // A failed group commit is reported by the host (CommitQueue.onFailure); callers that need
      // durability await `flush()`, which rejects.
      return this.commits.flush().catch(() => {});
    });
  }
}

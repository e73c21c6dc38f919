// Trust scores: decaying evidence from what a DID did (success, failure, timeout, bad signature, rate limit) plus signed attestations.
import type { Database } from 'lmdb';
import type { Clock } from '../clock.ts';
import type { CryptoSuite } from '../crypto/suite.ts';
import { describeValue } from '../errors.ts';
import { type Did, isDid } from '../identity/did.ts';
import type { CommitQueue } from '../store/commit-queue.ts';
import { toB64u } from './canonical.ts';
import { AttestationError, AuthorityRequestError } from './errors.ts';
import { checkStatementShape, checkStatementSignature, statementSigningInput } from './statement.ts';
import type { Signer } from './tokens.ts';

/** What can happen that moves a DID's trust. */
export type TrustEventKind = 'success' | 'failure' | 'timeout' | 'bad_signature' | 'rate_limited';

export const TRUST_EVENT_KINDS: readonly TrustEventKind[] = [
  'success',
  'failure',
  'timeout',
  'bad_signature',
  'rate_limited',
];

/** Evidence each event adds (before decay). A bad signature weighs most: it is either an attack or a broken key. */
export const TRUST_WEIGHTS: Readonly<Record<TrustEventKind, number>> = {
  success: 1,
  failure: -2,
  timeout: -1.5,
  bad_signature: -6,
  rate_limited: -0.5,
};

/** Neutral score: what an unknown DID gets, and where every score drifts back to. */
export const NEUTRAL_TRUST = 0.5;
/** Evidence at which the score is about 0.88 (or 0.12): tanh(1). */
const SCALE = 10;
/** Evidence a fully trusted attester's +100 attestation adds. */
const ATTESTATION_WEIGHT = 4;
const ATTESTATION_DOMAIN = 'anx-trust-attest-v1';

/** A signed statement by `iss` about how far it trusts `sub` (-100 distrust .. +100 trust). */
export interface Attestation {
  v: 1;
  iss: Did;
  sub: Did;
  value: number;
  note?: string;
  ts: number;
  exp: number;
  /** Ed25519 (base64url) by `iss` over `anx-trust-attest-v1`, 0x00, canonical JSON without `sig`. */
  sig: string;
}

export interface TrustBreakdown {
  /** Decay half-life of every piece of evidence (ms). */
  halfLifeMs: number;
  events: Array<{
    kind: TrustEventKind;
    count: number;
    decayed: number;
    weight: number;
    contribution: number;
  }>;
  attestations: Array<{
    iss: Did;
    value: number;
    ts: number;
    /** How much this host trusts the attester (0..1): its own score above neutral, or 1 for a local identity. */
    attesterWeight: number;
    contribution: number;
  }>;
  /** Sum of contributions; score = 0.5 + 0.5·tanh(evidence / 10). */
  evidence: number;
}

export interface TrustScore {
  did: Did;
  score: number;
  breakdown: TrustBreakdown;
}

interface TrustRecord {
  did: Did;
  /** When `decayed` was last brought up to date. */
  at: number;
  /** Decayed counts per kind as of `at`. */
  decayed: Partial<Record<TrustEventKind, number>>;
  /** Lifetime counts per kind. */
  count: Partial<Record<TrustEventKind, number>>;
}

export interface TrustOptions {
  /** Half-life of evidence (ms); default 7 days. */
  halfLifeMs?: number;
}

const round = (n: number): number => Math.round(n * 10_000) / 10_000;

/** Key in `trust` of the highest event seq whose stage outcome the stored scores include. */
export const TRUST_EVENTS_KEY = 'meta/events';

/** Scores noted from the event log are written together once this many events have been heard since the last write. */
export const TRUST_WRITE_EVENTS = 256;

export function attestationSigningInput(a: Omit<Attestation, 'sig'> & { sig?: string }): Uint8Array {
  return statementSigningInput(ATTESTATION_DOMAIN, a as unknown as Record<string, unknown>);
}

const ATTESTATION_FIELDS = ['v', 'iss', 'sub', 'value', 'note', 'ts', 'exp', 'sig'];

/** Checks an attestation's shape and signature (not its expiry); throws `AttestationError`. */
export function verifyAttestation(raw: unknown, suite: CryptoSuite): Attestation {
  const fail = (message: string): never => {
    throw new AttestationError(message);
  };
  const a = checkStatementShape(raw, 'an attestation', ATTESTATION_FIELDS, fail);
  if (!isDid(a.sub, 'agentnexus')) fail('an attestation "sub" expected a did:agentnexus DID');
  if (a.iss === a.sub) fail('a DID cannot attest to itself');
  if (typeof a.value !== 'number' || !Number.isInteger(a.value) || a.value < -100 || a.value > 100)
    fail(`an attestation "value" expected an integer from -100 to 100, got ${describeValue(a.value)}`);
  if (a.note !== undefined && (typeof a.note !== 'string' || a.note.length > 512))
    fail('an attestation "note" expected at most 512 characters');
  if ((a.exp as number) <= (a.ts as number)) fail('an attestation expires before it was made');
  checkStatementSignature(a, 'an attestation', ATTESTATION_DOMAIN, suite, fail);
  return a as unknown as Attestation;
}

/**
 * Trust per DID, persisted in LMDB (`trust`: `score/<did>`, `att/<subject>/<issuer>`). Evidence
 * decays exponentially toward neutral with the host clock; attestations count in proportion to
 * how much this host trusts their issuer (one hop: an attester's own weight comes from events
 * only, so rings of mutual praise gain nothing).
 */
export class TrustStore {
  readonly halfLifeMs: number;
  private flushScheduled = false;
  /** Values staged for the next group commit, or noted from events and not written yet: reads see them first. */
  private readonly pending = new Map<string, unknown>();
  /** Score keys noted from the event log since the last write of those (see `followEvents`). */
  private readonly deferred = new Set<string>();
  /** The event log's seq heard through, and the one the stored scores include; undefined until `followEvents`. */
  private eventsThrough: number | undefined;
  private writtenThrough = 0;
  private readonly listeners = new Set<(att: Attestation, origin: 'local' | 'remote') => void>();

  constructor(
    private readonly db: Database<unknown, string>,
    private readonly commits: CommitQueue,
    private readonly suite: CryptoSuite,
    private readonly clock: Clock,
    private readonly signer: Signer,
    options: TrustOptions = {},
  ) {
    this.halfLifeMs = options.halfLifeMs ?? 7 * 24 * 60 * 60_000;
  }

  /**
   * Records something `did` did. Returns its new score.
   *
   * @example
   * ```ts
   * host.authority.trust.record(worker, 'timeout');
   * ```
   */
  record(did: Did, kind: TrustEventKind, count = 1): TrustScore {
    this.note(did, kind, count);
    return this.score(did);
  }

  /** Records something `did` did, as `record` does, without working out the new score (for listeners that do not show it). */
  note(did: Did, kind: TrustEventKind, count = 1): void {
    this.stage(`score/${did}`, this.withEvidence(did, kind, count, this.clock.now()));
  }

  /**
   * Makes the scores follow the event log (stage outcomes, see `trustFromRunEvents`): what `noteEvent`
   * records is kept in memory and written with the highest seq heard, `TRUST_WRITE_EVENTS` events at a
   * time and when the host stops, so a stage handoff's commit does not carry a trust score. Returns the
   * seq the stored scores include: the caller replays the events after it (those a crash lost from
   * memory) before it hears new ones. A directory without that mark wrote each score with its event, so
   * nothing is replayed and the mark starts at `lastSeq`.
   */
  followEvents(lastSeq: number): number {
    const stored = this.db.get(TRUST_EVENTS_KEY);
    const through = typeof stored === 'number' ? stored : lastSeq;
    if (typeof stored !== 'number') this.commits.put(this.db, TRUST_EVENTS_KEY, through);
    this.eventsThrough = through;
    this.writtenThrough = through;
    return through;
  }

  /** Records a stage outcome read from the event log, as of `at` (the event's time); written later (`followEvents`). */
  noteEvent(did: Did, kind: TrustEventKind, at: number): void {
    const key = `score/${did}`;
    this.pending.set(key, this.withEvidence(did, kind, 1, at));
    this.deferred.add(key);
  }

  /** The event log has been heard through `seq` (every outcome up to it noted): writes once enough have passed. */
  heard(seq: number): void {
    if (this.eventsThrough === undefined || seq <= this.eventsThrough) return;
    this.eventsThrough = seq;
    if (seq - this.writtenThrough >= TRUST_WRITE_EVENTS) this.writeEvents();
  }

  /** Stages the scores noted from events and the seq they include, in one commit. */
  writeEvents(): void {
    if (this.eventsThrough === undefined) return;
    if (this.deferred.size === 0 && this.eventsThrough === this.writtenThrough) return;
    const keys = [...this.deferred];
    this.deferred.clear();
    for (const key of keys) this.stage(key, this.pending.get(key));
    this.commits.put(this.db, TRUST_EVENTS_KEY, this.eventsThrough);
    this.writtenThrough = this.eventsThrough;
    this.scheduleFlush();
  }

  /** `did`'s record decayed to `now` with `count` more of `kind`; checks the arguments. */
  private withEvidence(did: Did, kind: TrustEventKind, count: number, now: number): TrustRecord {
    if (!isDid(did)) throw new AuthorityRequestError(`trust "did" expected a DID, got ${describeValue(did)}`);
    if (!TRUST_EVENT_KINDS.includes(kind))
      throw new AuthorityRequestError(
        `trust event expected one of ${TRUST_EVENT_KINDS.join(', ')}, got ${describeValue(kind)}`,
      );
    if (!Number.isInteger(count) || count < 1 || count > 1_000_000)
      throw new AuthorityRequestError('trust event "count" expected a positive integer');
    const rec = this.decayedRecord(did, now);
    rec.decayed[kind] = (rec.decayed[kind] ?? 0) + count;
    rec.count[kind] = (rec.count[kind] ?? 0) + count;
    return rec;
  }

  /** The score of `did` now (0.5 for a DID with no evidence), with a breakdown of how it was reached. */
  score(did: Did, now = this.clock.now()): TrustScore {
    if (!isDid(did))
      throw new AuthorityRequestError(`a trust score is kept for DIDs, got ${describeValue(did)}`);
    const rec = this.decayedRecord(did, now);
    const events = TRUST_EVENT_KINDS.filter((k) => (rec.count[k] ?? 0) > 0).map((kind) => {
      const decayed = rec.decayed[kind] ?? 0;
      return {
        kind,
        count: rec.count[kind] ?? 0,
        decayed: round(decayed),
        weight: TRUST_WEIGHTS[kind],
        contribution: round(decayed * TRUST_WEIGHTS[kind]),
      };
    });
    const attestations: TrustBreakdown['attestations'] = [];
    for (const a of this.attestationsAbout(did)) {
      if (a.exp <= now) continue;
      const attesterWeight = this.signer.has(a.iss) ? 1 : Math.max(0, 2 * this.eventScore(a.iss, now) - 1);
      const decay = 2 ** (-Math.max(0, now - a.ts) / this.halfLifeMs);
      attestations.push({
        iss: a.iss,
        value: a.value,
        ts: a.ts,
        attesterWeight: round(attesterWeight),
        contribution: round(((ATTESTATION_WEIGHT * a.value) / 100) * attesterWeight * decay),
      });
    }
    const evidence = round(
      events.reduce((s, e) => s + e.contribution, 0) + attestations.reduce((s, a) => s + a.contribution, 0),
    );
    return {
      did,
      score: round(NEUTRAL_TRUST + NEUTRAL_TRUST * Math.tanh(evidence / SCALE)),
      breakdown: { halfLifeMs: this.halfLifeMs, events, attestations, evidence },
    };
  }

  /** Every DID with evidence or attestations, highest score first. */
  list(now = this.clock.now()): TrustScore[] {
    const dids = new Set<string>();
    const keys = [...this.db.getKeys({ start: 'att/', end: 'score0' })]
      .map(String)
      .concat([...this.pending.keys()]);
    for (const key of keys) {
      if (key.startsWith('score/')) dids.add(key.slice(6));
      else if (key.startsWith('att/')) dids.add(key.split('/')[1] as string);
    }
    return [...dids].map((d) => this.score(d, now)).sort((a, b) => b.score - a.score);
  }

  /** Signs an attestation by a local DID about `subject`, stores it and returns it (to publish or hand on). */
  attest(input: { issuer: Did; subject: Did; value: number; note?: string; ttlMs?: number }): Attestation {
    if (!isDid(input?.issuer, 'agentnexus') || !this.signer.has(input.issuer))
      throw new AuthorityRequestError(
        `"issuer" expected a local did:agentnexus identity, got ${describeValue(input?.issuer)}`,
        'list local identities with `anx-runtime id list`',
      );
    const ts = this.clock.now();
    const ttl = input.ttlMs ?? 90 * 24 * 60 * 60_000;
    if (!Number.isSafeInteger(ttl) || ttl <= 0)
      throw new AuthorityRequestError('"ttlMs" expected a positive integer');
    const unsigned: Omit<Attestation, 'sig'> = {
      v: 1,
      iss: input.issuer,
      sub: input.subject,
      value: input.value,
      ...(input.note === undefined ? {} : { note: input.note }),
      ts,
      exp: ts + ttl,
    };
    const signed = {
      ...unsigned,
      sig: toB64u(this.signer.sign(input.issuer, attestationSigningInput(unsigned))),
    };
    let att: Attestation;
    try {
      att = verifyAttestation(signed, this.suite);
    } catch (err) {
      throw new AuthorityRequestError((err as Error).message);
    }
    this.put(att);
    for (const fn of this.listeners) fn(att, 'local');
    return att;
  }

  /**
   * Takes an attestation made elsewhere: verifies it and keeps it if it is newer than the last one
   * from the same issuer about the same subject. Returns false when it changed nothing. Throws
   * `AttestationError` when it does not verify or has expired.
   */
  addAttestation(raw: unknown): boolean {
    const att = verifyAttestation(raw, this.suite);
    if (att.exp <= this.clock.now()) throw new AttestationError('the attestation has expired');
    const known = this.read(`att/${att.sub}/${att.iss}`) as Attestation | undefined;
    if (known !== undefined && known.ts >= att.ts) return false;
    this.put(att);
    for (const fn of this.listeners) fn(att, 'remote');
    return true;
  }

  /** Told of every attestation stored: made here (`local`) or taken from elsewhere (`remote`). */
  onAttestation(fn: (att: Attestation, origin: 'local' | 'remote') => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Every stored attestation that has not expired (for distribution to other hosts). */
  attestations(now = this.clock.now()): Attestation[] {
    const byKey = new Map<string, Attestation>();
    for (const { key, value } of this.db.getRange({ start: 'att/', end: 'att0' }))
      byKey.set(String(key), value as Attestation);
    for (const [key, value] of this.pending) if (key.startsWith('att/')) byKey.set(key, value as Attestation);
    return [...byKey.values()].filter((a) => a.exp > now);
  }

  /** Stored attestations about `did`. */
  attestationsAbout(did: Did): Attestation[] {
    const prefix = `att/${did}/`;
    const byKey = new Map<string, Attestation>();
    for (const { key, value } of this.db.getRange({ start: prefix, end: `att/${did}0` }))
      byKey.set(String(key), value as Attestation);
    for (const [key, value] of this.pending) if (key.startsWith(prefix)) byKey.set(key, value as Attestation);
    return [...byKey.values()];
  }

  /** Resolves when recorded evidence is committed. */
  async flush(): Promise<void> {
    await this.commits.flush();
  }

  private put(att: Attestation): void {
    this.stage(`att/${att.sub}/${att.iss}`, att);
  }

  private stage(key: string, value: unknown): void {
    // A score with evidence from events not written yet: written with all of it and its seq, or a
    // replay after a crash would count those events a second time.
    if (this.deferred.has(key)) this.writeEvents();
    this.pending.set(key, value);
    this.commits.put(this.db, key, value);
    this.commits.afterCommit(() => {
      if (this.pending.get(key) === value) this.pending.delete(key);
    });
    this.scheduleFlush();
  }

  private read(key: string): unknown {
    return this.pending.has(key) ? this.pending.get(key) : this.db.get(key);
  }

  /** Score from events only (no attestations): an attester's weight. */
  private eventScore(did: Did, now: number): number {
    const rec = this.decayedRecord(did, now);
    let evidence = 0;
    for (const kind of TRUST_EVENT_KINDS) evidence += (rec.decayed[kind] ?? 0) * TRUST_WEIGHTS[kind];
    return NEUTRAL_TRUST + NEUTRAL_TRUST * Math.tanh(evidence / SCALE);
  }

  private decayedRecord(did: Did, now: number): TrustRecord {
    const stored = this.read(`score/${did}`) as TrustRecord | undefined;
    if (stored === undefined) return { did, at: now, decayed: {}, count: {} };
    const factor = 2 ** (-Math.max(0, now - stored.at) / this.halfLifeMs);
    const decayed: Partial<Record<TrustEventKind, number>> = {};
    for (const kind of TRUST_EVENT_KINDS) {
      const v = stored.decayed[kind];
      if (v !== undefined) decayed[kind] = v * factor;
    }
    return { did, at: Math.max(now, stored.at), decayed, count: { ...stored.count } };
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      void this.commits.flush().catch(() => {});
    });
  }
}

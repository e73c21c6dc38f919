// The composition root: one host = one LMDB environment, its keystore, the actor system and the machines it runs.
import { join } from 'node:path';
import type { Key } from 'lmdb';
import { DID_KIND, didActor } from '../actors/did.ts';
import { Teamwork } from '../actors/teamwork.ts';
import { FreezeHold } from './authority/freeze-hold.ts';
import { Authority, type Permit, RateLimitedError } from './authority/index.ts';
import { trustFromRunEvents } from './authority/run-outcomes.ts';
import { type Clock, systemClock } from './clock.ts';
import { defaultSuite } from './crypto/index.ts';
import type { CryptoSuite } from './crypto/suite.ts';
import { type DataDirLock, lockDataDir } from './data-lock.ts';
import { BATCH_TYPE } from './envelope/envelope.ts';
import {
  acceptEnvelope,
  EnvelopeFieldError,
  envelopeErrorEvent,
  isEnvelopeId,
  MAX_BODY_BYTES,
  validateSessionEnvelope,
} from './envelope/index.ts';
import { AnxError, describeValue } from './errors.ts';
import type { EventKind, EventV1 } from './events/event.ts';
import type { TraceFilter } from './events/log.ts';
import { parseDid } from './identity/did.ts';
import { type DidDocument, didDocument } from './identity/did-document.ts';
import { type KeyRecord, Keystore } from './identity/keystore.ts';
import { ActorSystem, MAX_ADDRESS_CHARS, type RemoteRouter } from './kernel/actor-system.ts';
import { UnknownActorError } from './kernel/errors.ts';
import { type EnvelopeContext, type KernelEnvelope, kernelEnvelopeFromWire } from './kernel/message.ts';
import { DurableReplayGuard } from './kernel/replay-guard.ts';
import { openStore, type Store } from './store/store.ts';
import { encodedSize } from './value-checks.ts';
import { VERSION } from './version.ts';

export interface HostOptions {
  dataDir: string;
  clock?: Clock;
  /** Skip fsync (benchmarks, throwaway tests only). */
  noSync?: boolean;
  /** Live actors kept in memory before idle ones are passivated. */
  maxActive?: number;
  /** Messages handled per scheduling turn before its group commit starts (default 1,024). */
  turnSize?: number;
  /** Replay window for envelopes from outside the host (ms); default 5 minutes. */
  replayWindowMs?: number;
  /**
   * Routes envelopes for addresses not on this host (the relay). Set before the outbox is replayed,
   * so unacknowledged mail for other hosts is handed to it again rather than dead-lettered.
   */
  router?: RemoteRouter;
  /**
   * The data directory's lock, already taken (the daemon takes it before it joins the relay); the
   * host releases it when it closes. Without it, `open` takes the lock itself.
   */
  lock?: DataDirLock;
}

/** A message to send, as the local API and SDK take it. */
export interface SendRequest {
  from: string;
  to: string;
  type?: string;
  body?: unknown;
  /** Client-chosen id: resending the same id is a no-op (idempotent retries). */
  id?: string;
  thread?: string;
  reply?: string;
  exp?: number;
  ctx?: EnvelopeContext;
}

/** An identity this host holds the key of, with its inbox counters. */
export interface IdentityInfo extends KeyRecord {
  received: number;
  unread: number;
  presence: string;
}

export interface InboxMessage {
  seq: number;
  id: string;
  type: string;
  from: string;
  ts: number;
  thread?: string;
  reply?: string;
  body: unknown;
}

/** A request that names something wrong (a malformed DID, a missing field): the caller's mistake. */
export class RequestError extends AnxError {}

/** The caller asked to act as an identity whose key this host does not hold. */
export class NotLocalIdentityError extends AnxError {
  constructor(did: string) {
    super('ANX_NOT_LOCAL_IDENTITY', `this host holds no key for ${did}, so it cannot send as it`, {
      hint: 'list local identities with `anx-runtime id list`, or create one with `anx-runtime id new`',
    });
  }
}

const MESSAGE_TYPE = /^[a-z][a-z0-9_.:-]{0,63}$/;

/**
 * How long accepted message ids are remembered at the least, for idempotent retries and replay refusal:
 * longer when a path accepts older messages (the replay window, the relay's mail retention; see
 * `Host.retainSeenFor`).
 */
export const SEEN_RETENTION_MS = 24 * 60 * 60 * 1000;

/**
 * Entries of `seen` one slice of a prune pass reads; the slice's removals commit before the next slice is
 * read, and other work runs in between, so a large table never stalls the host or makes one huge commit.
 */
const PRUNE_SLICE = 5_000;

/**
 * One running host. `Host.open` restores every persisted actor's pending work (outbox, timers)
 * before resolving; `close` lets in-flight commits land.
 */
export class Host {
  readonly startedAt: number;
  readonly suite: CryptoSuite = defaultSuite();
  private readonly replayGuard: DurableReplayGuard;
  private pruneHandle: unknown;
  /** The prune pass under way, if any, and the one asked for while it runs. */
  private pruning: Promise<number> | undefined;
  private nextPrune: { now: number; done: Promise<number> } | undefined;
  private closing = false;
  private seenRetention = SEEN_RETENTION_MS;
  /** Identities being created by `identityNamed`, by name. */
  private readonly naming = new Map<string, Promise<KeyRecord>>();

  private constructor(
    readonly dataDir: string,
    readonly store: Store,
    readonly keystore: Keystore,
    readonly system: ActorSystem,
    readonly clock: Clock,
    readonly restored: { replayed: number; refused: number },
    private readonly replayWindowMs: number,
    /** Enclaves, vault, playbook runs, workers and manifests. */
    readonly teamwork: Teamwork,
    /** Capability tokens, revocation, audit log, freeze, rate limits and trust. */
    readonly authority: Authority,
    private readonly lock: DataDirLock,
  ) {
    this.startedAt = clock.now();
    this.replayGuard = new DurableReplayGuard(store, system.commits);
    this.retainSeenFor(replayWindowMs);
    this.schedulePrune();
  }

  static async open(options: HostOptions): Promise<Host> {
    const clock = options.clock ?? systemClock;
    // One host per data directory: a second kernel on the same LMDB environment would lose messages.
    const lock = options.lock ?? lockDataDir(options.dataDir);
    let store: Store;
    try {
      store = openStore(options.dataDir, options.noSync === undefined ? {} : { noSync: options.noSync });
    } catch (err) {
      lock.release();
      throw err;
    }
    try {
      const hostKey = Keystore.loadOrCreateHostKey(join(options.dataDir, 'host.key'));
      const keystore = new Keystore(store.root.openDB({ name: 'keystore' }), hostKey, {
        now: () => clock.now(),
      });
      const system = new ActorSystem({
        store,
        clock,
        ...(options.maxActive === undefined ? {} : { maxActive: options.maxActive }),
        ...(options.turnSize === undefined ? {} : { turnSize: options.turnSize }),
      });
      system.register(didActor);
      // A key created just before a crash may lack its actor: every local key gets one.
      for (const record of keystore.list()) {
        if (!system.has(record.did))
          await system.spawn(DID_KIND, record.did, { name: record.name ?? undefined });
      }
      if (options.router !== undefined) system.router = options.router;
      const suite = defaultSuite();
      const authority = new Authority({
        store,
        commits: system.commits,
        suite,
        clock,
        signer: keystore,
        auditKey: suite.hkdfSha256(
          hostKey,
          new Uint8Array(0),
          new TextEncoder().encode('anx-audit-head-v1'),
          32,
        ),
      });
      // Before start: restored runs and Enclaves need their machines, and the inbox taps their consumers.
      const teamwork = new Teamwork(system, keystore, options.dataDir);
      // Dispatches audit, check tokens and respect a freeze whoever calls them (API, SDK or host code).
      teamwork.secretaries.attach({ authority });
      // Frozen means read-only: vault writes, run starts and changes, and stage results are refused.
      const writeGuard = (action: string, actor: string) =>
        authority.freeze.assertWritable(action, { actor });
      teamwork.vault.writeGuard = writeGuard;
      teamwork.runs.writeGuard = writeGuard;
      teamwork.workers.writeGuard = writeGuard;
      teamwork.enclaves.writeGuard = writeGuard;
      teamwork.workers.commandsFlowing = () => !authority.freeze.isFrozen;
      // Work from a run of another host: its sender must be the worker's Owner, a Secretary of it or
      // hold a token from it (a worker bound to nobody is governed by its gatekeeper alone).
      teamwork.workers.assignGuard = (assigner, worker, cap, context) => {
        teamwork.secretaries.authorizer.authorizeAssignment(assigner, worker, cap, context);
      };
      // Frozen means no worker commands either: stage assignments wait in the outbox, their runs paused.
      const hold = new FreezeHold(system, authority.freeze, authority.audit, {
        isPaused: (runId) => teamwork.runs.status(runId).state === 'paused',
        pause: async (runId, reason) => {
          await teamwork.runs.control(runId, 'run.pause', { reason });
        },
        resume: async (runId) => {
          if (teamwork.runs.status(runId).state === 'paused')
            await teamwork.runs.control(runId, 'run.resume', {});
        },
        stillWanted: (env) =>
          teamwork.runs.isRunningTask(env.ctx?.run_id ?? '', env.ctx?.task_id ?? '', env.to),
      });
      // Stage outcomes move the worker's trust (success, failure, timeout); their status events name
      // the worker. The scores are written in groups: the outcomes of events after the last group, lost
      // from memory by a crash, are read again before the system starts.
      const trustListener = trustFromRunEvents(authority.trust);
      replayTrust(store, authority.trust.followEvents(system.events.lastSeq), trustListener);
      system.events.subscribe(trustListener);
      const { replayed, refused } = await system.start();
      await hold.recover();
      const host = new Host(
        options.dataDir,
        store,
        keystore,
        system,
        clock,
        { replayed, refused },
        options.replayWindowMs ?? 5 * 60_000,
        teamwork,
        authority,
        lock,
      );
      await system.emitEvent({
        kind: 'status',
        actor: 'host',
        payload: { status: 'host.started', version: VERSION, replayed },
      });
      return host;
    } catch (err) {
      await store.close().catch(() => {});
      lock.release();
      throw err;
    }
  }

  /** Creates a new identity: a key in the keystore and its DID actor. */
  async createIdentity(options: { name?: string } = {}): Promise<KeyRecord> {
    if (options === null || typeof options !== 'object' || Array.isArray(options))
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `request expected an object like {name}, got ${describeValue(options)}`,
      );
    const name = options.name;
    if (name !== undefined && (typeof name !== 'string' || name.length === 0 || name.length > 128)) {
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `"name" expected a string of 1 to 128 characters, got ${describeValue(name)}`,
      );
    }
    const record = await this.keystore.create(options.name === undefined ? {} : { name: options.name });
    await this.system.spawn(DID_KIND, record.did, { name: options.name });
    return record;
  }

  /** Local identities with their inbox counters. */
  /**
   * The oldest local identity named `name`, created when there is none: one identity however many
   * callers ask for the name at once (the SDK's `connect(name)` from several agents, say).
   */
  identityNamed(name: string): Promise<KeyRecord> {
    if (typeof name !== 'string' || name.length === 0 || name.length > 128)
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `"name" expected a string of 1 to 128 characters, got ${describeValue(name)}`,
      );
    const pending = this.naming.get(name);
    if (pending !== undefined) return pending;
    const found = this.keystore
      .list()
      .filter((r) => r.name === name)
      .sort((a, b) => a.createdAt - b.createdAt)[0];
    if (found !== undefined) return Promise.resolve(found);
    const creating = this.createIdentity({ name }).finally(() => this.naming.delete(name));
    this.naming.set(name, creating);
    return creating;
  }

  identities(): IdentityInfo[] {
    return this.keystore.list().map((record) => {
      const info = this.didState(record.did);
      return { ...record, ...info };
    });
  }

  /** One local identity: its public record, inbox counters and DID document (no secret). */
  identity(did: string): IdentityInfo & { document: DidDocument } {
    const parsed = parseDid(did, 'did');
    const record = this.keystore.get(parsed.did);
    if (record === undefined) throw new NotLocalIdentityError(parsed.did);
    return { ...record, ...this.didState(parsed.did), document: didDocument(parsed.did) };
  }

  /** Accepts one or more messages; each is durable (committed) when this resolves. */
  async send(requests: SendRequest[]): Promise<Array<{ id: string; duplicate: boolean }>> {
    // An id made here has never been accepted: no duplicate to look for (a caller's own id is checked).
    const fresh = new Set<KernelEnvelope>();
    const envelopes = requests.map((request, i) => {
      const env = this.toEnvelope(request, requests.length > 1 ? `messages[${i}].` : '');
      if (request.id === undefined) fresh.add(env);
      return env;
    });
    return this.system.accept(envelopes, { fresh: (env) => fresh.has(env) });
  }

  /**
   * Accepts one signed (or sealed) wire envelope from outside the host: decodes, checks version,
   * fields, signature against the `from` DID, replay window and id, opens a sealed body with the
   * recipient's key, and takes a slot of the recipient's rate limit (its card's qps and concurrency).
   * A refusal throws its typed `EnvelopeError` (or `RateLimitedError`, `ANX_RATE_LIMITED`) and leaves an
   * `error` event in the trace (under the actor `host`) or an audit record; nothing else changes.
   */
  async receive(bytes: Uint8Array): Promise<{ id: string; duplicate: boolean }> {
    let env: KernelEnvelope;
    let permit: Permit;
    try {
      // The id is remembered only once the recipient's rate limit lets the envelope in: a refused
      // envelope can be sent again.
      let remember: (() => void) | undefined;
      const accepted = acceptEnvelope(bytes, {
        suite: this.suite,
        guard: {
          seen: (from, id) => this.replayGuard.seen(from, id),
          remember: (from, id, ts) => {
            remember = () => this.replayGuard.remember(from, id, ts);
          },
        },
        clock: this.clock,
        windowMs: this.replayWindowMs,
        recipientX25519Private: (to) => (this.keystore.has(to) ? this.keystore.x25519Private(to) : undefined),
      });
      const wire = accepted.envelope;
      if (!this.system.has(wire.to) && this.system.router === undefined) throw new UnknownActorError(wire.to);
      env = kernelEnvelopeFromWire(wire, accepted.body);
      permit = this.authority.rateLimits.take(wire.from, wire.to);
      remember?.();
    } catch (err) {
      // Rate-limit refusals are audited (once a second per sender), not logged one event each.
      if (!(err instanceof RateLimitedError)) {
        const event = envelopeErrorEvent(err, bytes.length, this.clock.now());
        await this.system.emitEvent({ kind: 'error', actor: 'host', payload: event.payload });
      }
      throw err;
    }
    try {
      const [result] = await this.system.accept([env]);
      return result as { id: string; duplicate: boolean };
    } finally {
      permit.release();
    }
  }

  /** Messages in a local DID's inbox, oldest first. */
  inbox(
    did: string,
    options: { afterSeq?: number; limit?: number } = {},
  ): { did: string; received: number; unread: number; messages: InboxMessage[] } {
    parseDid(did, 'did');
    if (!this.system.has(did)) throw new UnknownActorError(did);
    const messages = this.system
      .records('inbox', did, options)
      .map(({ seq, value }) => ({ seq, ...(value as Omit<InboxMessage, 'seq'>) }));
    const { received, unread } = this.didState(did);
    return { did, received, unread, messages };
  }

  /** Events of a run, task or actor (or `*` for all), in order. */
  trace(id: string, filter: TraceFilter = {}): EventV1[] {
    return this.system.events.trace(id, filter);
  }

  status() {
    return {
      version: VERSION,
      pid: process.pid,
      dataDir: this.dataDir,
      startedAt: this.startedAt,
      uptimeMs: this.clock.now() - this.startedAt,
      identities: this.keystore.list().length,
      actors: { live: this.system.liveCount, timers: this.system.pendingTimers },
      outbox: this.store.outbox.getKeysCount(),
      // Accepted message ids kept for dedupe (see `retainSeenFor`): what they cost grows with the retention.
      seen: {
        entries: (this.store.seen.getStats() as { entryCount: number }).entryCount,
        retentionMs: this.seenRetention,
      },
      lastEventSeq: this.system.events.lastSeq,
      restored: this.restored,
    };
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.pruneHandle !== undefined) this.clock.clearTimeout(this.pruneHandle);
    // A pass under way stops once its current slice has committed.
    await (this.nextPrune?.done ?? this.pruning)?.catch(() => {});
    this.authority.close();
    await this.teamwork.close();
    try {
      await this.system.stop();
      await this.store.close();
    } finally {
      this.lock.release();
    }
  }

  /** Forgets accepted ids older than the retention period, hourly. */
  private schedulePrune(): void {
    this.pruneHandle = this.clock.setTimeout(() => {
      // A failed commit is reported (and stops the host) by the commit queue itself.
      this.pruneSeen().catch(() => {});
      this.schedulePrune();
    }, 60 * 60_000);
  }

  /**
   * Keeps accepted message ids at least `ms` after their `ts`: a path that accepts messages up to `ms`
   * old (the relay's offline mail, held for its retention) must still find them in `seen`, or a copy
   * delivered again after a lost acknowledgement would be taken twice. Never shortens the retention.
   */
  retainSeenFor(ms: number): void {
    if (Number.isFinite(ms) && ms > this.seenRetention) this.seenRetention = ms;
  }

  /** How long accepted message ids are kept after their `ts` (see `retainSeenFor`). */
  get seenRetentionMs(): number {
    return this.seenRetention;
  }

  /**
   * Drops `seen` entries whose `ts` is older than the retention: retries and replays older than that are
   * refused by their timestamp. Goes through the table in slices of `sliceSize` entries, each slice's
   * removals committed before the next is read, yielding to other work in between; resolves with how
   * many entries it removed. One pass runs at a time: a call during a pass gets the pass after it (calls
   * meanwhile share that one, with the latest `now`).
   */
  pruneSeen(now = this.clock.now(), sliceSize = PRUNE_SLICE): Promise<number> {
    const size = Math.max(1, Math.floor(sliceSize));
    const current = this.pruning;
    if (current === undefined) return this.startPrune(now, size);
    if (this.nextPrune !== undefined) {
      this.nextPrune.now = Math.max(this.nextPrune.now, now);
      return this.nextPrune.done;
    }
    const next = { now, done: Promise.resolve(0) };
    next.done = current
      .catch(() => 0)
      .then(() => {
        this.nextPrune = undefined;
        return this.startPrune(next.now, size);
      });
    this.nextPrune = next;
    return next.done;
  }

  private startPrune(now: number, sliceSize: number): Promise<number> {
    const pass: Promise<number> = this.prunePass(now - this.seenRetention, sliceSize).finally(() => {
      if (this.pruning === pass) this.pruning = undefined;
    });
    this.pruning = pass;
    return pass;
  }

  private async prunePass(cutoff: number, sliceSize: number): Promise<number> {
    let removed = 0;
    let after: Key | undefined;
    while (!this.closing) {
      let read = 0;
      let staged = 0;
      const range =
        after === undefined ? { limit: sliceSize } : { start: after, exclusiveStart: true, limit: sliceSize };
      for (const { key, value } of this.store.seen.getRange(range)) {
        read++;
        after = key;
        if (typeof value === 'number' && value < cutoff) {
          this.system.commits.remove(this.store.seen, key);
          staged++;
        }
      }
      if (staged > 0) await this.system.commits.flush();
      removed += staged;
      if (read < sliceSize) break;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return removed;
  }

  private didState(did: string): { received: number; unread: number; presence: string } {
    try {
      const snap = this.system.snapshot(did) as {
        context: { received: number; unread: number };
        value: { presence?: string };
      };
      return {
        received: snap.context.received,
        unread: snap.context.unread,
        presence: snap.value.presence ?? 'unknown',
      };
    } catch {
      return { received: 0, unread: 0, presence: 'unknown' };
    }
  }

  private toEnvelope(request: SendRequest, path: string): KernelEnvelope {
    if (request === null || typeof request !== 'object') {
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `${path || 'message'} expected an object, got ${request === null ? 'null' : typeof request}`,
      );
    }
    parseDid(request.from, `${path}from`);
    if (!this.keystore.has(request.from)) throw new NotLocalIdentityError(request.from);
    if (typeof request.to !== 'string' || request.to.length === 0 || request.to.length > MAX_ADDRESS_CHARS) {
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `"${path}to" expected a DID or actor address of at most ${MAX_ADDRESS_CHARS} characters, got ${describeValue(request.to)}`,
      );
    }
    if (request.to.startsWith('did:')) parseDid(request.to, `${path}to`);
    if (this.system.router === undefined && !this.system.has(request.to))
      throw new UnknownActorError(request.to);
    const type = request.type ?? 'message';
    if (type === BATCH_TYPE)
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `"${path}type" expected a message type other than "${BATCH_TYPE}" (the kernel's own event)`,
      );
    if (typeof type !== 'string' || !MESSAGE_TYPE.test(type)) {
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `"${path}type" expected a lowercase message type like "message" or "task.propose", got ${describeValue(type)}`,
      );
    }
    if (request.id !== undefined && !isEnvelopeId(request.id)) {
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `"${path}id" expected 16 to 64 characters of [A-Za-z0-9_-], got ${describeValue(request.id)}`,
      );
    }
    const env = this.system.envelope({
      type,
      from: request.from,
      to: request.to,
      ...(request.id === undefined ? {} : { id: request.id }),
    });
    if (request.body !== undefined) env.body = request.body;
    if (request.thread !== undefined) env.thread = request.thread;
    if (request.reply !== undefined) env.reply = request.reply;
    if (request.exp !== undefined) env.exp = request.exp;
    if (request.ctx !== undefined) env.ctx = request.ctx;
    // The header fields a caller sets, and the body's nesting, are held to the rules a peer's envelope is held to.
    try {
      validateSessionEnvelope(env as unknown as Record<string, unknown>);
    } catch (err) {
      if (!(err instanceof EnvelopeFieldError)) throw err;
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        err.message.replace(`"${err.field}"`, `"${path}${err.field}"`),
      );
    }
    // Bigger would be taken here but could never be delivered to a DID on another host.
    const size = request.body === undefined ? 0 : encodedSize(request.body);
    if (size > MAX_BODY_BYTES)
      throw new RequestError(
        'ANX_MESSAGE_TOO_LARGE',
        `"${path}body" expected at most ${MAX_BODY_BYTES} bytes encoded, got ${size}`,
        {
          hint: "put large content in an Enclave's vault (`anx-runtime vault put`) and send its ref",
        },
      );
    return env;
  }
}

/** Event kinds accepted by trace filters, for validating user input. */
export function parseKinds(value: string | undefined): EventKind[] | undefined {
  if (value === undefined || value === '') return undefined;
  const kinds = value.split(',').map((k) => k.trim());
  const allowed = ['status', 'message', 'artifact', 'tool', 'reasoning', 'error'];
  for (const k of kinds) {
    if (!allowed.includes(k)) {
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `"kind" expected one of ${allowed.join(', ')}, got ${describeValue(k)}`,
      );
    }
  }
  return kinds as EventKind[];
}

/** Hands the events after `through` to `listener`, a thousand at a time (trust outcomes a crash left unwritten). */
function replayTrust(store: Store, through: number, listener: (events: readonly EventV1[]) => void): void {
  let batch: EventV1[] = [];
  for (const { value } of store.events.getRange({ start: through + 1 })) {
    batch.push(value as EventV1);
    if (batch.length === 1000) {
      listener(batch);
      batch = [];
    }
  }
  if (batch.length > 0) listener(batch);
}

// The actor system: XState v5 actors addressed by DID or kind/id, with mailboxes, group commits,
// an outbox, durable timers and passivation.
import { type Actor, type AnyStateMachine, createActor } from 'xstate';
import { type Clock, systemClock } from '../clock.ts';
import { BATCH_TYPE } from '../envelope/envelope.ts';
import { AnxError } from '../errors.ts';
import type { EventInput, EventV1 } from '../events/event.ts';
import { EventLog } from '../events/log.ts';
import { CommitQueue, PerCommit, type StagedWrite } from '../store/commit-queue.ts';
import { lastNumericKey, type Store } from '../store/store.ts';
import { isKernelEffect, type KernelEffect } from './effects.ts';
import {
  ActorExistsError,
  ActorFailedError,
  CommitFailedError,
  MachineVersionError,
  MessageExpiredError,
  SystemStoppedError,
  UnknownActorError,
  UnknownMachineError,
} from './errors.ts';
import { Mailbox } from './mailbox.ts';
import { decodeKernelEnvelope, encodeKernelEnvelope, type KernelEnvelope, newMessageId } from './message.ts';
import { type TimerRecord, TimerService } from './timers.ts';

/** A machine the system can host, with the version recorded in every snapshot it persists. */

/**
 * The longest actor address (DIDs are about 60 characters, run and task addresses under 80): an
 * address is an LMDB key, and a longer string than a key can hold is no actor's.
 */
export const MAX_ADDRESS_CHARS = 256;

function addressable(address: unknown): address is string {
  return typeof address === 'string' && address.length <= MAX_ADDRESS_CHARS;
}

export interface MachineDefinition {
  kind: string;
  version: number;
  machine: AnyStateMachine;
  /** Input for a new actor of this kind at `address`, from what `spawn` was given. */
  input?: (address: string, init: unknown) => unknown;
  /**
   * Envelopes this machine can take several at a time: envelopes accepted together for an idle actor
   * of this kind that all pass are handed in one `anx.batch` event (`items`: the envelopes, in order),
   * one transition instead of one each. The machine must decide each item as it would decide it alone.
   */
  batch?: (envelope: KernelEnvelope) => boolean;
  /**
   * Context fields holding an object of entries by id (a run's stage executions) that are persisted one
   * record per entry next to the actor's record, written only when the machine has replaced the entry: a
   * transition that changes one entry of many writes that one, not the whole collection again. The
   * machine must replace an entry to change it, never mutate it in place (as `assign` with spread does);
   * entry ids are strings.
   */
  entryFields?: readonly string[];
}

/**
 * The event of several envelopes handed to a machine at once (see `MachineDefinition.batch`); no
 * message may carry this type (the envelope checks and the local API refuse it).
 */
export const BATCH_EVENT = BATCH_TYPE;

/** Envelopes taken from one mailbox as one batch at most, so a busy actor does not hold a whole turn. */
const BATCH_MAX = 256;

/**
 * Record sequence numbers (the last part of a record's key) are reserved this many at a time: `seq.records`
 * in `meta` is written once per block rather than in every commit that appends a record.
 */
export const RECORD_SEQ_BLOCK = 4096;

/** What the kernel persists per actor (short keys: this record is written on every transition). */
export interface ActorRecord {
  /** machine kind */
  k: string;
  /** machine version */
  mv: number;
  /** XState persisted snapshot */
  s: unknown;
  /** kernel status */
  st: 'active' | 'done' | 'error';
  /** pending timers with absolute deadlines */
  t?: TimerRecord[];
  /** error message when st is 'error' */
  e?: string;
  /**
   * For machines with `entryFields`: each such field's entry ids, in order. The field is left out of
   * `s.context`; each entry is the record at `[address, field, id]` in the same database.
   */
  p?: Record<string, string[]>;
}

/** Routes envelopes whose receiver is not on this host (the relay transport plugs in here). */
export interface RemoteRouter {
  /** Takes responsibility for the envelope, or returns false when the address is unknown everywhere. */
  route(envelope: KernelEnvelope, bytes: Uint8Array, outboxKey: number): boolean;
}

export interface ActorSystemOptions {
  store: Store;
  clock?: Clock;
  /** Live actors kept in memory before the least recently used idle ones are passivated. */
  maxActive?: number;
  /** Idle time after which an actor is passivated (ms). */
  idleMs?: number;
  /** Messages handled per scheduling turn before the group commit is started. */
  turnSize?: number;
}

interface EnvelopeMail {
  env: KernelEnvelope;
  outboxKey: number | undefined;
  /** The outbox write of an accepted envelope, while its commit has not started. */
  staged?: StagedWrite;
}

type Mail = EnvelopeMail | { timer: string } | { batch: EnvelopeMail[] };

type EmittedEvent = { type: string; [key: string]: unknown };

interface PendingSend {
  env: KernelEnvelope;
  bytes: Uint8Array;
  key: number | undefined;
  /** Its outbox write, while the group commit holding it has not started. */
  staged?: StagedWrite;
}

/** A record an actor appended to one of its collections, as committed (see `ActorSystem.onAppended`). */
export interface AppendedRecord {
  collection: string;
  owner: string;
  seq: number;
  value: unknown;
}

export type AppendListener = (records: readonly AppendedRecord[]) => void;

interface FollowUp {
  batch: number;
  /** Actors whose record must be written in this commit (and are released when it lands). */
  dirty: Set<LiveActor>;
  sends: PendingSend[];
}

interface LiveActor {
  address: string;
  def: MachineDefinition;
  /** The XState actor; undefined for a restored actor until its first event (see `hydrate`). */
  ref: Actor<AnyStateMachine> | undefined;
  /** The persisted snapshot a restored actor is created from on first use. */
  restored: unknown;
  durable: boolean;
  /** Created on first mail: most restored actors never get any before they are passivated again. */
  mailbox: Mailbox<Mail> | undefined;
  queued: boolean;
  /** Pending durable timers, created on first use. */
  timers: Map<string, TimerRecord & { ref?: unknown }> | undefined;
  /** Group commits holding this actor's writes that have not committed yet. */
  inflight: number;
  lastActive: number;
  status: ActorRecord['st'];
  /** Why the actor failed, when status is 'error'. */
  error?: string;
  /**
   * For machines with `entryFields`: the entry objects last staged for writing, by field and id. An entry
   * whose object is still the same is not written again. Undefined: write every entry.
   */
  entries?: Map<string, Map<string, unknown>>;
}

const IGNORE_ERRORS = { error: () => {} };

/** Never fires: XState's delays are taken over by the kernel's durable timers. */
const inertClock = { setTimeout: () => 0, clearTimeout: () => {} };

/** Summary of one actor for status and listings. */
export interface ActorInfo {
  address: string;
  kind: string;
  version: number;
  status: ActorRecord['st'];
  live: boolean;
  value: unknown;
}

/**
 * Hosts durable XState actors. Handling a message commits, in one group transaction, the actor's
 * new snapshot, the envelopes it sends (outbox), its events and the removal of the message it
 * handled from the outbox; only then are the sent envelopes dispatched. After a crash, `start()`
 * replays the outbox: a message is handled exactly once because its outbox entry disappears in the
 * same transaction as the handling.
 */
export class ActorSystem {
  readonly store: Store;
  readonly clock: Clock;
  readonly commits: CommitQueue;
  readonly events: EventLog;
  private readonly machines = new Map<string, MachineDefinition>();
  private readonly resolvers: Array<(kind: string) => MachineDefinition | undefined> = [];
  /** Live actors in least-recently-active order (a Map keeps insertion order). */
  private readonly live = new Map<string, LiveActor>();
  /** Actors that could not be restored, with the reason; their mail stays in the outbox. */
  private readonly refused = new Map<string, AnxError>();
  private readonly ready = new Mailbox<LiveActor>();
  private readonly timers: TimerService;
  private readonly maxActive: number;
  private readonly idleMs: number;
  private readonly turnSize: number;
  /** True while an actor handles a message: an accept made meanwhile queues its envelopes. */
  private handling = false;
  private outboxSeq: number;
  private recordSeq: number;
  /** The highest record sequence number `seq.records` has reserved (committed, or staged with its users). */
  private recordSeqReserved: number;
  private pumpScheduled = false;
  private stopped = false;
  private readonly stagedAccepts = new Set<string>();
  private quiesceWaiters: Array<() => void> = [];
  private fatal: unknown;
  private readonly fatalListeners: Array<(err: CommitFailedError) => void> = [];
  private sweepHandle: unknown;
  private followUp: FollowUp | undefined;
  private readonly appendListeners = new Set<AppendListener>();
  /**
   * The records appended in each group commit, told to `onAppended` listeners once it lands, before the
   * commit's other follow-ups: a record hands work on (a task to a worker), and what that starts joins the
   * next commit together with what the event listeners stage.
   */
  private readonly appended: PerCommit<AppendedRecord>;
  /**
   * Mail a durable actor sent to an idle local durable actor in the transition just handled: the
   * receiver takes it right after, in the same group commit (see `handOverTarget`).
   */
  private readonly handOvers: Array<{ live: LiveActor; mail: Mail }> = [];
  /** Hand-overs taken since the current top-level message, bounded by `turnSize`. */
  private handedOver = 0;
  /** True inside `handleNow`, the only place hand-overs are taken. */
  private handingOver = false;
  /** Sends waiting for their commit before they are routed, by receiver: later mail must not overtake them. */
  private readonly deferredTo = new Map<string, number>();
  /** Effects emitted by the actor handling the current event (actors handle one event at a time). */
  private sink: EmittedEvent[] = [];
  private readonly collect = (emitted: EmittedEvent): void => {
    this.sink.push(emitted);
  };
  router: RemoteRouter | undefined;
  /**
   * Asked before a committed envelope is dispatched: true keeps it in the outbox, held, until
   * `releaseHeld` (a frozen host holds worker commands this way). Only outbox envelopes are held,
   * so a held envelope survives a restart and is held again by the replay.
   */
  holdGate: ((envelope: KernelEnvelope) => boolean) | undefined;
  private readonly held = new Map<number, { env: KernelEnvelope; bytes: Uint8Array }>();

  constructor(options: ActorSystemOptions) {
    this.store = options.store;
    this.clock = options.clock ?? systemClock;
    this.maxActive = options.maxActive ?? 100_000;
    this.idleMs = options.idleMs ?? 5 * 60_000;
    this.turnSize = options.turnSize ?? 1024;
    this.commits = new CommitQueue(this.store.root);
    this.appended = new PerCommit(this.commits, (records) => this.tellAppended(records), true);
    this.commits.onFailure((err) => {
      if (this.fatal !== undefined) return;
      this.fatal = new CommitFailedError(err);
      // What was staged as written did not all land: any record still written rewrites every entry.
      for (const live of this.live.values()) live.entries = undefined;
      for (const listener of this.fatalListeners) {
        try {
          listener(this.fatal as CommitFailedError);
        } catch {
          // A listener's failure must not hide the others.
        }
      }
    });
    // Whoever starts a group commit (the kernel, a service staging its own writes), it carries the
    // records of the actors that changed and the record sequence they used.
    this.commits.beforeFlush(() => {
      this.stageDirtyRecords();
      if (this.recordSeq > this.recordSeqReserved) {
        this.recordSeqReserved = this.recordSeq + RECORD_SEQ_BLOCK;
        this.commits.put(this.store.meta, 'seq.records', this.recordSeqReserved);
      }
    });
    this.events = new EventLog(this.store, this.commits, this.clock);
    this.timers = new TimerService(this.clock, (address, id) => this.enqueueTimer(address, id));
    this.outboxSeq = lastNumericKey(this.store.outbox);
    // Past every number reserved before: some of the last block may go unused, none is used twice.
    this.recordSeq = (this.store.meta.get('seq.records') as number | undefined) ?? 0;
    this.recordSeqReserved = this.recordSeq;
  }

  /** Makes a machine kind available. Register every kind before `start()`. */
  register(def: MachineDefinition): void {
    this.machines.set(def.kind, def);
  }

  /**
   * Adds a lookup for kinds not registered up front: machines built at run time, such as a playbook
   * compiled to a statechart, whose definition the resolver keeps (and finds again after a restart).
   */
  addResolver(resolve: (kind: string) => MachineDefinition | undefined): void {
    this.resolvers.push(resolve);
  }

  machine(kind: string): MachineDefinition | undefined {
    const known = this.machines.get(kind);
    if (known !== undefined) return known;
    for (const resolve of this.resolvers) {
      const def = resolve(kind);
      if (def !== undefined) {
        this.machines.set(kind, def);
        return def;
      }
    }
    return undefined;
  }

  /**
   * Restores the host: re-arms every persisted timer, restores actors that have pending work and
   * replays the outbox in order. Actors without pending work stay passivated until their next message.
   */
  async start(): Promise<{ restored: number; replayed: number; refused: number }> {
    for (const { key, value } of this.store.timers.getRange({})) {
      const [at, address, id] = key as [number, string, string];
      void value;
      this.timers.schedule(address, id, at);
    }
    let replayed = 0;
    for (const { key, value } of this.store.outbox.getRange({})) {
      const env = decodeKernelEnvelope(value);
      this.route(env, value, key as number);
      replayed++;
    }
    this.schedulePump();
    this.scheduleSweep();
    return { restored: this.live.size, replayed, refused: this.refused.size };
  }

  /**
   * Restores every persisted actor into memory (for hosts that want all actors live, and for the
   * restore benchmark). Refused snapshots are reported, not thrown.
   */
  restoreAll(kind?: string): { restored: number; refused: AnxError[] } {
    let restored = 0;
    const refused: AnxError[] = [];
    for (const { key, value } of this.store.actors.getRange({})) {
      // Entry records (`entryFields`) have array keys; an actor's own record has its address.
      if (typeof key !== 'string') continue;
      const address = key;
      if (this.live.has(address)) continue;
      try {
        const live = this.activate(address, kind, value as ActorRecord);
        if (live !== undefined) restored++;
      } catch (err) {
        if (err instanceof AnxError) refused.push(err);
        else throw err;
      }
    }
    return { restored, refused };
  }

  /**
   * Creates a durable actor of `kind` at `address` and commits its initial snapshot (with whatever its
   * initial state emits). Resolves once committed.
   */
  async spawn(
    kind: string,
    address: string,
    init?: unknown,
    options: { durable?: boolean } = {},
  ): Promise<void> {
    this.assertRunning();
    const def = this.machine(kind);
    if (def === undefined) throw new UnknownMachineError(kind, address);
    if (this.live.has(address) || this.store.actors.doesExist(address)) throw new ActorExistsError(address);
    const live = this.instantiate(def, address, undefined, def.input ? def.input(address, init) : init);
    live.durable = options.durable ?? true;
    this.live.set(address, live);
    this.afterTransition(live, undefined);
    await this.commits.flush();
  }

  /**
   * Creates many durable actors in one group commit (bulk registration, e.g. importing a directory
   * of DIDs). Existing addresses are skipped. New actors are passivated at once: they cost no memory
   * until their first message.
   */
  async spawnMany(kind: string, entries: Iterable<{ address: string; init?: unknown }>): Promise<number> {
    this.assertRunning();
    const def = this.machine(kind);
    if (def === undefined) throw new UnknownMachineError(kind, '(bulk)');
    let created = 0;
    for (const { address, init } of entries) {
      if (this.live.has(address) || this.store.actors.doesExist(address)) continue;
      const live = this.instantiate(def, address, undefined, def.input ? def.input(address, init) : init);
      this.afterTransition(live, undefined);
      // Written now: the record must hold the running snapshot, not the stopped one.
      this.stageRecord(live);
      this.followUp?.dirty.delete(live);
      live.inflight--;
      live.ref?.stop();
      created++;
      if (this.commits.staged >= 50_000) await this.commits.flush();
    }
    await this.commits.flush();
    return created;
  }

  /**
   * Delivers an envelope in-process without persisting it: at-most-once, for ephemeral traffic
   * between actors that do not need to survive a crash (and for measuring the kernel's raw path).
   */
  tell(env: KernelEnvelope): void {
    this.assertRunning();
    const bytes = encodeKernelEnvelope(env);
    this.route(decodeKernelEnvelope(bytes), bytes, undefined);
  }

  /** True when an actor lives at `address` (in memory or passivated). */
  has(address: string): boolean {
    if (!addressable(address)) return false;
    return this.live.has(address) || this.store.actors.doesExist(address);
  }

  /** The persisted or live record summary of an actor. */
  info(address: string): ActorInfo | undefined {
    if (!addressable(address)) return undefined;
    const live = this.live.get(address);
    if (live !== undefined) {
      const snap = (live.ref?.getSnapshot() ?? live.restored) as { value?: unknown } | undefined;
      return {
        address,
        kind: live.def.kind,
        version: live.def.version,
        status: live.status,
        live: true,
        value: snap?.value,
      };
    }
    const record = this.store.actors.get(address) as ActorRecord | undefined;
    if (record === undefined) return undefined;
    return {
      address,
      kind: record.k,
      version: record.mv,
      status: record.st,
      live: false,
      value: (record.s as { value?: unknown } | undefined)?.value,
    };
  }

  /** The current snapshot (context, value) of an actor, activating it if passivated. */
  snapshot(address: string): { value: unknown; context: unknown; status: string } {
    const live = this.activate(address);
    if (live === undefined) throw new UnknownActorError(address);
    const snap = this.hydrate(live).getSnapshot() as { value: unknown; context: unknown; status: string };
    return { value: snap.value, context: snap.context, status: snap.status };
  }

  /** Addresses of persisted actors, optionally of one kind. */
  *addresses(kind?: string): Iterable<string> {
    for (const { key, value } of this.store.actors.getRange({})) {
      if (typeof key !== 'string') continue;
      if (kind === undefined || (value as ActorRecord).k === kind) yield key;
    }
  }

  /** An actor's records in one collection (e.g. a DID's inbox), oldest first. */
  records(collection: string, owner: string, options: { afterSeq?: number; limit?: number } = {}) {
    const out: Array<{ seq: number; value: unknown }> = [];
    for (const { key, value } of this.store.records.getRange({
      start: [collection, owner, (options.afterSeq ?? 0) + 1],
      end: [collection, owner, Number.MAX_SAFE_INTEGER],
      limit: options.limit,
    })) {
      out.push({ seq: (key as [string, string, number])[2], value });
    }
    return out;
  }

  countRecords(collection: string, owner: string): number {
    return this.store.records.getKeysCount({
      start: [collection, owner, 0],
      end: [collection, owner, Number.MAX_SAFE_INTEGER],
    });
  }

  /**
   * Accepts envelopes from outside the actors (the local API, a test, a bridge): each is committed
   * before this resolves. One for an idle local actor is handled at once, and its transition commits
   * with it (its outbox entry is then never written); the rest wait in the outbox and are dispatched
   * after the commit. Idempotent on (`to`, `id`): an envelope accepted before is reported as a
   * duplicate and not sent again. Envelopes `fresh` says yes to carry an id the caller has just made
   * (never accepted before, never to be sent again under it): they skip the duplicate check and leave
   * no marker.
   */
  async accept(
    envelopes: KernelEnvelope[],
    options: { fresh?: (envelope: KernelEnvelope) => boolean } = {},
  ): Promise<Array<{ id: string; duplicate: boolean }>> {
    this.assertRunning();
    const results: Array<{ id: string; duplicate: boolean }> = [];
    let handedOn = false;
    let handledNow = 0;
    // Envelopes for one idle actor whose machine takes them together, waiting to be handled as one.
    let group: { live: LiveActor; mails: EnvelopeMail[] } | undefined;
    const handleGroup = () => {
      if (group === undefined) return;
      const { live, mails } = group;
      group = undefined;
      handledNow += this.handleNow(live, mails.length === 1 ? (mails[0] as EnvelopeMail) : { batch: mails });
    };
    // Ids marked here stay marked in memory until their commit: one callback for all of them, after the
    // loop, so it runs with (or after) the commit of the last.
    const marked: string[] = [];
    for (const env of envelopes) {
      if (options.fresh?.(env) !== true) {
        const key = `${env.to}\u0000${env.id}`;
        if (this.stagedAccepts.has(key) || this.store.seen.doesExist([env.to, env.id])) {
          results.push({ id: env.id, duplicate: true });
          continue;
        }
        this.stagedAccepts.add(key);
        this.commits.put(this.store.seen, [env.to, env.id], env.ts);
        marked.push(key);
      }
      // Encoded only when needed: an envelope handled at once has its outbox write withdrawn unwritten.
      let encoded: Uint8Array | undefined;
      const bytes = () => {
        encoded ??= encodeKernelEnvelope(env);
        return encoded;
      };
      const outboxKey = ++this.outboxSeq;
      const staged = this.commits.putLazy(this.store.outbox, outboxKey, bytes);
      // A local actor takes the envelope now, so its transition joins the commit of the accept (one
      // fsync, and the outbox write is withdrawn when it is handled before that commit starts). Nothing
      // it sends leaves before that commit, and this call resolves only after it. Mail for other hosts
      // waits for the commit, so no host sees an envelope this one could still lose.
      const live = this.localTarget(env);
      if (group !== undefined && group.live !== live) handleGroup();
      if (live === undefined) this.commits.afterCommit(() => this.route(env, bytes(), outboxKey));
      else if (this.holdGate?.(env) === true) this.held.set(outboxKey, { env, bytes: bytes() });
      else if (
        !this.handling &&
        handledNow + (group?.mails.length ?? 0) < this.turnSize &&
        !live.queued &&
        (live.mailbox === undefined || live.mailbox.length === 0)
      ) {
        // Nothing waits before it: handled now (up to one turn's worth), so the next flush carries both;
        // a run of envelopes its machine takes together is handled as one.
        const mail: EnvelopeMail = { env, outboxKey, staged };
        if (this.takesTogether(live, env)) {
          group ??= { live, mails: [] };
          group.mails.push(mail);
        } else {
          handleGroup();
          handledNow += this.handleNow(live, mail);
        }
      } else {
        handleGroup();
        this.enqueue(live, { env, outboxKey, staged });
        handedOn = true;
      }
      results.push({ id: env.id, duplicate: false });
    }
    handleGroup();
    if (marked.length > 0)
      this.commits.afterCommit(() => {
        for (const key of marked) this.stagedAccepts.delete(key);
      });
    // Handled or handed on, the next pump turn starts the commit: accepts made in the same turn of the
    // event loop, and the transitions of that turn, share one group commit.
    if (handedOn || handledNow > 0) {
      const durable = this.commits.committed();
      this.schedulePump();
      await durable;
    } else await this.commits.flush();
    if (handledNow > 0) this.evictIfNeeded();
    return results;
  }

  /** The live local actor an accepted envelope goes to now, or undefined (remote, unknown, refused). */
  private localTarget(env: KernelEnvelope): LiveActor | undefined {
    if (this.refused.has(env.to)) return undefined;
    try {
      const live = this.activate(env.to);
      return live?.status === 'active' ? live : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * The receiver that takes a durable actor's send in the same group commit, or undefined when it must
   * wait for the commit and be routed then. Both transitions land in one transaction or neither does,
   * so nothing leaves the host earlier than it would have: the receiver's own sends, events and
   * notices still wait for that commit. Only a live, durable, idle local receiver with no earlier mail
   * still waiting for its commit (order per sender and receiver is kept), up to one turn's worth.
   */
  private handOverTarget(send: PendingSend): LiveActor | undefined {
    if (!this.handingOver || send.staged === undefined || this.handedOver >= this.turnSize) return undefined;
    if (this.deferredTo.has(send.env.to) || this.holdGate?.(send.env) === true) return undefined;
    const live = this.localTarget(send.env);
    if (live === undefined || !live.durable || live.queued) return undefined;
    return live.mailbox === undefined || live.mailbox.length === 0 ? live : undefined;
  }

  /**
   * Called by a remote router once the receiving host has committed an envelope it took: the
   * outbox entry is removed (durably) and the envelope will not be replayed. Until then it stays in
   * the outbox and is routed again at the next start: delivery is at-least-once, and receivers drop
   * duplicates by (`to`, `id`).
   */
  async acknowledge(outboxKeys: number[]): Promise<void> {
    for (const key of outboxKeys) this.commits.remove(this.store.outbox, key);
    await this.commits.flush();
  }

  /**
   * Resolves once every write staged so far is durable (starting its commit if none has): state read
   * from memory after this is at least as old on disk. Use before reading LMDB for data an actor's
   * state in memory already points at, and before showing such state to someone outside.
   */
  whenDurable(): Promise<void> {
    return this.commits.flush();
  }

  /** Builds an envelope with a fresh id and timestamp. */
  envelope(fields: Omit<KernelEnvelope, 'v' | 'id' | 'ts'> & { id?: string; ts?: number }): KernelEnvelope {
    return {
      v: 1,
      ...fields,
      id: fields.id ?? newMessageId(),
      ts: fields.ts ?? this.clock.now(),
    } as KernelEnvelope;
  }

  /** Appends a host-level event (not caused by an actor transition) and commits it. */
  async emitEvent(input: EventInput): Promise<EventV1> {
    const event = this.events.append(input);
    await this.commits.flush();
    return event;
  }

  /**
   * Hears the records actors append (an inbox message, say) once the transaction holding them commits,
   * before that commit's other follow-ups (event listeners included), each commit's records in order, with
   * the values as they were written: a listener need not read them back. A listener must not change them.
   * Returns an unsubscribe function.
   */
  onAppended(listener: AppendListener): () => void {
    this.appendListeners.add(listener);
    return () => this.appendListeners.delete(listener);
  }

  /**
   * Hears the failure that stops the system for good (a group commit that failed): from then on every
   * call throws it. The daemon logs it and exits, so a supervisor restarts it from what is on disk.
   */
  onFatal(listener: (err: CommitFailedError) => void): void {
    this.fatalListeners.push(listener);
  }

  /** Resolves when every mailbox is empty, no timer is due and every commit has landed. */
  async quiesce(): Promise<void> {
    for (;;) {
      if (this.fatal !== undefined) throw this.fatal;
      if (this.ready.length === 0 && !this.pumpScheduled) {
        await this.commits.drain();
        if (this.ready.length === 0 && !this.pumpScheduled) return;
      }
      await new Promise<void>((resolve) => this.quiesceWaiters.push(resolve));
    }
  }

  /** Number of actors held in memory. */
  get liveCount(): number {
    return this.live.size;
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Passivates every idle actor now (snapshot kept on disk, memory freed). Returns how many. */
  async passivateIdle(olderThanMs = 0): Promise<number> {
    await this.commits.drain();
    const cutoff = this.clock.now() - olderThanMs;
    let n = 0;
    for (const live of [...this.live.values()]) {
      if (live.lastActive <= cutoff && this.passivate(live)) n++;
    }
    return n;
  }

  /** Stops taking work, lets in-flight commits land and stops every live actor. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.timers.stop();
    if (this.sweepHandle !== undefined) this.clock.clearTimeout(this.sweepHandle);
    // A clean stop leaves the event indexes whole: nothing for the next start to read back.
    if (this.fatal === undefined) this.events.writeIndex();
    await this.commits.drain();
    for (const live of this.live.values()) live.ref?.stop();
    this.live.clear();
    this.wakeQuiesce();
  }

  // ---- internals ---------------------------------------------------------------------------

  private assertRunning(): void {
    if (this.stopped) throw new SystemStoppedError();
    if (this.fatal !== undefined) throw this.fatal;
  }

  private instantiate(def: MachineDefinition, address: string, snapshot: unknown, input: unknown): LiveActor {
    const live = this.liveActor(def, address, snapshot);
    live.ref = this.createRef(def, address, snapshot, input);
    return live;
  }

  private liveActor(def: MachineDefinition, address: string, restored: unknown): LiveActor {
    return {
      address,
      def,
      ref: undefined,
      restored,
      durable: true,
      mailbox: undefined,
      queued: false,
      timers: undefined,
      inflight: 0,
      lastActive: this.clock.now(),
      status: 'active',
    };
  }

  private createRef(
    def: MachineDefinition,
    address: string,
    snapshot: unknown,
    input: unknown,
  ): Actor<AnyStateMachine> {
    const actor = createActor(def.machine, {
      id: address,
      clock: inertClock,
      ...(snapshot === undefined ? { input } : { snapshot: snapshot as never }),
    });
    // One shared sink and observer for all actors: actors handle one event at a time, and per-actor
    // closures would cost memory and garbage for every restored actor.
    actor.on('*', this.collect);
    actor.subscribe(IGNORE_ERRORS);
    actor.start();
    return actor;
  }

  /**
   * The actor's XState actor, created from its persisted snapshot on first use: restoring a host
   * reads and checks every record, and pays for XState only for the actors that get work.
   */
  private hydrate(live: LiveActor): Actor<AnyStateMachine> {
    if (live.ref !== undefined) return live.ref;
    const ref = this.createRef(live.def, live.address, live.restored, undefined);
    const snap = ref.getSnapshot() as { status: string; error?: unknown };
    if (snap.status === 'error') {
      ref.stop();
      this.sink = [];
      throw snap.error instanceof Error ? snap.error : new Error(String(snap.error));
    }
    live.ref = ref;
    live.restored = undefined;
    // Restoring runs no entry actions; anything emitted anyway must not leak into another actor's commit.
    this.sink = [];
    return live.ref;
  }

  /**
   * The live actor at `address`, restoring it from its snapshot when passivated; undefined when no
   * such actor exists. Throws the refusal when its snapshot cannot be restored.
   */
  private activate(address: string, kind?: string, persisted?: ActorRecord): LiveActor | undefined {
    const existing = this.live.get(address);
    if (existing !== undefined) return existing;
    if (!addressable(address)) return undefined;
    const refusal = this.refused.get(address);
    if (refusal !== undefined) throw refusal;
    const record = persisted ?? (this.store.actors.get(address) as ActorRecord | undefined);
    if (record === undefined) return undefined;
    if (kind !== undefined && record.k !== kind) return undefined;
    const def = this.machine(record.k);
    let error: AnxError | undefined;
    if (def === undefined) error = new UnknownMachineError(record.k, address);
    else if (def.version !== record.mv)
      error = new MachineVersionError(record.k, address, record.mv, def.version);
    if (error !== undefined || def === undefined) {
      this.refuse(address, error as AnxError);
      throw error;
    }
    let snapshot = record.s;
    let entries: LiveActor['entries'];
    if (record.p !== undefined) {
      try {
        ({ snapshot, entries } = this.joinEntries(
          address,
          record as ActorRecord & { p: Record<string, string[]> },
        ));
      } catch (err) {
        this.refuse(address, err as AnxError);
        throw err;
      }
    }
    const live = this.liveActor(def, address, snapshot);
    live.entries = entries;
    live.status = record.st;
    if (record.t !== undefined && record.t.length > 0) live.timers = new Map(record.t.map((t) => [t.id, t]));
    this.live.set(address, live);
    return live;
  }

  private refuse(address: string, error: AnxError): void {
    this.refused.set(address, error);
    this.events.append({
      kind: 'error',
      actor: address,
      payload: { code: error.code, message: error.message, hint: error.hint },
    });
    void this.commits.flush();
  }

  /**
   * Dispatches the envelopes `holdGate` held, in outbox order, except those it holds still; `drop`
   * names those that are no longer wanted (removed from the outbox unsent). Returns how many went out.
   */
  releaseHeld(drop?: (envelope: KernelEnvelope) => boolean): number {
    let sent = 0;
    for (const [key, { env, bytes }] of [...this.held].sort(([a], [b]) => a - b)) {
      if (this.holdGate?.(env) === true) continue;
      this.held.delete(key);
      if (drop?.(env) === true) {
        this.commits.remove(this.store.outbox, key);
        continue;
      }
      this.route(env, bytes, key);
      sent++;
    }
    return sent;
  }

  /** Envelopes `holdGate` is holding now. */
  heldEnvelopes(): KernelEnvelope[] {
    return [...this.held.values()].map((h) => h.env);
  }

  /** Dispatches a committed envelope to a local mailbox or the remote router. */
  private route(env: KernelEnvelope, bytes: Uint8Array, outboxKey: number | undefined): void {
    if (outboxKey !== undefined && this.holdGate?.(env) === true) {
      this.held.set(outboxKey, { env, bytes });
      return;
    }
    let live: LiveActor | undefined;
    try {
      live = this.activate(env.to);
    } catch {
      // Refused actor: its mail stays in the outbox until a host that can restore it runs.
      return;
    }
    if (live !== undefined) {
      this.enqueue(live, { env, outboxKey });
      return;
    }
    if (this.router?.route(env, bytes, outboxKey ?? 0)) return;
    this.deadLetter(env, outboxKey, new UnknownActorError(env.to));
  }

  /** Drops an undeliverable envelope with an error event, removing it from the outbox. */
  private deadLetter(env: KernelEnvelope, outboxKey: number | undefined, error: AnxError): void {
    if (outboxKey !== undefined) this.commits.remove(this.store.outbox, outboxKey);
    this.events.append({
      kind: 'error',
      actor: env.to,
      ...(env.ctx?.run_id !== undefined ? { run_id: env.ctx.run_id } : {}),
      ...(env.ctx?.task_id !== undefined ? { task_id: env.ctx.task_id } : {}),
      payload: { code: error.code, message: error.message, id: env.id, from: env.from, type: env.type },
    });
    this.schedulePump();
  }

  private enqueue(live: LiveActor, mail: Mail): void {
    if (live.mailbox === undefined) live.mailbox = new Mailbox<Mail>();
    live.mailbox.push(mail);
    if (!live.queued) {
      live.queued = true;
      this.ready.push(live);
    }
    this.schedulePump();
  }

  private enqueueTimer(address: string, id: string): void {
    let live: LiveActor | undefined;
    try {
      live = this.activate(address);
    } catch {
      return;
    }
    if (live === undefined || live.timers?.has(id) !== true) return;
    this.enqueue(live, { timer: id });
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.stopped) return;
    this.pumpScheduled = true;
    setImmediate(() => this.pump());
  }

  /** One scheduling turn: handle up to `turnSize` messages round-robin, then start their group commit. */
  private pump(): void {
    this.pumpScheduled = false;
    if (this.stopped) return;
    let handled = 0;
    while (handled < this.turnSize) {
      const live = this.ready.shift();
      if (live === undefined) break;
      const mail = this.nextMail(live, this.turnSize - handled);
      if (mail !== undefined) handled += this.handleNow(live, mail);
      if (live.mailbox !== undefined && live.mailbox.length > 0) this.ready.push(live);
      else live.queued = false;
    }
    // Passivation waits for the commit: an actor is dropped from memory only once its writes are durable.
    void this.commits.flush().then(() => this.evictIfNeeded());
    if (this.ready.length > 0) this.schedulePump();
    else this.wakeQuiesce();
  }

  /**
   * The next mail of a queued actor: envelopes at the head of its mailbox that its machine takes
   * together come as one batch (at most `room`, and `BATCH_MAX` per pick so other actors get their turn).
   */
  private nextMail(live: LiveActor, room: number): Mail | undefined {
    const mailbox = live.mailbox;
    const first = mailbox?.shift();
    if (
      mailbox === undefined ||
      first === undefined ||
      !('env' in first) ||
      !this.takesTogether(live, first.env)
    )
      return first;
    const mails: EnvelopeMail[] = [first];
    const limit = Math.min(room, BATCH_MAX);
    while (mails.length < limit) {
      const next = mailbox.peek();
      if (next === undefined || !('env' in next) || !this.takesTogether(live, next.env)) break;
      mails.push(next);
      mailbox.shift();
    }
    return mails.length === 1 ? first : { batch: mails };
  }

  /** Whether the actor's machine takes this envelope in a batch (never the batch event itself). */
  private takesTogether(live: LiveActor, env: KernelEnvelope): boolean {
    return env.type !== BATCH_EVENT && live.def.batch?.(env) === true;
  }

  /**
   * Handles a message, then the mail its transition (and theirs, in turn) handed over to idle local
   * actors; returns how many messages were handled.
   */
  private handleNow(live: LiveActor, mail: Mail): number {
    this.handedOver = 0;
    this.handingOver = true;
    let handled = 0;
    try {
      this.handle(live, mail);
      handled += 'batch' in mail ? mail.batch.length : 1;
      for (let next = this.handOvers.shift(); next !== undefined; next = this.handOvers.shift()) {
        this.handle(next.live, next.mail);
        handled++;
      }
    } finally {
      this.handingOver = false;
      // Only after a throw: what was handed over still reaches its receiver, in order.
      for (const left of this.handOvers.splice(0)) this.enqueue(left.live, left.mail);
    }
    return handled;
  }

  private handle(live: LiveActor, mail: Mail): void {
    this.handling = true;
    try {
      this.handleMail(live, mail);
    } finally {
      this.handling = false;
    }
  }

  private handleMail(live: LiveActor, mail: Mail): void {
    if (this.refused.has(live.address)) return;
    let actor: Actor<AnyStateMachine>;
    try {
      actor = this.hydrate(live);
    } catch (err) {
      // A snapshot XState cannot restore: refused like an unknown version; its mail stays in the outbox.
      this.live.delete(live.address);
      this.refuse(
        live.address,
        new AnxError(
          'ANX_ACTOR_RESTORE',
          `actor "${live.address}" could not be restored: ${(err as Error).message}`,
          {
            hint: 'the persisted snapshot does not fit the registered machine; restore a backup or register the machine that wrote it',
          },
        ),
      );
      return;
    }
    if ('batch' in mail) {
      this.handleBatch(live, actor, mail.batch);
      return;
    }
    let event: EmittedEvent;
    let env: KernelEnvelope | undefined;
    let outboxKey: number | undefined;
    if ('timer' in mail) {
      const timer = live.timers?.get(mail.timer);
      if (timer === undefined) return;
      live.timers?.delete(mail.timer);
      // Gone from the index in the commit of the transition it causes; left there, it would be re-armed at
      // every start and could fire a later timer of the same id early.
      if (live.durable) this.commits.remove(this.store.timers, [timer.at, live.address, timer.id]);
      const scheduled = scheduledEvents(actor)[mail.timer];
      if (scheduled !== undefined) actor.system.scheduler.cancel(scheduled.source, mail.timer);
      event = timer.event;
    } else {
      env = mail.env;
      outboxKey = mail.outboxKey;
      if (env.exp !== undefined && env.exp < this.clock.now()) {
        this.deadLetter(env, outboxKey, new MessageExpiredError(env.id, env.exp));
        return;
      }
      // The kernel's own batch event, never a message: whatever entry let it in, no machine gets it.
      if (env.type === BATCH_EVENT) {
        this.deadLetter(env, outboxKey, reservedTypeError(env));
        return;
      }
      event = env as unknown as EmittedEvent;
    }
    if (live.status !== 'active') {
      if (env !== undefined) this.deadLetter(env, outboxKey, stoppedError(live));
      return;
    }
    live.lastActive = this.clock.now();
    actor.send(event);
    if ('env' in mail) this.handled(live, mail);
    this.afterTransition(live, env);
  }

  /**
   * Several envelopes in one `anx.batch` transition. An expired one (or any, once the actor stopped)
   * is dead-lettered in its place: the envelopes before it go first, as a batch of their own, so events
   * come in the order one transition each would give. Batch effects name no cause: the machine puts each
   * item's run and task on what it emits.
   */
  private handleBatch(live: LiveActor, actor: Actor<AnyStateMachine>, mails: EnvelopeMail[]): void {
    let run: EnvelopeMail[] = [];
    const send = () => {
      if (run.length === 0) return;
      const taken = run;
      run = [];
      // One envelope alone is handled as any other.
      if (taken.length === 1) return this.handleMail(live, taken[0] as EnvelopeMail);
      live.lastActive = this.clock.now();
      actor.send({ type: BATCH_EVENT, items: taken.map((m) => m.env) });
      for (const mail of taken) this.handled(live, mail);
      this.afterTransition(live, undefined);
    };
    for (const mail of mails) {
      const { env } = mail;
      if (live.status !== 'active') {
        send();
        this.deadLetter(env, mail.outboxKey, stoppedError(live));
      } else if (env.exp !== undefined && env.exp < this.clock.now()) {
        send();
        this.deadLetter(env, mail.outboxKey, new MessageExpiredError(env.id, env.exp));
      } else run.push(mail);
    }
    send();
  }

  /** A handled envelope leaves the outbox in the commit of its transition (never written, if not yet). */
  private handled(live: LiveActor, mail: EnvelopeMail): void {
    if (mail.outboxKey === undefined || !live.durable) return;
    if (mail.staged === undefined || !this.commits.withdraw(mail.staged))
      this.commits.remove(this.store.outbox, mail.outboxKey);
  }

  /** Stages the actor's new snapshot, timers, sent envelopes, records and events in the group commit. */
  private afterTransition(live: LiveActor, cause: KernelEnvelope | undefined): void {
    const snap = this.hydrate(live).getSnapshot() as { status: string; error?: unknown };
    const effects = this.sink;
    this.sink = [];
    if (snap.status === 'error') {
      live.status = 'error';
      const failure = new ActorFailedError(live.address, snap.error);
      this.events.append({
        kind: 'error',
        actor: live.address,
        payload: { code: failure.code, message: failure.message, cause_id: cause?.id },
      });
    } else if (snap.status === 'done') {
      live.status = 'done';
    }
    if (live.status === 'active') this.syncTimers(live);
    else this.clearTimers(live);
    const sends: PendingSend[] = [];
    for (const effect of effects) {
      if (!isKernelEffect(effect)) continue;
      this.applyEffect(live, effect as KernelEffect, cause, sends);
    }
    if (live.status === 'error')
      live.error = (snap.error as Error | undefined)?.message ?? String(snap.error);
    if (live.durable) {
      // The record itself is written once per group commit (see `stageDirtyRecords`): an actor that
      // handles many messages in one turn costs one snapshot, not one per message.
      const followUp = this.followUpOfBatch();
      if (!followUp.dirty.has(live)) {
        followUp.dirty.add(live);
        live.inflight++;
      }
      for (const send of sends) {
        const target = this.handOverTarget(send);
        if (target !== undefined) {
          this.handOvers.push({
            live: target,
            mail: { env: send.env, outboxKey: send.key, staged: send.staged },
          });
          this.handedOver++;
          continue;
        }
        followUp.sends.push(send);
        this.deferredTo.set(send.env.to, (this.deferredTo.get(send.env.to) ?? 0) + 1);
      }
    } else {
      for (const s of sends) this.route(s.env, s.bytes, s.key);
    }
  }

  private applyEffect(
    live: LiveActor,
    effect: KernelEffect,
    cause: KernelEnvelope | undefined,
    sends: PendingSend[],
  ): void {
    switch (effect.type) {
      case 'anx.send': {
        const env: KernelEnvelope = {
          v: 1,
          id: newMessageId(),
          type: effect.msgType,
          from: live.address,
          to: effect.to,
          ts: this.clock.now(),
        };
        if (effect.body !== undefined) env.body = effect.body;
        const ctx = effect.ctx ?? cause?.ctx;
        if (ctx !== undefined) env.ctx = ctx;
        if (effect.thread !== undefined) env.thread = effect.thread;
        if (effect.reply !== undefined) env.reply = effect.reply;
        if (effect.exp !== undefined) env.exp = effect.exp;
        const bytes = encodeKernelEnvelope(env);
        let key: number | undefined;
        let staged: StagedWrite | undefined;
        if (live.durable) {
          key = ++this.outboxSeq;
          staged = this.commits.putWithdrawable(this.store.outbox, key, bytes);
        }
        // In-process delivery decodes the committed bytes, exactly as a replay after a crash would.
        const send: PendingSend = { env: decodeKernelEnvelope(bytes), bytes, key };
        if (staged !== undefined) send.staged = staged;
        sends.push(send);
        return;
      }
      case 'anx.event': {
        // Ephemeral actors leave no trace: their events would outlive nothing else they did.
        if (!live.durable) return;
        const input: EventInput = { kind: effect.kind, actor: live.address, payload: effect.payload ?? null };
        const runId = effect.run_id ?? cause?.ctx?.run_id;
        if (runId !== undefined) input.run_id = runId;
        const taskId = effect.task_id ?? cause?.ctx?.task_id;
        if (taskId !== undefined) input.task_id = taskId;
        if (effect.team_run_id !== undefined) input.team_run_id = effect.team_run_id;
        if (effect.step !== undefined) input.step = effect.step;
        if (effect.metadata !== undefined) input.metadata = effect.metadata;
        this.events.append(input);
        return;
      }
      case 'anx.effects': {
        if (!Array.isArray(effect.effects)) return;
        for (const inner of effect.effects)
          if (isKernelEffect(inner) && inner.type !== 'anx.effects')
            this.applyEffect(live, inner, cause, sends);
        return;
      }
      case 'anx.append': {
        if (!live.durable) return;
        const seq = ++this.recordSeq;
        this.commits.put(this.store.records, [effect.collection, live.address, seq], effect.value);
        if (this.appendListeners.size > 0)
          this.appended.add({
            collection: effect.collection,
            owner: live.address,
            seq,
            value: effect.value,
          });
        return;
      }
    }
  }

  private tellAppended(records: readonly AppendedRecord[]): void {
    for (const listener of this.appendListeners) {
      try {
        listener(records);
      } catch {
        // A listener's failure must not disturb the kernel or the other listeners.
      }
    }
  }

  /** Reconciles the kernel's durable timers with the delays XState scheduled in this transition. */
  private syncTimers(live: LiveActor): void {
    const scheduled = scheduledEvents(this.hydrate(live));
    if (scheduled === NO_EVENTS && (live.timers === undefined || live.timers.size === 0)) return;
    if (live.timers === undefined) live.timers = new Map();
    const timers = live.timers;
    for (const id in scheduled) {
      const entry = scheduled[id]!;
      const known = timers.get(entry.id);
      if (known !== undefined && known.ref === entry) continue;
      if (known !== undefined && live.durable)
        this.commits.remove(this.store.timers, [known.at, live.address, known.id]);
      const at = this.clock.now() + entry.delay;
      const timer = { id: entry.id, at, event: entry.event as TimerRecord['event'], ref: entry as unknown };
      timers.set(entry.id, timer);
      if (live.durable) this.commits.put(this.store.timers, [at, live.address, entry.id], entry.event);
      this.timers.schedule(live.address, entry.id, at);
    }
    // Timers XState cancelled (state left before the deadline). Timers restored from disk are not in
    // XState's table; they stay armed and, if their state was left, fire as a harmless no-op event.
    for (const timer of [...timers.values()]) {
      if (timer.ref !== undefined && scheduled[timer.id] !== timer.ref) {
        timers.delete(timer.id);
        if (live.durable) this.commits.remove(this.store.timers, [timer.at, live.address, timer.id]);
        this.timers.cancel(live.address, timer.id);
      }
    }
  }

  private clearTimers(live: LiveActor): void {
    if (live.timers === undefined || live.timers.size === 0) return;
    for (const timer of live.timers.values()) {
      if (live.durable) this.commits.remove(this.store.timers, [timer.at, live.address, timer.id]);
      this.timers.cancel(live.address, timer.id);
    }
    live.timers.clear();
  }

  /** Periodically passivates actors idle for longer than `idleMs`. */
  private scheduleSweep(): void {
    if (this.stopped) return;
    this.sweepHandle = this.clock.setTimeout(
      () => {
        void this.passivateIdle(this.idleMs).finally(() => this.scheduleSweep());
      },
      Math.max(1_000, this.idleMs / 2),
    );
  }

  /**
   * What the current group commit must do once durable: release its actors for passivation and
   * dispatch the envelopes they sent. One record per commit rather than closures per transition.
   */
  private followUpOfBatch(): FollowUp {
    const batch = this.commits.batch;
    let followUp = this.followUp;
    if (followUp === undefined || followUp.batch !== batch) {
      const next: FollowUp = { batch, dirty: new Set(), sends: [] };
      this.followUp = next;
      this.commits.afterCommit(() => {
        for (const live of next.dirty) live.inflight--;
        for (const s of next.sends) {
          const left = (this.deferredTo.get(s.env.to) ?? 1) - 1;
          if (left === 0) this.deferredTo.delete(s.env.to);
          else this.deferredTo.set(s.env.to, left);
          this.route(s.env, s.bytes, s.key);
        }
      });
      followUp = next;
    }
    return followUp;
  }

  /** Writes the record of every actor that changed in the group commit about to start. */
  private stageDirtyRecords(): void {
    const followUp = this.followUp;
    if (followUp === undefined || followUp.batch !== this.commits.batch) return;
    for (const live of followUp.dirty) this.stageRecord(live);
  }

  /** Stages an actor's record: kind, machine version, persisted snapshot, status and timers. */
  private stageRecord(live: LiveActor): void {
    const record: ActorRecord = {
      k: live.def.kind,
      mv: live.def.version,
      s: undefined,
      st: live.status,
    };
    if (live.status === 'error') {
      // Keep the last good snapshot for diagnosis; the failed state itself cannot be restored.
      const previous = this.store.actors.get(live.address) as ActorRecord | undefined;
      record.s = previous?.s;
      if (previous?.p !== undefined) record.p = previous.p;
      record.e = live.error;
    } else {
      const snapshot = this.hydrate(live).getPersistedSnapshot();
      record.s = live.def.entryFields === undefined ? snapshot : this.stageEntries(live, snapshot, record);
    }
    if (live.timers !== undefined && live.timers.size > 0)
      record.t = [...live.timers.values()].map(({ id, at, event }) => ({ id, at, event }));
    this.commits.put(this.store.actors, live.address, record);
  }

  /**
   * Stages the entries of the actor's `entryFields` that the machine replaced since they were last staged
   * (and removes those it dropped); returns the snapshot without those fields, and lists their entry ids
   * in the record.
   */
  private stageEntries(live: LiveActor, snapshot: unknown, record: ActorRecord): unknown {
    const { context } = snapshot as { context: Record<string, unknown> };
    const rest = { ...context };
    const ids: Record<string, string[]> = {};
    const staged = live.entries ?? new Map<string, Map<string, unknown>>();
    for (const field of live.def.entryFields ?? []) {
      const before = staged.get(field);
      const now = new Map<string, unknown>();
      for (const [id, entry] of Object.entries((context[field] ?? {}) as Record<string, unknown>)) {
        if (entry === undefined) continue;
        if (before?.get(id) !== entry) this.commits.put(this.store.actors, [live.address, field, id], entry);
        now.set(id, entry);
      }
      if (before !== undefined)
        for (const id of before.keys())
          if (!now.has(id)) this.commits.remove(this.store.actors, [live.address, field, id]);
      staged.set(field, now);
      ids[field] = [...now.keys()];
      delete rest[field];
    }
    live.entries = staged;
    record.p = ids;
    return { ...(snapshot as object), context: rest };
  }

  /**
   * The persisted snapshot of a record whose `entryFields` are stored as records of their own, with the
   * entries read back in; throws a restore error when one the record lists is missing.
   */
  private joinEntries(
    address: string,
    record: ActorRecord & { p: Record<string, string[]> },
  ): { snapshot: unknown; entries: Map<string, Map<string, unknown>> } {
    const persisted = record.s as { context: Record<string, unknown> };
    const context = { ...persisted.context };
    const entries = new Map<string, Map<string, unknown>>();
    for (const [field, ids] of Object.entries(record.p)) {
      const byId = new Map<string, unknown>();
      for (const id of ids) {
        const entry = this.store.actors.get([address, field, id]);
        if (entry === undefined)
          throw new AnxError(
            'ANX_ACTOR_RESTORE',
            `actor "${address}" could not be restored: its record lists the entry ${field}/${id}, which is not in the data directory`,
            { hint: 'the data directory is damaged; restore it from a backup' },
          );
        byId.set(id, entry);
      }
      context[field] = Object.fromEntries(byId);
      entries.set(field, byId);
    }
    return { snapshot: { ...persisted, context }, entries };
  }

  /** Above `maxActive`, passivates the least recently active idle actors down to 90% of it. */
  private evictIfNeeded(): void {
    if (this.live.size <= this.maxActive) return;
    const target = Math.floor(this.maxActive * 0.9);
    const candidates = [...this.live.values()].sort((a, b) => a.lastActive - b.lastActive);
    for (const live of candidates) {
      if (this.live.size <= target) break;
      this.passivate(live);
    }
  }

  /** Drops an idle actor from memory; its snapshot and timers stay on disk. False if it is busy. */
  private passivate(live: LiveActor): boolean {
    if (
      (live.mailbox !== undefined && live.mailbox.length > 0) ||
      live.queued ||
      live.inflight > 0 ||
      !live.durable
    )
      return false;
    live.ref?.stop();
    this.live.delete(live.address);
    return true;
  }

  private wakeQuiesce(): void {
    if (this.quiesceWaiters.length === 0) return;
    const waiters = this.quiesceWaiters;
    this.quiesceWaiters = [];
    for (const w of waiters) w();
  }
}

const NO_EVENTS: Record<string, ScheduledEvent> = Object.freeze({}) as Record<string, ScheduledEvent>;

interface ScheduledEvent {
  id: string;
  delay: number;
  event: unknown;
  source: Actor<AnyStateMachine>;
}

/** XState's table of pending delayed events for an actor's system (read without copying). */
function scheduledEvents(actor: Actor<AnyStateMachine>): Record<string, ScheduledEvent> {
  const system = actor.system as unknown as {
    _snapshot: { _scheduledEvents: Record<string, ScheduledEvent> };
  };
  const all = system._snapshot._scheduledEvents;
  let empty = true;
  for (const _ in all) {
    empty = false;
    break;
  }
  if (empty) return NO_EVENTS;
  // Keyed by `${sessionId}.${id}` in XState; the kernel keys timers by the id alone.
  const out: Record<string, ScheduledEvent> = {};
  for (const key in all) {
    const entry = all[key]!;
    out[entry.id] = entry;
  }
  return out;
}

function reservedTypeError(env: KernelEnvelope): AnxError {
  return new AnxError(
    'ANX_ENVELOPE_RESERVED_TYPE',
    `message ${env.id} from ${env.from} has the type "${env.type}", the kernel's own event: dropped`,
    { hint: 'send messages under another type' },
  );
}

function stoppedError(live: LiveActor): AnxError {
  return new AnxError(
    'ANX_ACTOR_STOPPED',
    `actor "${live.address}" is ${live.status} and takes no more messages`,
  );
}

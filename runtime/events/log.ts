// The event log: EventV1 appended in the same transaction as the change that caused it, indexed for trace.
import type { Database, Key } from 'lmdb';
import type { Clock } from '../clock.ts';
import { type CommitQueue, PerCommit } from '../store/commit-queue.ts';
import { lastNumericKey, type Store } from '../store/store.ts';
import type { EventInput, EventKind, EventV1 } from './event.ts';

/** Filters for `trace`; all are optional and combine with AND. */
export interface TraceFilter {
  kinds?: EventKind[];
  actor?: string;
  /** Inclusive lower / exclusive upper bounds on `ts`. */
  since?: number;
  until?: number;
  /** Only events with `seq` greater than this (resuming a live stream). */
  afterSeq?: number;
  limit?: number;
}

export type EventListener = (events: readonly EventV1[]) => void;

/**
 * Index entries are written for this many events at a time, in the group commit of the event that fills
 * the tail; until then queries read them from memory, and a restart rebuilds them from the events
 * database (see `EventLog`). A handoff appends about six events, so most of its commits leave the three
 * index databases alone.
 */
export const INDEX_TAIL_EVENTS = 256;

/** The `meta` key under which the highest sequence number whose index entries are written is kept. */
export const INDEXED_THROUGH_KEY = 'events.indexed';

/** The index keys of one event not yet in the index databases. */
interface TailEntry {
  seq: number;
  run: string | undefined;
  task: string | undefined;
  actor: string | undefined;
}

type IndexField = 'run' | 'task' | 'actor';
const INDEX_FIELDS: readonly IndexField[] = ['run', 'task', 'actor'];

/**
 * Appends events through the commit queue so they share the transaction of the state change that
 * caused them; listeners hear of them only after that commit. Sequence numbers are dense and
 * monotonic per host; timestamps are made non-decreasing so time ranges are sequence ranges.
 *
 * The run, task and actor indexes trail the events by at most `INDEX_TAIL_EVENTS`: an event is durable
 * with its cause, and its index entries join a later group commit together with those of the events
 * before it, with the watermark `events.indexed` in `meta`. Queries merge the tail kept in memory with
 * the index databases, so what they return is the same as with every entry written at once; after a
 * crash the tail is read back from the events past the watermark.
 */
export class EventLog {
  private seq: number;
  private lastTs = 0;
  /** Every event up to this one has its index entries in the index databases (or staged there). */
  private indexedThrough: number;
  /** False until the watermark is in `meta` (a data directory from before the index tail has none). */
  private watermarkKept: boolean;
  /** Events past `indexedThrough`, in sequence order. */
  private tail: TailEntry[] = [];
  /** Entries staged into the index databases whose commit has not landed yet: queries still read them here. */
  private landing: TailEntry[] = [];
  private readonly listeners = new Set<EventListener>();
  /** Events staged in each group commit, announced together once it commits. */
  private readonly announce: PerCommit<EventV1>;

  constructor(
    private readonly store: Store,
    private readonly commits: CommitQueue,
    private readonly clock: Clock,
  ) {
    this.announce = new PerCommit(commits, (events) => this.notify(events));
    this.seq = lastNumericKey(store.events);
    if (this.seq > 0) this.lastTs = (store.events.get(this.seq) as EventV1 | undefined)?.ts ?? 0;
    const kept = store.meta.get(INDEXED_THROUGH_KEY) as number | undefined;
    // Without a watermark every event was indexed in its own transaction.
    this.watermarkKept = kept !== undefined;
    this.indexedThrough = kept ?? this.seq;
    for (const { value } of store.events.getRange({ start: this.indexedThrough + 1 }))
      this.tail.push(tailEntry(value as EventV1));
  }

  /** The sequence number of the newest staged event. */
  get lastSeq(): number {
    return this.seq;
  }

  /** Stages an event in the current group commit and returns it with its sequence number. */
  append(input: EventInput): EventV1 {
    const ts = Math.max(this.lastTs, input.ts ?? this.clock.now());
    this.lastTs = ts;
    // Built field by field: an object spread here showed up as a hot spot on the commit path.
    const event: EventV1 = {
      schema_version: '1',
      seq: ++this.seq,
      ts,
      kind: input.kind,
      payload: input.payload,
    };
    // Correlation ids are index keys: one that is not a string (from a careless caller or a peer)
    // is left out rather than allowed to fail the whole group commit.
    if (typeof input.actor === 'string') event.actor = input.actor;
    if (typeof input.run_id === 'string') event.run_id = input.run_id;
    if (typeof input.task_id === 'string') event.task_id = input.task_id;
    if (input.team_run_id !== undefined) event.team_run_id = input.team_run_id;
    if (input.step !== undefined) event.step = input.step;
    if (input.metadata !== undefined) event.metadata = input.metadata;
    this.commits.put(this.store.events, event.seq, event);
    this.tail.push(tailEntry(event));
    if (this.tail.length >= INDEX_TAIL_EVENTS) this.writeIndex();
    else if (!this.watermarkKept) this.keepWatermark();
    if (this.listeners.size > 0) this.announce.add(event);
    return event;
  }

  /**
   * Stages the index entries of the tail into the current group commit (the host does so when it
   * stops, so a clean shutdown leaves nothing to read back).
   */
  writeIndex(): void {
    const entries = this.tail;
    if (entries.length === 0) return;
    this.tail = [];
    const { store, commits } = this;
    for (const e of entries) {
      if (e.run !== undefined) commits.put(store.eventsByRun, [e.run, e.seq], null);
      if (e.task !== undefined) commits.put(store.eventsByTask, [e.task, e.seq], null);
      if (e.actor !== undefined) commits.put(store.eventsByActor, [e.actor, e.seq], null);
    }
    this.indexedThrough = (entries[entries.length - 1] as TailEntry).seq;
    this.keepWatermark();
    this.landing = this.landing.length === 0 ? entries : this.landing.concat(entries);
    const last = this.indexedThrough;
    commits.afterCommit(() => {
      let landed = 0;
      while (landed < this.landing.length && (this.landing[landed] as TailEntry).seq <= last) landed++;
      this.landing = this.landing.slice(landed);
    });
  }

  /** Hears every event after the transaction holding it commits. Returns an unsubscribe function. */
  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Events of one run, task or actor (whichever `id` names; a run id wins over a task id), in order.
   * `id` of `*` means every event of the host.
   */
  trace(id: string, filter: TraceFilter = {}): EventV1[] {
    const out: EventV1[] = [];
    const limit = filter.limit ?? Number.POSITIVE_INFINITY;
    for (const seq of this.seqsFor(id, filter.afterSeq ?? 0)) {
      const event = this.store.events.get(seq) as EventV1 | undefined;
      if (event === undefined) continue;
      if (filter.until !== undefined && event.ts >= filter.until) break;
      if (!matches(event, filter)) continue;
      out.push(event);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** How many events are indexed under `id` (run, task or actor): as many as `trace(id)` would read. */
  count(id: string): number {
    let n = 0;
    for (const _ of this.seqsFor(id, 0)) n++;
    return n;
  }

  private *seqsFor(id: string, afterSeq: number): Iterable<number> {
    if (id === '*') {
      for (const key of this.store.events.getKeys({ start: afterSeq + 1 })) yield key as number;
      return;
    }
    for (const field of INDEX_FIELDS) {
      let last = afterSeq;
      for (const key of this.index(field).getKeys({
        start: [id, afterSeq + 1],
        end: [id, Number.MAX_SAFE_INTEGER],
      })) {
        last = (key as Key[])[1] as number;
        yield last;
      }
      // Read after the database, so an entry that lands in between is not missed (and is yielded once).
      for (const seq of this.pendingSeqs(field, id, last)) {
        last = seq;
        yield seq;
      }
      if (last > afterSeq) return;
    }
  }

  /** Sequence numbers after `afterSeq` of the events under `id` whose index entries are not in the database yet. */
  private pendingSeqs(field: IndexField, id: string, afterSeq: number): number[] {
    const out: number[] = [];
    for (const entries of [this.landing, this.tail])
      for (const e of entries) if (e[field] === id && e.seq > afterSeq) out.push(e.seq);
    return out;
  }

  private index(field: IndexField): Database<null, Key> {
    if (field === 'run') return this.store.eventsByRun;
    return field === 'task' ? this.store.eventsByTask : this.store.eventsByActor;
  }

  private keepWatermark(): void {
    this.commits.put(this.store.meta, INDEXED_THROUGH_KEY, this.indexedThrough);
    this.watermarkKept = true;
  }

  private notify(events: readonly EventV1[]): void {
    for (const listener of this.listeners) {
      try {
        listener(events);
      } catch {
        // A listener's failure (a closed SSE stream, say) must not disturb the kernel.
      }
    }
  }
}

function tailEntry(event: EventV1): TailEntry {
  return { seq: event.seq, run: event.run_id, task: event.task_id, actor: event.actor };
}

function matches(event: EventV1, filter: TraceFilter): boolean {
  if (filter.kinds !== undefined && !filter.kinds.includes(event.kind)) return false;
  if (filter.actor !== undefined && event.actor !== filter.actor) return false;
  if (filter.since !== undefined && event.ts < filter.since) return false;
  return true;
}

// The event log: EventV1 appended in the same transaction as the change that caused it, indexed for trace.
import type { Key } from 'lmdb';
import type { Clock } from '../clock.ts';
import type { CommitQueue } from '../store/commit-queue.ts';
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
 * Appends events through the commit queue so they share the transaction of the state change that
 * caused them; listeners hear of them only after that commit. Sequence numbers are dense and
 * monotonic per host; timestamps are made non-decreasing so time ranges are sequence ranges.
 */
export class EventLog {
  private seq: number;
  private lastTs = 0;
  private readonly listeners = new Set<EventListener>();
  /** Events staged in the current group commit, announced together once it commits. */
  private announce: { batch: number; events: EventV1[] } | undefined;

  constructor(
    private readonly store: Store,
    private readonly commits: CommitQueue,
    private readonly clock: Clock,
  ) {
    this.seq = lastNumericKey(store.events);
    if (this.seq > 0) this.lastTs = (store.events.get(this.seq) as EventV1 | undefined)?.ts ?? 0;
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
    const { store, commits } = this;
    commits.put(store.events, event.seq, event);
    if (event.run_id !== undefined) commits.put(store.eventsByRun, [event.run_id, event.seq], null);
    if (event.task_id !== undefined) commits.put(store.eventsByTask, [event.task_id, event.seq], null);
    if (event.actor !== undefined) commits.put(store.eventsByActor, [event.actor, event.seq], null);
    if (this.listeners.size > 0) this.queueAnnouncement(event);
    return event;
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

  /** How many events are indexed under `id` (run, task or actor). */
  count(id: string): number {
    for (const index of [this.store.eventsByRun, this.store.eventsByTask, this.store.eventsByActor]) {
      const n = index.getKeysCount({ start: [id, 0], end: [id, Number.MAX_SAFE_INTEGER] });
      if (n > 0) return n;
    }
    return 0;
  }

  private *seqsFor(id: string, afterSeq: number): Iterable<number> {
    if (id === '*') {
      for (const key of this.store.events.getKeys({ start: afterSeq + 1 })) yield key as number;
      return;
    }
    for (const index of [this.store.eventsByRun, this.store.eventsByTask, this.store.eventsByActor]) {
      let any = false;
      for (const key of index.getKeys({ start: [id, afterSeq + 1], end: [id, Number.MAX_SAFE_INTEGER] })) {
        any = true;
        yield (key as Key[])[1] as number;
      }
      if (any) return;
    }
  }

  private queueAnnouncement(event: EventV1): void {
    const batch = this.commits.batch;
    if (this.announce === undefined || this.announce.batch !== batch) {
      const pending = { batch, events: [event] };
      this.announce = pending;
      this.commits.afterCommit(() => this.notify(pending.events));
    } else {
      this.announce.events.push(event);
    }
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

function matches(event: EventV1, filter: TraceFilter): boolean {
  if (filter.kinds !== undefined && !filter.kinds.includes(event.kind)) return false;
  if (filter.actor !== undefined && event.actor !== filter.actor) return false;
  if (filter.since !== undefined && event.ts < filter.since) return false;
  return true;
}

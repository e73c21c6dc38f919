// The timeline: EventV1 rows as `anx-runtime trace` prints them, filtered, in a virtualised list that draws only what is visible.

import { formatEvent } from '../../runtime/cli/format.ts';
import type { EventV1 } from '../../runtime/events/event.ts';

/** What the timeline shows; every field is optional and they combine with AND. */
export interface TimelineFilter {
  kinds?: ReadonlySet<string>;
  /** Substring of the actor address. */
  actor?: string;
  /** Substring of a status event's `payload.state` (`stage.`, `run.aborted`); other kinds never match. */
  status?: string;
  /** Inclusive lower and exclusive upper bounds on `ts`, as `trace --since/--until` take them. */
  since?: number;
  until?: number;
}

/** The trace line of an event: the same formatter as the CLI, so both read alike. */
export const eventLine = formatEvent;

export function matchesFilter(e: EventV1, f: TimelineFilter): boolean {
  if (f.kinds !== undefined && f.kinds.size > 0 && !f.kinds.has(e.kind)) return false;
  if (f.actor !== undefined && f.actor !== '' && !(e.actor ?? '').includes(f.actor)) return false;
  if (f.status !== undefined && f.status !== '') {
    const state = (e.payload as { state?: unknown } | null)?.state;
    if (e.kind !== 'status' || typeof state !== 'string' || !state.includes(f.status)) return false;
  }
  if (f.since !== undefined && e.ts < f.since) return false;
  if (f.until !== undefined && e.ts >= f.until) return false;
  return true;
}

/** The rows `[first, last)` a viewport shows, with `overscan` extra rows either side. */
export function visibleWindow(
  scrollTop: number,
  viewportHeight: number,
  rowHeight: number,
  count: number,
  overscan = 10,
): { first: number; last: number } {
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const last = Math.min(count, Math.ceil((scrollTop + viewportHeight) / rowHeight) + overscan);
  return { first, last: Math.max(first, last) };
}

/**
 * Events of one id (run, task, actor or `*`) kept in sequence order, deduplicated by `seq`, with
 * the filtered view recomputed only when the filter changes (appends are filtered as they arrive).
 */
export class TimelineModel {
  private readonly all: EventV1[] = [];
  private readonly seen = new Set<number>();
  private view: EventV1[] = [];
  private filter: TimelineFilter = {};

  get size(): number {
    return this.all.length;
  }

  get rows(): readonly EventV1[] {
    return this.view;
  }

  get lastSeq(): number {
    return this.all[this.all.length - 1]?.seq ?? 0;
  }

  get events(): readonly EventV1[] {
    return this.all;
  }

  setFilter(filter: TimelineFilter): void {
    this.filter = filter;
    this.view = this.all.filter((e) => matchesFilter(e, filter));
  }

  /** Adds events; returns how many were new. Out-of-order arrivals are put in place. */
  add(events: readonly EventV1[]): number {
    let added = 0;
    let sorted = true;
    for (const e of events) {
      if (this.seen.has(e.seq)) continue;
      this.seen.add(e.seq);
      const last = this.all[this.all.length - 1];
      if (last !== undefined && last.seq > e.seq) sorted = false;
      this.all.push(e);
      added++;
      if (sorted && matchesFilter(e, this.filter)) this.view.push(e);
    }
    if (!sorted) {
      this.all.sort((x, y) => x.seq - y.seq);
      this.view = this.all.filter((e) => matchesFilter(e, this.filter));
    }
    return added;
  }

  clear(): void {
    this.all.length = 0;
    this.seen.clear();
    this.view = [];
  }
}

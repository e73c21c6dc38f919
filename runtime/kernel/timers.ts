// Durable timers: absolute deadlines kept by the kernel (XState's snapshot does not carry pending delays).
import type { Clock } from '../clock.ts';

/** A pending delayed event of one actor. `at` is an absolute deadline in ms since the epoch. */
export interface TimerRecord {
  id: string;
  at: number;
  event: { type: string; [key: string]: unknown };
}

interface Entry {
  at: number;
  address: string;
  id: string;
}

/**
 * A min-heap of deadlines with one real timer armed for the earliest. Cancelled entries are left in
 * the heap and skipped when they surface (the `live` map is the truth), which keeps cancel O(1).
 */
export class TimerService {
  private heap: Entry[] = [];
  private readonly live = new Map<string, number>();
  private armedAt = Number.POSITIVE_INFINITY;
  private handle: unknown;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly fire: (address: string, id: string) => void,
  ) {}

  get size(): number {
    return this.live.size;
  }

  /** Schedules (or moves) the timer `id` of `address` to fire at `at`. */
  schedule(address: string, id: string, at: number): void {
    const key = timerKey(address, id);
    if (this.live.get(key) === at) return;
    this.live.set(key, at);
    this.push({ at, address, id });
    if (at < this.armedAt) this.arm();
  }

  cancel(address: string, id: string): void {
    this.live.delete(timerKey(address, id));
  }

  stop(): void {
    this.stopped = true;
    if (this.handle !== undefined) this.clock.clearTimeout(this.handle);
    this.handle = undefined;
  }

  private arm(): void {
    if (this.stopped) return;
    if (this.handle !== undefined) this.clock.clearTimeout(this.handle);
    this.handle = undefined;
    this.armedAt = Number.POSITIVE_INFINITY;
    const next = this.peekLive();
    if (next === undefined) return;
    this.armedAt = next.at;
    this.handle = this.clock.setTimeout(() => this.onTimer(), next.at - this.clock.now());
  }

  private onTimer(): void {
    this.handle = undefined;
    this.armedAt = Number.POSITIVE_INFINITY;
    const now = this.clock.now();
    for (;;) {
      const next = this.peekLive();
      if (next === undefined || next.at > now) break;
      this.pop();
      this.live.delete(timerKey(next.address, next.id));
      this.fire(next.address, next.id);
    }
    this.arm();
  }

  /** The earliest entry still live, discarding stale ones on the way. */
  private peekLive(): Entry | undefined {
    for (;;) {
      const top = this.heap[0];
      if (top === undefined) return undefined;
      if (this.live.get(timerKey(top.address, top.id)) === top.at) return top;
      this.pop();
    }
  }

  private push(entry: Entry): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((heap[parent] as Entry).at <= entry.at) break;
      heap[i] = heap[parent] as Entry;
      i = parent;
    }
    heap[i] = entry;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child =
        right < heap.length && (heap[right] as Entry).at < (heap[left] as Entry).at ? right : left;
      if ((heap[child] as Entry).at >= last.at) break;
      heap[i] = heap[child] as Entry;
      i = child;
    }
    heap[i] = last;
  }
}

function timerKey(address: string, id: string): string {
  return `${address}\u0000${id}`;
}

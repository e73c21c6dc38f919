// Watches local DIDs' inboxes and hands new records of chosen types to host-side consumers, after their commit.
import type { EventV1 } from '../runtime/events/event.ts';
import type { ActorSystem } from '../runtime/kernel/actor-system.ts';

/** An inbox record as the DID actor appends it. */
export interface InboxRecord {
  seq: number;
  id: string;
  type: string;
  from: string;
  ts: number;
  ctx?: Record<string, string>;
  body: unknown;
}

type Consumer = { types: ReadonlySet<string>; handle: (did: string, record: InboxRecord) => void };

/**
 * A DID actor announces each stored message with a `message` event, committed in the same transaction
 * as the inbox record; the tap hears the event after that commit and reads the records it has not seen
 * yet. A new consumer first gets every record already in the inbox, so nothing committed before it
 * registered (or before a crash) is missed: consumers decide what is still to do.
 */
export class InboxTap {
  private readonly consumers = new Map<string, Set<Consumer>>();
  private readonly cursor = new Map<string, number>();
  private readonly unsubscribe: () => void;

  constructor(private readonly system: ActorSystem) {
    this.unsubscribe = system.events.subscribe((events) => this.onEvents(events));
  }

  /** Hands `handle` every record of `types` in `did`'s inbox, those there now and those to come. */
  watch(did: string, types: readonly string[], handle: Consumer['handle']): () => void {
    const consumer: Consumer = { types: new Set(types), handle };
    let set = this.consumers.get(did);
    if (set === undefined) {
      set = new Set();
      this.consumers.set(did, set);
    }
    set.add(consumer);
    // Catch up on what is already there, for this consumer only.
    for (const { seq, value } of this.system.records('inbox', did)) {
      const record = { seq, ...(value as Omit<InboxRecord, 'seq'>) };
      if (consumer.types.has(record.type)) this.deliver(consumer, did, record);
      if (seq > (this.cursor.get(did) ?? 0)) this.cursor.set(did, seq);
    }
    return () => {
      set.delete(consumer);
    };
  }

  watching(did: string): boolean {
    return (this.consumers.get(did)?.size ?? 0) > 0;
  }

  close(): void {
    this.unsubscribe();
  }

  private onEvents(events: readonly EventV1[]): void {
    let touched: Set<string> | undefined;
    for (const e of events) {
      if (e.kind !== 'message' || e.actor === undefined || !this.consumers.has(e.actor)) continue;
      touched ??= new Set();
      touched.add(e.actor);
    }
    if (touched === undefined) return;
    for (const did of touched) this.scan(did);
  }

  private scan(did: string): void {
    const consumers = this.consumers.get(did);
    if (consumers === undefined || consumers.size === 0) return;
    let last = this.cursor.get(did) ?? 0;
    for (const { seq, value } of this.system.records('inbox', did, { afterSeq: last })) {
      last = seq;
      const record = { seq, ...(value as Omit<InboxRecord, 'seq'>) };
      for (const c of consumers) if (c.types.has(record.type)) this.deliver(c, did, record);
    }
    this.cursor.set(did, last);
  }

  private deliver(consumer: Consumer, did: string, record: InboxRecord): void {
    try {
      consumer.handle(did, record);
    } catch {
      // A consumer's failure must not stop the others or the kernel's listeners.
    }
  }
}

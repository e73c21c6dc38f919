// Watches local DIDs' inboxes and hands new records of chosen types to host-side consumers, after their commit.
import type { ActorSystem, AppendedRecord } from '../runtime/kernel/actor-system.ts';

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
 * The kernel tells the tap of every record an actor appends once the transaction holding it commits
 * (`ActorSystem.onAppended`), with the value as written, so nothing is read back. A new consumer first
 * gets every record already in the inbox, so nothing committed before it registered (or before a crash)
 * is missed: consumers decide what is still to do.
 */
export class InboxTap {
  private readonly consumers = new Map<string, Set<Consumer>>();
  /** Per watched DID, the last inbox record handed over (records are numbered in commit order). */
  private readonly cursor = new Map<string, number>();
  private readonly unsubscribe: () => void;

  constructor(private readonly system: ActorSystem) {
    this.unsubscribe = system.onAppended((records) => this.onAppended(records));
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

  private onAppended(records: readonly AppendedRecord[]): void {
    for (const { collection, owner, seq, value } of records) {
      if (collection !== 'inbox') continue;
      const consumers = this.consumers.get(owner);
      if (consumers === undefined || consumers.size === 0) continue;
      // A consumer that registered after this commit already got the record from its catch-up read.
      if (seq <= (this.cursor.get(owner) ?? 0)) continue;
      this.cursor.set(owner, seq);
      const record = { seq, ...(value as Omit<InboxRecord, 'seq'>) };
      for (const c of consumers) if (c.types.has(record.type)) this.deliver(c, owner, record);
    }
  }

  private deliver(consumer: Consumer, did: string, record: InboxRecord): void {
    try {
      consumer.handle(did, record);
    } catch {
      // A consumer's failure must not stop the others or the kernel's listeners.
    }
  }
}

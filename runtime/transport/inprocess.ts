// The in-process transport: hosts in one process exchange frames through a shared switchboard (tests, embedding).
import {
  type InboundFrame,
  type Subscription,
  type Transport,
  TransportClosedError,
  TransportNoRespondersError,
  type TransportStatus,
  TransportTimeoutError,
} from './transport.ts';

type Handler = (frame: InboundFrame) => void;

/** The shared medium of in-process transports: addresses to handlers, delivered asynchronously in order. */
export class Switchboard {
  readonly handlers = new Map<string, Set<Handler>>();
  readonly presence = new Set<(hostId: string, data: Uint8Array) => void>();
  /** Last heartbeat of each host, replayed to a new watcher (as the NATS transport's presence query does). */
  readonly lastHeartbeat = new Map<string, Uint8Array>();
  private queue: Array<() => void> = [];
  private scheduled = false;

  /** Delivery happens on a later tick, in send order, as it would over a network. */
  post(fn: () => void): void {
    this.queue.push(fn);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const queue = this.queue;
      this.queue = [];
      for (const f of queue) f();
    });
  }

  deliver(address: string, frame: InboundFrame): boolean {
    const set = this.handlers.get(address);
    if (set === undefined || set.size === 0) return false;
    for (const h of set) h({ data: new Uint8Array(frame.data), reply: frame.reply });
    return true;
  }
}

let replySeq = 0;

/**
 * One host's end of a `Switchboard`. Frames are copied on delivery, so a receiver never shares
 * memory with the sender.
 *
 * @example
 * ```ts
 * const board = new Switchboard();
 * const a = new InProcessTransport(board);
 * const b = new InProcessTransport(board);
 * ```
 */
export class InProcessTransport implements Transport {
  readonly kind = 'inprocess' as const;
  private closed = false;
  private readonly statusHandlers = new Set<(s: TransportStatus) => void>();
  private readonly subs = new Set<Subscription>();

  constructor(private readonly board: Switchboard) {}

  get status(): TransportStatus {
    return this.closed ? 'closed' : 'connected';
  }

  sendToDid(did: string, data: Uint8Array, reply?: string): void {
    this.send(`did:${did}`, data, reply);
  }

  sendToHost(hostId: string, data: Uint8Array): void {
    this.send(this.hostReply(hostId), data, undefined);
  }

  hostReply(hostId: string): string {
    return `host:${hostId}`;
  }

  listenDid(did: string, handler: Handler): Subscription {
    return this.listen(`did:${did}`, handler);
  }

  listenHost(hostId: string, handler: Handler): Subscription {
    return this.listen(this.hostReply(hostId), handler);
  }

  request(did: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new TransportClosedError());
    const reply = `reply:${++replySeq}`;
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        sub.unsubscribe();
        reject(new TransportTimeoutError(`request to ${did}`, timeoutMs));
      }, timeoutMs);
      const sub = this.listen(reply, (frame) => {
        clearTimeout(timer);
        sub.unsubscribe();
        resolve(frame.data);
      });
      const copy = new Uint8Array(data);
      this.board.post(() => {
        if (!this.board.deliver(`did:${did}`, { data: copy, reply })) {
          clearTimeout(timer);
          sub.unsubscribe();
          reject(new TransportNoRespondersError(`request to ${did}`));
        }
      });
    });
  }

  respond(reply: string, data: Uint8Array): void {
    this.send(reply, data, undefined);
  }

  announce(hostId: string, heartbeat: Uint8Array): void {
    if (this.closed) return;
    const copy = new Uint8Array(heartbeat);
    this.board.lastHeartbeat.set(hostId, copy);
    this.board.post(() => {
      for (const h of this.board.presence) h(hostId, new Uint8Array(copy));
    });
  }

  watchPresence(handler: (hostId: string, heartbeat: Uint8Array) => void): Subscription {
    this.board.presence.add(handler);
    const known = [...this.board.lastHeartbeat];
    this.board.post(() => {
      for (const [hostId, data] of known) handler(hostId, new Uint8Array(data));
    });
    return this.track({ unsubscribe: () => this.board.presence.delete(handler) });
  }

  onStatus(handler: (status: TransportStatus) => void): Subscription {
    this.statusHandlers.add(handler);
    return { unsubscribe: () => this.statusHandlers.delete(handler) };
  }

  async flush(): Promise<void> {
    await new Promise((r) => setImmediate(r));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const sub of [...this.subs]) sub.unsubscribe();
    for (const h of this.statusHandlers) h('closed');
  }

  private send(address: string, data: Uint8Array, reply: string | undefined): void {
    if (this.closed) return;
    const copy = new Uint8Array(data);
    this.board.post(() => this.board.deliver(address, { data: copy, reply }));
  }

  private listen(address: string, handler: Handler): Subscription {
    let set = this.board.handlers.get(address);
    if (set === undefined) {
      set = new Set();
      this.board.handlers.set(address, set);
    }
    set.add(handler);
    const sub = this.track({
      unsubscribe: () => {
        set.delete(handler);
        if (set.size === 0) this.board.handlers.delete(address);
      },
    });
    return sub;
  }

  private track(sub: Subscription): Subscription {
    const tracked: Subscription = {
      unsubscribe: () => {
        sub.unsubscribe();
        this.subs.delete(tracked);
      },
    };
    this.subs.add(tracked);
    return tracked;
  }
}

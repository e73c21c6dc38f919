// The transport seam: how a host's frames reach other hosts (in-process for tests and embedding, NATS for the relay).
import { AnxError } from '../errors.ts';

/** A frame that arrived for one of this host's DIDs or for the host itself. */
export interface InboundFrame {
  data: Uint8Array;
  /** Where an answer goes (`respond(reply, …)`), when the sender asked for one. */
  reply: string | undefined;
}

export interface Subscription {
  unsubscribe(): void;
}

/** Connection state as the host sees it: `connected` means frames can leave now. */
export type TransportStatus = 'connected' | 'disconnected' | 'closed';

/**
 * Moves opaque frames between hosts. The transport sees addressing only (a DID's inbox, a host id);
 * frames are sealed or session-encrypted before they get here. Delivery is best effort and ordered
 * per sender and receiver: the relay protocol above adds acknowledgements and retries.
 *
 * @example
 * ```ts
 * const sub = transport.listenDid(bob, (frame) => handle(frame.data));
 * transport.sendToDid(bob, frame, transport.hostReply(myHostId));
 * ```
 */
export interface Transport {
  readonly kind: 'inprocess' | 'nats';
  /** Sends a frame to a DID's inbox; `reply` (from `hostReply`) says where answers go. */
  sendToDid(did: string, data: Uint8Array, reply?: string): void;
  /** Sends a frame to a host's control address. */
  sendToHost(hostId: string, data: Uint8Array): void;
  /** The reply address that routes to `hostId`'s control subscription. */
  hostReply(hostId: string): string;
  /** Receives frames sent to a DID's inbox. One host subscribes each of its DIDs. */
  listenDid(did: string, handler: (frame: InboundFrame) => void): Subscription;
  /** Receives frames sent to this host's control address. */
  listenHost(hostId: string, handler: (frame: InboundFrame) => void): Subscription;
  /** Sends a frame to a DID's inbox and waits for one answer. Rejects with `TransportTimeoutError`. */
  request(did: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** Answers a frame that carried a reply address. */
  respond(reply: string, data: Uint8Array): void;
  /** Publishes a presence heartbeat of `hostId` to every watcher. */
  announce(hostId: string, heartbeat: Uint8Array): void;
  /** Receives every host's heartbeats (its own included). */
  watchPresence(handler: (hostId: string, heartbeat: Uint8Array) => void): Subscription;
  /** Told when the link to the relay goes up or down. */
  onStatus(handler: (status: TransportStatus) => void): Subscription;
  readonly status: TransportStatus;
  /** Name of the relay server (a NATS leaf, or the hub) this host is connected through, when known. */
  readonly server?: string | undefined;
  /** Resolves when everything sent so far has left this process. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Base of the transport's errors. */
export class TransportError extends AnxError {}

/** No answer within the time allowed (`ANX_TRANSPORT_TIMEOUT`). */
export class TransportTimeoutError extends TransportError {
  constructor(what: string, timeoutMs: number) {
    super('ANX_TRANSPORT_TIMEOUT', `${what} expected an answer within ${timeoutMs} ms, got none`, {
      hint: 'check that the peer host is running and connected to the relay',
    });
  }
}

/** Nobody listens at that address right now (`ANX_TRANSPORT_NO_RESPONDERS`). */
export class TransportNoRespondersError extends TransportError {
  constructor(what: string) {
    super('ANX_TRANSPORT_NO_RESPONDERS', `${what} expected a listener, got none`, {
      hint: 'the DID is offline: send it mail instead, or wait until it is online',
    });
  }
}

/** The transport was closed (`ANX_TRANSPORT_CLOSED`). */
export class TransportClosedError extends TransportError {
  constructor() {
    super('ANX_TRANSPORT_CLOSED', 'the transport is closed');
  }
}

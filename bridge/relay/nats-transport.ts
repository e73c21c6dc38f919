// The NATS transport: frames to per-DID inbox subjects and host control subjects through a leaf node of the relay.
import { connect, type NatsConnection, type Subscription as NatsSub } from '@nats-io/transport-node';
import {
  type InboundFrame,
  type Subscription,
  type Transport,
  TransportClosedError,
  TransportError,
  TransportNoRespondersError,
  type TransportStatus,
  TransportTimeoutError,
} from '../../runtime/transport/transport.ts';
import { hostSubject, inboxSubject, PRESENCE_QUERY, PRESENCE_WILDCARD, presenceSubject } from './subjects.ts';

export interface NatsTransportOptions {
  /** `nats://host:port` of the leaf node (or hub) to use. */
  servers: string | string[];
  /** Connection name shown in the server's monitoring. */
  name?: string;
  user?: string;
  pass?: string;
}

/** When a new presence watcher asks again for heartbeats announced before it began. */
const PRESENCE_REASK_MS = [250, 1_000, 3_000];
/** Shortest time between two answers of a host to presence queries. */
export const PRESENCE_ANSWER_MS = 200;

/**
 * Frames over core NATS. Publishing never waits for the relay: frames queue in the client while it
 * reconnects (the protocol above retries what is not acknowledged). Heartbeats announced here are
 * repeated whenever a new watcher asks (`anx.v1.presence.query`).
 *
 * @example
 * ```ts
 * const transport = await NatsTransport.connect({ servers: 'nats://127.0.0.1:4222' });
 * ```
 */
export class NatsTransport implements Transport {
  readonly kind = 'nats' as const;
  private current: TransportStatus = 'connected';
  private readonly statusHandlers = new Set<(s: TransportStatus) => void>();
  private readonly lastHeartbeat = new Map<string, Uint8Array>();
  private querySub: NatsSub | undefined;
  private lastAnswer = 0;
  private answerTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(readonly nc: NatsConnection) {
    void this.watchStatus();
  }

  static async connect(options: NatsTransportOptions): Promise<NatsTransport> {
    try {
      const nc = await connect({
        servers: options.servers,
        name: options.name ?? 'anx-runtime',
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        pingInterval: 10_000,
        ...(options.user === undefined ? {} : { user: options.user, pass: options.pass ?? '' }),
      });
      return new NatsTransport(nc);
    } catch (cause) {
      const why = cause instanceof Error ? cause.message : String(cause);
      if (/authori[sz]ation/i.test(why))
        throw new TransportError(
          'ANX_RELAY_REFUSED',
          `the NATS server at ${String(options.servers)} refused ${options.user === undefined ? 'a connection without credentials' : `the credentials of ${options.user}`}: ${why}`,
          {
            cause,
            hint: 'a relay server asks hosts for the credentials derived from the join URL: start with the same --relay URL, or with the --nats URL (with its user and password) the host that started the leaf prints',
          },
        );
      throw new TransportError(
        'ANX_TRANSPORT_CONNECT',
        `cannot connect to NATS at ${String(options.servers)}: ${why}`,
        {
          cause,
          hint: 'check that the leaf node runs (anx-runtime start --relay starts one) and the URL is right',
        },
      );
    }
  }

  get status(): TransportStatus {
    return this.current;
  }

  get server(): string | undefined {
    return this.nc.info?.server_name;
  }

  sendToDid(did: string, data: Uint8Array, reply?: string): void {
    this.publish(inboxSubject(did), data, reply);
  }

  sendToHost(hostId: string, data: Uint8Array): void {
    this.publish(hostSubject(hostId), data, undefined);
  }

  hostReply(hostId: string): string {
    return hostSubject(hostId);
  }

  listenDid(did: string, handler: (frame: InboundFrame) => void): Subscription {
    return this.listen(inboxSubject(did), handler);
  }

  listenHost(hostId: string, handler: (frame: InboundFrame) => void): Subscription {
    return this.listen(hostSubject(hostId), handler);
  }

  async request(did: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.current === 'closed') throw new TransportClosedError();
    try {
      const msg = await this.nc.request(inboxSubject(did), data, { timeout: timeoutMs });
      return msg.data;
    } catch (err) {
      const name = (err as Error)?.name ?? '';
      if (name === 'NoRespondersError' || /no responders/i.test(String((err as Error)?.message)))
        throw new TransportNoRespondersError(`request to ${did}`);
      if (name === 'TimeoutError' || /timeout/i.test(String((err as Error)?.message)))
        throw new TransportTimeoutError(`request to ${did}`, timeoutMs);
      throw new TransportError(
        'ANX_TRANSPORT_REQUEST',
        `request to ${did} failed: ${(err as Error)?.message}`,
        {
          cause: err,
        },
      );
    }
  }

  respond(reply: string, data: Uint8Array): void {
    this.publish(reply, data, undefined);
  }

  announce(hostId: string, heartbeat: Uint8Array): void {
    this.lastHeartbeat.set(hostId, new Uint8Array(heartbeat));
    if (this.querySub === undefined) {
      // Anyone on the relay may ask, as often as they like: answers are coalesced to at most one per
      // PRESENCE_ANSWER_MS, so a flood of queries cannot make every host flood the relay in turn.
      const answer = () => {
        this.lastAnswer = Date.now();
        this.answerTimer = undefined;
        for (const [id, hb] of this.lastHeartbeat) this.publish(presenceSubject(id), hb, undefined);
      };
      this.querySub = this.nc.subscribe(PRESENCE_QUERY, {
        callback: () => {
          if (this.answerTimer !== undefined) return;
          const wait = this.lastAnswer + PRESENCE_ANSWER_MS - Date.now();
          if (wait <= 0) answer();
          else this.answerTimer = setTimeout(answer, wait).unref();
        },
      });
    }
    this.publish(presenceSubject(hostId), heartbeat, undefined);
  }

  watchPresence(handler: (hostId: string, heartbeat: Uint8Array) => void): Subscription {
    const prefix = PRESENCE_WILDCARD.slice(0, -1);
    const sub = this.nc.subscribe(PRESENCE_WILDCARD, {
      callback: (err, msg) => {
        if (err !== null) return;
        handler(msg.subject.slice(prefix.length), msg.data);
      },
    });
    // Ask every host to announce now, once the subscription is known to the server. Interest
    // crosses leaf → hub → leaf asynchronously, so a host whose query subscription has not reached
    // this leaf yet misses the first ask: ask again a few times, at growing intervals.
    const ask = () => this.publish(PRESENCE_QUERY, new Uint8Array(0), undefined);
    const timers = PRESENCE_REASK_MS.map((ms) => setTimeout(ask, ms).unref());
    void this.nc.flush().then(ask, () => {});
    return {
      unsubscribe: () => {
        for (const t of timers) clearTimeout(t);
        sub.unsubscribe();
      },
    };
  }

  onStatus(handler: (status: TransportStatus) => void): Subscription {
    this.statusHandlers.add(handler);
    return { unsubscribe: () => this.statusHandlers.delete(handler) };
  }

  async flush(): Promise<void> {
    if (this.current === 'closed') return;
    await this.nc.flush();
  }

  async close(): Promise<void> {
    if (this.current === 'closed') return;
    this.setStatus('closed');
    if (this.answerTimer !== undefined) clearTimeout(this.answerTimer);
    try {
      await this.nc.drain();
    } catch {
      await this.nc.close().catch(() => {});
    }
  }

  private publish(subject: string, data: Uint8Array, reply: string | undefined): void {
    if (this.current === 'closed') return;
    try {
      this.nc.publish(subject, data, reply === undefined ? undefined : { reply });
    } catch {
      // Closed or draining connection: the frame is lost, and the protocol above retries it.
    }
  }

  private listen(subject: string, handler: (frame: InboundFrame) => void): Subscription {
    const sub = this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err !== null) return;
        handler({ data: msg.data, reply: msg.reply || undefined });
      },
    });
    return { unsubscribe: () => sub.unsubscribe() };
  }

  private async watchStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (this.current === 'closed') return;
      if (s.type === 'disconnect') this.setStatus('disconnected');
      else if (s.type === 'reconnect') this.setStatus('connected');
    }
  }

  private setStatus(status: TransportStatus): void {
    if (this.current === status) return;
    this.current = status;
    for (const h of this.statusHandlers) h(status);
  }
}

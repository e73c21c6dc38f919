// The relay router: envelopes for DIDs on other hosts leave through the transport (session mode when the peer is online,
// sealed offline mail when it is not), are acknowledged by the receiver after its commit, and only then leave the outbox.

import type { NatsConnection } from '@nats-io/transport-node';
import { Packr } from 'msgpackr';
import { Gatekeeper } from '../../actors/did.ts';
import { RateLimitedError } from '../../runtime/authority/index.ts';
import { ed25519PublicToX25519 } from '../../runtime/crypto/convert.ts';
import {
  acceptEnvelope,
  createEnvelope,
  type Envelope,
  EnvelopeDuplicateError,
  EnvelopeSignatureError,
  encodeEnvelope,
  encodeSealedContent,
  envelopeAad,
  envelopeErrorEvent,
  envelopeSigningInput,
  SEALED_ENC,
  SEALED_TYPE,
  sealKey,
  validateSessionEnvelope,
} from '../../runtime/envelope/index.ts';
import { AnxError } from '../../runtime/errors.ts';
import type { Host } from '../../runtime/host.ts';
import { isDid, publicKeyOfDid } from '../../runtime/identity/did.ts';
import type { RemoteRouter } from '../../runtime/kernel/actor-system.ts';
import { type KernelEnvelope, kernelEnvelopeFromWire } from '../../runtime/kernel/message.ts';
import { DurableReplayGuard } from '../../runtime/kernel/replay-guard.ts';
import {
  answerHandshake,
  completeHandshake,
  decodeAccept,
  decodeData,
  decodeHello,
  FRAME_ACCEPT,
  FRAME_DATA,
  FRAME_HELLO,
  frameType,
  type PendingHello,
  Session,
  SessionError,
  type SessionOptions,
  SessionUnknownError,
  sidText,
  startHandshake,
} from '../../runtime/session/index.ts';
import type { Subscription, Transport } from '../../runtime/transport/transport.ts';
import { AttestationFeed } from './attestations.ts';
import { BindingFeed } from './bindings.ts';
import { type AgentCard, type CardQuery, cardMatches, makeCard, signCard } from './cards.ts';
import { Directory } from './directory.ts';
import { DEFAULT_MAIL_RETENTION_MS, MailStore } from './mail.ts';
import { decodeHeartbeat, HeartbeatSigner, HeartbeatVerifier, PresenceTracker } from './presence.ts';
import { RevocationFeed } from './revocations.ts';
import { checkRegistration, Webhooks } from './webhooks.ts';

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

/** A frame whose plaintext is not an envelope between the session's two DIDs (`ANX_RELAY_FRAME`). */
export class RelayFrameError extends AnxError {
  constructor(message: string) {
    super('ANX_RELAY_FRAME', message);
  }
}

/**
 * A hello refused because this host already remembers as many answered hellos, all still inside the
 * handshake window, as it may (`ANX_RELAY_BUSY`): forgetting one would let it be replayed.
 */
export class HandshakeCapacityError extends AnxError {
  constructor(limit: number) {
    super(
      'ANX_RELAY_BUSY',
      `this host has answered ${limit} handshakes in the last few minutes and takes no more now`,
      {
        hint: 'the sender retries with backoff; if this is not an attack, raise the relay option maxRememberedHellos',
      },
    );
  }
}

/** How far a hello's `ts` may be from the receiver's clock (ms), either way. */
const HANDSHAKE_WINDOW_MS = 5 * 60_000;

/** The relay needs JetStream (hub) for this, and has none (`ANX_RELAY_UNAVAILABLE`). */
export class RelayUnavailableError extends AnxError {}

/** A handshake from a peer the recipient's gatekeeper refuses (blocked, or a stranger to a private DID). */
export class GatekeeperRefusedError extends AnxError {
  constructor(did: string, peer: string, why: 'blocked' | 'private') {
    super(
      'ANX_GATEKEEPER_REFUSED',
      why === 'blocked'
        ? `${did} blocks ${peer}: handshake refused`
        : `${did} is private and ${peer} is not on its allow-list: handshake refused`,
      {
        hint: `${did} or its Owner can unblock the sender or add it to the allow-list (\`anx-runtime gatekeeper set ${did} --allow …\`)`,
      },
    );
  }
}

/** The hub as this host sees it through its NATS server. */
export interface HubStatus {
  /** The hub's address (`host:port`), or the NATS URL the host uses when it did not start the leaf. */
  address: string;
  /** True when the hub's JetStream answered just now. */
  reachable: boolean;
  /** Why not, as the leaf this host started logged it. */
  problem?: { kind: 'refused' | 'unreachable' | 'closed'; message: string; at: number };
}

export interface RelayOptions {
  transport: Transport;
  /** Asks whether the hub answers (for `relay status`); set by `joinRelay`. */
  hubStatus?: () => Promise<HubStatus>;
  /** The NATS connection behind the transport: enables offline mail, the directory and webhooks. */
  nc?: NatsConnection;
  /** Heartbeat interval (ms); a silent DID is offline within 3 of them. Default 2000. */
  heartbeatMs?: number;
  /** An unacknowledged frame older than this restarts the session and is sent again (ms). Default 3000. */
  ackTimeoutMs?: number;
  /** How long a handshake may take (ms). Default 3000. */
  handshakeTimeoutMs?: number;
  /** Longest pause between retries (ms). Default 15000. */
  maxBackoffMs?: number;
  session?: Pick<SessionOptions, 'rekeyMessages' | 'rekeyBytes'>;
  /** How long offline mail waits for its DID (ms). Default 7 days. */
  mailRetentionMs?: number;
  /**
   * Limits of the mail stream when this host creates it (or finds it without limits): most messages
   * one sender may have waiting for one recipient (default 10,000) and most bytes in all (1 GiB).
   */
  mailLimits?: { maxPerSender?: number; maxBytes?: number };
  /** The mail store to use instead of one made from `nc` with `mailRetentionMs` and `mailLimits`. */
  mailStore?: MailStore;
  /** Trust score of a DID for `discover --min-trust` (0..1); default neutral 0.5 for everyone. */
  trustOf?: (did: string) => number;
  /**
   * How long the revocation list may be out of sync with the relay before tokens with a link issued
   * by a DID of another host are refused (`ANX_REVOCATION_STALE`), in ms. Default 5 minutes.
   */
  revocationMaxStalenessMs?: number;
  /**
   * Envelopes that must stay non-repudiable travel sealed and signed even inside a session.
   * Default: types `vote`, `artifact`, `token`, `manifest` and their dotted subtypes.
   */
  nonRepudiable?: (env: KernelEnvelope) => boolean;
  /**
   * Most answered hellos remembered at once, each until its `ts` leaves the handshake window, so none is
   * answered twice; past it new hellos are refused (`ANX_RELAY_BUSY`) until old ones expire. Default
   * 1,000,000 (about 100 MB at most).
   */
  maxRememberedHellos?: number;
}

interface Outgoing {
  key: number;
  id: string;
  env: KernelEnvelope;
  bytes: Uint8Array;
  /** Session (sid) the entry was last sent in; undefined when not sent in the current one. */
  sentIn: string | undefined;
  sentAt: number;
  /** The sealed form, for envelopes that must stay non-repudiable (made once, resent as is). */
  sealed?: Uint8Array;
}

interface Link {
  from: string;
  to: string;
  queue: Outgoing[];
  byId: Map<string, Outgoing>;
  session: Session | undefined;
  sid: string | undefined;
  handshake: { pending: PendingHello; sid: string; timer: ReturnType<typeof setTimeout> } | undefined;
  attempt: number;
  notBefore: number;
  /** Mail is on its way to JetStream; session traffic waits for it. */
  mailBusy: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** When the last acknowledgement came: a busy receiver that keeps acknowledging is not a lost one. */
  lastAck: number;
}

interface Inbound {
  session: Session;
  local: string;
  peer: string;
  reply: string;
  reported: Set<string>;
  sid: string;
  /**
   * `open` once mail stored for `local` before this session began is committed: until then arrivals
   * wait in `held`, so session traffic never overtakes mail the sender stored while `local` was offline.
   */
  gate: 'closed' | 'checking' | 'open';
  held: Arrival[];
}

interface Arrival {
  /** Undefined for a sealed envelope already accepted before: acknowledged, not accepted again. */
  env: KernelEnvelope | undefined;
  id: string;
  inbound: Inbound;
  /** Rate-limit slot of the recipient, released once the arrival is committed. */
  permit: { release(): void };
}

/** Counters shown by `status` and used by tests and benchmarks. */
export interface RelayStats {
  sent: number;
  acknowledged: number;
  mailed: number;
  received: number;
  mailReceived: number;
  refused: number;
  handshakes: number;
  retries: number;
  /** Envelopes sent sealed inside a session because they must stay non-repudiable. */
  sealedSent: number;
  /** Session data frames sent with envelopes (several envelopes waiting together share one frame). */
  frames: number;
  /** Heartbeats refused: bad signature, replayed, stale or an interval above the cap. */
  heartbeatsRefused: number;
}

const MAX_UNACKED = 8_192;
/**
 * At most this many envelopes, and about this many plaintext bytes, share one session frame (a batch
 * is a msgpack array of the envelopes' bytes; docs/protocol.md). Under NATS's default 1 MiB payload.
 */
const BATCH_ENVELOPES = 128;
const BATCH_BYTES = 256 * 1024;

/**
 * A batch plaintext: a msgpack array of bin in their smallest formats, one per envelope, written into
 * one buffer of its exact size (a general encoder grows its buffer as it goes, copying what it wrote:
 * at 256 KiB a frame that cost the sender about as much as sealing it).
 */
export function packBatch(items: readonly Uint8Array[]): Uint8Array {
  const count = items.length;
  if (count >= 65_536)
    throw new RangeError(`a session batch holds fewer than 65,536 envelopes, got ${count}`);
  let size = count < 16 ? 1 : 3;
  for (const item of items) size += item.byteLength + binHeadSize(item.byteLength);
  const out = new Uint8Array(size);
  let o = 0;
  if (count < 16) out[o++] = 0x90 | count;
  else {
    out[o++] = 0xdc;
    out[o++] = count >> 8;
    out[o++] = count & 0xff;
  }
  for (const item of items) {
    const n = item.byteLength;
    if (n < 256) {
      out[o++] = 0xc4;
      out[o++] = n;
    } else if (n < 65_536) {
      out[o++] = 0xc5;
      out[o++] = n >> 8;
      out[o++] = n & 0xff;
    } else {
      out[o++] = 0xc6;
      out[o++] = n >>> 24;
      out[o++] = (n >> 16) & 0xff;
      out[o++] = (n >> 8) & 0xff;
      out[o++] = n & 0xff;
    }
    out.set(item, o);
    o += n;
  }
  return out;
}

function binHeadSize(length: number): number {
  return length < 256 ? 2 : length < 65_536 ? 3 : 5;
}

/**
 * The envelopes of a session plaintext: a batch (msgpack array of bin) gives its items (views into
 * `plaintext`), anything else is one envelope. A malformed batch is a `RelayFrameError`.
 */
export function unpackBatch(plaintext: Uint8Array): Uint8Array[] {
  const first = plaintext[0] ?? 0;
  let count: number;
  let o: number;
  if ((first & 0xf0) === 0x90) {
    count = first & 0x0f;
    o = 1;
  } else if (first === 0xdc && plaintext.length >= 3) {
    count = (plaintext[1] as number) * 256 + (plaintext[2] as number);
    o = 3;
  } else return [plaintext];
  const view = new DataView(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
  const items: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const marker = plaintext[o];
    let len: number;
    if (marker === 0xc4 && o + 2 <= plaintext.length) {
      len = plaintext[o + 1] as number;
      o += 2;
    } else if (marker === 0xc5 && o + 3 <= plaintext.length) {
      len = view.getUint16(o + 1);
      o += 3;
    } else if (marker === 0xc6 && o + 5 <= plaintext.length) {
      len = view.getUint32(o + 1);
      o += 5;
    } else throw new RelayFrameError(`session batch item ${i} expected msgpack bin`);
    if (o + len > plaintext.length) throw new RelayFrameError(`session batch item ${i} runs past the frame`);
    items.push(plaintext.subarray(o, o + len));
    o += len;
  }
  if (count === 0 || o !== plaintext.length)
    throw new RelayFrameError('session batch expected one or more envelopes and nothing after them');
  return items;
}

const NON_REPUDIABLE = /^(vote|artifact|token|manifest)(\.|$)/;
/** Messages stored per turn of a link's mail pump (one publish in flight at a time). */
const MAIL_RUN = 256;
/** Longest wait for a DID's mail backlog before it is announced anyway (hub unreachable). */
const MAIL_DRAIN_WAIT_MS = 5_000;

/**
 * One host's relay: the kernel's `RemoteRouter`, presence, discovery, offline mail and webhooks.
 * Create it before `Host.open` (so replayed outbox entries for other hosts are queued here, not
 * dead-lettered), then `bind(host)` and `start()`.
 */
export class Relay implements RemoteRouter {
  readonly presence: PresenceTracker;
  readonly stats: RelayStats = {
    sent: 0,
    acknowledged: 0,
    mailed: 0,
    received: 0,
    mailReceived: 0,
    refused: 0,
    handshakes: 0,
    retries: 0,
    sealedSent: 0,
    frames: 0,
    heartbeatsRefused: 0,
  };
  hostId = '';
  directory: Directory | undefined;
  webhooks: Webhooks | undefined;
  /** Capability-token revocations shared with every host of the relay. */
  revocations: RevocationFeed | undefined;
  /** Owners' signed bindings and unbindings shared with every host of the relay. */
  bindings: BindingFeed | undefined;
  /** Trust attestations shared with every host of the relay (the web of trust). */
  attestations: AttestationFeed | undefined;
  private host: Host | undefined;
  private readonly transport: Transport;
  private readonly mail: MailStore | undefined;
  private readonly links = new Map<string, Link>();
  private readonly handshakes = new Map<string, Link>();
  private readonly outboundBySid = new Map<string, Link>();
  private readonly inbound = new Map<string, Inbound>();
  private readonly inboundByPair = new Map<string, string>();
  /** Answered hellos by session id, each with the time its `ts` leaves the handshake window. */
  private readonly seenHellos = new Map<string, number>();
  /** `seenHellos` is swept of expired entries when it reaches this size, and was last swept then (see `makeRoomForHello`). */
  private helloSweepAt = 1_024;
  private helloSweptAt = 0;
  private signer: HeartbeatSigner | undefined;
  private gatekeeperOf: Gatekeeper | undefined;
  private verifier: HeartbeatVerifier | undefined;
  /**
   * This host's DIDs. A DID is announced (`ready`) only once its stored mail is drained: senders
   * keep mailing it until then, so mail is not overtaken by session traffic.
   */
  private readonly localDids = new Map<
    string,
    { sub: Subscription; mail?: { stop(): void }; ready: boolean; timer?: ReturnType<typeof setTimeout> }
  >();
  private readonly subs: Subscription[] = [];
  private arrivals: Arrival[] = [];
  private arrivalsScheduled = false;
  private acks: number[] = [];
  private acksScheduled = false;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  private beat = 0;
  private closed = false;
  private mailGuard: DurableReplayGuard | undefined;
  private readonly heartbeatMs: number;
  private readonly ackTimeoutMs: number;
  private readonly handshakeTimeoutMs: number;
  private readonly maxBackoffMs: number;
  private trustOf: (did: string) => number;
  private readonly nonRepudiable: (env: KernelEnvelope) => boolean;

  constructor(private readonly options: RelayOptions) {
    this.transport = options.transport;
    this.heartbeatMs = options.heartbeatMs ?? 2_000;
    this.ackTimeoutMs = options.ackTimeoutMs ?? 3_000;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? 3_000;
    this.maxBackoffMs = options.maxBackoffMs ?? 15_000;
    this.trustOf = options.trustOf ?? (() => 0.5);
    this.nonRepudiable = options.nonRepudiable ?? ((env) => NON_REPUDIABLE.test(env.type));
    this.presence = new PresenceTracker({
      now: () => Date.now(),
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    });
    if (options.mailStore !== undefined) this.mail = options.mailStore;
    else if (options.nc !== undefined) {
      this.mail = new MailStore(options.nc, {
        ...(options.mailRetentionMs === undefined ? {} : { retentionMs: options.mailRetentionMs }),
        ...options.mailLimits,
      });
    }
  }

  /** How other hosts' presence tables name this host: its heartbeat key (base64url). */
  get presenceId(): string {
    return Buffer.from(this.need().keystore.hostPublicKey()).toString('base64url');
  }

  /**
   * How old a sealed envelope may be when it arrives: as long as the relay keeps mail (the hub's stream
   * may keep it longer than this host's own retention: see `MailStore.windowMs`).
   */
  private get mailWindowMs(): number {
    return this.mail?.windowMs ?? DEFAULT_MAIL_RETENTION_MS;
  }

  /** The relay server (NATS leaf or hub) this host is connected through, when the transport knows it. */
  get server(): string | undefined {
    return this.transport.server;
  }

  /** Attaches the opened host (its keystore signs handshakes and mail; its actor system takes arrivals). */
  bind(host: Host): void {
    this.host = host;
    this.mailGuard = new DurableReplayGuard(host.store, host.system.commits);
    // Mail is accepted up to the mail window old: its ids must be remembered as long, or a copy delivered
    // again after a lost acknowledgement (the host cut off from the relay for days) is taken twice. The
    // window grows once the stream is found with a longer `max_age`, before any mail is read at that age.
    host.retainSeenFor(this.mailWindowMs);
    this.mail?.onWindow((windowMs) => host.retainSeenFor(windowMs));
    let id = host.store.meta.get('relay.host_id') as string | undefined;
    if (id === undefined) {
      id = Buffer.from(host.suite.randomBytes(12)).toString('base64url');
      host.system.commits.put(host.store.meta, 'relay.host_id', id);
      void host.system.commits.flush();
    }
    this.hostId = id;
    this.signer = new HeartbeatSigner(id, host.keystore);
    this.verifier = new HeartbeatVerifier(
      (key, message, sig) => host.suite.verify(key, message, sig),
      (did) => (isDid(did, 'agentnexus') ? publicKeyOfDid(did) : undefined),
    );
    if (this.options.trustOf === undefined) this.trustOf = (did) => host.authority.trust.score(did).score;
  }

  /** Subscribes this host's DIDs and control address, starts presence, directory, webhooks and mail. */
  async start(): Promise<void> {
    const host = this.need();
    this.subs.push(this.transport.listenHost(this.hostId, (f) => this.onControl(f.data)));
    this.subs.push(
      this.transport.watchPresence((_id, data) => {
        const hb = decodeHeartbeat(data);
        if (hb === undefined || hb.host === this.hostId) return;
        const update = (this.verifier as HeartbeatVerifier).check(hb);
        // A heartbeat announced again for a new watcher is no refusal: it carries nothing new.
        if (update === 'repeated') return;
        if (typeof update === 'string') this.stats.heartbeatsRefused++;
        else this.presence.observe(update);
      }),
    );
    this.subs.push(
      this.transport.onStatus((status) => {
        if (status === 'connected') {
          this.announce();
          this.tellLocal('presence.online');
          for (const link of this.links.values()) this.resetLink(link, false);
        } else if (status === 'disconnected') this.tellLocal('presence.offline');
      }),
    );
    this.presence.onChange((change) => {
      this.hostEvent('status', {
        status: change.online ? 'presence.online' : 'presence.offline',
        did: change.did,
        host: change.host,
      });
      for (const link of this.links.values()) {
        if (link.to !== change.did) continue;
        if (!change.online) this.resetLink(link, false);
        this.schedule(link, 0);
      }
    });
    if (this.options.nc !== undefined) {
      // A directory, revocation, binding, attestation or webhook entry that does not verify, or a delete
      // or purge marker in one of those buckets: ignored, counted and reported.
      const invalidEntry = (key: string, error: AnxError) => {
        this.stats.refused++;
        this.hostEvent('error', { code: error.code, level: 'warning', message: error.message, key });
      };
      const isLocal = (did: string) => host.keystore.has(did);
      this.directory = new Directory(this.options.nc, host.suite, invalidEntry, isLocal);
      this.directory.start();
      this.webhooks = new Webhooks(
        this.options.nc,
        host.suite,
        (r) => {
          this.hostEvent(r.ok ? 'status' : 'error', { status: 'webhook.notified', ...r });
        },
        { isLocal, onInvalid: invalidEntry },
      );
      this.webhooks.start();
      this.revocations = new RevocationFeed(
        this.options.nc,
        host.authority.revocations,
        isLocal,
        invalidEntry,
        {
          clock: host.clock,
          ...(this.options.revocationMaxStalenessMs === undefined
            ? {}
            : { maxStalenessMs: this.options.revocationMaxStalenessMs }),
        },
      );
      this.revocations.start();
      this.bindings = new BindingFeed(
        this.options.nc,
        host.teamwork.secretaries.bindings,
        isLocal,
        invalidEntry,
      );
      this.bindings.start();
      this.attestations = new AttestationFeed(
        this.options.nc,
        host.authority.trust,
        host.suite,
        host.clock,
        isLocal,
        invalidEntry,
      );
      this.attestations.start();
      // Local DIDs' cards carry their inbound limits: keep them for the rate limiter.
      this.directory.onCard((card) => {
        if (host.keystore.has(card.did)) host.authority.rateLimits.setLimits(card);
      });
    }
    this.syncLocalDids();
    await this.transport.flush();
    this.announce();
    this.tellLocal('presence.online');
    this.heartbeatTimer = setInterval(() => this.tick(), this.heartbeatMs);
    this.heartbeatTimer.unref?.();
    this.sweepTimer = setInterval(() => this.presence.sweep(), Math.max(50, this.heartbeatMs / 4));
    this.sweepTimer.unref?.();
    for (const link of this.links.values()) this.schedule(link, 0);
  }

  /** Kernel hook: takes an envelope for a DID that is not on this host (after its outbox commit). */
  route(env: KernelEnvelope, bytes: Uint8Array, outboxKey: number): boolean {
    if (this.closed) return false;
    // DIDs are checked once per (sender, recipient) pair: parsing a DID costs a base58 decode.
    let link = this.links.get(`${env.from}\u0000${env.to}`);
    if (link === undefined) {
      if (!isDid(env.to, 'agentnexus') || !isDid(env.from, 'agentnexus')) return false;
      if (this.host !== undefined && !this.host.keystore.has(env.from)) return false;
      link = this.link(env.from, env.to);
    }
    if (link.byId.has(env.id)) return true;
    const entry: Outgoing = {
      key: outboxKey,
      id: env.id,
      env,
      bytes,
      sentIn: undefined,
      sentAt: 0,
    };
    link.queue.push(entry);
    link.byId.set(env.id, entry);
    if (this.host !== undefined && this.heartbeatTimer !== undefined) this.schedule(link, 0);
    return true;
  }

  /** Is `did` online (a heartbeat named it within the last intervals)? Local DIDs are online while connected. */
  isOnline(did: string): boolean {
    if (this.localDids.has(did)) return this.transport.status === 'connected';
    return this.presence.isOnline(did);
  }

  /** Signs and publishes the card of a local DID (fields not given are left empty). */
  async publishCard(input: Partial<AgentCard> & { did: string }): Promise<AgentCard> {
    const host = this.need();
    const directory = this.needJetStream(this.directory, 'publishing a card');
    const card = makeCard({ ...input, ts: Date.now() }, Date.now());
    if (!host.keystore.has(card.did))
      throw new AnxError(
        'ANX_NOT_LOCAL_IDENTITY',
        `this host holds no key for ${card.did}, so it cannot sign its card`,
      );
    await directory.publish(signCard(card, (m) => host.keystore.sign(card.did, m)));
    host.authority.rateLimits.setLimits(card);
    return card;
  }

  /** Cards matching `query`, with presence and trust. */
  discover(query: CardQuery): Array<AgentCard & { online: boolean; trust: number }> {
    const directory = this.needJetStream(this.directory, 'discovery');
    const out: Array<AgentCard & { online: boolean; trust: number }> = [];
    for (const card of directory.all()) {
      const facts = { online: this.isOnline(card.did), trust: this.trustOf(card.did) };
      if (cardMatches(card, query, facts)) out.push({ ...card, ...facts });
    }
    return out.sort((a, b) => a.did.localeCompare(b.did));
  }

  /** Registers a push webhook for a local DID; returns the HMAC secret notices are signed with. */
  async registerWebhook(
    did: string,
    url: string,
    secret?: string,
  ): Promise<{ did: string; url: string; secret: string }> {
    const host = this.need();
    const webhooks = this.needJetStream(this.webhooks, 'webhooks');
    if (!host.keystore.has(did))
      throw new AnxError(
        'ANX_NOT_LOCAL_IDENTITY',
        `this host holds no key for ${did}, so it cannot register its webhook`,
      );
    const reg = checkRegistration({
      did,
      url,
      secret: secret ?? Buffer.from(host.suite.randomBytes(24)).toString('base64url'),
      ts: Date.now(),
    });
    await webhooks.register(reg, (m) => host.keystore.sign(did, m));
    return { did: reg.did, url: reg.url, secret: reg.secret };
  }

  status() {
    let queued = 0;
    for (const link of this.links.values()) queued += link.queue.length;
    return {
      hostId: this.hostId,
      transport: this.transport.kind,
      connected: this.transport.status === 'connected',
      heartbeatMs: this.heartbeatMs,
      online: this.presence.online().length,
      cards: this.directory?.size ?? 0,
      queued,
      ...this.stats,
    };
  }

  /** `status()` with the hub's reachability (asked now, within about a second) when the relay knows how. */
  async statusWithHub(): Promise<ReturnType<Relay['status']> & { hub?: HubStatus }> {
    const status = this.status();
    const hub = await this.options.hubStatus?.();
    return hub === undefined ? status : { ...status, hub };
  }

  /** Says goodbye (peers mark this host's DIDs offline at once) and stops. Unacknowledged mail stays in the outbox. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    // A relay closed before it was bound to a host (its start failed) has no one to say goodbye for.
    if (this.signer !== undefined) {
      this.transport.announce(this.hostId, this.signer.heartbeat([], this.heartbeatMs, true));
      await this.transport.flush().catch(() => {});
    }
    for (const link of this.links.values()) {
      if (link.timer !== undefined) clearTimeout(link.timer);
      if (link.handshake !== undefined) clearTimeout(link.handshake.timer);
      link.session?.destroy();
    }
    for (const inbound of this.inbound.values()) inbound.session.destroy();
    for (const { sub, mail, timer } of this.localDids.values()) {
      if (timer !== undefined) clearTimeout(timer);
      sub.unsubscribe();
      mail?.stop();
    }
    for (const sub of this.subs) sub.unsubscribe();
    this.directory?.stop();
    this.webhooks?.stop();
    this.revocations?.stop();
    this.bindings?.stop();
    this.attestations?.stop();
    await this.flushAcks();
    await this.transport.close();
  }

  // ---- outbound ----

  private link(from: string, to: string): Link {
    const key = `${from}\u0000${to}`;
    let link = this.links.get(key);
    if (link === undefined) {
      link = {
        from,
        to,
        queue: [],
        byId: new Map(),
        session: undefined,
        sid: undefined,
        handshake: undefined,
        attempt: 0,
        notBefore: 0,
        mailBusy: false,
        timer: undefined,
        lastAck: 0,
      };
      this.links.set(key, link);
    }
    return link;
  }

  private schedule(link: Link, delayMs: number): void {
    if (this.closed) return;
    if (link.timer !== undefined) {
      if (delayMs > 0) return;
      clearTimeout(link.timer);
    }
    link.timer = setTimeout(
      () => {
        link.timer = undefined;
        this.pump(link);
      },
      Math.max(delayMs, link.notBefore - Date.now(), 0),
    );
    link.timer.unref?.();
  }

  private backoff(link: Link): void {
    link.attempt++;
    this.stats.retries++;
    const base = Math.min(this.maxBackoffMs, 250 * 2 ** Math.min(link.attempt, 8));
    link.notBefore = Date.now() + base / 2 + Math.random() * (base / 2);
    this.schedule(link, 1);
  }

  /** Forgets the link's session: everything unacknowledged is sent again, in order, in the next one. */
  private resetLink(link: Link, countRetry: boolean): void {
    if (link.sid !== undefined) this.outboundBySid.delete(link.sid);
    link.session?.destroy();
    link.session = undefined;
    link.sid = undefined;
    if (link.handshake !== undefined) {
      clearTimeout(link.handshake.timer);
      this.handshakes.delete(link.handshake.sid);
      link.handshake.pending.ephemeralPrivate.fill(0);
      link.handshake = undefined;
    }
    for (const entry of link.queue) entry.sentIn = undefined;
    if (countRetry) this.backoff(link);
  }

  private pump(link: Link): void {
    if (this.closed || this.host === undefined || link.queue.length === 0) return;
    if (this.transport.status !== 'connected') {
      this.schedule(link, 250);
      return;
    }
    if (link.notBefore > Date.now()) {
      this.schedule(link, link.notBefore - Date.now());
      return;
    }
    if (this.mail !== undefined && !this.presence.isOnline(link.to)) {
      // Back online, the receiver must see a new session: its first frame makes it drain this mail first.
      if (link.session !== undefined || link.handshake !== undefined) this.resetLink(link, false);
      this.pumpMail(link);
      return;
    }
    // Mail still on its way to JetStream must land before session traffic, or order would break.
    if (link.mailBusy) return;
    if (link.session === undefined) {
      if (link.handshake === undefined) this.handshake(link);
      return;
    }
    const now = Date.now();
    let unacked = 0;
    let oldest = Number.POSITIVE_INFINITY;
    // Envelopes waiting together go out together: one frame (one AEAD, one publish) per batch.
    const session = link.session;
    const batch: Uint8Array[] = [];
    let batchBytes = 0;
    const send = () => {
      this.transport.sendToDid(
        link.to,
        session.seal(batch.length === 1 ? (batch[0] as Uint8Array) : packBatch(batch)),
      );
      this.stats.frames++;
      batch.length = 0;
      batchBytes = 0;
    };
    for (const entry of link.queue) {
      if (entry.sentIn === link.sid) {
        unacked++;
        if (entry.sentAt < oldest) oldest = entry.sentAt;
        continue;
      }
      if (unacked >= MAX_UNACKED) break;
      if (entry.sealed === undefined && this.nonRepudiable(entry.env)) {
        try {
          entry.sealed = this.sealForMail(entry.env);
        } catch (err) {
          this.dropEntry(link, entry, err);
          continue;
        }
      }
      const bytes = entry.sealed ?? entry.bytes;
      if (batch.length > 0 && (batch.length >= BATCH_ENVELOPES || batchBytes + bytes.length > BATCH_BYTES))
        send();
      batch.push(bytes);
      batchBytes += bytes.length;
      if (entry.sealed !== undefined) this.stats.sealedSent++;
      entry.sentIn = link.sid;
      entry.sentAt = now;
      unacked++;
      this.stats.sent++;
      if (oldest === Number.POSITIVE_INFINITY) oldest = now;
    }
    if (batch.length > 0) send();
    if (unacked > 0) {
      const due = Math.max(oldest, link.lastAck) + this.ackTimeoutMs - now;
      if (due <= 0) {
        this.resetLink(link, true);
        return;
      }
      this.schedule(link, due);
    }
  }

  private handshake(link: Link): void {
    const host = this.need();
    this.stats.handshakes++;
    const pending = startHandshake({
      suite: host.suite,
      from: link.from,
      to: link.to,
      sign: (m) => host.keystore.sign(link.from, m),
      now: Date.now(),
    });
    const sid = sidText(pending.hello.sid);
    const timer = setTimeout(() => {
      if (link.handshake?.sid !== sid) return;
      this.handshakes.delete(sid);
      link.handshake.pending.ephemeralPrivate.fill(0);
      link.handshake = undefined;
      this.backoff(link);
    }, this.handshakeTimeoutMs);
    timer.unref?.();
    link.handshake = { pending, sid, timer };
    this.handshakes.set(sid, link);
    this.transport.sendToDid(link.to, pending.frame, this.transport.hostReply(this.hostId));
  }

  /**
   * Stores the head of the link's queue as offline mail, one message at a time: the next is published
   * only once JetStream has stored the one before it. A message the store refuses (the recipient's
   * quota, a publish lost with the leaf's connection) therefore is never overtaken by a later one of
   * the same sender, even while the recipient is reading: it stays at the head of the outbox and the
   * link backs off. A retry keeps the message's msg-id, so a publish that was stored but whose
   * acknowledgement was lost is not stored twice. Up to `MAIL_RUN` messages per turn, then the pump
   * looks again (the recipient may be online by now and take the rest over a session).
   */
  private pumpMail(link: Link): void {
    if (link.mailBusy) return;
    link.mailBusy = true;
    void this.storeMail(link, this.mail as MailStore).finally(() => {
      link.mailBusy = false;
    });
  }

  private async storeMail(link: Link, mail: MailStore): Promise<void> {
    const run = link.queue.slice(0, MAIL_RUN);
    const stored: Outgoing[] = [];
    let failure: unknown;
    try {
      await mail.ensureStream();
      let next = this.sealNextMail(link, run, 0);
      while (next !== undefined && !this.closed) {
        const { entry, bytes, index } = next;
        const publish = mail.store(
          link.to,
          entry.env.from,
          `${entry.env.from.slice(-24)}-${entry.id}`,
          bytes,
        );
        // The next message is sealed while this one travels to the hub and back (after one
        // microtask turn, in which the client writes the publish to its socket).
        await Promise.resolve();
        next = this.sealNextMail(link, run, index + 1);
        await publish;
        stored.push(entry);
      }
    } catch (err) {
      failure = err;
    }
    const live = stored.filter((e) => link.byId.has(e.id));
    if (live.length > 0) {
      this.stats.mailed += live.length;
      this.webhooks?.mailStored(link.to, live.length);
      this.finish(link, live);
    }
    if (this.closed) return;
    if (failure === undefined) {
      link.attempt = 0;
      this.schedule(link, 0);
    } else this.mailFailed(link, failure);
  }

  /** The first entry of `run` from `start` that is still queued, sealed for mail. */
  private sealNextMail(
    link: Link,
    run: Outgoing[],
    start: number,
  ): { entry: Outgoing; bytes: Uint8Array; index: number } | undefined {
    for (let index = start; index < run.length; index++) {
      const entry = run[index] as Outgoing;
      if (!link.byId.has(entry.id)) continue;
      try {
        return { entry, bytes: this.sealForMail(entry.env), index };
      } catch (err) {
        // An envelope that cannot be sealed never will be: drop it from the outbox with an error event.
        this.dropEntry(link, entry, err);
      }
    }
    return undefined;
  }

  /** A mail store failed: an error event, then the link backs off and tries the same message again. */
  private mailFailed(link: Link, err: unknown): void {
    this.hostEvent('error', {
      code: (err as AnxError).code ?? 'ANX_MAIL_STORE',
      message: (err as Error).message,
      to: link.to,
    });
    this.backoff(link);
  }

  private dropEntry(link: Link, entry: Outgoing, err: unknown): void {
    this.hostEvent('error', {
      code: (err as AnxError).code ?? 'ANX_RELAY_SEAL',
      message: (err as Error).message,
      id: entry.id,
      to: link.to,
    });
    this.finish(link, [entry]);
  }

  /** Entries the receiver committed (or the mail store holds): out of the queue, then out of the outbox. */
  private finish(link: Link, entries: Outgoing[]): void {
    const done = new Set<Outgoing>();
    for (const entry of entries) {
      if (!link.byId.delete(entry.id)) continue;
      done.add(entry);
      if (entry.key > 0) this.acks.push(entry.key);
      this.stats.acknowledged++;
    }
    if (done.size === 0) return;
    link.queue = link.queue.filter((e) => !done.has(e));
    if (!this.acksScheduled) {
      this.acksScheduled = true;
      setImmediate(() => void this.flushAcks());
    }
  }

  private async flushAcks(): Promise<void> {
    this.acksScheduled = false;
    const keys = this.acks;
    this.acks = [];
    if (keys.length === 0 || this.host === undefined) return;
    try {
      await this.host.system.acknowledge(keys);
    } catch {
      // The host is stopping: the entries stay in the outbox and are sent again after restart (deduped).
    }
  }

  /** Seals an envelope for offline mail: signed by the sender's key in the keystore, encrypted to the recipient. */
  private sealForMail(env: KernelEnvelope): Uint8Array {
    const host = this.need();
    const suite = host.suite;
    const wire = createEnvelope({
      type: env.type,
      from: env.from,
      to: env.to,
      id: env.id,
      ts: env.ts,
      body: env.body,
      ...(env.exp === undefined ? {} : { exp: env.exp }),
      ...(env.thread === undefined ? {} : { thread: env.thread }),
      ...(env.reply === undefined ? {} : { reply: env.reply }),
      ...(env.ctx === undefined ? {} : { ctx: env.ctx }),
      ...(env.actor === undefined ? {} : { actor: env.actor }),
      ...(typeof env.cap === 'string' || env.cap instanceof Uint8Array ? { cap: env.cap } : {}),
    });
    // The same construction as the envelope layer's `seal`, signed through the keystore so the
    // sender's key never leaves it: only addressing stays readable, the rest is sealed content.
    const recipientX = ed25519PublicToX25519(publicKeyOfDid(env.to, 'to'));
    const ephemeral = suite.randomBytes(32);
    const epk = suite.x25519PublicKey(ephemeral);
    const shared = suite.x25519(ephemeral, recipientX);
    const key = sealKey(suite, shared, epk, recipientX);
    const nonce = suite.randomBytes(12);
    const sealed: Envelope = {
      v: wire.v,
      id: wire.id,
      type: SEALED_TYPE,
      from: wire.from,
      to: wire.to,
      ts: wire.ts,
      enc: SEALED_ENC,
      epk,
      nonce,
      body: new Uint8Array(0),
    };
    if (wire.exp !== undefined) sealed.exp = wire.exp;
    sealed.body = suite.aesGcmEncrypt(key, nonce, encodeSealedContent(wire), envelopeAad(sealed));
    ephemeral.fill(0);
    shared.fill(0);
    key.fill(0);
    sealed.sig = host.keystore.sign(env.from, envelopeSigningInput(sealed));
    return encodeEnvelope(sealed);
  }

  // ---- inbound ----

  /** Frames on this host's control address: handshake answers and acknowledgements. */
  private onControl(data: Uint8Array): void {
    try {
      const type = frameType(data);
      if (type === FRAME_ACCEPT) {
        const accept = decodeAccept(data);
        const sid = sidText(accept.sid);
        const link = this.handshakes.get(sid);
        if (link === undefined || link.handshake === undefined) return;
        const keys = completeHandshake(this.need().suite, link.handshake.pending, accept);
        clearTimeout(link.handshake.timer);
        this.handshakes.delete(sid);
        link.handshake = undefined;
        link.session = new Session(this.need().suite, keys, {
          ...this.options.session,
          receiveOrder: 'monotonic',
        });
        link.sid = sid;
        link.attempt = 0;
        this.outboundBySid.set(sid, link);
        this.schedule(link, 0);
      } else if (type === FRAME_DATA) {
        const frame = decodeData(data);
        const link = this.outboundBySid.get(sidText(frame.sid));
        if (link?.session === undefined) return;
        const ids = packr.unpack(link.session.open(frame)) as unknown;
        if (!Array.isArray(ids)) throw new RelayFrameError('acknowledgement expected a list of message ids');
        const entries: Outgoing[] = [];
        for (const id of ids) {
          const entry = typeof id === 'string' ? link.byId.get(id) : undefined;
          if (entry !== undefined) entries.push(entry);
        }
        if (entries.length > 0) link.lastAck = Date.now();
        this.finish(link, entries);
        if (link.queue.length > 0) this.schedule(link, 0);
        else if (link.timer !== undefined) {
          clearTimeout(link.timer);
          link.timer = undefined;
        }
      }
    } catch (err) {
      this.refuse(err, data.length);
    }
  }

  /**
   * Forgets answered hellos whose `ts` has left the window (the window check refuses them now) each time
   * the table has doubled since the last sweep, so a sweep costs O(1) per hello on average. Throws
   * `HandshakeCapacityError` when the table is full of hellos still inside the window (none of them may
   * be forgotten); full, it is swept again at most once a second.
   */
  private makeRoomForHello(now: number): void {
    const limit = this.options.maxRememberedHellos ?? 1_000_000;
    const size = this.seenHellos.size;
    if (size < this.helloSweepAt && size < limit) return;
    if (size >= limit && now - this.helloSweptAt < 1_000) throw new HandshakeCapacityError(limit);
    for (const [sid, until] of this.seenHellos) if (until < now) this.seenHellos.delete(sid);
    this.helloSweptAt = now;
    this.helloSweepAt = Math.max(1_024, 2 * this.seenHellos.size);
    if (this.seenHellos.size >= limit) throw new HandshakeCapacityError(limit);
  }

  private get gatekeeper(): Gatekeeper {
    this.gatekeeperOf ??= new Gatekeeper(this.need().system);
    return this.gatekeeperOf;
  }

  /** Frames on a local DID's inbox: hellos and data frames. */
  private onInbox(local: string, data: Uint8Array, reply: string | undefined): void {
    const host = this.need();
    try {
      const type = frameType(data);
      if (type === FRAME_HELLO) {
        const hello = decodeHello(data);
        if (hello.to !== local)
          throw new RelayFrameError(`hello for ${hello.to} arrived at the inbox of ${local}`);
        if (reply === undefined) throw new RelayFrameError('hello expected a reply address, got none');
        const sid = sidText(hello.sid);
        if (this.seenHellos.has(sid)) throw new SessionUnknownError(`${sid} (a replayed hello)`);
        const now = Date.now();
        this.makeRoomForHello(now);
        const answered = answerHandshake({
          suite: host.suite,
          hello,
          sign: (m) => host.keystore.sign(local, m),
          now,
          windowMs: HANDSHAKE_WINDOW_MS,
        });
        // Kept until the window check refuses the hello by itself.
        this.seenHellos.set(sid, hello.ts + HANDSHAKE_WINDOW_MS);
        // The recipient's gatekeeper decides on the (now authenticated) peer before any session exists:
        // a blocked sender, or a stranger to a private DID, gets no answer and retries with backoff.
        const verdict = this.gatekeeper.verdict(local, hello.from);
        if (verdict === 'blocked' || verdict === 'private') {
          answered.keys.sendKey.fill(0);
          answered.keys.receiveKey.fill(0);
          const refusal = new GatekeeperRefusedError(local, hello.from, verdict);
          host.authority.audit.append({
            action: 'relay.handshake',
            decision: 'deny',
            actor: hello.from,
            resource: local,
            code: refusal.code,
            reason: refusal.message,
          });
          throw refusal;
        }
        const pair = `${hello.from}\u0000${local}`;
        const previous = this.inboundByPair.get(pair);
        if (previous !== undefined) {
          const old = this.inbound.get(previous);
          // Held arrivals of a replaced session are never acknowledged: the sender sends them again.
          if (old !== undefined) {
            old.session.destroy();
            for (const arrival of old.held) arrival.permit.release();
            old.held = [];
          }
          this.inbound.delete(previous);
        }
        this.inbound.set(sid, {
          session: new Session(host.suite, answered.keys, {
            ...this.options.session,
            receiveOrder: 'strict',
          }),
          local,
          peer: hello.from,
          reply,
          reported: new Set(),
          sid,
          gate: this.mail === undefined ? 'open' : 'closed',
          held: [],
        });
        this.inboundByPair.set(pair, sid);
        this.transport.respond(reply, answered.frame);
        return;
      }
      if (type !== FRAME_DATA) throw new RelayFrameError(`frame type ${type} is not one a DID inbox takes`);
      const frame = decodeData(data);
      const sid = sidText(frame.sid);
      const inbound = this.inbound.get(sid);
      if (inbound === undefined) throw new SessionUnknownError(sid);
      let plaintext: Uint8Array;
      try {
        plaintext = inbound.session.open(frame);
      } catch (err) {
        // After a loss every later frame of the session is refused; report each kind once per session.
        const code = (err as AnxError).code ?? 'ANX_SESSION';
        this.stats.refused++;
        if (!inbound.reported.has(code)) {
          inbound.reported.add(code);
          this.refuse(err, data.length);
        }
        return;
      }
      for (const bytes of unpackBatch(plaintext)) {
        // The recipient's card limits its inbound traffic. A refused envelope is not acknowledged (and
        // its id not remembered), nor is any after it in the frame, so the sender keeps them and sends
        // them again later: nothing is lost.
        let permit: { release(): void };
        try {
          permit = this.need().authority.rateLimits.take(inbound.peer, inbound.local);
        } catch (err) {
          this.stats.refused++;
          if (!(err instanceof RateLimitedError)) throw err;
          return;
        }
        let arrival: Arrival;
        try {
          arrival = { ...this.decodeArrival(bytes, inbound), permit };
        } catch (err) {
          permit.release();
          throw err;
        }
        this.stats.received++;
        if (inbound.gate === 'open') {
          this.arrivals.push(arrival);
          this.scheduleArrivals();
          continue;
        }
        inbound.held.push(arrival);
        if (inbound.gate === 'closed') {
          inbound.gate = 'checking';
          void this.openGate(inbound);
        }
      }
    } catch (err) {
      this.stats.refused++;
      this.refuse(err, data.length);
    }
  }

  private decodeArrival(plaintext: Uint8Array, inbound: Inbound): Omit<Arrival, 'permit'> {
    let env: KernelEnvelope;
    try {
      env = packr.unpack(plaintext) as KernelEnvelope;
    } catch {
      throw new RelayFrameError('session frame expected one msgpack envelope');
    }
    if (typeof env !== 'object' || env === null || env.v !== 1)
      throw new RelayFrameError('session frame expected an envelope of version 1');
    if (env.from !== inbound.peer || env.to !== inbound.local)
      throw new RelayFrameError(
        `session frame expected an envelope from ${inbound.peer} to ${inbound.local}`,
      );
    if ((env as { enc?: unknown }).enc === SEALED_ENC) return this.openSealedArrival(plaintext, inbound);
    // Every header field is checked as a wire envelope's: the kernel indexes the context, stores the
    // type and trusts the rest as much as it trusts what the envelope checks let through.
    try {
      validateSessionEnvelope(env as unknown as Record<string, unknown>);
    } catch (err) {
      throw new RelayFrameError(`session frame envelope: ${(err as Error).message}`);
    }
    return { env: kernelEnvelopeFromWire(env, env.body), id: env.id, inbound };
  }

  /** A sealed, signed envelope inside a session: every envelope check, then the kernel form. */
  private openSealedArrival(bytes: Uint8Array, inbound: Inbound): Omit<Arrival, 'permit'> {
    const host = this.need();
    let xPriv: Uint8Array | undefined;
    try {
      const accepted = acceptEnvelope(bytes, {
        suite: host.suite,
        guard: this.mailGuard as DurableReplayGuard,
        windowMs: this.mailWindowMs,
        recipientX25519Private: (to) => {
          if (to !== inbound.local) return undefined;
          xPriv = host.keystore.x25519Private(to);
          return xPriv;
        },
      });
      return { env: kernelEnvelopeOf(accepted), id: accepted.envelope.id, inbound };
    } catch (err) {
      if (err instanceof EnvelopeDuplicateError && err.id !== undefined)
        return { env: undefined, id: err.id, inbound };
      // The session authenticated the peer, and the envelope claims to be from it: the bad signature is its own.
      if (err instanceof EnvelopeSignatureError) host.authority.trust.note(inbound.peer, 'bad_signature');
      throw err;
    } finally {
      xPriv?.fill(0);
    }
  }

  private scheduleArrivals(): void {
    if (this.arrivalsScheduled) return;
    this.arrivalsScheduled = true;
    setImmediate(() => void this.acceptArrivals());
  }

  /** Lets a new session's arrivals through once the mail stored for its recipient is committed. */
  private async openGate(inbound: Inbound): Promise<void> {
    const drained = await (this.mail as MailStore).waitDelivered(
      inbound.local,
      inbound.peer,
      MAIL_DRAIN_WAIT_MS,
    );
    if (this.closed || this.inbound.get(inbound.sid) !== inbound) return;
    if (!drained) {
      this.hostEvent('error', {
        code: 'ANX_MAIL_UNDRAINED',
        level: 'warning',
        message: `stored mail for ${inbound.local} was not confirmed drained within ${MAIL_DRAIN_WAIT_MS} ms; taking session traffic from ${inbound.peer} anyway`,
      });
    }
    inbound.gate = 'open';
    for (const arrival of inbound.held) this.arrivals.push(arrival);
    inbound.held = [];
    this.scheduleArrivals();
  }

  /** Commits what arrived in this tick, then acknowledges it per session. */
  private async acceptArrivals(): Promise<void> {
    this.arrivalsScheduled = false;
    const batch = this.arrivals;
    this.arrivals = [];
    if (batch.length === 0 || this.host === undefined) return;
    try {
      await this.host.system.accept(batch.flatMap((a) => (a.env === undefined ? [] : [a.env])));
      // Sealed envelopes seen before were refused by the replay guard: acknowledge once that is durable.
      if (batch.some((a) => a.env === undefined)) await this.host.system.commits.drain();
    } catch {
      return;
    } finally {
      for (const arrival of batch) arrival.permit.release();
    }
    const bySession = new Map<Inbound, string[]>();
    for (const { id, inbound } of batch) {
      let ids = bySession.get(inbound);
      if (ids === undefined) {
        ids = [];
        bySession.set(inbound, ids);
      }
      ids.push(id);
    }
    for (const [inbound, ids] of bySession) {
      if (this.closed) return;
      this.transport.respond(inbound.reply, inbound.session.seal(packr.pack(ids)));
    }
  }

  /** Offline mail for a local DID: opened, committed, then acknowledged to JetStream. */
  private async acceptMail(
    did: string,
    batch: Array<{ data: Uint8Array; ack(): void; term(): void }>,
  ): Promise<void> {
    const host = this.need();
    const windowMs = this.mailWindowMs;
    const take: KernelEnvelope[] = [];
    const ack: Array<() => void> = [];
    let xPriv: Uint8Array | undefined;
    try {
      for (const item of batch) {
        try {
          const accepted = acceptEnvelope(item.data, {
            suite: host.suite,
            guard: this.mailGuard as DurableReplayGuard,
            windowMs,
            recipientX25519Private: (to) => {
              if (to !== did || !host.keystore.has(to)) return undefined;
              xPriv ??= host.keystore.x25519Private(to);
              return xPriv;
            },
          });
          const env = kernelEnvelopeOf(accepted);
          take.push(env);
          ack.push(() => item.ack());
        } catch (err) {
          if (err instanceof EnvelopeDuplicateError) {
            ack.push(() => item.ack());
            continue;
          }
          this.stats.refused++;
          this.refuse(err, item.data.length);
          item.term();
        }
      }
    } finally {
      xPriv?.fill(0);
    }
    await host.system.accept(take);
    await host.system.commits.drain();
    this.stats.mailReceived += take.length;
    for (const fn of ack) fn();
  }

  // ---- presence ----

  private tick(): void {
    this.syncLocalDids();
    this.announce();
    // DID actors keep a 30 s presence deadline: refresh it every few heartbeats while connected.
    if (
      ++this.beat % Math.max(1, Math.round(10_000 / this.heartbeatMs)) === 0 &&
      this.transport.status === 'connected'
    )
      this.tellLocal('presence.heartbeat');
  }

  private announce(): void {
    if (this.closed) return;
    this.transport.announce(
      this.hostId,
      (this.signer as HeartbeatSigner).heartbeat(
        [...this.localDids].filter(([, d]) => d.ready).map(([did]) => did),
        this.heartbeatMs,
        false,
        this.transport.server,
      ),
    );
  }

  private tellLocal(type: 'presence.online' | 'presence.offline' | 'presence.heartbeat'): void {
    const host = this.host;
    if (host === undefined || this.closed) return;
    for (const did of this.localDids.keys()) {
      try {
        host.system.tell(host.system.envelope({ type, from: 'host', to: did }));
      } catch {
        // The host is stopping.
      }
    }
  }

  /** Subscribes DIDs created since the last heartbeat (and their mail). */
  private syncLocalDids(): void {
    const host = this.need();
    for (const record of host.keystore.list()) {
      if (this.localDids.has(record.did)) continue;
      const did = record.did;
      const sub = this.transport.listenDid(did, (f) => this.onInbox(did, f.data, f.reply));
      const entry: {
        sub: Subscription;
        mail?: { stop(): void };
        ready: boolean;
        timer?: ReturnType<typeof setTimeout>;
      } = { sub, ready: this.mail === undefined };
      this.localDids.set(did, entry);
      if (this.mail !== undefined) {
        const ready = () => {
          if (entry.ready) return;
          entry.ready = true;
          if (entry.timer !== undefined) clearTimeout(entry.timer);
          this.announce();
        };
        entry.mail = this.mail.consume(did, (batch) => this.acceptMail(did, batch), ready);
        // Without JetStream (hub unreachable) the DID still goes online for traffic that needs no hub.
        entry.timer = setTimeout(ready, MAIL_DRAIN_WAIT_MS);
        entry.timer.unref?.();
      }
    }
  }

  /** Records a host event (a status or an error) without waiting; a stopping host drops it. */
  private hostEvent(kind: 'status' | 'error', payload: Record<string, unknown>): void {
    const host = this.host;
    if (host === undefined) return;
    void host.system.emitEvent({ kind, actor: 'host', payload }).catch(() => {});
  }

  private refuse(err: unknown, bytes: number): void {
    if (this.closed) return;
    const event = envelopeErrorEvent(err, bytes, Date.now());
    if (err instanceof SessionError || err instanceof RelayFrameError || err instanceof AnxError) {
      event.payload.code = (err as AnxError).code;
      event.payload.message = (err as AnxError).message;
    }
    this.hostEvent('error', event.payload);
  }

  private need(): Host {
    if (this.host === undefined)
      throw new AnxError('ANX_RELAY_UNBOUND', 'the relay was started before its host was bound');
    return this.host;
  }

  private needJetStream<T>(value: T | undefined, what: string): T {
    if (value === undefined) {
      throw new RelayUnavailableError(
        'ANX_RELAY_UNAVAILABLE',
        `${what} needs the relay's JetStream, and this host has no relay`,
        {
          hint: 'start the host with --relay nats-leaf://… or --nats nats://…',
        },
      );
    }
    return value;
  }
}

/** The kernel's form of an accepted wire envelope (opened, if it was sealed). */
function kernelEnvelopeOf(accepted: ReturnType<typeof acceptEnvelope>): KernelEnvelope {
  return kernelEnvelopeFromWire(accepted.envelope, accepted.body);
}

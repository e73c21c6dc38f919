// Presence: each host's heartbeat lists its DIDs; a DID whose heartbeats stop is offline within three intervals.
import { Packr } from 'msgpackr';
import type { Clock } from '../../runtime/clock.ts';

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

/**
 * A DID's statement that `host` (identified by its key) may announce it: signed by the DID, valid
 * until `exp`. A heartbeat counts a DID only under a grant naming the heartbeat's own key.
 */
export interface PresenceGrant {
  did: string;
  exp: number;
  sig: Uint8Array;
}

/**
 * One host's announcement, signed by the host key. `bye` says it is leaving: its DIDs are offline
 * at once. `grants` carries the DIDs' grants (all of them, or a rotating share on large hosts).
 */
export interface Heartbeat {
  v: 1;
  host: string;
  /** The host's Ed25519 public key (32 bytes). */
  key: Uint8Array;
  dids: string[];
  grants: PresenceGrant[];
  /** The host's heartbeat interval (ms): watchers expire it after `OFFLINE_AFTER_INTERVALS` × interval. */
  interval: number;
  ts: number;
  bye?: boolean;
  /** Name of the relay server (leaf or hub) the host is connected through. */
  leaf?: string;
  /** Ed25519 signature by `key` over `heartbeatSigningInput`. */
  sig: Uint8Array;
}

/** What a verified heartbeat tells the tracker: `host` is the announcing key, `dids` only granted ones. */
export interface PresenceUpdate {
  host: string;
  dids: string[];
  interval: number;
  bye?: boolean;
  leaf?: string;
}

/** A DID is offline once this many intervals passed without a heartbeat naming it (under 3, as promised). */
export const OFFLINE_AFTER_INTERVALS = 2.5;
const MAX_DIDS = 100_000;
/** Longest heartbeat interval a watcher honours: a host cannot keep its DIDs online for longer. */
export const MAX_INTERVAL_MS = 60_000;
/** How far a heartbeat's `ts` may be from the watcher's clock on first contact. */
export const HEARTBEAT_WINDOW_MS = 5 * 60_000;
const GRANT_TTL_MS = 60 * 60_000;
const GRANT_RENEW_MS = 10 * 60_000;
/** Grants per heartbeat on hosts with more DIDs than this: the rest follow in later beats. */
const GRANTS_PER_BEAT = 256;

export function grantSigningInput(did: string, host: string, key: Uint8Array, exp: number): Uint8Array {
  return packr.pack(['anx.presence.grant.v1', did, host, key, exp]);
}

export function heartbeatSigningInput(hb: Omit<Heartbeat, 'sig'>): Uint8Array {
  return packr.pack([
    'anx.presence.hb.v1',
    hb.host,
    hb.key,
    hb.dids,
    hb.grants.map((g) => [g.did, g.exp, g.sig]),
    hb.interval,
    hb.ts,
    hb.bye === true ? 1 : 0,
    hb.leaf ?? '',
  ]);
}

export function encodeHeartbeat(hb: Heartbeat): Uint8Array {
  return packr.pack(hb);
}

const isBytes = (v: unknown, n: number): v is Uint8Array => v instanceof Uint8Array && v.length === n;

/** The heartbeat in `bytes`, or undefined for anything malformed (heartbeats from strangers are not trusted with errors). */
export function decodeHeartbeat(bytes: Uint8Array): Heartbeat | undefined {
  let raw: unknown;
  try {
    raw = packr.unpack(bytes);
  } catch {
    return undefined;
  }
  const hb = raw as Partial<Heartbeat> | null;
  if (typeof hb !== 'object' || hb === null || hb.v !== 1) return undefined;
  if (typeof hb.host !== 'string' || !Array.isArray(hb.dids) || hb.dids.length > MAX_DIDS) return undefined;
  if (typeof hb.interval !== 'number' || !(hb.interval > 0) || typeof hb.ts !== 'number') return undefined;
  if (!isBytes(hb.key, 32) || !isBytes(hb.sig, 64) || !Array.isArray(hb.grants)) return undefined;
  if (hb.grants.length > MAX_DIDS || !hb.dids.every((d) => typeof d === 'string')) return undefined;
  if (hb.leaf !== undefined && (typeof hb.leaf !== 'string' || hb.leaf.length > 256)) return undefined;
  for (const g of hb.grants as unknown[]) {
    const grant = g as Partial<PresenceGrant> | null;
    if (typeof grant !== 'object' || grant === null) return undefined;
    if (typeof grant.did !== 'string' || typeof grant.exp !== 'number' || !isBytes(grant.sig, 64))
      return undefined;
  }
  return {
    v: 1,
    host: hb.host,
    key: hb.key,
    dids: hb.dids,
    grants: hb.grants as PresenceGrant[],
    interval: hb.interval,
    ts: hb.ts,
    ...(hb.bye === true ? { bye: true } : {}),
    ...(hb.leaf === undefined ? {} : { leaf: hb.leaf }),
    sig: hb.sig,
  };
}

/** What signs heartbeats: the host key, and the keys of the DIDs it announces. */
export interface HeartbeatKeys {
  hostPublicKey(): Uint8Array;
  hostSign(message: Uint8Array): Uint8Array;
  sign(did: string, message: Uint8Array): Uint8Array;
}

/** Builds this host's signed heartbeats, keeping each DID's grant until it nears expiry. */
export class HeartbeatSigner {
  private readonly key: Uint8Array;
  private readonly grants = new Map<string, PresenceGrant>();
  private rotation = 0;

  constructor(
    private readonly host: string,
    private readonly keys: HeartbeatKeys,
    private readonly now: () => number = Date.now,
  ) {
    this.key = keys.hostPublicKey();
  }

  heartbeat(dids: string[], interval: number, bye = false, leaf?: string): Uint8Array {
    const now = this.now();
    const grants: PresenceGrant[] = [];
    const known: PresenceGrant[] = [];
    for (const did of dids) {
      let grant = this.grants.get(did);
      if (grant === undefined || grant.exp - now < GRANT_RENEW_MS) {
        const exp = now + GRANT_TTL_MS;
        grant = { did, exp, sig: this.keys.sign(did, grantSigningInput(did, this.host, this.key, exp)) };
        this.grants.set(did, grant);
        grants.push(grant);
      } else known.push(grant);
    }
    for (const did of this.grants.keys()) if (!dids.includes(did)) this.grants.delete(did);
    // New and renewed grants always go out; the others take turns so large hosts stay under the size cap.
    if (known.length <= GRANTS_PER_BEAT) grants.push(...known);
    else {
      for (let i = 0; i < GRANTS_PER_BEAT; i++) grants.push(known[(this.rotation + i) % known.length]!);
      this.rotation = (this.rotation + GRANTS_PER_BEAT) % known.length;
    }
    const body: Omit<Heartbeat, 'sig'> = {
      v: 1,
      host: this.host,
      key: this.key,
      dids: bye ? [] : dids,
      grants: bye ? [] : grants,
      interval,
      ts: now,
      ...(bye ? { bye: true } : {}),
      ...(leaf === undefined ? {} : { leaf }),
    };
    return encodeHeartbeat({ ...body, sig: this.keys.hostSign(heartbeatSigningInput(body)) });
  }
}

/**
 * Why a heartbeat was not taken (for the relay's statistics and tests). `repeated`: the very heartbeat
 * taken last from that host key, announced again for a host that just started watching; nothing is
 * wrong with it, there is just nothing new in it.
 */
export type HeartbeatRefusal = 'signature' | 'stale' | 'replayed' | 'repeated' | 'interval';

/**
 * Checks heartbeats before the tracker sees them: the host key's signature, freshness (each key's
 * `ts` strictly increasing, and within `HEARTBEAT_WINDOW_MS` of this clock), and each DID's grant
 * for that key. A host can only announce DIDs that granted it, and only its own key can say `bye`
 * for them; a replayed heartbeat changes nothing.
 */
export class HeartbeatVerifier {
  private readonly lastTs = new Map<string, number>();
  private readonly grants = new Map<string, { host: string; exp: number; sig: string }>();

  constructor(
    private readonly verify: (publicKey: Uint8Array, message: Uint8Array, sig: Uint8Array) => boolean,
    private readonly publicKeyOf: (did: string) => Uint8Array | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  check(hb: Heartbeat): PresenceUpdate | HeartbeatRefusal {
    const now = this.now();
    if (hb.interval > MAX_INTERVAL_MS) return 'interval';
    const keyId = Buffer.from(hb.key).toString('base64url');
    const last = this.lastTs.get(keyId);
    if (last !== undefined && hb.ts === last) return 'repeated';
    if (last !== undefined && hb.ts < last) return 'replayed';
    if (Math.abs(hb.ts - now) > HEARTBEAT_WINDOW_MS) return 'stale';
    const { sig, ...body } = hb;
    if (!this.verify(hb.key, heartbeatSigningInput(body), sig)) return 'signature';
    this.lastTs.set(keyId, hb.ts);
    if (this.lastTs.size > 10_000) this.pruneKeys(now);
    if (hb.bye) return { host: keyId, dids: [], interval: hb.interval, bye: true };
    for (const grant of hb.grants) {
      const sigText = Buffer.from(grant.sig).toString('base64url');
      const cached = this.grants.get(grant.did);
      if (cached?.host === keyId && cached.sig === sigText) continue;
      if (grant.exp <= now) continue;
      const pub = this.publicKeyOf(grant.did);
      if (pub === undefined) continue;
      if (!this.verify(pub, grantSigningInput(grant.did, hb.host, hb.key, grant.exp), grant.sig)) continue;
      // A newer grant to another key moves the DID (it was re-homed); an older one does not.
      if (cached !== undefined && cached.host !== keyId && cached.exp > grant.exp && cached.exp > now)
        continue;
      this.grants.set(grant.did, { host: keyId, exp: grant.exp, sig: sigText });
    }
    const dids: string[] = [];
    for (const did of hb.dids) {
      const grant = this.grants.get(did);
      if (grant !== undefined && grant.host === keyId && grant.exp > now) dids.push(did);
    }
    return { host: keyId, dids, interval: hb.interval, ...(hb.leaf === undefined ? {} : { leaf: hb.leaf }) };
  }

  private pruneKeys(now: number): void {
    for (const [key, ts] of this.lastTs) if (now - ts > HEARTBEAT_WINDOW_MS) this.lastTs.delete(key);
  }
}

export type PresenceChange = { did: string; online: boolean; host: string };

interface Entry {
  host: string;
  until: number;
}

/**
 * What this host knows of every DID's presence, from heartbeats. `sweep()` (run on a timer by the
 * relay) expires silent hosts; listeners hear each change once.
 */
export class PresenceTracker {
  private readonly dids = new Map<string, Entry>();
  private readonly hosts = new Map<string, Set<string>>();
  private readonly leaves = new Map<string, string | undefined>();
  private readonly listeners = new Set<(change: PresenceChange) => void>();

  constructor(private readonly clock: Clock) {}

  onChange(fn: (change: PresenceChange) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  isOnline(did: string): boolean {
    const entry = this.dids.get(did);
    return entry !== undefined && entry.until >= this.clock.now();
  }

  /** The host currently announcing `did`, when it is online. */
  hostOf(did: string): string | undefined {
    return this.isOnline(did) ? this.dids.get(did)?.host : undefined;
  }

  online(): string[] {
    const now = this.clock.now();
    return [...this.dids].filter(([, e]) => e.until >= now).map(([did]) => did);
  }

  observe(hb: PresenceUpdate): void {
    const previous = this.hosts.get(hb.host) ?? new Set<string>();
    if (hb.bye) {
      for (const did of previous) this.drop(did, hb.host);
      this.hosts.delete(hb.host);
      this.leaves.delete(hb.host);
      return;
    }
    this.leaves.set(hb.host, hb.leaf);
    const until = this.clock.now() + hb.interval * OFFLINE_AFTER_INTERVALS;
    const current = new Set(hb.dids);
    for (const did of previous) if (!current.has(did)) this.drop(did, hb.host);
    for (const did of current) {
      const entry = this.dids.get(did);
      const wasOnline = entry !== undefined && entry.until >= this.clock.now();
      this.dids.set(did, { host: hb.host, until });
      if (!wasOnline) this.emit({ did, online: true, host: hb.host });
    }
    this.hosts.set(hb.host, current);
  }

  /** Hosts with DIDs online now: the announcing key, the relay server it uses, how many DIDs. */
  onlineHosts(): Array<{ host: string; leaf: string | undefined; dids: number }> {
    const now = this.clock.now();
    const count = new Map<string, number>();
    for (const entry of this.dids.values())
      if (entry.until >= now) count.set(entry.host, (count.get(entry.host) ?? 0) + 1);
    return [...count].map(([host, dids]) => ({ host, leaf: this.leaves.get(host), dids }));
  }

  /** Marks DIDs whose deadline passed as offline. */
  sweep(): void {
    const now = this.clock.now();
    for (const [did, entry] of this.dids) {
      if (entry.until < now) {
        this.dids.delete(did);
        this.hosts.get(entry.host)?.delete(did);
        this.emit({ did, online: false, host: entry.host });
      }
    }
  }

  private drop(did: string, host: string): void {
    const entry = this.dids.get(did);
    if (entry === undefined || entry.host !== host) return;
    this.dids.delete(did);
    this.emit({ did, online: false, host });
  }

  private emit(change: PresenceChange): void {
    for (const fn of this.listeners) fn(change);
  }
}

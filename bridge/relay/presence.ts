// Presence: each host's heartbeat lists its DIDs; a DID whose heartbeats stop is offline within three intervals.
import { Packr } from 'msgpackr';
import type { Clock } from '../../runtime/clock.ts';
import { isDid } from '../../runtime/identity/did.ts';

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

/** One host's announcement. `bye` says it is leaving: its DIDs are offline at once. */
export interface Heartbeat {
  v: 1;
  host: string;
  dids: string[];
  /** The host's heartbeat interval (ms): watchers expire it after `OFFLINE_AFTER_INTERVALS` × interval. */
  interval: number;
  ts: number;
  bye?: boolean;
}

/** A DID is offline once this many intervals passed without a heartbeat naming it (under 3, as promised). */
export const OFFLINE_AFTER_INTERVALS = 2.5;
const MAX_DIDS = 100_000;

export function encodeHeartbeat(hb: Heartbeat): Uint8Array {
  return packr.pack(hb);
}

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
  const dids = hb.dids.filter((d): d is string => isDid(d, 'agentnexus'));
  return {
    v: 1,
    host: hb.host,
    dids,
    interval: hb.interval,
    ts: hb.ts,
    ...(hb.bye === true ? { bye: true } : {}),
  };
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

  observe(hb: Heartbeat): void {
    const previous = this.hosts.get(hb.host) ?? new Set<string>();
    if (hb.bye) {
      for (const did of previous) this.drop(did, hb.host);
      this.hosts.delete(hb.host);
      return;
    }
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

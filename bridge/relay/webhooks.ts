// Push webhooks: a DID registers a URL; when mail is stored for it while offline, an HMAC-signed notice (no content) is POSTed.
import { createHmac } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import type { CryptoSuite } from '../../runtime/crypto/suite.ts';
import { AnxError, describeValue } from '../../runtime/errors.ts';
import { parseDid } from '../../runtime/identity/did.ts';
import { canonicalJson } from './cards.ts';
import { Bucket, removedEntry } from './kv-bucket.ts';
import { didKey, WEBHOOK_BUCKET } from './subjects.ts';

/** A registration: where to notify `did`, and the secret the notices are signed with. */
export interface WebhookRegistration {
  v: 1;
  did: string;
  url: string;
  /** HMAC-SHA256 key (base64url). Relay members can read it: notices carry no content. */
  secret: string;
  ts: number;
}

/** A registration that is malformed or not signed by its DID (`ANX_WEBHOOK_INVALID`). */
export class WebhookError extends AnxError {
  constructor(message: string, hint?: string) {
    super('ANX_WEBHOOK_INVALID', message, hint === undefined ? undefined : { hint });
  }
}

const PREFIX = new TextEncoder().encode('anx-webhook-sig\0');

function signingInput(reg: WebhookRegistration): Uint8Array {
  const body = new TextEncoder().encode(canonicalJson(reg));
  const out = new Uint8Array(PREFIX.length + body.length);
  out.set(PREFIX, 0);
  out.set(body, PREFIX.length);
  return out;
}

/** Checks a registration's fields (throws `WebhookError`). */
export function checkRegistration(reg: Partial<WebhookRegistration>): WebhookRegistration {
  try {
    parseDid(reg.did, 'did');
  } catch {
    throw new WebhookError(`"did" expected a did:agentnexus DID, got ${describeValue(reg.did)}`);
  }
  let url: URL;
  try {
    url = new URL(String(reg.url));
  } catch {
    throw new WebhookError(`"url" expected an http(s) URL, got ${describeValue(reg.url)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new WebhookError(`"url" expected an http(s) URL, got ${describeValue(reg.url)}`);
  if (typeof reg.secret !== 'string' || reg.secret.length < 16 || reg.secret.length > 256)
    throw new WebhookError('"secret" expected 16 to 256 characters', 'leave it out to have one generated');
  return { v: 1, did: reg.did as string, url: url.toString(), secret: reg.secret, ts: Number(reg.ts ?? 0) };
}

/** The signature header of a notice body: `sha256=` + hex HMAC-SHA256(secret, timestamp + "." + body). */
export function noticeSignature(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * Registrations from the KV bucket `anx_v1_webhooks` (watched into memory), and the notices. A
 * notice is at most one POST per DID per `minGapMs`, counting the messages stored since the last.
 */
export class Webhooks {
  private readonly bucket: Bucket;
  /** Each registration taken, by DID, with its signature: what goes back into the bucket after a removal. */
  private readonly regs = new Map<string, { reg: WebhookRegistration; sig: string }>();
  private readonly pending = new Map<
    string,
    { count: number; timer: ReturnType<typeof setTimeout> | undefined; last: number }
  >();
  private stopped = false;

  private readonly minGapMs: number;
  private readonly isLocal: (did: string) => boolean;
  private readonly onInvalid: (key: string, error: AnxError) => void;

  constructor(
    nc: NatsConnection,
    private readonly suite: CryptoSuite,
    private readonly report: (event: { did: string; ok: boolean; status?: number; error?: string }) => void,
    options: {
      /** Least time between two notices to one DID (ms). Default 1 s. */
      minGapMs?: number;
      /** Whether a DID lives on this host: its registration is put back after a removal. */
      isLocal?: (did: string) => boolean;
      /** Told of delete and purge markers in the bucket. */
      onInvalid?: (key: string, error: AnxError) => void;
    } = {},
  ) {
    this.bucket = new Bucket(nc, WEBHOOK_BUCKET, { history: 1 });
    this.minGapMs = options.minGapMs ?? 1_000;
    this.isLocal = options.isLocal ?? (() => false);
    this.onInvalid = options.onInvalid ?? (() => {});
  }

  start(): void {
    void this.run();
  }

  get(did: string): WebhookRegistration | undefined {
    return this.regs.get(did)?.reg;
  }

  async register(reg: WebhookRegistration, sign: (m: Uint8Array) => Uint8Array): Promise<void> {
    const signed = { reg, sig: Buffer.from(sign(signingInput(reg))).toString('hex') };
    await this.bucket.putJson(didKey(reg.did), signed);
    this.regs.set(reg.did, signed);
  }

  /** Mail was stored for `did`: notify its webhook (coalesced), if it registered one. */
  mailStored(did: string, count = 1): void {
    if (!this.regs.has(did)) return;
    let entry = this.pending.get(did);
    if (entry === undefined) {
      entry = { count: 0, timer: undefined, last: 0 };
      this.pending.set(did, entry);
    }
    entry.count += count;
    if (entry.timer !== undefined) return;
    const wait = Math.max(0, entry.last + this.minGapMs - Date.now());
    const e = entry;
    e.timer = setTimeout(() => {
      e.timer = undefined;
      e.last = Date.now();
      const n = e.count;
      e.count = 0;
      void this.post(did, n);
    }, wait);
    e.timer.unref?.();
  }

  stop(): void {
    this.stopped = true;
    for (const e of this.pending.values()) if (e.timer !== undefined) clearTimeout(e.timer);
  }

  private async post(did: string, count: number): Promise<void> {
    const reg = this.regs.get(did)?.reg;
    if (reg === undefined) return;
    const ts = Date.now();
    const body = JSON.stringify({ type: 'anx.mail.stored', did, count, ts });
    try {
      const res = await fetch(reg.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-anx-timestamp': String(ts),
          'x-anx-signature': noticeSignature(reg.secret, ts, body),
        },
        body,
        signal: AbortSignal.timeout(5_000),
      });
      this.report({ did, ok: res.ok, status: res.status });
    } catch (err) {
      this.report({ did, ok: false, error: (err as Error)?.message ?? String(err) });
    }
  }

  private async run(): Promise<void> {
    await this.bucket.follow({
      stopped: () => this.stopped,
      onEntry: (entry) => this.take(entry.key, entry.value),
      // A registration is replaced, never withdrawn: a removal keeps it here, and the DID's host puts it back.
      onRemoved: async (key, operation) => {
        const did = [...this.regs.keys()].find((d) => didKey(d) === key);
        const signed = did === undefined ? undefined : this.regs.get(did);
        const restore = did !== undefined && signed !== undefined && this.isLocal(did);
        if (restore) await this.bucket.putJson(key, signed).catch(() => {});
        this.onInvalid(key, removedEntry(WEBHOOK_BUCKET, key, operation, restore, signed !== undefined));
      },
    });
  }

  private take(key: string, value: Uint8Array): void {
    try {
      const raw = JSON.parse(new TextDecoder().decode(value)) as {
        reg?: Partial<WebhookRegistration>;
        sig?: unknown;
      };
      const reg = checkRegistration(raw.reg ?? {});
      const parsed = parseDid(reg.did);
      if (parsed.multikey !== key || typeof raw.sig !== 'string' || !/^[0-9a-f]{128}$/.test(raw.sig)) return;
      if (
        !this.suite.verify(parsed.publicKey, signingInput(reg), new Uint8Array(Buffer.from(raw.sig, 'hex')))
      )
        return;
      this.regs.set(reg.did, { reg, sig: raw.sig });
    } catch {
      // A registration that does not verify is ignored: nobody may redirect another DID's notices.
    }
  }
}

// Offline mail: sealed envelopes for a DID that is offline, kept in a JetStream work-queue stream until it returns.
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
import { type NatsConnection, nanos } from '@nats-io/transport-node';
import { AnxError } from '../../runtime/errors.ts';
import { JETSTREAM_DOMAIN } from './nats-server.ts';
import { didKey, MAIL_STREAM, MAIL_SUBJECTS, mailFilter, mailSubject } from './subjects.ts';

/** Storing mail failed: the relay's JetStream is unreachable or refused it (`ANX_MAIL_STORE`). */
export class MailStoreError extends AnxError {
  constructor(to: string, cause: unknown) {
    super(
      'ANX_MAIL_STORE',
      `offline mail for ${to} could not be stored: ${(cause as Error)?.message ?? cause}`,
      {
        cause,
        hint: 'the hub (JetStream) is unreachable; the message stays in the outbox and is retried',
      },
    );
  }
}

/**
 * The relay refused to store more mail: this sender already has the most messages waiting for this
 * recipient that the stream allows, or the stream is full (`ANX_MAIL_QUOTA`). Nothing is lost: the
 * message stays in the sender's outbox and is stored once the recipient has drained its mail.
 */
export class MailQuotaError extends AnxError {
  constructor(to: string, from: string, limit: string) {
    super('ANX_MAIL_QUOTA', `offline mail from ${from} to ${to} was refused: ${limit}`, {
      hint: 'the message stays in the outbox and is stored again once the recipient comes back and reads its mail',
    });
  }
}

/** JetStream's error codes for a publish refused by a stream limit. */
const LIMIT_CODES = new Map<number, string>([
  [10077, 'the sender has the most messages waiting for this recipient that the relay allows'],
  [10047, 'the relay has no storage left for mail'],
]);

/** One stored message handed to a consumer; `ack` once it is committed, `term` to drop a bad one. */
export interface MailItem {
  data: Uint8Array;
  ack(): void;
  term(): void;
}

/** How long mail waits for its DID unless told otherwise: 7 days. */
export const DEFAULT_MAIL_RETENTION_MS = 7 * 24 * 60 * 60_000;

export interface MailStoreOptions {
  /** How long mail waits for its DID (ms). Default 7 days. */
  retentionMs?: number;
  /** Most messages one sender may have waiting for one recipient. Default 10,000. */
  maxPerSender?: number;
  /** Most bytes the whole stream holds. Default 1 GiB. */
  maxBytes?: number;
}

/**
 * The mail stream `ANX_V1_MAIL` (subjects `anx.v1.mail.<recipient>.<sender>`, work-queue retention, file
 * storage) and one durable pull consumer per DID, named by its multikey. A message is removed
 * only when its recipient's host acknowledges it after its own commit.
 */
export class MailStore {
  private js: JetStreamClient;
  private jsm: JetStreamManager | undefined;
  private ready: Promise<void> | undefined;
  /** The stream was found or made: publishes need not wait for `ready`. */
  private streamReady = false;
  readonly retentionMs: number;
  /** The stream's own `max_age` (ms) once it is known and finite: another host, or its operator, may have set it longer. */
  private streamMaxAgeMs = 0;
  /** Told the new `windowMs` when finding the stream makes it longer (see `onWindow`). */
  private windowListener: ((windowMs: number) => void) | undefined;
  readonly maxPerSender: number;
  readonly maxBytes: number;

  constructor(
    private readonly nc: NatsConnection,
    options: MailStoreOptions = {},
  ) {
    this.js = jetstream(nc, { timeout: 5_000, domain: JETSTREAM_DOMAIN });
    this.retentionMs = options.retentionMs ?? DEFAULT_MAIL_RETENTION_MS;
    this.maxPerSender = options.maxPerSender ?? 10_000;
    this.maxBytes = options.maxBytes ?? 1024 ** 3;
  }

  /**
   * Creates the stream when missing, and gives a stream created without limits its per-sender cap
   * and size limit (limits another host already set are kept) and its refusal of message deletes and
   * purges; retried on the next call after a failure.
   */
  ensureStream(): Promise<void> {
    this.ready ??= (async () => {
      this.jsm = await jetstreamManager(this.nc, { timeout: 5_000, domain: JETSTREAM_DOMAIN });
      const limits = {
        max_msgs_per_subject: this.maxPerSender,
        max_bytes: this.maxBytes,
        discard: DiscardPolicy.New,
        discard_new_per_subject: true,
      };
      let existing: Awaited<ReturnType<JetStreamManager['streams']['info']>> | undefined;
      try {
        existing = await this.jsm.streams.info(MAIL_STREAM);
      } catch {
        await this.jsm.streams.add({
          name: MAIL_STREAM,
          subjects: [MAIL_SUBJECTS],
          retention: RetentionPolicy.Workqueue,
          storage: StorageType.File,
          max_age: nanos(this.retentionMs),
          duplicate_window: nanos(2 * 60_000),
          // Mail leaves only when its recipient's host acknowledges it: JetStream refuses requests to
          // delete or purge messages, whoever holds the join URL sends them.
          deny_delete: true,
          deny_purge: true,
          ...limits,
        });
        this.streamReady = true;
        return;
      }
      const config = existing.config;
      // JetStream counts in nanoseconds; 0 is "no limit", which no window can follow.
      if (config.max_age > 0) {
        const before = this.windowMs;
        this.streamMaxAgeMs = Math.floor(config.max_age / 1e6);
        if (this.windowMs > before) this.windowListener?.(this.windowMs);
      }
      // A stream made by an earlier version gets the refusals too (JetStream lets them be turned on,
      // never off again).
      if (
        !(config.max_msgs_per_subject > 0) ||
        config.discard_new_per_subject !== true ||
        config.deny_delete !== true ||
        config.deny_purge !== true
      )
        await this.jsm.streams.update(MAIL_STREAM, {
          ...config,
          ...limits,
          deny_delete: true,
          deny_purge: true,
        });
      this.streamReady = true;
    })().catch((err) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  /**
   * How old a stored message may be when it is delivered: this store's retention, or the stream's
   * `max_age` when that is longer (known once the stream was found; see `ensureStream`).
   */
  get windowMs(): number {
    return Math.max(this.retentionMs, this.streamMaxAgeMs);
  }

  /** Calls `listener` with the new `windowMs` whenever it grows (once the stream is found with a longer `max_age`). */
  onWindow(listener: (windowMs: number) => void): void {
    this.windowListener = listener;
  }

  /**
   * Stores one sealed envelope from `from` for `to`; resolves with its stream sequence once JetStream
   * has it (`msgId` dedupes retries: a retry of a message already stored answers the first one's
   * sequence). Throws `MailQuotaError` when a stream limit refuses it, `MailStoreError` otherwise.
   */
  async store(to: string, from: string, msgId: string, bytes: Uint8Array): Promise<number> {
    try {
      // Once the stream is known, the publish leaves in this call (a caller overlaps its next work with the round trip).
      if (!this.streamReady) await this.ensureStream();
      const ack = await this.js.publish(mailSubject(to, from), bytes, { msgID: msgId, timeout: 5_000 });
      return ack.seq;
    } catch (cause) {
      const limit = cause instanceof JetStreamApiError ? LIMIT_CODES.get(cause.code) : undefined;
      if (limit !== undefined) throw new MailQuotaError(to, from, limit);
      // The stream may be gone (a hub that lost its storage): the next store looks for it again.
      this.ready = undefined;
      this.streamReady = false;
      throw new MailStoreError(to, cause);
    }
  }

  /**
   * Waits until every message `from` stored for `did` up to now has been acknowledged by its consumer
   * (committed by the recipient's host). Resolves `true` once it has, `false` when `timeoutMs`
   * passed or JetStream did not answer. A receiver calls it before taking session traffic from a
   * sender that may have mailed it: the sender opens a session only after its mail is stored, so
   * mail stored before this call is all mail that session traffic must not overtake.
   */
  async waitDelivered(did: string, from: string, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    try {
      await this.ensureStream();
      const jsm = this.jsm as JetStreamManager;
      const last = await jsm.streams.getMessage(MAIL_STREAM, { last_by_subj: mailSubject(did, from) });
      if (last === null) return true;
      const name = didKey(did);
      while (Date.now() < deadline) {
        const info = await jsm.consumers.info(MAIL_STREAM, name).catch(() => undefined);
        if (info !== undefined && info.ack_floor.stream_seq >= last.seq) return true;
        // Work-queue retention deletes a message once acknowledged.
        const still = await jsm.streams.getMessage(MAIL_STREAM, { seq: last.seq }).catch(() => last);
        if (still === null) return true;
        await new Promise((r) => setTimeout(r, 25));
      }
    } catch {
      // JetStream unreachable: no mail can arrive now either.
    }
    return false;
  }

  /**
   * Makes `did`'s durable consumer afresh. A consumer left by a previous run of this host (or an
   * earlier loop of this one) may have handed messages to a pull request nobody reads any more; they
   * would come again only after the ack wait, behind later mail. A new consumer starts again at the
   * oldest message still stored, so mail arrives in stored order. Removing a consumer of a work-queue
   * stream loses nothing: unacknowledged mail stays stored.
   */
  private async resetConsumer(did: string): Promise<void> {
    const jsm = this.jsm as JetStreamManager;
    const name = didKey(did);
    await jsm.consumers.delete(MAIL_STREAM, name).catch((err: unknown) => {
      // 10014: consumer not found (first run).
      if (!(err instanceof JetStreamApiError && err.code === 10014)) throw err;
    });
    await jsm.consumers.add(MAIL_STREAM, {
      durable_name: name,
      filter_subject: mailFilter(did),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(30_000),
      max_ack_pending: 2_000,
    });
  }

  /**
   * Hands `did`'s mail to `handle` in stored order, in batches, until stopped. A delivery this loop
   * never received (a pull request lost on the way) makes it start again from a fresh consumer
   * before it hands on anything delivered after it. `handle` acks each
   * item after committing it (or terms one it refuses for good); items it leaves unsettled, also
   * when it throws, are handed back at once and come again before any later mail.
   */
  consume(
    did: string,
    handle: (batch: MailItem[]) => Promise<void>,
    /** Told each time a fetch finds no mail waiting (the backlog is drained). */
    onDrained?: () => void,
  ): { stop(): void } {
    let stopped = false;
    const name = didKey(did);
    const loop = async () => {
      let consumerReady = false;
      // The consumer numbers every delivery; one this loop never saw went to a pull request that is
      // gone, and would come again only after the ack wait, behind later mail.
      let nextDelivery = 1;
      while (!stopped) {
        try {
          await this.ensureStream();
          if (!consumerReady) {
            await this.resetConsumer(did);
            consumerReady = true;
            nextDelivery = 1;
          }
          const consumer = await this.js.consumers.get(MAIL_STREAM, name);
          const messages = await consumer.fetch({ max_messages: 500, expires: 1_000 });
          const batch: MailItem[] = [];
          const open = new Set<JsMsg>();
          let lost = false;
          for await (const m of messages) {
            if (m.info.deliverySequence !== nextDelivery) lost = true;
            nextDelivery = m.info.deliverySequence + 1;
            open.add(m);
            const settle = (fn: () => void) => () => {
              if (open.delete(m)) fn();
            };
            batch.push({
              data: new Uint8Array(m.data),
              ack: settle(() => m.ack()),
              term: settle(() => m.term()),
            });
          }
          if (lost) {
            // Start again from the oldest stored message, the lost ones first.
            for (const m of open) m.nak();
            consumerReady = false;
            continue;
          }
          if (batch.length === 0) {
            onDrained?.();
            continue;
          }
          try {
            if (!stopped) await handle(batch);
          } finally {
            // Not committed (or stopped first): handed back at once, ahead of any later mail.
            for (const m of open) m.nak();
          }
        } catch {
          consumerReady = false;
          if (!stopped) await new Promise((r) => setTimeout(r, 1_000));
        }
      }
    };
    void loop();
    return {
      stop: () => {
        stopped = true;
      },
    };
  }
}

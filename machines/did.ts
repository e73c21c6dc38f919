// The DID actor's statechart: presence (online/offline with a heartbeat deadline), its inbox, and the gatekeeper hook.
import { assign, emit, enqueueActions, setup } from 'xstate';

/** Version recorded in every persisted DID snapshot; bump it when the context or states change shape. */
export const DID_MACHINE_VERSION = 1;

export type GatekeeperMode = 'public' | 'ask' | 'private';

export interface DidContext {
  did: string;
  name: string | undefined;
  /** Messages accepted into the inbox, ever. */
  received: number;
  /** Accepted messages not yet marked read. */
  unread: number;
  /** Unread messages that mention this DID (absent in snapshots written before mentions were counted). */
  mentions?: number;
  /** Highest inbox sequence number marked read by `inbox.read {through}`. */
  readThrough?: number;
  /** Messages refused by the gatekeeper, ever. */
  refused: number;
  /** Messages waiting for the Owner's approval (gatekeeper `ask`). */
  held: number;
  lastMessageId: string | undefined;
  gatekeeper: {
    mode: GatekeeperMode;
    allow: string[];
    block: string[];
    /** How long a held message waits for an answer (absent in older snapshots: the default). */
    pendingTtlMs?: number;
  };
  /** Held messages waiting for the Owner, oldest first (absent in snapshots written before the queue). */
  pending?: PendingEntry[];
  /** How long presence stays online without a heartbeat (ms). */
  presenceTtlMs: number;
}

/** A message held by the gatekeeper (`ask`); its body waits in the `pending` collection. */
export interface PendingEntry {
  id: string;
  from: string;
  type: string;
  ts: number;
  expires_at: number;
}

/** Held messages a DID keeps at most; further ones from unknown senders are refused. */
export const PENDING_MAX = 256;
/** Default time a held message waits for the Owner's answer. */
export const PENDING_TTL_MS = 24 * 60 * 60_000;
/** The longest a held message may wait (the most `pending_ttl_ms` can be): 30 days. */
export const PENDING_TTL_MAX_MS = 30 * 24 * 60 * 60_000;
/** The most DIDs an allow or block list holds: the lists live in the DID actor's snapshot. */
export const GATEKEEPER_LIST_MAX = 1000;

/** `list` without repeats, in first-seen order, with at most GATEKEEPER_LIST_MAX entries. */
export function gatekeeperList(list: readonly string[]): string[] {
  return [...new Set(list)].slice(0, GATEKEEPER_LIST_MAX);
}

export interface DidInput {
  did: string;
  name?: string;
  presenceTtlMs?: number;
}

/** Any envelope delivered to the actor: its `type` is the message type. */
export interface DidEnvelopeEvent {
  type: string;
  id: string;
  from: string;
  to: string;
  ts: number;
  body?: unknown;
  thread?: string;
  reply?: string;
  ctx?: Record<string, string>;
  /** A capability token the sender presents with the message (kept with its inbox record). */
  cap?: unknown;
  /** `anx.batch` only: the messages the kernel hands over together, in order. */
  items?: DidEnvelopeEvent[];
}

/** The kernel's event for several messages taken in one transition (its `BATCH_EVENT`; see `batchable`). */
export const DID_BATCH_EVENT = 'anx.batch';

/** Message types that address the DID actor itself rather than its inbox. Only the DID (or its host) sends them. */
export const DID_CONTROL_TYPES = [
  'presence.online',
  'presence.offline',
  'presence.heartbeat',
  'inbox.read',
  'gatekeeper.set',
  'gatekeeper.approve',
  'gatekeeper.deny',
  'gatekeeper.expire',
] as const;

const HOST_ADDRESS = 'host';

/** The text of a message body: a string body, or its `text`, `content` or `message` field. */
export function bodyText(body: unknown): string | undefined {
  if (typeof body === 'string') return body;
  if (body === null || typeof body !== 'object') return undefined;
  for (const field of ['text', 'content', 'message'] as const) {
    const v = (body as Record<string, unknown>)[field];
    if (typeof v === 'string') return v;
  }
  return undefined;
}

/**
 * True when `text` mentions `did` by `@DID` or by `@name`; a name is matched whole (not as the start of
 * a longer name) and case-insensitively.
 */
export function mentions(text: string, did: string, name: string | undefined): boolean {
  // Most text mentions nobody: no "@" spares the lower-casing of the whole text.
  if (!text.includes('@')) return false;
  if (text.includes(`@${did}`)) return true;
  if (name === undefined || name.length === 0) return false;
  const lower = text.toLowerCase();
  const needle = `@${name.toLowerCase()}`;
  for (let at = lower.indexOf(needle); at >= 0; at = lower.indexOf(needle, at + 1)) {
    const next = lower.charAt(at + needle.length);
    if (next === '' || !/[\p{L}\p{N}_.-]/u.test(next)) return true;
  }
  return false;
}

/** Verdicts of `mentionsMe` per event: one message is looked at by two actions, its text scanned once. */
const mentionVerdicts = new WeakMap<DidEnvelopeEvent, boolean>();

/**
 * A `mention` notice, or a message whose text mentions this DID, remembered per event for the other
 * action of the same transition (a batch asks `scanMentions` once per message instead: a WeakMap entry
 * per message costs the garbage collector more than the scan).
 */
function mentionsMe(context: DidContext, event: DidEnvelopeEvent): boolean {
  const known = mentionVerdicts.get(event);
  if (known !== undefined) return known;
  const verdict = scanMentions(context, event);
  mentionVerdicts.set(event, verdict);
  return verdict;
}

function scanMentions(context: DidContext, event: DidEnvelopeEvent): boolean {
  if (event.type === 'mention') return true;
  const text = bodyText(event.body);
  return text !== undefined && mentions(text, context.did, context.name);
}

function isControl(type: string): boolean {
  return (DID_CONTROL_TYPES as readonly string[]).includes(type);
}

/** The held entry an approve/deny names, if it is still waiting at the time of the answer. */
function pendingOf(context: DidContext, event: DidEnvelopeEvent): PendingEntry | undefined {
  const id = (event.body as { id?: unknown } | undefined)?.id;
  const entry = (context.pending ?? []).find((p) => p.id === id);
  return entry !== undefined && entry.expires_at > event.ts ? entry : undefined;
}

/**
 * What the gatekeeper does with mail from `from`: the verdict every inbound message gets (and that a
 * transport asks before it accepts a handshake). Senders that are not DIDs are the host's own actors
 * (runs, dispatches): inside one host the kernel is trusted.
 */
export function gatekeeperVerdict(
  context: Pick<DidContext, 'did' | 'gatekeeper'>,
  from: string,
): 'accept' | 'hold' | 'blocked' | 'private' {
  const { mode, allow, block } = context.gatekeeper;
  if (block.includes(from)) return 'blocked';
  if (mode === 'public' || from === context.did || allow.includes(from) || !from.startsWith('did:'))
    return 'accept';
  return mode === 'ask' ? 'hold' : 'private';
}

function fromSelfOrHost(context: DidContext, event: DidEnvelopeEvent): boolean {
  return event.from === context.did || event.from === HOST_ADDRESS;
}

/**
 * Messages the DID actor can take several at a time (one `anx.batch` transition, the same outcome as
 * one transition each): mail, not control messages or XState's own events.
 */
export function batchable(type: string): boolean {
  return !isControl(type) && !type.startsWith('xstate.') && type !== DID_BATCH_EVENT;
}

type Emitted =
  | { type: 'anx.append'; collection: string; value: unknown }
  | {
      type: 'anx.event';
      kind: 'message' | 'status' | 'error';
      payload: unknown;
      run_id?: string;
      task_id?: string;
    }
  | { type: 'anx.effects'; effects: Emitted[] };

/** The inbox record of an accepted message. */
function inboxRecord(event: DidEnvelopeEvent, mentioned: boolean): Emitted {
  // Built field by field (one per message on the busiest path: spreads of optional fields cost an
  // object each), in the order readers have always seen.
  const value: Record<string, unknown> = { id: event.id, type: event.type, from: event.from, ts: event.ts };
  if (event.thread !== undefined) value['thread'] = event.thread;
  if (event.reply !== undefined) value['reply'] = event.reply;
  if (event.ctx !== undefined) value['ctx'] = event.ctx;
  if (event.cap !== undefined && event.cap !== null) value['cap'] = event.cap;
  if (mentioned) value['mention'] = true;
  value['body'] = event.body ?? null;
  return { type: 'anx.append', collection: 'inbox', value };
}

function messageEvent(event: DidEnvelopeEvent): Emitted {
  return {
    type: 'anx.event',
    kind: 'message',
    payload: { id: event.id, from: event.from, type: event.type },
  };
}

function pendingEntry(context: DidContext, event: DidEnvelopeEvent): PendingEntry {
  return {
    id: event.id,
    from: event.from,
    type: event.type,
    ts: event.ts,
    expires_at: event.ts + (context.gatekeeper.pendingTtlMs ?? PENDING_TTL_MS),
  };
}

function pendingRecord(event: DidEnvelopeEvent): Emitted {
  return {
    type: 'anx.append',
    collection: 'pending',
    value: { id: event.id, type: event.type, from: event.from, ts: event.ts, body: event.body ?? null },
  };
}

function heldEvent(event: DidEnvelopeEvent): Emitted {
  return {
    type: 'anx.event',
    kind: 'status',
    payload: { status: 'held_for_approval', id: event.id, from: event.from },
  };
}

function refusedEvent(event: DidEnvelopeEvent, code: string): Emitted {
  return {
    type: 'anx.event',
    kind: 'error',
    payload: { code, id: event.id, from: event.from, type: event.type },
  };
}

/**
 * The messages of one `anx.batch`, each decided as the `*` transitions of `inbox.open` decide one
 * message (blocked, accepted, held, queue full, private), folded into one context update. The events
 * name each message's own run and task (the kernel names those of a single message's envelope).
 */
function takeBatch(context: DidContext, items: readonly DidEnvelopeEvent[]) {
  const update = {
    received: context.received,
    unread: context.unread,
    mentions: context.mentions ?? 0,
    refused: context.refused,
    held: context.held,
    pending: context.pending ?? [],
    lastMessageId: context.lastMessageId,
  };
  const emitted: Emitted[] = [];
  // The event is made here for this item alone: its ids are set on it rather than on a copy.
  const withIds = (e: Emitted, item: DidEnvelopeEvent): Emitted => {
    if (e.type !== 'anx.event') return e;
    const runId = item.ctx?.['run_id'];
    const taskId = item.ctx?.['task_id'];
    if (runId !== undefined) e.run_id = runId;
    if (taskId !== undefined) e.task_id = taskId;
    return e;
  };
  const refuse = (item: DidEnvelopeEvent, code: string) => {
    update.refused++;
    emitted.push(withIds(refusedEvent(item, code), item));
  };
  for (const item of items) {
    const verdict = gatekeeperVerdict(context, item.from);
    if (verdict === 'blocked') refuse(item, 'ANX_GATEKEEPER_BLOCKED');
    else if (verdict === 'accept') {
      update.received++;
      update.unread++;
      const mentioned = scanMentions(context, item);
      if (mentioned) update.mentions++;
      update.lastMessageId = item.id;
      emitted.push(inboxRecord(item, mentioned), withIds(messageEvent(item), item));
    } else if (verdict === 'hold' && update.pending.length < PENDING_MAX) {
      update.held++;
      update.pending = [...update.pending, pendingEntry(context, item)];
      emitted.push(pendingRecord(item), withIds(heldEvent(item), item));
    } else if (verdict === 'hold') refuse(item, 'ANX_GATEKEEPER_QUEUE_FULL');
    else refuse(item, 'ANX_GATEKEEPER_PRIVATE');
  }
  return { update, emitted };
}

/**
 * Presence and inbox run in parallel. Inbox messages are appended to the actor's `inbox` collection
 * (not kept in the snapshot, whose size must not grow with traffic) and announced by a `message` event.
 */
export const didMachine = setup({
  types: {
    context: {} as DidContext,
    input: {} as DidInput,
    events: {} as DidEnvelopeEvent,
    emitted: {} as Emitted,
  },
  delays: {
    presenceTtl: ({ context }) => context.presenceTtlMs,
  },
  guards: {
    isControlFromSelf: ({ context, event }) => isControl(event.type) && fromSelfOrHost(context, event),
    isControlFromStranger: ({ context, event }) => isControl(event.type) && !fromSelfOrHost(context, event),
    senderBlocked: ({ context, event }) => gatekeeperVerdict(context, event.from) === 'blocked',
    gatekeeperAllows: ({ context, event }) => gatekeeperVerdict(context, event.from) === 'accept',
    gatekeeperAsks: ({ context, event }) =>
      gatekeeperVerdict(context, event.from) === 'hold' && (context.pending ?? []).length < PENDING_MAX,
    gatekeeperQueueFull: ({ context, event }) => gatekeeperVerdict(context, event.from) === 'hold',
    isPendingFromSelf: ({ context, event }) =>
      fromSelfOrHost(context, event) && pendingOf(context, event) !== undefined,
    isControlType: ({ event }) => isControl(event.type),
    /** XState's own events (the presence deadline firing) reach every region; they are not mail. */
    isInternalEvent: ({ event }) => event.type.startsWith('xstate.'),
  },
  actions: {
    storeMessage: assign(({ context, event }) => ({
      received: context.received + 1,
      unread: context.unread + 1,
      mentions: (context.mentions ?? 0) + (mentionsMe(context, event) ? 1 : 0),
      lastMessageId: event.id,
    })),
    appendToInbox: emit(({ context, event }) => inboxRecord(event, mentionsMe(context, event))),
    announceMessage: emit(({ event }) => messageEvent(event)),
    holdMessage: assign(({ context, event }) => ({
      held: context.held + 1,
      pending: [...(context.pending ?? []), pendingEntry(context, event)],
    })),
    // Several messages at once (the kernel's `anx.batch`), each decided as the `*` transitions would.
    takeBatch: enqueueActions(({ context, event, enqueue }) => {
      const { update, emitted } = takeBatch(context, event.items ?? []);
      enqueue.assign(update);
      // One emitted event for the whole batch: the kernel applies its effects in order.
      if (emitted.length > 0) enqueue.emit({ type: 'anx.effects', effects: emitted });
    }),
    // `{id, message, allow}` from the host, which read the held record: the message enters the inbox
    // now, and with `allow` (the default) its sender joins the allow-list.
    releaseHeld: enqueueActions(({ context, event, enqueue }) => {
      const entry = pendingOf(context, event) as PendingEntry;
      const body = event.body as { message?: Record<string, unknown>; allow?: unknown };
      const m = body.message ?? {};
      const allow =
        body.allow !== false &&
        !context.gatekeeper.allow.includes(entry.from) &&
        context.gatekeeper.allow.length < GATEKEEPER_LIST_MAX;
      enqueue.assign({
        received: context.received + 1,
        unread: context.unread + 1,
        held: Math.max(0, context.held - 1),
        pending: (context.pending ?? []).filter((p) => p.id !== entry.id),
        lastMessageId: entry.id,
        ...(allow
          ? { gatekeeper: { ...context.gatekeeper, allow: [...context.gatekeeper.allow, entry.from] } }
          : {}),
      });
      enqueue.emit({
        type: 'anx.append',
        collection: 'inbox',
        value: {
          id: entry.id,
          type: entry.type,
          from: entry.from,
          ts: entry.ts,
          ...(typeof m['thread'] === 'string' ? { thread: m['thread'] } : {}),
          ...(typeof m['reply'] === 'string' ? { reply: m['reply'] } : {}),
          body: m['body'] ?? null,
        },
      });
      enqueue.emit({
        type: 'anx.event',
        kind: 'message',
        payload: { id: entry.id, from: entry.from, type: entry.type, approved: true },
      });
    }),
    // `{id, block}`: the held message is dropped; with `block` its sender joins the block list.
    dropHeld: enqueueActions(({ context, event, enqueue }) => {
      const entry = pendingOf(context, event) as PendingEntry;
      const block = (event.body as { block?: unknown }).block === true;
      enqueue.assign({
        held: Math.max(0, context.held - 1),
        refused: context.refused + 1,
        pending: (context.pending ?? []).filter((p) => p.id !== entry.id),
        ...(block &&
        !context.gatekeeper.block.includes(entry.from) &&
        context.gatekeeper.block.length < GATEKEEPER_LIST_MAX
          ? { gatekeeper: { ...context.gatekeeper, block: [...context.gatekeeper.block, entry.from] } }
          : {}),
      });
      enqueue.emit({
        type: 'anx.event',
        kind: 'status',
        payload: { status: 'held_denied', id: entry.id, from: entry.from, blocked: block },
      });
    }),
    announceNotPending: emit(({ event }) => ({
      type: 'anx.event' as const,
      kind: 'error' as const,
      payload: {
        code: 'ANX_GATEKEEPER_NOT_PENDING',
        id: event.id,
        pending_id: (event.body as { id?: unknown } | undefined)?.id ?? null,
        type: event.type,
      },
    })),
    // Held messages past their deadline (at the time the host sends this) are dropped unanswered.
    expireHeld: enqueueActions(({ context, event, enqueue }) => {
      const pending = context.pending ?? [];
      const expired = pending.filter((p) => p.expires_at <= event.ts);
      if (expired.length === 0) return;
      enqueue.assign({
        held: Math.max(0, context.held - expired.length),
        pending: pending.filter((p) => p.expires_at > event.ts),
      });
      enqueue.emit({
        type: 'anx.event',
        kind: 'status',
        payload: { status: 'held_expired', ids: expired.map((p) => p.id) },
      });
    }),
    appendToPending: emit(({ event }) => pendingRecord(event)),
    announceHeld: emit(({ event }) => heldEvent(event)),
    countRefused: assign(({ context }) => ({ refused: context.refused + 1 })),
    announceRefused: emit(({ event }, params: { code: string }) => refusedEvent(event, params.code)),
    // `{count, mentions, through}`: the host counts the records up to `through`; without a count, all are read.
    markRead: assign(({ context, event }) => {
      const body = event.body as { count?: unknown; mentions?: unknown; through?: unknown } | undefined;
      const count = typeof body?.count === 'number' ? body.count : context.unread;
      const held = context.mentions ?? 0;
      const seen =
        typeof body?.mentions === 'number' ? body.mentions : typeof body?.count === 'number' ? 0 : held;
      const through = typeof body?.through === 'number' ? Math.floor(body.through) : 0;
      return {
        unread: Math.max(0, context.unread - Math.max(0, Math.floor(count))),
        mentions: Math.max(0, held - Math.max(0, Math.floor(seen))),
        readThrough: Math.max(context.readThrough ?? 0, through),
      };
    }),
    setGatekeeper: assign(({ context, event }) => {
      const body = (event.body ?? {}) as {
        mode?: unknown;
        allow?: unknown;
        block?: unknown;
        pending_ttl_ms?: unknown;
      };
      const ttl = body.pending_ttl_ms;
      const mode =
        body.mode === 'public' || body.mode === 'ask' || body.mode === 'private'
          ? body.mode
          : context.gatekeeper.mode;
      const strings = (v: unknown, fallback: string[]) =>
        Array.isArray(v) ? gatekeeperList(v.filter((x): x is string => typeof x === 'string')) : fallback;
      return {
        gatekeeper: {
          mode,
          allow: strings(body.allow, context.gatekeeper.allow),
          block: strings(body.block, context.gatekeeper.block),
          ...(typeof ttl === 'number' && Number.isInteger(ttl) && ttl >= 1000 && ttl <= PENDING_TTL_MAX_MS
            ? { pendingTtlMs: ttl }
            : context.gatekeeper.pendingTtlMs === undefined
              ? {}
              : { pendingTtlMs: context.gatekeeper.pendingTtlMs }),
        },
      };
    }),
  },
}).createMachine({
  id: 'did',
  type: 'parallel',
  context: ({ input }) => ({
    did: input.did,
    name: input.name,
    received: 0,
    unread: 0,
    mentions: 0,
    readThrough: 0,
    refused: 0,
    held: 0,
    pending: [],
    lastMessageId: undefined,
    gatekeeper: { mode: 'public', allow: [], block: [] },
    presenceTtlMs: input.presenceTtlMs ?? 30_000,
  }),
  states: {
    presence: {
      initial: 'offline',
      states: {
        offline: {
          on: {
            'presence.online': { target: 'online', guard: 'isControlFromSelf' },
            'presence.heartbeat': { target: 'online', guard: 'isControlFromSelf' },
          },
        },
        online: {
          after: { presenceTtl: 'offline' },
          on: {
            'presence.offline': { target: 'offline', guard: 'isControlFromSelf' },
            // Re-entering restarts the presence deadline.
            'presence.heartbeat': { target: 'online', reenter: true, guard: 'isControlFromSelf' },
          },
        },
      },
    },
    inbox: {
      initial: 'open',
      states: {
        open: {
          on: {
            'inbox.read': { guard: 'isControlFromSelf', actions: 'markRead' },
            'gatekeeper.set': { guard: 'isControlFromSelf', actions: 'setGatekeeper' },
            'gatekeeper.approve': [
              { guard: 'isPendingFromSelf', actions: 'releaseHeld' },
              { guard: 'isControlFromSelf', actions: 'announceNotPending' },
              {
                actions: [
                  { type: 'countRefused' },
                  { type: 'announceRefused', params: { code: 'ANX_CONTROL_FORBIDDEN' } },
                ],
              },
            ],
            'gatekeeper.deny': [
              { guard: 'isPendingFromSelf', actions: 'dropHeld' },
              { guard: 'isControlFromSelf', actions: 'announceNotPending' },
              {
                actions: [
                  { type: 'countRefused' },
                  { type: 'announceRefused', params: { code: 'ANX_CONTROL_FORBIDDEN' } },
                ],
              },
            ],
            'gatekeeper.expire': { guard: 'isControlFromSelf', actions: 'expireHeld' },
            // Mail handed over together by the kernel: the same decisions as below, in one transition.
            [DID_BATCH_EVENT]: { actions: 'takeBatch' },
            '*': [
              { guard: 'isInternalEvent' },
              {
                guard: 'isControlFromStranger',
                actions: [
                  { type: 'countRefused' },
                  { type: 'announceRefused', params: { code: 'ANX_CONTROL_FORBIDDEN' } },
                ],
              },
              // Control messages from the DID itself were handled by the explicit transitions above.
              { guard: 'isControlType' },
              {
                guard: 'senderBlocked',
                actions: [
                  { type: 'countRefused' },
                  { type: 'announceRefused', params: { code: 'ANX_GATEKEEPER_BLOCKED' } },
                ],
              },
              {
                guard: 'gatekeeperAllows',
                actions: ['storeMessage', 'appendToInbox', 'announceMessage'],
              },
              { guard: 'gatekeeperAsks', actions: ['holdMessage', 'appendToPending', 'announceHeld'] },
              {
                guard: 'gatekeeperQueueFull',
                actions: [
                  { type: 'countRefused' },
                  { type: 'announceRefused', params: { code: 'ANX_GATEKEEPER_QUEUE_FULL' } },
                ],
              },
              {
                actions: [
                  { type: 'countRefused' },
                  { type: 'announceRefused', params: { code: 'ANX_GATEKEEPER_PRIVATE' } },
                ],
              },
            ],
          },
        },
      },
    },
  },
});

// What Tasks and Discussions share: signing and verifying statements, sending their notices, and taking requests from other hosts.
import { createHash } from 'node:crypto';
import type { Notice, Statement, StatementVerifier, Verification } from '../machines/statement.ts';
import type { CryptoSuite } from '../runtime/crypto/suite.ts';
import {
  createEnvelope,
  decodeBody,
  decodeEnvelope,
  EnvelopeError,
  encodeEnvelope,
  envelopeSigningInput,
  verifyEnvelopeSignature,
} from '../runtime/envelope/index.ts';
import { AnxError, describeValue } from '../runtime/errors.ts';
import type { EventV1 } from '../runtime/events/event.ts';
import type { Keystore } from '../runtime/identity/keystore.ts';
import type { ActorSystem } from '../runtime/kernel/actor-system.ts';
import type { KernelEnvelope } from '../runtime/kernel/message.ts';
import { watchActorEvent } from './await-event.ts';
import type { InboxRecord, InboxTap } from './inbox-tap.ts';

/** Largest signed statement accepted (bytes before base64url). */
const MAX_STATEMENT_BYTES = 64 * 1024;

/** Meta key of the sequence of the last event whose notices were sent. */
const CURSOR_KEY = 'collab.notify.seq';

/** Request types that may reach a collaboration actor from another host through its home DID's inbox. */
export const FORWARDED_TYPES = [
  'task.claim',
  'task.notify',
  'task.sync',
  'discussion.post',
  'discussion.vote',
  'discussion.close',
] as const;

/** Notice types that say where a task or discussion lives (its home DID), for requests from this host. */
const HOME_NOTICES = [
  'task.proposed',
  'task.state',
  'task.refused',
  'discussion.opened',
  'discussion.posted',
  'discussion.concluded',
  'discussion.refused',
  'mention',
] as const;

/** A request a collaboration actor refused: the code and reason its error event gave. */
export class CollabRefusedError extends AnxError {
  constructor(code: string, message: string, hint?: string) {
    super(code, message, hint === undefined ? undefined : { hint });
  }
}

/** The verifier the machines are built with: the envelope layer's signature check over a statement. */
export function statementVerifier(suite: CryptoSuite): StatementVerifier {
  return (raw, expected): Verification => {
    const bad = (reason: string): Verification => ({
      ok: false,
      problem: { code: 'SIGNATURE_INVALID', reason },
    });
    if (typeof raw !== 'string' || raw.length === 0 || raw.length > (MAX_STATEMENT_BYTES * 4) / 3 + 4)
      return bad('"statement" expected a signed statement as base64url');
    const bytes = Buffer.from(raw, 'base64url');
    try {
      const env = decodeEnvelope(bytes);
      verifyEnvelopeSignature(env, suite);
      if (env.enc !== undefined) return bad('a statement is signed, not sealed');
      if (env.to !== expected.subject)
        return bad(`the statement was signed for ${env.to}, not ${expected.subject}`);
      if (env.type !== expected.type)
        return bad(`the statement was signed as ${env.type}, but sent as ${expected.type}`);
      const body = decodeBody(env.body);
      if (body === null || typeof body !== 'object' || Array.isArray(body))
        return bad('the statement body expected an object');
      const statement: Statement = {
        id: env.id,
        type: env.type,
        signer: env.from,
        subject: env.to,
        ts: env.ts,
        body: body as Record<string, unknown>,
        raw: bytes.toString('base64url'),
      };
      return { ok: true, statement };
    } catch (err) {
      if (err instanceof EnvelopeError) return bad(err.message);
      return bad((err as Error)?.message ?? String(err));
    }
  };
}

/** The signer a statement names, read without trusting it (the actor verifies it). */
export function statementSigner(raw: unknown, code: string): string {
  try {
    if (typeof raw !== 'string' || raw.length === 0) throw new Error('expected base64url text');
    return decodeEnvelope(Buffer.from(raw, 'base64url')).from;
  } catch (err) {
    throw new CollabRefusedError(code, `"statement" expected a signed statement: ${(err as Error).message}`);
  }
}

/**
 * Signs a statement as a local identity: an envelope `{type, from: did, to: subject, body}` with the DID's
 * Ed25519 signature, encoded (docs/protocol.md) and given as base64url. The key never leaves the keystore.
 */
export function signStatement(
  keystore: Keystore,
  clock: { now(): number },
  did: string,
  type: string,
  subject: string,
  body: Record<string, unknown>,
): string {
  const env = createEnvelope({ type, from: did, to: subject, body }, { clock });
  env.sig = keystore.sign(did, envelopeSigningInput(env));
  return Buffer.from(encodeEnvelope(env)).toString('base64url');
}

/** A stable envelope id from parts (16+ characters of [A-Za-z0-9_-]): resending it is a no-op. */
export function derivedId(...parts: Array<string | number>): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('base64url').slice(0, 32);
}

/** How far a task or discussion view has come: tasks count their changes, discussions their posts and ballots. */
function progress(view: unknown): number {
  if (view === null || typeof view !== 'object') return -1;
  const v = view as {
    seq?: unknown;
    posts?: unknown;
    ballots?: unknown;
    conclusion?: unknown;
    archive?: unknown;
  };
  if (typeof v.seq === 'number') return v.seq;
  const ballots = v.ballots !== null && typeof v.ballots === 'object' ? Object.keys(v.ballots).length : 0;
  return (
    (typeof v.posts === 'number' ? v.posts : 0) +
    ballots +
    (v.conclusion ? 10_000 : 0) +
    (v.archive ? 20_000 : 0)
  );
}

function isNotice(value: unknown): value is Notice {
  const n = value as Notice | null;
  return (
    n !== null &&
    typeof n === 'object' &&
    typeof n.from === 'string' &&
    typeof n.type === 'string' &&
    Array.isArray(n.to)
  );
}

/**
 * Carries collaboration notices beyond the actor and, through the home DID's inbox, requests from other
 * hosts to the actor:
 *
 * - **out**: a Task or Discussion emits `notify` in its committed status/error events; the notifier sends
 *   each as an envelope from the actor's home DID (so it travels over the relay like any message), under an
 *   id derived from the event, and then records the event's sequence as done. After a crash it resumes from
 *   that record: a notice is sent at least once and delivered once (receivers drop repeated ids).
 * - **in**: a request signed on another host arrives as a message to the home DID; the router hands it to
 *   the local actor it names, under an id derived from the sender and message id, flagged `forwarded`.
 */
export class CollabRelay {
  private readonly unsubscribe: () => void;
  private readonly watched = new Set<string>();
  private readonly unwatch: Array<() => void> = [];
  /** Home DIDs of tasks and discussions held on other hosts, learnt from their notices. */
  private readonly homes = new Map<string, string>();
  /** The last view of each such task or discussion a notice carried. */
  private readonly views = new Map<string, unknown>();
  private draining: Promise<void> = Promise.resolve();
  /** Where notices start when the data directory has no cursor yet. */
  private cursor = 0;
  private closed = false;

  constructor(
    private readonly system: ActorSystem,
    private readonly keystore: Keystore,
    private readonly tap: InboxTap,
    /** The actor address that holds a task or discussion id locally, or undefined. */
    private readonly addressOf: (type: string, id: string) => string | undefined,
  ) {
    this.unsubscribe = system.events.subscribe((events) => this.onEvents(events));
    // A data directory that never sent notices starts from now, not from the beginning of its history.
    if (system.store.meta.get(CURSOR_KEY) === undefined) {
      this.cursor = system.events.lastSeq;
      system.commits.put(system.store.meta, CURSOR_KEY, this.cursor);
    }
    for (const record of keystore.list()) this.watch(record.did);
    // After the host's start: notices committed before a crash but not yet sent go out now.
    setImmediate(() => this.schedule());
  }

  /** The home DID of a task or discussion known here only from notices. */
  homeOf(id: string): string | undefined {
    return this.homes.get(id);
  }

  /** The last view a notice gave of a task or discussion held on another host. */
  viewOf(id: string): unknown {
    return this.views.get(id);
  }

  /** Waits until every notice committed so far has been handed to the kernel. */
  async flushed(): Promise<void> {
    this.schedule();
    await this.draining;
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
    for (const u of this.unwatch) u();
  }

  private watch(did: string): void {
    if (this.watched.has(did)) return;
    this.watched.add(did);
    this.unwatch.push(
      this.tap.watch(did, [...FORWARDED_TYPES, ...HOME_NOTICES], (owner, record) =>
        this.onInbox(owner, record),
      ),
    );
  }

  private onEvents(events: readonly EventV1[]): void {
    let notices = false;
    for (const e of events) {
      const payload = e.payload as { notify?: unknown; type?: unknown } | null;
      if (payload?.notify !== undefined) notices = true;
      // A DID that gets collaboration mail is watched from its first such message on (new identities too).
      if (
        e.kind === 'message' &&
        e.actor !== undefined &&
        !this.watched.has(e.actor) &&
        typeof payload?.type === 'string' &&
        ((FORWARDED_TYPES as readonly string[]).includes(payload.type) ||
          (HOME_NOTICES as readonly string[]).includes(payload.type)) &&
        this.keystore.has(e.actor)
      )
        this.watch(e.actor);
    }
    if (notices) this.schedule();
  }

  private schedule(): void {
    this.draining = this.draining.then(() => this.drain()).catch(() => {});
  }

  /** Sends the notices of every committed event after the recorded cursor, then moves the cursor. */
  private async drain(): Promise<void> {
    if (this.closed) return;
    let cursor = (this.system.store.meta.get(CURSOR_KEY) as number | undefined) ?? this.cursor;
    for (;;) {
      const events = this.system.events.trace('*', { afterSeq: cursor, limit: 1000 });
      if (events.length === 0) return;
      const envelopes: KernelEnvelope[] = [];
      for (const e of events) {
        const notify = (e.payload as { notify?: unknown } | null)?.notify;
        if (notify === undefined || e.actor === undefined) continue;
        for (const notice of Array.isArray(notify) ? notify : [notify]) {
          if (!isNotice(notice)) continue;
          for (const to of notice.to) {
            if (typeof to !== 'string') continue;
            envelopes.push(
              this.system.envelope({
                id: derivedId('notice', e.seq, notice.type, to),
                type: notice.type,
                from: notice.from,
                to,
                body: notice.body,
              }),
            );
          }
        }
      }
      cursor = (events[events.length - 1] as EventV1).seq;
      if (this.closed) return;
      if (envelopes.length > 0) await this.system.accept(envelopes);
      this.system.commits.put(this.system.store.meta, CURSOR_KEY, cursor);
      await this.system.commits.flush();
    }
  }

  private onInbox(owner: string, record: InboxRecord): void {
    const body = (record.body ?? {}) as Record<string, unknown>;
    const id =
      typeof body['task_id'] === 'string'
        ? body['task_id']
        : typeof body['discussion_id'] === 'string'
          ? body['discussion_id']
          : undefined;
    if (id === undefined) return;
    if ((HOME_NOTICES as readonly string[]).includes(record.type)) {
      const home = typeof body['home'] === 'string' ? body['home'] : record.from;
      if (home !== record.from) return;
      this.homes.set(id, home);
      const view = body['task'] ?? body['discussion'];
      // Notices may arrive out of order: an older view never replaces a newer one.
      if (view !== null && typeof view === 'object' && progress(view) >= progress(this.views.get(id)))
        this.views.set(id, view);
      return;
    }
    const address = this.addressOf(record.type, id);
    if (address === undefined) return;
    // Only to the actor whose home this DID is: a request sent to another DID is not this actor's.
    const snap = this.system.snapshot(address).context as { home?: string };
    if (snap.home !== owner) return;
    // Handled once: the cursor outlives the `seen` window that would otherwise let a restart repeat it.
    const cursorKey = `collab.forwarded.${owner}`;
    if (record.seq <= ((this.system.store.meta.get(cursorKey) as number | undefined) ?? 0)) return;
    const env = this.system.envelope({
      id: derivedId('forward', record.from, record.id),
      type: record.type,
      from: record.from,
      to: address,
      body: { ...body, forwarded: true },
    });
    this.system.commits.put(this.system.store.meta, cursorKey, record.seq);
    void this.system.accept([env]).catch(() => {});
  }
}

/** Ids of tasks and discussions: also a vault key segment (a conclusion is archived under it). */
export const COLLAB_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** The error for an `as` that is not a local identity, in the caller's error class. */
export function notLocal(did: unknown): [string, string] {
  return [
    `"as" expected a local identity (a DID this host holds the key of), got ${describeValue(did)}`,
    'list local identities with `anx-runtime id list`',
  ];
}

/** What a request on an actor of another host resolves with: it went to the home DID. */
export interface Forwarded {
  forwarded: true;
  home: string;
  id: string;
}

/**
 * Delivers a signed statement: to the local actor at `address` (waiting for its verdict), or else to the
 * home DID (given, or learnt from a notice) as a message, whose host hands it to the actor.
 */
export async function deliverStatement(
  system: ActorSystem,
  relay: CollabRelay,
  target: {
    address: string | undefined;
    id: string;
    idField: 'task_id' | 'discussion_id';
    home?: string;
    hint: string;
  },
  request: { from: string; type: string; statement: string },
  notFound: () => AnxError,
): Promise<Forwarded | undefined> {
  const { from, type, statement } = request;
  if (target.address !== undefined) {
    await requestVerdict(
      system,
      target.address,
      system.envelope({ type, from, to: target.address, body: { statement } }),
      target.hint,
    );
    return undefined;
  }
  const home = target.home ?? relay.homeOf(target.id);
  if (home === undefined) throw notFound();
  const env = system.envelope({ type, from, to: home, body: { [target.idField]: target.id, statement } });
  await system.accept([env]);
  return { forwarded: true, home, id: env.id };
}

/**
 * Sends a signed request to a local collaboration actor and waits for its verdict: resolves with the
 * status event, or throws `CollabRefusedError` with the code of the error event.
 */
export async function requestVerdict(
  system: ActorSystem,
  address: string,
  env: KernelEnvelope,
  hint?: string,
): Promise<EventV1> {
  const watch = watchActorEvent(
    system,
    address,
    (e) => (e.payload as { id?: unknown } | null)?.id === env.id,
    30_000,
  );
  let accepted: Array<{ duplicate: boolean }>;
  try {
    accepted = await system.accept([env]);
  } catch (err) {
    watch.cancel();
    throw err;
  }
  if (accepted[0]?.duplicate === true) {
    watch.cancel();
    throw new CollabRefusedError('ANX_COLLAB_DUPLICATE', `request ${env.id} was accepted before`);
  }
  const verdict = await watch.result;
  if (verdict === undefined)
    throw new CollabRefusedError('ANX_COLLAB_TIMEOUT', `${address} did not answer request ${env.id} in time`);
  if (verdict.kind === 'error') {
    const p = verdict.payload as { code: string; reason: string };
    throw new CollabRefusedError(p.code, `${address} refused ${env.type}: ${p.reason}`, hint);
  }
  return verdict;
}

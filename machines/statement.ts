// Signed statements as the Task and Discussion statecharts see them: verified by an injected function, refused as data.
import { isDid } from '../runtime/identity/did.ts';

/**
 * One verified statement: a signed envelope whose signer asks for a change of a collaboration actor.
 * `subject` is the actor address it was signed for, so a statement for one task cannot be used on another.
 */
export interface Statement {
  id: string;
  type: string;
  signer: string;
  subject: string;
  ts: number;
  body: Record<string, unknown>;
  /** The signed bytes as base64url, kept so anyone can verify the change later. */
  raw: string;
}

/** Why a request is refused: a stable code and a reason for the error event. */
export interface Problem {
  code: string;
  reason: string;
}

export type Verification = { ok: true; statement: Statement } | { ok: false; problem: Problem };

/**
 * Checks a statement's signature and binding (its `type` and the address it was signed for). Machines stay
 * free of crypto: the actor layer injects the verifier when it builds the machine.
 */
export type StatementVerifier = (raw: unknown, expected: { subject: string; type: string }) => Verification;

/** An envelope delivered to a collaboration actor; the statement travels in `body.statement`. */
export interface CollabEnvelope {
  type: string;
  id?: string;
  from?: string;
  ts?: number;
  body?: unknown;
}

/** What a machine sends, through its actor's notifier, to DIDs on this host or beyond. */
export interface Notice {
  /** The DID the notices are sent as (the actor's home identity). */
  from: string;
  to: string[];
  type: string;
  body: Record<string, unknown>;
}

/** Verifications are memoised per event object: guards and actions of one transition share one check. */
const cache = new WeakMap<object, Verification>();

/** The verified statement of `event`, signed for `subject` with the event's own type. */
export function verifyEvent(verify: StatementVerifier, event: CollabEnvelope, subject: string): Verification {
  const known = cache.get(event);
  if (known !== undefined) return known;
  const raw = (event.body as { statement?: unknown } | undefined)?.statement;
  const result: Verification =
    raw === undefined
      ? {
          ok: false,
          problem: { code: 'SIGNATURE_INVALID', reason: '"statement" expected a signed statement, got none' },
        }
      : verify(raw, { subject, type: event.type });
  cache.set(event, result);
  return result;
}

/** True when the envelope came from another host through its home DID's inbox. */
export function forwarded(event: CollabEnvelope): boolean {
  return (event.body as { forwarded?: unknown } | undefined)?.forwarded === true;
}

/**
 * The payload of the `error` event a refused request leaves: the full code, the reason, what was asked
 * and by whom, and for a request from another host a `<kind>.refused` notice back to its sender.
 */
export function refusalPayload(
  kind: 'task' | 'discussion',
  home: string,
  subject: Record<string, unknown>,
  event: CollabEnvelope,
  problem: Problem,
): Record<string, unknown> {
  const code =
    problem.code === 'FORBIDDEN'
      ? `ANX_FORBIDDEN_${kind.toUpperCase()}`
      : `ANX_${kind.toUpperCase()}_${problem.code}`;
  const asked = { code, reason: problem.reason, ...subject, id: event.id ?? null, type: event.type };
  const notify: Notice | undefined =
    forwarded(event) && typeof event.from === 'string'
      ? { from: home, to: [event.from], type: `${kind}.refused`, body: asked }
      : undefined;
  return { ...asked, from: event.from ?? null, ...(notify === undefined ? {} : { notify }) };
}

export function isStringList(value: unknown, max: number): value is string[] {
  return Array.isArray(value) && value.length <= max && value.every((v) => typeof v === 'string');
}

/** A list of at most `max` DIDs (candidates, participants, mentions: each one may be sent notices). */
export function isDidList(value: unknown, max: number): value is string[] {
  return Array.isArray(value) && value.length <= max && value.every((v) => isDid(v));
}

/** Every DID in `lists` once, in order, without `except`. */
export function recipients(
  except: string | undefined,
  ...lists: Array<ReadonlyArray<string | null>>
): string[] {
  const out = new Set<string>();
  for (const list of lists) for (const d of list) if (d !== null && d !== except) out.add(d);
  return [...out];
}

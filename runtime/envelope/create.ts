// Building a new envelope: fills in version, id and time, encodes the body, validates every field.
import { encodeBody } from './codec.ts';
import {
  CONTEXT_KEYS,
  ENVELOPE_VERSION,
  type Envelope,
  type EnvelopeContext,
  newEnvelopeId,
} from './envelope.ts';
import { validateEnvelope } from './validate.ts';

/** What a caller supplies to build an envelope; the rest (`v`, `id`, `ts`, encoded body) is filled in. */
export interface EnvelopeInit {
  type: string;
  from: string;
  to: string;
  /** Any msgpack-encodable value; `undefined` becomes nil. */
  body?: unknown;
  /** Defaults to a new id from `newEnvelopeId`. */
  id?: string;
  /** Defaults to the clock's now. */
  ts?: number;
  exp?: number;
  thread?: string;
  reply?: string;
  ctx?: EnvelopeContext;
  actor?: string;
  cap?: string | Uint8Array;
}

/**
 * Builds a plain, unsigned envelope: encodes `body` with the envelope body codec, fills in `v`,
 * a new `id` and `ts`, and validates every field (throws `EnvelopeFieldError` on a bad one).
 * Sign it with `signEnvelope` or seal it with `seal` before it leaves the host.
 *
 * @example
 * ```ts
 * const env = createEnvelope({ type: 'task.propose', from: alice.did, to: 'enclave/abc', body: { title: 'x' } });
 * ```
 */
export function createEnvelope(init: EnvelopeInit, options: { clock?: { now(): number } } = {}): Envelope {
  const ts = init.ts ?? (options.clock ? options.clock.now() : Date.now());
  const env: Envelope = {
    v: ENVELOPE_VERSION,
    id: init.id ?? newEnvelopeId(ts),
    type: init.type,
    from: init.from,
    to: init.to,
    ts,
    body: encodeBody(init.body),
  };
  if (init.exp !== undefined) env.exp = init.exp;
  if (init.thread !== undefined) env.thread = init.thread;
  if (init.reply !== undefined) env.reply = init.reply;
  if (init.ctx !== undefined) {
    // An empty ctx is refused on the wire (one encoding per meaning), so leave it out.
    const ctx: EnvelopeContext = {};
    let any = false;
    for (const key of CONTEXT_KEYS) {
      const value = init.ctx[key];
      if (value !== undefined) {
        ctx[key] = value;
        any = true;
      }
    }
    if (any) env.ctx = ctx;
  }
  if (init.actor !== undefined) env.actor = init.actor;
  if (init.cap !== undefined) env.cap = init.cap;
  return validateEnvelope(env as unknown as Record<string, unknown>);
}

// fast-check generators of valid envelopes, shared by the codec, signing and receive property tests.
import fc from 'fast-check';
import { CONTEXT_KEYS, type Envelope, type EnvelopeContext } from '../../runtime/envelope/index.ts';
import { alice, bob, carol } from './fixtures.ts';

const text = (max: number) => fc.string({ unit: 'grapheme', minLength: 1, maxLength: max });

export const idArb = fc.stringMatching(/^[0-9A-Za-z_-]{16,64}$/);
export const typeArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,40}$/);
export const addressArb = fc.stringMatching(/^[a-z][a-z0-9_-]{0,8}\/[A-Za-z0-9._:~@+=/-]{1,40}$/);
export const didArb = fc.constantFrom(alice.did, bob.did, carol.did);
export const timeArb = fc.maxSafeNat();

export const ctxArb: fc.Arbitrary<EnvelopeContext> = fc
  .record(
    Object.fromEntries(CONTEXT_KEYS.map((k) => [k, text(40)])) as Record<
      keyof EnvelopeContext,
      fc.Arbitrary<string>
    >,
    {
      requiredKeys: [],
    },
  )
  .filter((ctx) => Object.keys(ctx).length > 0);

/** Header and body of a valid plain envelope; `from` is always alice so tests can sign it. */
export const envelopeArb: fc.Arbitrary<Envelope> = fc
  .record(
    {
      id: idArb,
      type: typeArb,
      to: fc.oneof(didArb, addressArb),
      ts: timeArb,
      exp: timeArb,
      thread: idArb,
      reply: idArb,
      ctx: ctxArb,
      actor: didArb,
      cap: fc.oneof(text(100), fc.uint8Array({ minLength: 1, maxLength: 100 })),
      body: fc.uint8Array({ maxLength: 300 }),
    },
    { requiredKeys: ['id', 'type', 'to', 'ts', 'body'] },
  )
  .map((fields) => ({ v: 1, from: alice.did, ...fields }) as Envelope);

// Envelope signatures: the signing input's layout, agreement of both suites, tamper and sender-key refusals.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nobleSuite } from '../../runtime/crypto/noble.ts';
import { nodeSuite } from '../../runtime/crypto/node.ts';
import {
  createEnvelope,
  type Envelope,
  EnvelopeSenderKeyError,
  EnvelopeSignatureError,
  envelopeSigningInput,
  SIGNING_PREFIX,
  signEnvelope,
  verifyEnvelopeSignature,
} from '../../runtime/envelope/index.ts';
import { envelopeArb } from './arbitraries.ts';
import { alice, bob, carol, hex, T0 } from './fixtures.ts';

const env = createEnvelope({
  id: '0123456789abcdefGHIJ',
  ts: T0,
  type: 'ping',
  from: alice.did,
  to: bob.did,
  body: 'hi',
});

const u32 = (n: number) => n.toString(16).padStart(8, '0');
const str = (s: string) => u32(Buffer.byteLength(s)) + Buffer.from(s).toString('hex');

describe('envelope signing input', () => {
  it('lays out prefix, header fields in order with absent ones explicit, then the body', () => {
    const expected =
      hex(SIGNING_PREFIX as Uint8Array) +
      '01' + // v
      str(env.id) +
      str('ping') +
      str(alice.did) +
      str(bob.did) +
      T0.toString(16).padStart(16, '0') +
      '00' + // exp
      '00' + // thread
      '00' + // reply
      '0000000000' + // ctx: session_id, run_id, enclave_id, task_id, stage
      '00' + // actor
      '00' + // cap
      '00' + // enc
      '00' + // epk
      '00' + // nonce
      u32(env.body.length) +
      hex(env.body);
    expect(hex(envelopeSigningInput(env))).toBe(expected);
  });

  it('does not depend on the insertion order of ctx keys', () => {
    const a: Envelope = { ...env, ctx: { run_id: 'r', stage: 's', task_id: 't' } };
    const b: Envelope = { ...env, ctx: { task_id: 't', stage: 's', run_id: 'r' } };
    expect(hex(envelopeSigningInput(a))).toBe(hex(envelopeSigningInput(b)));
  });

  it('gives different inputs to any two different headers', () => {
    fc.assert(
      fc.property(envelopeArb, envelopeArb, (a, b) => {
        const same = hex(envelopeSigningInput(a)) === hex(envelopeSigningInput(b));
        const equal = JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
        expect(same).toBe(equal);
      }),
      { numRuns: 300 },
    );
  });

  it('tells a ctx value apart from the same text in a neighbouring field', () => {
    const a: Envelope = { ...env, ctx: { run_id: 'x' } };
    const b: Envelope = { ...env, ctx: { enclave_id: 'x' } };
    const c: Envelope = { ...env, cap: 'x' };
    const d: Envelope = { ...env, cap: new Uint8Array([0x78]) };
    const inputs = [env, a, b, c, d].map((e) => hex(envelopeSigningInput(e)));
    expect(new Set(inputs).size).toBe(inputs.length);
  });
});

// A representation in which equal envelopes are equal strings (bytes as hex, ctx keys sorted).
function canonical(e: Envelope): unknown {
  return Object.fromEntries(
    Object.entries(e)
      .filter(([, v]) => v !== undefined)
      .sort(([x], [y]) => (x < y ? -1 : 1))
      .map(([k, v]) => [
        k,
        v instanceof Uint8Array
          ? `bin:${hex(v)}`
          : typeof v === 'object' && v !== null
            ? Object.entries(v).sort(([x], [y]) => (x < y ? -1 : 1))
            : v,
      ]),
  );
}

describe('envelope signatures across suites', () => {
  it('node and noble sign identically and verify each other', () => {
    fc.assert(
      fc.property(envelopeArb, (e) => {
        const byNode = signEnvelope(e, alice.seed, nodeSuite);
        const byNoble = signEnvelope(e, alice.seed, nobleSuite);
        expect(hex(byNode.sig as Uint8Array)).toBe(hex(byNoble.sig as Uint8Array));
        verifyEnvelopeSignature(byNode, nobleSuite);
        verifyEnvelopeSignature(byNoble, nodeSuite);
      }),
      { numRuns: 40 },
    );
  });

  it('does not change the envelope it signs', () => {
    const signed = signEnvelope(env, alice.seed, nodeSuite);
    expect(env.sig).toBeUndefined();
    expect(signed).not.toBe(env);
  });
});

describe.each([
  ['node', nodeSuite],
  ['noble', nobleSuite],
] as const)('envelope signature refusals (%s)', (_name, suite) => {
  const signed = signEnvelope(
    { ...env, exp: T0 + 5000, ctx: { run_id: 'run-1' }, cap: 'cap-ref', actor: carol.did },
    alice.seed,
    nodeSuite,
  );

  const tampered: [string, Partial<Envelope>][] = [
    ['id', { id: '0123456789abcdefGHIK' }],
    ['type', { type: 'pong' }],
    ['to', { to: carol.did }],
    ['ts', { ts: T0 + 1 }],
    ['exp', { exp: T0 + 5001 }],
    ['exp removed', { exp: undefined }],
    ['thread added', { thread: '0123456789abcdefGHIJ' }],
    ['ctx', { ctx: { run_id: 'run-2' } }],
    ['ctx key', { ctx: { task_id: 'run-1' } }],
    ['actor', { actor: bob.did }],
    ['cap', { cap: 'cap-rex' }],
    ['cap as bytes', { cap: new TextEncoder().encode('cap-ref') }],
    ['body', { body: new Uint8Array([0xa2, 0x68, 0x6a]) }],
  ];
  it.each(tampered)('refuses a tampered %s with ANX_ENVELOPE_SIGNATURE', (_what, patch) => {
    expect(() => verifyEnvelopeSignature({ ...signed, ...patch }, suite)).toThrow(EnvelopeSignatureError);
  });

  it('refuses a flipped signature bit and a missing signature', () => {
    const sig = (signed.sig as Uint8Array).slice();
    sig[10] = (sig[10] as number) ^ 4;
    expect(() => verifyEnvelopeSignature({ ...signed, sig }, suite)).toThrow(EnvelopeSignatureError);
    const { sig: _s, ...unsigned } = signed;
    expect(() => verifyEnvelopeSignature(unsigned as Envelope, suite)).toThrow(EnvelopeSignatureError);
  });

  it('refuses a valid DID that is not the signer with ANX_ENVELOPE_SIGNATURE', () => {
    expect(() => verifyEnvelopeSignature({ ...signed, from: bob.did }, suite)).toThrow(
      EnvelopeSignatureError,
    );
  });

  it.each([
    ['not a DID', 'alice'],
    ['a DID with a broken key', 'did:agentnexus:z6MkBROKEN'],
    ['the did:key alias', `did:key:${alice.did.slice('did:agentnexus:'.length)}`],
    ['another DID method', 'did:web:example.com'],
  ])('refuses a from that is %s with ANX_ENVELOPE_SENDER_KEY', (_what, from) => {
    expect(() => verifyEnvelopeSignature({ ...signed, from }, suite)).toThrow(EnvelopeSenderKeyError);
  });

  it('refuses to sign with a seed that is not the sender', () => {
    expect(() => signEnvelope(env, bob.seed, suite)).toThrow(EnvelopeSenderKeyError);
  });
});

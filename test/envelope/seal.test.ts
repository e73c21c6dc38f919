// Sealed mode: both suites seal identically and open each other's output; tampering and wrong keys are refused.
import { describe, expect, it } from 'vitest';
import { ed25519PublicToX25519 } from '../../runtime/crypto/convert.ts';
import { nobleSuite } from '../../runtime/crypto/noble.ts';
import { nodeSuite } from '../../runtime/crypto/node.ts';
import {
  acceptEnvelope,
  createEnvelope,
  decodeBody,
  decodeEnvelope,
  type Envelope,
  EnvelopeDecodeError,
  EnvelopeDecryptError,
  EnvelopeFieldError,
  EnvelopeSenderKeyError,
  EnvelopeSignatureError,
  encodeBody,
  encodeEnvelope,
  envelopeAad,
  MemoryReplayGuard,
  openSealed,
  SEALED_ENC,
  SEALED_TYPE,
  seal,
  sealKey,
  signEnvelope,
} from '../../runtime/envelope/index.ts';
import {
  alice,
  bob,
  bobX25519Private,
  carol,
  carolX25519Private,
  fixedClock,
  hex,
  seedOf,
  T0,
} from './fixtures.ts';

const plain = createEnvelope({
  ts: T0,
  exp: T0 + 60_000,
  type: 'artifact.deliver',
  from: alice.did,
  to: bob.did,
  thread: '01KDX0000000000000000THREAD',
  reply: '01KDX00000000000000000REPLY',
  ctx: { enclave_id: 'demo', stage: 'implement' },
  actor: carol.did,
  cap: 'cap:secret-token-reference',
  body: { key: 'impl/diff.patch', text: 'secret diff '.repeat(20) },
});
const fixed = { ephemeralPrivate: seedOf(0x99), nonce: new Uint8Array(12).fill(7) };
const flip = (bytes: Uint8Array, at: number): Uint8Array => {
  const out = bytes.slice();
  out[at] = (out[at] as number) ^ 0x01;
  return out;
};

describe('sealed envelopes across suites', () => {
  it('node and noble produce the same sealed bytes for fixed inputs', () => {
    const byNode = seal(plain, { senderSeed: alice.seed, recipientDid: bob.did, suite: nodeSuite, ...fixed });
    const byNoble = seal(plain, {
      senderSeed: alice.seed,
      recipientDid: bob.did,
      suite: nobleSuite,
      ...fixed,
    });
    expect(hex(encodeEnvelope(byNode))).toBe(hex(encodeEnvelope(byNoble)));
  });

  it.each([
    ['node', 'noble', nodeSuite, nobleSuite],
    ['noble', 'node', nobleSuite, nodeSuite],
  ] as const)('%s seals with random keys and %s opens it', (_a, _b, sealer, opener) => {
    const sealed = seal(plain, { senderSeed: alice.seed, recipientDid: bob.did, suite: sealer });
    expect(sealed.enc).toBe(SEALED_ENC);
    expect(sealed.epk?.length).toBe(32);
    expect(sealed.nonce?.length).toBe(12);
    expect(hex(sealed.body)).not.toContain(hex(new TextEncoder().encode('secret diff')));
    const decoded = decodeEnvelope(encodeEnvelope(sealed));
    const opened = openSealed(decoded, { recipientX25519Private: bobX25519Private, suite: opener });
    expect(hex(opened.payload)).toBe(hex(plain.body));
    expect(opened.envelope).toEqual({ ...plain, body: opened.payload });
    const accepted = acceptEnvelope(encodeEnvelope(sealed), {
      suite: opener,
      guard: new MemoryReplayGuard(),
      clock: fixedClock(),
      recipientX25519Private: bobX25519Private,
    });
    expect(accepted.body).toEqual(decodeBody(plain.body));
  });

  it('leaves only addressing in clear: type, thread, reply, ctx, actor, cap travel inside', () => {
    const sealed = seal(plain, { senderSeed: alice.seed, recipientDid: bob.did, suite: nodeSuite });
    const bytes = encodeEnvelope(sealed);
    const outer = decodeEnvelope(bytes);
    expect(Object.keys(outer).sort()).toEqual(
      ['body', 'enc', 'epk', 'exp', 'from', 'id', 'nonce', 'sig', 'to', 'ts', 'type', 'v'].sort(),
    );
    expect(outer.type).toBe(SEALED_TYPE);
    const text = Buffer.from(bytes).toString('latin1');
    for (const secret of ['artifact.deliver', 'THREAD', 'REPLY', 'implement', 'secret-token', carol.did]) {
      expect(text).not.toContain(secret);
    }
  });

  it('gives the receiver the envelope as the sender built it, and the sealed wire form as proof', () => {
    const sealed = seal(plain, { senderSeed: alice.seed, recipientDid: bob.did, suite: nodeSuite });
    const accepted = acceptEnvelope(encodeEnvelope(sealed), {
      suite: nobleSuite,
      guard: new MemoryReplayGuard(),
      clock: fixedClock(),
      recipientX25519Private: bobX25519Private,
    });
    expect(accepted.envelope).toEqual({ ...plain, body: accepted.payload });
    expect(accepted.wire.type).toBe(SEALED_TYPE);
    expect(accepted.wire.sig).toBeDefined();
  });

  it('uses a fresh ephemeral key and nonce for every seal', () => {
    const a = seal(plain, { senderSeed: alice.seed, recipientDid: bob.did, suite: nodeSuite });
    const b = seal(plain, { senderSeed: alice.seed, recipientDid: bob.did, suite: nodeSuite });
    expect(hex(a.epk as Uint8Array)).not.toBe(hex(b.epk as Uint8Array));
    expect(hex(a.nonce as Uint8Array)).not.toBe(hex(b.nonce as Uint8Array));
    expect(hex(a.body)).not.toBe(hex(b.body));
  });
});

describe.each([
  ['node', nodeSuite],
  ['noble', nobleSuite],
] as const)('sealed envelope refusals (%s)', (_name, suite) => {
  const sealed = seal(plain, { senderSeed: alice.seed, recipientDid: bob.did, suite, ...fixed });
  const open = (env: Envelope, key = bobX25519Private) =>
    openSealed(env, { recipientX25519Private: key, suite });
  const accept = (env: Envelope, key = bobX25519Private) =>
    acceptEnvelope(encodeEnvelope(env), {
      suite,
      guard: new MemoryReplayGuard(),
      clock: fixedClock(),
      recipientX25519Private: key,
    });

  const tampered: [string, (e: Envelope) => Envelope][] = [
    ['ciphertext', (e) => ({ ...e, body: flip(e.body, 3) })],
    ['tag', (e) => ({ ...e, body: flip(e.body, e.body.length - 1) })],
    ['nonce', (e) => ({ ...e, nonce: flip(e.nonce as Uint8Array, 0) })],
    ['epk', (e) => ({ ...e, epk: flip(e.epk as Uint8Array, 5) })],
    ['header id', (e) => ({ ...e, id: '01KDX000000000000000000000' })],
    ['header to', (e) => ({ ...e, to: carol.did })],
    ['header ts', (e) => ({ ...e, ts: e.ts + 1 })],
    ['header exp', (e) => ({ ...e, exp: (e.exp as number) + 1 })],
  ];

  it.each(tampered)(
    'refuses a tampered %s: the body does not open (ANX_ENVELOPE_DECRYPT)',
    (_what, change) => {
      expect(() => open(change(sealed))).toThrow(EnvelopeDecryptError);
    },
  );

  it.each(tampered)('refuses a tampered %s on receipt: the signature fails first', (_what, change) => {
    expect(() => accept(change(sealed))).toThrow(EnvelopeSignatureError);
  });

  it.each(tampered)(
    'refuses a tampered %s re-signed by the sender: the body still does not open',
    (_w, change) => {
      const { sig: _s, ...rest } = change(sealed);
      expect(() => accept(signEnvelope(rest as Envelope, alice.seed, suite))).toThrow(EnvelopeDecryptError);
    },
  );

  it.each([
    ['type', { type: 'artifact.deliver' }],
    ['ctx', { ctx: { stage: 'implement' } }],
    ['cap', { cap: 'cap:x' }],
    ['actor', { actor: carol.did }],
    ['thread', { thread: '01KDX0000000000000000THREAD' }],
  ] as [string, Partial<Envelope>][])(
    'refuses a sealed envelope that carries %s in clear (ANX_ENVELOPE_FIELD)',
    (_f, patch) => {
      const { sig: _s, ...rest } = { ...sealed, ...patch };
      expect(() => accept(signEnvelope(rest as Envelope, alice.seed, suite))).toThrow(EnvelopeFieldError);
    },
  );

  it('refuses malformed sealed content from a signed sender with a typed error', () => {
    const recipientX = ed25519PublicToX25519(bob.publicKey);
    const epk = suite.x25519PublicKey(fixed.ephemeralPrivate);
    const key = sealKey(suite, suite.x25519(fixed.ephemeralPrivate, recipientX), epk, recipientX);
    const craft = (plaintext: Uint8Array): Envelope => {
      const { sig: _s, ...outer } = sealed;
      const body = suite.aesGcmEncrypt(key, fixed.nonce, plaintext, envelopeAad(outer as Envelope));
      return signEnvelope({ ...(outer as Envelope), body }, alice.seed, suite);
    };
    expect(() => accept(craft(new Uint8Array([0x93, 1, 2, 3])))).toThrow(EnvelopeDecodeError);
    expect(() => accept(craft(encodeBody({ body: new Uint8Array(1) })))).toThrow(EnvelopeFieldError);
    expect(() => accept(craft(encodeBody({ type: 'x', body: new Uint8Array(1), extra: 1 })))).toThrow(
      EnvelopeFieldError,
    );
    expect(() => accept(craft(encodeBody({ type: 'x', body: 'text' })))).toThrow(EnvelopeFieldError);
    let message = '';
    try {
      accept(
        craft(
          encodeBody({ type: 'x', ctx: { stage: '' }, thread: 'HIDDEN THREAD', body: new Uint8Array(1) }),
        ),
      );
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^"sealed\.thread" expected a message id, got a string$/);
  });

  it('refuses to open with the wrong recipient key', () => {
    expect(() => open(sealed, carolX25519Private)).toThrow(EnvelopeDecryptError);
    expect(() => accept(sealed, carolX25519Private)).toThrow(EnvelopeDecryptError);
  });

  it('refuses a malformed recipient key with a typed error', () => {
    expect(() => open(sealed, new Uint8Array(5))).toThrow(EnvelopeDecryptError);
  });

  it('refuses a low-order ephemeral key with a typed error', () => {
    const lowOrder = { ...sealed, epk: new Uint8Array(32) };
    expect(() => open(lowOrder)).toThrow(EnvelopeDecryptError);
  });

  it('refuses to open a plain envelope', () => {
    expect(() => open(signEnvelope(plain, alice.seed, suite))).toThrow(EnvelopeDecryptError);
  });

  it('refuses to seal twice, for a non-DID recipient, or with a seed that is not the sender', () => {
    expect(() => seal(sealed, { senderSeed: alice.seed, recipientDid: bob.did, suite })).toThrow(
      EnvelopeFieldError,
    );
    expect(() => seal(plain, { senderSeed: alice.seed, recipientDid: 'enclave/demo', suite })).toThrow(
      EnvelopeFieldError,
    );
    expect(() => seal(plain, { senderSeed: carol.seed, recipientDid: bob.did, suite })).toThrow(
      EnvelopeSenderKeyError,
    );
  });
});

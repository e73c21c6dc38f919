// Writes test/vectors/envelope.json and envelope-invalid.json once; tests check them and never regenerate.
// Run: npx tsx test/envelope/generate-vectors.ts
import { writeFileSync } from 'node:fs';
import { Packr } from 'msgpackr';
import { ed25519PublicToX25519 } from '../../runtime/crypto/convert.ts';
import { nodeSuite } from '../../runtime/crypto/node.ts';
import {
  AAD_PREFIX,
  createEnvelope,
  type Envelope,
  encodeEnvelope,
  encodeSealedContent,
  envelopeAad,
  envelopeSigningInput,
  newEnvelopeId,
  SEAL_INFO,
  SEALED_ENC,
  SEALED_TYPE,
  SIGNING_PREFIX,
  seal,
  sealKey,
  signEnvelope,
} from '../../runtime/envelope/index.ts';
import { DID_KEY_PREFIX } from '../../runtime/identity/did.ts';
import { alice, bob, bobX25519Private, carol, hex, seedOf, T0, toJsonValue } from './fixtures.ts';

const suite = nodeSuite;
const idAt = (n: number): string =>
  newEnvelopeId(
    T0,
    Uint8Array.from({ length: 10 }, (_, i) => (n * 16 + i) & 0xff),
  );

function fieldsOf(env: Envelope): Record<string, unknown> {
  const { sig: _sig, ...rest } = env;
  return toJsonValue(rest) as Record<string, unknown>;
}

function plainVector(name: string, description: string, bodyValue: unknown, env: Envelope) {
  const signed = signEnvelope(env, alice.seed, suite);
  return {
    name,
    description,
    bodyValue,
    bodyHex: hex(env.body),
    fields: fieldsOf(env),
    signingInputHex: hex(envelopeSigningInput(env)),
    signatureHex: hex(signed.sig as Uint8Array),
    encodedHex: hex(encodeEnvelope(signed)),
  };
}

const minimal = createEnvelope({
  id: idAt(1),
  ts: T0,
  type: 'ping',
  from: alice.did,
  to: bob.did,
  body: null,
});
const fullBody = { title: 'Review the spec', refs: [{ key: 'design/spec.md', version: 3 }], urgent: true };
const full = createEnvelope({
  id: idAt(2),
  ts: T0,
  exp: T0 + 60_000,
  type: 'task.propose',
  from: alice.did,
  to: 'enclave/demo-1',
  thread: idAt(3),
  reply: idAt(4),
  ctx: { session_id: 's-1', run_id: 'run-7', enclave_id: 'demo-1', task_id: 'task-42', stage: 'review' },
  actor: carol.did,
  cap: Uint8Array.from({ length: 40 }, (_, i) => i),
  body: fullBody,
});
const capBody = { key: 'impl/diff.patch', note: 'überprüfen ✓' };
const capRef = createEnvelope({
  id: idAt(5),
  ts: T0,
  type: 'vault.get',
  from: alice.did,
  to: bob.did,
  ctx: { run_id: 'run-7', stage: 'implement' },
  cap: 'cap:sha256:' + 'ab'.repeat(32),
  body: capBody,
});

// Sealed: alice -> bob with a fixed ephemeral key and nonce.
const ephemeralPrivate = seedOf(0xc1);
const nonce = Uint8Array.from({ length: 12 }, (_, i) => 0xa0 + i);
const sealedBody = { vote: 'approve', score: 5 };
const sealedPlain = createEnvelope({
  id: idAt(6),
  ts: T0,
  type: 'discussion.vote',
  from: alice.did,
  to: bob.did,
  thread: idAt(7),
  ctx: { enclave_id: 'demo-1', stage: 'review' },
  cap: 'cap:sha256:' + 'cd'.repeat(32),
  body: sealedBody,
});
const sealed = seal(sealedPlain, {
  senderSeed: alice.seed,
  recipientDid: bob.did,
  suite,
  ephemeralPrivate,
  nonce,
});
const bobX = ed25519PublicToX25519(bob.publicKey);
const epk = suite.x25519PublicKey(ephemeralPrivate);
const shared = suite.x25519(ephemeralPrivate, bobX);
const salt = new Uint8Array(64);
salt.set(epk, 0);
salt.set(bobX, 32);

const vectors = {
  description:
    'AgentNexus envelope v1 test vectors: signing input, Ed25519 signature and msgpack encoding of plain envelopes, and every step of a sealed envelope. See docs/protocol.md, "Test vectors". Byte values in fields are written as {"hex": "..."}.',
  version: 1,
  ts: T0,
  identities: {
    alice: { seedHex: hex(alice.seed), publicKeyHex: hex(alice.publicKey), did: alice.did },
    bob: {
      seedHex: hex(bob.seed),
      publicKeyHex: hex(bob.publicKey),
      did: bob.did,
      x25519PrivateHex: hex(bobX25519Private),
      x25519PublicHex: hex(bobX),
    },
    carol: { seedHex: hex(carol.seed), publicKeyHex: hex(carol.publicKey), did: carol.did },
  },
  constants: {
    signingPrefixHex: hex(SIGNING_PREFIX as Uint8Array),
    aadPrefixHex: hex(AAD_PREFIX as Uint8Array),
    sealInfoHex: hex(SEAL_INFO as Uint8Array),
    enc: SEALED_ENC,
  },
  plain: [
    plainVector('minimal', 'required fields only, nil body, signed by alice', null, minimal),
    plainVector(
      'full',
      'every optional field, actor address recipient, capability token bytes',
      fullBody,
      full,
    ),
    plainVector(
      'cap-reference',
      'capability reference string, partial ctx, non-ASCII text in the body',
      capBody,
      capRef,
    ),
  ],
  sealed: [
    {
      name: 'sealed-vote',
      description: 'alice seals a vote for bob; fixed ephemeral key and nonce',
      sender: 'alice',
      recipient: 'bob',
      bodyValue: sealedBody,
      openedFields: fieldsOf(sealedPlain),
      payloadHex: hex(sealedPlain.body),
      contentHex: hex(encodeSealedContent(sealedPlain)),
      ephemeralPrivateHex: hex(ephemeralPrivate),
      epkHex: hex(epk),
      nonceHex: hex(nonce),
      sharedSecretHex: hex(shared),
      hkdfSaltHex: hex(salt),
      hkdfInfoHex: hex(SEAL_INFO as Uint8Array),
      keyHex: hex(sealKey(suite, shared, epk, bobX)),
      aadHex: hex(envelopeAad(sealed)),
      ciphertextHex: hex(sealed.body),
      fields: fieldsOf(sealed),
      signingInputHex: hex(envelopeSigningInput(sealed)),
      signatureHex: hex(sealed.sig as Uint8Array),
      encodedHex: hex(encodeEnvelope(sealed)),
    },
  ],
};

// Invalid inputs: each must be refused with `code` by a receiver whose clock reads `now`.
const rawPackr = new Packr({ useRecords: false, variableMapSize: true });
const wireOf = (env: Envelope): Record<string, unknown> => ({ ...env });
const signedMinimal = signEnvelope(minimal, alice.seed, suite);
const good = encodeEnvelope(signedMinimal);
const signAs = (env: Envelope, seed: Uint8Array): Envelope => ({
  ...env,
  sig: suite.sign(seed, envelopeSigningInput(env)),
});
const fresh = (n: number, patch: Partial<Envelope>): Envelope => ({ ...minimal, id: idAt(n), ...patch });

function withDuplicateKey(): Uint8Array {
  // Same map plus a second "type" entry; the header count says one more entry.
  const wire = wireOf(signedMinimal);
  const bytes = rawPackr.pack(wire);
  const extra = rawPackr.pack('type');
  const value = rawPackr.pack('pong');
  const count = Object.keys(wire).length + 1;
  const out = new Uint8Array(bytes.length + extra.length + value.length);
  out.set(bytes, 0);
  out[0] = 0x80 | count;
  out.set(extra, bytes.length);
  out.set(value, bytes.length + extra.length);
  return out;
}

const flipped = good.slice();
flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 0x01;

const sealedForBobTampered = (() => {
  const bytes = encodeEnvelope(sealed).slice();
  // The map ends with "sig" (4 bytes), its bin8 header (2) and 64 signature bytes; flip the
  // ciphertext's last byte, just before them.
  const at = bytes.length - 64 - 2 - 4 - 1;
  bytes[at] = (bytes[at] as number) ^ 0x80;
  return bytes;
})();

// A validly signed sealed envelope whose ciphertext was made under another nonce: it cannot open.
const undecryptable = (() => {
  const otherNonce = nonce.slice();
  otherNonce[0] = (otherNonce[0] as number) ^ 0xff;
  const env: Envelope = { ...sealed, id: idAt(20), nonce: otherNonce };
  const { sig: _s, ...unsigned } = env;
  return encodeEnvelope(signAs(unsigned as Envelope, alice.seed));
})();

// Sealed for bob and validly signed, but the sealed content has no "type".
const contentWithoutType = (() => {
  const outer: Envelope = { ...sealed, id: idAt(21), body: new Uint8Array(0) };
  const { sig: _s, ...unsigned } = outer;
  const key = sealKey(suite, shared, epk, bobX);
  const plaintext = rawPackr.pack({ body: sealedPlain.body });
  const body = suite.aesGcmEncrypt(key, nonce, plaintext, envelopeAad(unsigned as Envelope));
  return encodeEnvelope(signAs({ ...(unsigned as Envelope), body }, alice.seed));
})();
const resignedSealed = (patch: Partial<Envelope>, n: number): Uint8Array => {
  const { sig: _s, ...unsigned } = { ...sealed, id: idAt(n), ...patch };
  return encodeEnvelope(signAs(unsigned as Envelope, alice.seed));
};

const invalid = {
  description:
    'AgentNexus envelope v1 inputs a receiver must refuse, with the error code it must answer. The receiver clock reads `now`; sealed envelopes are opened with bob\'s X25519 key. See docs/protocol.md, "Test vectors".',
  now: T0,
  recipient: 'bob',
  cases: [
    { name: 'empty', why: 'no bytes', hex: '', code: 'ANX_ENVELOPE_DECODE' },
    {
      name: 'truncated',
      why: 'a valid envelope without its last byte',
      hex: hex(good.subarray(0, good.length - 1)),
      code: 'ANX_ENVELOPE_DECODE',
    },
    {
      name: 'trailing-byte',
      why: 'a valid envelope followed by 0xc0',
      hex: `${hex(good)}c0`,
      code: 'ANX_ENVELOPE_DECODE',
    },
    {
      name: 'top-level-array',
      why: 'an array, not a map',
      hex: hex(rawPackr.pack([1, 2, 3])),
      code: 'ANX_ENVELOPE_DECODE',
    },
    { name: 'garbage', why: 'the reserved byte 0xc1', hex: 'c1c1c1c1', code: 'ANX_ENVELOPE_DECODE' },
    {
      name: 'duplicate-key',
      why: '"type" appears twice',
      hex: hex(withDuplicateKey()),
      code: 'ANX_ENVELOPE_DECODE',
    },
    {
      name: 'too-large',
      why: 'over the receiver maximum of 64 bytes',
      maxBytes: 64,
      hex: hex(good),
      code: 'ANX_ENVELOPE_TOO_LARGE',
    },
    {
      name: 'version-2',
      why: '"v" is 2',
      hex: hex(rawPackr.pack({ ...wireOf(signedMinimal), v: 2 })),
      code: 'ANX_ENVELOPE_VERSION',
    },
    {
      name: 'version-missing',
      why: 'no "v"',
      hex: hex(rawPackr.pack((({ v: _v, ...rest }) => rest)(wireOf(signedMinimal)))),
      code: 'ANX_ENVELOPE_VERSION',
    },
    {
      name: 'unknown-field',
      why: 'an extra field "x"',
      hex: hex(rawPackr.pack({ ...wireOf(signedMinimal), x: 1 })),
      code: 'ANX_ENVELOPE_FIELD',
    },
    {
      name: 'to-number',
      why: '"to" is 42',
      hex: hex(rawPackr.pack({ ...wireOf(signedMinimal), to: 42 })),
      code: 'ANX_ENVELOPE_FIELD',
    },
    {
      name: 'ts-string',
      why: '"ts" is a string',
      hex: hex(rawPackr.pack({ ...wireOf(signedMinimal), ts: String(T0) })),
      code: 'ANX_ENVELOPE_FIELD',
    },
    {
      name: 'body-string',
      why: '"body" is a str, not bin',
      hex: hex(rawPackr.pack({ ...wireOf(signedMinimal), body: 'hello' })),
      code: 'ANX_ENVELOPE_FIELD',
    },
    {
      name: 'ctx-empty',
      why: '"ctx" is an empty map',
      hex: hex(rawPackr.pack({ ...wireOf(signedMinimal), ctx: {} })),
      code: 'ANX_ENVELOPE_FIELD',
    },
    {
      name: 'sig-missing',
      why: 'no "sig"',
      hex: hex(encodeEnvelope(fresh(8, {}))),
      code: 'ANX_ENVELOPE_SIGNATURE',
    },
    {
      name: 'sig-flipped',
      why: 'one bit of the signature flipped',
      hex: hex(flipped),
      code: 'ANX_ENVELOPE_SIGNATURE',
    },
    {
      name: 'from-other-key',
      why: '"from" is carol but alice signed',
      hex: hex(encodeEnvelope(signAs(fresh(9, { from: carol.did }), alice.seed))),
      code: 'ANX_ENVELOPE_SIGNATURE',
    },
    {
      name: 'from-not-did',
      why: '"from" is "bob"',
      hex: hex(encodeEnvelope(signAs(fresh(10, { from: 'bob' }), alice.seed))),
      code: 'ANX_ENVELOPE_SENDER_KEY',
    },
    {
      name: 'from-did-key',
      why: '"from" uses the did:key alias',
      hex: hex(
        encodeEnvelope(signAs(fresh(11, { from: DID_KEY_PREFIX + alice.did.split(':')[2] }), alice.seed)),
      ),
      code: 'ANX_ENVELOPE_SENDER_KEY',
    },
    {
      name: 'ts-old',
      why: '"ts" is 5 minutes and 1 ms before now',
      hex: hex(encodeEnvelope(signAs(fresh(12, { ts: T0 - 300_001 }), alice.seed))),
      code: 'ANX_ENVELOPE_REPLAY_WINDOW',
    },
    {
      name: 'ts-ahead',
      why: '"ts" is 10 minutes after now',
      hex: hex(encodeEnvelope(signAs(fresh(13, { ts: T0 + 600_000 }), alice.seed))),
      code: 'ANX_ENVELOPE_REPLAY_WINDOW',
    },
    {
      name: 'expired',
      why: '"exp" is 1 ms before now',
      hex: hex(encodeEnvelope(signAs(fresh(14, { exp: T0 - 1 }), alice.seed))),
      code: 'ANX_ENVELOPE_EXPIRED',
    },
    {
      name: 'sealed-ciphertext-flipped',
      why: 'a ciphertext bit flipped: the signature covers it',
      hex: hex(sealedForBobTampered),
      code: 'ANX_ENVELOPE_SIGNATURE',
    },
    {
      name: 'sealed-undecryptable',
      why: 'signed, but the nonce is not the one the body was sealed with',
      hex: hex(undecryptable),
      code: 'ANX_ENVELOPE_DECRYPT',
    },
    {
      name: 'sealed-content-without-type',
      why: 'signed and opens, but the sealed content has no "type"',
      hex: hex(contentWithoutType),
      code: 'ANX_ENVELOPE_FIELD',
    },
    {
      name: 'sealed-ctx-in-clear',
      why: 'a sealed envelope with "ctx" outside the ciphertext',
      hex: hex(resignedSealed({ ctx: { run_id: 'run-1' } }, 22)),
      code: 'ANX_ENVELOPE_FIELD',
    },
    {
      name: 'sealed-type-in-clear',
      why: `a sealed envelope whose outer "type" is not "${SEALED_TYPE}"`,
      hex: hex(resignedSealed({ type: 'discussion.vote' }, 23)),
      code: 'ANX_ENVELOPE_FIELD',
    },
    {
      name: 'sealed-for-carol',
      why: "sealed to carol, opened with bob's key",
      hex: hex(
        encodeEnvelope(
          seal(fresh(15, {}), {
            senderSeed: alice.seed,
            recipientDid: carol.did,
            suite,
            ephemeralPrivate,
            nonce,
          }),
        ),
      ),
      code: 'ANX_ENVELOPE_DECRYPT',
    },
  ],
};

const target = new URL('../vectors/', import.meta.url);
writeFileSync(new URL('envelope.json', target), `${JSON.stringify(vectors, null, 2)}\n`);
writeFileSync(new URL('envelope-invalid.json', target), `${JSON.stringify(invalid, null, 2)}\n`);
console.log('wrote envelope.json and envelope-invalid.json');

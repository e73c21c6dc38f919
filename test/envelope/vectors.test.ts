// Checks that the code reproduces every committed envelope vector, with both crypto suites; never rewrites them.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ed25519PublicToX25519, ed25519SeedToX25519Private } from '../../runtime/crypto/convert.ts';
import type { CryptoSuite } from '../../runtime/crypto/suite.ts';
import {
  AAD_PREFIX,
  acceptEnvelope,
  decodeBody,
  decodeEnvelope,
  type Envelope,
  EnvelopeError,
  encodeBody,
  encodeEnvelope,
  encodeSealedContent,
  envelopeAad,
  envelopeSigningInput,
  MemoryReplayGuard,
  openSealed,
  SEAL_INFO,
  SEALED_ENC,
  SIGNING_PREFIX,
  seal,
  sealKey,
  signEnvelope,
  verifyEnvelopeSignature,
} from '../../runtime/envelope/index.ts';
import { identityFromSeed } from '../../runtime/identity/keys.ts';
import { fixedClock, fromHex, fromJsonValue, hex, suites, toJsonValue } from './fixtures.ts';

interface IdentityVector {
  seedHex: string;
  publicKeyHex: string;
  did: string;
  x25519PrivateHex?: string;
  x25519PublicHex?: string;
}
interface PlainVector {
  name: string;
  bodyValue: unknown;
  bodyHex: string;
  fields: Record<string, unknown>;
  signingInputHex: string;
  signatureHex: string;
  encodedHex: string;
}
interface SealedVector extends PlainVector {
  sender: string;
  recipient: string;
  openedFields: Record<string, unknown>;
  payloadHex: string;
  contentHex: string;
  ephemeralPrivateHex: string;
  epkHex: string;
  nonceHex: string;
  sharedSecretHex: string;
  hkdfSaltHex: string;
  hkdfInfoHex: string;
  keyHex: string;
  aadHex: string;
  ciphertextHex: string;
}
interface Vectors {
  ts: number;
  identities: Record<string, IdentityVector>;
  constants: { signingPrefixHex: string; aadPrefixHex: string; sealInfoHex: string; enc: string };
  plain: PlainVector[];
  sealed: SealedVector[];
}
interface InvalidVectors {
  now: number;
  recipient: string;
  cases: { name: string; why: string; hex: string; code: string; maxBytes?: number }[];
}

const read = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8'));
const vectors = read('envelope.json') as Vectors;
const invalid = read('envelope-invalid.json') as InvalidVectors;

function identity(name: string): IdentityVector {
  const found = vectors.identities[name];
  if (found === undefined) throw new Error(`no identity ${name} in vectors`);
  return found;
}

const envelopeOf = (v: PlainVector): Envelope => fromJsonValue(v.fields) as Envelope;

describe.each(suites.map((suite) => [suite.name, suite] as [string, CryptoSuite]))(
  'envelope vectors (%s suite)',
  (_, suite) => {
    it('derives the identities and X25519 keys in the vectors', () => {
      for (const v of Object.values(vectors.identities)) {
        const id = identityFromSeed(fromHex(v.seedHex), suite);
        expect(hex(id.publicKey)).toBe(v.publicKeyHex);
        expect(id.did).toBe(v.did);
        if (v.x25519PrivateHex !== undefined) {
          expect(hex(ed25519SeedToX25519Private(id.seed))).toBe(v.x25519PrivateHex);
          expect(hex(ed25519PublicToX25519(id.publicKey))).toBe(v.x25519PublicHex);
        }
      }
    });

    it('has the documented domain-separation constants', () => {
      expect(hex(SIGNING_PREFIX as Uint8Array)).toBe(vectors.constants.signingPrefixHex);
      expect(hex(AAD_PREFIX as Uint8Array)).toBe(vectors.constants.aadPrefixHex);
      expect(hex(SEAL_INFO as Uint8Array)).toBe(vectors.constants.sealInfoHex);
      expect(SEALED_ENC).toBe(vectors.constants.enc);
    });

    it.each(vectors.plain.map((v) => [v.name, v] as [string, PlainVector]))(
      'reproduces plain vector %s: body, signing input, signature, encoding, decoding',
      (_name, v) => {
        const alice = identity('alice');
        const env = envelopeOf(v);
        expect(hex(encodeBody(v.bodyValue))).toBe(v.bodyHex);
        expect(hex(envelopeSigningInput(env))).toBe(v.signingInputHex);
        const signed = signEnvelope(env, fromHex(alice.seedHex), suite);
        expect(hex(signed.sig as Uint8Array)).toBe(v.signatureHex);
        expect(hex(encodeEnvelope(signed))).toBe(v.encodedHex);
        const decoded = decodeEnvelope(fromHex(v.encodedHex));
        verifyEnvelopeSignature(decoded, suite);
        expect(decodeBody(decoded.body)).toEqual(v.bodyValue);
        const accepted = acceptEnvelope(fromHex(v.encodedHex), {
          suite,
          guard: new MemoryReplayGuard(),
          clock: fixedClock(vectors.ts),
        });
        expect(accepted.body).toEqual(v.bodyValue);
      },
    );

    it.each(vectors.sealed.map((v) => [v.name, v] as [string, SealedVector]))(
      'reproduces sealed vector %s step by step and opens it',
      (_name, v) => {
        const sender = identity(v.sender);
        const recipient = identity(v.recipient);
        const ephemeral = fromHex(v.ephemeralPrivateHex);
        const recipientX = fromHex(recipient.x25519PublicHex as string);
        expect(hex(suite.x25519PublicKey(ephemeral))).toBe(v.epkHex);
        const shared = suite.x25519(ephemeral, recipientX);
        expect(hex(shared)).toBe(v.sharedSecretHex);
        expect(hex(fromHex(v.epkHex))).toBe(v.hkdfSaltHex.slice(0, 64));
        expect(v.hkdfSaltHex.slice(64)).toBe(recipient.x25519PublicHex);
        expect(v.hkdfInfoHex).toBe(vectors.constants.sealInfoHex);
        expect(hex(sealKey(suite, shared, fromHex(v.epkHex), recipientX))).toBe(v.keyHex);
        const env = envelopeOf(v);
        expect(hex(envelopeAad(env))).toBe(v.aadHex);
        expect(
          hex(
            suite.aesGcmEncrypt(
              fromHex(v.keyHex),
              fromHex(v.nonceHex),
              fromHex(v.contentHex),
              fromHex(v.aadHex),
            ),
          ),
        ).toBe(v.ciphertextHex);
        expect(hex(env.body)).toBe(v.ciphertextHex);
        expect(hex(envelopeSigningInput(env))).toBe(v.signingInputHex);
        expect(hex(suite.sign(fromHex(sender.seedHex), fromHex(v.signingInputHex)))).toBe(v.signatureHex);

        // The sealed content is the opened envelope's non-addressing fields and payload.
        const plain = fromJsonValue(v.openedFields) as Envelope;
        expect(hex(plain.body)).toBe(v.payloadHex);
        expect(hex(encodeSealedContent(plain))).toBe(v.contentHex);
        expect(hex(encodeBody(v.bodyValue))).toBe(v.payloadHex);

        // The whole of seal() with the vector's fixed inputs gives the same bytes.
        const sealed = seal(plain, {
          senderSeed: fromHex(sender.seedHex),
          recipientDid: recipient.did,
          suite,
          ephemeralPrivate: ephemeral,
          nonce: fromHex(v.nonceHex),
        });
        expect(hex(encodeEnvelope(sealed))).toBe(v.encodedHex);

        const decoded = decodeEnvelope(fromHex(v.encodedHex));
        const xPriv = fromHex(recipient.x25519PrivateHex as string);
        const opened = openSealed(decoded, { recipientX25519Private: xPriv, suite });
        expect(hex(opened.payload)).toBe(v.payloadHex);
        expect(toJsonValue(opened.envelope)).toEqual(v.openedFields);
        const accepted = acceptEnvelope(fromHex(v.encodedHex), {
          suite,
          guard: new MemoryReplayGuard(),
          clock: fixedClock(vectors.ts),
          recipientX25519Private: xPriv,
        });
        expect(accepted.sealed).toBe(true);
        expect(accepted.body).toEqual(v.bodyValue);
        expect(toJsonValue(accepted.envelope)).toEqual(v.openedFields);
        expect(hex(encodeEnvelope(accepted.wire))).toBe(v.encodedHex);
      },
    );

    it.each(invalid.cases.map((c) => [c.name, c] as [string, InvalidVectors['cases'][number]]))(
      'refuses invalid vector %s with its code',
      (_name, c) => {
        const recipient = identity(invalid.recipient);
        let caught: unknown;
        try {
          acceptEnvelope(fromHex(c.hex), {
            suite,
            guard: new MemoryReplayGuard(),
            clock: fixedClock(invalid.now),
            maxBytes: c.maxBytes,
            recipientX25519Private: fromHex(recipient.x25519PrivateHex as string),
          });
        } catch (err) {
          caught = err;
        }
        expect(caught).toBeInstanceOf(EnvelopeError);
        expect((caught as EnvelopeError).code).toBe(c.code);
      },
    );
  },
);

// Checks the code against test/vectors/identity.json, the identity vectors other implementations check too.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ed25519PublicToX25519,
  ed25519SeedToX25519Private,
  nobleSuite,
  nodeSuite,
} from '../../runtime/crypto/index.ts';
import { DidError, didFromPublicKey, isDid, parseDid, toDidKey } from '../../runtime/identity/did.ts';
import { didDocument } from '../../runtime/identity/did-document.ts';
import { identityFromSeed } from '../../runtime/identity/keys.ts';

interface IdentityVector {
  seed: string;
  ed25519_public: string;
  did: string;
  did_key: string;
  x25519_private: string;
  x25519_public: string;
  key_agreement_multikey: string;
}

interface Vectors {
  identities: IdentityVector[];
  sign: Array<{ seed: string; message: string; signature: string }>;
  x25519_agreement: Array<{ x25519_private: string; peer_x25519_public: string; shared: string }>;
  invalid_dids: Array<{ did: string; why: string }>;
}

const vectors = JSON.parse(
  readFileSync(new URL('../vectors/identity.json', import.meta.url), 'utf8'),
) as Vectors;
const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'));
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

describe('identity vectors', () => {
  it('has entries of every kind', () => {
    expect(vectors.identities.length).toBeGreaterThanOrEqual(5);
    expect(vectors.sign.length).toBeGreaterThanOrEqual(3);
    expect(vectors.x25519_agreement.length).toBeGreaterThanOrEqual(1);
    expect(vectors.invalid_dids.length).toBeGreaterThanOrEqual(10);
  });

  describe.each([nodeSuite, nobleSuite])('with the $name suite', (suite) => {
    it.each(vectors.identities)('derives keys, DIDs and the key-agreement key of seed $seed', (v) => {
      const publicKey = suite.ed25519PublicKey(hex(v.seed));
      expect(toHex(publicKey)).toBe(v.ed25519_public);
      expect(didFromPublicKey(publicKey)).toBe(v.did);
      expect(identityFromSeed(hex(v.seed), suite).did).toBe(v.did);
      expect(toDidKey(v.did)).toBe(v.did_key);
      expect(toHex(parseDid(v.did_key).publicKey)).toBe(v.ed25519_public);
      expect(parseDid(v.did_key).did).toBe(v.did);
      const xPriv = ed25519SeedToX25519Private(hex(v.seed));
      expect(toHex(xPriv)).toBe(v.x25519_private);
      expect(toHex(suite.x25519PublicKey(xPriv))).toBe(v.x25519_public);
      expect(toHex(ed25519PublicToX25519(publicKey))).toBe(v.x25519_public);
      expect(didDocument(v.did).keyAgreement[0]?.publicKeyMultibase).toBe(v.key_agreement_multikey);
    });

    it.each(vectors.sign)('signs message $message as the vector says', (v) => {
      const sig = suite.sign(hex(v.seed), hex(v.message));
      expect(toHex(sig)).toBe(v.signature);
      expect(suite.verify(suite.ed25519PublicKey(hex(v.seed)), hex(v.message), hex(v.signature))).toBe(true);
    });

    it.each(vectors.x25519_agreement)('agrees on shared secret $shared', (v) => {
      expect(toHex(suite.x25519(hex(v.x25519_private), hex(v.peer_x25519_public)))).toBe(v.shared);
    });
  });

  it.each(vectors.invalid_dids)('rejects $did ($why)', ({ did }) => {
    expect(() => parseDid(did)).toThrow(DidError);
    expect(isDid(did)).toBe(false);
  });
});

// DID documents: the did:key shape, with the X25519 key-agreement key derived from the Ed25519 key.
import { describe, expect, it } from 'vitest';
import {
  ed25519PublicToX25519,
  ed25519SeedToX25519Private,
  nobleSuite,
  nodeSuite,
} from '../../runtime/crypto/index.ts';
import { base58Decode } from '../../runtime/identity/base58.ts';
import { DidError, didFromPublicKey, toDidKey } from '../../runtime/identity/did.ts';
import { didDocument, keyAgreementKeyOfDid, x25519Multikey } from '../../runtime/identity/did-document.ts';

const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

describe('didDocument', () => {
  it('matches the W3C did:key example, key-agreement key included', () => {
    const multikey = 'z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
    const doc = didDocument(`did:key:${multikey}`);
    expect(doc.id).toBe(`did:key:${multikey}`);
    expect(doc.verificationMethod).toEqual([
      {
        id: `did:key:${multikey}#${multikey}`,
        type: 'Multikey',
        controller: `did:key:${multikey}`,
        publicKeyMultibase: multikey,
      },
    ]);
    expect(doc.keyAgreement[0]?.publicKeyMultibase).toBe('z6LSj72tK8brWgZja8NLRwPigth2T9QRiG1uH9oKZuKjdh9p');
  });

  it('lists one signing key for authentication and assertion, and a derived X25519 key for agreement', () => {
    const seed = new Uint8Array(32).fill(11);
    const did = didFromPublicKey(nodeSuite.ed25519PublicKey(seed));
    const doc = didDocument(did);
    const multikey = did.slice('did:agentnexus:'.length);
    const signing = `${did}#${multikey}`;
    expect(doc['@context']).toEqual([
      'https://www.w3.org/ns/did/v1',
      'https://w3id.org/security/multikey/v1',
    ]);
    expect(doc.id).toBe(did);
    expect(doc.authentication).toEqual([signing]);
    expect(doc.assertionMethod).toEqual([signing]);
    expect(doc.capabilityInvocation).toEqual([signing]);
    expect(doc.capabilityDelegation).toEqual([signing]);
    const agreement = doc.keyAgreement[0];
    expect(agreement?.type).toBe('Multikey');
    expect(agreement?.controller).toBe(did);
    expect(agreement?.publicKeyMultibase.startsWith('z6LS')).toBe(true);
    expect(agreement?.id).toBe(`${did}#${agreement?.publicKeyMultibase}`);
    // The document's X25519 key is the public half of the private key the seed converts to.
    const decoded = base58Decode(agreement?.publicKeyMultibase.slice(1) ?? '');
    expect(toHex(decoded.subarray(0, 2))).toBe('ec01');
    const xPub = nobleSuite.x25519PublicKey(ed25519SeedToX25519Private(seed));
    expect(toHex(decoded.subarray(2))).toBe(toHex(xPub));
    expect(toHex(keyAgreementKeyOfDid(did))).toBe(toHex(xPub));
    expect(toHex(keyAgreementKeyOfDid(toDidKey(did)))).toBe(toHex(xPub));
  });

  it('is plain JSON', () => {
    const doc = didDocument(didFromPublicKey(nodeSuite.ed25519PublicKey(new Uint8Array(32).fill(12))));
    expect(JSON.parse(JSON.stringify(doc))).toEqual(doc);
  });

  it('throws DidError for a malformed DID or a key that is not a curve point', () => {
    expect(() => didDocument('bob', 'did')).toThrow(DidError);
    const offCurve = new Uint8Array(32);
    offCurve[0] = 2;
    expect(() => didDocument(didFromPublicKey(offCurve), 'did')).toThrow(DidError);
    expect(() => keyAgreementKeyOfDid(didFromPublicKey(offCurve))).toThrow(/valid Ed25519 point/);
    expect(() => x25519Multikey(new Uint8Array(31))).toThrow(DidError);
  });

  it('encodes X25519 multikeys that round-trip the converted key', () => {
    const pub = nodeSuite.ed25519PublicKey(new Uint8Array(32).fill(13));
    const x = ed25519PublicToX25519(pub);
    expect(toHex(base58Decode(x25519Multikey(x).slice(1)).subarray(2))).toBe(toHex(x));
  });
});

// W3C DID documents of our DIDs, built as did:key builds them: one Ed25519 key and its derived X25519 key.
import { ed25519PublicToX25519 } from '../crypto/convert.ts';
import { describeValue } from '../errors.ts';
import { base58Encode } from './base58.ts';
import { DID_KEY_PREFIX, type Did, DidError, parseDid } from './did.ts';

/** Multicodec varint of an X25519 public key (0xec), as it prefixes a multikey ("z6LS…"). */
export const X25519_PUB_CODEC: Readonly<Uint8Array> = Uint8Array.of(0xec, 0x01);

/** JSON-LD contexts of a document whose keys are `Multikey`s. */
export const DID_DOCUMENT_CONTEXT = ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/multikey/v1'];

/** A verification method expressed as a W3C `Multikey`. */
export interface MultikeyMethod {
  id: string;
  type: 'Multikey';
  controller: Did;
  publicKeyMultibase: string;
}

/** The DID document of one of our DIDs. */
export interface DidDocument {
  '@context': string[];
  id: Did;
  verificationMethod: MultikeyMethod[];
  authentication: string[];
  assertionMethod: string[];
  capabilityInvocation: string[];
  capabilityDelegation: string[];
  keyAgreement: MultikeyMethod[];
}

/**
 * Encodes an X25519 public key as a multikey: 'z' + base58btc(0xec 0x01 || key).
 *
 * @example
 * ```ts
 * x25519Multikey(ed25519PublicToX25519(publicKey)); // 'z6LS…'
 * ```
 */
export function x25519Multikey(publicKey: Uint8Array): string {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw new DidError(`X25519 public key expected 32 bytes, got ${publicKey?.length ?? 'no'} bytes`);
  }
  const prefixed = new Uint8Array(34);
  prefixed.set(X25519_PUB_CODEC, 0);
  prefixed.set(publicKey, 2);
  return `z${base58Encode(prefixed)}`;
}

/**
 * The X25519 key-agreement public key of a DID (derived from its Ed25519 key, as did:key does).
 * Throws `DidError` when the DID is malformed or its key is not a usable curve point.
 *
 * @example
 * ```ts
 * const shared = suite.x25519(myX25519Private, keyAgreementKeyOfDid(peer, 'to'));
 * ```
 */
export function keyAgreementKeyOfDid(did: Did, field?: string): Uint8Array {
  const { publicKey } = parseDid(did, field);
  try {
    return ed25519PublicToX25519(publicKey);
  } catch (cause) {
    const who = field === undefined ? 'input' : JSON.stringify(field);
    throw new DidError(
      `${who} expected a DID whose key is a valid Ed25519 point, got ${describeValue(did)}`,
      {
        cause,
        field,
      },
    );
  }
}

/**
 * The W3C DID document of a DID. The id keeps the method of the input (a did:key input gives the
 * did:key document), so the result also serves as a did:key resolution.
 *
 * @example
 * ```ts
 * const doc = didDocument('did:agentnexus:z6Mk…');
 * doc.keyAgreement[0].publicKeyMultibase; // 'z6LS…'
 * ```
 */
export function didDocument(did: Did, field?: string): DidDocument {
  const parsed = parseDid(did, field);
  const id = parsed.method === 'key' ? DID_KEY_PREFIX + parsed.multikey : parsed.did;
  const agreement = x25519Multikey(keyAgreementKeyOfDid(parsed.did, field));
  const signingId = `${id}#${parsed.multikey}`;
  return {
    '@context': [...DID_DOCUMENT_CONTEXT],
    id,
    verificationMethod: [
      { id: signingId, type: 'Multikey', controller: id, publicKeyMultibase: parsed.multikey },
    ],
    authentication: [signingId],
    assertionMethod: [signingId],
    capabilityInvocation: [signingId],
    capabilityDelegation: [signingId],
    keyAgreement: [
      { id: `${id}#${agreement}`, type: 'Multikey', controller: id, publicKeyMultibase: agreement },
    ],
  };
}

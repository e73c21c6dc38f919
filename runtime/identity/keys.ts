// Making identities: a 32-byte Ed25519 seed, its public key and the DID derived from it.

import { CryptoError } from '../crypto/errors.ts';
import { defaultSuite } from '../crypto/index.ts';
import type { CryptoSuite } from '../crypto/suite.ts';
import { describeValue } from '../errors.ts';
import { type Did, didFromPublicKey } from './did.ts';

/**
 * An identity with its secret seed. `JSON.stringify` and `util.inspect` show only the DID and
 * public key, so an identity that slips into a log leaks nothing.
 */
export interface Identity {
  readonly did: Did;
  readonly publicKey: Uint8Array;
  readonly seed: Uint8Array;
}

const INSPECT = Symbol.for('nodejs.util.inspect.custom');

function redacted(identity: { did: Did; publicKey: Uint8Array }) {
  return {
    did: identity.did,
    publicKey: Buffer.from(identity.publicKey).toString('hex'),
    seed: '[redacted]',
  };
}

/**
 * The identity of a 32-byte Ed25519 seed (the seed is copied).
 *
 * @example
 * ```ts
 * const { did } = identityFromSeed(seed); // 'did:agentnexus:z6Mk…'
 * ```
 */
export function identityFromSeed(seed: Uint8Array, suite: CryptoSuite = defaultSuite()): Identity {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) {
    throw new CryptoError(`seed expected 32 bytes, got ${describeValue(seed)}`);
  }
  const own = seed.slice();
  const publicKey = suite.ed25519PublicKey(own);
  const identity = { did: didFromPublicKey(publicKey), publicKey, seed: own };
  Object.defineProperty(identity, 'toJSON', { value: () => redacted(identity), enumerable: false });
  Object.defineProperty(identity, INSPECT, { value: () => redacted(identity), enumerable: false });
  return identity;
}

/**
 * A fresh identity from 32 random bytes of the suite's CSPRNG.
 *
 * @example
 * ```ts
 * const alice = generateIdentity();
 * const sig = nodeSuite.sign(alice.seed, message);
 * ```
 */
export function generateIdentity(suite: CryptoSuite = defaultSuite()): Identity {
  const seed = suite.randomBytes(32);
  const identity = identityFromSeed(seed, suite);
  seed.fill(0);
  return identity;
}

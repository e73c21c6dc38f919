// The node:crypto and noble suites checked against each other: same bytes out, each accepts the other's output.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CryptoError,
  createNodeSuite,
  defaultSuite,
  ed25519PublicToX25519,
  ed25519SeedToX25519Private,
  nobleSuite,
  nodeSuite,
} from '../../runtime/crypto/index.ts';

const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const nonce12 = fc.uint8Array({ minLength: 12, maxLength: 12 });
const message = fc.uint8Array({ maxLength: 700 });

describe('node and noble suites', () => {
  it('derive the same Ed25519 public keys and signatures, and verify each other', () => {
    fc.assert(
      fc.property(bytes32, message, (seed, msg) => {
        const pub = nodeSuite.ed25519PublicKey(seed);
        expect(toHex(nobleSuite.ed25519PublicKey(seed))).toBe(toHex(pub));
        const nodeSig = nodeSuite.sign(seed, msg);
        const nobleSig = nobleSuite.sign(seed, msg);
        expect(toHex(nobleSig)).toBe(toHex(nodeSig));
        expect(nobleSuite.verify(pub, msg, nodeSig)).toBe(true);
        expect(nodeSuite.verify(pub, msg, nobleSig)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('give the same verdict on tampered and random signatures', () => {
    fc.assert(
      fc.property(
        bytes32,
        message,
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        fc.nat(),
        (seed, msg, junk, bit) => {
          const pub = nodeSuite.ed25519PublicKey(seed);
          const sig = nodeSuite.sign(seed, msg);
          const tampered = sig.slice();
          tampered[(bit >> 3) % 64] = (tampered[(bit >> 3) % 64] as number) ^ (1 << (bit & 7));
          for (const candidate of [tampered, junk]) {
            expect(nodeSuite.verify(pub, msg, candidate)).toBe(nobleSuite.verify(pub, msg, candidate));
          }
          // A random 32-byte string as key: often not even a curve point.
          expect(nodeSuite.verify(junk.subarray(0, 32), msg, sig)).toBe(
            nobleSuite.verify(junk.subarray(0, 32), msg, sig),
          );
        },
      ),
      { numRuns: 60 },
    );
  });

  it('derive the same X25519 public keys and shared secrets', () => {
    fc.assert(
      fc.property(bytes32, bytes32, (a, b) => {
        const aPub = nodeSuite.x25519PublicKey(a);
        expect(toHex(nobleSuite.x25519PublicKey(a))).toBe(toHex(aPub));
        const bPub = nobleSuite.x25519PublicKey(b);
        expect(toHex(nodeSuite.x25519(b, aPub))).toBe(toHex(nobleSuite.x25519(a, bPub)));
      }),
      { numRuns: 40 },
    );
  });

  it('agree on X25519 with arbitrary (non-canonical, high-bit) peer encodings', () => {
    fc.assert(
      fc.property(bytes32, bytes32, (priv, u) => {
        let nodeOut: string;
        let nobleOut: string;
        try {
          nodeOut = toHex(nodeSuite.x25519(priv, u));
        } catch (err) {
          nodeOut = err instanceof CryptoError ? 'CryptoError' : 'other';
        }
        try {
          nobleOut = toHex(nobleSuite.x25519(priv, u));
        } catch (err) {
          nobleOut = err instanceof CryptoError ? 'CryptoError' : 'other';
        }
        expect(nodeOut).toBe(nobleOut);
      }),
      { numRuns: 40 },
    );
    const priv = new Uint8Array(32).fill(4);
    const allOnes = new Uint8Array(32).fill(0xff);
    expect(toHex(nodeSuite.x25519(priv, allOnes))).toBe(toHex(nobleSuite.x25519(priv, allOnes)));
  });

  it('seal to the same bytes with AES-256-GCM and open each other', () => {
    fc.assert(
      fc.property(
        bytes32,
        nonce12,
        message,
        fc.option(message, { nil: undefined }),
        (key, nonce, plaintext, aad) => {
          const nodeSealed = nodeSuite.aesGcmEncrypt(key, nonce, plaintext, aad);
          const nobleSealed = nobleSuite.aesGcmEncrypt(key, nonce, plaintext, aad);
          expect(toHex(nobleSealed)).toBe(toHex(nodeSealed));
          expect(toHex(nobleSuite.aesGcmDecrypt(key, nonce, nodeSealed, aad))).toBe(toHex(plaintext));
          expect(toHex(nodeSuite.aesGcmDecrypt(key, nonce, nobleSealed, aad))).toBe(toHex(plaintext));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('derive the same HKDF, SHA-256 and HMAC output', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 100 }),
        fc.uint8Array({ maxLength: 100 }),
        fc.uint8Array({ maxLength: 1300 }),
        fc.integer({ min: 0, max: 255 * 32 }),
        (ikm, salt, info, length) => {
          expect(toHex(nobleSuite.hkdfSha256(ikm, salt, info, length))).toBe(
            toHex(nodeSuite.hkdfSha256(ikm, salt, info, length)),
          );
          expect(toHex(nobleSuite.sha256(info))).toBe(toHex(nodeSuite.sha256(info)));
          expect(toHex(nobleSuite.hmacSha256(salt, info))).toBe(toHex(nodeSuite.hmacSha256(salt, info)));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('return plain Uint8Arrays (not Buffers) from every primitive', () => {
    const seed = new Uint8Array(32).fill(2);
    for (const suite of [nodeSuite, nobleSuite]) {
      const outputs = [
        suite.ed25519PublicKey(seed),
        suite.sign(seed, seed),
        suite.x25519PublicKey(seed),
        suite.x25519(seed, suite.x25519PublicKey(new Uint8Array(32).fill(3))),
        suite.aesGcmEncrypt(seed, new Uint8Array(12), seed),
        suite.hkdfSha256(seed, seed, seed, 32),
        suite.sha256(seed),
        suite.hmacSha256(seed, seed),
        suite.randomBytes(8),
      ];
      for (const out of outputs) expect(Object.getPrototypeOf(out)).toBe(Uint8Array.prototype);
    }
  });
});

describe('node suite key caches', () => {
  it('stay correct while evicting keys from a tiny cache', () => {
    const small = createNodeSuite({ cacheSize: 2 });
    const seeds = Array.from({ length: 6 }, (_, i) => new Uint8Array(32).fill(i + 1));
    for (let round = 0; round < 3; round++) {
      for (const seed of seeds) {
        const msg = Uint8Array.of(round, seed[0] as number);
        const sig = small.sign(seed, msg);
        expect(toHex(sig)).toBe(toHex(nobleSuite.sign(seed, msg)));
        expect(small.verify(small.ed25519PublicKey(seed), msg, sig)).toBe(true);
      }
    }
  });

  it('are keyed by content, so a caller reusing one buffer for another key gets the new key', () => {
    const buffer = new Uint8Array(32).fill(1);
    const first = toHex(nodeSuite.ed25519PublicKey(buffer));
    buffer.fill(2);
    expect(toHex(nodeSuite.ed25519PublicKey(buffer))).not.toBe(first);
    expect(toHex(nodeSuite.ed25519PublicKey(buffer))).toBe(toHex(nobleSuite.ed25519PublicKey(buffer)));
  });

  it('hand out copies of cached public keys', () => {
    const seed = new Uint8Array(32).fill(9);
    const pub = nodeSuite.ed25519PublicKey(seed);
    pub.fill(0);
    expect(toHex(nodeSuite.ed25519PublicKey(seed))).toBe(toHex(nobleSuite.ed25519PublicKey(seed)));
  });
});

it('agree on X25519 when one-off ephemeral keys interleave with a long-lived key agreement key', () => {
  const suite = createNodeSuite({ cacheSize: 4 });
  const longLived = new Uint8Array(32).fill(7);
  const peers = Array.from({ length: 12 }, (_, i) =>
    nobleSuite.x25519PublicKey(new Uint8Array(32).fill(40 + i)),
  );
  for (let i = 0; i < 12; i++) {
    // An ephemeral key: its public half, then one agreement, as a seal or a handshake uses it.
    const ephemeral = new Uint8Array(32).fill(100 + i);
    expect(toHex(suite.x25519PublicKey(ephemeral))).toBe(toHex(nobleSuite.x25519PublicKey(ephemeral)));
    expect(toHex(suite.x25519(ephemeral, peers[i] as Uint8Array))).toBe(
      toHex(nobleSuite.x25519(ephemeral, peers[i] as Uint8Array)),
    );
    // The long-lived key, used between them and again after (it moves into the cache on its third use).
    for (const peer of [peers[i], peers[(i + 5) % 12]] as Uint8Array[])
      expect(toHex(suite.x25519(longLived, peer))).toBe(toHex(nobleSuite.x25519(longLived, peer)));
    expect(toHex(suite.x25519PublicKey(longLived))).toBe(toHex(nobleSuite.x25519PublicKey(longLived)));
  }
});

describe('Ed25519 → X25519 conversion', () => {
  it('maps a seed and its public key to a matching X25519 pair in both suites', () => {
    fc.assert(
      fc.property(bytes32, bytes32, (seedA, seedB) => {
        const xPrivA = ed25519SeedToX25519Private(seedA);
        const xPubA = ed25519PublicToX25519(nodeSuite.ed25519PublicKey(seedA));
        expect(toHex(nodeSuite.x25519PublicKey(xPrivA))).toBe(toHex(xPubA));
        expect(toHex(nobleSuite.x25519PublicKey(xPrivA))).toBe(toHex(xPubA));
        const xPrivB = ed25519SeedToX25519Private(seedB);
        const xPubB = ed25519PublicToX25519(nobleSuite.ed25519PublicKey(seedB));
        expect(toHex(nodeSuite.x25519(xPrivA, xPubB))).toBe(toHex(nobleSuite.x25519(xPrivB, xPubA)));
      }),
      { numRuns: 30 },
    );
  });

  it('returns an exact 32-byte private key with nothing else in its buffer', () => {
    const priv = ed25519SeedToX25519Private(new Uint8Array(32).fill(5));
    expect(priv.length).toBe(32);
    expect(priv.buffer.byteLength).toBe(32);
  });

  it('throws CryptoError for keys that are not usable points or have the wrong length', () => {
    expect(() => ed25519PublicToX25519(new Uint8Array(31))).toThrow(CryptoError);
    // y = 1 is the identity point: it maps to u = 0.
    const identity = new Uint8Array(32);
    identity[0] = 1;
    expect(() => ed25519PublicToX25519(identity)).toThrow(CryptoError);
    // y = 2 has no x on the curve.
    const offCurve = new Uint8Array(32);
    offCurve[0] = 2;
    expect(() => ed25519PublicToX25519(offCurve)).toThrow(CryptoError);
    expect(() => ed25519SeedToX25519Private(new Uint8Array(33))).toThrow(CryptoError);
  });
});

describe('defaultSuite', () => {
  it('picks node:crypto on Node and honours ANX_CRYPTO_SUITE', () => {
    expect(defaultSuite({}).name).toBe('node');
    expect(defaultSuite({ ANX_CRYPTO_SUITE: 'noble' }).name).toBe('noble');
    expect(defaultSuite({ ANX_CRYPTO_SUITE: 'node' }).name).toBe('node');
    expect(defaultSuite({ ANX_CRYPTO_SUITE: '' }).name).toBe('node');
  });

  it('refuses an unknown ANX_CRYPTO_SUITE with a typed error', () => {
    expect(() => defaultSuite({ ANX_CRYPTO_SUITE: 'openssl' })).toThrow(
      /expected "node" or "noble", got "openssl"/,
    );
    expect(() => defaultSuite({ ANX_CRYPTO_SUITE: 'openssl' })).toThrow(CryptoError);
  });
});

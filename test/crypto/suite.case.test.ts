// The one conformance suite every CryptoSuite implementation runs: published vectors, round trips, hostile input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CryptoSuite } from '../../runtime/crypto/index.ts';
import { CryptoError, DecryptError, nobleSuite, nodeSuite } from '../../runtime/crypto/index.ts';
import { isAnxError } from '../../runtime/errors.ts';

const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'));
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const message = fc.uint8Array({ maxLength: 512 });

// Encodings of low-order X25519 points (RFC 7748 §6.1 asks to refuse the all-zero result they give).
const LOW_ORDER_U = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const copy = bytes.slice();
  const index = Math.floor(bit / 8) % copy.length;
  copy[index] = (copy[index] as number) ^ (1 << (bit % 8));
  return copy;
}

describe.each([nodeSuite, nobleSuite] as CryptoSuite[])('CryptoSuite $name', (suite) => {
  describe('Ed25519', () => {
    it('matches RFC 8032 test 1 (empty message)', () => {
      const seed = hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
      const pub = suite.ed25519PublicKey(seed);
      expect(toHex(pub)).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
      const sig = suite.sign(seed, new Uint8Array(0));
      expect(toHex(sig)).toBe(
        'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
      );
      expect(suite.verify(pub, new Uint8Array(0), sig)).toBe(true);
    });

    it('matches RFC 8032 test 2 (one-byte message)', () => {
      const seed = hex('4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb');
      expect(toHex(suite.ed25519PublicKey(seed))).toBe(
        '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
      );
      expect(toHex(suite.sign(seed, hex('72')))).toBe(
        '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
      );
    });

    it('verifies its own signatures over random keys and messages', () => {
      fc.assert(
        fc.property(bytes32, message, (seed, msg) => {
          const sig = suite.sign(seed, msg);
          expect(sig.length).toBe(64);
          expect(suite.verify(suite.ed25519PublicKey(seed), msg, sig)).toBe(true);
        }),
        { numRuns: 60 },
      );
    });

    it('rejects a signature with any single bit flipped in signature, message or key', () => {
      fc.assert(
        fc.property(bytes32, message, fc.nat(), (seed, msg, bit) => {
          const pub = suite.ed25519PublicKey(seed);
          const sig = suite.sign(seed, msg);
          expect(suite.verify(pub, msg, flipBit(sig, bit % 512))).toBe(false);
          if (msg.length > 0) expect(suite.verify(pub, flipBit(msg, bit), sig)).toBe(false);
          expect(suite.verify(flipBit(pub, bit % 256), msg, sig)).toBe(false);
        }),
        { numRuns: 40 },
      );
    });

    it('answers false, never throws, for malformed verify input', () => {
      const seed = new Uint8Array(32).fill(1);
      const pub = suite.ed25519PublicKey(seed);
      const msg = utf8('hello');
      const sig = suite.sign(seed, msg);
      const bad: Array<[unknown, unknown, unknown]> = [
        [pub.subarray(0, 31), msg, sig],
        [pub, msg, sig.subarray(0, 63)],
        [new Uint8Array([...sig, 0]), msg, sig],
        [pub, msg, new Uint8Array([...sig, 0])],
        ['not bytes', msg, sig],
        [pub, 'hello', sig],
        [pub, msg, null],
        [undefined, undefined, undefined],
        [new Uint8Array(32), msg, sig],
        [new Uint8Array(32).fill(0xff), msg, sig],
      ];
      for (const [p, m, s] of bad) {
        expect(suite.verify(p as Uint8Array, m as Uint8Array, s as Uint8Array)).toBe(false);
      }
    });

    it('refuses small-order public keys even with a signature that satisfies the equation', () => {
      // The all-zero key (an order-4 point) with an all-zero signature passes a permissive verifier.
      expect(suite.verify(new Uint8Array(32), utf8('x'), new Uint8Array(64))).toBe(false);
      const identity = hex('0100000000000000000000000000000000000000000000000000000000000000');
      const sigOfIdentity = new Uint8Array(64);
      sigOfIdentity.set(identity, 0);
      expect(suite.verify(identity, utf8('anything'), sigOfIdentity)).toBe(false);
    });

    it('refuses a signature whose S is not reduced below the group order', () => {
      const seed = new Uint8Array(32).fill(3);
      const msg = utf8('malleable?');
      const sig = suite.sign(seed, msg);
      // Add L to S: same point equation, non-canonical encoding.
      const L = (1n << 252n) + 27742317777372353535851937790883648493n;
      const s = BigInt(`0x${toHex(sig.slice(32).reverse())}`) + L;
      const sBytes = hex(s.toString(16).padStart(64, '0')).reverse();
      const malleated = sig.slice();
      malleated.set(sBytes, 32);
      expect(suite.verify(suite.ed25519PublicKey(seed), msg, malleated)).toBe(false);
    });

    it('throws CryptoError for a seed of the wrong length or type', () => {
      expect(() => suite.sign(new Uint8Array(31), utf8('x'))).toThrow(CryptoError);
      expect(() => suite.ed25519PublicKey(new Uint8Array(33))).toThrow(CryptoError);
      expect(() => suite.sign('seed' as unknown as Uint8Array, utf8('x'))).toThrow(/expected a Uint8Array/);
    });
  });

  describe('X25519', () => {
    it('matches RFC 7748 §5.2 vector 1', () => {
      const out = suite.x25519(
        hex('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4'),
        hex('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c'),
      );
      expect(toHex(out)).toBe('c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552');
    });

    it('matches the RFC 7748 §6.1 Diffie-Hellman example', () => {
      const alice = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
      const bob = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
      const alicePub = suite.x25519PublicKey(alice);
      const bobPub = suite.x25519PublicKey(bob);
      expect(toHex(alicePub)).toBe('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
      expect(toHex(bobPub)).toBe('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
      const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
      expect(toHex(suite.x25519(alice, bobPub))).toBe(shared);
      expect(toHex(suite.x25519(bob, alicePub))).toBe(shared);
    });

    it('agrees on a shared secret for random key pairs', () => {
      fc.assert(
        fc.property(bytes32, bytes32, (a, b) => {
          const ab = suite.x25519(a, suite.x25519PublicKey(b));
          const ba = suite.x25519(b, suite.x25519PublicKey(a));
          expect(toHex(ab)).toBe(toHex(ba));
        }),
        { numRuns: 40 },
      );
    });

    it('rejects low-order peer keys with a typed CryptoError instead of an all-zero secret', () => {
      const priv = new Uint8Array(32).fill(9);
      for (const u of LOW_ORDER_U) {
        let caught: unknown;
        try {
          suite.x25519(priv, hex(u));
        } catch (err) {
          caught = err;
        }
        expect(isAnxError(caught, 'ANX_CRYPTO'), `low-order point ${u}`).toBe(true);
      }
    });

    it('throws CryptoError for keys of the wrong length', () => {
      expect(() => suite.x25519(new Uint8Array(31), new Uint8Array(32).fill(9))).toThrow(CryptoError);
      expect(() => suite.x25519(new Uint8Array(32).fill(1), new Uint8Array(33))).toThrow(CryptoError);
      expect(() => suite.x25519PublicKey(new Uint8Array(16))).toThrow(CryptoError);
    });
  });

  describe('AES-256-GCM', () => {
    it('matches the GCM spec test cases 13 and 14 (AES-256, zero key and nonce)', () => {
      const key = new Uint8Array(32);
      const nonce = new Uint8Array(12);
      expect(toHex(suite.aesGcmEncrypt(key, nonce, new Uint8Array(0)))).toBe(
        '530f8afbc74536b9a963b4f1c4cb738b',
      );
      expect(toHex(suite.aesGcmEncrypt(key, nonce, new Uint8Array(16)))).toBe(
        'cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919',
      );
    });

    it('opens what it seals, with and without associated data', () => {
      fc.assert(
        fc.property(
          bytes32,
          fc.uint8Array({ minLength: 12, maxLength: 12 }),
          message,
          fc.option(message, { nil: undefined }),
          (key, nonce, plaintext, aad) => {
            const sealed = suite.aesGcmEncrypt(key, nonce, plaintext, aad);
            expect(sealed.length).toBe(plaintext.length + 16);
            expect(toHex(suite.aesGcmDecrypt(key, nonce, sealed, aad))).toBe(toHex(plaintext));
          },
        ),
        { numRuns: 60 },
      );
    });

    it('throws DecryptError for tampered ciphertext, tag, nonce, key or associated data', () => {
      fc.assert(
        fc.property(bytes32, message, fc.nat(), (key, plaintext, bit) => {
          const nonce = new Uint8Array(12).fill(5);
          const aad = utf8('header');
          const sealed = suite.aesGcmEncrypt(key, nonce, plaintext, aad);
          const attempts: Array<() => unknown> = [
            () => suite.aesGcmDecrypt(key, nonce, flipBit(sealed, bit % (sealed.length * 8)), aad),
            () => suite.aesGcmDecrypt(key, flipBit(nonce, bit % 96), sealed, aad),
            () => suite.aesGcmDecrypt(flipBit(key, bit % 256), nonce, sealed, aad),
            () => suite.aesGcmDecrypt(key, nonce, sealed, flipBit(aad, bit % 48)),
            () => suite.aesGcmDecrypt(key, nonce, sealed),
            () => suite.aesGcmDecrypt(key, nonce, sealed.subarray(0, sealed.length - 1), aad),
          ];
          for (const attempt of attempts) expect(attempt).toThrow(DecryptError);
        }),
        { numRuns: 30 },
      );
    });

    it('throws DecryptError for input shorter than a tag', () => {
      const key = new Uint8Array(32);
      expect(() => suite.aesGcmDecrypt(key, new Uint8Array(12), new Uint8Array(15))).toThrow(DecryptError);
    });

    it('throws CryptoError for a wrong key or nonce length', () => {
      expect(() => suite.aesGcmEncrypt(new Uint8Array(16), new Uint8Array(12), utf8('x'))).toThrow(
        CryptoError,
      );
      expect(() => suite.aesGcmEncrypt(new Uint8Array(32), new Uint8Array(16), utf8('x'))).toThrow(
        CryptoError,
      );
      expect(() => suite.aesGcmDecrypt(new Uint8Array(32), new Uint8Array(8), new Uint8Array(32))).toThrow(
        CryptoError,
      );
    });
  });

  describe('hashes and HKDF', () => {
    it('matches RFC 5869 test cases 1 and 3', () => {
      const ikm = new Uint8Array(22).fill(0x0b);
      expect(
        toHex(suite.hkdfSha256(ikm, hex('000102030405060708090a0b0c'), hex('f0f1f2f3f4f5f6f7f8f9'), 42)),
      ).toBe('3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
      expect(toHex(suite.hkdfSha256(ikm, new Uint8Array(0), new Uint8Array(0), 42))).toBe(
        '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
      );
    });

    it('accepts info longer than 1024 bytes and lengths up to 255 blocks', () => {
      const out = suite.hkdfSha256(utf8('ikm'), utf8('salt'), new Uint8Array(2000).fill(1), 255 * 32);
      expect(out.length).toBe(255 * 32);
      expect(suite.hkdfSha256(utf8('ikm'), utf8('salt'), utf8('info'), 0).length).toBe(0);
    });

    it('throws CryptoError for an HKDF length out of range', () => {
      for (const length of [-1, 1.5, 255 * 32 + 1, Number.NaN]) {
        expect(() => suite.hkdfSha256(utf8('ikm'), utf8('s'), utf8('i'), length)).toThrow(CryptoError);
      }
    });

    it('matches the SHA-256 "abc" vector and RFC 4231 HMAC test 2', () => {
      expect(toHex(suite.sha256(utf8('abc')))).toBe(
        'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
      );
      expect(toHex(suite.hmacSha256(utf8('Jefe'), utf8('what do ya want for nothing?')))).toBe(
        '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
      );
    });

    it('returns the requested number of random bytes, beyond the 64 KiB Web Crypto limit too', () => {
      expect(suite.randomBytes(0).length).toBe(0);
      const big = suite.randomBytes(100_000);
      expect(big.length).toBe(100_000);
      expect(big.subarray(90_000).some((b) => b !== 0)).toBe(true);
      expect(toHex(suite.randomBytes(32))).not.toBe(toHex(suite.randomBytes(32)));
      expect(() => suite.randomBytes(-1)).toThrow(CryptoError);
    });
  });
});

// The verify pool: worker-thread Ed25519 verification answers exactly as the node suite, with libsodium and with node:crypto, also for hostile encodings.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { acceptableEd25519Public, smallOrderEncoding } from '../../runtime/crypto/ed25519-checks.ts';
import { nodeSuite } from '../../runtime/crypto/node.ts';
import { VerifyPool } from '../../runtime/crypto/verify-pool.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);
const P = (1n << 255n) - 19n;
const L = (1n << 252n) + 27742317777372353535851937790883648493n;
const SMALL_ORDER_Y = [
  0n,
  1n,
  P - 1n,
  0x7a03ac9277fdc74ec6cc392cfa53202a0f67100d760b3cba4fd84d3d706a17c7n,
  0x05fc536d880238b13933c6d305acdfd5f098eff289f4c345b027b2c28f95e826n,
];

const le = (n: bigint, bytes = 32) => {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
};
const fromLe = (bytes: Uint8Array) => {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i] as number);
  return n;
};
/** y of an encoding, the slow way. */
const yOf = (e: Uint8Array) => {
  const copy = e.slice();
  copy[31] = (copy[31] as number) & 0x7f;
  return fromLe(copy);
};

/**
 * A signature whose R is the identity point, valid by the equation [S]B = R + [k]A: RFC 8032 and
 * OpenSSL accept it, libsodium refuses it. Only the key's owner can make one.
 */
function identityRSignature(seed: Uint8Array, message: Uint8Array): Uint8Array {
  const h = createHash('sha512').update(seed).digest();
  const scalar = h.subarray(0, 32);
  scalar[0] = (scalar[0] as number) & 248;
  scalar[31] = ((scalar[31] as number) & 127) | 64;
  const a = fromLe(scalar);
  const R = le(1n);
  const k =
    fromLe(createHash('sha512').update(R).update(nodeSuite.ed25519PublicKey(seed)).update(message).digest()) %
    L;
  const sig = new Uint8Array(64);
  sig.set(R, 0);
  sig.set(le((k * a) % L), 32);
  return sig;
}

/** Valid, tampered, malformed and hostile (key, message, signature) triples. */
function cases(): Array<[Uint8Array, Uint8Array, Uint8Array]> {
  const out: Array<[Uint8Array, Uint8Array, Uint8Array]> = [];
  for (let i = 0; i < 40; i++) {
    const seed = new Uint8Array(randomBytes(32));
    const pub = nodeSuite.ed25519PublicKey(seed);
    const msg = new Uint8Array(randomBytes(i * 7));
    const sig = nodeSuite.sign(seed, msg);
    out.push([pub, msg, sig]);
    const flipped = sig.slice();
    flipped[i % 64] = (flipped[i % 64] as number) ^ (1 << (i % 8));
    out.push([pub, msg, flipped]);
    if (msg.length > 0) out.push([pub, msg.subarray(1), sig]);
    const otherKey = pub.slice();
    otherKey[i % 32] = (otherKey[i % 32] as number) ^ 1;
    out.push([otherKey, msg, sig]);
  }
  const seed = new Uint8Array(32).fill(3);
  const pub = nodeSuite.ed25519PublicKey(seed);
  const msg = utf8('malleable?');
  const sig = nodeSuite.sign(seed, msg);
  const malleated = sig.slice();
  malleated.set(le(fromLe(sig.subarray(32)) + L), 32);
  out.push([pub, msg, malleated]);
  out.push([pub, utf8('small R'), identityRSignature(seed, utf8('small R'))]);
  for (const y of SMALL_ORDER_Y) {
    const key = le(y);
    const zero = new Uint8Array(64);
    zero.set(le(1n), 0);
    out.push([key, utf8('x'), zero], [key, utf8('x'), new Uint8Array(64)]);
  }
  out.push([le(P + 1n), utf8('x'), new Uint8Array(64)]);
  out.push([new Uint8Array(31), msg, sig], [pub, msg, sig.subarray(1)], [pub, msg, new Uint8Array(0)]);
  return out;
}

const pools: VerifyPool[] = [];
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

describe('ed25519-checks', () => {
  it('agree with the big-integer definitions on edge encodings and 20,000 random ones', () => {
    const inputs: Uint8Array[] = [];
    for (const y of [...SMALL_ORDER_Y, P, P + 1n, P + 2n, P + 18n, P - 2n, (1n << 255n) - 1n, 2n])
      for (const sign of [0, 0x80]) {
        const e = le(y);
        e[31] = (e[31] as number) | sign;
        inputs.push(e);
      }
    for (let i = 0; i < 20_000; i++) inputs.push(new Uint8Array(randomBytes(32)));
    for (const e of inputs) {
      const y = yOf(e);
      expect(acceptableEd25519Public(e)).toBe(y < P && !SMALL_ORDER_Y.includes(y));
      expect(smallOrderEncoding(e)).toBe(SMALL_ORDER_Y.includes(y >= P ? y - P : y));
    }
  });
});

describe.each(['sodium', 'node'] as const)('VerifyPool (%s engine)', (engine) => {
  it('answers every case as the node suite does, in one burst and one at a time', async () => {
    const pool = new VerifyPool({ threads: 2, engine });
    pools.push(pool);
    const all = cases();
    const expected = all.map(([k, m, s]) => nodeSuite.verify(k, m, s));
    // The hostile cases must cover both answers, or the comparison proves little.
    expect(expected.filter(Boolean).length).toBeGreaterThan(40);
    expect(expected.filter((v) => !v).length).toBeGreaterThan(100);
    expect(
      await pool.verifyAll(all.map(([publicKey, message, signature]) => ({ publicKey, message, signature }))),
    ).toEqual(expected);
    for (let i = 0; i < all.length; i += 17) {
      const [k, m, s] = all[i] as [Uint8Array, Uint8Array, Uint8Array];
      expect(await pool.verify(k, m, s)).toBe(expected[i]);
    }
  });

  it('accepts the identity-R signature as RFC 8032 and the node suite do', async () => {
    const pool = new VerifyPool({ threads: 1, engine });
    pools.push(pool);
    const seed = new Uint8Array(32).fill(9);
    const msg = utf8('R of small order');
    const sig = identityRSignature(seed, msg);
    expect(nodeSuite.verify(nodeSuite.ed25519PublicKey(seed), msg, sig)).toBe(true);
    expect(await pool.verify(nodeSuite.ed25519PublicKey(seed), msg, sig)).toBe(true);
    expect(await pool.verify(nodeSuite.ed25519PublicKey(seed), utf8('other'), sig)).toBe(false);
  });
});

describe('VerifyPool', () => {
  it('uses libsodium when the optional package is installed', () => {
    const pool = new VerifyPool({ threads: 1 });
    pools.push(pool);
    expect(pool.engine).toBe('sodium');
  });

  it('answers everything in flight when closed, and verifies on the calling thread afterwards', async () => {
    const pool = new VerifyPool({ threads: 2 });
    const seed = new Uint8Array(32).fill(5);
    const pub = nodeSuite.ed25519PublicKey(seed);
    const items = Array.from({ length: 300 }, (_, i) => {
      const message = utf8(`message ${i}`);
      const signature = nodeSuite.sign(seed, message);
      if (i % 3 === 0) signature[40] = (signature[40] as number) ^ 1;
      return { publicKey: pub, message, signature };
    });
    const answers = pool.verifyAll(items);
    await new Promise((r) => setImmediate(r));
    await pool.close();
    expect(await answers).toEqual(items.map((_, i) => i % 3 !== 0));
    const [first] = items as [(typeof items)[0]];
    expect(await pool.verify(first.publicKey, first.message, first.signature)).toBe(false);
  });

  it('answers on the calling thread for workers that die, and stops starting them after three deaths', async () => {
    for (const source of ['process.exit(3)', "throw new Error('broken worker')"]) {
      const pool = new VerifyPool({ threads: 1, source });
      pools.push(pool);
      const seed = new Uint8Array(32).fill(8);
      const pub = nodeSuite.ed25519PublicKey(seed);
      for (let round = 0; round < 5; round++) {
        const items = Array.from({ length: 40 }, (_, i) => {
          const message = utf8(`round ${round} item ${i}`);
          const signature = nodeSuite.sign(seed, message);
          if (i % 4 === 1) signature[3] = (signature[3] as number) ^ 0x10;
          return { publicKey: pub, message, signature };
        });
        expect(await pool.verifyAll(items)).toEqual(items.map((_, i) => i % 4 !== 1));
      }
      expect(pool.restarts).toBe(3);
    }
  });

  it('with no threads verifies on the calling thread', async () => {
    const pool = new VerifyPool({ threads: 0 });
    const seed = new Uint8Array(32).fill(6);
    const msg = utf8('inline');
    expect(await pool.verify(nodeSuite.ed25519PublicKey(seed), msg, nodeSuite.sign(seed, msg))).toBe(true);
    expect(await pool.verify(nodeSuite.ed25519PublicKey(seed), msg, new Uint8Array(64))).toBe(false);
  });
});

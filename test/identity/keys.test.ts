// Identities: deterministic from a seed, the same under either suite, and never printed with their seed.
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CryptoError, nobleSuite, nodeSuite } from '../../runtime/crypto/index.ts';
import { parseDid } from '../../runtime/identity/did.ts';
import { generateIdentity, identityFromSeed } from '../../runtime/identity/keys.ts';

const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

describe('identities', () => {
  it('derives the same DID and public key from a seed under both suites', () => {
    const seed = new Uint8Array(32).fill(21);
    const a = identityFromSeed(seed, nodeSuite);
    const b = identityFromSeed(seed, nobleSuite);
    expect(a.did).toBe(b.did);
    expect(toHex(a.publicKey)).toBe(toHex(b.publicKey));
    expect(toHex(parseDid(a.did).publicKey)).toBe(toHex(a.publicKey));
  });

  it('copies the seed, so the caller may wipe its own buffer', () => {
    const seed = new Uint8Array(32).fill(22);
    const identity = identityFromSeed(seed);
    seed.fill(0);
    expect(toHex(identity.seed)).toBe('16'.repeat(32));
  });

  it('generates distinct identities that sign and verify', () => {
    const a = generateIdentity();
    const b = generateIdentity(nobleSuite);
    expect(a.did).not.toBe(b.did);
    const msg = new TextEncoder().encode('hi');
    expect(nodeSuite.verify(b.publicKey, msg, nodeSuite.sign(b.seed, msg))).toBe(true);
    expect(identityFromSeed(a.seed).did).toBe(a.did);
  });

  it('keeps the seed out of JSON and util.inspect', () => {
    const identity = generateIdentity();
    const secretHex = toHex(identity.seed);
    const secretB64 = Buffer.from(identity.seed).toString('base64');
    for (const text of [
      JSON.stringify(identity),
      inspect(identity),
      inspect({ nested: identity }, { depth: 5 }),
    ]) {
      expect(text).toContain(identity.did);
      expect(text).not.toContain(secretHex);
      expect(text).not.toContain(secretB64);
      expect(text).toContain('[redacted]');
      // A byte list of the seed would show its first bytes in decimal.
      expect(text).not.toContain(Array.from(identity.seed.subarray(0, 4)).join(', '));
    }
  });

  it('throws CryptoError for a seed that is not 32 bytes', () => {
    expect(() => identityFromSeed(new Uint8Array(16))).toThrow(CryptoError);
    expect(() => identityFromSeed('seed' as unknown as Uint8Array)).toThrow(CryptoError);
  });
});

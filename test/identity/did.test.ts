// DIDs: derivation from keys, did:key equivalence, and strict rejection of every kind of malformed input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nodeSuite } from '../../runtime/crypto/index.ts';
import { base58Encode } from '../../runtime/identity/base58.ts';
import {
  DidError,
  didFromPublicKey,
  isDid,
  parseDid,
  publicKeyOfDid,
  toAgentNexusDid,
  toDidKey,
} from '../../runtime/identity/did.ts';

const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'));
const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });

// The first example of the W3C did:key specification.
const SPEC_DID_KEY = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';

function multikeyOf(prefix: number[], key: Uint8Array): string {
  return `z${base58Encode(Uint8Array.from([...prefix, ...key]))}`;
}

function expectDidError(input: unknown, field?: string): DidError {
  let caught: unknown;
  try {
    parseDid(input, field);
  } catch (err) {
    caught = err;
  }
  expect(caught, `input ${String(input).slice(0, 80)}`).toBeInstanceOf(DidError);
  expect((caught as DidError).code).toBe('ANX_DID_INVALID');
  expect(isDid(input)).toBe(false);
  return caught as DidError;
}

describe('DIDs', () => {
  const seed = new Uint8Array(32).fill(7);
  const publicKey = nodeSuite.ed25519PublicKey(seed);
  const did = didFromPublicKey(publicKey);

  it('derives did:agentnexus:z6Mk… from an Ed25519 public key', () => {
    expect(did).toMatch(/^did:agentnexus:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/);
    const parsed = parseDid(did);
    expect(parsed.method).toBe('agentnexus');
    expect(parsed.did).toBe(did);
    expect(parsed.multikey).toBe(did.slice('did:agentnexus:'.length));
    expect(toHex(parsed.publicKey)).toBe(toHex(publicKey));
  });

  it('round-trips random keys through both forms', () => {
    fc.assert(
      fc.property(bytes32, (key) => {
        const d = didFromPublicKey(key);
        expect(d.startsWith('did:agentnexus:z6Mk')).toBe(true);
        expect(toHex(parseDid(d).publicKey)).toBe(toHex(key));
        const didKey = toDidKey(d);
        expect(didKey).toBe(`did:key:${d.slice('did:agentnexus:'.length)}`);
        expect(toHex(parseDid(didKey).publicKey)).toBe(toHex(key));
        expect(toAgentNexusDid(didKey)).toBe(d);
        expect(toHex(publicKeyOfDid(didKey))).toBe(toHex(key));
      }),
      { numRuns: 200 },
    );
  });

  it('reads the W3C did:key example as the same key as its did:agentnexus form', () => {
    const fromKey = parseDid(SPEC_DID_KEY);
    expect(fromKey.method).toBe('key');
    expect(fromKey.did).toBe('did:agentnexus:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK');
    expect(fromKey.publicKey.length).toBe(32);
    expect(didFromPublicKey(fromKey.publicKey)).toBe(fromKey.did);
    expect(toHex(parseDid(fromKey.did).publicKey)).toBe(toHex(fromKey.publicKey));
    expect(toDidKey(fromKey.did)).toBe(SPEC_DID_KEY);
  });

  it('gives the did:key that other implementations give for the RFC 8032 test keys', () => {
    const test1 = hex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    const test2 = hex('3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c');
    expect(toDidKey(didFromPublicKey(test1))).toBe(
      'did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw',
    );
    expect(toDidKey(didFromPublicKey(test2))).toBe(
      'did:key:z6MkiaMbhXHNA4eJVCCj8dbzKzTgYDKf6crKgHVHid1F1WCT',
    );
  });

  it('says which field was wrong, what was expected and what came', () => {
    expect(expectDidError('bob', 'to').message).toBe('"to" expected a did:agentnexus DID, got "bob"');
    const err = expectDidError(42, 'from');
    expect(err.message).toBe('"from" expected a did:agentnexus DID string, got 42');
    expect(err.field).toBe('from');
    expect(expectDidError('bob').message).toBe('input expected a did:agentnexus DID, got "bob"');
  });

  it('rejects input that is not a string', () => {
    for (const input of [undefined, null, 42, true, {}, [], publicKey, Symbol.for('did')])
      expectDidError(input);
  });

  it('rejects a wrong scheme or method', () => {
    const multikey = did.slice('did:agentnexus:'.length);
    for (const input of [
      '',
      'bob',
      multikey,
      `did:web:${multikey}`,
      `DID:agentnexus:${multikey}`,
      `did:AgentNexus:${multikey}`,
      `did:agentnexus${multikey}`,
      ` ${did}`,
      `did:key:did:agentnexus:${multikey}`,
    ]) {
      expectDidError(input);
    }
  });

  it('rejects a multibase prefix other than z (base58btc)', () => {
    const rest = did.slice('did:agentnexus:z'.length);
    for (const prefix of ['f', 'u', 'm', 'Z', '']) {
      const err = expectDidError(`did:agentnexus:${prefix}${rest}`);
      if (prefix !== '') expect(err.message).toContain('multibase prefix "z"');
    }
    expectDidError('did:agentnexus:');
    expectDidError('did:key:');
  });

  it('rejects characters outside the base58btc alphabet', () => {
    for (const bad of ['0', 'O', 'I', 'l', '+', '/', '=', '_']) {
      const err = expectDidError(`${did.slice(0, 30)}${bad}${did.slice(31)}`);
      expect(err.message).toContain('base58btc');
      expect(err.cause).toBeDefined();
    }
  });

  it('rejects multikeys of other key types', () => {
    const key = new Uint8Array(32).fill(1);
    const x25519 = expectDidError(`did:agentnexus:${multikeyOf([0xec, 0x01], key)}`);
    expect(x25519.message).toContain('0xec01');
    expectDidError(`did:agentnexus:${multikeyOf([0xe7, 0x01], new Uint8Array(33).fill(2))}`);
    expectDidError(`did:key:${multikeyOf([0x12, 0x00], key)}`);
    expectDidError(`did:agentnexus:${multikeyOf([0xed], key)}`);
  });

  it('rejects Ed25519 keys of the wrong length', () => {
    for (const length of [0, 1, 31, 33, 64]) {
      const err = expectDidError(
        `did:agentnexus:${multikeyOf([0xed, 0x01], new Uint8Array(length).fill(3))}`,
      );
      expect(err.message).toMatch(/got \d+ (bytes|characters)/);
    }
  });

  it('rejects trailing garbage, DID URLs and whitespace', () => {
    expect(expectDidError(`${did}x`).message).toContain('got 49 characters');
    for (const suffix of [
      '1',
      'x',
      ' ',
      '\n',
      '#key-1',
      '?service=x',
      '/path',
      `#${did.slice(15)}`,
      '\u0000',
    ]) {
      expectDidError(did + suffix);
    }
  });

  it('rejects enormous input before decoding it', () => {
    expectDidError(`did:agentnexus:z${'2'.repeat(1_000_000)}`);
  });

  it('tells the two methods apart in isDid when asked', () => {
    expect(isDid(did)).toBe(true);
    expect(isDid(toDidKey(did))).toBe(true);
    expect(isDid(did, 'agentnexus')).toBe(true);
    expect(isDid(toDidKey(did), 'agentnexus')).toBe(false);
    expect(isDid(toDidKey(did), 'key')).toBe(true);
  });

  it('serves public keys from its cache as copies the caller may change', () => {
    const first = publicKeyOfDid(did);
    first.fill(0);
    expect(toHex(publicKeyOfDid(did))).toBe(toHex(publicKey));
    expect(() => publicKeyOfDid('did:agentnexus:nope', 'to')).toThrow(/"to" expected/);
  });

  it('refuses to build a DID from a key of the wrong length', () => {
    expect(() => didFromPublicKey(new Uint8Array(31))).toThrow(DidError);
    expect(() => didFromPublicKey('key' as unknown as Uint8Array)).toThrow(DidError);
  });
});
